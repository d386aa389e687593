"""The real armada_client clients (and ours) satisfy the protocols, at run time and under mypy."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import grpc
import pytest
from armada_client.asyncio_client import ArmadaAsyncIOClient
from armada_client.client import ArmadaClient

from armada_hooks.hooks.logs import BinocularsLogClient
from armada_hooks.protocols import ArmadaProtocol, AsyncArmadaProtocol, LogProtocol

ROOT = Path(__file__).resolve().parents[2]


def test_armada_client_satisfies_the_protocol_at_run_time() -> None:
    client = ArmadaClient(grpc.insecure_channel("127.0.0.1:1"))
    assert isinstance(client, ArmadaProtocol)
    # runtime_checkable checks that the methods exist, not their signatures: mypy does that.
    assert not isinstance(object(), ArmadaProtocol)


async def test_async_client_satisfies_the_async_protocol_at_run_time() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")
    try:
        assert isinstance(ArmadaAsyncIOClient(channel), AsyncArmadaProtocol)
    finally:
        await channel.close()


def test_binoculars_log_client_satisfies_the_log_protocol() -> None:
    assert isinstance(BinocularsLogClient(grpc.insecure_channel("127.0.0.1:1")), LogProtocol)


def test_protocols_import_no_airflow() -> None:
    code = (
        "import sys; import armada_hooks.protocols; "
        "sys.exit(1 if any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


CONFORMS = """
from armada_client.asyncio_client import ArmadaAsyncIOClient
from armada_client.client import ArmadaClient
from armada_hooks.protocols import ArmadaProtocol, AsyncArmadaProtocol, LogProtocol
from armada_hooks.testing import InMemoryArmada

def sync(client: ArmadaClient) -> ArmadaProtocol:
    return client

def asynchronous(client: ArmadaAsyncIOClient) -> AsyncArmadaProtocol:
    return client

def in_memory(armada: InMemoryArmada) -> tuple[ArmadaProtocol, AsyncArmadaProtocol, LogProtocol]:
    return armada.client(), armada.async_client(), armada.log_client()
"""

DOES_NOT_CONFORM = """
from armada_hooks.protocols import ArmadaProtocol

class Incomplete:
    def get_job_status(self, job_ids: list[str]) -> int:
        return 0

def sync(client: Incomplete) -> ArmadaProtocol:
    return client
"""


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "snippet.py"
    module.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("source", "conforms"),
    [(CONFORMS, True), (DOES_NOT_CONFORM, False)],
    ids=["clients", "control"],
)
def test_conformance_is_checked_by_mypy(tmp_path: Path, source: str, conforms: bool) -> None:
    result = _mypy(tmp_path, source)
    if conforms:
        assert result.returncode == 0, result.stdout
    else:
        assert result.returncode == 1
        assert (
            'Incompatible return value type (got "Incomplete", expected "ArmadaProtocol")'
            in result.stdout
        )
