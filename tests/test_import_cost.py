"""DAG parsing stays light: what a DAG file imports and builds loads no gRPC or protobuf.

A correctness fact checked in a fresh interpreter, not a timing: grpc, protobuf (with
``json_format``), ``armada_client`` and every generated ``*_pb2`` module load only once a
task runs. The figures are ``bench/import_cost.py``'s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

DAG_FACING = (
    "armada_hooks.operators.armada",
    "armada_hooks.sensors.armada",
    "armada_hooks.links.lookout",
    "armada_hooks.triggers.armada",
)
HEAVY_PACKAGES = ("grpc", "google.protobuf", "armada_client")

PARSE_A_DAG = """
import pendulum
from armada_hooks._compat import DAG
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.sensors.armada import ArmadaJobSensor
from armada_hooks.states import JobState

with DAG("parsed", schedule=None, start_date=pendulum.datetime(2024, 1, 1)):
    ArmadaOperator(
        task_id="run",
        armada_queue="default",
        job_request={"podSpec": {"containers": [{"name": "main", "image": "busybox"}]}},
    )
    ArmadaOperator(task_id="later", job_request=lambda context: {}, deferrable=True)
    ArmadaOperator(task_id="from_file", armada_queue="default", job_request="jobs/report.yaml")
    ArmadaJobSensor(task_id="wait", job_id="01hzz", target_states=[JobState.RUNNING])
    ArmadaJobSensor(
        task_id="find", external_job_uri="airflow://d/t/r/-1", armada_queue="q",
        job_set_id="s", deferrable=True,
    )
"""


def loaded_after(code: str) -> set[str]:
    """Every module in ``sys.modules`` after ``code`` runs in a new Python."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def heavy(modules: set[str]) -> set[str]:
    """The gRPC, protobuf and armada_client modules, and any generated ``*_pb2``."""
    return {
        m
        for m in modules
        if m.endswith("_pb2") or any(m == p or m.startswith(f"{p}.") for p in HEAVY_PACKAGES)
    }


def imports(*modules: str) -> str:
    return "\n".join(f"import {m}" for m in modules)


def test_importing_the_dag_facing_modules_loads_no_grpc_or_protobuf() -> None:
    loaded = loaded_after(imports(*DAG_FACING))

    assert set(DAG_FACING) <= loaded
    assert "armada_hooks._protos" in loaded  # the Google API protos finder costs nothing
    assert heavy(loaded) == set()
    assert "armada_hooks.hooks.armada" not in loaded


def test_building_operators_and_sensors_as_dag_parsing_does_loads_none_either() -> None:
    loaded = loaded_after(textwrap.dedent(PARSE_A_DAG))

    assert heavy(loaded) == set()
    assert "armada_hooks.hooks.armada" not in loaded


TASK_BUILDS_ITS_REQUEST = """
from armada_hooks.hooks.armada import ArmadaHook
ArmadaHook.build_job_request_item({"priority": 1})
"""


def test_the_check_sees_them_once_a_task_builds_its_request() -> None:
    loaded = heavy(loaded_after(textwrap.dedent(PARSE_A_DAG) + TASK_BUILDS_ITS_REQUEST))

    assert {"grpc", "google.protobuf.json_format", "armada_client.armada.submit_pb2"} <= loaded
