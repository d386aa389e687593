"""The job service's logic, without its gRPC face: followers, answers, sweeps, health.

:class:`JobServiceCore` owns one asyncio channel to Armada (with the service's own
credentials), the callers' permission checks (:mod:`.permissions`), one
:class:`~.follower.JobSetFollower` per job set callers ask about, the batched query API
questions, and a sweep that closes idle streams and purges expired job sets. Everything
runs in one event loop; the store is called from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any, NamedTuple

from armada_hooks.channels import open_aio_channel
from armada_hooks.jobservice.follower import Certainty, JobSetFollower, Known
from armada_hooks.jobservice.permissions import QueueAccess
from armada_hooks.jobservice.queries import JobSetLookups, StatusQueries
from armada_hooks.rpc import RetryPolicy, describe_failure
from armada_hooks.states import JobState

if TYPE_CHECKING:
    from collections.abc import Sequence

    from armada_hooks.channels import ChannelSpec
    from armada_hooks.jobservice.settings import JobServiceSettings
    from armada_hooks.jobservice.store import JobSetKey, JobStateStore

log = logging.getLogger("armada_hooks.jobservice")

RPC_RETRIES = 3


class JobAnswer(NamedTuple):
    """One job's answer: Armada's state, the reason, and how sure it is."""

    queue: str
    job_set_id: str
    job_id: str
    known: Known


class JobServiceCore:
    """Follows job sets for callers and answers what their jobs' states are."""

    def __init__(
        self, armada: ChannelSpec, store: JobStateStore, settings: JobServiceSettings
    ) -> None:
        self.armada = armada
        self.store = store
        self.settings = settings
        wait_max = settings.reconnect_wait_max
        self.policy = RetryPolicy(
            retries=RPC_RETRIES,
            wait_min=min(0.5, wait_max),
            wait_max=wait_max,
            conn_id="job service",
            log=log,
            typed=False,  # the typed errors are Airflow's: the service runs without Airflow
        )
        self.followers: dict[JobSetKey, JobSetFollower] = {}
        self.access = QueueAccess(armada, settings.permission_ttl, settings.rpc_timeout)
        self.armada_reachable: bool | None = None  # None: not asked yet
        self._checked_at = 0.0  # monotonic time of the last Health asked of Armada
        self.purged = 0
        self.idle_closed = 0
        self._channel: Any = None
        self._queries: StatusQueries | None = None
        self._lookups: JobSetLookups | None = None
        self._event_stub: Any = None
        self._submit_stub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._health_changed: list[Any] = []
        self._new_touches: dict[JobSetKey, float] = {}

    @property
    def queries(self) -> StatusQueries:
        """The batched query API questions (available once started)."""
        if self._queries is None:
            raise RuntimeError("the job service has not been started")
        return self._queries

    @property
    def lookups(self) -> JobSetLookups:
        """The batched, remembered job-set lookups of ids named alone (once started)."""
        if self._lookups is None:
            raise RuntimeError("the job service has not been started")
        return self._lookups

    # -- lifetime ----------------------------------------------------------

    async def start(self) -> None:
        """Open the channel, resume the job sets in flight, start the sweep and health."""
        from armada_client.armada import event_pb2_grpc, job_pb2_grpc, submit_pb2_grpc

        self._channel = open_aio_channel(self.armada)
        self._event_stub = event_pb2_grpc.EventStub(self._channel)  # type: ignore[no-untyped-call]
        self._submit_stub = submit_pb2_grpc.SubmitStub(self._channel)  # type: ignore[no-untyped-call]
        jobs_stub = job_pb2_grpc.JobsStub(self._channel)  # type: ignore[no-untyped-call]
        window, timeout = self.settings.query_window, self.settings.rpc_timeout
        self._queries = StatusQueries(jobs_stub, self.policy, window, timeout)
        self._lookups = JobSetLookups(jobs_stub, self.policy, window, timeout)
        await self.check_armada()  # health is known before the first caller asks
        now = time.time()
        for record in self.store.job_sets():
            if not record.all_terminal and now - record.touched < self.settings.idle_timeout:
                self._follower(record.key)  # was followed when the service stopped: resume
        self._save_new_touches()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._sweep_forever(), name="job-service-sweep"),
            loop.create_task(self._health_forever(), name="job-service-health"),
        ]

    async def stop(self) -> None:
        """Close every stream (writing what was applied) and the channel."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for follower in list(self.followers.values()):
            await follower.close()
        self.store.touch_many({key: f.touched_at for key, f in self.followers.items()})
        self.followers.clear()
        await self.access.close()
        if self._channel is not None:
            await self._channel.close()

    def on_health_change(self, callback: Any) -> None:
        """Call ``callback(reachable: bool)`` whenever Armada's reachability changes."""
        self._health_changed.append(callback)

    # -- answers -----------------------------------------------------------

    async def answer(self, jobs: Sequence[tuple[str, str, str]]) -> list[JobAnswer]:
        """The answer for each (queue, job set id, job id), in order."""
        followers: dict[JobSetKey, JobSetFollower] = {}
        for queue, job_set_id, _ in jobs:
            key = (queue, job_set_id)
            if key not in followers:
                followers[key] = follower = self._follower(key)
                follower.touch()
        self._save_new_touches()
        # A job set followed for less than first_answer_wait may still be replaying: wait
        # (that long at most, counted from its start) rather than answer "not known yet".
        now = time.monotonic()
        waits = {
            f: self.settings.first_answer_wait - (now - f.started)
            for f in followers.values()
            if not f.caught_up.is_set()
        }
        if waits and max(waits.values()) > 0:
            tasks = [asyncio.ensure_future(f.caught_up.wait()) for f in waits]
            _, pending = await asyncio.wait(tasks, timeout=max(waits.values()))
            for task in pending:
                task.cancel()
        answers: list[Known | None] = [followers[(q, s)].known(j) for q, s, j in jobs]
        unknown = sorted({jobs[i][2] for i, a in enumerate(answers) if a is None})
        if unknown:
            try:
                states = await self.queries.states(unknown)
            except Exception as exc:
                log.warning("Armada's query API could not be asked: %s", describe_failure(exc))
                states = {}
            for i, answer in enumerate(answers):
                queue, job_set_id, job_id = jobs[i]
                if answer is None and job_id in states:
                    followers[(queue, job_set_id)].take_query(job_id, states[job_id])
            answers = [
                a if a is not None else followers[(q, s)].known(j)
                for a, (q, s, j) in zip(answers, jobs, strict=True)
            ]
        return [
            JobAnswer(q, s, j, a or Known(JobState.UNKNOWN, "", Certainty.PENDING_CATCH_UP))
            for a, (q, s, j) in zip(answers, jobs, strict=True)
        ]

    def _follower(self, key: JobSetKey) -> JobSetFollower:
        follower = self.followers.get(key)
        if follower is None:
            follower = JobSetFollower(key, self.store, self._event_stub, self.settings, self.policy)
            self.followers[key] = follower
            self._new_touches[key] = follower.touch_saved = follower.touched_at
            follower.start()
        return follower

    def _save_new_touches(self) -> None:
        """Store the request times of the job sets just followed, in one write.

        (So that a restart resumes them.)
        """
        touches, self._new_touches = self._new_touches, {}
        self.store.touch_many(touches)

    # -- upkeep ------------------------------------------------------------

    async def sweep(self) -> None:
        """Persist request times, close idle streams, purge expired all-terminal job sets.

        (A purge runs on the loop, after its job set is seen unfollowed there: a request
        that starts following it cannot come in between.)
        """
        now_mono, now = time.monotonic(), time.time()
        touched = {
            key: f.touched_at for key, f in self.followers.items() if f.touched_at > f.touch_saved
        }
        # One write, and (like the read below) in a worker thread: a thousand rows take
        # milliseconds the loop's callers would otherwise wait (SQLite frees the GIL).
        await asyncio.to_thread(self.store.touch_many, touched)
        for key, follower in list(self.followers.items()):
            follower.touch_saved = max(follower.touch_saved, touched.get(key, 0.0))
            if now_mono - follower.touched >= self.settings.idle_timeout:
                del self.followers[key]
                await follower.close()
                self.idle_closed += 1
                log.info("closed the idle event stream of job set %r in queue %r", key[1], key[0])
        for record in await asyncio.to_thread(self.store.job_sets):
            if (
                record.key not in self.followers
                and record.all_terminal
                and now - record.touched >= self.settings.retention
            ):
                self.store.purge(record.key)
                self.purged += 1

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await self.sweep()
            except Exception:
                log.exception("job service sweep failed")

    async def reachable(self) -> bool:
        """Whether Armada answered its Health lately (asked again if the word is stale)."""
        fresh = time.monotonic() - self._checked_at < self.settings.health_interval
        if self.armada_reachable is not None and fresh:
            return self.armada_reachable
        return await self.check_armada()

    async def check_armada(self) -> bool:
        """Ask Armada's Health (with the service's credentials); remember the outcome."""
        from google.protobuf import empty_pb2

        self._checked_at = time.monotonic()
        try:
            await self._submit_stub.Health(
                empty_pb2.Empty(), timeout=min(self.settings.rpc_timeout, 5.0)
            )
            reachable = True
        except Exception as exc:
            if self.armada_reachable is not False:
                log.warning(
                    "Armada at %s cannot be reached: %s", self.armada.target, describe_failure(exc)
                )
            reachable = False
        if reachable != self.armada_reachable:
            self.armada_reachable = reachable
            for callback in self._health_changed:
                await callback(reachable)
        return reachable

    async def _health_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval)
            await self.check_armada()
