"""Exactly once: a retried ArmadaOperator reattaches to its job instead of submitting a twin.

Each scenario runs a real DAG with ``dag.test()`` against the local Armada and counts
what reached the server: its jobs and its ``SubmitJobs`` counter.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from armada_hooks._compat import DAG
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.operators.armada import ArmadaOperator, client_id_for
from armada_hooks.states import JobState
from armada_hooks.testing.behaviour import OUTCOME, RUNTIME
from armada_hooks.testing.dags import run_dag, xcom_values
from armada_hooks.testing.specs import job_request_item

POLL = 0.1
NO_DELAY = timedelta(seconds=0)
START = datetime(2024, 1, 1, tzinfo=UTC)
ACTIVE = "QUEUED|LEASED|PENDING|RUNNING"  # a job that has not ended


class NoRpcRetryHook(ArmadaHook):
    """The stock hook retries a failing RPC up to 10 times with backoff; this one gives up at
    once, so a single injected fault fails the task's try (the scenario under test)."""

    STATUS_RETRIES = 0


class NoRpcRetryOperator(ArmadaOperator):
    hook_class = NoRpcRetryHook


def make_dag(request: pytest.FixtureRequest, **kwargs: Any) -> DAG:
    dag_id = "reattach_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    return DAG(dag_id, schedule=None, start_date=START, **kwargs)


def tis(dag_run: Any) -> dict[str, Any]:
    return {ti.task_id: ti for ti in dag_run.get_task_instances()}


def return_value(dag_run: Any, task_id: str) -> Any:
    return xcom_values(dag_run)[(task_id, "return_value")]


def jobs_of(armada: Any, task_id: str) -> list[Any]:
    """The server's jobs whose external URI names ``task_id``, oldest first."""
    return [job for job in armada.jobs() if f"/{task_id}/" in job.external_job_uri]


# -- running_or_succeeded (the default) ----------------------------------------------------


@pytest.mark.local_armada(time_scale=1)
def test_failed_try_then_retry_reattaches_to_the_one_running_job(
    request, local_armada, local_armada_connection, capfd
) -> None:
    # The first try submits, then its first status poll fails (UNAVAILABLE, no RPC retry):
    # the try fails while the job keeps running on Armada.
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=1)
    with make_dag(request) as dag:
        NoRpcRetryOperator(
            task_id="flaky_wait",
            armada_queue="default",
            job_request=job_request_item(annotations={RUNTIME: "3s"}),
            retries=1,
            retry_delay=NO_DELAY,
            poll_interval=POLL,
        )
    dr = run_dag(dag)
    output = "".join(capfd.readouterr())

    ti = tis(dr)["flaky_wait"]
    assert (ti.state, ti.try_number) == ("success", 2)
    (job,) = local_armada.jobs()
    assert local_armada.rpc_count("SubmitJobs") == 1
    assert job.state is JobState.SUCCEEDED
    assert return_value(dr, "flaky_wait") == job.job_id
    assert "GetJobStatus failed with UNAVAILABLE" in output  # the first try did fail
    assert re.search(rf"Reattaching to Armada job {job.job_id} \({ACTIVE}\)", output)


# -- the other policies ----------------------------------------------------------------


@pytest.mark.local_armada(time_scale=1)
def test_never_cancels_the_running_first_job_and_submits_a_fresh_one(
    request, local_armada, local_armada_connection, capfd
) -> None:
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=1)
    with make_dag(request) as dag:
        NoRpcRetryOperator(
            task_id="fresh",
            armada_queue="default",
            job_request=job_request_item(annotations={RUNTIME: "3s"}),
            retries=1,
            retry_delay=NO_DELAY,
            poll_interval=POLL,
            reattach_policy="never",
        )
    dr = run_dag(dag)
    output = "".join(capfd.readouterr())

    ti = tis(dr)["fresh"]
    assert (ti.state, ti.try_number) == ("success", 2)
    first, second = local_armada.jobs()
    assert local_armada.rpc_count("SubmitJobs") == 2
    uri = f"airflow://{dag.dag_id}/fresh/{dr.run_id}/-1"
    assert [first.client_id, second.client_id] == [client_id_for(uri, 0), client_id_for(uri, 1)]
    assert return_value(dr, "fresh") == second.job_id
    assert second.state is JobState.SUCCEEDED
    assert re.search(rf"Not reattaching to Armada job {first.job_id} \({ACTIVE}\)", output)
    # ... and it cancels the active one first: never two jobs of one task instance
    assert local_armada.job(first.job_id).state is JobState.CANCELLED
    assert f"Cancelled Armada job {first.job_id}" in output
    assert f"Reattaching to Armada job {first.job_id}" not in output


@pytest.mark.local_armada(time_scale=20)
def test_always_reattaches_to_a_failed_job_and_a_callable_policy_sees_the_state(
    request, local_armada, local_armada_connection, capfd
) -> None:
    seen: list[tuple[JobState, int]] = []

    def only_if_running(state: JobState, context: Any) -> bool:
        seen.append((state, context["ti"].try_number))
        return state is JobState.RUNNING

    failing = job_request_item(annotations={OUTCOME: "failed"})
    with make_dag(request) as dag:
        for task_id, policy in (("always", "always"), ("decides", only_if_running)):
            ArmadaOperator(
                task_id=task_id,
                armada_queue="default",
                job_request=failing,
                retries=1,
                retry_delay=NO_DELAY,
                poll_interval=POLL,
                reattach_policy=policy,
            )
    dr = run_dag(dag)
    output = "".join(capfd.readouterr())

    instances = tis(dr)
    assert (instances["always"].state, instances["always"].try_number) == ("failed", 2)
    (always_job,) = jobs_of(local_armada, "always")  # the retry reattached: no new job
    assert always_job.state is JobState.FAILED
    assert f"Reattaching to Armada job {always_job.job_id} (FAILED)" in output

    assert (instances["decides"].state, instances["decides"].try_number) == ("failed", 2)
    assert seen == [(JobState.FAILED, 2)]  # asked once, on the retry, with the job's state
    decided = jobs_of(local_armada, "decides")
    assert len(decided) == 2  # the policy declined: the retry submitted generation 1
    assert decided[1].client_id.endswith("-1")
    assert local_armada.rpc_count("SubmitJobs") == 3


# -- a worker killed between submit and record -----------------------------------------

DAG_MODULE = '''
"""A DAG whose worker can be SIGKILLed right after Armada accepted its job."""

from __future__ import annotations

import os
import signal
from datetime import datetime, timezone

from armada_hooks._compat import DAG

from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.testing.specs import job_request_item


class KillAfterSubmitHook(ArmadaHook):
    """Simulates a worker dying after the submit returned, before anything is recorded."""

    def submit_job(self, *args, **kwargs):
        job_id = super().submit_job(*args, **kwargs)
        if os.environ.get("KILL_AFTER_SUBMIT") == "1":
            os.kill(os.getpid(), signal.SIGKILL)
        return job_id


class KillableOperator(ArmadaOperator):
    hook_class = KillAfterSubmitHook


with DAG(DAG_ID, schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)) as dag:
    KillableOperator(
        task_id="submit",
        armada_queue="default",
        job_request=job_request_item(annotations={"armada-hooks/runtime": "1s"}),
        poll_interval=0.1,
    )
'''

RUN_DAG = """
import sys
from datetime import datetime, timezone

sys.path.insert(0, sys.argv[1])
import killable_dag
from armada_hooks.testing.dags import run_dag, xcom_values

when = datetime.fromisoformat(sys.argv[2])
run_dag(killable_dag.dag, logical_date=when, run_after=when)
"""


@pytest.mark.local_armada(time_scale=1, ingestion_delay=25)
def test_worker_killed_after_submit_then_retried_gets_the_original_job_back(
    request, local_armada, local_armada_connection, tmp_path, monkeypatch, capfd
) -> None:
    # 25 s of ingestion delay: the killed worker's job is not yet visible to the retry's
    # external-URI lookup, so only Armada's client-id dedup can prevent a twin.
    dag_id = "reattach_killed_worker"
    (tmp_path / "killable_dag.py").write_text(
        textwrap.dedent(DAG_MODULE).replace("DAG_ID", repr(dag_id))
    )
    when = datetime(2024, 6, 1, tzinfo=UTC)

    killed = subprocess.run(
        [sys.executable, "-c", RUN_DAG, str(tmp_path), when.isoformat()],
        env={**os.environ, "KILL_AFTER_SUBMIT": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (original,) = local_armada.jobs()
    assert local_armada.rpc_count("SubmitJobs") == 1

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("KILL_AFTER_SUBMIT", raising=False)
    import killable_dag

    dr = run_dag(killable_dag.dag, logical_date=when, run_after=when)
    output = "".join(capfd.readouterr())

    ti = tis(dr)["submit"]
    assert (ti.state, ti.try_number) == ("success", 1)
    uri = f"airflow://{dag_id}/submit/{dr.run_id}/-1"
    assert original.external_job_uri == uri  # same run id, so the same URI and client id
    assert original.client_id == client_id_for(uri, 0)
    assert local_armada.rpc_count("SubmitJobs") == 2  # the retry did submit ...
    assert [j.job_id for j in local_armada.jobs()] == [original.job_id]  # ... and got it back
    assert return_value(dr, "submit") == original.job_id
    assert local_armada.job(original.job_id).state is JobState.SUCCEEDED
    assert local_armada.rpc_count("GetJobStatusUsingExternalJobUri") == 2  # both looked
    assert "Reattaching" not in output  # ... found nothing yet: the client-id dedup did it
    assert f"Submitted Armada job {original.job_id}" in output
