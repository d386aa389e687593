"""The rules of :mod:`armada_hooks.verdicts`: one state in, one verdict out."""

from __future__ import annotations

import pickle

import pytest

from armada_hooks import verdicts
from armada_hooks._compat import AirflowFailException
from armada_hooks.errors import (
    ArmadaJobError,
    ArmadaJobFailedError,
    ArmadaJobLostError,
    ArmadaJobNotFinishedError,
    ArmadaJobRejectedError,
    ArmadaWaitTimeoutError,
)
from armada_hooks.job_description import JobDescription
from armada_hooks.states import ACTIVE_STATES, TERMINAL_STATES, JobState


def described(state: JobState, reason: str = "") -> JobDescription:
    return JobDescription(job_id="job-1", state=state, reason=reason)


# -- completion -------------------------------------------------------------------------


def test_succeeded_is_success() -> None:
    assert verdicts.completion_error(described(JobState.SUCCEEDED)) is None
    assert verdicts.check_success(described(JobState.SUCCEEDED)) is True


def test_rejected_is_fatal_with_armadas_reason() -> None:
    error = verdicts.completion_error(described(JobState.REJECTED, "no node fits"))
    assert isinstance(error, ArmadaJobRejectedError)
    assert isinstance(error, AirflowFailException)  # no retry
    assert str(error) == "Armada rejected job job-1: no node fits"


@pytest.mark.parametrize("state", [JobState.FAILED, JobState.PREEMPTED, JobState.CANCELLED])
def test_failed_preempted_cancelled_are_retryable_with_the_reason(state: JobState) -> None:
    error = verdicts.completion_error(described(state, "OOMKilled"))
    assert isinstance(error, ArmadaJobFailedError)
    assert not isinstance(error, AirflowFailException)
    assert (error.state, error.reason) == (state, "OOMKilled")
    assert str(error) == f"Armada job job-1 ended {state.name}: OOMKilled"
    restored = pickle.loads(pickle.dumps(error))
    assert (type(restored), restored.state, restored.reason) == (type(error), state, "OOMKilled")


@pytest.mark.parametrize("state", sorted(ACTIVE_STATES, key=lambda s: s.value))
def test_an_active_job_has_not_finished(state: JobState) -> None:
    with pytest.raises(ArmadaJobNotFinishedError, match=f"it is {state.name}"):
        verdicts.check_success(described(state))


def test_no_reason_leaves_no_dangling_colon() -> None:
    assert (
        str(verdicts.completion_error(described(JobState.FAILED)))
        == "Armada job job-1 ended FAILED"
    )


# -- waiting for chosen states ------------------------------------------------------------


def test_target_error_only_for_a_job_that_ended_elsewhere() -> None:
    wanted = {JobState.RUNNING}
    assert verdicts.target_error("j", JobState.RUNNING, wanted) is None
    assert verdicts.target_error("j", JobState.QUEUED, wanted) is None
    error = verdicts.target_error("j", JobState.SUCCEEDED, wanted)
    assert isinstance(error, ArmadaJobError)
    assert str(error) == "Armada job j ended SUCCEEDED, so it can never reach ['RUNNING']"


def test_sensor_verdict_waits_succeeds_and_explains() -> None:
    assert verdicts.sensor_verdict(described(JobState.RUNNING), {JobState.RUNNING}) is True
    assert verdicts.sensor_verdict(described(JobState.PENDING), {JobState.SUCCEEDED}) is False
    with pytest.raises(ArmadaJobRejectedError):  # a failure keeps its own error
        verdicts.sensor_verdict(described(JobState.REJECTED), {JobState.SUCCEEDED})
    with pytest.raises(ArmadaJobFailedError, match="ended PREEMPTED: moved"):
        verdicts.sensor_verdict(described(JobState.PREEMPTED, "moved"), {JobState.RUNNING})
    with pytest.raises(ArmadaJobError, match="can never reach"):  # success, but not wanted
        verdicts.sensor_verdict(described(JobState.SUCCEEDED), {JobState.RUNNING})


# -- the one lost-job rule ----------------------------------------------------------------


def test_lost_only_when_unknown_past_the_deadline_counted_from_submission() -> None:
    submitted = 1_000.0
    assert verdicts.ack_deadline(submitted, 300) == 1_300.0
    assert not verdicts.is_lost(JobState.UNKNOWN, submitted, 300, 1_299.9)
    assert verdicts.is_lost(JobState.UNKNOWN, submitted, 300, 1_300.0)
    for state in set(JobState) - {JobState.UNKNOWN}:
        assert not verdicts.is_lost(state, submitted, 300, 1e12)  # acknowledged: never lost


def test_lost_error_says_whether_the_job_was_cancelled() -> None:
    cancelled = verdicts.lost_error("j", 300, cancelled=True)
    assert isinstance(cancelled, ArmadaJobLostError)
    assert (cancelled.job_id, cancelled.state) == ("j", JobState.UNKNOWN)
    assert "still UNKNOWN after 300s" in str(cancelled)
    assert "has been cancelled" in str(cancelled)
    assert "pass queue and job_set_id" in str(verdicts.lost_error("j", 0.5, cancelled=False))


# -- a polled wait ------------------------------------------------------------------------


def test_polled_wait_matches_keeps_waiting_and_refuses_an_impossible_end() -> None:
    wait = verdicts.PolledWait("j", frozenset(TERMINAL_STATES), timeout=300)
    assert wait.judge(JobState.QUEUED, now=0) is False
    assert wait.judge(JobState.SUCCEEDED, now=1) is True
    running = verdicts.PolledWait("j", frozenset({JobState.RUNNING}), timeout=300)
    with pytest.raises(ArmadaJobError, match="can never reach"):
        running.judge(JobState.FAILED, now=0)
    assert running.last is JobState.FAILED
    error = running.gave_up(polls=3)
    assert isinstance(error, ArmadaWaitTimeoutError)
    assert str(error) == "Armada job j is still FAILED after 3 polls; waited for ['RUNNING']"


def test_polled_wait_clock_starts_at_submission_when_known() -> None:
    wait = verdicts.PolledWait(
        "j", frozenset({JobState.SUCCEEDED}), 10, submitted_at=100.0, queue="q", job_set_id="s"
    )
    assert wait.judge(JobState.UNKNOWN, now=109.9) is False
    with pytest.raises(verdicts.JobLost) as caught:
        wait.judge(JobState.UNKNOWN, now=110.0)
    assert caught.value.target == ("q", "s")
    assert "has been cancelled" in str(caught.value.error)


def test_polled_wait_clock_starts_at_the_first_unknown_when_submission_is_unknown() -> None:
    wait = verdicts.PolledWait("j", frozenset({JobState.SUCCEEDED}), 10)
    assert wait.judge(JobState.UNKNOWN, now=500.0) is False  # the clock starts here
    assert wait.judge(JobState.UNKNOWN, now=509.0) is False
    with pytest.raises(verdicts.JobLost) as caught:
        wait.judge(JobState.UNKNOWN, now=510.0)
    assert caught.value.target is None  # no queue and job set: it cannot be cancelled
    assert "pass queue and job_set_id" in str(caught.value.error)
