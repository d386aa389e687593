from __future__ import annotations

import pytest
from armada_client import typings
from armada_client.armada import submit_pb2

from armada_hooks.states import (
    ACTIVE_STATES,
    FAILURE_STATES,
    SUCCESS_STATES,
    TERMINAL_STATES,
    JobState,
    is_terminal,
    state_name,
)


def test_state_sets_partition_every_armada_state() -> None:
    assert set(JobState) == SUCCESS_STATES | FAILURE_STATES | ACTIVE_STATES
    assert not SUCCESS_STATES & FAILURE_STATES
    assert not TERMINAL_STATES & ACTIVE_STATES


def test_terminal_states_are_armadas_five() -> None:
    assert {s.name for s in TERMINAL_STATES} == {
        "SUCCEEDED",
        "FAILED",
        "PREEMPTED",
        "CANCELLED",
        "REJECTED",
    }


def test_members_are_armada_clients_exactly() -> None:
    assert [(s.name, s.value) for s in JobState] == [(s.name, s.value) for s in typings.JobState]


def test_members_are_the_proto_enum_exactly() -> None:
    # api.JobState in Armada's pkg/api/submit.proto, as armada_client compiled it
    proto = submit_pb2.DESCRIPTOR.enum_types_by_name["JobState"]
    assert [(s.name, s.value) for s in JobState] == [(v.name, v.number) for v in proto.values]


def test_wire_values_and_armada_clients_members_convert() -> None:
    for theirs in typings.JobState:
        assert JobState(theirs) is JobState[theirs.name]
    assert is_terminal(submit_pb2.REJECTED)
    assert not is_terminal(submit_pb2.UNKNOWN)
    assert state_name(submit_pb2.QUEUED) == "QUEUED"


def test_a_foreign_enum_member_is_no_state() -> None:
    with pytest.raises(ValueError, match="is not a valid JobState"):
        JobState(typings.EventType.queued)
