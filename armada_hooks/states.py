"""Armada job states, grouped the way the hook, triggers and the local Armada need them.

Armada's ``JobState`` zero value is ``QUEUED``: a status map that is missing a job id
reads as QUEUED, so every consumer must treat an absent id as "not answered", never as
QUEUED.

``JobState`` is our own copy of Armada's ``api.JobState`` (``pkg/api/submit.proto``),
with the names and numbers of ``armada_client.typings.JobState``: importing that one
loads Armada's protobuf modules, and DAG parsing imports this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Protocol

__all__ = [
    "ACTIVE_STATES",
    "FAILURE_STATES",
    "INTERMEDIATE_STATES",
    "RUNNING_STATES",
    "SUCCESS_STATES",
    "TERMINAL_STATES",
    "JobState",
    "is_terminal",
    "state_name",
    "states_from_answers",
]


class JobState(Enum):
    """An Armada job's state; ``value`` is its number on the wire (``api.JobState``).

    Where ``armada_client`` takes states (``cancel_jobset``'s ``filter_states``) it reads
    only ``.value``, so these members serve there. ``JobState(x)`` also accepts
    ``armada_client.typings.JobState`` members, by name and number.
    """

    QUEUED = 0
    PENDING = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    UNKNOWN = 5
    SUBMITTED = 6
    LEASED = 7
    PREEMPTED = 8
    CANCELLED = 9
    REJECTED = 10

    @classmethod
    def _missing_(cls, value: object) -> JobState | None:
        if isinstance(value, Enum):  # armada_client's twin: same name, same number
            member = cls.__members__.get(value.name)
            if member is not None and member.value == value.value:
                return member
        return None


SUCCESS_STATES: frozenset[JobState] = frozenset({JobState.SUCCEEDED})
FAILURE_STATES: frozenset[JobState] = frozenset(
    {JobState.FAILED, JobState.PREEMPTED, JobState.CANCELLED, JobState.REJECTED}
)
TERMINAL_STATES: frozenset[JobState] = SUCCESS_STATES | FAILURE_STATES
ACTIVE_STATES: frozenset[JobState] = frozenset(JobState) - TERMINAL_STATES
RUNNING_STATES: frozenset[JobState] = frozenset({JobState.RUNNING}) | TERMINAL_STATES  # ran
INTERMEDIATE_STATES: frozenset[JobState] = ACTIVE_STATES - {JobState.RUNNING}


def is_terminal(state: JobState | int) -> bool:
    """Whether ``state`` (an enum member or its wire value) ends a job's life."""
    return JobState(state) in TERMINAL_STATES


def states_from_answers(
    ids: Iterable[str], answers: Iterable[_StatusAnswer]
) -> dict[str, JobState]:
    """Each id's state in GetJobStatus answers; an id no answer has reads UNKNOWN.

    (The zero value is QUEUED, so a missing id must not be read as a state.)
    """
    known = {k: v for answer in answers for k, v in answer.job_states.items()}
    return {i: JobState(known[i]) if i in known else JobState.UNKNOWN for i in ids}


class _StatusAnswer(Protocol):
    @property
    def job_states(self) -> Mapping[str, int]: ...


def state_name(state: JobState | int) -> str:
    """The state's name as Armada spells it (``"SUCCEEDED"``), for messages and logs."""
    return JobState(state).name
