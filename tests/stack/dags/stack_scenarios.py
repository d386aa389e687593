"""DAGs of the real-stack scenarios (tests/stack), triggered over the REST API.

Each job's fate is chosen by the local Armada's ``armada-hooks/*`` annotations; a retry's
job can differ from the first try's through Jinja (``ti.try_number``), as a user's
templated request can.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from armada_hooks.operators.armada import ArmadaOperator

START = datetime(2024, 1, 1, tzinfo=UTC)
RETRY_FAST = {"retries": 2, "retry_delay": timedelta(seconds=1)}
MAPPED = 100  # scenario 18: mapped deferred tasks
RELEASE_POLL = 1  # seconds between a held job's looks at its release file


def job(
    annotations: dict[str, str] | None = None,
    *,
    command: tuple[str, ...] = ("true",),
    cpu: str = "10m",
    limits_cpu: str | None = None,
    priority_class: str | None = None,
) -> dict[str, object]:
    """A one-container job request in protobuf-JSON form."""
    pod_spec: dict[str, object] = {
        "containers": [
            {
                "name": "main",
                "image": "busybox:latest",
                "command": list(command),
                "resources": {
                    "requests": {"cpu": cpu, "memory": "16Mi"},
                    "limits": {"cpu": limits_cpu or cpu, "memory": "16Mi"},
                },
            }
        ],
        "restartPolicy": "Never",
    }
    if priority_class:
        pod_spec["priorityClassName"] = priority_class
    return {"namespace": "default", "annotations": annotations or {}, "podSpec": pod_spec}


def dag(dag_id: str, **default_args: object) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=START,
        catchup=False,
        default_args=default_args,
        tags=["armada-hooks-stack"],
    )


# 14: a spec Armada refuses, and a job Armada rejects: failed at once, no retry.
with dag("stack_rejected", **RETRY_FAST):
    ArmadaOperator(
        task_id="rejected_by_armada",
        armada_queue="default",
        job_request=job({"armada-hooks/outcome": "rejected"}),
        deferrable=True,
        poll_interval=1,
    )
    ArmadaOperator(
        task_id="invalid_spec",
        armada_queue="default",
        job_request=job(cpu="100m", limits_cpu="200m"),  # requests must equal limits
        deferrable=True,
        poll_interval=1,
    )

# 15: a connection whose token Armada refuses: failed at once, naming the connection.
with dag("stack_wrong_token", **RETRY_FAST):
    ArmadaOperator(
        task_id="wrong_token",
        armada_queue="default",
        armada_conn_id="armada_wrong_token",
        job_request=job(),
        deferrable=True,
        poll_interval=1,
    )

# 12 and 10: the first try's job runs for an hour, until the test cancels or preempts it
# outside Airflow; the retry's job is short.
HELD_THEN_SHORT = {"armada-hooks/runtime": "{{ '3600' if ti.try_number == 1 else '1' }}"}
with dag("stack_cancelled_outside", retries=1, retry_delay=timedelta(seconds=1)):
    ArmadaOperator(
        task_id="cancelled_outside",
        armada_queue="default",
        job_request=job(HELD_THEN_SHORT),
        deferrable=True,
        poll_interval=1,
    )
with dag("stack_preempted", retries=1, retry_delay=timedelta(seconds=1)):
    ArmadaOperator(
        task_id="preempted",
        armada_queue="default",
        job_request=job(HELD_THEN_SHORT, priority_class="armada-preemptible"),
        deferrable=True,
        poll_interval=1,
    )

# 11: the lease is returned once (the job is requeued), then the job runs and succeeds.
with dag("stack_lease_returned", **RETRY_FAST):
    ArmadaOperator(
        task_id="lease_returned",
        armada_queue="default",
        job_request=job({"armada-hooks/lease-returns": "1", "armada-hooks/runtime": "1"}),
        deferrable=True,
        poll_interval=1,
    )

# 13: a job that never reaches the query API: lost after the acknowledgement timeout.
# The timeout outlasts the deferring worker's exit (5 s and more on two busy cores): a
# trigger that fires while the scheduler has not yet seen that exit meets an Airflow
# 3.3.2 race (the stale report fails the re-queued task: "state mismatch").
with dag("stack_lost", retries=0):
    ArmadaOperator(
        task_id="lost",
        armada_queue="default",
        job_request=job({"armada-hooks/lost": "true", "armada-hooks/runtime": "3600"}),
        deferrable=True,
        poll_interval=1,
        acknowledgement_timeout=15,
    )

# 18: many mapped deferred tasks; each job is a real local process that holds until the
# run's release file exists, so that the test can count polls while all of them wait.
HOLD = (
    "while [ ! -e '{{ dag_run.conf[\"release_file\"] }}' ]; do sleep "
    + str(RELEASE_POLL)
    + "; done"
)
with dag("stack_mapped", retries=0):
    ArmadaOperator.partial(
        task_id="mapped",
        armada_queue="default",
        deferrable=True,
        poll_interval=2,
        fetch_logs=False,
    ).expand(
        job_request=[
            job({"armada-hooks/execution": "subprocess"}, command=("sh", "-c", HOLD))
            for _ in range(MAPPED)
        ]
    )

# 7 and 6: tasks deferred on one triggerer, which is restarted (7) or killed (6) while
# the jobs run; each job is held until the run's release file appears. In 6 the jobs
# write a numbered line a second, so that the task logs show what the triggers fetched.
RESTARTED = 10
KILLED = 50
LINES = (
    "i=0; while [ ! -e '{{ dag_run.conf[\"release_file\"] }}' ]; do i=$((i+1)); "
    'echo "container line $i"; sleep 1; done; echo "container last line"'
)
with dag("stack_triggerer_restart", retries=0):
    ArmadaOperator.partial(
        task_id="held",
        armada_queue="default",
        deferrable=True,
        poll_interval=1,
        fetch_logs=False,
    ).expand(
        job_request=[
            job({"armada-hooks/execution": "subprocess"}, command=("sh", "-c", HOLD))
            for _ in range(RESTARTED)
        ]
    )
with dag("stack_triggerer_killed", retries=0):
    ArmadaOperator.partial(
        task_id="streaming",
        armada_queue="default",
        deferrable=True,
        poll_interval=2,
        fetch_logs=True,
        log_interval=1,
    ).expand(
        job_request=[
            job({"armada-hooks/execution": "subprocess"}, command=("sh", "-c", LINES))
            for _ in range(KILLED)
        ]
    )
