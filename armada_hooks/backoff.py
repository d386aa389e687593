"""Poll pacing: jitter and the exponential schedule, with their bounds made explicit.

``exponential_delay(tries)`` draws from ``[d/3, d]`` with ``d = min(cap, 1 + (0.6·tries)²)``
(the AWS Batch hook's curve): about 1 s at first, 7.5 s by the 4th poll, ``cap`` from the
13th on with the default cap of 60 s. Polls use one draw each: no jitter on top of jitter.
"""

from __future__ import annotations

import random

DEFAULT_DELAY_MIN = 1.0
DEFAULT_DELAY_MAX = 10.0
DEFAULT_BACKOFF_CAP = 60.0


def add_jitter(delay: float, width: float = 1.0, minima: float = 0.0) -> float:
    """``delay`` ± ``width``, uniformly, never below ``minima`` (all taken as absolute)."""
    delay, width, minima = abs(delay), abs(width), abs(minima)
    return random.uniform(max(minima, delay - width), max(minima, delay + width))


def uniform(low: float, high: float) -> float:
    """A pause drawn uniformly from ``[low, high]`` seconds."""
    return random.uniform(low, high)


def exponential_bounds(tries: int, cap: float = DEFAULT_BACKOFF_CAP) -> tuple[float, float]:
    """The interval ``exponential_delay(tries)`` draws from."""
    upper = min(cap, 1.0 + (0.6 * max(tries, 0)) ** 2)
    return upper / 3.0, upper


def exponential_delay(tries: int, cap: float = DEFAULT_BACKOFF_CAP) -> float:
    """Seconds to wait before poll number ``tries + 1``: uniform in ``[d/3, d]``."""
    return random.uniform(*exponential_bounds(tries, cap))


def total_wait_bounds(polls: int, cap: float = DEFAULT_BACKOFF_CAP) -> tuple[float, float]:
    """Least and most seconds that ``polls`` exponential pauses can add up to."""
    lower = upper = 0.0
    for tries in range(polls):
        low, high = exponential_bounds(tries, cap)
        lower, upper = lower + low, upper + high
    return lower, upper
