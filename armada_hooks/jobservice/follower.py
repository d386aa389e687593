"""One followed job set: its watching event stream, its jobs' states, and how sure they are.

A :class:`JobSetFollower` holds one ``GetJobSetEvents`` stream (``watch``) for its
(queue, job set), shared by every caller and every job of the set. It starts from the
store's last message id (the start of the job set for a new one) and, after a drop,
resumes strictly after the last message it applied. Each message's state change is
applied in memory and written to the store with the message id in one step (batched over
a few milliseconds), so a restart resumes where the store was left.

Two facts about the stream decide what an answer may claim:

- *caught up*: after its first message the stream has delivered nothing for
  ``catch_up_quiet`` seconds (or, with no message at all, for ``empty_replay_wait``), so
  the replay of what Armada had is over; before that an unseen id is merely not seen *yet*
  (for ``replay_patience`` at most: a busy job set's stream may never be quiet);
- *down*: the stream has failed and no reopened stream has worked since (delivered a
  message, or stayed open ``stream_ok_after`` seconds); past ``connection_grace`` the
  states of jobs that have not ended are stale.

With a store shared by replicas (:class:`~.store.LeasedStore`), a follower opens the
stream only while it holds the job set's lease (renewed every third of ``lease_ttl``).
Until it gets the lease it is *passive*: it reads the holder's states from the store
(every fifth of ``lease_ttl``) and tries to take the lease, which it gets once the
holder has released it or died; it then resumes from the stored message id. A holder
whose lease was taken (its renewal failed, or the store refused a write) goes passive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc

from armada_hooks.job_events import event_reason, event_state
from armada_hooks.jobservice.protos import job_states_pb2
from armada_hooks.jobservice.store import JobRecord, LeasedStore, LeaseLostError, StreamDown
from armada_hooks.rpc import describe_failure, status_code
from armada_hooks.states import FAILURE_STATES, TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from armada_client.armada import event_pb2

    from armada_hooks.jobservice.settings import JobServiceSettings
    from armada_hooks.jobservice.store import JobSetKey, JobStateStore
    from armada_hooks.rpc import RetryPolicy

log = logging.getLogger(__name__)

Certainty = job_states_pb2.Certainty
FLUSH_DELAY = 0.05  # seconds state changes wait to be written together
FLUSH_SIZE = 500  # changes that are written at once, without waiting
FLUSH_RETRY = 0.5  # seconds before a write the store refused is tried again
HEALTHY_STREAM = 30.0  # seconds open after which a drop counts as the first in a row


class Known(NamedTuple):
    """What the job service can say about one job now.

    (A named tuple: one is made per job per answer, and tuples are the cheapest to make.)
    """

    state: JobState
    reason: str
    certainty: int  # a job_states_pb2.Certainty value


@dataclass
class Queried:
    """What Armada's query API said of an id its stream had not shown, and when (monotonic)."""

    record: JobRecord | None  # None: Armada did not know it (UNKNOWN)
    at: float


class JobSetFollower:
    """Follows one (queue, job set) for as long as callers ask about it."""

    def __init__(
        self,
        key: JobSetKey,
        store: JobStateStore,
        event_stub: Any,
        settings: JobServiceSettings,
        policy: RetryPolicy,
    ) -> None:
        self.key = key
        self._store = store
        self._stub = event_stub
        self._settings = settings
        self._policy = policy
        stored = store.job_set(key)
        self.last_message_id = stored.last_message_id if stored else ""
        self.jobs: dict[str, JobRecord] = store.jobs(key)
        self.queried: dict[str, Queried] = {}
        self.caught_up = asyncio.Event()
        self.down_since: float | None = time.monotonic()  # not working until proven
        self.problem = "the job set's event stream has not opened yet"
        self.started = self.touched = time.monotonic()
        self.touched_at = time.time()
        self.touch_saved = 0.0
        self.streams_opened = 0
        self.opened_from: deque[str] = deque(maxlen=32)  # from_message_id of recent opens
        self.messages = 0
        self._pending: dict[str, JobRecord] = {}
        self._saved_message_id = self.last_message_id
        self._flush_timer: asyncio.TimerHandle | None = None
        self._quiet_timer: asyncio.TimerHandle | None = None
        self._ok_timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.store_down = False  # the last write failed; a retry is scheduled
        self._leases = store if isinstance(store, LeasedStore) else None
        self.holding = False  # holds the job set's lease (always False without leases)
        self.leases_taken = 0
        self._lease_lost = False
        self._passive_seen: str | None = None  # stored message id at the last passive read

    # -- lifetime ----------------------------------------------------------

    def start(self) -> None:
        """Open the stream (in the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._follow(), name=f"job-service-{self.key[1]}"
            )

    async def close(self) -> None:
        """Stop following; what was applied is written to the store."""
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._cancel_timers()
        self.flush()
        if self.holding and self._leases is not None:
            self.holding = False
            with contextlib.suppress(Exception):  # it expires anyway
                self._leases.release(self.key)

    def touch(self) -> None:
        """Note a request about this job set (``started`` stays when the following began)."""
        self.touched = time.monotonic()
        self.touched_at = time.time()

    # -- answers -----------------------------------------------------------

    def known(self, job_id: str) -> Known | None:
        """What can be said of ``job_id``; None when only the query API can tell."""
        now = time.monotonic()
        stale = self.down_since is not None and now - self.down_since >= (
            self._settings.connection_grace
        )
        record = self.jobs.get(job_id)
        queried = self.queried.get(job_id) if record is None else None
        if queried is not None and queried.record is not None:
            record = queried.record
        if record is not None:
            if record.state in TERMINAL_STATES:
                return Known(record.state, record.reason, Certainty.CURRENT)
            if stale:
                return Known(record.state, self.problem, Certainty.STALE)
            if queried is None or now - queried.at < self._settings.query_refresh:
                return Known(record.state, record.reason, Certainty.CURRENT)
            return None  # known from the query API only, and a while ago: ask again
        if stale:
            return Known(JobState.UNKNOWN, self.problem, Certainty.STALE)
        if not self.caught_up.is_set() and now - self.started < self._settings.replay_patience:
            return Known(JobState.UNKNOWN, "", Certainty.PENDING_CATCH_UP)
        if queried is not None and now - queried.at < self._settings.query_refresh:
            return Known(JobState.UNKNOWN, "", Certainty.NOT_FOUND)
        return None

    def take_query(self, job_id: str, state: JobState) -> None:
        """Remember the query API's answer for an id the stream has not shown."""
        if job_id in self.jobs:
            return  # the stream showed it meanwhile; its events win
        record = None if state is JobState.UNKNOWN else JobRecord(job_id, state)
        self.queried[job_id] = Queried(record, time.monotonic())

    # -- the stream --------------------------------------------------------

    async def _follow(self) -> None:
        leases = self._leases
        if leases is None:
            await self._stream()
            return
        while not self.closed:
            if not await self._take_lease(leases):
                return
            stream = asyncio.ensure_future(self._stream())
            keeper = asyncio.ensure_future(self._keep_lease(leases))
            try:
                await asyncio.wait({stream, keeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (stream, keeper):
                    task.cancel()
                for task in (stream, keeper):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self.holding = False
            if not self.closed:
                log.warning(
                    "job set %r in queue %r: another replica took the lease; following it "
                    "from the store",
                    self.key[1],
                    self.key[0],
                )

    async def _take_lease(self, leases: LeasedStore) -> bool:
        """Read the holder's states until the lease is ours (False: closed meanwhile)."""
        ttl = self._settings.lease_ttl
        while not self.closed:
            try:
                if leases.acquire(self.key, ttl):
                    self._resume_from_store()
                    return True
                self._read_passively()
            except Exception as exc:
                log.warning("job set %r: the store cannot be asked: %s", self.key[1], exc)
            await asyncio.sleep(ttl / 5)
        return False

    async def _keep_lease(self, leases: LeasedStore) -> None:
        """Renew the lease until another replica holds it (a store down is waited out)."""
        while not self._lease_lost:
            await asyncio.sleep(self._settings.lease_ttl / 3)
            try:
                if not leases.acquire(self.key, self._settings.lease_ttl):
                    return
            except Exception as exc:
                log.warning("job set %r: the lease cannot be renewed: %s", self.key[1], exc)

    def _resume_from_store(self) -> None:
        stored = self._store.job_set(self.key)
        self.jobs = self._store.jobs(self.key)
        self.last_message_id = self._saved_message_id = stored.last_message_id if stored else ""
        self._pending = {}
        self._lease_lost = False
        self.holding = True
        self.leases_taken += 1
        if self.down_since is None:
            self.down_since = time.monotonic()  # this replica's stream has to prove itself
            self.problem = "the job set's event stream has not opened yet on this replica"
        self._share_health()

    def _read_passively(self) -> None:
        stored = self._store.job_set(self.key)
        self.jobs = self._store.jobs(self.key)
        message_id = stored.last_message_id if stored else ""
        self.last_message_id = self._saved_message_id = message_id
        # the holder follows the stream; once its stored position stops moving, it has
        # replayed what Armada had
        if message_id and message_id == self._passive_seen:
            self.caught_up.set()
        self._passive_seen = message_id
        # the holder's stream health, as it recorded it: past the grace, answers are stale
        # here too (wall clocks of the replicas are compared)
        down = self._leases.stream_down(self.key) if self._leases is not None else None
        if down is None:
            self.down_since = None
            self.problem = ""
        else:
            self.down_since = time.monotonic() - max(0.0, time.time() - down.since)
            self.problem = f"{down.problem} (on the replica that follows it)"

    async def _stream(self) -> None:
        from armada_client.armada import event_pb2

        failures = 0
        while not self.closed:
            call: Any = None
            delivered = False
            opened = time.monotonic()
            pause = 0.0
            try:
                request = event_pb2.JobSetRequest(
                    queue=self.key[0],
                    id=self.key[1],
                    from_message_id=self.last_message_id,
                    watch=True,
                    errorIfMissing=False,
                )
                call = self._stub.GetJobSetEvents(request)
                self.streams_opened += 1
                self.opened_from.append(self.last_message_id)
                attempt = self.streams_opened
                self._arm(attempt)
                async for message in call:
                    delivered = True
                    self._apply(message)
                    self._working(attempt)
                    self._arm_quiet()
                problem = "Armada ended the event stream"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                problem = describe_failure(exc)
                if status_code(exc) is grpc.StatusCode.NOT_FOUND:
                    # No such queue: nothing to replay, and no job can be in it. Armada
                    # answered, so the stream is not down; look again later.
                    self.caught_up.set()
                    self._working(self.streams_opened)
                    pause = self._policy.wait_max
            finally:
                self._cancel_timers(flush=False)
                if call is not None:
                    call.cancel()
            self.flush()
            if self.closed:
                return
            if not pause:
                self._down(problem)
                healthy = delivered or time.monotonic() - opened >= HEALTHY_STREAM
                failures = 1 if healthy else failures + 1
                pause = self._policy.pause(failures - 1) if failures > 1 else 0.0
                log.warning(
                    "event stream of job set %r in queue %r dropped (%s); reopening in %.1fs",
                    self.key[1],
                    self.key[0],
                    problem,
                    pause,
                )
            await asyncio.sleep(pause)

    def _apply(self, message: event_pb2.EventStreamMessage) -> None:
        self.last_message_id = message.id
        self.messages += 1
        job_id, state = event_state(message.message)
        if state is not None and job_id:
            current = self.jobs.get(job_id)
            if current is None or current.state not in TERMINAL_STATES:
                # (e.g. the failed event after preempted: the job had already ended)
                reason = event_reason(message.message) if state in FAILURE_STATES else ""
                record = JobRecord(job_id, state, reason)
                self.jobs[job_id] = record
                self._pending[job_id] = record
                self.queried.pop(job_id, None)
        if len(self._pending) >= FLUSH_SIZE and not self.store_down:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Write applied changes and the last message id to the store."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._pending and self.last_message_id == self._saved_message_id:
            return
        try:
            self._store.record(self.key, self.last_message_id, list(self._pending.values()))
        except LeaseLostError:  # the new holder resumes from the stored id: drop ours
            self._pending = {}
            self._lease_lost = True
            return
        except Exception as exc:  # the store is down (Redis restarting): keep, write later
            self.store_down = True
            if self._flush_timer is not None:
                self._flush_timer.cancel()
            log.warning(
                "job set %r in queue %r: the store could not be written (%s); retrying in %.1fs",
                self.key[1],
                self.key[0],
                describe_failure(exc),
                FLUSH_RETRY,
            )
            with contextlib.suppress(RuntimeError):  # no running loop: the next flush writes
                loop = asyncio.get_running_loop()
                self._flush_timer = loop.call_later(FLUSH_RETRY, self.flush)
            return
        self._pending = {}
        self._saved_message_id = self.last_message_id
        self.store_down = False

    def _arm(self, attempt: int) -> None:
        loop = asyncio.get_running_loop()
        self._ok_timer = loop.call_later(self._settings.stream_ok_after, self._working, attempt)
        # A stream says nothing of when it has opened: until its first message, only a
        # long silence (empty_replay_wait) means the job set has nothing to replay.
        self._arm_quiet(self._settings.empty_replay_wait)

    def _arm_quiet(self, seconds: float | None = None) -> None:
        if self.caught_up.is_set():
            return
        if self._quiet_timer is not None:
            self._quiet_timer.cancel()
        wait = self._settings.catch_up_quiet if seconds is None else seconds
        self._quiet_timer = asyncio.get_running_loop().call_later(wait, self.caught_up.set)

    def _working(self, attempt: int) -> None:
        if attempt == self.streams_opened and self.down_since is not None:
            self.down_since = None
            self.problem = ""
            self._share_health()

    def _down(self, problem: str) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.problem = f"the event stream of job set {self.key[1]!r} failed: {problem}"
        self._share_health()

    def _share_health(self) -> None:
        """(The lease holder.) Record the stream's health for the passive replicas."""
        if self._leases is None or not self.holding:
            return
        down = None
        if self.down_since is not None:
            since = time.time() - (time.monotonic() - self.down_since)
            down = StreamDown(since, self.problem)
        try:
            self._leases.set_stream_down(self.key, down)
        except Exception as exc:  # the store is down: the passive replicas' reads fail too
            log.warning(
                "job set %r: its stream's health cannot be recorded: %s",
                self.key[1],
                describe_failure(exc),
            )

    def _cancel_timers(self, flush: bool = True) -> None:
        for timer in (self._quiet_timer, self._ok_timer) + ((self._flush_timer,) if flush else ()):
            if timer is not None:
                timer.cancel()
        self._quiet_timer = self._ok_timer = None
        if flush:
            self._flush_timer = None
