"""Scenarios 10-15 of issue 12 through the real scheduler: each asserts the task states and
tries, and that Armada has no lost, duplicate or orphaned job of the run."""

from __future__ import annotations

import pytest

from armada_hooks.states import JobState
from armada_hooks.testing.stack.ledger import jobs_of_run

WRONG_TOKEN_CONN = "armada_wrong_token"  # the second connection of tests/stack/conftest.py


def test_14_a_rejected_spec_and_a_rejected_job_fail_without_retry(stack, run_dag):
    run = run_dag("stack_rejected", timing="14 rejected spec / rejected job")
    ledger = run.ledger()
    assert run.state == "failed"
    for task_id in ("rejected_by_armada", "invalid_spec"):
        ti = run.ti(task_id)
        assert (ti["state"], ti["try_number"]) == ("failed", 1), task_id  # retries=2 unused
    assert ledger.task("rejected_by_armada").job_states == [JobState.REJECTED]
    assert ledger.task("invalid_spec").jobs == []  # Armada refused the request itself
    log = run.log("invalid_spec", 1)
    assert "requests" in log
    assert "limits" in log
    ledger.assert_clean()


def test_15_a_wrong_token_fails_without_retry_naming_the_connection(stack, run_dag):
    run = run_dag("stack_wrong_token", timing="15 wrong token")
    ledger = run.ledger()
    assert run.state == "failed"
    ti = run.ti("wrong_token")
    assert (ti["state"], ti["try_number"]) == ("failed", 1)
    log = run.log("wrong_token", 1)
    assert f"Airflow connection {WRONG_TOKEN_CONN!r}" in log
    assert stack.armada.token not in log
    assert ledger.task("wrong_token").jobs == []
    ledger.assert_clean()


@pytest.fixture
def act_on_running_job(stack, wait_for):
    return lambda dag_id, action: _act_on_running_job(stack, wait_for, dag_id, action)


def _act_on_running_job(stack, wait_for, dag_id, action):
    """``meanwhile``: once the run's first job runs, ``action(client, job)`` from outside."""

    def meanwhile(run_id):
        job = wait_for(
            lambda: next(
                (
                    j
                    for j in jobs_of_run(stack.armada, dag_id, run_id)
                    if j.state is JobState.RUNNING
                ),
                None,
            ),
            90,
            f"a RUNNING job of {dag_id}",
        )
        # Wait until the task is deferred (its trigger polls the job) before acting.
        wait_for(
            lambda: stack.rest.task_instances(dag_id, run_id)[0]["state"] == "deferred",
            60,
            "the task to defer",
        )
        action(stack.armada_client(), job)

    return meanwhile


def test_12_a_job_cancelled_outside_airflow_fails_the_try_and_the_retry_runs_a_new_job(
    stack, run_dag, act_on_running_job
):
    dag_id = "stack_cancelled_outside"
    cancel = act_on_running_job(
        dag_id, lambda client, job: client.cancel_jobs(job.queue, job.job_set_id, job.job_id)
    )
    run = run_dag(dag_id, meanwhile=cancel, timing="12 cancelled outside Airflow")
    ledger = run.ledger()
    assert run.state == "success"
    ti = run.ti("cancelled_outside")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    task = ledger.task("cancelled_outside")
    assert task.job_states == [JobState.CANCELLED, JobState.SUCCEEDED]
    assert task.recorded == [j.job_id for j in task.jobs]
    first_log = run.log("cancelled_outside", 1)
    assert "CANCELLED" in first_log
    ledger.assert_clean()


def test_10_a_preempted_job_fails_the_try_and_the_retry_runs_a_new_job(
    stack, run_dag, act_on_running_job
):
    dag_id = "stack_preempted"
    preempt = act_on_running_job(
        dag_id,
        lambda client, job: client.preempt_jobs(job.queue, job.job_set_id, job.job_id),
    )
    run = run_dag(dag_id, meanwhile=preempt, timing="10 preempted")
    ledger = run.ledger()
    assert run.state == "success"
    ti = run.ti("preempted")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    task = ledger.task("preempted")
    assert task.job_states == [JobState.PREEMPTED, JobState.SUCCEEDED]
    assert "PREEMPTED" in run.log("preempted", 1)
    ledger.assert_clean()


def test_11_a_returned_lease_requeues_the_job_and_the_task_succeeds_in_one_try(stack, run_dag):
    run = run_dag("stack_lease_returned", timing="11 lease returned")
    ledger = run.ledger()
    assert run.state == "success"
    ti = run.ti("lease_returned")
    assert (ti["state"], ti["try_number"]) == ("success", 1)
    (job,) = ledger.task("lease_returned").jobs
    assert job.state is JobState.SUCCEEDED
    assert len(job.run_ids) == 2  # the returned lease's run, then the one that ran
    ledger.assert_clean()


def test_13_a_lost_job_times_out_its_acknowledgement_and_is_cancelled(stack, run_dag):
    run = run_dag("stack_lost", timing="13 lost job")
    ledger = run.ledger()
    assert run.state == "failed"
    ti = run.ti("lost")
    assert (ti["state"], ti["try_number"]) == ("failed", 1)
    (job,) = ledger.task("lost").jobs
    assert job.state is JobState.CANCELLED  # no twin can be left running behind a retry
    log = run.log("lost", 1)
    assert "never acknowledged" in log
    assert "cancelled" in log
    ledger.assert_clean()
