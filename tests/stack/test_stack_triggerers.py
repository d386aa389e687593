"""Scenarios 7 and 6 of issue 12: the triggerer that runs every deferred task is restarted
(SIGTERM, then started again) or killed (SIGKILL), while the jobs run.

To know which process holds the triggers, the other triggerer is stopped while the tasks
defer; in 6 it is started again before the kill, and takes the triggers over once the
killed one's heartbeat is older than ``[triggerer] triggerer_health_check_threshold``.
Each rebuilt trigger waits for the job its task submitted: no task is retried and no job
is submitted twice. In 6 each rebuilt trigger resumes its job's container log from the
position its task's XCom holds, and marks the lines that may repeat.
"""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

from armada_hooks.defaults import LOG_POSITION_XCOM_KEY
from armada_hooks.states import JobState
from armada_hooks.testing.stack.ledger import jobs_of_run
from armada_hooks.testing.stack.rest import AirflowRestError

RESTARTED = 10  # tasks of stack_triggerer_restart
KILLED = 50  # tasks of stack_triggerer_killed
TAKEOVER = 90  # seconds for the other triggerer to take the triggers over
RESUMED = re.compile(
    r"Container log of Armada job (\S+) resumes after a triggerer restart, "
    r"(?:after line (\d+)|from its first line)"
    r"(?:: lines (\d+) to (\d+) below may already appear above|; no line repeats)"
)


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
        try:
            tis = stack.rest.task_instances(dag_id, run_id)
        except httpx.TimeoutException:  # an API server slow to answer on a loaded host
            return False
        return len(tis) == n and all(ti["state"] == "deferred" for ti in tis)

    wait_for(deferred, 420, f"{n} deferred tasks")  # 50 LocalExecutor tasks on a loaded host
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
    stack, run_dag, wait_for, one_triggerer, release_file
):
    dag_id = "stack_triggerer_restart"
    first, _ = one_triggerer
    release = release_file

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


@pytest.mark.timeout(1080)
def test_6_a_killed_triggerers_tasks_are_taken_over_and_no_log_line_is_lost(
    stack, run_dag, wait_for, one_triggerer, release_file
):
    dag_id = "stack_triggerer_killed"
    first, second = one_triggerer
    release = release_file
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
        # ... and stored a position past its first lines in its task's XCom, so that the
        # rebuilt triggers resume in the middle of their logs, not from the start
        wait_for(
            lambda: all(
                (stored_position(stack, dag_id, run_id, i) or {}).get("lines", 0) > 0
                for i in range(KILLED)
            ),
            90,
            "a stored log position of every task",
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
        timeout=960,
        meanwhile=meanwhile,
        timing=f"6 triggerer killed ({KILLED} deferred tasks streaming logs)",
    )
    ledger = assert_one_job_per_task(run, KILLED)
    assert len(seen["taker"]) == 1

    # Every container line reached its task's log, none lost across the crash; each appears
    # exactly once but for the lines the rebuilt trigger marked as ones that may repeat.
    replayed = marked = 0
    for task in ledger.tasks.values():
        (job,) = task.jobs
        log = run.log(task.task_id, 1, task.map_index)
        lines = list(stack.armada.job(job.job_id).log_lines)
        assert lines[-1] == "container last line"
        (resume,) = RESUMED.findall(log)  # one takeover, said once
        assert resume[0] == job.job_id
        first, last = (int(resume[2]), int(resume[3])) if resume[2] else (0, -1)
        assert first == int(resume[1] or 0) + 1 or not resume[2]
        counts = [len(re.findall(rf"{re.escape(line)}$", log, re.M)) for line in lines]
        assert [i + 1 for i, n in enumerate(counts) if n == 0] == [], task.map_index
        repeated = [i + 1 for i, n in enumerate(counts) if n > 1]
        assert all(first <= i <= last and counts[i - 1] == 2 for i in repeated), (
            task.map_index,
            resume,
            repeated,
        )
        if resume[2]:
            assert f"End of the {last - first + 1} container lines of Armada job" in log
        replayed += len(repeated)
        marked += max(0, last - first + 1)
    print(
        f"takeover after {seen['takeover_seconds']:.1f}s; lines logged twice: {replayed}, "
        f"all within the {marked} lines marked as ones that may repeat"
    )


def stored_position(stack, dag_id, run_id, map_index):
    """The log position task ``streaming[map_index]`` stored in its XCom (None if none)."""
    try:
        value = stack.rest.xcom(dag_id, run_id, "streaming", LOG_POSITION_XCOM_KEY, map_index)
    except (AirflowRestError, httpx.TimeoutException):  # none yet, or a slow API server
        return None
    return json.loads(value) if isinstance(value, str) else value
