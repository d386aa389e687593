"""LookoutLink: the URL it builds, and the link the API server shows for a finished task.

The tasks run through ``dag.test()`` against the local Armada. The link is then read the
way Airflow's API server reads it: the run's serialized DAG from the metadata DB, its
task's ``get_extra_links(ti, "Lookout")``, which looks up the XCom the task runner stored
under ``LookoutLink().xcom_key`` when the task finished.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState

from armada_hooks._compat import AIRFLOW_V3, DAG
from armada_hooks.links.lookout import XCOM_KEY, LookoutLink, lookout_job_url
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.testing import job_request_item
from armada_hooks.testing.dags import run_dag, xcom_values

TOKEN = "lookout-test-secret-token"
LOOKOUT = "https://lookout.example"


# -- the URL ----------------------------------------------------------------------------


def test_lookout_job_url_joins_with_or_without_trailing_slash() -> None:
    job_id = "01hq7yzv6d0e3jz1v9k8t2x4ab"
    assert lookout_job_url("https://lookout.example", job_id) == f"{LOOKOUT}/jobs/{job_id}"
    assert lookout_job_url("https://lookout.example/", job_id) == f"{LOOKOUT}/jobs/{job_id}"
    assert lookout_job_url("https://lookout.example//", job_id) == f"{LOOKOUT}/jobs/{job_id}"
    assert (
        lookout_job_url("https://example.com/armada/lookout/", job_id)
        == f"https://example.com/armada/lookout/jobs/{job_id}"
    )


def test_lookout_job_url_quotes_odd_characters_in_the_job_id() -> None:
    assert lookout_job_url(LOOKOUT, "a/b c?d#e&f") == f"{LOOKOUT}/jobs/a%2Fb%20c%3Fd%23e%26f"
    assert lookout_job_url(LOOKOUT, "../admin") == f"{LOOKOUT}/jobs/..%2Fadmin"
    assert lookout_job_url(LOOKOUT, "jöb") == f"{LOOKOUT}/jobs/j%C3%B6b"


def test_link_name_and_xcom_key() -> None:
    assert LookoutLink().name == "Lookout"
    if AIRFLOW_V3:  # the task runner stores each link's answer under this key
        assert LookoutLink().xcom_key == "_link_LookoutLink"
    assert any(isinstance(link, LookoutLink) for link in ArmadaOperator.operator_extra_links)


# -- the link of a finished task --------------------------------------------------------


def xcom(dag_run: Any, task_id: str, key: str) -> Any:
    return xcom_values(dag_run).get((task_id, key))


def api_links(dag_run: Any, task_id: str) -> dict[str, str | None]:
    """The task's extra links as the API server's extra-links route computes them."""
    with create_session() as session:
        if AIRFLOW_V3:
            from airflow.api_fastapi.common.dagbag import get_dag_for_run_or_latest_version
            from airflow.models.dagbag import DBDagBag

            dag = get_dag_for_run_or_latest_version(DBDagBag(), dag_run, dag_run.dag_id, session)
        else:  # Airflow 2.11's webserver: the serialized DAG
            from airflow.serialization.serialized_objects import SerializedDAG

            dag = SerializedDAG.from_dict(SerializedDAG.to_dict(dag_run.dag))
        task = dag.get_task(task_id)
        (ti,) = [t for t in dag_run.get_task_instances(session=session) if t.task_id == task_id]
        return {name: task.get_extra_links(ti, name) for name in task.extra_links}


@pytest.mark.local_armada(time_scale=20, token=TOKEN)
def test_the_lookout_link_opens_the_tasks_job_and_is_empty_without_a_lookout_url(
    request, local_armada, monkeypatch
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARMADA_LOOKOUT", local_armada.airflow_connection(lookout_url=LOOKOUT + "/")
    )
    monkeypatch.setenv("AIRFLOW_CONN_ARMADA_PLAIN", local_armada.airflow_connection())
    tasks = {
        "with_lookout": {"armada_conn_id": "armada_lookout", "deferrable": False},
        "with_lookout_deferred": {"armada_conn_id": "armada_lookout", "deferrable": True},
        "without_lookout": {"armada_conn_id": "armada_plain", "deferrable": False},
        "without_lookout_deferred": {"armada_conn_id": "armada_plain", "deferrable": True},
    }
    dag_id = "lookout_" + re.sub(r"\W", "_", request.node.name)
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
        for task_id, kwargs in tasks.items():
            ArmadaOperator(
                task_id=task_id,
                armada_queue="default",
                job_request=job_request_item(annotations={"armada-hooks/runtime": "10s"}),
                poll_interval=0.2,
                **kwargs,
            )
    dag_run = run_dag(dag)

    assert dag_run.state == DagRunState.SUCCESS
    assert {ti.task_id: ti.state for ti in dag_run.get_task_instances()} == dict.fromkeys(
        tasks, TaskInstanceState.SUCCESS
    )
    job_set_id = f"{dag_id}-{dag_run.run_id}"
    for task_id in tasks:
        job_id = xcom(dag_run, task_id, "return_value")
        assert local_armada.job(job_id).external_job_uri.split("/")[3] == task_id
        record = xcom(dag_run, task_id, XCOM_KEY)
        # The connection's "https://lookout.example/" is kept without its trailing slash.
        lookout_url = LOOKOUT if task_id.startswith("with_") else None
        assert record == {
            "job_id": job_id,
            "queue": "default",
            "job_set_id": job_set_id,
            "lookout_url": lookout_url,
        }, task_id
        assert TOKEN not in json.dumps(record)

        link = f"{LOOKOUT}/jobs/{job_id}" if task_id.startswith("with_") else ""
        if AIRFLOW_V3:  # Airflow 2.11 computes links only when asked, stores none
            assert xcom(dag_run, task_id, LookoutLink().xcom_key) == link, task_id
        assert api_links(dag_run, task_id) == {"Lookout": link}, task_id


@pytest.mark.local_armada(time_scale=20)
def test_a_task_without_a_record_has_an_empty_link_and_asks_for_no_record(
    request, local_armada, monkeypatch, capfd
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARMADA_LOOKOUT", local_armada.airflow_connection(lookout_url=LOOKOUT)
    )
    unequal = job_request_item()
    unequal.pod_spec.containers[0].resources.limits["cpu"].string = "2"
    dag_id = "lookout_" + re.sub(r"\W", "_", request.node.name)
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
        ArmadaOperator(  # fails before submitting: the spec Armada would refuse
            task_id="bad_spec", armada_queue="default", job_request=unequal, retries=0
        )
        ArmadaOperator(  # submits, but records nothing
            task_id="no_record",
            armada_queue="default",
            job_request=job_request_item(),
            armada_conn_id="armada_lookout",
            do_xcom_push=False,
            poll_interval=0.2,
        )
    dag_run = run_dag(dag)

    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states == {"bad_spec": TaskInstanceState.FAILED, "no_record": TaskInstanceState.SUCCESS}
    for task_id in states:
        assert xcom(dag_run, task_id, XCOM_KEY) is None, task_id
        if AIRFLOW_V3:  # the task runner's stored answer (Airflow 2.11 stores none)
            assert xcom(dag_run, task_id, LookoutLink().xcom_key) == "", task_id
        assert api_links(dag_run, task_id) == {"Lookout": ""}, task_id
    assert "XCom not found" not in "".join(capfd.readouterr())  # Task SDK's error on a miss
