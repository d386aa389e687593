"""Builders for the Armada events the local Armada emits, one per lifecycle transition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from armada_client.armada import event_pb2, submit_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from armada_hooks.testing.cluster import POOL

if TYPE_CHECKING:
    from armada_hooks.testing.records import JobRecord, RunRecord


class JobRef(Protocol):
    """What names a job in its job set's event stream."""

    @property
    def job_id(self) -> str:
        """The job's id."""

    @property
    def job_set_id(self) -> str:
        """Its job set."""

    @property
    def queue(self) -> str:
        """Its queue."""


@dataclass(frozen=True)
class JobAddress:
    """A job id in a job set, whether or not the local Armada knows the job."""

    job_id: str
    queue: str
    job_set_id: str


def timestamp(seconds: float) -> Timestamp:
    """A protobuf Timestamp for epoch ``seconds``."""
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def pod_name(job_id: str, pod_number: int = 0) -> str:
    """The Kubernetes pod Armada's executor creates for a job."""
    return f"armada-{job_id}-{pod_number}"


def job_spec(job: JobRecord) -> submit_pb2.Job:
    """The job as Armada's ``Job`` message (submitted events, GetJobDetails' job spec)."""
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
    return spec


def _message(kind: str, ref: JobRef, now: float, /, **fields: Any) -> event_pb2.EventMessage:
    """An EventMessage whose ``kind`` event names the job ``ref`` and carries ``fields``."""
    message = event_pb2.EventMessage()
    event = getattr(message, kind)
    event.SetInParent()
    event.MergeFrom(
        type(event)(
            job_id=ref.job_id,
            job_set_id=ref.job_set_id,
            queue=ref.queue,
            created=timestamp(now),
            **fields,
        )
    )
    return message


def _pod(job: JobRecord, run: RunRecord) -> dict[str, Any]:
    return {
        "cluster_id": run.cluster,
        "kubernetes_id": run.run_id,
        "pod_number": 0,
        "pod_name": pod_name(job.job_id),
        "pod_namespace": job.namespace,
    }


def submitted(job: JobRecord, now: float) -> event_pb2.EventMessage:
    """The job was accepted (carries the job spec as Armada's ``Job``)."""
    return _message("submitted", job, now, job=job_spec(job))


def queued(job: JobRecord, now: float) -> event_pb2.EventMessage:
    """The job waits for a lease."""
    return _message("queued", job, now)


def leased(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """A cluster took the job."""
    return _message("leased", job, now, cluster_id=run.cluster, pool=POOL)


def lease_returned(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """The cluster gave the job back; it is queued again."""
    return _message(
        "lease_returned",
        job,
        now,
        cluster_id=run.cluster,
        reason="lease returned by the local Armada (armada-hooks/lease-returns)",
        kubernetes_id=run.run_id,
        run_attempted=False,
    )


def pending(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """The pod was created and waits to start."""
    return _message("pending", job, now, **_pod(job, run), pool=POOL)


def running(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """The pod's containers started."""
    return _message("running", job, now, **_pod(job, run), node_name=run.node, pool=POOL)


def succeeded(job: JobRecord, run: RunRecord, now: float) -> event_pb2.EventMessage:
    """Every container exited 0."""
    return _message("succeeded", job, now, **_pod(job, run), node_name=run.node)


def failed(
    job: JobRecord,
    run: RunRecord | None,
    now: float,
    *,
    cause: event_pb2.Cause.ValueType = event_pb2.Error,
) -> event_pb2.EventMessage:
    """The job failed (``cause=Rejected`` for a job the scheduler rejected)."""
    fields: dict[str, Any] = {"reason": job.reason, "cause": cause, "retryable": False}
    if run is not None:
        pod = _pod(job, run)
        del pod["pod_number"]
        fields.update(pod, node_name=run.node)
    if job.exit_code is not None:
        fields["exit_codes"] = {"main": job.exit_code}
        fields["container_statuses"] = [
            event_pb2.ContainerStatus(
                name="main",
                exitCode=job.exit_code,
                message=job.reason,
                reason="Error",
                cause=cause,
            )
        ]
    return _message("failed", job, now, **fields)


def preempted(
    job: JobRecord, run: RunRecord | None, now: float, requestor: str
) -> event_pb2.EventMessage:
    """The job's run was preempted."""
    return _message(
        "preempted",
        job,
        now,
        cluster_id=run.cluster if run else "",
        run_id=run.run_id if run else "",
        reason=job.reason,
        requestor=requestor,
    )


def preempting(job: JobRef, now: float, requestor: str, reason: str) -> event_pb2.EventMessage:
    """A preemption was requested (Armada records it for any id the request names)."""
    return _message("preempting", job, now, requestor=requestor, reason=reason)


def cancelling(job: JobRecord, now: float, requestor: str) -> event_pb2.EventMessage:
    """A cancellation was requested."""
    return _message("cancelling", job, now, requestor=requestor, reason=job.cancel_reason)


def cancelled(job: JobRecord, now: float, requestor: str) -> event_pb2.EventMessage:
    """The job was cancelled."""
    return _message("cancelled", job, now, requestor=requestor, reason=job.cancel_reason)


def reprioritizing(job: JobRecord, now: float, requestor: str) -> event_pb2.EventMessage:
    """A priority change was requested."""
    return _message("reprioritizing", job, now, new_priority=job.priority, requestor=requestor)


def reprioritized(job: JobRecord, now: float, requestor: str) -> event_pb2.EventMessage:
    """The job's priority changed."""
    return _message("reprioritized", job, now, new_priority=job.priority, requestor=requestor)
