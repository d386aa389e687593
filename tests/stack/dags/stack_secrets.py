"""DAG of the secrets scan (tests/stack/test_zz_secrets.py): a deferred task on a connection
stored in Airflow's database (created over the REST API, its password Fernet-encrypted).

Its job is a real local process that writes a line a second until the run's release
file exists, so that the test can look at the trigger's row while the task is deferred;
the request is templated (rendered fields), the log streamed, the job id returned (XCom).
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from armada_hooks.operators.armada import ArmadaOperator

DB_CONN = "armada_stored"  # created by the test, not by the fixture's environment
HOLD = (
    "i=0; while [ ! -e '{{ dag_run.conf[\"release_file\"] }}' ]; do i=$((i+1)); "
    'echo "secrets probe line $i"; sleep 1; done'
)

with DAG(
    "stack_secrets",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 0},
    tags=["armada-hooks-stack"],
):
    ArmadaOperator(
        task_id="stored_connection",
        armada_queue="default",
        armada_conn_id=DB_CONN,
        job_request={
            "namespace": "default",
            "annotations": {"armada-hooks/execution": "subprocess"},
            "podSpec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox:latest",
                        "command": ["sh", "-c", HOLD],
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"cpu": "10m", "memory": "16Mi"},
                        },
                    }
                ],
                "restartPolicy": "Never",
            },
        },
        deferrable=True,
        poll_interval=1,
        fetch_logs=True,
        log_interval=1,
    )
