"""The historic job service's vocabulary: its ``JobState`` and how Armada's states fold in.

Armada's old operator documented ``JobState`` (SUBMITTED ... CONNECTION_ERR) for the
answers of ``jobservice.JobService``; :func:`job_state_from_pb` reads a wire value.

:func:`historic_state` is the one mapping from what the job service knows (Armada's own
:class:`~armada_hooks.states.JobState` and how sure it is) to the historic answer:

============================================  ========================================
Armada ``JobState`` (from events or queries)  ``JobServiceResponse.State`` (``error``)
============================================  ========================================
QUEUED, SUBMITTED, LEASED, PENDING            SUBMITTED
RUNNING                                       RUNNING
SUCCEEDED                                     SUCCEEDED
CANCELLED                                     CANCELLED (the cancel reason)
FAILED                                        FAILED (Armada's reason)
REJECTED                                      FAILED (``rejected:`` and the reason)
PREEMPTED                                     FAILED (``preempted:`` and the reason)
not yet known (stream still replaying)        SUBMITTED
unknown to the stream and to the query API    JOB_ID_NOT_FOUND
not ended, stream down past the grace         CONNECTION_ERR (what failed)
============================================  ========================================

DUPLICATE_FOUND is never produced: Armada removed the duplicate-found event, and a
resubmitted ``client_id`` now simply returns the original job id.
"""

from __future__ import annotations

from enum import Enum

from armada_hooks.jobservice.protos import job_states_pb2, jobservice_pb2
from armada_hooks.states import TERMINAL_STATES
from armada_hooks.states import JobState as ArmadaJobState

__all__ = ["JobState", "historic_state", "job_state_from_pb"]

Certainty = job_states_pb2.Certainty
_State = jobservice_pb2.JobServiceResponse.State


class JobState(Enum):
    """A job's state as the historic job service answers it (``JobServiceResponse.State``)."""

    SUBMITTED = 0
    DUPLICATE_FOUND = 1
    RUNNING = 2
    FAILED = 3
    SUCCEEDED = 4
    CANCELLED = 5
    JOB_ID_NOT_FOUND = 6
    CONNECTION_ERR = 7


def job_state_from_pb(state: int) -> JobState:
    """The :class:`JobState` of a ``JobServiceResponse.state`` wire value.

    :raises ValueError: a number the historic API does not define.
    """
    try:
        return JobState(int(state))
    except ValueError:
        raise ValueError(
            f"{state!r} is not a job service state (0..7, SUBMITTED..CONNECTION_ERR)"
        ) from None


_FOLDED: dict[ArmadaJobState, tuple[JobState, str]] = {
    ArmadaJobState.QUEUED: (JobState.SUBMITTED, ""),
    ArmadaJobState.SUBMITTED: (JobState.SUBMITTED, ""),
    ArmadaJobState.LEASED: (JobState.SUBMITTED, ""),
    ArmadaJobState.PENDING: (JobState.SUBMITTED, ""),
    ArmadaJobState.RUNNING: (JobState.RUNNING, ""),
    ArmadaJobState.SUCCEEDED: (JobState.SUCCEEDED, ""),
    ArmadaJobState.CANCELLED: (JobState.CANCELLED, ""),
    ArmadaJobState.FAILED: (JobState.FAILED, ""),
    ArmadaJobState.REJECTED: (JobState.FAILED, "rejected"),
    ArmadaJobState.PREEMPTED: (JobState.FAILED, "preempted"),
}


def historic_state(state: ArmadaJobState, reason: str, certainty: int) -> tuple[JobState, str]:
    """The historic answer (state, ``error`` text) for what the job service knows.

    ``certainty`` is a ``job_states_pb2.Certainty`` value; a terminal state is answered as
    it is whatever the certainty, since it cannot change.
    """
    if state in TERMINAL_STATES or certainty == Certainty.CURRENT:
        if state is ArmadaJobState.UNKNOWN:
            return JobState.SUBMITTED, ""  # the query API has not caught up with a new job
        folded, label = _FOLDED[state]
        if label:
            return folded, f"{label}: {reason}" if reason else label
        return folded, reason
    if certainty == Certainty.STALE:
        return JobState.CONNECTION_ERR, reason
    if certainty == Certainty.NOT_FOUND:
        return JobState.JOB_ID_NOT_FOUND, reason
    return JobState.SUBMITTED, ""  # PENDING_CATCH_UP


def to_pb(state: JobState) -> int:
    """The wire value of a historic state."""
    return _State.Value(state.name)
