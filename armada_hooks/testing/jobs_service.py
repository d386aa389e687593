"""Armada's query API (``api.Jobs``): status, details, runs and errors of ingested jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import grpc
from armada_client.armada import job_pb2, job_pb2_grpc, submit_pb2

from armada_hooks.testing.cluster import POOL
from armada_hooks.testing.core import Core, check_query_size
from armada_hooks.testing.events import job_spec, timestamp
from armada_hooks.testing.records import ACTIVE_RUN_STATES, LEASED_STATES

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from armada_hooks.testing.records import JobRecord, RunRecord

_T = TypeVar("_T")


def run_details(run: RunRecord) -> job_pb2.JobRunDetails:
    """The query API's view of one run."""
    details = job_pb2.JobRunDetails(
        run_id=run.run_id,
        job_id=run.job_id,
        state=run.state,  # type: ignore[arg-type]
        cluster=run.cluster,
        node=run.node,
    )
    for name in ("leased_ts", "pending_ts", "started_ts", "finished_ts"):
        value = getattr(run, name)
        if value is not None:
            getattr(details, name).CopyFrom(timestamp(value))
    return details


def job_details(job: JobRecord, *, expand_runs: bool, expand_spec: bool) -> job_pb2.JobDetails:
    """The query API's view of one job."""
    details = job_pb2.JobDetails(
        job_id=job.job_id,
        state=job.state,
        submitted_ts=timestamp(job.submitted_ts),
        last_transition_ts=timestamp(job.last_transition_ts),
        latest_run_id=job.runs[-1].run_id if job.runs else "",
        queue=job.queue,
        jobset=job.job_set_id,
        namespace=job.namespace,
        cancel_reason=job.cancel_reason,
        cancel_user=job.cancel_user,
    )
    if job.cancel_ts is not None:
        details.cancel_ts.CopyFrom(timestamp(job.cancel_ts))
    if expand_runs:
        details.job_runs.extend(run_details(run) for run in job.runs)
    if expand_spec:
        details.job_spec.CopyFrom(job_spec(job))
    return details


class JobsService(job_pb2_grpc.JobsServicer):
    """``api.Jobs``. A job is invisible here until the server's ingestion delay has passed."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def _per_job(
        self,
        ids: Sequence[str],
        what: str,
        context: grpc.ServicerContext,
        answer: Callable[[JobRecord], _T],
    ) -> dict[str, _T]:
        """``answer`` for each ingested job among ``ids`` (at most 500 of them)."""
        check_query_size(ids, what, context)
        with self.core.store.lock:
            now = self.core.lifecycle.clock.now()
            found = ((job_id, self.core.ingested(job_id, now)) for job_id in ids)
            return {job_id: answer(job) for job_id, job in found if job is not None}

    def GetJobStatus(
        self, request: job_pb2.JobStatusRequest, context: grpc.ServicerContext
    ) -> job_pb2.JobStatusResponse:
        """Every requested id answered; unknown or not-yet-ingested ids are UNKNOWN."""
        states = self._per_job(request.job_ids, "jobIds", context, lambda job: job.state)
        return job_pb2.JobStatusResponse(
            job_states={i: states.get(i, submit_pb2.UNKNOWN) for i in request.job_ids}
        )

    def GetJobStatusUsingExternalJobUri(
        self, request: job_pb2.JobStatusUsingExternalJobUriRequest, context: grpc.ServicerContext
    ) -> job_pb2.JobStatusResponse:
        """Every ingested job of (queue, job set) submitted with this external job URI."""
        if not request.external_job_uri:
            context.abort(grpc.StatusCode.UNKNOWN, "request must contain external job uri")
        key = (request.queue, request.jobset, request.external_job_uri)
        with self.core.store.lock:
            now = self.core.lifecycle.clock.now()
            jobs = [
                self.core.ingested(i, now) for i in self.core.store.by_external_uri.get(key, [])
            ]
            states = {job.job_id: job.state for job in jobs if job is not None}
        return job_pb2.JobStatusResponse(job_states=states)

    def GetJobDetails(
        self, request: job_pb2.JobDetailsRequest, context: grpc.ServicerContext
    ) -> job_pb2.JobDetailsResponse:
        """Details of the ingested jobs among the ids; unknown ids are left out."""
        details = self._per_job(
            request.job_ids,
            "jobIds",
            context,
            lambda job: job_details(
                job, expand_runs=request.expand_job_run, expand_spec=request.expand_job_spec
            ),
        )
        return job_pb2.JobDetailsResponse(job_details=details)

    def GetJobRunDetails(
        self, request: job_pb2.JobRunDetailsRequest, context: grpc.ServicerContext
    ) -> job_pb2.JobRunDetailsResponse:
        """Details of the known runs among the ids; unknown ids are left out."""
        check_query_size(request.run_ids, "RunIds", context)
        with self.core.store.lock:
            now = self.core.lifecycle.clock.now()
            details = {}
            for run_id in request.run_ids:
                job = self.core.store.runs.get(run_id)
                if job is not None and self.core.ingested(job.job_id, now) is not None:
                    run = next(r for r in job.runs if r.run_id == run_id)
                    details[run_id] = run_details(run)
        return job_pb2.JobRunDetailsResponse(job_run_details=details)

    def GetJobErrors(
        self, request: job_pb2.JobErrorsRequest, context: grpc.ServicerContext
    ) -> job_pb2.JobErrorsResponse:
        """The failure reason of each ingested job ('' when it has none)."""
        errors = self._per_job(request.job_ids, "JobIds", context, lambda job: job.reason)
        return job_pb2.JobErrorsResponse(job_errors=errors)

    def GetActiveQueues(
        self, request: job_pb2.GetActiveQueuesRequest, context: grpc.ServicerContext
    ) -> job_pb2.GetActiveQueuesResponse:
        """Per pool, the queues with a leased, pending or running job (queryapi's query.sql)."""
        with self.core.store.lock:
            now = self.core.lifecycle.clock.now()
            queues = sorted(
                {
                    job.queue
                    for job in self.core.store.jobs.values()
                    if job.state in LEASED_STATES
                    and job.latest_run is not None
                    and job.latest_run.state in ACTIVE_RUN_STATES
                    and self.core.ingested(job.job_id, now) is not None
                }
            )
        by_pool = {POOL: job_pb2.ActiveQueues(queues=queues)} if queues else {}
        return job_pb2.GetActiveQueuesResponse(active_queues_by_pool=by_pool)
