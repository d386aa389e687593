"""ArmadaJobSensor through ``dag.test()`` against the local Armada.

The jobs are submitted outside the DAG with a real ``ArmadaClient``, as somebody else's
jobs would be. A job that must still be running when its sensor starts is *gated*: it
runs a real subprocess (``armada-hooks/execution=subprocess``) that waits for a file,
and the sensor task's ``on_execute_callback`` creates that file a moment after the task
starts. So the sensor always meets the job RUNNING and has to wait for its end, however
long the first task start takes. Failures are read from Airflow's own
``on_failure_callback`` (``context["exception"]``), since ``dag.test()`` never raises.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from airflow.models.taskreschedule import TaskReschedule
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from sqlalchemy import func, select

from armada_hooks._compat import AIRFLOW_V3, DAG, AirflowSensorTimeout, capture_log_events
from armada_hooks.errors import ArmadaJobError, ArmadaJobFailedError, ArmadaJobRejectedError
from armada_hooks.sensors.armada import ArmadaJobSensor
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item
from armada_hooks.testing.dags import run_dag, xcom_values

if TYPE_CHECKING:
    from collections.abc import Callable

    from armada_client.armada import submit_pb2

    from armada_hooks.testing import LocalArmada

pytestmark = pytest.mark.local_armada(time_scale=20)

QUEUE = "default"
JOB_SET = "sensor-tests"
POKE = 0.2  # seconds between pokes / trigger polls
RELEASE_DELAY = 1.0  # seconds after a sensor task starts until its gated job may end
START = datetime(2024, 1, 1)
SUCCESS, FAILED, SKIPPED = (
    TaskInstanceState.SUCCESS,
    TaskInstanceState.FAILED,
    TaskInstanceState.SKIPPED,
)


# -- helpers ----------------------------------------------------------------------------


def dag_for(request: pytest.FixtureRequest, **kwargs: Any) -> DAG:
    """A DAG whose id is the test's name (dag.test() reuses the DB between tests)."""
    dag_id = "sensor_" + re.sub(r"\W", "_", request.node.name)
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, **kwargs)


def submit(
    armada: LocalArmada, item: submit_pb2.JobSubmitRequestItem, job_set: str = JOB_SET
) -> str:
    response = armada.client().submit_jobs(QUEUE, job_set, [item])
    return str(response.job_response_items[0].job_id)


def quick_job(**annotations: str) -> submit_pb2.JobSubmitRequestItem:
    return job_request_item(annotations=annotations)


def gated_job(gate: Path, exit_code: int = 0, **fields: Any) -> submit_pb2.JobSubmitRequestItem:
    """A job that runs until ``gate`` exists, then exits with ``exit_code``."""
    code = (
        "import os, sys, time\n"
        f"while not os.path.exists({str(gate)!r}):\n"
        "    time.sleep(0.05)\n"
        f"sys.exit({exit_code})\n"
    )
    return job_request_item(
        [sys.executable, "-c", code],
        annotations={"armada-hooks/execution": "subprocess"},
        **fields,
    )


def release_on_start(
    armada: LocalArmada, job_id: str, gate: Path, seen: dict[str, JobState]
) -> Callable[[Any], None]:
    """``on_execute_callback``: note the job's state as the task starts, then open its gate."""

    def callback(context: Any) -> None:
        seen.setdefault(context["ti"].task_id, armada.job(job_id).state)
        threading.Timer(RELEASE_DELAY, gate.touch).start()

    return callback


def record_failure(failures: dict[str, BaseException]) -> Callable[[Any], None]:
    """``on_failure_callback``: keep the exception that failed each task."""

    def callback(context: Any) -> None:
        failures[context["ti"].task_id] = context["exception"]

    return callback


def states(dag_run: Any) -> dict[str, TaskInstanceState | None]:
    return {ti.task_id: ti.state for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    """The XCom value as stored in the metadata DB (None when there is none)."""
    return xcom_values(dag_run).get((task_id, key))


def reschedules(dag_run: Any, task_id: str) -> int:
    (ti,) = [t for t in dag_run.get_task_instances() if t.task_id == task_id]
    if AIRFLOW_V3:
        of_ti = TaskReschedule.ti_id == ti.id
    else:  # Airflow 2.11 keys reschedules by the task instance's natural key
        of_ti = (TaskReschedule.dag_id == ti.dag_id) & (TaskReschedule.run_id == ti.run_id)
        of_ti &= TaskReschedule.task_id == ti.task_id
    with create_session() as session:
        return int(session.scalar(select(func.count()).select_from(TaskReschedule).where(of_ti)))


def running(armada: LocalArmada, *job_ids: str) -> None:
    for job_id in job_ids:
        armada.wait_for_state(job_id, [JobState.RUNNING])


# -- constructor ------------------------------------------------------------------------


def test_exactly_one_way_of_naming_the_job_is_required() -> None:
    with pytest.raises(ValueError, match="exactly one of job_id and external_job_uri"):
        ArmadaJobSensor(task_id="neither")
    with pytest.raises(ValueError, match="exactly one of job_id and external_job_uri"):
        ArmadaJobSensor(
            task_id="both",
            job_id="j",
            external_job_uri="airflow://x",
            armada_queue=QUEUE,
            job_set_id=JOB_SET,
        )
    with pytest.raises(ValueError, match="needs armada_queue and job_set_id"):
        ArmadaJobSensor(task_id="no_queue", external_job_uri="airflow://x", job_set_id=JOB_SET)
    with pytest.raises(ValueError, match="needs armada_queue and job_set_id"):
        ArmadaJobSensor(task_id="no_set", external_job_uri="airflow://x", armada_queue=QUEUE)
    with pytest.raises(ValueError, match="at least one state"):
        ArmadaJobSensor(task_id="no_states", job_id="j", target_states=[])
    sensor = ArmadaJobSensor(task_id="names", job_id="j", target_states=["running", "SUCCEEDED"])
    assert sensor.target_states == {JobState.RUNNING, JobState.SUCCEEDED}
    from armada_client.typings import JobState as ClientJobState  # the client's own enum

    sensor = ArmadaJobSensor(task_id="client", job_id="j", target_states=[ClientJobState.RUNNING])
    assert sensor.target_states == {JobState.RUNNING}


# -- by job id: success -----------------------------------------------------------------


def test_by_job_id_waits_for_success_in_poke_reschedule_and_deferrable_modes(
    request, local_armada, local_armada_connection, tmp_path
) -> None:
    modes: dict[str, dict[str, Any]] = {
        "poke": {"mode": "poke"},
        "reschedule": {"mode": "reschedule"},
        "deferrable": {"deferrable": True},
    }
    gates = {name: tmp_path / f"{name}.gate" for name in modes}
    jobs = {name: submit(local_armada, gated_job(gates[name])) for name in modes}
    running(local_armada, *jobs.values())
    seen: dict[str, JobState] = {}
    with dag_for(request) as dag:
        for name, kwargs in modes.items():
            ArmadaJobSensor(
                task_id=name,
                job_id=jobs[name],
                poke_interval=POKE,
                on_execute_callback=release_on_start(local_armada, jobs[name], gates[name], seen),
                **kwargs,
            )
    local_armada.reset_rpc_counts()
    dag_run = run_dag(dag)

    assert dag_run.state == DagRunState.SUCCESS
    assert states(dag_run) == dict.fromkeys(modes, SUCCESS)
    assert seen == dict.fromkeys(modes, JobState.RUNNING)  # every sensor had to wait
    for name, job_id in jobs.items():
        assert local_armada.job(job_id).state is JobState.SUCCEEDED
        description = xcom(dag_run, name)
        assert description["job_id"] == job_id
        assert description["state"] == "SUCCEEDED"
        assert description["queue"] == QUEUE
        assert description["job_set_id"] == JOB_SET
        assert description["finished_at"] is not None
    assert reschedules(dag_run, "reschedule") >= 1
    assert reschedules(dag_run, "poke") == 0
    # Only the trigger asks GetJobStatus (the sensor's pokes read GetJobDetails): the
    # deferrable sensor really waited in its trigger.
    assert local_armada.rpc_count("api.Jobs/GetJobStatus") >= 1


def test_templated_job_id_is_rendered_from_the_run(
    request, local_armada, local_armada_connection
) -> None:
    job_id = submit(local_armada, quick_job())
    local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    with dag_for(request, params={"job": "no-such-job"}) as dag:
        ArmadaJobSensor(task_id="templated", job_id="{{ params.job }}", poke_interval=POKE)
    dag_run = run_dag(dag, run_conf={"job": job_id})

    assert states(dag_run) == {"templated": SUCCESS}
    assert xcom(dag_run, "templated")["job_id"] == job_id
    assert xcom(dag_run, "templated")["state"] == "SUCCEEDED"


# -- target states ----------------------------------------------------------------------


def test_target_running_is_met_while_the_job_runs_and_a_finished_job_can_never_meet_it(
    request, local_armada, local_armada_connection
) -> None:
    long_job = submit(local_armada, quick_job(**{"armada-hooks/runtime": "1h"}))
    done_job = submit(local_armada, quick_job())
    local_armada.wait_for_state(done_job, [JobState.SUCCEEDED])
    failures: dict[str, BaseException] = {}
    with dag_for(request) as dag:
        ArmadaJobSensor(
            task_id="running_poke",
            job_id=long_job,
            target_states=[JobState.RUNNING],
            poke_interval=POKE,
        )
        ArmadaJobSensor(
            task_id="running_deferrable",
            job_id=long_job,
            target_states=["RUNNING"],
            poke_interval=POKE,
            deferrable=True,
        )
        for mode, kwargs in (("poke", {}), ("deferrable", {"deferrable": True})):
            ArmadaJobSensor(
                task_id=f"succeeded_{mode}",
                job_id=done_job,
                target_states=[JobState.RUNNING],
                poke_interval=POKE,
                on_failure_callback=record_failure(failures),
                **kwargs,
            )
    dag_run = run_dag(dag)

    assert states(dag_run) == {
        "running_poke": SUCCESS,
        "running_deferrable": SUCCESS,
        "succeeded_poke": FAILED,
        "succeeded_deferrable": FAILED,
    }
    assert local_armada.job(long_job).state is JobState.RUNNING  # the sensors did not wait it out
    for task_id in ("running_poke", "running_deferrable"):
        assert xcom(dag_run, task_id)["state"] == "RUNNING"
        assert xcom(dag_run, task_id)["job_id"] == long_job
    # A job that SUCCEEDED is terminal and not in target_states: the sensor cannot tell
    # whether it ran, only that it can never *be* RUNNING again, so it fails.
    for task_id in ("succeeded_poke", "succeeded_deferrable"):
        exc = failures[task_id]
        assert type(exc) is ArmadaJobError, task_id
        assert exc.state is JobState.SUCCEEDED
        assert exc.job_id == done_job
        assert "can never reach ['RUNNING']" in str(exc)
        assert xcom(dag_run, task_id) is None


# -- failures ---------------------------------------------------------------------------


def test_failed_cancelled_and_rejected_jobs_fail_the_sensor_with_typed_errors(
    request, local_armada, local_armada_connection, tmp_path
) -> None:
    failed = submit(
        local_armada,
        quick_job(
            **{"armada-hooks/outcome": "failed", "armada-hooks/failure-reason": "OOMKilled: 64Mi"}
        ),
    )
    rejected = submit(local_armada, quick_job(**{"armada-hooks/outcome": "rejected"}))
    cancelled = submit(local_armada, quick_job(**{"armada-hooks/runtime": "1h"}))
    running(local_armada, cancelled)
    local_armada.client().cancel_jobs(QUEUE, JOB_SET, cancelled)
    for job_id in (failed, rejected, cancelled):
        local_armada.wait_for_state(job_id)
    # Deferrable sensors on jobs that fail *while* the sensor is deferred (exit code 3).
    gate = tmp_path / "exit3.gate"
    gate_soft = tmp_path / "exit3-soft.gate"
    exits = submit(local_armada, gated_job(gate, exit_code=3))
    exits_soft = submit(local_armada, gated_job(gate_soft, exit_code=3))
    running(local_armada, exits, exits_soft)

    failures: dict[str, BaseException] = {}
    seen: dict[str, JobState] = {}
    with dag_for(request) as dag:
        common: dict[str, Any] = {
            "poke_interval": POKE,
            "on_failure_callback": record_failure(failures),
        }
        for name, job_id in (("failed", failed), ("rejected", rejected), ("cancelled", cancelled)):
            ArmadaJobSensor(task_id=name, job_id=job_id, **common)
            ArmadaJobSensor(task_id=f"{name}_soft", job_id=job_id, soft_fail=True, **common)
        ArmadaJobSensor(
            task_id="deferred_failed",
            job_id=exits,
            deferrable=True,
            on_execute_callback=release_on_start(local_armada, exits, gate, seen),
            **common,
        )
        ArmadaJobSensor(
            task_id="deferred_failed_soft",
            job_id=exits_soft,
            deferrable=True,
            soft_fail=True,
            on_execute_callback=release_on_start(local_armada, exits_soft, gate_soft, seen),
            **common,
        )
    dag_run = run_dag(dag)

    assert states(dag_run) == {
        "failed": FAILED,
        "failed_soft": SKIPPED,
        "rejected": FAILED,
        "rejected_soft": SKIPPED,
        "cancelled": FAILED,
        "cancelled_soft": SKIPPED,
        "deferred_failed": FAILED,
        "deferred_failed_soft": SKIPPED,
    }
    assert dag_run.state == DagRunState.FAILED
    assert set(failures) == {"failed", "rejected", "cancelled", "deferred_failed"}
    assert seen == dict.fromkeys(("deferred_failed", "deferred_failed_soft"), JobState.RUNNING)

    exc = failures["failed"]
    assert isinstance(exc, ArmadaJobFailedError)
    assert (exc.job_id, exc.state, exc.reason) == (failed, JobState.FAILED, "OOMKilled: 64Mi")
    assert "ended FAILED: OOMKilled: 64Mi" in str(exc)

    exc = failures["rejected"]
    assert isinstance(exc, ArmadaJobRejectedError)
    assert (exc.job_id, exc.state) == (rejected, JobState.REJECTED)
    assert "armada-hooks/outcome=rejected" in exc.reason
    assert exc.reason in str(exc)

    exc = failures["cancelled"]
    assert isinstance(exc, ArmadaJobFailedError)
    assert not isinstance(exc, ArmadaJobRejectedError)
    assert (exc.job_id, exc.state) == (cancelled, JobState.CANCELLED)
    assert "ended CANCELLED" in str(exc)

    exc = failures["deferred_failed"]
    assert isinstance(exc, ArmadaJobFailedError)
    assert (exc.job_id, exc.state) == (exits, JobState.FAILED)
    assert exc.reason == "Container main exited with code 3"
    assert exc.reason in str(exc)
    assert local_armada.job(exits_soft).state is JobState.FAILED


# -- by external job URI ----------------------------------------------------------------


def test_by_external_uri_the_newest_job_counts_and_a_missing_job_is_waited_for(
    request, local_armada, local_armada_connection
) -> None:
    # Two jobs with one URI: the older one failed, the newer one succeeded.
    uri = "airflow://upstream/task/run-1/-1"
    older = submit(
        local_armada,
        job_request_item(external_job_uri=uri, annotations={"armada-hooks/outcome": "failed"}),
    )
    local_armada.wait_for_state(older)
    time.sleep(0.05)
    newer = submit(local_armada, job_request_item(external_job_uri=uri))
    local_armada.wait_for_state(newer)
    assert local_armada.job(older).state is JobState.FAILED

    # Jobs that do not exist yet: submitted RELEASE_DELAY after their sensor starts.
    late_uris = {
        mode: f"airflow://upstream/late-{mode}/run-1/-1" for mode in ("poke", "deferrable")
    }
    late_jobs: dict[str, str] = {}
    absent_at_start: dict[str, bool] = {}

    def submit_later(mode: str) -> Callable[[Any], None]:
        def callback(context: Any) -> None:
            absent_at_start.setdefault(
                mode, all(j.external_job_uri != late_uris[mode] for j in local_armada.jobs())
            )

            def late() -> None:
                item = job_request_item(external_job_uri=late_uris[mode])
                late_jobs[mode] = submit(local_armada, item)

            threading.Timer(RELEASE_DELAY, late).start()

        return callback

    with dag_for(request) as dag:
        by_uri: dict[str, Any] = {
            "armada_queue": QUEUE,
            "job_set_id": JOB_SET,
            "poke_interval": POKE,
        }
        ArmadaJobSensor(task_id="newest_poke", external_job_uri=uri, **by_uri)
        ArmadaJobSensor(
            task_id="newest_deferrable", external_job_uri=uri, deferrable=True, **by_uri
        )
        ArmadaJobSensor(
            task_id="late_poke",
            external_job_uri=late_uris["poke"],
            on_execute_callback=submit_later("poke"),
            **by_uri,
        )
        ArmadaJobSensor(
            task_id="late_deferrable",
            external_job_uri=late_uris["deferrable"],
            deferrable=True,
            on_execute_callback=submit_later("deferrable"),
            **by_uri,
        )
    local_armada.reset_rpc_counts()
    dag_run = run_dag(dag)

    assert states(dag_run) == dict.fromkeys(
        ("newest_poke", "newest_deferrable", "late_poke", "late_deferrable"), SUCCESS
    )
    for task_id in ("newest_poke", "newest_deferrable"):
        assert xcom(dag_run, task_id)["job_id"] == newer
        assert xcom(dag_run, task_id)["state"] == "SUCCEEDED"
    assert absent_at_start == {"poke": True, "deferrable": True}
    for mode in ("poke", "deferrable"):
        description = xcom(dag_run, f"late_{mode}")
        assert description["job_id"] == late_jobs[mode]
        assert description["state"] == "SUCCEEDED"
        assert local_armada.job(late_jobs[mode]).external_job_uri == late_uris[mode]
    # The late sensors asked for their URI more than once: they kept looking.
    assert local_armada.rpc_count("GetJobStatusUsingExternalJobUri") >= 2 + 2 * 2


# -- timeout ----------------------------------------------------------------------------


def test_timeout_fails_or_skips_a_sensor_waiting_on_a_long_job_in_poke_and_reschedule(
    request, local_armada, local_armada_connection
) -> None:
    # Deferrable mode is not covered: dag.test() runs the trigger inline and does not
    # enforce a deferral's timeout, so an hour-long job would hold the test for an hour.
    long_job = submit(local_armada, quick_job(**{"armada-hooks/runtime": "1h"}))
    running(local_armada, long_job)
    failures: dict[str, BaseException] = {}
    with dag_for(request) as dag:
        for mode in ("poke", "reschedule"):
            for soft in (False, True):
                ArmadaJobSensor(
                    task_id=f"{mode}_soft" if soft else mode,
                    job_id=long_job,
                    mode=mode,
                    timeout=2,
                    poke_interval=POKE,
                    soft_fail=soft,
                    retries=0,
                    on_failure_callback=record_failure(failures),
                )
    started = time.monotonic()
    dag_run = run_dag(dag)
    elapsed = time.monotonic() - started

    assert states(dag_run) == {
        "poke": FAILED,
        "poke_soft": SKIPPED,
        "reschedule": FAILED,
        "reschedule_soft": SKIPPED,
    }
    assert set(failures) == {"poke", "reschedule"}
    for task_id in ("poke", "reschedule"):
        assert isinstance(failures[task_id], AirflowSensorTimeout), failures[task_id]
    assert elapsed < 120  # four 2-second timeouts, not the job's hour
    assert local_armada.job(long_job).state is JobState.RUNNING  # a sensor never cancels


# -- logging ----------------------------------------------------------------------------


def test_each_poke_logs_the_jobs_state_and_the_states_it_waits_for(
    request, local_armada, local_armada_connection, tmp_path
) -> None:
    gate = tmp_path / "logged.gate"
    job_id = submit(local_armada, gated_job(gate))
    running(local_armada, job_id)
    seen: dict[str, JobState] = {}
    with dag_for(request) as dag:
        ArmadaJobSensor(
            task_id="logged",
            job_id=job_id,
            poke_interval=POKE,
            on_execute_callback=release_on_start(local_armada, job_id, gate, seen),
        )
    with capture_log_events() as logs:
        dag_run = run_dag(dag)

    assert states(dag_run) == {"logged": SUCCESS}
    pokes = [e for e in logs if str(e.get("event", "")).startswith(f"Armada job {job_id} is")]
    assert {e["log_level"] for e in pokes} == {"info"}
    lines = [str(e["event"]) for e in pokes]
    waiting = f"Armada job {job_id} is RUNNING; waiting for ['SUCCEEDED']"
    assert len(lines) >= 2, lines
    assert set(lines[:-1]) == {waiting}  # one line per poke while it runs ...
    assert lines[-1] == f"Armada job {job_id} is SUCCEEDED; waiting for ['SUCCEEDED']"
