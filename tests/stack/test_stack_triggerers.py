"""Scenarios 7 and 6 of issue 12: the triggerer that runs every deferred task is restarted
(SIGTERM, then started again) or killed (SIGKILL), while the jobs run.

To know which process holds the triggers, the other triggerer is stopped while the tasks
defer; in 6 it is started again before the kill, and takes the triggers over once the
killed one's heartbeat is older than ``[triggerer] triggerer_health_check_threshold``.
Each rebuilt trigger waits for the job its task submitted: no task is retried and no job
is submitted twice.
"""

from __future__ import annotations

import re
import time

import pytest

from armada_hooks.states import JobState
from armada_hooks.testing.stack.ledger import jobs_of_run

RESTARTED = 10  # tasks of stack_triggerer_restart
KILLED = 50  # tasks of stack_triggerer_killed
TAKEOVER = 90  # seconds for the other triggerer to take the triggers over


@pytest.fixture
def one_triggerer(stack, wait_for):
    """Only triggerer-1 runs during the test; triggerer-2 is back (and live) afterwards."""
    first, second = stack.processes["triggerer-1"], stack.processes["triggerer-2"]
    second.stop()
    yield first, second
    for process in (first, second):
        if not process.running():
            process.start()
    wait_for(lambda: stack.live_triggerers(within=5) >= 2, 120, "two live triggerers again")


def all_deferred_on_one_triggerer(stack, wait_for, dag_id, run_id, n):
    """Wait until the run's ``n`` tasks are deferred and their triggers assigned; its id."""

    def deferred():
        tis = stack.rest.task_instances(dag_id, run_id)
        return len(tis) == n and all(ti["state"] == "deferred" for ti in tis)

    wait_for(deferred, 180, f"{n} deferred tasks")
    hosts = wait_for(
        lambda: (on := stack.triggers_by_triggerer()) and sum(on.values()) == n and on,
        60,
        "every trigger assigned",
    )
    assert len(hosts) == 1, hosts
    wait_for(
        lambda: (
            [j.state for j in jobs_of_run(stack.armada, dag_id, run_id)] == [JobState.RUNNING] * n
        ),
        30,
        f"{n} RUNNING jobs",
    )
    return next(iter(hosts))


def assert_one_job_per_task(run, n):
    assert run.state == "success"
    assert len(run.tis) == n
    assert {(ti["state"], ti["try_number"]) for ti in run.tis.values()} == {("success", 1)}
    ledger = run.ledger()
    assert all(t.job_states == [JobState.SUCCEEDED] for t in ledger.tasks.values())
    ledger.assert_clean()
    return ledger


@pytest.mark.timeout(420)
def test_7_a_restarted_triggerer_rebuilds_every_trigger_and_no_job_is_resubmitted(
    stack, run_dag, wait_for, one_triggerer, tmp_path
):
    dag_id = "stack_triggerer_restart"
    first, _ = one_triggerer
    release = tmp_path / "release"

    def meanwhile(run_id):
        old = all_deferred_on_one_triggerer(stack, wait_for, dag_id, run_id, RESTARTED)
        submits = stack.armada.rpc_count("SubmitJobs")
        first.stop()  # SIGTERM: the triggerer ends its job and its triggers' runs
        first.start()
        wait_for(
            lambda: (on := stack.triggers_by_triggerer()) and old not in on and on,
            TAKEOVER,
            "the restarted triggerer to take the triggers",
        )
        polls = stack.armada.rpc_count("GetJobStatus")
        wait_for(lambda: stack.armada.rpc_count("GetJobStatus") > polls, 30, "a poll")
        assert stack.armada.rpc_count("SubmitJobs") == submits
        release.touch()

    run = run_dag(
        dag_id,
        conf={"release_file": str(release)},
        timeout=360,
        meanwhile=meanwhile,
        timing=f"7 triggerer restarted ({RESTARTED} deferred tasks)",
    )
    assert_one_job_per_task(run, RESTARTED)


@pytest.mark.timeout(540)
def test_6_a_killed_triggerers_tasks_are_taken_over_and_no_log_line_is_lost(
    stack, run_dag, wait_for, one_triggerer, tmp_path
):
    dag_id = "stack_triggerer_killed"
    first, second = one_triggerer
    release = tmp_path / "release"
    seen = {}

    def meanwhile(run_id):
        killed = all_deferred_on_one_triggerer(stack, wait_for, dag_id, run_id, KILLED)
        second.start()
        wait_for(lambda: len(stack.triggerer_job_ids(within=5)) >= 2, 120, "triggerer-2 up")
        jobs = jobs_of_run(stack.armada, dag_id, run_id)
        wait_for(  # every trigger has streamed some of its job's log
            lambda: all(stack.armada.rpc_counts_by_job("Logs").get(j.job_id) for j in jobs),
            60,
            "a log fetch of every job",
        )
        submits = stack.armada.rpc_count("SubmitJobs")
        first.kill()  # SIGKILL: no clean-up, its job's heartbeat just stops
        killed_at = time.monotonic()
        taker = wait_for(
            lambda: (
                (on := stack.triggers_by_triggerer())
                and killed not in on
                and sum(on.values()) == KILLED
                and on
            ),
            TAKEOVER,
            "triggerer-2 to take every trigger over",
        )
        seen["takeover_seconds"] = time.monotonic() - killed_at
        seen["taker"] = taker
        logs = stack.armada.rpc_count("Logs")
        wait_for(lambda: stack.armada.rpc_count("Logs") > logs + KILLED, 60, "logs fetched again")
        assert stack.armada.rpc_count("SubmitJobs") == submits
        release.touch()

    run = run_dag(
        dag_id,
        conf={"release_file": str(release)},
        timeout=480,
        meanwhile=meanwhile,
        timing=f"6 triggerer killed ({KILLED} deferred tasks streaming logs)",
    )
    ledger = assert_one_job_per_task(run, KILLED)
    assert len(seen["taker"]) == 1

    # Every container line reached its task's log: none lost across the crash.
    replayed = 0
    for task in ledger.tasks.values():
        (job,) = task.jobs
        log = run.log(task.task_id, 1, task.map_index)
        lines = stack.armada.job(job.job_id).log_lines
        assert lines[-1] == "container last line"
        counts = {line: len(re.findall(rf"{re.escape(line)}$", log, re.M)) for line in lines}
        missing = [line for line, n in counts.items() if n == 0]
        assert missing == [], (task.map_index, missing)
        replayed += sum(n - 1 for n in counts.values())
    print(f"takeover after {seen['takeover_seconds']:.1f}s; lines logged twice: {replayed}")
