"""Scenario 18 of issue 12: 100 mapped deferred tasks on two triggerers, polled in batches.

Each triggerer's shared poller asks one GetJobStatus per tick for every job it waits on,
so that, with all tasks deferred, Armada sees at most ceil(waiting / 500) status calls
per poll interval from each triggerer. The jobs are real local processes held until the
run's release file appears, so the count is taken while every task waits.
"""

from __future__ import annotations

import math
import time

import pytest

from armada_hooks.defaults import MAX_QUERY_IDS
from armada_hooks.states import JobState
from armada_hooks.testing.stack.ledger import jobs_of_run

MAPPED = 100
POLL_INTERVAL = 2.0  # the DAG's poll_interval
WINDOW_INTERVALS = 5  # poll intervals counted
JITTER_CAP = 0.5  # seconds a tick may come late (triggers/poller.py)


@pytest.mark.timeout(600)
def test_18_a_hundred_mapped_deferred_tasks_share_one_status_rpc_per_interval(
    stack, run_dag, wait_for, release_file
):
    dag_id = "stack_mapped"
    release = release_file
    counted = {}

    def meanwhile(run_id):
        def all_deferred():
            tis = stack.rest.task_instances(dag_id, run_id)
            return len(tis) == MAPPED and all(ti["state"] == "deferred" for ti in tis)

        wait_for(all_deferred, 240, f"{MAPPED} deferred task instances")
        # A task defers right after its submit: its job may still be on its way to RUNNING.
        wait_for(
            lambda: (
                [j.state for j in jobs_of_run(stack.armada, dag_id, run_id)]
                == [JobState.RUNNING] * MAPPED
            ),
            30,
            f"{MAPPED} RUNNING jobs",
        )
        hosts = wait_for(
            lambda: (on := stack.triggers_by_triggerer()) and sum(on.values()) == MAPPED and on,
            60,
            "every trigger to be taken by a triggerer",
        )
        time.sleep(POLL_INTERVAL + JITTER_CAP)  # every trigger past its first poll
        before = stack.armada.rpc_count("GetJobStatus")
        window = WINDOW_INTERVALS * POLL_INTERVAL
        time.sleep(window)
        counted["calls"] = stack.armada.rpc_count("GetJobStatus") - before
        counted["hosts"] = hosts
        counted["ticks_allowed"] = math.ceil(window / POLL_INTERVAL) + 1
        release.touch()

    run = run_dag(
        dag_id,
        conf={"release_file": str(release)},
        timeout=420,
        meanwhile=meanwhile,
        timing=f"18 {MAPPED} mapped deferred tasks",
    )
    assert run.state == "success"
    assert len(run.tis) == MAPPED
    assert {(ti["state"], ti["try_number"]) for ti in run.tis.values()} == {("success", 1)}

    # Both triggerers ran some of the triggers (capacity 60 each), and together polled
    # within ceil(waiting / 500) calls per interval each.
    hosts = counted["hosts"]
    assert len(hosts) == 2, hosts
    assert sum(hosts.values()) == MAPPED
    per_triggerer = math.ceil(max(hosts.values()) / MAX_QUERY_IDS)
    bound = len(hosts) * per_triggerer * counted["ticks_allowed"]
    print(f"GetJobStatus calls in {WINDOW_INTERVALS} intervals: {counted}, bound {bound}")
    assert 0 < counted["calls"] <= bound, counted

    ledger = run.ledger()
    assert all(task.job_states == [JobState.SUCCEEDED] for task in ledger.tasks.values()), (
        ledger.tasks
    )
    ledger.assert_clean()
