"""Wire compatibility: armada-airflow 0.5.6's own clients, in their own environment (grpcio
1.58, protobuf 4), against our job service; and why they need a process of their own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from js_helpers import eventually, historic, submit

from armada_hooks.states import JobState

ROOT = Path(__file__).resolve().parents[2]
HISTORIC_PYTHON = ROOT / ".compat" / "armada-airflow-0.5" / "bin" / "python"
SCRIPT = Path(__file__).with_name("historic_client.py")


@pytest.fixture(scope="module")
def historic_python() -> Path:
    """The historic environment's Python, built by `make historic-client` if missing."""
    subprocess.run(["make", "-s", "historic-client"], cwd=ROOT, check=True, timeout=300)
    return HISTORIC_PYTHON


def ask_historically(python: Path, target: str, job_set: str, *job_ids: str) -> dict:
    done = subprocess.run(
        [str(python), str(SCRIPT), target, "default", job_set, *job_ids],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.local_armada(time_scale=20)
def test_the_old_operators_clients_work_against_ours_unchanged(
    local_armada, job_service, js_client, historic_python
):
    ok, failed, running = submit(
        local_armada,
        "old-clients",
        {"armada-hooks/runtime": "0"},
        {
            "armada-hooks/outcome": "failed",
            "armada-hooks/failure-reason": "oom",
            "armada-hooks/runtime": "0",
        },
        {"armada-hooks/runtime": "1h"},
    )
    local_armada.wait_for_state(ok)
    local_armada.wait_for_state(failed)
    local_armada.wait_for_state(running, states=[JobState.RUNNING])
    eventually(lambda: historic(js_client, "default", "old-clients", running)[0] == "RUNNING")
    result = ask_historically(
        historic_python, job_service.target, "old-clients", ok, failed, running, "ghost"
    )
    assert result["grpc"] == "1.58.0"
    expected = [["SUCCEEDED", ""], ["FAILED", "oom"], ["RUNNING", ""], ["JOB_ID_NOT_FOUND", ""]]
    assert result["sync"] == expected
    assert result["async"] == expected
    assert result["health"] == ["SERVING", "SERVING"]


def test_old_and_new_stubs_cannot_share_one_process(historic_python):
    # Both register jobservice.* messages in protobuf's default pool: the second refuses.
    old_site = subprocess.run(
        [
            str(historic_python),
            "-c",
            "import armada, os; print(os.path.dirname(armada.__path__[0]))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    code = (
        "import sys\n"
        "import armada_hooks.jobservice.protos.jobservice_pb2\n"
        f"sys.path.insert(0, {old_site!r})\n"
        "import armada.jobservice.jobservice_pb2\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0
    assert "duplicate symbol 'jobservice." in done.stderr
