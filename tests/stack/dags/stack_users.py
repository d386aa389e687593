"""DAGs of the real-stack scenarios 8, 9, 16 and 17 (tests/stack/test_stack_users.py): a
worker killed, a task running twice at once, and a user marking failed or clearing a
deferred task.

The jobs of 8, 9 and 17 are real local processes that hold until the run's release file
exists, so that a job is still running when the retry looks for it, and ends only once
the test lets it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from armada_hooks.operators.armada import ArmadaOperator

START = datetime(2024, 1, 1, tzinfo=UTC)
RELEASE_POLL = 1  # seconds between a held job's looks at its release file
HOLD = (
    "while [ ! -e '{{ dag_run.conf[\"release_file\"] }}' ]; do sleep "
    + str(RELEASE_POLL)
    + "; done"
)


def job(annotations: dict[str, str], command: tuple[str, ...] = ("true",)) -> dict[str, object]:
    """A one-container job request in protobuf-JSON form."""
    resources = {"cpu": "10m", "memory": "16Mi"}
    return {
        "namespace": "default",
        "annotations": annotations,
        "podSpec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:latest",
                    "command": list(command),
                    "resources": {"requests": resources, "limits": resources},
                }
            ],
            "restartPolicy": "Never",
        },
    }


def dag(dag_id: str, retries: int) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        default_args={"retries": retries, "retry_delay": timedelta(seconds=1)},
        tags=["armada-hooks-stack"],
    )


HELD = job({"armada-hooks/execution": "subprocess"}, ("sh", "-c", HOLD))

# 8: the worker is killed while the job's submission is unanswered; the retry reattaches.
with dag("stack_worker_killed", retries=1):
    ArmadaOperator(
        task_id="worker_killed",
        armada_queue="default",
        job_request=HELD,
        deferrable=True,
        poll_interval=1,
        fetch_logs=False,
    )

# 9: only the supervisor is killed: its task process and the retry submit at once.
with dag("stack_twice_at_once", retries=1):
    ArmadaOperator(
        task_id="twice_at_once",
        armada_queue="default",
        job_request=HELD,
        deferrable=True,
        poll_interval=1,
        fetch_logs=False,
    )

# 16: the job runs for an hour, until a user marks the deferred task failed.
with dag("stack_marked_failed", retries=1):
    ArmadaOperator(
        task_id="marked_failed",
        armada_queue="default",
        job_request=job({"armada-hooks/runtime": "3600"}),
        deferrable=True,
        poll_interval=1,
    )

# 17: a user clears the deferred task while its job runs; the next try's job is held
# until the run's release file exists. A task re-run by clearing declines its earlier
# job (the docs' advice): the next try may start before the cleared try's trigger has
# cancelled that job, and then cancels it itself before it submits.
with dag("stack_cleared", retries=0):
    ArmadaOperator(
        task_id="cleared",
        armada_queue="default",
        job_request=HELD,
        deferrable=True,
        poll_interval=1,
        fetch_logs=False,
        reattach_policy="never",
    )
