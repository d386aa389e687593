"""ArmadaOperator run by Airflow itself (``dag.test()``) against the local Armada.

Every DAG here runs through :func:`armada_hooks.testing.dags.run_dag`: Airflow renders
the templates, runs the task (and, when deferred, the trigger inline), honours retries,
and writes XCom and rendered fields to its metadata DB, which the tests read back. What
the operator did to Armada is read from the local Armada's own records.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from armada_hooks._compat import (
    AIRFLOW_V3,
    DAG,
    AirflowTaskTimeout,
    aget_task_xcom,
    aset_task_xcom,
)
from armada_hooks.errors import ArmadaJobFailedError, ArmadaJobSpecError
from armada_hooks.operators.armada import ArmadaOperator, client_id_for
from armada_hooks.states import TERMINAL_STATES, JobState
from armada_hooks.testing.behaviour import FAILURE_REASON, LOGS, OUTCOME, RUNTIME
from armada_hooks.testing.dags import run_dag, xcom_values
from armada_hooks.testing.specs import job_request_item
from armada_hooks.triggers.armada import ArmadaJobTrigger

TOKEN = "op-bearer-token-5f1c9e"  # the local Armada's test credential
pytestmark = pytest.mark.local_armada(time_scale=20, token=TOKEN)

POLL = 0.1
NO_DELAY = timedelta(seconds=0)
START = datetime(2024, 1, 1, tzinfo=UTC)


# -- helpers ----------------------------------------------------------------------------


def make_dag(request: pytest.FixtureRequest, **kwargs: Any) -> DAG:
    """A DAG whose id is the test's name (unique per test)."""
    dag_id = "op_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    return DAG(dag_id, schedule=None, start_date=START, **kwargs)


def tis(dag_run: Any) -> dict[str, Any]:
    return {ti.task_id: ti for ti in dag_run.get_task_instances()}


def xcoms(dag_run: Any) -> dict[tuple[str, str], Any]:
    """Every XCom of the run, as {(task_id, key): value}."""
    return xcom_values(dag_run)


def rendered_fields(dag_run: Any) -> dict[str, dict[str, Any]]:
    """The rendered template fields Airflow stored for each task of the run."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(Rtif)
            .filter(Rtif.dag_id == dag_run.dag_id, Rtif.run_id == dag_run.run_id)
            .all()
        )
        return {row.task_id: row.rendered_fields for row in rows}


def submitted_item(armada: Any, job_id: str) -> Any:
    """The JobSubmitRequestItem the local Armada received for ``job_id``."""
    with armada.store.lock:
        return armada.store.jobs[job_id].item


def jobs_of(armada: Any, task_id: str) -> list[Any]:
    """The server's jobs submitted by ``task_id``, oldest first."""
    return [
        job
        for job in armada.jobs()
        if submitted_item(armada, job.job_id).annotations.get("armadaproject.io/taskId") == task_id
    ]


def item(**annotations: str) -> Any:
    return job_request_item(annotations=annotations)


# -- success ----------------------------------------------------------------------------


def test_sync_and_deferrable_success_annotate_the_job_and_return_its_id(
    request, local_armada, local_armada_connection
) -> None:
    with make_dag(request) as dag:
        for task_id, deferrable in (("sync", False), ("deferred", True)):
            ArmadaOperator(
                task_id=task_id,
                armada_queue="default",
                job_request=item(),
                deferrable=deferrable,
                poll_interval=POLL,
                labels={"team": "research"},
                annotations={"example.com/owner": "alice"},
            )
    dr = run_dag(dag)

    assert dr.state == "success"
    values = xcoms(dr)
    for task_id in ("sync", "deferred"):
        ti = tis(dr)[task_id]
        assert (ti.state, ti.try_number) == ("success", 1)
        job_id = values[(task_id, "return_value")]
        job = local_armada.job(job_id)
        assert job.state is JobState.SUCCEEDED
        assert job.queue == "default"
        assert job.job_set_id == f"{dag.dag_id}-{dr.run_id}"
        uri = f"airflow://{dag.dag_id}/{task_id}/{dr.run_id}/-1"
        assert job.external_job_uri == uri
        assert job.client_id == client_id_for(uri, 0)
        assert re.fullmatch(r"airflow-[0-9a-f]{40}-0", job.client_id)
        sent = submitted_item(local_armada, job_id)
        assert dict(sent.annotations) == {
            "armadaproject.io/dagId": dag.dag_id,
            "armadaproject.io/taskId": task_id,
            "armadaproject.io/runId": dr.run_id,
            "armadaproject.io/mapIndex": "-1",
            "armadaproject.io/tryNumber": "1",
            "armadaproject.io/externalJobUri": uri,
            "example.com/owner": "alice",
        }
        assert dict(sent.labels) == {"team": "research"}
        assert values[(task_id, "armada_job")]["job_id"] == job_id
    assert local_armada.rpc_count("SubmitJobs") == 2
    assert len(local_armada.jobs()) == 2


def test_annotation_key_prefix_comes_from_the_environment(
    request, local_armada, local_armada_connection, monkeypatch
) -> None:
    monkeypatch.setenv("ANNOTATION_KEY_PREFIX", "acme.io/")
    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="prefixed", armada_queue="default", job_request=item(), poll_interval=POLL
        )
    dr = run_dag(dag)

    assert dr.state == "success"
    job_id = xcoms(dr)[("prefixed", "return_value")]
    annotations = dict(submitted_item(local_armada, job_id).annotations)
    assert annotations["acme.io/dagId"] == dag.dag_id
    assert annotations["acme.io/taskId"] == "prefixed"
    assert annotations["acme.io/tryNumber"] == "1"
    assert annotations["acme.io/externalJobUri"] == local_armada.job(job_id).external_job_uri
    assert not [key for key in annotations if key.startswith("armadaproject.io/")]


# -- job_request forms ------------------------------------------------------------------


def test_job_request_forms_are_rendered_and_submitted(
    request, local_armada, local_armada_connection
) -> None:
    as_dict = {
        "priority": 1,
        "namespace": "default",
        "annotations": {"example.com/day": "{{ ds }}", "example.com/x": "{{ params.x }}"},
        "podSpec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:latest",
                    "command": ["echo", "{{ params.x }}"],
                    "resources": {
                        "requests": {"cpu": {"string": "100m"}, "memory": {"string": "64Mi"}},
                        "limits": {"cpu": {"string": "100m"}, "memory": {"string": "64Mi"}},
                    },
                }
            ],
        },
    }

    with make_dag(request, params={"x": "fox"}) as dag:
        ArmadaOperator(
            task_id="proto",
            armada_queue="{{ params.queue_name }}",
            job_request=job_request_item(annotations={"example.com/day": "{{ ds }}"}),
            job_set_id="set-{{ params.x }}",
            labels={"animal": "{{ params.x }}"},
            annotations={"example.com/extra": "{{ params.x }}-extra"},
            params={"queue_name": "default"},
            poll_interval=POLL,
        )
        ArmadaOperator(
            task_id="as_dict", armada_queue="default", job_request=as_dict, poll_interval=POLL
        )
    logical_date = datetime(2024, 3, 5, tzinfo=UTC)
    dr = run_dag(dag, logical_date=logical_date)

    states = {task_id: ti.state for task_id, ti in tis(dr).items()}
    assert states == {"proto": "success", "as_dict": "success"}
    values = xcoms(dr)

    proto_job = values[("proto", "return_value")]
    proto_sent = submitted_item(local_armada, proto_job)
    assert proto_sent.annotations["example.com/day"] == "2024-03-05"
    assert proto_sent.annotations["example.com/extra"] == "fox-extra"
    assert dict(proto_sent.labels) == {"animal": "fox"}
    assert local_armada.job(proto_job).job_set_id == "set-fox"
    assert local_armada.job(proto_job).queue == "default"

    dict_job = values[("as_dict", "return_value")]
    dict_sent = submitted_item(local_armada, dict_job)
    assert dict_sent.annotations["example.com/day"] == "2024-03-05"
    assert dict_sent.annotations["example.com/x"] == "fox"
    assert list(dict_sent.pod_spec.containers[0].command) == ["echo", "fox"]
    assert dict_sent.annotations["armadaproject.io/taskId"] == "as_dict"

    rendered = rendered_fields(dr)
    assert rendered["proto"]["armada_queue"] == "default"
    assert rendered["proto"]["job_set_id"] == "set-fox"
    assert rendered["proto"]["labels"] == {"animal": "fox"}
    assert rendered["proto"]["annotations"] == {"example.com/extra": "fox-extra"}
    assert rendered["proto"]["job_request"]["annotations"]["example.com/day"] == "2024-03-05"
    assert rendered["as_dict"]["job_request"]["annotations"] == {
        "example.com/day": "2024-03-05",
        "example.com/x": "fox",
    }
    assert "{{" not in json.dumps(rendered)


def test_callable_job_request_is_called_with_the_context(
    request, local_armada, local_armada_connection
) -> None:
    seen: list[tuple[str, str]] = []

    def from_context(context):  # the documented form: (context) -> item or dict
        seen.append((context["ti"].task_id, context["ds"]))
        return job_request_item(annotations={"example.com/built-for": context["ti"].task_id})

    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="from_callable",
            armada_queue="default",
            job_request=from_context,
            poll_interval=POLL,
        )
    dr = run_dag(dag, logical_date=datetime(2024, 3, 5, tzinfo=UTC))

    assert tis(dr)["from_callable"].state == "success"
    assert seen == [("from_callable", "2024-03-05")]
    job_id = xcoms(dr)[("from_callable", "return_value")]
    sent = submitted_item(local_armada, job_id)
    assert sent.annotations["example.com/built-for"] == "from_callable"
    assert sent.annotations["armadaproject.io/taskId"] == "from_callable"
    assert local_armada.job(job_id).state is JobState.SUCCEEDED


@pytest.mark.parametrize("bad", [["not", "a", "request"], 42])
def test_job_request_of_a_bad_type_fails_at_construction(bad) -> None:
    with pytest.raises(ArmadaJobSpecError, match="job_request") as raised:
        ArmadaOperator(task_id="bad", armada_queue="default", job_request=bad)
    assert type(bad).__name__ in str(raised.value)


def test_unknown_field_in_a_dict_request_fails_the_task_without_retry(
    request, local_armada, local_armada_connection, capfd
) -> None:
    bad = {"namespace": "default", "podSpecc": {"containers": []}}
    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="typo",
            armada_queue="default",
            job_request=bad,
            retries=2,
            retry_delay=NO_DELAY,
            poll_interval=POLL,
        )
    dr = run_dag(dag)

    ti = tis(dr)["typo"]
    assert (ti.state, ti.try_number) == ("failed", 1)
    assert dr.state == "failed"
    assert local_armada.jobs() == []
    assert local_armada.rpc_count("SubmitJobs") == 0
    out = capfd.readouterr()
    assert "podSpecc" in out.out + out.err
    assert "ArmadaJobSpecError" in out.out + out.err


# -- failures ---------------------------------------------------------------------------


def test_failed_jobs_retry_with_a_new_job_and_rejected_jobs_fail_at_once(
    request, local_armada, local_armada_connection, capfd
) -> None:
    failed = item(**{OUTCOME: "failed", FAILURE_REASON: "OOMKilled: container main"})
    rejected = item(**{OUTCOME: "rejected"})
    with make_dag(request) as dag:
        for task_id, request_item, deferrable in (
            ("failed_sync", failed, False),
            ("failed_deferred", failed, True),
            ("rejected_sync", rejected, False),
            ("rejected_deferred", rejected, True),
        ):
            ArmadaOperator(
                task_id=task_id,
                armada_queue="default",
                job_request=request_item,
                deferrable=deferrable,
                retries=1,
                retry_delay=NO_DELAY,
                poll_interval=POLL,
                reattach_policy="running_or_succeeded",
            )
    dr = run_dag(dag)
    output = "".join(capfd.readouterr())

    assert dr.state == "failed"
    instances = tis(dr)
    for task_id in ("failed_sync", "failed_deferred"):
        ti = instances[task_id]
        assert (ti.state, ti.try_number) == ("failed", 2), task_id
        jobs = jobs_of(local_armada, task_id)
        assert len(jobs) == 2, task_id  # the failed job is not reattached: a new one runs
        assert [j.state for j in jobs] == [JobState.FAILED, JobState.FAILED]
        uri = f"airflow://{dag.dag_id}/{task_id}/{dr.run_id}/-1"
        assert {j.external_job_uri for j in jobs} == {uri}
        assert [j.client_id for j in jobs] == [client_id_for(uri, 0), client_id_for(uri, 1)]
        assert jobs[0].client_id.endswith("-0")
        assert jobs[1].client_id.endswith("-1")
        tries = [
            submitted_item(local_armada, j.job_id).annotations["armadaproject.io/tryNumber"]
            for j in jobs
        ]
        assert tries == ["1", "2"]
    for task_id in ("rejected_sync", "rejected_deferred"):
        ti = instances[task_id]
        assert (ti.state, ti.try_number) == ("failed", 1), task_id
        jobs = jobs_of(local_armada, task_id)
        assert [j.state for j in jobs] == [JobState.REJECTED], task_id
    assert local_armada.rpc_count("SubmitJobs") == 6
    assert "OOMKilled: container main" in output
    assert "ArmadaJobFailedError" in output
    assert "ArmadaJobRejectedError" in output
    # the deferred tasks raise when they resume: failed_deferred twice, rejected_deferred once
    resumed = output.count(", in execute_complete")
    if AIRFLOW_V3:
        assert resumed == 3
    else:  # Airflow 2.11's dag.test() writes each record once per handler it has (1-3)
        assert resumed in (3, 6, 9), resumed


# -- modes: no wait, dry run, default deferrable ----------------------------------------


def test_no_wait_returns_at_once_and_dry_run_submits_nothing(
    request, local_armada, local_armada_connection, capfd
) -> None:
    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="no_wait",
            armada_queue="default",
            job_request=item(**{RUNTIME: "1h"}),
            wait_for_completion=False,
            poll_interval=POLL,
        )
        ArmadaOperator(
            task_id="dry",
            armada_queue="default",
            job_request=item(**{"example.com/note": "dry-run-{{ ds }}"}),
            dry_run=True,
            poll_interval=POLL,
        )
    dr = run_dag(dag, logical_date=datetime(2024, 2, 2, tzinfo=UTC))
    output = "".join(capfd.readouterr())

    assert dr.state == "success"
    assert {t: ti.state for t, ti in tis(dr).items()} == {"no_wait": "success", "dry": "success"}
    values = xcoms(dr)
    job_id = values[("no_wait", "return_value")]
    assert local_armada.job(job_id).state not in TERMINAL_STATES  # still queued or running
    assert [j.job_id for j in local_armada.jobs()] == [job_id]
    assert jobs_of(local_armada, "dry") == []
    assert local_armada.rpc_count("SubmitJobs") == 1  # the no_wait task's only
    assert ("dry", "return_value") not in values
    assert "Dry run: would submit" in output
    assert "dry-run-2024-02-02" in output  # the rendered request is logged


def test_default_deferrable_is_read_from_config_at_construction(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "true")
    on = ArmadaOperator(task_id="on", armada_queue="q", job_request=item())
    explicit = ArmadaOperator(
        task_id="explicit", armada_queue="q", job_request=item(), deferrable=False
    )
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    off = ArmadaOperator(task_id="off", armada_queue="q", job_request=item())
    forced = ArmadaOperator(task_id="forced", armada_queue="q", job_request=item(), deferrable=True)

    assert on.deferrable is True
    assert explicit.deferrable is False
    assert off.deferrable is False
    assert forced.deferrable is True


# -- queue fallback ---------------------------------------------------------------------


def test_queue_falls_back_to_the_connections_default_queue(
    request, local_armada, monkeypatch, capfd
) -> None:
    local_armada.create_queue("fallback-q")
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARMADA_DEFAULT", local_armada.airflow_connection(default_queue="fallback-q")
    )
    monkeypatch.setenv("AIRFLOW_CONN_ARMADA_NOQUEUE", local_armada.airflow_connection())
    with make_dag(request) as dag:
        ArmadaOperator(task_id="fallback", job_request=item(), poll_interval=POLL)
        ArmadaOperator(
            task_id="no_queue",
            armada_conn_id="armada_noqueue",
            job_request=item(),
            retries=1,
            retry_delay=NO_DELAY,
            poll_interval=POLL,
        )
    dr = run_dag(dag)
    output = "".join(capfd.readouterr())

    instances = tis(dr)
    assert instances["fallback"].state == "success"
    job_id = xcoms(dr)[("fallback", "return_value")]
    assert local_armada.job(job_id).queue == "fallback-q"
    assert local_armada.job(job_id).state is JobState.SUCCEEDED

    assert (instances["no_queue"].state, instances["no_queue"].try_number) == ("failed", 1)
    assert jobs_of(local_armada, "no_queue") == []
    message = next(line for line in output.splitlines() if "no queue" in line)
    assert "armada_queue" in message
    assert "default_queue" in message
    assert "armada_noqueue" in message


# -- logs and secrets -------------------------------------------------------------------


def test_fetch_logs_streams_container_lines_into_the_task_output(
    request, local_armada, local_armada_connection, capfd
) -> None:
    with make_dag(request) as dag:
        for task_id, deferrable, fetch in (
            ("sync_logs", False, True),
            ("deferred_logs", True, True),
            ("quiet", False, False),
        ):
            ArmadaOperator(
                task_id=task_id,
                armada_queue="default",
                job_request=item(**{LOGS: f"{task_id} says hello\n{task_id} says bye"}),
                deferrable=deferrable,
                fetch_logs=fetch,
                poll_interval=POLL,
            )
    dr = run_dag(dag)
    output = "".join(capfd.readouterr())

    assert dr.state == "success"
    for task_id in ("sync_logs", "deferred_logs"):
        assert f"{task_id} says hello" in output
        assert f"{task_id} says bye" in output
        # both ways, the log ends with the job's outcome, after the container's lines
        (job,) = jobs_of(local_armada, task_id)
        outcome = f"Armada job {job.job_id} is SUCCEEDED"
        assert outcome in output, task_id
        assert output.index(f"{task_id} says bye") < output.index(outcome), task_id
    assert "quiet says" not in output
    assert local_armada.job(jobs_of(local_armada, "quiet")[0].job_id).log_lines == (
        "quiet says hello",
        "quiet says bye",
    )


class TriggerRecordingOperator(ArmadaOperator):
    """Keeps what the operator defers with, so the test can read the trigger's kwargs.

    A subclass rather than a patch: ``defer`` is Airflow's, and this one only records
    the trigger's own ``serialize()`` before delegating to it unchanged.
    """

    serialized: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def defer(self, *, trigger: Any, **kwargs: Any) -> Any:
        type(self).serialized.append(trigger.serialize())
        return super().defer(trigger=trigger, **kwargs)


def test_bearer_token_appears_in_no_xcom_rendered_field_trigger_or_output(
    request, local_armada, local_armada_connection, capfd
) -> None:
    assert TOKEN in os.environ["AIRFLOW_CONN_ARMADA_DEFAULT"]  # the connection carries it
    TriggerRecordingOperator.serialized.clear()
    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="sync", armada_queue="default", job_request=item(), poll_interval=POLL
        )
        TriggerRecordingOperator(
            task_id="deferred",
            armada_queue="default",
            job_request=item(),
            deferrable=True,
            poll_interval=POLL,
        )
    dr = run_dag(dag)
    output = "".join(capfd.readouterr())

    assert dr.state == "success"  # the token was used: the local Armada requires it
    values = xcoms(dr)
    assert {key for _, key in values} >= {"return_value", "armada_job"}
    assert TOKEN not in json.dumps(list(values.values()), default=str)
    rendered = rendered_fields(dr)
    assert set(rendered) == {"sync", "deferred"}
    assert TOKEN not in json.dumps(rendered, default=str)
    assert len(TriggerRecordingOperator.serialized) == 1
    classpath, kwargs = TriggerRecordingOperator.serialized[0]
    assert classpath == "armada_hooks.triggers.armada.ArmadaJobTrigger"
    assert kwargs["armada_conn_id"] == "armada_default"
    assert TOKEN not in json.dumps(kwargs, default=str)
    assert TOKEN not in repr(ArmadaJobTrigger(**kwargs).__dict__)
    assert output  # something was captured
    assert TOKEN not in output


def test_a_deferred_streaming_task_leaves_its_job_in_the_log_position_xcom(
    request, local_armada, local_armada_connection
) -> None:
    # The trigger reads its log position from this XCom first (a rebuilt trigger resumes
    # from it); dag.test() runs the trigger inline, with no task instance: it writes none.
    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="streams", armada_queue="default", job_request=item(), deferrable=True
        )
        ArmadaOperator(
            task_id="quiet",
            armada_queue="default",
            job_request=item(),
            deferrable=True,
            fetch_logs=False,
        )
    dr = run_dag(dag)
    assert dr.state == "success"
    values = xcoms(dr)
    job_id = values[("streams", "armada_job")]["job_id"]
    assert values[("streams", "armada_log_position")] == {"job_id": job_id}
    assert ("quiet", "armada_log_position") not in values


@pytest.mark.skipif(
    AIRFLOW_V3,
    reason="on Airflow 3 a trigger's XCom goes through the triggerer's supervisor, which "
    "only a real triggerer has: the real-stack scenario 6 covers it",
)
def test_on_airflow_2_a_trigger_reads_and_writes_its_tasks_xcom_in_the_metadata_db(
    request, local_armada, local_armada_connection
) -> None:
    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="streams", armada_queue="default", job_request=item(), deferrable=True
        )
    dr = run_dag(dag)
    ti = SimpleNamespace(dag_id=dr.dag_id, task_id="streams", run_id=dr.run_id, map_index=-1)
    job_id = xcoms(dr)[("streams", "armada_job")]["job_id"]
    assert asyncio.run(aget_task_xcom(ti, "armada_log_position")) == {"job_id": job_id}
    position = {"job_id": job_id, "lines": 3, "since": "2026-01-01T00:00:03Z", "at_since": 1}
    asyncio.run(aset_task_xcom(ti, "armada_log_position", position))
    assert asyncio.run(aget_task_xcom(ti, "armada_log_position")) == position
    assert xcoms(dr)[("streams", "armada_log_position")] == position


# -- on_kill ----------------------------------------------------------------------------


def test_on_kill_cancels_the_running_job(request, local_armada, local_armada_connection) -> None:
    with make_dag(request):
        operator = ArmadaOperator(
            task_id="killed",
            armada_queue="default",
            job_request=item(**{RUNTIME: "1h"}),
            poll_interval=POLL,
            fetch_logs=False,
        )
    killed: list[str] = []

    def kill_once_running() -> None:  # as Airflow's SIGTERM handler would, from outside
        deadline = time.monotonic() + 30
        while operator.job_id is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if operator.job_id is not None:
            local_armada.wait_for_state(operator.job_id, [JobState.RUNNING])
            killed.append(operator.job_id)
            operator.on_kill()

    # execute() on the test's own thread (Airflow 2 refuses it on a thread it did not start)
    killer = threading.Thread(target=kill_once_running, daemon=True)
    killer.start()
    with pytest.raises(ArmadaJobFailedError) as raised:  # the wait ends once cancelled
        operator.execute({})
    killer.join(timeout=30)
    assert not killer.is_alive()
    assert killed == [operator.job_id]
    assert raised.value.state is JobState.CANCELLED
    assert local_armada.job(operator.job_id).state is JobState.CANCELLED
    assert local_armada.rpc_count("CancelJobs") == 1


def test_execution_timeout_cancels_the_job_through_on_kill(
    request, local_armada, local_armada_connection
) -> None:
    with make_dag(request) as dag:
        ArmadaOperator(
            task_id="too_slow",
            armada_queue="default",
            job_request=item(**{RUNTIME: "1h"}),
            execution_timeout=timedelta(seconds=3),
            poll_interval=POLL,
        )
    if AIRFLOW_V3:
        assert tis(run_dag(dag))["too_slow"].state == "failed"
    else:  # Airflow 2.11's dag.test() lets the timeout (a BaseException there) out
        with pytest.raises(AirflowTaskTimeout):
            run_dag(dag)
    (job,) = local_armada.jobs()
    assert local_armada.wait_for_state(job.job_id, timeout=10).state is JobState.CANCELLED
