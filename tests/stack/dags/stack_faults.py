"""DAGs of the real-stack fault scenarios 1-5 (tests/stack/test_stack_faults.py).

The faults are the local Armada's (``stack.armada.faults``), switched on by the test for
its run only; these DAGs only choose what waits on Armada meanwhile: a deferred task that
streams its job's log, and a synchronous one that polls from its worker. Jobs are short
and polls are quick, so that each scenario takes seconds. A retry is allowed but not
expected: an RPC fault the hook's retries absorb must not cost a task try.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from armada_hooks.operators.armada import ArmadaOperator

START = datetime(2024, 1, 1, tzinfo=UTC)
SHORT_DEADLINE_CONN = "armada_short_deadline"  # tests/stack/conftest.py: rpc_timeout 2 s
RELEASE_POLL = 1  # seconds between a held job's looks at its release file
HELD_QUEUE = "cordoned"  # scenario 5's queue, created and cordoned by the test


def job(annotations: dict[str, str] | None = None, command: tuple[str, ...] = ("true",)) -> dict:
    """A one-container job request (protobuf-JSON form) whose fate ``annotations`` choose."""
    resources = {"cpu": "10m", "memory": "16Mi"}
    return {
        "namespace": "default",
        "annotations": annotations or {},
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


def dag(dag_id: str) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
        tags=["armada-hooks-stack"],
    )


# Jobs that write 4 log lines while they run. A deferred task's job outlasts its worker's
# exit (5 s and more on two busy cores): a trigger that fires before the scheduler has seen
# that exit meets an Airflow 3.3.2 race ("state mismatch"; see conftest's run_dag).
SYNCHRONOUS_JOB = job({"armada-hooks/runtime": "4", "armada-hooks/log-lines": "4"})
DEFERRED_JOB = job({"armada-hooks/runtime": "12", "armada-hooks/log-lines": "4"})


def deferred_and_synchronous(conn_id: str = "armada_default") -> None:
    """The two waits every RPC-fault scenario runs: one deferred, one in its worker."""
    ArmadaOperator(
        task_id="deferred",
        armada_queue="default",
        armada_conn_id=conn_id,
        job_request=DEFERRED_JOB,
        deferrable=True,
        poll_interval=1,
        log_interval=1,
    )
    ArmadaOperator(
        task_id="synchronous",
        armada_queue="default",
        armada_conn_id=conn_id,
        job_request=SYNCHRONOUS_JOB,
        deferrable=False,
        poll_interval=1,
        log_interval=1,
    )


# 1: UNAVAILABLE bursts on every RPC.
with dag("stack_unavailable"):
    deferred_and_synchronous()

# 2: RPCs slower than the connection's 2 s deadline (DEADLINE_EXCEEDED on the client,
# while the server still carries the call out).
with dag("stack_deadlines"):
    deferred_and_synchronous(SHORT_DEADLINE_CONN)

# 3: RESOURCE_EXHAUSTED (throttling) on every RPC.
with dag("stack_resource_exhausted"):
    deferred_and_synchronous()

# 4: a job held (a real local process) until the run's release file exists, so that the
# test drops the event stream while the job runs.
HOLD = (
    "while [ ! -e '{{ dag_run.conf[\"release_file\"] }}' ]; do sleep "
    + str(RELEASE_POLL)
    + "; done; echo released"
)
HELD = job({"armada-hooks/execution": "subprocess"}, command=("sh", "-c", HOLD))

# The task defers in event mode: it follows its job set's event stream, and polls nothing.
with dag("stack_stream_dropped"):
    ArmadaOperator(
        task_id="event_mode",
        armada_queue="default",
        job_request=HELD,
        deferrable=True,
        event_mode=True,
        poll_interval=1,
        fetch_logs=False,
    )

# 5: deferred tasks, polling and in event mode, and one synchronous wait, while the local
# Armada restarts. Their jobs wait QUEUED in a queue the test has cordoned (Armada leases
# nothing from it), across the restart, until the test uncordons it.
with dag("stack_armada_restarted"):
    for task_id, options in {
        "polling": {"deferrable": True},
        "event_mode": {"deferrable": True, "event_mode": True},
        "synchronous": {"deferrable": False},
    }.items():
        ArmadaOperator(
            task_id=task_id,
            armada_queue=HELD_QUEUE,
            job_request=job({"armada-hooks/runtime": "2"}),
            poll_interval=1,
            fetch_logs=False,
            **options,
        )
