"""ArmadaOperator and ArmadaJobSensor through Flyte's real Airflow connector.

``flytekitplugins-airflow`` pins Airflow < 3, so these run in ``.venv-airflow2``. Each
case runs in a fresh interpreter: the plugin replaces ``BaseOperator.__new__`` for good.
The connector (``flytekitplugins/airflow/connector.py``) rebuilds the operator from its
kwargs with ``deferrable=True``, calls ``execute`` with an empty context, keeps the
trigger's ``__dict__``, and on every ``get`` rebuilds both and gives ``trigger.run()``
two seconds; for a sensor, ``get`` is one ``poke``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from armada_hooks._compat import AIRFLOW_V3
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item

pytestmark = [
    pytest.mark.skipif(
        AIRFLOW_V3, reason="flytekitplugins-airflow pins Airflow < 3: runs in .venv-airflow2"
    ),
    pytest.mark.local_armada(time_scale=10),
]

# One Flyte execution of one Airflow task through the connector: create, then get until
# the phase is terminal (as flytekit's local executor does, without its 1 s sleeps).
CONNECTOR = """
import asyncio, importlib, json, os, sys
from types import SimpleNamespace

import jsonpickle
from flyteidl.core.execution_pb2 import TaskExecution
from flytekitplugins.airflow.connector import AirflowConnector

from flytekit import workflow

spec = json.loads(sys.argv[1])
operator_class = getattr(importlib.import_module(spec["module"]), spec["name"])


@workflow
def wf():  # compiling it captures the operator's kwargs, as a DAG author's workflow does
    operator_class(**spec["parameters"])


(node,) = wf.nodes
template = SimpleNamespace(custom=node.flyte_entity.get_custom(None))
connector = AirflowConnector()


async def main():
    meta = await connector.create(template)
    gets, phase = 0, TaskExecution.RUNNING
    while phase == TaskExecution.RUNNING and gets < 200:
        try:
            resource = await connector.get(meta)
        except Exception as exc:  # what the connector lets out of get
            print("RESULT " + json.dumps({"raised": type(exc).__name__, "message": str(exc)}))
            return
        gets += 1
        phase = resource.phase
        if phase == TaskExecution.RUNNING:
            await asyncio.sleep(0.2)
    print("RESULT " + json.dumps({
        "phase": TaskExecution.Phase.Name(phase),
        "message": resource.message,
        "gets": gets,
        "trigger": meta.airflow_trigger.parameters if meta.airflow_trigger else None,
    }))


asyncio.run(main())
"""


def run_connector(module: str, name: str, env: dict[str, str], **parameters) -> tuple[dict, str]:
    spec = {"module": module, "name": name, "parameters": parameters}
    done = subprocess.run(
        [sys.executable, "-c", CONNECTOR, json.dumps(spec)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT ")), output


def operator(env: dict[str, str], **annotations: str) -> tuple[dict, str]:
    request = job_request_item(["sh", "-c", "work"], annotations=annotations)
    from google.protobuf import json_format

    return run_connector(
        "armada_hooks.operators.armada",
        "ArmadaOperator",
        env,
        task_id="armada_task",
        armada_queue="default",
        job_request=json_format.MessageToDict(request),
        poll_interval=0.2,
    )


@pytest.fixture
def conn(local_armada) -> dict[str, str]:
    return {"AIRFLOW_CONN_ARMADA_DEFAULT": local_armada.airflow_connection()}


def test_the_operator_succeeds_and_repeated_gets_never_submit_again(local_armada, conn):
    result, output = operator(
        {**conn, "FLYTE_INTERNAL_EXECUTION_ID": "exec1"},
        **{"armada-hooks/runtime": "40s", "armada-hooks/log-lines": "4"},
    )
    assert result["phase"] == "SUCCEEDED", result
    assert result["gets"] > 1  # the job outlived one get's two seconds: get was repeated
    (job,) = local_armada.jobs()
    assert job.state is JobState.SUCCEEDED
    assert local_armada.rpc_count("SubmitJobs") == 1
    # the trigger the connector keeps is plain values, and streams no log
    assert result["trigger"]["job_id"] == job.job_id
    assert result["trigger"]["fetch_logs"] is False
    # each container line once, written when the job ended (not on every get)
    for line in job.log_lines:
        assert output.count(line) == 1, (line, output[-3000:])


def test_a_second_execution_submits_its_own_job_and_one_execution_never_twice(local_armada, conn):
    runtime = {"armada-hooks/runtime": "1s"}
    operator({**conn, "FLYTE_INTERNAL_EXECUTION_ID": "exec-a"}, **runtime)
    operator({**conn, "FLYTE_INTERNAL_EXECUTION_ID": "exec-a"}, **runtime)  # create repeated
    operator({**conn, "FLYTE_INTERNAL_EXECUTION_ID": "exec-b"}, **runtime)
    jobs = local_armada.jobs()
    assert len(jobs) == 2  # exec-a's repeat reattached to exec-a's job (it succeeded)
    assert local_armada.rpc_count("SubmitJobs") == 2
    uris = sorted(j.external_job_uri for j in jobs)
    assert uris == [
        "airflow://adhoc_airflow/armada_task/flyte-exec-a/-1",
        "airflow://adhoc_airflow/armada_task/flyte-exec-b/-1",
    ]


def test_without_an_execution_id_each_run_submits_its_own_job(local_armada, conn):
    runtime = {"armada-hooks/runtime": "1s"}
    for _ in range(2):
        result, output = operator(conn, **runtime)
        assert result["phase"] == "SUCCEEDED", result
        assert "submitting without a client id" in output
    jobs = local_armada.jobs()
    assert len(jobs) == 2
    assert all(not j.client_id for j in jobs)


def test_a_failed_job_is_a_failed_phase_with_armadas_reason(local_armada, conn):
    result, _ = operator(
        {**conn, "FLYTE_INTERNAL_EXECUTION_ID": "exec-fail"},
        **{"armada-hooks/outcome": "failed", "armada-hooks/failure-reason": "OOMKilled: main"},
    )
    assert result["phase"] == "FAILED", result
    assert "OOMKilled: main" in result["message"]
    assert "FAILED" in result["message"]


def test_deferrable_false_does_not_crash_and_the_operator_runs_deferred(local_armada, conn):
    request = job_request_item(["true"], annotations={"armada-hooks/runtime": "1s"})
    from google.protobuf import json_format

    result, output = run_connector(
        "armada_hooks.operators.armada",
        "ArmadaOperator",
        {**conn, "FLYTE_INTERNAL_EXECUTION_ID": "exec-sync"},
        task_id="sync_task",
        armada_queue="default",
        job_request=json_format.MessageToDict(request),
        poll_interval=0.2,
        deferrable=False,
    )
    assert result["phase"] == "SUCCEEDED", result
    assert result["trigger"] is not None  # it deferred
    assert "runs operators deferred" in output


def sensor_on(local_armada, conn, annotations: dict[str, str]) -> tuple[dict, str, str]:
    item = job_request_item(["sh", "-c", "elsewhere"], annotations=annotations)
    job_id = (
        local_armada.client().submit_jobs("default", "theirs", [item]).job_response_items[0].job_id
    )
    result, output = run_connector(
        "armada_hooks.sensors.armada",
        "ArmadaJobSensor",
        conn,
        task_id="wait_for_theirs",
        job_id=job_id,
        poke_interval=0.2,
    )
    return result, output, job_id


def test_a_sensor_on_a_job_submitted_elsewhere_succeeds(local_armada, conn):
    result, _, job_id = sensor_on(local_armada, conn, {"armada-hooks/runtime": "120s"})
    assert result["phase"] == "SUCCEEDED", result
    assert result["gets"] > 1  # poked while the job ran
    assert local_armada.job(job_id).state is JobState.SUCCEEDED
    assert local_armada.rpc_count("SubmitJobs") == 1  # the sensor submits nothing


def test_a_sensor_on_a_failed_job_fails_with_armadas_reason(local_armada, conn):
    annotations = {"armada-hooks/outcome": "failed", "armada-hooks/failure-reason": "Evicted"}
    result, _, _ = sensor_on(local_armada, conn, annotations)
    # The connector has no failed phase for a sensor: a failing poke's error is what the
    # Flyte task fails with, and it carries Armada's reason.
    assert result["raised"] == "ArmadaJobFailedError", result
    assert "Evicted" in result["message"]


# -- flytekit's local execution: `pyflyte run` of a workflow -----------------------------

WORKFLOW = """
from flytekit import workflow

from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.sensors.armada import ArmadaJobSensor


def request(**annotations):
    container = {"name": "main", "image": "busybox", "args": ["echo", "hi"],
                 "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}
    return {"namespace": "default", "podSpec": {"containers": [container]},
            "annotations": annotations}


@workflow
def runs_and_waits():
    ArmadaOperator(task_id="armada_job", armada_queue="default", poll_interval=0.5,
                   job_request=request(**{"armada-hooks/runtime": "20s"}))
    ArmadaJobSensor(task_id="theirs", job_id=JOB_ID, poke_interval=0.5)


@workflow
def fails():
    ArmadaOperator(task_id="doomed", armada_queue="default", poll_interval=0.5,
                   job_request=request(**{"armada-hooks/outcome": "failed",
                                          "armada-hooks/failure-reason": "OOMKilled: main"}))
"""


def pyflyte_run(tmp_path: Path, conn: dict[str, str], workflow: str, job_id: str = "") -> str:
    (tmp_path / "wf.py").write_text(WORKFLOW.replace("JOB_ID", repr(job_id)))
    pyflyte = str(Path(sys.executable).with_name("pyflyte"))
    done = subprocess.run(
        [pyflyte, "run", "wf.py", workflow],
        cwd=tmp_path,
        env={**os.environ, **conn},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def test_pyflyte_run_runs_the_operator_and_the_sensor(local_armada, conn, tmp_path):
    theirs = job_request_item(
        ["sh", "-c", "elsewhere"], annotations={"armada-hooks/runtime": "60s"}
    )
    job_id = (
        local_armada.client()
        .submit_jobs("default", "theirs", [theirs])
        .job_response_items[0]
        .job_id
    )
    output = pyflyte_run(tmp_path, conn, "runs_and_waits", job_id)
    assert output.startswith("exit 0"), output[-4000:]
    jobs = {j.job_id: j for j in local_armada.jobs()}
    assert len(jobs) == 2  # ours and theirs: the sensor submitted nothing
    assert all(j.state is JobState.SUCCEEDED for j in jobs.values())


def test_pyflyte_run_fails_with_armadas_reason(local_armada, conn, tmp_path):
    output = pyflyte_run(tmp_path, conn, "fails")
    assert not output.startswith("exit 0"), output[-4000:]
    assert "OOMKilled: main" in output
    (job,) = local_armada.jobs()
    assert job.state is JobState.FAILED
