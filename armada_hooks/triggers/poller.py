"""One status poller per event loop and connection, shared by every waiting trigger.

Each tick sends one GetJobStatus for the jobs whose triggers are due (chunks of 500 are
asked concurrently by the hook), wakes only the triggers whose wait is over, and stops
when nobody waits. Each trigger keeps its own poll interval (a trigger asking for 60 s
is not polled every second); a trigger due within ``EARLY`` of its interval rides along
with the current tick, so triggers stay batched. Triggers of one interval share one grid
of ticks (anchored where the first of them was polled): a trigger that joins later is
polled at once, then on that grid, never later than one interval after its last poll,
so that triggers arriving one by one (tasks deferring over minutes) still cost one RPC
per interval and not one per arrival phase. The pause between ticks carries up to
``JITTER`` extra (never more than ``JITTER_CAP`` seconds, so a job's end is seen within
its interval plus that) so that many triggerer processes don't poll in step. An RPC error is
retried by the hook per batch, never once per trigger; if it persists, every trigger of
that batch gets the error.

The poller also describes the jobs whose waits ended: descriptions asked for within
``DESCRIBE_WINDOW`` of each other share one GetJobDetails (and one GetJobErrors).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from armada_hooks.errors import ArmadaError
from armada_hooks.states import JobState
from armada_hooks.triggers.shared import per_loop, shared_hook

if TYPE_CHECKING:
    from armada_hooks.hooks.armada import ArmadaHook
    from armada_hooks.job_description import JobDescription

JITTER = 0.1  # a pause between ticks is stretched by up to this fraction ...
JITTER_CAP = 0.5  # ... and never by more than this many seconds (latency <= interval + cap)
EARLY = 0.2  # a trigger is polled up to this fraction of its interval early, to batch
FIRST_POLL_WINDOW = 0.025  # seconds new triggers gather before their first, shared poll
DESCRIBE_WINDOW = 0.01  # seconds descriptions asked for gather before one batched RPC


def next_on_grid(anchor: float, interval: float, now: float) -> float:
    """The last tick of the grid ``anchor + k * interval`` at or before ``now + interval``.

    Later than ``now`` (``now >= anchor``), and never more than one interval after it.
    """
    return anchor + math.floor((now + interval - anchor) / interval) * interval


def pause_before(due_in: float) -> float:
    """Seconds until the next tick for a poll due in ``due_in`` seconds, with jitter."""
    due_in = max(0.0, due_in)
    return due_in + random.uniform(0.0, min(JITTER * due_in, JITTER_CAP))


@dataclass(eq=False)
class JobWait:
    """One trigger's wait for its job: the check that ends it, the future it resolves."""

    job_id: str
    done: Callable[[JobState], bool]
    future: asyncio.Future[JobState]

    def offer(self, state: JobState) -> bool:
        """Whether ``state`` ends the wait, which it then resolves.

        A check that raises is that wait's error (and ends it).
        """
        if self.future.done():
            return True
        try:
            finished = self.done(state)
        except Exception as exc:  # a trigger's own check failed: that trigger's error
            self.future.set_exception(exc)
            return True
        if finished:
            self.future.set_result(state)
        return finished


@dataclass(eq=False)
class _Waiter(JobWait):
    interval: float
    next_due: float = field(default=0.0)
    polled: bool = False

    def due(self, now: float) -> bool:
        """Whether this trigger's job goes into the tick at ``now``."""
        if self.future.done():
            return False
        early = EARLY * self.interval if self.polled else FIRST_POLL_WINDOW
        return self.next_due - early <= now


class StatusPoller:
    """Batches the status polls of every trigger on one event loop for one connection."""

    def __init__(self, hook: ArmadaHook) -> None:
        self.hook = hook
        self._waiters: set[_Waiter] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.ticks = 0
        self._to_describe: dict[str, list[asyncio.Future[JobDescription]]] = {}
        self._describer: asyncio.Task[None] | None = None
        self._grids: dict[float, float] = {}  # interval -> the anchor of its ticks

    @classmethod
    def for_connection(cls, conn_id: str) -> StatusPoller:
        """The running loop's poller for ``conn_id`` (created on first use)."""
        return per_loop("poller", conn_id, lambda: cls(shared_hook(conn_id)))

    @property
    def waiting(self) -> int:
        """How many waits are registered."""
        return len(self._waiters)

    async def wait(
        self, job_id: str, interval: float, done: Callable[[JobState], bool]
    ) -> JobState:
        """Poll ``job_id`` (now, then every ``interval``) until ``done(state)``; that state."""
        loop = asyncio.get_running_loop()
        first = loop.time() + FIRST_POLL_WINDOW  # triggers starting together share a poll
        waiter = _Waiter(job_id, done, loop.create_future(), interval, next_due=first)
        self._waiters.add(waiter)
        if self._task is None or self._task.done():  # no await before this: one task only
            self._task = loop.create_task(self._run(), name="armada-status-poller")
        self._wake.set()
        try:
            return await waiter.future
        finally:
            self._waiters.discard(waiter)  # a cancelled trigger leaves the set at once

    async def describe(self, job_id: str) -> JobDescription:
        """``job_id``'s description, asked in one RPC with the others asked meanwhile."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[JobDescription] = loop.create_future()
        self._to_describe.setdefault(job_id, []).append(future)
        if self._describer is None or self._describer.done():
            self._describer = loop.create_task(self._describe(), name="armada-describer")
        return await future

    async def _describe(self) -> None:
        await asyncio.sleep(DESCRIBE_WINDOW)
        while self._to_describe:  # those asked during an RPC go in the next one at once
            batch, self._to_describe = self._to_describe, {}
            try:
                described = await self.hook.aget_job_descriptions(batch)
            except Exception as exc:  # the hook already retried: every asker hears why
                for futures in batch.values():
                    self._fail_futures(futures, exc)
                continue
            except BaseException as exc:  # stopped from outside: nobody waits for ever
                stopped = ArmadaError(f"describing Armada jobs was interrupted ({exc!r})")
                for futures in [*batch.values(), *self._to_describe.values()]:
                    self._fail_futures(futures, stopped)
                raise
            for job_id, futures in batch.items():
                for future in futures:
                    if not future.done():
                        future.set_result(described[job_id])

    @staticmethod
    def _fail_futures(futures: list[asyncio.Future[JobDescription]], exc: Exception) -> None:
        for future in futures:
            if not future.done():
                future.set_exception(exc)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await self.hook.aload_config()
        except Exception as exc:  # no connection: every waiting trigger hears why
            self._fail([w for w in self._waiters if not w.future.done()], exc)
            return
        while self._waiters:
            now = loop.time()
            due = [w for w in self._waiters if w.due(now)]
            if due:
                await self._poll(due)
            pending = [w.next_due for w in self._waiters if not w.future.done()]
            if not pending:
                await asyncio.sleep(0)  # let resolved waiters unregister
                continue
            self._wake.clear()
            delay = pause_before(min(pending) - loop.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
        self._grids.clear()  # nobody waits: the next waits start grids of their own

    @staticmethod
    def _fail(waiters: list[_Waiter], exc: Exception) -> None:
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_exception(exc)

    async def _poll(self, due: list[_Waiter]) -> None:
        self.ticks += 1
        try:
            states = await self.hook.aget_job_statuses({w.job_id for w in due})
        except Exception as exc:  # the hook already retried this batch
            self._fail(due, exc)
            return
        now = asyncio.get_running_loop().time()
        for waiter in due:
            waiter.polled = True
            if not waiter.offer(states.get(waiter.job_id, JobState.UNKNOWN)):
                anchor = self._grids.setdefault(waiter.interval, now)
                waiter.next_due = next_on_grid(anchor, waiter.interval, now)
