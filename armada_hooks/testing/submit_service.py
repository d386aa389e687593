"""Armada's Submit and QueueService: submit with validation and dedup, cancel, preempt, queues."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from armada_client.armada import health_pb2, submit_pb2, submit_pb2_grpc
from google.protobuf import empty_pb2

from armada_hooks.states import ACTIVE_STATES, JobState
from armada_hooks.testing.behaviour import BehaviourError, behaviour_from_annotations
from armada_hooks.testing.records import JobRecord, new_job_id
from armada_hooks.testing.validation import SubmitValidationError, validate_request

if TYPE_CHECKING:
    from collections.abc import Iterator

    from armada_hooks.testing.core import Core

EXTERNAL_JOB_URI_ANNOTATION = "armadaproject.io/externalJobUri"
_LEASED = frozenset({JobState.LEASED, JobState.PENDING, JobState.RUNNING})
_FILTER_STATES: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTED, JobState.QUEUED}),
    JobState.PENDING: _LEASED,
    JobState.RUNNING: _LEASED,
}
SERVING = health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


class QueueOperations:
    """Queue CRUD, served by both ``api.Submit`` (legacy) and ``api.QueueService``."""

    core: Core

    def _queue_error(self, queue: submit_pb2.Queue) -> tuple[grpc.StatusCode, str] | None:
        if not queue.name:
            return grpc.StatusCode.INVALID_ARGUMENT, "queue name is a required field"
        if queue.priority_factor <= 0:
            return (
                grpc.StatusCode.INVALID_ARGUMENT,
                f"queue {queue.name} has priority factor {queue.priority_factor}; it must be > 0",
            )
        return None

    def CreateQueue(
        self, request: submit_pb2.Queue, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Create a queue; ALREADY_EXISTS if it does."""
        error = self._queue_error(request)
        if error:
            context.abort(*error)
        with self.core.store.lock:
            if request.name in self.core.store.queues:
                context.abort(
                    grpc.StatusCode.ALREADY_EXISTS, f'queue "{request.name}" already exists'
                )
            self.core.store.put_queue(request)
        return empty_pb2.Empty()

    def CreateQueues(
        self, request: submit_pb2.QueueList, context: grpc.ServicerContext
    ) -> submit_pb2.BatchQueueCreateResponse:
        """Create several queues; the ones that fail are listed with their error."""
        failed = []
        with self.core.store.lock:
            for queue in request.queues:
                error = self._queue_error(queue)
                if error is None and queue.name in self.core.store.queues:
                    error = (grpc.StatusCode.ALREADY_EXISTS, f'queue "{queue.name}" already exists')
                if error:
                    failed.append(submit_pb2.QueueCreateResponse(queue=queue, error=error[1]))
                else:
                    self.core.store.put_queue(queue)
        return submit_pb2.BatchQueueCreateResponse(failed_queues=failed)

    def UpdateQueue(
        self, request: submit_pb2.Queue, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Replace a queue; NOT_FOUND if it does not exist."""
        error = self._queue_error(request)
        if error:
            context.abort(*error)
        with self.core.store.lock:
            if request.name not in self.core.store.queues:
                context.abort(grpc.StatusCode.NOT_FOUND, f'could not find queue "{request.name}"')
            self.core.store.put_queue(request)
        return empty_pb2.Empty()

    def UpdateQueues(
        self, request: submit_pb2.QueueList, context: grpc.ServicerContext
    ) -> submit_pb2.BatchQueueUpdateResponse:
        """Replace several queues; the ones that fail are listed with their error."""
        failed = []
        with self.core.store.lock:
            for queue in request.queues:
                error = self._queue_error(queue)
                if error is None and queue.name not in self.core.store.queues:
                    error = (grpc.StatusCode.NOT_FOUND, f'could not find queue "{queue.name}"')
                if error:
                    failed.append(submit_pb2.QueueUpdateResponse(queue=queue, error=error[1]))
                else:
                    self.core.store.put_queue(queue)
        return submit_pb2.BatchQueueUpdateResponse(failed_queues=failed)

    def DeleteQueue(
        self, request: submit_pb2.QueueDeleteRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Delete a queue; NOT_FOUND if it does not exist."""
        with self.core.store.lock:
            if request.name not in self.core.store.queues:
                context.abort(grpc.StatusCode.NOT_FOUND, f'could not find queue "{request.name}"')
            self.core.store.delete_queue(request.name)
        return empty_pb2.Empty()

    def GetQueue(
        self, request: submit_pb2.QueueGetRequest, context: grpc.ServicerContext
    ) -> submit_pb2.Queue:
        """One queue; NOT_FOUND if it does not exist."""
        with self.core.store.lock:
            queue = self.core.store.queues.get(request.name)
        if queue is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f'could not find queue "{request.name}"')
        return queue

    def GetQueues(
        self, request: submit_pb2.StreamingQueueGetRequest, context: grpc.ServicerContext
    ) -> Iterator[submit_pb2.StreamingQueueMessage]:
        """Every queue (at most ``num`` if set), then an end marker."""
        with self.core.store.lock:
            queues = sorted(self.core.store.queues.values(), key=lambda q: q.name)
        if request.num:
            queues = queues[: request.num]
        for queue in queues:
            yield submit_pb2.StreamingQueueMessage(queue=queue)
        yield submit_pb2.StreamingQueueMessage(end=submit_pb2.EndMarker())


class QueueService(QueueOperations, submit_pb2_grpc.QueueServiceServicer):
    """``api.QueueService``, the queue API the current ``ArmadaClient`` calls."""

    def __init__(self, core: Core) -> None:
        self.core = core


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
                core.lifecycle.submit(job)
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
            for job_id in ids:
                job = self.core.store.jobs.get(job_id)
                if job and job.queue == request.queue and job.job_set_id == request.job_set_id:
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

    def _in_job_set(self, queue: str, job_set_id: str, job_ids: list[str]) -> list[JobRecord]:
        if not job_ids:
            return list(self.core.store.jobs_in_set(queue, job_set_id))
        found = (self.core.store.jobs.get(i) for i in job_ids)
        return [j for j in found if j and j.queue == queue and j.job_set_id == job_set_id]

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
        """Preempt named running jobs (or a whole job set); per-job error text or ''."""
        job_ids = list(request.job_ids)
        results: dict[str, str] = {}
        with self.core.store.lock:
            self.core.check_queue(request.queue, context)
            found = {
                j.job_id: j for j in self._in_job_set(request.queue, request.job_set_id, job_ids)
            }
            for job_id in job_ids or list(found):
                job = found.get(job_id)
                results[job_id] = (
                    self.core.lifecycle.preempt(job, self.core.settings.user, request.reason)
                    if job
                    else f"job {job_id} not found in job set {request.job_set_id}"
                )
        return submit_pb2.PreemptionResult(preemption_results=results)
