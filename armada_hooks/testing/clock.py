"""Job time for the local Armada: wall time that may run faster by a time-scale factor."""

from __future__ import annotations

import time


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
