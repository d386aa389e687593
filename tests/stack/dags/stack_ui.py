"""The DAG of the UI checks (tests/stack/test_stack_ui.py): one deferred job that logs.

The local Armada's job writes ``UI_LOG_LINES`` (its ``armada-hooks/logs`` annotation), which
the trigger fetches from Binoculars into the task log that the browser shows.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG

from armada_hooks.operators.armada import ArmadaOperator

UI_LOG_LINES = ("ui check: container started", "ui check: 42 rows written", "ui check: done")

with DAG(
    "stack_ui",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["armada-hooks-stack"],
):
    ArmadaOperator(
        task_id="logs_to_ui",
        armada_queue="default",
        job_request={
            "namespace": "default",
            "annotations": {
                "armada-hooks/logs": "\n".join(UI_LOG_LINES),
                "armada-hooks/runtime": "2",
            },
            "podSpec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "busybox:latest",
                        "command": ["true"],
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
        log_interval=1,
    )
