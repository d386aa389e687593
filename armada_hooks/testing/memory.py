"""An in-memory Armada: the client protocols answered from a dict, with no gRPC at all.

A second, independent implementation of :mod:`armada_hooks.protocols` next to the local
Armada's gRPC server, giving the same answers for the same requests. A job's state is a
pure function of job time since its submission (``(clock() - submitted) * time_scale``),
walked by the same ``armada-hooks/*`` annotations (see :mod:`.behaviour`); only
cancellation changes a job after it is submitted. Inject a fake ``clock`` to drive time
by hand.

>>> armada = InMemoryArmada(queues=["default"])
>>> client = armada.client()  # an ArmadaProtocol; async_client(), log_client() alike
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypedDict

import grpc
from armada_client.armada import event_pb2, health_pb2, job_pb2, submit_pb2
from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from armada_hooks.protocols import ArmadaProtocol, AsyncArmadaProtocol, LogProtocol
from armada_hooks.states import ACTIVE_STATES, JobState, is_terminal
from armada_hooks.testing.behaviour import (
    EXECUTION,
    BehaviourError,
    JobBehaviour,
    behaviour_from_annotations,
)
from armada_hooks.testing.records import new_job_id
from armada_hooks.testing.validation import SubmitValidationError, validate_request
from armada_hooks.timestamps import rfc3339_nano, whole_seconds

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator

    from armada_client import typings

__all__ = [
    "InMemoryArmada",
    "InMemoryArmadaClient",
    "InMemoryAsyncArmadaClient",
    "InMemoryLogClient",
    "InMemoryRpcError",
    "MemoryLogLine",
]

MAX_QUERY_IDS = 500
NODE = "memory-node"
USER = "anonymous"
POLL_SECONDS = 0.05  # real seconds between looks at a watched job set with nothing new
EXTERNAL_URI = "armadaproject.io/externalJobUri"
METHODS = frozenset(n for n in dir(ArmadaProtocol) if not n.startswith("_")) | {"logs"}
SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
# kind of step -> (job state it leads to, run state and run timestamp it sets)
_STATE = {
    "submitted": JobState.QUEUED,
    "leased": JobState.LEASED,
    "lease_returned": JobState.QUEUED,
    "pending": JobState.PENDING,
    "running": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "preempted": JobState.PREEMPTED,
    "rejected": JobState.REJECTED,
}
_RUN = {
    "leased": (job_pb2.RUN_STATE_LEASED, "leased_ts"),
    "lease_returned": (job_pb2.RUNS_STATE_LEASE_RETURNED, "finished_ts"),
    "pending": (job_pb2.RUN_STATE_PENDING, "pending_ts"),
    "running": (job_pb2.RUN_STATE_RUNNING, "started_ts"),
    "succeeded": (job_pb2.RUN_STATE_SUCCEEDED, "finished_ts"),
    "failed": (job_pb2.RUN_STATE_FAILED, "finished_ts"),
    "preempted": (job_pb2.RUN_STATE_PREEMPTED, "finished_ts"),
}
_ACTIVE_RUN = {job_pb2.RUN_STATE_LEASED, job_pb2.RUN_STATE_PENDING, job_pb2.RUN_STATE_RUNNING}
_LEASED = {JobState.LEASED, JobState.PENDING, JobState.RUNNING}
_FILTER = {JobState.QUEUED: {JobState.SUBMITTED, JobState.QUEUED}, JobState.PENDING: _LEASED}
_FILTER[JobState.RUNNING] = _LEASED


class InMemoryRpcError(grpc.RpcError):
    """An RPC failure with ``code()`` and ``details()``, like the errors of a real channel."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        """The status code."""
        return self._code

    def details(self) -> str:
        """The error message."""
        return self._details


@dataclass(frozen=True)
class MemoryLogLine:
    """One log line: RFC3339Nano ``timestamp`` and ``line`` text."""

    timestamp: str
    line: str


@dataclass(frozen=True)
class _Step:
    at: float  # job seconds after submission
    kind: str  # a key of _STATE
    run: int  # index of the run it concerns; -1 for none


def _timeline(b: JobBehaviour) -> tuple[_Step, ...]:
    """Every transition of a job that nobody cancels (none for a lost job)."""
    if b.lost:
        return ()
    if b.outcome == "rejected":
        return _Step(0.0, "submitted", -1), _Step(b.queue_time, "rejected", -1)
    steps, t = [_Step(0.0, "submitted", -1)], 0.0
    for run in range(b.lease_returns + 1):
        t += b.queue_time
        steps.append(_Step(t, "leased", run))
        t += b.lease_time
        if run < b.lease_returns:
            steps.append(_Step(t, "lease_returned", run))
    run = b.lease_returns
    steps += [_Step(t, "pending", run), _Step(t + b.pending_time, "running", run)]
    steps.append(_Step(t + b.pending_time + b.runtime, b.outcome, run))
    return tuple(steps)


def _ts(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


@dataclass
class _Job:
    job_id: str
    queue: str
    job_set_id: str
    item: submit_pb2.JobSubmitRequestItem
    behaviour: JobBehaviour
    submitted: float  # job-time epoch seconds, as are all times below
    steps: tuple[_Step, ...]
    run_ids: tuple[str, ...]
    cancelled: float | None = None
    emitted: int = 0  # steps already written to the job set's event log

    @property
    def external_uri(self) -> str:
        return self.item.external_job_uri or self.item.annotations.get(EXTERNAL_URI, "")

    def happened(self, now: float) -> list[_Step]:
        end = now if self.cancelled is None else min(now, self.cancelled)
        return [s for s in self.steps if self.submitted + s.at <= end]

    def state(self, now: float) -> JobState:
        if self.cancelled is not None:
            return JobState.CANCELLED  # a lost job can be cancelled too, as in Armada
        if self.behaviour.lost:
            return JobState.UNKNOWN
        done = self.happened(now)
        return _STATE[done[-1].kind] if done else JobState.UNKNOWN

    def runs(self, now: float) -> list[job_pb2.JobRunDetails]:
        runs: list[job_pb2.JobRunDetails] = []
        for step in self.happened(now):
            if step.kind == "leased":
                runs.append(
                    job_pb2.JobRunDetails(
                        run_id=self.run_ids[step.run],
                        job_id=self.job_id,
                        cluster=self.behaviour.cluster,
                        node=NODE,
                    )
                )
            if step.kind in _RUN:
                state, stamp = _RUN[step.kind]
                runs[step.run].state = state
                getattr(runs[step.run], stamp).CopyFrom(_ts(self.submitted + step.at))
        if self.cancelled is not None and runs and runs[-1].state in _ACTIVE_RUN:
            runs[-1].state = job_pb2.RUN_STATE_CANCELLED
            runs[-1].finished_ts.CopyFrom(_ts(self.cancelled))
        return runs

    def details(self, now: float) -> job_pb2.JobDetails:
        done = self.happened(now)
        runs = self.runs(now)
        last = self.submitted + (done[-1].at if done else 0.0)
        last = self.cancelled if self.cancelled is not None else last
        details = job_pb2.JobDetails(
            job_id=self.job_id,
            queue=self.queue,
            jobset=self.job_set_id,
            namespace=self.item.namespace,
            state=_wire(self.state(now)),
            submitted_ts=_ts(self.submitted),
            last_transition_ts=_ts(last),
            latest_run_id=runs[-1].run_id if runs else "",
            job_runs=runs,
        )
        if self.cancelled is not None:
            details.cancel_ts.CopyFrom(_ts(self.cancelled))
            details.cancel_user = USER
        return details

    def reason(self, now: float) -> str:
        failed = self.state(now) in (JobState.FAILED, JobState.PREEMPTED, JobState.REJECTED)
        return self.behaviour.reason() if failed else ""


def _wire(state: JobState) -> submit_pb2.JobState.ValueType:
    return submit_pb2.JobState.ValueType(state.value)


class _Ids(TypedDict):
    job_id: str
    job_set_id: str
    queue: str
    created: Timestamp


class _Pod(TypedDict):
    cluster_id: str
    kubernetes_id: str
    pod_number: int
    pod_name: str
    pod_namespace: str


def _events(job: _Job, kind: str, run: int, now: float) -> list[event_pb2.EventMessage]:
    """The events Armada emits when ``job`` takes a step of ``kind`` (or is cancelled)."""
    ids = _Ids(job_id=job.job_id, job_set_id=job.job_set_id, queue=job.queue, created=_ts(now))
    b, run_id = job.behaviour, job.run_ids[run] if run >= 0 else ""
    pod = _Pod(
        cluster_id=b.cluster,
        kubernetes_id=run_id,
        pod_number=0,
        pod_name=f"armada-{job.job_id}-0",
        pod_namespace=job.item.namespace,
    )
    e = event_pb2
    if kind == "submitted":
        spec = submit_pb2.Job(
            id=job.job_id,
            client_id=job.item.client_id,
            job_set_id=job.job_set_id,
            queue=job.queue,
            namespace=job.item.namespace,
            owner=USER,
            priority=job.item.priority,
            annotations=dict(job.item.annotations),
            labels=dict(job.item.labels),
            pod_spec=job.item.pod_spec if job.item.HasField("pod_spec") else None,
        )
        return [
            e.EventMessage(submitted=e.JobSubmittedEvent(**ids, job=spec)),
            e.EventMessage(queued=e.JobQueuedEvent(**ids)),
        ]
    if kind == "leased":
        leased = e.JobLeasedEvent(**ids, cluster_id=b.cluster, pool="default")
        return [e.EventMessage(leased=leased)]
    if kind == "lease_returned":
        returned = e.JobLeaseReturnedEvent(
            **ids, cluster_id=b.cluster, kubernetes_id=run_id, reason="lease returned"
        )
        return [e.EventMessage(lease_returned=returned)]
    if kind == "pending":
        return [e.EventMessage(pending=e.JobPendingEvent(**ids, **pod, pool="default"))]
    if kind == "running":
        running = e.JobRunningEvent(**ids, **pod, node_name=NODE, pool="default")
        return [e.EventMessage(running=running)]
    if kind == "succeeded":
        return [e.EventMessage(succeeded=e.JobSucceededEvent(**ids, **pod, node_name=NODE))]
    if kind == "cancelled":
        return [
            e.EventMessage(cancelling=e.JobCancellingEvent(**ids, requestor=USER)),
            e.EventMessage(cancelled=e.JobCancelledEvent(**ids, requestor=USER)),
        ]
    if kind == "rejected":
        rejected = e.JobFailedEvent(**ids, reason=b.reason(), cause=e.Rejected)
        return [e.EventMessage(failed=rejected)]
    failed = e.JobFailedEvent(**ids, **pod, node_name=NODE, reason=b.reason(), cause=e.Error)
    if kind == "failed":
        failed.exit_codes["main"] = b.exit_code
        failed.container_statuses.add(
            name="main", exitCode=b.exit_code, message=b.reason(), reason="Error", cause=e.Error
        )
        return [e.EventMessage(failed=failed)]
    preempted = e.JobPreemptedEvent(**ids, cluster_id=b.cluster, run_id=run_id, reason=b.reason())
    return [e.EventMessage(preempted=preempted), e.EventMessage(failed=failed)]


@dataclass
class _JobSet:
    jobs: list[_Job] = field(default_factory=list)
    events: list[event_pb2.EventStreamMessage] = field(default_factory=list)


class InMemoryArmada:
    """The shared state of an in-memory Armada: queues, jobs, event logs, faults, counts."""

    def __init__(
        self,
        *,
        queues: Iterable[str] = ("default",),
        time_scale: float = 1.0,
        ingestion_delay: float = 0.0,
        defaults: JobBehaviour | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be > 0, got {time_scale}")
        self.queues = set(queues)
        self.time_scale = time_scale
        self.ingestion_delay = ingestion_delay
        self.defaults = defaults or JobBehaviour()
        self.clock = clock
        self.calls: collections.Counter[str] = collections.Counter()
        self._origin = clock()
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._runs: dict[str, _Job] = {}
        self._job_sets: dict[tuple[str, str], _JobSet] = {}
        self._by_client_id: dict[tuple[str, str], str] = {}
        self._faults: dict[str, collections.deque[grpc.StatusCode]] = {}

    def client(self) -> InMemoryArmadaClient:
        """A synchronous client (:class:`~armada_hooks.protocols.ArmadaProtocol`)."""
        return InMemoryArmadaClient(self)

    def async_client(self) -> InMemoryAsyncArmadaClient:
        """An asyncio client (:class:`~armada_hooks.protocols.AsyncArmadaProtocol`)."""
        return InMemoryAsyncArmadaClient(self)

    def log_client(self) -> InMemoryLogClient:
        """A log client (:class:`~armada_hooks.protocols.LogProtocol`)."""
        return InMemoryLogClient(self)

    def fail_next(self, method: str, code: grpc.StatusCode, times: int = 1) -> None:
        """Make the next ``times`` calls of protocol method ``method`` raise ``code``."""
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; use one of {', '.join(sorted(METHODS))}")
        with self._lock:
            self._faults.setdefault(method, collections.deque()).extend([code] * times)

    def job_state(self, job_id: str) -> JobState:
        """The job's state now, ingested or not (a lost job reads UNKNOWN until cancelled)."""
        with self._lock:
            return self._jobs[job_id].state(self._now())

    # -- internals, called with the lock held -----------------------------

    def _now(self) -> float:
        return self._origin + (self.clock() - self._origin) * self.time_scale

    @contextlib.contextmanager
    def _rpc(self, method: str, queue: str | None = None) -> Iterator[float]:
        """Hold the lock for a call: count it, raise its fault, check ``queue``; yield now."""
        with self._lock:
            self._call(method)
            if queue is not None and queue not in self.queues:
                raise InMemoryRpcError(
                    grpc.StatusCode.PERMISSION_DENIED, f'could not find queue "{queue}"'
                )
            yield self._now()

    def _call(self, method: str) -> None:
        """Count a call and raise the fault scripted for it, if any."""
        self.calls[method] += 1
        faults = self._faults.get(method)
        if faults:
            code = faults.popleft()
            raise InMemoryRpcError(code, f"{method}: {code.name} injected by InMemoryArmada")

    def _ingested(self, job_id: str, now: float) -> _Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.behaviour.lost or now - job.submitted < self.ingestion_delay:
            return None
        return job

    def _found(self, ids: list[str], what: str, now: float) -> list[_Job]:
        """The ingested jobs among ``ids``; Armada's query API refuses more than 500."""
        _check_size(ids, what)
        return [job for job in (self._ingested(i, now) for i in ids) if job is not None]

    def _in_set(self, queue: str, job_set_id: str) -> list[_Job]:
        job_set = self._job_sets.get((queue, job_set_id))
        return job_set.jobs if job_set else []

    def _catch_up(self, job_set: _JobSet, now: float) -> None:
        """Append to the job set's event log every step that has happened since last time."""
        due = []
        for order, job in enumerate(job_set.jobs):
            done = job.happened(now)
            due += [(job.submitted + s.at, order, job, s) for s in done[job.emitted :]]
            job.emitted = max(job.emitted, len(done))
        for at, _, job, step in sorted(due, key=lambda d: d[:2]):  # stable: keeps step order
            for message in _events(job, step.kind, step.run, at):
                self._append(job_set, message)

    def _append(self, job_set: _JobSet, message: event_pb2.EventMessage) -> None:
        seq = str(len(job_set.events) + 1)
        job_set.events.append(event_pb2.EventStreamMessage(id=seq, message=message))

    def _cancel(self, job: _Job, now: float) -> None:
        if is_terminal(job.state(now)):
            return
        job_set = self._job_sets[job.queue, job.job_set_id]
        self._catch_up(job_set, now)
        job.cancelled = now
        for message in _events(job, "cancelled", -1, now):
            self._append(job_set, message)

    def _events_after(
        self, queue: str, job_set_id: str, position: int
    ) -> list[event_pb2.EventStreamMessage]:
        """The job set's events from index ``position`` on (takes the lock)."""
        with self._lock:
            if queue not in self.queues:
                raise InMemoryRpcError(
                    grpc.StatusCode.NOT_FOUND, f"[GetJobSetEvents] Queue {queue} does not exist"
                )
            job_set = self._job_sets.get((queue, job_set_id))
            if job_set is None:
                return []  # reading a job set never creates it
            self._catch_up(job_set, self._now())
            return job_set.events[position:]


def _check_size(ids: list[str], what: str) -> None:
    if len(ids) > MAX_QUERY_IDS:
        raise InMemoryRpcError(
            grpc.StatusCode.UNKNOWN, f"request contained more than {MAX_QUERY_IDS} {what}"
        )


def _position(from_message_id: str | None) -> int:
    """Index of the first event after ``from_message_id`` (ids are "1", "2", ...)."""
    if not from_message_id:
        return 0
    if not from_message_id.isdigit():
        raise InMemoryRpcError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"[GetJobSetEvents] from_message_id {from_message_id!r} is not a message id "
            "this server issued",
        )
    return int(from_message_id)


def _watch(
    armada: InMemoryArmada, queue: str, job_set_id: str, start: str | None, error: Exception | None
) -> Iterator[event_pb2.EventStreamMessage]:
    """Replay then watch a job set, polling; raises ``error`` first, as a failed stream does."""
    if error is not None:
        raise error
    position = _position(start)
    while True:
        batch = armada._events_after(queue, job_set_id, position)
        position += len(batch)
        yield from batch
        if not batch:
            time.sleep(POLL_SECONDS)


async def _awatch(
    armada: InMemoryArmada, queue: str, job_set_id: str, start: str | None, error: Exception | None
) -> AsyncIterator[event_pb2.EventStreamMessage]:
    """:func:`_watch` for asyncio: sleeps without blocking the loop."""
    if error is not None:
        raise error
    position = _position(start)
    while True:
        batch = armada._events_after(queue, job_set_id, position)
        position += len(batch)
        for message in batch:
            yield message
        if not batch:
            await asyncio.sleep(POLL_SECONDS)


class InMemoryArmadaClient:
    """A synchronous Armada client over an :class:`InMemoryArmada` (``ArmadaProtocol``)."""

    def __init__(self, armada: InMemoryArmada) -> None:
        self.armada = armada

    def submit_jobs(
        self, queue: str, job_set_id: str, job_request_items: list[submit_pb2.JobSubmitRequestItem]
    ) -> submit_pb2.JobSubmitResponse:
        """Validate like Armada, deduplicate by client id per queue, and start the jobs."""
        a = self.armada
        request = submit_pb2.JobSubmitRequest(
            queue=queue, job_set_id=job_set_id, job_request_items=job_request_items
        )
        with a._rpc("submit_jobs", queue) as now:
            try:
                validate_request(request)
                items = [
                    (i, behaviour_from_annotations(i.annotations, a.defaults))
                    for i in request.job_request_items
                ]
            except (SubmitValidationError, BehaviourError) as exc:
                raise InMemoryRpcError(grpc.StatusCode.INVALID_ARGUMENT, str(exc)) from None
            if any(b.execution == "subprocess" for _, b in items):
                raise InMemoryRpcError(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"{EXECUTION}=subprocess is not supported by the in-memory Armada",
                )
            job_set = a._job_sets.setdefault((queue, job_set_id), _JobSet())
            fresh: list[str] = []  # Armada dedups against earlier requests only
            ids: list[str] = []
            for item, behaviour in items:
                original = a._by_client_id.get((queue, item.client_id))
                if item.client_id and original is not None and original not in fresh:
                    ids.append(original)
                    continue
                job = _Job(
                    job_id=new_job_id(),
                    queue=queue,
                    job_set_id=job_set_id,
                    item=item,
                    behaviour=behaviour,
                    submitted=now,
                    steps=_timeline(behaviour),
                    run_ids=tuple(str(uuid.uuid4()) for _ in range(behaviour.lease_returns + 1)),
                )
                a._jobs[job.job_id] = job
                a._runs.update(dict.fromkeys(job.run_ids, job))
                if item.client_id:
                    a._by_client_id.setdefault((queue, item.client_id), job.job_id)
                job_set.jobs.append(job)
                fresh.append(job.job_id)
                ids.append(job.job_id)
        return submit_pb2.JobSubmitResponse(
            job_response_items=[submit_pb2.JobSubmitResponseItem(job_id=i) for i in ids]
        )

    def cancel_jobs(
        self, queue: str, job_set_id: str, job_id: str | None = None
    ) -> submit_pb2.CancellationResult:
        """Cancel one job of the job set (the whole job set, answering ``[""]``, if none)."""
        if not queue or not job_set_id:
            raise ValueError("Both queue and job_set_id must be provided.")
        with self.armada._rpc("cancel_jobs", queue) as now:
            for job in self.armada._in_set(queue, job_set_id):
                if not job_id or job.job_id == job_id:
                    self.armada._cancel(job, now)
        return submit_pb2.CancellationResult(cancelled_ids=[job_id or ""])

    def cancel_jobset(
        self, queue: str, job_set_id: str, filter_states: list[typings.JobState]
    ) -> empty_pb2.Empty:
        """Cancel the job set's active jobs; QUEUED, PENDING, RUNNING filter as Armada does."""
        states: set[JobState] = set(ACTIVE_STATES) if not filter_states else set()
        for state in filter_states:
            states |= _FILTER.get(JobState(state), {JobState(state)})
        with self.armada._rpc("cancel_jobset", queue) as now:
            for job in self.armada._in_set(queue, job_set_id):
                if job.state(now) in states:
                    self.armada._cancel(job, now)
        return empty_pb2.Empty()

    def get_job_status(self, job_ids: list[str]) -> job_pb2.JobStatusResponse:
        """Every id answered; unknown, lost and not yet ingested ones are UNKNOWN."""
        with self.armada._rpc("get_job_status") as now:
            found = {j.job_id: j.state(now) for j in self.armada._found(job_ids, "jobIds", now)}
        states = {i: _wire(found.get(i, JobState.UNKNOWN)) for i in job_ids}
        return job_pb2.JobStatusResponse(job_states=states)

    def get_job_status_by_external_job_uri(
        self, queue: str, job_set_id: str, external_job_uri: str
    ) -> job_pb2.JobStatusResponse:
        """States of the ingested jobs of (queue, job set) submitted with this URI."""
        with self.armada._rpc("get_job_status_by_external_job_uri") as now:
            if not external_job_uri:
                raise InMemoryRpcError(
                    grpc.StatusCode.UNKNOWN, "request must contain external job uri"
                )
            jobs = self.armada._in_set(queue, job_set_id)
            states = {
                j.job_id: _wire(j.state(now))
                for j in jobs
                if j.external_uri == external_job_uri and self.armada._ingested(j.job_id, now)
            }
        return job_pb2.JobStatusResponse(job_states=states)

    def get_job_details(self, job_ids: list[str]) -> job_pb2.JobDetailsResponse:
        """Details, with runs, of the ingested jobs among ``job_ids``."""
        with self.armada._rpc("get_job_details") as now:
            details = {j.job_id: j.details(now) for j in self.armada._found(job_ids, "jobIds", now)}
        return job_pb2.JobDetailsResponse(job_details=details)

    def get_job_run_details(self, run_ids: list[str]) -> job_pb2.JobRunDetailsResponse:
        """Details of the runs, of ingested jobs, among ``run_ids``."""
        a = self.armada
        runs: dict[str, job_pb2.JobRunDetails] = {}
        with a._rpc("get_job_run_details") as now:
            _check_size(run_ids, "RunIds")
            for run_id in run_ids:
                job = a._runs.get(run_id)
                if job and a._ingested(job.job_id, now):
                    runs.update((r.run_id, r) for r in job.runs(now) if r.run_id == run_id)
        return job_pb2.JobRunDetailsResponse(job_run_details=runs)

    def get_job_errors(self, job_ids: list[str]) -> job_pb2.JobErrorsResponse:
        """The reason each ingested job failed, was preempted or rejected ('' if none)."""
        with self.armada._rpc("get_job_errors") as now:
            errors = {j.job_id: j.reason(now) for j in self.armada._found(job_ids, "JobIds", now)}
        return job_pb2.JobErrorsResponse(job_errors=errors)

    def get_job_events_stream(
        self, queue: str, job_set_id: str, from_message_id: str | None = None
    ) -> Iterator[event_pb2.EventStreamMessage]:
        """The job set's events after ``from_message_id``, then new ones as they happen.

        As with gRPC, errors surface when the stream is first read; stop reading (or
        ``close()`` the iterator) to end the watch.
        """
        return _watch(self.armada, queue, job_set_id, from_message_id, self._begin_stream())

    def _begin_stream(self) -> InMemoryRpcError | None:
        try:
            with self.armada._rpc("get_job_events_stream"):
                return None
        except InMemoryRpcError as exc:
            return exc

    def submit_health(self) -> health_pb2.HealthCheckResponse:
        """SERVING."""
        with self.armada._rpc("submit_health"):
            return SERVING

    def event_health(self) -> health_pb2.HealthCheckResponse:
        """SERVING."""
        with self.armada._rpc("event_health"):
            return SERVING


class InMemoryAsyncArmadaClient:
    """The asyncio twin of :class:`InMemoryArmadaClient` (``AsyncArmadaProtocol``)."""

    def __init__(self, armada: InMemoryArmada) -> None:
        self.armada = armada
        self._sync = InMemoryArmadaClient(armada)

    async def submit_jobs(
        self, queue: str, job_set_id: str, job_request_items: list[submit_pb2.JobSubmitRequestItem]
    ) -> submit_pb2.JobSubmitResponse:
        """See :meth:`InMemoryArmadaClient.submit_jobs`."""
        return self._sync.submit_jobs(queue, job_set_id, job_request_items)

    async def cancel_jobs(
        self, queue: str, job_set_id: str, job_id: str | None = None
    ) -> submit_pb2.CancellationResult:
        """See :meth:`InMemoryArmadaClient.cancel_jobs`."""
        return self._sync.cancel_jobs(queue, job_set_id, job_id)

    async def cancel_jobset(
        self, queue: str, job_set_id: str, filter_states: list[typings.JobState]
    ) -> empty_pb2.Empty:
        """See :meth:`InMemoryArmadaClient.cancel_jobset`."""
        return self._sync.cancel_jobset(queue, job_set_id, filter_states)

    async def get_job_status(self, job_ids: list[str]) -> job_pb2.JobStatusResponse:
        """See :meth:`InMemoryArmadaClient.get_job_status`."""
        return self._sync.get_job_status(job_ids)

    async def get_job_status_by_external_job_uri(
        self, queue: str, job_set_id: str, external_job_uri: str
    ) -> job_pb2.JobStatusResponse:
        """See :meth:`InMemoryArmadaClient.get_job_status_by_external_job_uri`."""
        return self._sync.get_job_status_by_external_job_uri(queue, job_set_id, external_job_uri)

    async def get_job_details(self, job_ids: list[str]) -> job_pb2.JobDetailsResponse:
        """See :meth:`InMemoryArmadaClient.get_job_details`."""
        return self._sync.get_job_details(job_ids)

    async def get_job_run_details(self, run_ids: list[str]) -> job_pb2.JobRunDetailsResponse:
        """See :meth:`InMemoryArmadaClient.get_job_run_details`."""
        return self._sync.get_job_run_details(run_ids)

    async def get_job_errors(self, job_ids: list[str]) -> job_pb2.JobErrorsResponse:
        """See :meth:`InMemoryArmadaClient.get_job_errors`."""
        return self._sync.get_job_errors(job_ids)

    async def get_job_events_stream(
        self, queue: str, job_set_id: str, from_message_id: str | None = None
    ) -> AsyncIterator[event_pb2.EventStreamMessage]:
        """See :meth:`InMemoryArmadaClient.get_job_events_stream`; waits with asyncio.sleep."""
        error = self._sync._begin_stream()
        return _awatch(self.armada, queue, job_set_id, from_message_id, error)

    async def submit_health(self) -> health_pb2.HealthCheckResponse:
        """SERVING."""
        return self._sync.submit_health()

    async def event_health(self) -> health_pb2.HealthCheckResponse:
        """SERVING."""
        return self._sync.event_health()


class InMemoryLogClient:
    """Binoculars over an :class:`InMemoryArmada` (``LogProtocol``)."""

    def __init__(self, armada: InMemoryArmada) -> None:
        self.armada = armada

    def logs(
        self, job_id: str, since_time: str = "", pod_namespace: str = "default"
    ) -> list[MemoryLogLine]:
        """Lines written so far, stamped at or after ``since_time`` cut to whole seconds.

        NOT_FOUND until the job's pod exists (it reached PENDING), as Kubernetes answers.
        """
        with self.armada._rpc("logs") as now:
            job = self.armada._jobs.get(job_id)
            done = {s.kind: s.at for s in job.happened(now)} if job else {}
            if (
                not job
                or "pending" not in done
                or job.item.namespace != (pod_namespace or "default")
            ):
                raise InMemoryRpcError(
                    grpc.StatusCode.NOT_FOUND, f'pods "armada-{job_id}-0" not found'
                )
            end = now if job.cancelled is None else min(now, job.cancelled)
        lines = job.behaviour.log_text(job_id) if "running" in done else ()
        start, gap = (
            job.submitted + done.get("running", 0.0),
            job.behaviour.runtime / (len(lines) + 1),
        )
        try:
            since = float(whole_seconds(since_time)) if since_time else -math.inf
        except ValueError:
            since = -math.inf  # Binoculars ignores an unparsable since_time
        stamped = [(start + gap * (i + 1), line) for i, line in enumerate(lines)]
        return [MemoryLogLine(rfc3339_nano(t), line) for t, line in stamped if since <= t <= end]


if TYPE_CHECKING:  # mypy --strict proves the clients conform to the protocols
    _armada = InMemoryArmada()
    _sync: ArmadaProtocol = _armada.client()
    _async: AsyncArmadaProtocol = _armada.async_client()
    _logs: LogProtocol = _armada.log_client()
