"""Armada's query API (``api.Jobs``): status, details, runs and errors of ingested jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from armada_client.armada import job_pb2, job_pb2_grpc, submit_pb2

from armada_hooks.testing.core import Core, check_query_size
from armada_hooks.testing.events import timestamp

if TYPE_CHECKING:
    from armada_hooks.testing.records import JobRecord, RunRecord


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
        queue=job.queue,
        jobset=job.job_set_id,
        namespace=job.namespace,
        state=job.state,
        cancel_reason=job.cancel_reason,
        cancel_user=job.cancel_user,
        latest_run_id=job.runs[-1].run_id if job.runs else "",
        submitted_ts=timestamp(job.submitted_ts),
        last_transition_ts=timestamp(job.last_transition_ts),
    )
    if job.cancel_ts is not None:
        details.cancel_ts.CopyFrom(timestamp(job.cancel_ts))
    if expand_runs:
        details.job_runs.extend(run_details(run) for run in job.runs)
    if expand_spec:
        details.job_spec.CopyFrom(
            submit_pb2.Job(
                id=job.job_id,
                client_id=job.client_id,
                job_set_id=job.job_set_id,
                queue=job.queue,
                namespace=job.namespace,
                owner=job.owner,
                priority=job.priority,
                annotations=dict(job.item.annotations),
                labels=dict(job.item.labels),
            )
        )
        if job.item.HasField("pod_spec"):
            details.job_spec.pod_spec.CopyFrom(job.item.pod_spec)
    return details


class JobsService(job_pb2_grpc.JobsServicer):
    """``api.Jobs``. A job is invisible here until the server's ingestion delay has passed."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def GetJobStatus(
        self, request: job_pb2.JobStatusRequest, context: grpc.ServicerContext
    ) -> job_pb2.JobStatusResponse:
        """Every requested id answered; unknown or not-yet-ingested ids are UNKNOWN."""
        check_query_size(request.job_ids, "jobIds", context)
        unknown = submit_pb2.UNKNOWN
        with self.core.store.lock:
            now = self.core.lifecycle.clock.now()
            states = {}
            for job_id in request.job_ids:
                job = self.core.ingested(job_id, now)
                states[job_id] = job.state if job is not None else unknown
        return job_pb2.JobStatusResponse(job_states=states)

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
        check_query_size(request.job_ids, "jobIds", context)
        with self.core.store.lock:
            now = self.core.lifecycle.clock.now()
            details = {}
            for job_id in request.job_ids:
                job = self.core.ingested(job_id, now)
                if job is not None:
                    details[job_id] = job_details(
                        job, expand_runs=request.expand_job_run, expand_spec=request.expand_job_spec
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
        check_query_size(request.job_ids, "JobIds", context)
        with self.core.store.lock:
            now = self.core.lifecycle.clock.now()
            errors = {}
            for job_id in request.job_ids:
                job = self.core.ingested(job_id, now)
                if job is not None:
                    errors[job_id] = job.reason
        return job_pb2.JobErrorsResponse(job_errors=errors)
