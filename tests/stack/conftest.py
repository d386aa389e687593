"""The real stack of tests/stack: one per session, serving tests/stack/dags.

A second connection, ``armada_wrong_token``, is ``armada_default`` with a token the local
Armada refuses; a third, ``armada_short_deadline``, has a 2 s ``rpc_timeout``.
``armada_tls`` and ``armada_mtls`` point at two more local Armadas, served with TLS and
with mutual TLS (each with its own token; the CA and client certificate from a throwaway
test PKI). The local Armada keeps its state in a SQLite file, so that a restart serves
its jobs again. Each triggerer runs at most 60 triggers, so that the 100 mapped tasks of
scenario 18 must be shared by both. Every scenario's wall time is printed at the end.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from armada_hooks.testing.server import LocalArmada
    from armada_hooks.testing.stack import AirflowStack
    from armada_hooks.testing.stack.runs import StackRun
    from armada_hooks.testing.tls import TestPki

DAGS = Path(__file__).resolve().parent / "dags"
WRONG_TOKEN_CONN = "armada_wrong_token"
SHORT_DEADLINE_CONN = "armada_short_deadline"
SHORT_DEADLINE = 2  # seconds, its rpc_timeout
TLS_CONN = "armada_tls"
MTLS_CONN = "armada_mtls"
TRIGGERER_CAPACITY = 60
SCENARIO_DAGS = (
    "stack_rejected",
    "stack_wrong_token",
    "stack_cancelled_outside",
    "stack_preempted",
    "stack_lease_returned",
    "stack_lost",
    "stack_mapped",
    "stack_triggerer_restart",
    "stack_triggerer_killed",
    "stack_unavailable",
    "stack_deadlines",
    "stack_resource_exhausted",
    "stack_stream_dropped",
    "stack_armada_restarted",
    "stack_ui",
    "stack_worker_killed",
    "stack_twice_at_once",
    "stack_marked_failed",
    "stack_cleared",
    "stack_tls",
    "stack_mtls",
    "stack_secrets",
)
# A running task whose supervisor has not heartbeaten for this long is failed (and
# retried) by the scheduler: scenarios 8 and 9 kill a supervisor (Airflow's default: 300 s).
HEARTBEAT_TIMEOUT = 20
TIMINGS: dict[str, float] = {}


@dataclass(frozen=True)
class TlsArmadas:
    """The local Armadas served with TLS and with mutual TLS, and their test PKI."""

    tls: LocalArmada
    mtls: LocalArmada
    pki: TestPki
    pki_files: dict[str, Path]

    def by_conn_id(self) -> dict[str, LocalArmada]:
        """Connection id -> the local Armada it points at."""
        return {TLS_CONN: self.tls, MTLS_CONN: self.mtls}

    def connections(self) -> dict[str, dict[str, object]]:
        """Their Airflow connections: the CA as PEM text in one, every certificate as a
        file path in the other (both forms a connection takes)."""
        mtls = json.loads(self.mtls.airflow_connection())
        mtls["extra"].update(
            {name: str(self.pki_files[name]) for name in ("ca_cert", "client_cert", "client_key")}
        )
        return {
            TLS_CONN: json.loads(self.tls.airflow_connection(ca_cert=self.pki.ca_cert)),
            MTLS_CONN: mtls,
        }


@pytest.fixture(scope="session")
def tls_armadas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsArmadas]:
    """Two local Armadas (TLS; mutual TLS), each with its own token, for the whole session."""
    from armada_hooks.testing.server import LocalArmada, ServerTls
    from armada_hooks.testing.tls import make_test_pki

    pki = make_test_pki()
    key, chain = pki.server_key, pki.server_cert
    armadas = TlsArmadas(
        tls=LocalArmada(
            queues=["default"],
            token=secrets.token_urlsafe(24),
            tls=ServerTls(cert_chain=chain, private_key=key),
        ),
        mtls=LocalArmada(
            queues=["default"],
            token=secrets.token_urlsafe(24),
            tls=ServerTls(cert_chain=chain, private_key=key, client_ca=pki.ca_cert),
        ),
        pki=pki,
        pki_files=pki.write(tmp_path_factory.mktemp("pki")),
    )
    try:
        armadas.tls.start()
        armadas.mtls.start()
        yield armadas
    finally:
        armadas.tls.stop()
        armadas.mtls.stop()


@pytest.fixture(scope="session")
def airflow_stack_options(
    tmp_path_factory: pytest.TempPathFactory, tls_armadas: TlsArmadas
) -> dict[str, Any]:
    state = tmp_path_factory.mktemp("local-armada") / "state.sqlite"
    return {
        "dags_folder": DAGS,
        "triggerer_capacity": TRIGGERER_CAPACITY,
        "armada_options": {"state_path": state},
        "extra_connections": {
            WRONG_TOKEN_CONN: {"password": "not-the-armada-token"},
            SHORT_DEADLINE_CONN: {"extra": {"rpc_timeout": SHORT_DEADLINE}},
            **tls_armadas.connections(),
        },
        "config": {
            ("scheduler", "task_instance_heartbeat_timeout"): str(HEARTBEAT_TIMEOUT),
            ("scheduler", "task_instance_heartbeat_timeout_detection_interval"): "2",
        },
    }


@pytest.fixture(scope="session")
def stack(airflow_stack: AirflowStack) -> AirflowStack:
    """The session's stack, once every scenario DAG is parsed."""
    begun = time.monotonic()
    airflow_stack.wait_for_dags(*SCENARIO_DAGS)
    TIMINGS["stack start-up"] = airflow_stack.startup_seconds["total"]
    TIMINGS["DAGs parsed (after start-up)"] = time.monotonic() - begun
    return airflow_stack


@pytest.fixture
def run_dag(stack: AirflowStack) -> Callable[..., StackRun]:
    """``run_dag(dag_id, timing=..., **options)``: the stack's run_dag, its wall time kept."""

    def run(dag_id: str, *, timing: str, **options: Any) -> StackRun:
        finished = stack.run_dag(dag_id, **options)
        TIMINGS[timing] = finished.seconds
        # The scheduler failed no task on a stale executor report (an Airflow race). A try
        # failed for want of heartbeats is failed through the executor, as a mismatch too.
        mismatches = stack.postgres.query(
            "SELECT extra FROM log m WHERE event = 'state mismatch' AND dag_id = %s "
            "AND run_id = %s AND NOT EXISTS (SELECT 1 FROM log h WHERE h.event = "
            "'heartbeat timeout' AND h.dag_id = m.dag_id AND h.run_id = m.run_id AND "
            "h.task_id = m.task_id AND h.map_index = m.map_index AND h.try_number = m.try_number)",
            (dag_id, finished.run_id),
        )
        assert mismatches == [], mismatches
        return finished

    return run


@pytest.fixture
def release_file(tmp_path: Path) -> Iterator[Path]:
    """The path a scenario's held jobs wait for; created at teardown too, so that a failed
    scenario never leaves its tasks holding the stack's worker and trigger slots."""
    release = tmp_path / "release"
    yield release
    release.touch()


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """``wait_for(condition, timeout, what)``: poll until truthy; that value."""
    return _wait_for


@pytest.fixture
def wait_deferred(stack: AirflowStack) -> Callable[..., None]:
    """``wait_deferred(dag_id, run_id, n=1)``: until the run's ``n`` task instances are
    deferred and the scheduler has logged each deferring worker's exit.

    A trigger that fires before the scheduler has seen that exit meets an Airflow 3.3.2
    race (the stale executor report fails the re-queued task: "state mismatch"), so a test
    that holds a job releases it only after this.
    """

    def wait(dag_id: str, run_id: str, n: int = 1, timeout: float = 180.0) -> None:
        def deferred() -> list[str]:
            try:
                tis = stack.rest.task_instances(dag_id, run_id)
            except httpx.TimeoutException:  # an API server slowed by a loaded machine
                return []
            ok = len(tis) == n and all(ti["state"] == "deferred" for ti in tis)
            return [str(ti["id"]) for ti in tis] if ok else []

        ti_ids = _wait_for(deferred, timeout, f"{n} deferred task(s) of {dag_id}")
        log = stack.processes["scheduler"].log_path

        def seen() -> bool:
            text = log.read_text(errors="replace")
            return all(_finished_deferred(text, ti_id) for ti_id in ti_ids)

        _wait_for(seen, timeout, f"the scheduler to see {dag_id}'s workers defer")

    return wait


def _finished_deferred(scheduler_log: str, ti_id: str) -> bool:
    """Whether the scheduler logged the executor's report of ``ti_id``'s deferring try."""
    return any(
        f"ti_id={ti_id}," in line and "state=deferred" in line
        for line in scheduler_log.splitlines()
        if "TaskInstance Finished" in line
    )


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll until ``condition()`` is truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("real stack: wall times (s)")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f}  {name}")
