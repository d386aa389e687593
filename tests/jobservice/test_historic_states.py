"""The historic vocabulary: how Armada's states and the job service's certainty fold in."""

from __future__ import annotations

import pytest

from armada_hooks.jobservice.historic import JobState, historic_state, job_state_from_pb, to_pb
from armada_hooks.jobservice.protos import job_states_pb2, jobservice_pb2
from armada_hooks.states import TERMINAL_STATES
from armada_hooks.states import JobState as Armada

C = job_states_pb2.Certainty


@pytest.mark.parametrize(
    ("armada", "reason", "expected"),
    [
        (Armada.QUEUED, "", (JobState.SUBMITTED, "")),
        (Armada.SUBMITTED, "", (JobState.SUBMITTED, "")),
        (Armada.LEASED, "", (JobState.SUBMITTED, "")),
        (Armada.PENDING, "", (JobState.SUBMITTED, "")),
        (Armada.RUNNING, "", (JobState.RUNNING, "")),
        (Armada.SUCCEEDED, "", (JobState.SUCCEEDED, "")),
        (Armada.CANCELLED, "by user", (JobState.CANCELLED, "by user")),
        (Armada.FAILED, "exit 3", (JobState.FAILED, "exit 3")),
        (Armada.REJECTED, "no node fits", (JobState.FAILED, "rejected: no node fits")),
        (Armada.PREEMPTED, "", (JobState.FAILED, "preempted")),
    ],
)
def test_armada_states_fold_into_the_historic_ones(armada, reason, expected):
    assert historic_state(armada, reason, C.CURRENT) == expected


def test_a_terminal_state_is_answered_as_it_is_even_when_the_stream_is_down():
    for state in TERMINAL_STATES:
        assert historic_state(state, "", C.STALE)[0] is not JobState.CONNECTION_ERR


def test_an_unfinished_job_whose_stream_is_down_past_the_grace_is_a_connection_error():
    assert historic_state(Armada.RUNNING, "stream failed: UNAVAILABLE", C.STALE) == (
        JobState.CONNECTION_ERR,
        "stream failed: UNAVAILABLE",
    )
    assert historic_state(Armada.UNKNOWN, "x", C.STALE)[0] is JobState.CONNECTION_ERR


def test_not_found_only_from_its_certainty_and_not_yet_known_reads_submitted():
    assert historic_state(Armada.UNKNOWN, "", C.NOT_FOUND)[0] is JobState.JOB_ID_NOT_FOUND
    assert historic_state(Armada.UNKNOWN, "", C.PENDING_CATCH_UP)[0] is JobState.SUBMITTED


def test_duplicate_found_is_never_produced():
    produced = {
        historic_state(state, "", certainty)[0] for state in Armada for certainty in C.values()
    }
    assert JobState.DUPLICATE_FOUND not in produced
    assert produced == set(JobState) - {JobState.DUPLICATE_FOUND}


def test_job_state_from_pb_reads_every_wire_value_and_refuses_others():
    for name, number in jobservice_pb2.JobServiceResponse.State.items():
        assert job_state_from_pb(number) is JobState[name]
        assert to_pb(JobState[name]) == number
    with pytest.raises(ValueError, match=r"0\.\.7"):
        job_state_from_pb(8)
