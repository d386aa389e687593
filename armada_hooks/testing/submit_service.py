"""Armada's Submit service: submit with validation, placement and dedup; cancel; preempt.

Follows ``internal/server/submit/submit.go``; the queue RPCs it also serves are
:mod:`.queue_service`'s.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import grpc
from armada_client.armada import health_pb2, submit_pb2, submit_pb2_grpc
from google.protobuf import empty_pb2

from armada_hooks.states import ACTIVE_STATES, JobState
from armada_hooks.testing import events
from armada_hooks.testing.behaviour import (
    OUTCOME,
    BehaviourError,
    JobBehaviour,
    behaviour_from_annotations,
)
from armada_hooks.testing.cluster import submit_check
from armada_hooks.testing.core import not_found
from armada_hooks.testing.gofmt import go_quote
from armada_hooks.testing.images import start_failure
from armada_hooks.testing.queue_service import (
    API_PREEMPTION_REASON,
    QueueOperations,
    QueueService,
)
from armada_hooks.testing.records import LEASED_STATES, JobRecord, new_job_id
from armada_hooks.testing.validation import (
    SubmitValidationError,
    single_pod_spec,
    validate_request,
)

if TYPE_CHECKING:
    from armada_hooks.testing.core import Core

__all__ = ["SERVING", "QueueService", "SubmitService"]

EXTERNAL_JOB_URI_ANNOTATION = "armadaproject.io/externalJobUri"
_LEASED = frozenset(map(JobState, LEASED_STATES))
_FILTER_STATES: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTED, JobState.QUEUED}),
    JobState.PENDING: _LEASED,
    JobState.RUNNING: _LEASED,
}
SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
MAX_REASON_BYTES = 50  # submit/validation/job_set.go


def place(job: JobRecord, core: Core) -> JobRecord:
    """Put a new job on a simulated node, or script its rejection or failed start.

    Its submission check (cluster.py) and its pod's images (images.py) decide, unless
    an ``armada-hooks/outcome`` annotation scripts the job's end.
    """
    pod = single_pod_spec(job.item)
    placement = submit_check(pod, core.settings.nodes)
    job.node = placement.node or core.settings.nodes[0].name
    if OUTCOME in job.item.annotations:
        return job
    if placement.rejection:
        job.behaviour = _rejected(job.behaviour, placement.rejection)
        return job
    failure = start_failure(pod, events.pod_name(job.job_id))
    if failure is not None:
        job.start_failure, job.pod_created = failure.message, failure.pod_created
    return job


def _rejected(behaviour: JobBehaviour, reason: str) -> JobBehaviour:
    return dataclasses.replace(behaviour, outcome="rejected", failure_reason=reason)


def preemption_reason(reason: str, user: str) -> str:
    """The reason a run preempted by PreemptJobs carries (scheduleringester/instructions.go)."""
    if user and reason:
        return f"Preempted by {user} - {reason}"
    if user:
        return f"Preempted by {user}"
    return reason or API_PREEMPTION_REASON


def check_job_set_request(
    request: submit_pb2.JobPreemptRequest, context: grpc.ServicerContext
) -> None:
    """Armada's checks of a job-set request: reason length, then queue and job set named."""
    field, value, problem = "", "", ""
    reason = request.reason.encode()
    if len(reason) > MAX_REASON_BYTES:
        value = reason[:MAX_REASON_BYTES].decode(errors="ignore") + "..."
        field, problem = "Reason", f"reason cannot be longer than {MAX_REASON_BYTES} bytes"
    elif not request.queue:
        field, problem = "Queue", "queue cannot be empty"
    elif not request.job_set_id:
        field, problem = "JobSetId", "jobset cannot be empty"
    if field:
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"value {go_quote(value)} is invalid for field {go_quote(field)}: {problem}",
        )


class SubmitService(QueueOperations, submit_pb2_grpc.SubmitServicer):
    """``api.Submit``: jobs in and out, and the legacy queue calls."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def Health(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        """Always SERVING while the server runs."""
        return SERVING

    def SubmitJobs(
        self, request: submit_pb2.JobSubmitRequest, context: grpc.ServicerContext
    ) -> submit_pb2.JobSubmitResponse:
        """Validate the whole request, deduplicate by client id, and start each job's life."""
        core = self.core
        with core.store.lock:
            create_queue = request.queue not in core.store.queues
            if create_queue and not (core.settings.auto_create_queues and request.queue):
                core.check_queue(request.queue, context)
            defaults = core.settings.defaults
        try:
            validate_request(request)
            behaviours = [
                behaviour_from_annotations(item.annotations, defaults)
                for item in request.job_request_items
            ]
        except (SubmitValidationError, BehaviourError) as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        items: list[submit_pb2.JobSubmitResponseItem] = []
        with core.store.lock:
            if create_queue and request.queue not in core.store.queues:  # only once it is valid
                core.store.put_queue(submit_pb2.Queue(name=request.queue, priority_factor=1))
            now = core.lifecycle.clock.now()
            fresh: set[str] = set()  # Armada dedups against earlier requests only
            for item, behaviour in zip(request.job_request_items, behaviours, strict=True):
                original = (
                    core.store.by_client_id.get((request.queue, item.client_id))
                    if item.client_id
                    else None
                )
                if original is not None and original not in fresh:
                    items.append(submit_pb2.JobSubmitResponseItem(job_id=original))
                    continue
                job = JobRecord(
                    job_id=new_job_id(),
                    queue=request.queue,
                    job_set_id=request.job_set_id,
                    namespace=item.namespace,
                    owner=core.settings.user,
                    client_id=item.client_id,
                    external_job_uri=item.external_job_uri
                    or item.annotations.get(EXTERNAL_JOB_URI_ANNOTATION, ""),
                    priority=item.priority,
                    item=item,
                    behaviour=behaviour,
                    submitted_ts=now,
                    ingested_ts=float("inf")
                    if behaviour.lost
                    else now + core.settings.ingestion_delay,
                )
                core.lifecycle.submit(place(job, core))
                fresh.add(job.job_id)
                items.append(submit_pb2.JobSubmitResponseItem(job_id=job.job_id))
        return submit_pb2.JobSubmitResponse(job_response_items=items)

    def CancelJobs(
        self, request: submit_pb2.JobCancelRequest, context: grpc.ServicerContext
    ) -> submit_pb2.CancellationResult:
        """Cancel the named jobs of one job set; echoes the unique ids asked for, as Armada does.

        Like Armada, a request naming no job cancels the whole job set and answers ``[""]``.
        """
        ids = list(dict.fromkeys(i for i in [*request.job_ids, request.job_id] if i))
        with self.core.store.lock:
            self.core.check_queue(request.queue, context)
            if not ids:
                jobs = list(self.core.store.jobs_in_set(request.queue, request.job_set_id))
                self._cancel_all(jobs, set(ACTIVE_STATES), request.reason)
                return submit_pb2.CancellationResult(cancelled_ids=[""])
            for job in self._in_job_set(request.queue, request.job_set_id, ids):
                self.core.lifecycle.cancel(job, self.core.settings.user, request.reason)
        return submit_pb2.CancellationResult(cancelled_ids=ids)

    def CancelJobSet(
        self, request: submit_pb2.JobSetCancelRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Cancel a job set's active jobs; ``filter.states`` narrows it as Armada's scheduler does.

        QUEUED selects jobs not yet leased; PENDING or RUNNING selects every leased job.
        """
        states: set[JobState] = set()
        for state in request.filter.states:
            states |= _FILTER_STATES.get(JobState(state), {JobState(state)})
        with self.core.store.lock:
            self.core.check_queue(request.queue, context)
            jobs = list(self.core.store.jobs_in_set(request.queue, request.job_set_id))
            self._cancel_all(jobs, states or set(ACTIVE_STATES), request.reason)
        return empty_pb2.Empty()

    def _cancel_all(self, jobs: list[JobRecord], states: set[JobState], reason: str) -> None:
        for job in jobs:
            if JobState(job.state) in states:
                self.core.lifecycle.cancel(job, self.core.settings.user, reason)

    def _job_in_set(self, job_id: str, queue: str, job_set_id: str) -> JobRecord | None:
        job = self.core.store.jobs.get(job_id)
        return job if job and (job.queue, job.job_set_id) == (queue, job_set_id) else None

    def _in_job_set(self, queue: str, job_set_id: str, job_ids: list[str]) -> list[JobRecord]:
        """The named jobs of the job set (all of its jobs if none is named)."""
        if not job_ids:
            return list(self.core.store.jobs_in_set(queue, job_set_id))
        found = (self._job_in_set(i, queue, job_set_id) for i in job_ids)
        return [job for job in found if job is not None]

    def ReprioritizeJobs(
        self, request: submit_pb2.JobReprioritizeRequest, context: grpc.ServicerContext
    ) -> submit_pb2.JobReprioritizeResponse:
        """Change the priority of named jobs, or of a whole job set.

        Armada applies this asynchronously and answers '' for every id asked about (or one
        ``"all jobs in job set X"`` entry); ended or foreign jobs are silently left alone.
        """
        job_ids = list(request.job_ids)
        with self.core.store.lock:
            self.core.check_queue(request.queue, context)
            for job in self._in_job_set(request.queue, request.job_set_id, job_ids):
                self.core.lifecycle.reprioritize(job, request.new_priority, self.core.settings.user)
        keys = job_ids or [f"all jobs in job set {request.job_set_id}"]
        return submit_pb2.JobReprioritizeResponse(reprioritization_results=dict.fromkeys(keys, ""))

    def PreemptJobs(
        self, request: submit_pb2.JobPreemptRequest, context: grpc.ServicerContext
    ) -> submit_pb2.PreemptionResult:
        """Ask for the named jobs' preemption; '' for every id, as Armada answers.

        Like ``submit.go``, every named id gets a preempting event in the job set, and a
        request naming no job preempts nothing. The scheduler then preempts those of the
        job set that hold a lease and are preemptible (``Core.preempt``).
        """
        check_job_set_request(request, context)
        core = self.core
        with core.store.lock:
            if request.queue not in core.store.queues:  # Armada answers this one as UNKNOWN
                context.abort(grpc.StatusCode.UNKNOWN, not_found(request.queue))
            now = core.lifecycle.clock.now()
            reason = preemption_reason(request.reason, core.settings.user)
            for job_id in request.job_ids:
                job = self._job_in_set(job_id, request.queue, request.job_set_id)
                ref = job or events.JobAddress(job_id, request.queue, request.job_set_id)
                message = events.preempting(ref, now, core.settings.user, request.reason)
                core.store.emit(ref, message, now)
                if job is not None:
                    core.preempt(job, reason)
        return submit_pb2.PreemptionResult(preemption_results=dict.fromkeys(request.job_ids, ""))
