"""Scenarios 1-5 of issue 12 through the real scheduler: RPC faults, a dropped event
stream and a restarted local Armada.

Scenarios 1-3 fault every RPC, so each runs alone on the session's stack: the faults are
switched on just before its DAG run and cleared after it (pytest runs one test at a time,
and every earlier run has finished). Each asserts the task states and tries, that every
container log line reached its task's log once, and that Armada has no lost, duplicate or
orphaned job of the run.
"""

from __future__ import annotations

from itertools import chain, repeat

import grpc
import pytest
from armada_client.armada import submit_pb2

from armada_hooks.states import JobState
from armada_hooks.testing.stack.ledger import jobs_of_run

UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
RESOURCE_EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
SLOW = 3.0  # seconds: past the 2 s rpc_timeout of armada_short_deadline
HELD_QUEUE = "cordoned"  # scenario 5's queue (tests/stack/dags/stack_faults.py)
FAULTED_TASKS = ("deferred", "synchronous")


@pytest.fixture
def faults(stack):
    """The local Armada's faults, cleared before and after the test."""
    stack.armada.faults.clear()
    yield stack.armada.faults
    stack.armada.faults.clear()


def deferral_reported(stack, dag_id, run_id, task_id):
    """Whether the scheduler has heard the executor report the end of the task's deferring
    try 1 (its worker's exit). A trigger that fires before that meets an Airflow 3.3.2 race:
    the report, drained after the task was queued again, fails it ("state mismatch")."""
    key = (
        f"TaskInstanceKey(dag_id='{dag_id}', task_id='{task_id}', run_id='{run_id}', try_number=1,"
    )
    log = stack.processes["scheduler"].log_path.read_text(errors="replace")
    return any(
        key in line and "Received executor event with state success" in line
        for line in log.splitlines()
    )


def pattern(*outcomes, calls=5000):
    """``outcomes`` over and over, for the next ``calls`` calls."""
    return list(chain.from_iterable(repeat(outcomes, calls // len(outcomes) + 1)))[:calls]


def assert_each_task_succeeded_once_despite(run, code_name):
    """Both tasks succeeded on try 1 with one job; the fault reached the hook and was
    retried; every container line is in the task's log exactly once."""
    assert run.state == "success"
    ledger = run.ledger()
    logs = {}
    for task_id in FAULTED_TASKS:
        ti = run.ti(task_id)
        assert (ti["state"], ti["try_number"]) == ("success", 1), task_id
        (job,) = ledger.task(task_id).jobs
        assert job.state is JobState.SUCCEEDED
        logs[task_id] = run.log(task_id, 1)
        assert len(job.log_lines) == 4
        for line in job.log_lines:
            assert logs[task_id].count(line) == 1, (task_id, line)
    # The run's first RPCs are its workers' (the reattach lookup, the submit): faulted.
    assert any(f"failed with {code_name}" in log for log in logs.values()), logs
    ledger.assert_clean()


def test_1_unavailable_bursts_on_every_rpc_are_retried_without_costing_a_try(
    stack, run_dag, faults
):
    # Three calls in a row fail, two pass, whichever RPC they are.
    faults.script("*", pattern(UNAVAILABLE, UNAVAILABLE, UNAVAILABLE, None, None))
    run = run_dag("stack_unavailable", timing="1 UNAVAILABLE bursts")
    faults.clear()
    assert_each_task_succeeded_once_despite(run, "UNAVAILABLE")


def test_2_rpcs_past_the_deadline_are_retried_and_a_slow_submit_makes_no_twin(
    stack, run_dag, faults
):
    # The first two calls of each RPC take 3 s, past the connection's 2 s deadline; the
    # server still carries them out (a slow submit creates its job after the client gave
    # up), so the retried submit must get the same job back (client id).
    for method in (
        "GetJobStatusUsingExternalJobUri",
        "SubmitJobs",
        "GetJobStatus",
        "GetJobDetails",
        "Logs",
    ):
        faults.delay(method, SLOW, times=2)
    submits = stack.armada.rpc_count("SubmitJobs")
    run = run_dag("stack_deadlines", timing="2 deadlines exceeded")
    faults.clear()
    assert_each_task_succeeded_once_despite(run, "DEADLINE_EXCEEDED")
    # More submits than jobs: a retry sent the submit again, and got the same job back.
    assert stack.armada.rpc_count("SubmitJobs") - submits > len(FAULTED_TASKS)


def test_3_resource_exhausted_on_every_rpc_is_retried_without_costing_a_try(stack, run_dag, faults):
    # Throttled: every other call, whichever RPC it is.
    faults.script("*", pattern(RESOURCE_EXHAUSTED, None))
    run = run_dag("stack_resource_exhausted", timing="3 RESOURCE_EXHAUSTED")
    faults.clear()
    assert_each_task_succeeded_once_despite(run, "RESOURCE_EXHAUSTED")


DROPS = 3


def test_4_an_event_stream_dropped_mid_job_is_resumed_without_polling(
    stack, run_dag, faults, wait_for, release_file
):
    dag_id = "stack_stream_dropped"
    release = release_file
    armada = stack.armada
    before = armada.rpc_counts()
    # The trigger's stream and its first two reopens each die after one message, while the
    # job is held: submitted, queued, leased, pending, running all come before its end.
    faults.drop_streams(after=1, times=DROPS)

    def opened_streams():
        return armada.rpc_count("GetJobSetEvents") - before.get("GetJobSetEvents", 0)

    def meanwhile(run_id):
        wait_for(
            lambda: [j.state for j in jobs_of_run(armada, dag_id, run_id)] == [JobState.RUNNING],
            120,
            "the held job to run",
        )
        wait_for(lambda: opened_streams() > DROPS, 60, f"{DROPS} drops and a healthy stream")
        wait_for(
            lambda: deferral_reported(stack, dag_id, run_id, "event_mode"),
            90,
            "the scheduler to hear that the deferring worker exited",
        )
        release.touch()

    run = run_dag(
        dag_id,
        conf={"release_file": str(release)},
        meanwhile=meanwhile,
        timing="4 event stream dropped mid-job",
    )
    counts = armada.rpc_counts()
    assert run.state == "success"
    ti = run.ti("event_mode")
    assert (ti["state"], ti["try_number"]) == ("success", 1)
    ledger = run.ledger()
    assert ledger.task("event_mode").job_states == [JobState.SUCCEEDED]
    assert opened_streams() == DROPS + 1  # each drop reopened once, then one healthy stream
    # The stream was resumed each time; the wait never fell back to polling.
    assert counts.get("GetJobStatus", 0) == before.get("GetJobStatus", 0)
    assert "falling back to polling" not in run.log("event_mode", 1)
    ledger.assert_clean()


@pytest.fixture
def cordoned_queue(stack):
    """Scenario 5's queue, cordoned: its jobs wait QUEUED. Uncordoned afterwards."""
    if HELD_QUEUE not in {q.name for q in stack.armada_client().get_queues()}:
        stack.armada.create_queue(HELD_QUEUE)
    stack.armada_client().queue_stub.CordonQueue(submit_pb2.QueueCordonRequest(name=HELD_QUEUE))
    yield HELD_QUEUE
    stack.armada_client().queue_stub.UncordonQueue(submit_pb2.QueueUncordonRequest(name=HELD_QUEUE))


RESTART_DOWNTIME = 3.0  # seconds the local Armada is away


def test_5_the_local_armada_restarted_from_its_state_file_while_jobs_wait(
    stack, run_dag, wait_for, cordoned_queue
):
    dag_id = "stack_armada_restarted"
    armada = stack.armada
    seen = {}

    def meanwhile(run_id):
        wait_for(
            lambda: [j.state for j in jobs_of_run(armada, dag_id, run_id)] == [JobState.QUEUED] * 3,
            120,
            "three QUEUED jobs",
        )
        waiting = {"polling": "deferred", "event_mode": "deferred", "synchronous": "running"}
        wait_for(
            lambda: (
                {ti["task_id"]: ti["state"] for ti in stack.rest.task_instances(dag_id, run_id)}
                == waiting
            ),
            60,
            f"the tasks to wait: {waiting}",
        )
        for task_id in ("polling", "event_mode"):
            wait_for(
                lambda task_id=task_id: deferral_reported(stack, dag_id, run_id, task_id),
                90,
                f"the scheduler to hear that {task_id}'s deferring worker exited",
            )
        store, port = armada.store, armada.port
        armada.restart(downtime=RESTART_DOWNTIME)
        seen["port"], seen["reloaded"] = armada.port == port, armada.store is not store
        seen["states"] = [j.state for j in jobs_of_run(armada, dag_id, run_id)]
        stack.armada_client().queue_stub.UncordonQueue(
            submit_pb2.QueueUncordonRequest(name=cordoned_queue)
        )

    run = run_dag(dag_id, meanwhile=meanwhile, timing="5 local Armada restarted")
    assert seen == {"port": True, "reloaded": True, "states": [JobState.QUEUED] * 3}
    assert run.state == "success"
    ledger = run.ledger()
    for task_id in ("polling", "event_mode", "synchronous"):
        ti = run.ti(task_id)
        assert (ti["state"], ti["try_number"]) == ("success", 1), task_id
        assert ledger.task(task_id).job_states == [JobState.SUCCEEDED], task_id
    assert "falling back to polling" not in run.log("event_mode", 1)
    ledger.assert_clean()
