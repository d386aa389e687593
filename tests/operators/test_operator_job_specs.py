"""ArmadaOperator with job specs as users write them, run by ``dag.test()`` on the local Armada.

A Kubernetes-style dict, a Pod-manifest YAML file found in the DAG's folder (Airflow's
``template_ext``: read from the template search path and rendered with Jinja), the same
file by absolute path, and an armadactl job file whose queue and job set apply.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from armada_hooks._compat import DAG
from armada_hooks.errors import ArmadaJobSpecError
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.states import JobState
from armada_hooks.testing.dags import run_dag

TOKEN = "op-bearer-token-5f1c9e"
pytestmark = pytest.mark.local_armada(time_scale=20, token=TOKEN)

POLL = 0.1
START = datetime(2024, 1, 1, tzinfo=UTC)
DAY = datetime(2024, 3, 5, tzinfo=UTC)
JOB_FILES = Path(__file__).parent / "job_files"  # in this DAG file's folder


def make_dag(request: pytest.FixtureRequest, **kwargs: Any) -> DAG:
    dag_id = "specs_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    return DAG(dag_id, schedule=None, start_date=START, **kwargs)


def outcomes(dag_run: Any) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (ti.state, ti.try_number) for ti in dag_run.get_task_instances()}


def jobs_by_task(armada: Any) -> dict[str, Any]:
    """{task id: (job, the JobSubmitRequestItem the local Armada received)}."""
    found = {}
    for job in armada.jobs():
        with armada.store.lock:
            item = armada.store.jobs[job.job_id].item
        found[item.annotations["armadaproject.io/taskId"]] = (job, item)
    return found


def limits(item: Any) -> dict[str, str]:
    resources = item.pod_spec.containers[0].resources
    assert {k: v.string for k, v in resources.requests.items()} == {
        k: v.string for k, v in resources.limits.items()
    }
    return {k: v.string for k, v in resources.limits.items()}


def test_a_kubernetes_style_dict_is_rendered_and_submitted(
    request, local_armada, local_armada_connection
) -> None:
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"labels": {"run": "{{ ds_nodash }}"}},
        "spec": {
            "restart_policy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:latest",
                    "command": ["echo", "{{ params.word }}"],
                    "resources": {
                        # a number, as kubectl takes it; a resource the local Armada's node has
                        "limits": {"cpu": "250m", "memory": "64Mi", "ephemeral-storage": 1}
                    },
                }
            ],
        },
    }
    with make_dag(request, params={"word": "hello"}) as dag:
        ArmadaOperator(
            task_id="manifest", armada_queue="default", job_request=manifest, poll_interval=POLL
        )
    dr = run_dag(dag, logical_date=DAY)

    assert outcomes(dr) == {"manifest": ("success", 1)}
    job, item = jobs_by_task(local_armada)["manifest"]
    assert job.state is JobState.SUCCEEDED
    assert item.namespace == "default"
    assert item.labels["run"] == "20240305"
    assert list(item.pod_spec.containers[0].command) == ["echo", "hello"]
    assert limits(item) == {"cpu": "250m", "memory": "64Mi", "ephemeral-storage": "1"}


def test_a_yaml_file_is_found_in_the_dag_folder_or_by_absolute_path_and_rendered(
    request, local_armada, local_armada_connection, tmp_path
) -> None:
    elsewhere = tmp_path / "specs" / "train.yaml"  # outside every template search path
    elsewhere.parent.mkdir()
    shutil.copy(JOB_FILES / "train.yaml", elsewhere)
    with make_dag(request, params={"animal": "fox"}) as dag:
        ArmadaOperator(
            task_id="relative",
            armada_queue="default",
            job_request="job_files/train.yaml",
            poll_interval=POLL,
        )
        ArmadaOperator(
            task_id="absolute",
            armada_queue="default",
            job_request=str(elsewhere),
            deferrable=True,
            poll_interval=POLL,
        )
    dr = run_dag(dag, logical_date=DAY)

    assert outcomes(dr) == {"relative": ("success", 1), "absolute": ("success", 1)}
    found = jobs_by_task(local_armada)
    for task_id in ("relative", "absolute"):
        job, item = found[task_id]
        assert job.state is JobState.SUCCEEDED, task_id
        assert item.labels["day"] == "20240305"
        assert item.annotations["example.com/animal"] == "fox"
        container = item.pod_spec.containers[0]
        assert list(container.command) == ["echo", "fox on 2024-03-05"]
        assert limits(item) == {"cpu": "0.5", "memory": "128Mi"}  # requests copied from limits


def test_an_armadactl_file_brings_its_queue_and_job_set_unless_the_operator_sets_them(
    request, local_armada, local_armada_connection
) -> None:
    local_armada.create_queue("from-file")
    with make_dag(request) as dag:
        ArmadaOperator(task_id="as_filed", job_request="job_files/nightly.yaml", poll_interval=POLL)
        ArmadaOperator(
            task_id="overridden",
            job_request="job_files/nightly.yaml",
            armada_queue="default",
            job_set_id="mine",
            poll_interval=POLL,
        )
    dr = run_dag(dag, logical_date=DAY)

    assert outcomes(dr) == {"as_filed": ("success", 1), "overridden": ("success", 1)}
    found = jobs_by_task(local_armada)
    filed, _ = found["as_filed"]
    assert (filed.queue, filed.job_set_id) == ("from-file", "nightly-20240305")
    overridden, item = found["overridden"]
    assert (overridden.queue, overridden.job_set_id) == ("default", "mine")
    assert item.pod_spec.containers[0].name == "report"


def test_a_file_with_several_jobs_fails_at_once_naming_the_file(
    request, local_armada, local_armada_connection, capfd
) -> None:
    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="two",
            job_request="job_files/two_jobs.yaml",
            retries=2,
            retry_delay=timedelta(0),
            poll_interval=POLL,
        )
    dr = run_dag(dag)

    assert outcomes(dr) == {"two": ("failed", 1)}  # a bad spec is not retried
    assert local_armada.rpc_count("SubmitJobs") == 0
    output = "".join(capfd.readouterr())
    assert "job_files/two_jobs.yaml: jobs: holds 2 jobs" in output


# -- checked when the operator is built ----------------------------------------------------


def test_a_string_that_names_no_job_file_is_refused_at_construction() -> None:
    with pytest.raises(ArmadaJobSpecError, match=r"names a job file.*\.yaml, \.yml, \.json"):
        ArmadaOperator(task_id="t", armada_queue="q", job_request="podSpec: {}")


def test_a_missing_absolute_file_is_refused_at_construction(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ArmadaJobSpecError, match=f"job file {re.escape(str(missing))}: No such"):
        ArmadaOperator(task_id="t", armada_queue="q", job_request=str(missing))


def test_a_relative_file_outside_airflow_says_to_give_an_absolute_path() -> None:
    operator = ArmadaOperator(task_id="t", armada_queue="q", job_request="job_files/train.yaml")
    with pytest.raises(ArmadaJobSpecError, match="give its absolute path"):
        operator.build_request({})  # type: ignore[arg-type]  # as Flyte calls it: no rendering
