"""Scenarios 8, 9, 16 and 17 of issue 12 through the real scheduler: a worker killed between
submit and record, one task running twice at once, and a user marking failed or clearing a
deferred task. Each asserts the task states and tries, and that Armada has no lost,
duplicate or orphaned job of the run.

A task's processes are found from its task instance: the ``pid`` Airflow records is the
task process's, its parent is the supervisor (a LocalExecutor worker, forked by the
stack's scheduler); only those two are ever signalled, and only after checking that the
supervisor is the stack scheduler's child.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

import pytest

from armada_hooks.operators.armada import default_job_set_id
from armada_hooks.states import ACTIVE_STATES, JobState
from armada_hooks.testing.stack.ledger import jobs_of_run

HEARTBEAT_TIMEOUT = 20  # [scheduler] task_instance_heartbeat_timeout of tests/stack/conftest.py
RETRY_WITHIN = HEARTBEAT_TIMEOUT + 90  # the scheduler fails the try, the retry starts


def parent_pid(pid: int) -> int:
    """The parent of process ``pid`` (from /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def alive(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie counts as exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def task_processes(stack, wait_for, dag_id, run_id):
    """(supervisor pid, task process pid) of the run's first try, once it runs."""

    def running():
        (ti,) = stack.rest.task_instances(dag_id, run_id)
        return ti["state"] == "running" and ti.get("pid") and int(ti["pid"])

    task_pid = wait_for(running, 60, "the task to run with a pid")
    supervisor = parent_pid(task_pid)
    scheduler = stack.processes["scheduler"].pid
    # The supervisor is a LocalExecutor worker, forked by the scheduler into its group; the
    # task process leads a process group of its own.
    assert parent_pid(supervisor) == scheduler, f"pid {supervisor} is not the scheduler's worker"
    assert os.getpgid(supervisor) == scheduler
    assert os.getpgid(task_pid) == task_pid
    return supervisor, task_pid


def of_run(dag_id, run_id):
    """A SubmitJobs request of this run (its job set), not of another DAG's task."""
    return lambda request: request.job_set_id == default_job_set_id(dag_id, run_id)


def ti_of(stack, dag_id, run_id):
    (ti,) = stack.rest.task_instances(dag_id, run_id)
    return ti


def wait_deferred(stack, wait_for, dag_id, run_id, try_number, timeout=60):
    """Wait until try ``try_number`` is deferred and the scheduler has heard its worker end.

    Only then may its job end (the stack fixture's ``executor_reported`` says why).
    """

    def deferred():
        ti = ti_of(stack, dag_id, run_id)
        assert ti["state"] != "failed", f"try {ti['try_number']} failed"
        return ti["try_number"] == try_number and ti["state"] == "deferred" and ti

    task_id = wait_for(deferred, timeout, f"try {try_number} to defer")["task_id"]
    wait_for(
        lambda: stack.executor_reported(dag_id, run_id, task_id, try_number),
        60,
        f"the scheduler to take in the end of try {try_number}'s worker",
    )


@pytest.mark.timeout(480)  # the first test also waits for the stack
def test_8_a_worker_killed_between_submit_and_record_is_retried_and_reattaches(
    stack, run_dag, wait_for, release_file
):
    dag_id = "stack_worker_killed"
    release = release_file
    seen = {}

    def meanwhile(run_id):
        hold = stack.armada.faults.hold(
            "SubmitJobs", after_serving=True, when=of_run(dag_id, run_id)
        )
        try:
            hold.wait_held(timeout=90)  # the job exists; its submitter has not heard so
            (job,) = jobs_of_run(stack.armada, dag_id, run_id)
            seen["job"] = job.job_id
            supervisor, task_pid = task_processes(stack, wait_for, dag_id, run_id)
            for pid in (supervisor, task_pid):
                os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not alive(supervisor) and not alive(task_pid), 30, "both gone")
        finally:
            hold.release()
        submits = stack.armada.rpc_count("SubmitJobs")
        wait_deferred(stack, wait_for, dag_id, run_id, 2, timeout=RETRY_WITHIN)
        seen["retry_submits"] = stack.armada.rpc_count("SubmitJobs") - submits
        release.touch()

    run = run_dag(
        dag_id,
        conf={"release_file": str(release)},
        meanwhile=meanwhile,
        timeout=120,
        timing="8 worker killed between submit and record",
    )
    ledger = run.ledger()
    assert run.state == "success"
    ti = run.ti("worker_killed")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    task = ledger.task("worker_killed")
    assert [j.job_id for j in task.jobs] == [seen["job"]]
    assert task.job_states == [JobState.SUCCEEDED]
    assert f"Reattaching to Armada job {seen['job']}" in run.log("worker_killed", 2)
    assert seen["retry_submits"] == 0  # found by its external job URI, not resubmitted
    ledger.assert_clean()


@pytest.mark.timeout(480)  # the first test also waits for the stack
def test_9_the_orphaned_task_process_and_its_retry_submit_at_once_and_make_one_job(
    stack, run_dag, wait_for, release_file
):
    dag_id = "stack_twice_at_once"
    release = release_file
    seen = {}

    def meanwhile(run_id):
        # Both submissions wait before Armada serves them: the orphan's, then the retry's.
        hold = stack.armada.faults.hold("SubmitJobs", times=2, when=of_run(dag_id, run_id))
        try:
            hold.wait_held(1, timeout=90)
            supervisor, task_pid = task_processes(stack, wait_for, dag_id, run_id)
            seen["orphan"] = task_pid
            os.kill(supervisor, signal.SIGKILL)  # the task process lives on, orphaned
            wait_for(lambda: not alive(supervisor), 30, "the supervisor gone")
            hold.wait_held(2, timeout=RETRY_WITHIN)
            assert ti_of(stack, dag_id, run_id)["try_number"] == 2
            assert alive(task_pid), "the orphaned task process should still be submitting"
        finally:
            hold.release()  # both submissions go on at the same moment
        wait_deferred(stack, wait_for, dag_id, run_id, 2)
        seen["jobs"] = [j.job_id for j in jobs_of_run(stack.armada, dag_id, run_id)]
        release.touch()

    try:
        run = run_dag(
            dag_id,
            conf={"release_file": str(release)},
            meanwhile=meanwhile,
            timeout=120,
            timing="9 a task running twice at once",
        )
        # The orphan hears its job id, then fails to reach its dead supervisor, and exits.
        wait_for(lambda: not alive(seen["orphan"]), 60, "the orphaned task process to exit")
    finally:
        if "orphan" in seen and alive(seen["orphan"]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(seen["orphan"], signal.SIGKILL)
    ledger = run.ledger()
    assert run.state == "success"
    ti = run.ti("twice_at_once")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    task = ledger.task("twice_at_once")
    assert len(seen["jobs"]) == 1
    assert [j.job_id for j in task.jobs] == seen["jobs"]
    # The retry submitted too (nothing to reattach to yet) and got the orphan's job back.
    assert f"Submitted Armada job {seen['jobs'][0]}" in run.log("twice_at_once", 2)
    assert task.job_states == [JobState.SUCCEEDED]
    ledger.assert_clean()


def running_and_deferred(stack, wait_for, dag_id, run_id):
    """The run's one job, once it is RUNNING and its task deferred."""
    job = wait_for(
        lambda: next(
            (j for j in jobs_of_run(stack.armada, dag_id, run_id) if j.state is JobState.RUNNING),
            None,
        ),
        90,
        f"a RUNNING job of {dag_id}",
    )
    wait_for(lambda: ti_of(stack, dag_id, run_id)["state"] == "deferred", 60, "the task to defer")
    # A trigger that no triggerer has started yet has nothing to call on_kill on: Airflow
    # drops it unrun when the task is no longer deferred. Act once it runs (has polled).
    wait_for(stack.triggers_by_triggerer, 60, "a triggerer to take the trigger")
    polls = stack.armada.rpc_count("GetJobStatus")
    wait_for(lambda: stack.armada.rpc_count("GetJobStatus") > polls, 30, "the trigger to poll")
    return job


def test_16_a_deferred_task_marked_failed_cancels_its_job(stack, run_dag, wait_for):
    dag_id = "stack_marked_failed"
    seen = {}

    def meanwhile(run_id):
        seen["job"] = running_and_deferred(stack, wait_for, dag_id, run_id).job_id
        stack.rest.set_task_state(dag_id, run_id, "marked_failed", "failed")

    run = run_dag(dag_id, meanwhile=meanwhile, timing="16 deferred task marked failed")
    job_id = seen["job"]
    # The triggerer calls the trigger's on_kill once it sees the task is no longer deferred.
    wait_for(lambda: stack.armada.job(job_id).state is JobState.CANCELLED, 60, "the job cancelled")
    assert run.state == "failed"
    ti = run.ti("marked_failed")
    assert (ti["state"], ti["try_number"]) == ("failed", 1)  # retries=1 unused
    ledger = run.ledger()
    assert ledger.task("marked_failed").job_states == [JobState.CANCELLED]
    ledger.assert_clean()


def test_17_a_cleared_deferred_task_cancels_its_job_and_runs_one_new_job(
    stack, run_dag, wait_for, release_file
):
    dag_id = "stack_cleared"
    release = release_file
    seen = {"most_active": 0}

    def most_active_until(run_id, done):
        while not done():
            jobs = jobs_of_run(stack.armada, dag_id, run_id)
            active = [j for j in jobs if j.state in ACTIVE_STATES]
            seen["most_active"] = max(seen["most_active"], len(active))
            time.sleep(0.2)

    def meanwhile(run_id):
        seen["job"] = running_and_deferred(stack, wait_for, dag_id, run_id).job_id
        stack.rest.clear_tasks(dag_id, run_id, "cleared")
        most_active_until(run_id, lambda: ti_of(stack, dag_id, run_id)["try_number"] == 2)
        wait_deferred(stack, wait_for, dag_id, run_id, 2)
        release.touch()
        most_active_until(
            run_id,
            lambda: stack.rest.dag_run(dag_id, run_id)["state"] in ("success", "failed"),
        )

    run = run_dag(
        dag_id,
        conf={"release_file": str(release)},
        meanwhile=meanwhile,
        timing="17 deferred task cleared",
    )
    assert run.state == "success"
    ti = run.ti("cleared")
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    ledger = run.ledger()
    task = ledger.task("cleared")
    assert task.job_states == [JobState.CANCELLED, JobState.SUCCEEDED]
    assert task.jobs[0].job_id == seen["job"]
    assert seen["most_active"] == 1  # never two jobs of the task at once
    # Whichever came first, the cleared try's on_kill or the next try's own cancel, the
    # old job was over before the new one was submitted.
    assert re.search(
        rf"Not reattaching to Armada job {seen['job']} \((CANCELLED|RUNNING)",
        run.log("cleared", 2),
    )
    ledger.assert_clean()
