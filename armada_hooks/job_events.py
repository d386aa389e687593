"""What Armada's job events say: the state each event kind puts its job in, and why.

One mapping for every reader of ``GetJobSetEvents`` streams: the event-mode triggers
(:mod:`armada_hooks.triggers.events`), ``armada-hooks jobs`` and the job service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from armada_hooks.states import JobState

if TYPE_CHECKING:
    from armada_client.armada import event_pb2

# The state each event puts its job in; events that are not listed leave it unchanged.
EVENT_STATES: dict[str, JobState] = {
    "submitted": JobState.SUBMITTED,
    "queued": JobState.QUEUED,
    "leased": JobState.LEASED,
    "lease_returned": JobState.QUEUED,
    "lease_expired": JobState.QUEUED,
    "pending": JobState.PENDING,
    "running": JobState.RUNNING,
    "succeeded": JobState.SUCCEEDED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
    "preempted": JobState.PREEMPTED,
}
REJECTED_CAUSE = 4  # api.Cause.Rejected: a failed event that means the job was rejected


def event_state(message: event_pb2.EventMessage) -> tuple[str, JobState | None]:
    """The job id an event is about, and the state it puts the job in (None: unchanged)."""
    kind = message.WhichOneof("events")
    if kind is None:
        return "", None
    body = getattr(message, kind)
    state = EVENT_STATES.get(kind)
    if kind == "failed" and body.cause == REJECTED_CAUSE:
        state = JobState.REJECTED
    return str(getattr(body, "job_id", "")), state


def event_reason(message: event_pb2.EventMessage) -> str:
    """The reason an event gives (failed, cancelled, preempted ...), or ``""``."""
    kind = message.WhichOneof("events")
    if kind is None:
        return ""
    return str(getattr(getattr(message, kind), "reason", "") or "")
