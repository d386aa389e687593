"""Builders for the Armada events the local Armada emits, one per lifecycle transition."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from armada_client.armada import event_pb2, submit_pb2
from google.protobuf.timestamp_pb2 import Timestamp

if TYPE_CHECKING:
    from armada_hooks.testing.records import JobRecord, RunRecord


def timestamp(seconds: float) -> Timestamp:
    """A protobuf Timestamp for epoch ``seconds``."""
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


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


def _ids(job: JobRecord, now: float) -> _Ids:
    return {
        "job_id": job.job_id,
        "job_set_id": job.job_set_id,
        "queue": job.queue,
        "created": timestamp(now),
    }


def _pod(job: JobRecord, run: RunRecord) -> _Pod:
    return {
        "cluster_id": run.cluster,
        "kubernetes_id": run.run_id,
        "pod_number": 0,
        "pod_name": f"armada-{job.job_id}-0",
        "pod_namespace": job.namespace,
    }


def submitted(job: JobRecord, now: float) -> event_pb2.EventMessage:
    """The job was accepted (carries the job spec as Armada's ``Job``)."""
    spec = submit_pb2.Job(
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
    if job.item.HasField("pod_spec"):
        spec.pod_spec.CopyFrom(job.item.pod_spec)
    return event_pb2.EventMessage(submitted=event_pb2.JobSubmittedEvent(**_ids(job, now), job=spec))


def queued(job: JobRecord, now: float) -> event_pb2.EventMessage:
    """The job waits for a lease."""
    return event_pb2.EventMessage(queued=event_pb2.JobQueuedEvent(**_ids(job, now)))


def leased(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """A cluster took the job."""
    return event_pb2.EventMessage(
        leased=event_pb2.JobLeasedEvent(**_ids(job, now), cluster_id=run.cluster, pool="default")
    )


def lease_returned(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """The cluster gave the job back; it is queued again."""
    return event_pb2.EventMessage(
        lease_returned=event_pb2.JobLeaseReturnedEvent(
            **_ids(job, now),
            cluster_id=run.cluster,
            reason="lease returned by the local Armada (armada-hooks/lease-returns)",
            kubernetes_id=run.run_id,
            run_attempted=False,
        )
    )


def pending(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """The pod was created and waits to start."""
    return event_pb2.EventMessage(
        pending=event_pb2.JobPendingEvent(**_ids(job, now), **_pod(job, run), pool="default")
    )


def running(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """The pod's containers started."""
    return event_pb2.EventMessage(
        running=event_pb2.JobRunningEvent(
            **_ids(job, now), **_pod(job, run), node_name=run.node, pool="default"
        )
    )


def succeeded(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """Every container exited 0."""
    return event_pb2.EventMessage(
        succeeded=event_pb2.JobSucceededEvent(
            **_ids(job, now), **_pod(job, run), node_name=run.node
        )
    )


def failed(
    job: JobRecord,
    run: RunRecord | None,
    now: float,
    *,
    cause: event_pb2.Cause.ValueType = event_pb2.Error,
) -> event_pb2.EventMessage:
    """The job failed (``cause=Rejected`` for a job the scheduler rejected)."""
    event = event_pb2.JobFailedEvent(
        **_ids(job, now),
        reason=job.reason,
        cause=cause,
        retryable=False,
    )
    if run is not None:
        pod = _pod(job, run)
        event.cluster_id, event.kubernetes_id = pod["cluster_id"], pod["kubernetes_id"]
        event.pod_name, event.pod_namespace = pod["pod_name"], pod["pod_namespace"]
        event.node_name = run.node
    if job.exit_code is not None:
        event.exit_codes["main"] = job.exit_code
        event.container_statuses.append(
            event_pb2.ContainerStatus(
                name="main",
                exitCode=job.exit_code,
                message=job.reason,
                reason="Error",
                cause=cause,
            )
        )
    return event_pb2.EventMessage(failed=event)


def preempted(
    job: JobRecord, run: RunRecord | None, now: float, requestor: str
) -> event_pb2.EventMessage:
    """The job's run was preempted."""
    return event_pb2.EventMessage(
        preempted=event_pb2.JobPreemptedEvent(
            **_ids(job, now),
            cluster_id=run.cluster if run else "",
            run_id=run.run_id if run else "",
            reason=job.reason,
            requestor=requestor,
        )
    )


def preempting(job: JobRecord, now: float, requestor: str, reason: str) -> event_pb2.EventMessage:
    """A preemption was requested."""
    return event_pb2.EventMessage(
        preempting=event_pb2.JobPreemptingEvent(
            **_ids(job, now), requestor=requestor, reason=reason
        )
    )


def cancelling(job: JobRecord, now: float, requestor: str) -> event_pb2.EventMessage:
    """A cancellation was requested."""
    return event_pb2.EventMessage(
        cancelling=event_pb2.JobCancellingEvent(
            **_ids(job, now), requestor=requestor, reason=job.cancel_reason
        )
    )


def cancelled(job: JobRecord, now: float, requestor: str) -> event_pb2.EventMessage:
    """The job was cancelled."""
    return event_pb2.EventMessage(
        cancelled=event_pb2.JobCancelledEvent(
            **_ids(job, now), requestor=requestor, reason=job.cancel_reason
        )
    )


def reprioritizing(job: JobRecord, now: float, requestor: str) -> event_pb2.EventMessage:
    """A priority change was requested."""
    return event_pb2.EventMessage(
        reprioritizing=event_pb2.JobReprioritizingEvent(
            **_ids(job, now), new_priority=job.priority, requestor=requestor
        )
    )


def reprioritized(job: JobRecord, now: float, requestor: str) -> event_pb2.EventMessage:
    """The job's priority changed."""
    return event_pb2.EventMessage(
        reprioritized=event_pb2.JobReprioritizedEvent(
            **_ids(job, now), new_priority=job.priority, requestor=requestor
        )
    )
