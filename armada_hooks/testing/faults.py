"""Fault injection for the local Armada: scripted or random gRPC errors, latency, dropped streams.

Methods are named by their short name (``"GetJobStatus"``), by service and name
(``"api.Jobs/GetJobStatus"``), or ``"*"`` for every RPC. Rules apply in this order:
a scripted sequence, then a random failure rate; latency is added to every matching
call, failing or not.

>>> armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=3)
>>> armada.faults.script("SubmitJobs", [grpc.StatusCode.INTERNAL, None])  # fail, then pass
>>> armada.faults.fail_randomly("*", grpc.StatusCode.UNAVAILABLE, probability=0.1, seed=1)
>>> armada.faults.delay("GetJobStatus", 0.5)
>>> armada.faults.delay("*", 3.0, times=4)  # the next 4 calls of any method are slow
>>> armada.faults.drop_streams(after=3)  # the next GetJobSetEvents stream dies after 3 messages
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc

if TYPE_CHECKING:
    from collections.abc import Iterable

INJECTED = "injected by the local Armada's fault injection"


@dataclass(frozen=True)
class Fault:
    """What to do to one call: fail with ``code`` (if set) after ``latency`` seconds."""

    code: grpc.StatusCode | None
    latency: float
    message: str


@dataclass
class _Delay:
    """Latency for calls of ``pattern``: every call (``remaining`` None) or that many more."""

    pattern: str
    seconds: float
    remaining: int | None


def matches(pattern: str, method: str) -> bool:
    """Whether ``pattern`` names ``method`` (a full ``/package.Service/Name`` path)."""
    if pattern == "*":
        return True
    pattern = pattern.lstrip("/")
    path = method.lstrip("/")
    return path == pattern or path.rsplit("/", 1)[-1] == pattern


class Faults:
    """The fault plan of one local Armada; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: list[tuple[str, deque[grpc.StatusCode | None]]] = []
        self._random: list[tuple[str, grpc.StatusCode, float, random.Random]] = []
        self._delays: list[_Delay] = []
        self._drops: deque[int] = deque()

    def fail(self, method: str, code: grpc.StatusCode, *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` fail with ``code``."""
        self.script(method, [code] * times)

    def script(self, method: str, outcomes: Iterable[grpc.StatusCode | None]) -> None:
        """Give the next calls of ``method`` these outcomes in order (``None`` = no fault)."""
        sequence = deque(outcomes)
        if any(code == grpc.StatusCode.OK for code in sequence):
            raise ValueError("use None, not StatusCode.OK, for a call that should pass")
        with self._lock:
            self._scripts.append((method, sequence))

    def fail_randomly(
        self, method: str, code: grpc.StatusCode, probability: float, *, seed: int | None = None
    ) -> None:
        """Fail each call of ``method`` with ``code`` with ``probability`` (0..1)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be within [0, 1], got {probability}")
        with self._lock:
            self._random.append((method, code, probability, random.Random(seed)))

    def delay(self, method: str, seconds: float, *, times: int | None = None) -> None:
        """Add ``seconds`` of latency to every call of ``method``, or to its next ``times``.

        A call slowed past its caller's deadline still runs on the server once the delay
        is over (the caller sees ``DEADLINE_EXCEEDED``), as a real overloaded server does.
        """
        if seconds < 0:
            raise ValueError(f"latency must be >= 0, got {seconds}")
        if times is not None and times < 1:
            raise ValueError(f"times must be >= 1 (or None for every call), got {times}")
        with self._lock:
            self._delays.append(_Delay(method, seconds, times))

    def drop_streams(self, after: int, *, times: int = 1) -> None:
        """Abort the next ``times`` event streams with UNAVAILABLE after ``after`` messages."""
        if after < 0 or times < 1:
            raise ValueError("after must be >= 0 and times >= 1")
        with self._lock:
            self._drops.extend([after] * times)

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._scripts.clear()
            self._random.clear()
            self._delays.clear()
            self._drops.clear()

    def next_fault(self, method: str) -> Fault:
        """Decide the fate of one call of ``method`` (consumes scripted outcomes)."""
        with self._lock:
            latency = 0.0
            for delay in [d for d in self._delays if matches(d.pattern, method)]:
                latency += delay.seconds
                if delay.remaining is not None:
                    delay.remaining -= 1
                    if delay.remaining == 0:
                        self._delays.remove(delay)
            for pattern, sequence in self._scripts:
                if sequence and matches(pattern, method):
                    code = sequence.popleft()
                    if code is not None:
                        return Fault(code, latency, f"{code.name} {INJECTED}")
                    return Fault(None, latency, "")
            for pattern, code, probability, rng in self._random:
                if matches(pattern, method) and rng.random() < probability:
                    return Fault(code, latency, f"{code.name} {INJECTED} (random)")
        return Fault(None, latency, "")

    def stream_drop_after(self) -> int | None:
        """For a new event stream: how many messages it may send before it is dropped."""
        with self._lock:
            return self._drops.popleft() if self._drops else None
