"""``JobDescription``: one immutable snapshot of an Armada job, as the query API tells it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from armada_hooks.states import FAILURE_STATES, SUCCESS_STATES, TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from armada_client.armada import job_pb2
    from google.protobuf.timestamp_pb2 import Timestamp


def proto_time(message: Any, field: str) -> datetime | None:
    """``message.field`` (a protobuf ``Timestamp``) as an aware UTC datetime; None if unset."""
    if not message.HasField(field):
        return None
    ts: Timestamp = getattr(message, field)
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=UTC)


@dataclass(frozen=True)
class JobDescription:
    """State, placement, timing and failure reason of one job (UNKNOWN until ingested)."""

    job_id: str
    state: JobState
    queue: str = ""
    job_set_id: str = ""
    namespace: str = ""
    cluster: str = ""
    node: str = ""
    run_ids: tuple[str, ...] = ()
    latest_run_id: str = ""
    submitted_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_transition_at: datetime | None = None
    reason: str = ""
    cancel_reason: str = ""

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended."""
        return self.state in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        """Whether the job ended SUCCEEDED."""
        return self.state in SUCCESS_STATES

    @property
    def failed(self) -> bool:
        """Whether the job ended FAILED, PREEMPTED, CANCELLED or REJECTED."""
        return self.state in FAILURE_STATES

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready values (for XCom and trigger events)."""
        return {
            "job_id": self.job_id,
            "state": self.state.name,
            "queue": self.queue,
            "job_set_id": self.job_set_id,
            "namespace": self.namespace,
            "cluster": self.cluster,
            "node": self.node,
            "run_ids": list(self.run_ids),
            "latest_run_id": self.latest_run_id,
            "submitted_at": self.submitted_at.isoformat() if self.submitted_at else None,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "last_transition_at": (
                self.last_transition_at.isoformat() if self.last_transition_at else None
            ),
            "reason": self.reason,
            "cancel_reason": self.cancel_reason,
        }


def parse_job_details(details: job_pb2.JobDetails, reason: str = "") -> JobDescription:
    """A :class:`JobDescription` from the query API's ``JobDetails`` (with runs expanded)."""
    latest = next((r for r in details.job_runs if r.run_id == details.latest_run_id), None)
    if latest is None and len(details.job_runs) > 0:
        latest = details.job_runs[-1]
    return JobDescription(
        job_id=details.job_id,
        state=JobState(details.state),
        queue=details.queue,
        job_set_id=details.jobset,
        namespace=details.namespace,
        cluster=latest.cluster if latest else "",
        node=latest.node if latest else "",
        run_ids=tuple(r.run_id for r in details.job_runs),
        latest_run_id=details.latest_run_id,
        submitted_at=proto_time(details, "submitted_ts"),
        started_at=proto_time(latest, "started_ts") if latest else None,
        finished_at=proto_time(latest, "finished_ts") if latest else None,
        last_transition_at=proto_time(details, "last_transition_ts"),
        reason=reason,
        cancel_reason=details.cancel_reason,
    )


def failed_job_ids(ids: Iterable[str], details: Iterable[job_pb2.JobDetailsResponse]) -> list[str]:
    """The ids whose jobs ended in a failure state (GetJobErrors has their reasons)."""
    known = {k: v.state for response in details for k, v in response.job_details.items()}
    return [j for j in ids if j in known and JobState(known[j]) in FAILURE_STATES]


def describe_jobs(
    ids: Iterable[str],
    details: Iterable[job_pb2.JobDetailsResponse],
    errors: Iterable[job_pb2.JobErrorsResponse] = (),
) -> dict[str, JobDescription]:
    """A description per id from GetJobDetails and GetJobErrors answers (UNKNOWN if absent)."""
    found = {k: v for response in details for k, v in response.job_details.items()}
    reasons = {k: v for response in errors for k, v in response.job_errors.items()}
    return {
        j: parse_job_details(found[j], reasons.get(j, ""))
        if j in found
        else JobDescription(job_id=j, state=JobState.UNKNOWN)
        for j in ids
    }


def oldest_first(ids: Iterable[str], details: Iterable[job_pb2.JobDetailsResponse]) -> list[str]:
    """``ids`` in the order their jobs were submitted (ids without details first)."""
    stamps = {
        k: v.submitted_ts.ToNanoseconds()
        for response in details
        for k, v in response.job_details.items()
    }
    return sorted(ids, key=lambda i: (stamps.get(i, -1), i))
