"""DAGs of the TLS scenarios (tests/stack/test_stack_tls.py): a deferred task on a local
Armada served with TLS, and one on a local Armada that wants a client certificate too.

Each job is a real local process that writes a known line, then holds until the run's
release file exists (so that its trigger polls over TLS, and the scheduler has seen the
deferral before the trigger fires), then writes another; the lines are fetched from the
same TLS endpoint's Binoculars into the task log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from armada_hooks.operators.armada import ArmadaOperator

START = datetime(2024, 1, 1, tzinfo=UTC)
CONNECTIONS = {"stack_tls": "armada_tls", "stack_mtls": "armada_mtls"}


def tls_job(dag_id: str) -> dict[str, object]:
    """A held job whose log lines name its DAG."""
    script = (
        f"echo '{dag_id}: hello over TLS'; "
        "while [ ! -e '{{ dag_run.conf[\"release_file\"] }}' ]; do sleep 1; done; "
        f"echo '{dag_id}: goodbye'"
    )
    return {
        "namespace": "default",
        "annotations": {"armada-hooks/execution": "subprocess"},
        "podSpec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:latest",
                    "command": ["sh", "-c", script],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"cpu": "10m", "memory": "16Mi"},
                    },
                }
            ],
            "restartPolicy": "Never",
        },
    }


for dag_id, conn_id in CONNECTIONS.items():
    with DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        default_args={"retries": 0},
        tags=["armada-hooks-stack"],
    ):
        ArmadaOperator(
            task_id="over_tls",
            armada_queue="default",
            armada_conn_id=conn_id,
            job_request=tls_job(dag_id),
            deferrable=True,
            poll_interval=1,
            fetch_logs=True,
            log_interval=1,
        )
