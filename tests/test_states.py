from __future__ import annotations

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


def test_wire_values_match_the_proto_enum() -> None:
    for state in JobState:
        assert submit_pb2.JobState.Value(state.name) == state.value
    assert is_terminal(submit_pb2.REJECTED)
    assert not is_terminal(submit_pb2.UNKNOWN)
    assert state_name(submit_pb2.QUEUED) == "QUEUED"
