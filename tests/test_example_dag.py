"""The example DAG runs as its ``EXPECTED`` says on Airflow 2.11 too, with ``dag.test()``.

On Airflow 3 ``make demo`` runs it (and ``tests/test_cli.py`` runs the demo).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from armada_hooks._compat import AIRFLOW_V3
from armada_hooks.defaults import DEFAULT_CONN_ENV
from armada_hooks.testing import job_request_item
from armada_hooks.testing.dags import run_dag

DAG_FILE = Path(__file__).resolve().parent.parent / "example_dags" / "armada_example.py"


@pytest.mark.skipif(AIRFLOW_V3, reason="on Airflow 3 the demo runs this DAG (test_cli.py)")
@pytest.mark.local_armada(queues=["demo"], time_scale=10)
def test_every_task_of_the_example_dag_ends_as_intended(local_armada, monkeypatch) -> None:
    monkeypatch.setenv(DEFAULT_CONN_ENV, local_armada.airflow_connection())
    spec = importlib.util.spec_from_file_location("armada_example_dag_af2", DAG_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    external = job_request_item(
        ["sh", "-c", "make-report"],
        external_job_uri=module.EXTERNAL_JOB_URI,
        annotations={"armada-hooks/runtime": "150s", "armada-hooks/log-lines": "1"},
    )
    local_armada.client().submit_jobs(module.QUEUE, module.EXTERNAL_JOB_SET, [external])

    dag_run = run_dag(module.dag)

    ended = {}
    for ti in dag_run.get_task_instances():
        want = module.EXPECTED[ti.task_id]
        ended.setdefault(ti.task_id, set()).add((str(ti.state), ti.try_number) == want)
    assert set(ended) == set(module.EXPECTED)
    assert all(ended[task] == {True} for task in ended), ended
