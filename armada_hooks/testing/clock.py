"""Job time for the local Armada: wall time that may run faster by a time-scale factor."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable


class SimClock:
    """Epoch seconds of job time; ``time_scale=60`` runs a job-minute in a real second."""

    def __init__(self, time_scale: float = 1.0, start: float | None = None) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.time_scale = time_scale
        self._origin = time.time() if start is None else max(start, time.time())
        self._mono = time.monotonic()

    def now(self) -> float:
        """Current job time, epoch seconds."""
        return self._origin + (time.monotonic() - self._mono) * self.time_scale

    def real_seconds_until(self, when: float) -> float:
        """Real seconds until job time reaches ``when`` (0 if already past)."""
        return max(0.0, (when - self.now()) / self.time_scale)


class ManualClock(SimClock):
    """Job time read from a caller's clock (a callable of epoch seconds), ``time_scale`` faster.

    Job time starts at the callable's first answer and moves only when its answers do, so a
    test drives the lifecycle by hand. Nothing runs by itself on it: whoever owns the engine
    applies what is due (:meth:`~.lifecycle.Lifecycle.catch_up`) before it looks.
    """

    def __init__(self, read: Callable[[], float], time_scale: float = 1.0) -> None:
        super().__init__(time_scale)
        self._read = read
        self._origin = self._mono = read()

    def now(self) -> float:
        """Current job time, epoch seconds."""
        return self._origin + (self._read() - self._mono) * self.time_scale
