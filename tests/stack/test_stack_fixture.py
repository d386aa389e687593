"""The real stack itself: loopback only, healthy, two triggerers, a password-protected login."""

from __future__ import annotations

import httpx
import pytest

from armada_hooks.testing.stack import AirflowRest, AirflowRestError
from armada_hooks.testing.stack.processes import LOOPBACK


def test_every_process_listens_on_loopback_only(stack):
    listening = stack.listening()
    assert set(listening) >= {
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer-1",
        "triggerer-2",
        "postgres",
    }
    assert listening["api-server"] == {(LOOPBACK, stack.api_port)}
    assert listening["postgres"] == {(LOOPBACK, stack.postgres.port)}
    # --skip-serve-logs: the scheduler and triggerers serve no logs; nothing else binds.
    for name in ("scheduler", "dag-processor", "triggerer-1", "triggerer-2"):
        assert listening[name] == set(), name
    assert stack.armada.target == f"{LOOPBACK}:{stack.armada.port}"


def test_the_stack_runs_on_postgres_with_every_component_healthy(stack):
    health = stack.rest.health()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    assert stack.live_triggerers() == 2
    jobs = dict(
        stack.postgres.query(
            "SELECT job_type, count(*) FROM job WHERE state = 'running' GROUP BY job_type"
        )
    )
    assert jobs["SchedulerJob"] == 1
    assert jobs["TriggererJob"] == 2
    assert jobs["DagProcessorJob"] == 1
    assert stack.env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert stack.env["AIRFLOW_HOME"] != stack.artifacts_dir


def test_the_rest_api_wants_the_generated_admin_password(stack):
    wrong = AirflowRest(stack.api_url, "admin", "admin")
    try:
        with pytest.raises(AirflowRestError, match="401"):
            wrong.login()
    finally:
        wrong.close()
    anonymous = httpx.get(f"{stack.api_url}/api/v2/dags", timeout=10)
    assert anonymous.status_code == 401
    assert stack.rest.dag("stack_rejected")["is_paused"] is False


def test_every_process_keeps_its_log_as_an_artifact(stack):
    for name, process in stack.processes.items():
        assert process.log_path.parent == stack.artifacts_dir
        assert process.log_path.stat().st_size > 0, name
    assert (stack.artifacts_dir / "postgres.log").stat().st_size > 0
    assert "Database migration done!" in (stack.artifacts_dir / "db-migrate.log").read_text()
