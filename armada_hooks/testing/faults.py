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
>>> hold = armada.faults.hold("SubmitJobs", after_serving=True)  # served, its reply kept back
>>> hold.wait_held(); ...; hold.release()  # e.g. kill the caller while the job exists unanswered
"""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

INJECTED = "injected by the local Armada's fault injection"
HOLD_LIMIT = 300.0  # seconds a held call waits at most for its release


class Hold:
    """The next ``times`` calls of a method, each kept waiting until :meth:`release`.

    Before it is served (``after_serving=False``: the call has no effect yet) or after
    (``True``: its effect is made, its reply not yet sent; unary calls only). A call is
    let go after ``limit`` seconds even if nobody releases it, so that no server thread
    waits for ever.
    """

    def __init__(
        self,
        method: str,
        times: int,
        *,
        after_serving: bool,
        limit: float,
        when: Callable[[Any], bool] | None = None,
    ) -> None:
        self.method = method
        self.after_serving = after_serving
        self.when = when
        self.limit = limit
        self._unclaimed = times
        self._held = 0
        self._released = False
        self._cond = threading.Condition()

    def claim(self, method: str, after_serving: bool, request: Any = None) -> bool:
        """Whether this call of ``method`` is one to hold (taking one of the ``times``)."""
        if after_serving != self.after_serving or not matches(self.method, method):
            return False
        if self.when is not None and not self.when(request):
            return False
        with self._cond:
            if self._unclaimed and not self._released:
                self._unclaimed -= 1
                return True
        return False

    def keep(self) -> None:
        """Block the calling (server) thread until released or ``limit`` has passed."""
        with self._cond:
            self._held += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._released, timeout=self.limit)

    @property
    def held(self) -> int:
        """How many calls have been held so far (released ones included)."""
        with self._cond:
            return self._held

    def wait_held(self, count: int = 1, timeout: float = 60.0) -> None:
        """Block until ``count`` calls are being held; ``TimeoutError`` if none comes."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._held >= count, timeout=timeout):
                raise TimeoutError(
                    f"{self._held} of {count} calls of {self.method} held after {timeout:g}s"
                )

    def release(self) -> None:
        """Let every held call go on, and hold no more."""
        with self._cond:
            self._released = True
            self._unclaimed = 0
            self._cond.notify_all()


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
        self._holds: list[Hold] = []

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

    def hold(
        self,
        method: str,
        *,
        times: int = 1,
        after_serving: bool = False,
        limit: float = HOLD_LIMIT,
        when: Callable[[Any], bool] | None = None,
    ) -> Hold:
        """Keep the next ``times`` calls of ``method`` waiting until the :class:`Hold` is released.

        ``after_serving=True`` serves each call first and holds its reply (a job submitted
        whose submitter has not heard so); otherwise the call waits before it is served.
        ``when(request)`` picks the calls to hold (say, one job set's SubmitJobs).
        """
        if times < 1 or limit <= 0:
            raise ValueError("times must be >= 1 and limit > 0 seconds")
        hold = Hold(method, times, after_serving=after_serving, limit=limit, when=when)
        with self._lock:
            self._holds.append(hold)
        return hold

    def held(self, method: str, *, after_serving: bool, request: Any = None) -> Hold | None:
        """The hold, if any, that this call of ``method`` is to wait in (claims it)."""
        with self._lock:
            holds = list(self._holds)
        return next((h for h in holds if h.claim(method, after_serving, request)), None)

    def clear(self) -> None:
        """Remove every fault (held calls are released)."""
        with self._lock:
            self._scripts.clear()
            self._random.clear()
            self._delays.clear()
            self._drops.clear()
            holds, self._holds = self._holds, []
        for hold in holds:
            hold.release()

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
