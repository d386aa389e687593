"""Armada from Airflow: the patterns armada-hooks supports, in one DAG.

- ``fan_out``: dynamic task mapping, one deferred Armada job per input;
- ``train``: a synchronous job whose container log streams into the task log;
- ``flaky``: a job that fails its first try; the retry resubmits it (reattach policy
  ``running_or_succeeded`` declines a FAILED job), and the second job succeeds;
- ``watch_external``: a sensor on a job somebody else submitted, found by its URI;
- ``pod_manifest``: a job written as a Kubernetes Pod manifest (quantities as ``kubectl``
  takes them, limits only: the requests are copied from them);
- ``report``: a job from a YAML file next to this one (``armada_job.yaml``, an
  ``armadactl`` job file rendered with Jinja);
- ``bad_spec``: a request whose requests and limits differ, which Armada would refuse: it
  fails at once, before any submission, with no retry, because retrying cannot help.

The DAG runs on Airflow 3 and on Airflow 2.11 (only the import of ``DAG`` differs); the
same operators run from Flyte workflows through Flyte's Airflow connector
(docs/airflow2-and-flyte.md).

Point the ``armada_default`` connection at your Armada (or the local one from
``armada-hooks local-armada``) and set ARMADA_QUEUE. The annotations under
``armada-hooks/`` only script jobs on the local Armada; a real Armada ignores them.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.sensors.armada import ArmadaJobSensor

QUEUE = os.environ.get("ARMADA_QUEUE", "demo")
EXTERNAL_JOB_SET = "nightly"
EXTERNAL_JOB_URI = "demo://nightly-report"

# The local Armada runs this for real (armada-hooks/execution: subprocess); on a real
# Armada the container image's python does.
TRAIN_SCRIPT = (
    "import time\n"
    "for epoch in range(5):\n"
    "    print(f'epoch {epoch}: loss {1 / (epoch + 1):.3f}', flush=True)\n"
    "    time.sleep(0.3)\n"
)

# A scripted job on the local Armada writes one log line (its default is three).
LOG_LINES = "armada-hooks/log-lines"

# What each task must end as: `make demo` checks the run against this.
EXPECTED = {
    "fan_out": ("success", 1),
    "train": ("success", 1),
    "flaky": ("success", 2),
    "watch_external": ("success", 1),
    "pod_manifest": ("success", 1),
    "report": ("success", 1),
    "bad_spec": ("failed", 1),
}


def job(command: list[str], cpu: str = "100m", limit: str | None = None, **annotations: str):
    """A one-container job request in Armada's JSON form (so Jinja can render it)."""
    return {
        "namespace": "default",
        "priority": 1.0,
        "annotations": {LOG_LINES: "1", **annotations},
        "podSpec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "python:3.11-slim",
                    "command": command,
                    "resources": {
                        "requests": {"cpu": {"string": cpu}, "memory": {"string": "64Mi"}},
                        "limits": {"cpu": {"string": limit or cpu}, "memory": {"string": "64Mi"}},
                    },
                }
            ],
        },
    }


def flaky_request(context):
    """Fails on the first try, succeeds on the next (the try is part of Airflow's context)."""
    first = context["ti"].try_number == 1
    return job(
        ["python", "-c", "print('training')"],
        **{
            "armada-hooks/outcome": "failed" if first else "succeeded",
            "armada-hooks/failure-reason": "OOMKilled" if first else "",
        },
    )


with DAG(
    dag_id="armada_example",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 0},
    tags=["armada", "example"],
) as dag:
    fan_out = ArmadaOperator.partial(
        task_id="fan_out", armada_queue=QUEUE, deferrable=True, poll_interval=0.5
    ).expand(
        job_request=[
            job(["echo", f"shard {shard}"], **{"armada-hooks/runtime": f"{5 + shard}s"})
            for shard in range(3)
        ]
    )

    train = ArmadaOperator(
        task_id="train",
        armada_queue=QUEUE,
        deferrable=False,
        fetch_logs=True,
        poll_interval=0.5,
        job_request=job(
            [
                sys.executable,
                "-c",
                TRAIN_SCRIPT,
            ],
            **{"armada-hooks/execution": "subprocess"},
        ),
        labels={"team": "ml"},
    )

    flaky = ArmadaOperator(
        task_id="flaky",
        armada_queue=QUEUE,
        job_request=flaky_request,
        reattach_policy="running_or_succeeded",
        retries=1,
        retry_delay=timedelta(seconds=1),
        poll_interval=0.5,
    )

    watch_external = ArmadaJobSensor(
        task_id="watch_external",
        external_job_uri=EXTERNAL_JOB_URI,
        armada_queue=QUEUE,
        job_set_id=EXTERNAL_JOB_SET,
        poke_interval=0.5,
        timeout=120,
        deferrable=True,
    )

    pod_manifest = ArmadaOperator(
        task_id="pod_manifest",
        armada_queue=QUEUE,
        poll_interval=0.5,
        job_request={
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "labels": {"team": "ml"},
                "annotations": {"armada-hooks/runtime": "2s", LOG_LINES: "1"},
            },
            "spec": {
                "restartPolicy": "Never",
                "containers": [
                    {
                        "name": "main",
                        "image": "python:3.11-slim",
                        "command": ["python", "-c", "print('day {{ ds }}')"],
                        "resources": {"limits": {"cpu": "250m", "memory": "128Mi"}},
                    }
                ],
            },
        },
    )

    report = ArmadaOperator(
        task_id="report", armada_queue=QUEUE, job_request="armada_job.yaml", poll_interval=0.5
    )

    bad_spec = ArmadaOperator(
        task_id="bad_spec",
        armada_queue=QUEUE,
        job_request=job(["echo", "never runs"], cpu="1", limit="2"),
        retries=2,
        retry_delay=timedelta(seconds=1),
    )

    fan_out >> train >> flaky
