"""The real stack of tests/stack: one per session, serving tests/stack/dags.

A second connection, ``armada_wrong_token``, is ``armada_default`` with a token the local
Armada refuses; a third, ``armada_short_deadline``, has a 2 s ``rpc_timeout``. The local
Armada keeps its state in a SQLite file, so that a restart serves its jobs again. Each
triggerer runs at most 60 triggers, so that the 100 mapped tasks of scenario 18 must be
shared by both. Every scenario's wall time is printed at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from armada_hooks.testing.stack import AirflowStack
    from armada_hooks.testing.stack.runs import StackRun

DAGS = Path(__file__).resolve().parent / "dags"
WRONG_TOKEN_CONN = "armada_wrong_token"
SHORT_DEADLINE_CONN = "armada_short_deadline"
SHORT_DEADLINE = 2  # seconds, its rpc_timeout
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
)
# A running task whose supervisor has not heartbeaten for this long is failed (and
# retried) by the scheduler: scenarios 8 and 9 kill a supervisor (Airflow's default: 300 s).
HEARTBEAT_TIMEOUT = 20
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def airflow_stack_options(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state = tmp_path_factory.mktemp("local-armada") / "state.sqlite"
    return {
        "dags_folder": DAGS,
        "triggerer_capacity": TRIGGERER_CAPACITY,
        "armada_options": {"state_path": state},
        "extra_connections": {
            WRONG_TOKEN_CONN: {"password": "not-the-armada-token"},
            SHORT_DEADLINE_CONN: {"extra": {"rpc_timeout": SHORT_DEADLINE}},
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
def wait_for() -> Callable[..., Any]:
    """``wait_for(condition, timeout, what)``: poll until truthy; that value."""
    return _wait_for


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
