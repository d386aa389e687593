"""A real ``airflow triggerer`` runs ``ArmadaJobTrigger.on_kill`` when a user marks a task failed.

No scheduler or worker runs here. The test does, in this process, what they would do for
one deferrable ``ArmadaOperator`` task: the DAG is serialized to the metadata DB, a run is
created, the operator's ``execute`` submits the job to the local Armada and raises
``TaskDeferred``, and the deferral is recorded the way the Execution API records it (a
``Trigger`` row, the task instance DEFERRED and pointing at it). A real triggerer
(``airflow triggerer`` in a subprocess, its own runner subprocess and in-process Execution
API) then picks the trigger up and polls the local Armada. The user action is
``set_task_instance_state(..., state=failed)`` on the serialized DAG, the call the REST API
``PATCH .../taskInstances/{task_id}`` makes. The triggerer notices its trigger is no longer
wanted, cancels it as a user action and so runs ``on_kill``, which cancels the Armada job.

The trigger row carries a queue unique to this test and the triggerer serves only that
queue (``[triggerer] queues_enabled``), so it touches no other trigger in the shared DB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from armada_hooks._compat import AIRFLOW_V3, DAG, TaskDeferred, register_dag_for_test
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item

pytestmark = pytest.mark.skipif(
    not AIRFLOW_V3,
    reason="Airflow 2.11 triggers have no on_kill: marking a deferred task failed there"
    " cannot cancel its job (documented)",
)

AIRFLOW = Path(sys.executable).with_name("airflow")


def wait_until(condition, timeout: float, what: str, triggerer: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if triggerer.poll() is not None:
            raise AssertionError(f"the triggerer exited ({triggerer.returncode}) before {what}")
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


def defer_in_db(dag: DAG, task_id: str, queue: str) -> tuple[str, str]:
    """Run ``dag``'s task up to its deferral and record it as a worker would; (run id, job id)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    register_dag_for_test(dag)
    scheduler_dag = DagSerialization.deserialize_dag(DagSerialization.serialize_dag(dag))
    now = datetime.now(UTC)
    run_id = f"manual__{uuid.uuid4().hex}"
    with create_session() as session:
        scheduler_dag.create_dagrun(
            run_id=run_id,
            logical_date=now,
            data_interval=(now, now),
            run_after=now,
            conf=None,
            run_type=DagRunType.MANUAL,
            state=DagRunState.RUNNING,
            triggered_by=DagRunTriggeredByType.TEST,
            triggering_user_name="test",
            start_date=now,
            session=session,
        )

    task = dag.get_task(task_id)
    with pytest.raises(TaskDeferred) as deferred:
        task.execute({"run_id": run_id})
    defer = deferred.value
    classpath, trigger_kwargs = defer.trigger.serialize()

    with create_session() as session:
        trigger = Trigger(classpath=classpath, kwargs=trigger_kwargs, queue=queue)
        session.add(trigger)
        session.flush()
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag.dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
            )
        ).one()
        assert ti.dag_version_id is not None  # the triggerer skips TIs without one
        assert ti.queue == queue
        ti.state = TaskInstanceState.DEFERRED
        ti.try_number = 1
        ti.start_date = now
        ti.trigger_id = trigger.id
        ti.next_method = defer.method_name
        ti.next_kwargs = defer.kwargs or {}
    return run_id, str(trigger_kwargs["job_id"])


def mark_failed(dag_id: str, run_id: str, task_id: str) -> None:
    """What the REST API's PATCH taskInstances/{task_id} {"new_state": "failed"} does."""
    from airflow.models.dagbag import DBDagBag
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        changed = dag.set_task_instance_state(
            task_id=task_id,
            run_id=run_id,
            state=TaskInstanceState.FAILED,
            commit=True,
            session=session,
        )
        assert [ti.task_id for ti in changed] == [task_id]


def ti_row(dag_id: str, run_id: str, task_id: str):
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.execute(
            select(TaskInstance.state, TaskInstance.trigger_id).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
            )
        ).one()


def test_marking_a_deferred_task_failed_makes_the_triggerer_cancel_the_armada_job(
    request, local_armada, local_armada_connection, tmp_path
) -> None:
    trigger_logs: list[Path] = []
    dag_id = f"on_kill_{request.node.name}"[:200]
    queue = f"on-kill-{uuid.uuid4().hex[:12]}"
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC)) as dag:
        ArmadaOperator(
            task_id="long_job",
            armada_queue="default",
            job_request=job_request_item(annotations={"armada-hooks/runtime": "3600"}),
            deferrable=True,
            poll_interval=0.5,
            fetch_logs=False,
            queue=queue,
        )
    run_id, job_id = defer_in_db(dag, "long_job", queue)
    assert local_armada.job(job_id).state not in {JobState.CANCELLED, JobState.SUCCEEDED}

    logs = tmp_path / "logs"
    env = {
        **os.environ,
        "AIRFLOW__TRIGGERER__QUEUES_ENABLED": "True",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs),
    }
    log_path = tmp_path / "triggerer.log"
    with log_path.open("wb") as log:
        triggerer = subprocess.Popen(
            [str(AIRFLOW), "triggerer", "--queues", queue, "--skip-serve-logs"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        polls_before = local_armada.rpc_count("GetJobStatus")
        wait_until(
            lambda: local_armada.rpc_count("GetJobStatus") >= polls_before + 2,
            90,
            "the triggerer to poll the job",
            triggerer,
        )
        assert local_armada.rpc_count("CancelJobs") == 0
        assert local_armada.job(job_id).state is not JobState.CANCELLED

        mark_failed(dag_id, run_id, "long_job")

        wait_until(
            lambda: local_armada.job(job_id).state is JobState.CANCELLED,
            60,
            "the Armada job to be cancelled",
            triggerer,
        )
        assert local_armada.rpc_count("CancelJobs") >= 1
        state, trigger_id = ti_row(dag_id, run_id, "long_job")
        assert state == "failed"
        # The triggerer dropped the trigger rather than firing it: the task stays failed.
        assert trigger_id is None
    finally:
        triggerer.terminate()
        try:
            triggerer.wait(30)
        except subprocess.TimeoutExpired:
            triggerer.kill()
            triggerer.wait(10)
        print(log_path.read_text(errors="replace")[-20000:])
        trigger_logs = sorted(logs.rglob("*.log.trigger.*"))
        for path in trigger_logs:
            print(path.read_text(errors="replace")[-20000:])

    # The task's trigger log: the triggerer called on_kill, and on_kill cancelled the job.
    assert len(trigger_logs) == 1
    trigger_log = trigger_logs[0].read_text(errors="replace")
    assert "Trigger cancelled by user action, invoking on_kill" in trigger_log
    assert f"Asked Armada to cancel job {job_id} (now CANCELLED)" in trigger_log
