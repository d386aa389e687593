"""Armada job states, grouped the way the hook, triggers and the local Armada need them.

Armada's ``JobState`` zero value is ``QUEUED``: a status map that is missing a job id
reads as QUEUED, so every consumer must treat an absent id as "not answered", never as
QUEUED.
"""

from __future__ import annotations

from armada_client.typings import JobState

__all__ = [
    "ACTIVE_STATES",
    "FAILURE_STATES",
    "SUCCESS_STATES",
    "TERMINAL_STATES",
    "JobState",
    "is_terminal",
    "state_name",
]

SUCCESS_STATES: frozenset[JobState] = frozenset({JobState.SUCCEEDED})
FAILURE_STATES: frozenset[JobState] = frozenset(
    {JobState.FAILED, JobState.PREEMPTED, JobState.CANCELLED, JobState.REJECTED}
)
TERMINAL_STATES: frozenset[JobState] = SUCCESS_STATES | FAILURE_STATES
ACTIVE_STATES: frozenset[JobState] = frozenset(JobState) - TERMINAL_STATES


def is_terminal(state: JobState | int) -> bool:
    """Whether ``state`` (an enum member or its wire value) ends a job's life."""
    return JobState(state) in TERMINAL_STATES


def state_name(state: JobState | int) -> str:
    """The state's name as Armada spells it (``"SUCCEEDED"``), for messages and logs."""
    return JobState(state).name
