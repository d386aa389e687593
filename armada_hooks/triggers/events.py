"""Event mode: deferred waits follow their job set's event stream instead of polling.

One :class:`EventWatch` per event loop and connection keeps one watching GetJobSetEvents
stream per (queue, job set) that a trigger waits on, and wakes each trigger when an event
brings its job to a state it waits for: a terminal state is seen within the event latency,
and no status RPC is sent while the stream is healthy. A stream replays the job set from
its first message, so a job that ended before the trigger started is seen at once.

When a stream drops with a retryable code it is reopened from the last message it
delivered (Armada resumes strictly after ``from_message_id``), so no event is missed and
none is applied twice. When it cannot be reopened (``MAX_RESUMES`` attempts in a row
without a message, or a code that will not change, such as PERMISSION_DENIED) every waiting
trigger of that job set gets :class:`EventStreamLost` and falls back to polling. A job
that has no event in its job set by its acknowledgement deadline (and at least
``SEEN_GRACE`` seconds into the wait, so a trigger rebuilt after a restart gets a replay)
does the same, so a wrong job set id or a lost job is still judged by the status API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from armada_hooks.job_events import EVENT_STATES, event_state
from armada_hooks.rpc import RETRYABLE_CODES, describe_failure
from armada_hooks.states import TERMINAL_STATES, JobState
from armada_hooks.triggers.poller import JobWait
from armada_hooks.triggers.shared import per_loop, shared_hook

if TYPE_CHECKING:
    from armada_client.armada import event_pb2

    from armada_hooks.hooks.armada import ArmadaHook

MAX_RESUMES = 8  # failed (re)opens in a row before waits fall back (about 35 s of tries)
HEALTHY_STREAM = 30.0  # seconds open after which a drop counts as the first in a row
SEEN_GRACE = 10.0  # seconds a stream always gets to show a job before its deadline counts

__all__ = ["EVENT_STATES", "EventStreamLost", "EventWatch", "event_state"]


class EventStreamLost(Exception):
    """A wait cannot be served from the event stream; the trigger falls back to polling."""


@dataclass(eq=False)
class _Waiter(JobWait):
    timer: asyncio.TimerHandle | None = field(default=None)


class _JobSetStream:
    """One watching stream of one (queue, job set) and the waits it serves."""

    def __init__(self, watch: EventWatch, queue: str, job_set_id: str) -> None:
        self.watch = watch
        self.key = (queue, job_set_id)
        self.states: dict[str, JobState] = {}
        self.last_message_id = ""
        self.waiters: dict[str, set[_Waiter]] = {}
        self.task: asyncio.Task[None] | None = None
        self.retired = False

    def add(self, waiter: _Waiter, deadline: float | None) -> None:
        self.waiters.setdefault(waiter.job_id, set()).add(waiter)
        state = self.states.get(waiter.job_id)
        if state is not None:
            waiter.offer(state)
        loop = asyncio.get_running_loop()
        if deadline is not None and not waiter.future.done():
            delay = max(SEEN_GRACE, deadline - time.time())
            waiter.timer = loop.call_later(delay, self._check_seen, waiter)
        if self.task is None:
            self.task = loop.create_task(self._follow(), name=f"armada-events-{self.key[1]}")

    def remove(self, waiter: _Waiter) -> None:
        if waiter.timer is not None:
            waiter.timer.cancel()
        same_job = self.waiters.get(waiter.job_id)
        if same_job is not None:
            same_job.discard(waiter)
            if not same_job:
                del self.waiters[waiter.job_id]
        if not self.waiters:
            self.retire()

    def retire(self) -> None:
        """Leave the watch's table (later waits open a new stream) and stop following."""
        if self.retired:
            return
        self.retired = True
        self.watch._forget(self)
        current = asyncio.current_task()
        if self.task is not None and self.task is not current:
            self.task.cancel()

    def _check_seen(self, waiter: _Waiter) -> None:
        if waiter.job_id not in self.states and not waiter.future.done():
            queue, job_set_id = self.key
            self.watch.fallbacks += 1
            waiter.future.set_exception(
                EventStreamLost(
                    f"Armada job {waiter.job_id} had no event in job set {job_set_id!r} of "
                    f"queue {queue!r} by its acknowledgement deadline"
                )
            )

    def apply(self, message: event_pb2.EventStreamMessage) -> None:
        """Take one message: remember its id and its job's state; wake whom it concerns."""
        self.last_message_id = message.id
        self.watch.messages += 1
        job_id, state = event_state(message.message)
        if state is None or self.states.get(job_id) in TERMINAL_STATES:
            return  # e.g. the failed event that follows preempted: the job already ended
        self.states[job_id] = state
        for waiter in list(self.waiters.get(job_id, ())):
            waiter.offer(state)

    async def _follow(self) -> None:
        hook = self.watch.hook
        queue, job_set_id = self.key
        failures = 0
        try:
            while self.waiters and not self.retired:
                stream: Any = None
                delivered = False
                opened = time.monotonic()
                try:
                    stream = await _open_stream(hook.async_client, queue, job_set_id, self)
                    self.watch.streams_opened += 1
                    self.watch.open_streams += 1
                    async for message in stream:
                        delivered = True
                        self.apply(message)
                        if not self.waiters:
                            return
                    problem = "the server ended the stream"
                    retry = True
                except grpc.aio.AioRpcError as exc:
                    problem, retry = describe_failure(exc), exc.code() in _RESUMABLE
                except Exception as exc:  # e.g. the connection cannot be built
                    problem, retry = describe_failure(exc), False
                finally:
                    if stream is not None:
                        self.watch.open_streams -= 1
                        cancel = getattr(stream, "cancel", None)
                        if callable(cancel):
                            cancel()
                healthy = delivered or time.monotonic() - opened >= HEALTHY_STREAM
                failures = 1 if healthy else failures + 1
                if not retry or failures > MAX_RESUMES:
                    self._fall_back(problem, failures)
                    return
                self.watch.resumes += 1
                await asyncio.sleep(_resume_delay(failures, hook))
        finally:
            self.retire()
            # Stopped from outside (the loop closing, a call cancelled under us): nobody may
            # be left waiting on a stream that is gone.
            self._fail_waiters(EventStreamLost(f"the event stream of {job_set_id!r} stopped"))

    def _fall_back(self, problem: str, failures: int) -> None:
        queue, job_set_id = self.key
        self.retire()
        self._fail_waiters(
            EventStreamLost(
                f"event stream of job set {job_set_id!r} in queue {queue!r} failed "
                f"({problem}; attempt {failures}); falling back to polling"
            )
        )

    def _fail_waiters(self, lost: EventStreamLost) -> None:
        for waiters in list(self.waiters.values()):
            for waiter in waiters:
                if not waiter.future.done():
                    self.watch.fallbacks += 1
                    waiter.future.set_exception(lost)


# The hook's retryable codes, and what a dropped stream or a job set new to the event
# store brings.
_RESUMABLE = RETRYABLE_CODES | {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.NOT_FOUND,  # a new job set may reach the event store after its jobs
}


async def _open_stream(client: Any, queue: str, job_set_id: str, at: _JobSetStream) -> Any:
    """A watching GetJobSetEvents call after ``at.last_message_id``.

    ``armada_client``'s own client wraps the call in an idle-timeout iterator that costs a
    task and a queue hop per message; with its ``event_stub`` at hand the call is read
    directly. Any other :class:`~armada_hooks.protocols.AsyncArmadaProtocol` client is
    asked through the protocol.
    """
    stub = getattr(client, "event_stub", None)
    if stub is None:
        return await client.get_job_events_stream(
            queue, job_set_id, from_message_id=at.last_message_id or None
        )
    from armada_client.armada import event_pb2

    request = event_pb2.JobSetRequest(
        queue=queue,
        id=job_set_id,
        from_message_id=at.last_message_id,
        watch=True,
        errorIfMissing=True,
    )
    return stub.GetJobSetEvents(request)


def _resume_delay(failures: int, hook: ArmadaHook) -> float:
    """No pause before the first reopen; then the hook's retry wait, doubling to its cap."""
    if failures <= 1:
        return 0.0
    return hook.retry_policy.pause(failures - 1)


class EventWatch:
    """Follows the job sets that this event loop's triggers wait on, for one connection.

    Counters (for tests and benchmarks): ``streams_opened``, ``open_streams`` (now),
    ``resumes`` (reopens after a drop), ``messages`` (applied, never twice) and
    ``fallbacks`` (waits handed to the poller).
    """

    def __init__(self, hook: ArmadaHook) -> None:
        self.hook = hook
        self._streams: dict[tuple[str, str], _JobSetStream] = {}
        self.streams_opened = 0
        self.open_streams = 0
        self.resumes = 0
        self.messages = 0
        self.fallbacks = 0

    @classmethod
    def for_connection(cls, conn_id: str) -> EventWatch:
        """The running loop's watch for ``conn_id``; it shares the status poller's hook."""
        return per_loop("events", conn_id, lambda: cls(shared_hook(conn_id)))

    @property
    def following(self) -> int:
        """How many job sets are followed now."""
        return len(self._streams)

    @property
    def waiting(self) -> int:
        """How many waits are registered."""
        return sum(len(w) for s in self._streams.values() for w in s.waiters.values())

    async def wait(
        self,
        queue: str,
        job_set_id: str,
        job_id: str,
        done: Callable[[JobState], bool],
        deadline: float | None = None,
    ) -> JobState:
        """Follow the job set until an event brings ``job_id`` to a state where ``done``.

        ``deadline`` (epoch seconds): if the job has had no event by then, give up with
        :class:`EventStreamLost`, as when the stream fails for good.
        """
        key = (queue, job_set_id)
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _JobSetStream(self, queue, job_set_id)
        waiter = _Waiter(job_id, done, asyncio.get_running_loop().create_future())
        stream.add(waiter, deadline)
        try:
            return await waiter.future
        finally:
            stream.remove(waiter)  # a cancelled trigger leaves at once

    def _forget(self, stream: _JobSetStream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]
