"""Event mode: waits follow their job set's event stream; drops resume, failures fall back."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime

import grpc
import pytest
from armada_client.armada import event_pb2

from armada_hooks._compat import DAG
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.sensors.armada import ArmadaJobSensor
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item
from armada_hooks.testing.behaviour import LOGS, RUNTIME
from armada_hooks.testing.dags import run_dag
from armada_hooks.triggers import events
from armada_hooks.triggers.armada import ArmadaJobTrigger
from armada_hooks.triggers.events import EventWatch, event_state

pytestmark = pytest.mark.local_armada(time_scale=20)

SLOW_POLL = 3600.0  # an interval no test lasts: any state seen came from the events


def submit(armada, job_set: str, n: int, **annotations: str) -> list[str]:
    items = [job_request_item(annotations=annotations) for _ in range(n)]
    response = armada.client().submit_jobs("default", job_set, items)
    return [r.job_id for r in response.job_response_items]


def trigger(job_id: str, job_set: str, **kwargs) -> ArmadaJobTrigger:
    kwargs.setdefault("poll_interval", SLOW_POLL)
    kwargs.setdefault("event_mode", True)
    return ArmadaJobTrigger(job_id, queue="default", job_set_id=job_set, **kwargs)


async def payloads_of(triggers: list[ArmadaJobTrigger], timeout: float = 60) -> list[dict]:
    async def first(t: ArmadaJobTrigger) -> dict:
        events = [e.payload async for e in t.run()]
        assert len(events) == 1, events  # one event per trigger, never a second
        return events[0]

    return await asyncio.wait_for(asyncio.gather(*(first(t) for t in triggers)), timeout)


def job_set_messages(armada, job_set: str) -> list[str]:
    stream = armada.client().event_stub.GetJobSetEvents(
        event_pb2.JobSetRequest(queue="default", id=job_set, watch=False)
    )
    return [m.id for m in stream]


async def test_terminal_states_arrive_by_event_without_a_status_rpc(
    local_armada, local_armada_connection
):
    ok = submit(local_armada, "events", 3, **{"armada-hooks/runtime": "10s"})
    bad = submit(local_armada, "events", 2, **{"armada-hooks/outcome": "failed"})
    local_armada.reset_rpc_counts()
    payloads = await payloads_of([trigger(j, "events") for j in ok + bad])
    assert {p["job_id"]: p["state"] for p in payloads} == {
        **dict.fromkeys(ok, "SUCCEEDED"),
        **dict.fromkeys(bad, "FAILED"),
    }
    assert all(p["error"] is None for p in payloads)
    assert local_armada.rpc_count("GetJobStatus") == 0
    assert local_armada.rpc_count("GetJobSetEvents") == 1  # one stream for the job set
    watch = EventWatch.for_connection("armada_default")
    assert watch.following == 0
    assert watch.waiting == 0


async def test_a_dropped_stream_resumes_with_no_missed_and_no_duplicated_event(
    local_armada, local_armada_connection
):
    runtimes = ["5s", "15s", "25s", "35s", "45s", "55s"]
    ids = [submit(local_armada, "drops", 1, **{"armada-hooks/runtime": r})[0] for r in runtimes]
    local_armada.faults.drop_streams(after=3, times=2)  # mid-replay, then once more
    watch = EventWatch.for_connection("armada_default")
    payloads = await payloads_of([trigger(j, "drops") for j in ids])
    assert [p["state"] for p in payloads] == ["SUCCEEDED"] * len(ids)
    assert watch.resumes == 2
    assert watch.streams_opened == 3
    assert local_armada.rpc_count("GetJobStatus") == 0
    # Every message of the job set was applied exactly once, in order: the stream stopped
    # right after the last job's terminal event, which is the job set's last message.
    server = job_set_messages(local_armada, "drops")
    assert watch.messages == len(server)
    assert watch.messages > 6  # a real replay: several events per job
    assert local_armada.job(ids[-1]).state is JobState.SUCCEEDED


async def test_a_job_set_not_found_yet_is_asked_again_not_given_up(
    local_armada, local_armada_connection
):
    (job_id,) = submit(local_armada, "not-yet", 1, **{"armada-hooks/runtime": "2s"})
    # Real Armada's event store can trail its submit API: NOT_FOUND, then the job set.
    local_armada.faults.fail("GetJobSetEvents", grpc.StatusCode.NOT_FOUND, times=2)
    watch = EventWatch.for_connection("armada_default")
    (payload,) = await payloads_of([trigger(job_id, "not-yet")])
    assert payload["state"] == "SUCCEEDED"
    assert watch.resumes == 2
    assert watch.fallbacks == 0
    assert local_armada.rpc_count("GetJobStatus") == 0


async def test_a_job_that_ended_before_the_trigger_started_is_seen_from_the_replay(
    local_armada, local_armada_connection
):
    (job_id,) = submit(local_armada, "early", 1, **{"armada-hooks/runtime": "1s"})
    local_armada.wait_for_state(job_id, [JobState.SUCCEEDED], timeout=30)
    (payload,) = await payloads_of([trigger(job_id, "early")])
    assert payload["state"] == "SUCCEEDED"
    assert local_armada.rpc_count("GetJobStatus") == 0


async def test_a_stream_that_keeps_failing_falls_back_to_polling(
    local_armada, local_armada_connection
):
    (job_id,) = submit(local_armada, "broken", 1, **{"armada-hooks/runtime": "2s"})
    local_armada.faults.fail("GetJobSetEvents", grpc.StatusCode.PERMISSION_DENIED, times=1)
    local_armada.reset_rpc_counts()
    watch = EventWatch.for_connection("armada_default")
    (payload,) = await payloads_of([trigger(job_id, "broken", poll_interval=0.2)])
    assert payload["state"] == "SUCCEEDED"
    assert payload["error"] is None
    assert watch.fallbacks == 1
    assert local_armada.rpc_count("GetJobStatus") >= 1  # polling took over


async def test_a_job_missing_from_its_job_set_falls_back_at_its_acknowledgement_deadline(
    local_armada, local_armada_connection, monkeypatch
):
    monkeypatch.setattr(events, "SEEN_GRACE", 0.5)
    (job_id,) = submit(local_armada, "real-set", 1, **{"armada-hooks/runtime": "2s"})
    submit(local_armada, "other-set", 1, **{"armada-hooks/runtime": "1h"})
    # Told the wrong job set: no event ever names the job; at the deadline polling finds it.
    t = trigger(job_id, "other-set", poll_interval=0.2, acknowledgement_timeout=1.0)
    watch = EventWatch.for_connection("armada_default")
    (payload,) = await payloads_of([t])
    assert payload["state"] == "SUCCEEDED"
    assert payload["error"] is None
    assert local_armada.rpc_count("GetJobSetEvents") == 1  # it did follow the events first
    assert watch.fallbacks == 1  # then its deadline handed it to the poller
    assert local_armada.rpc_count("GetJobStatus") >= 1


async def test_a_trigger_rebuilt_long_after_submission_still_follows_events(
    local_armada, local_armada_connection
):
    (job_id,) = submit(local_armada, "restarted", 1, **{"armada-hooks/runtime": "10s"})
    # A triggerer restart rebuilds the trigger with its original submitted_at, long past
    # the acknowledgement timeout: the replay still gets to show the job.
    t = trigger(job_id, "restarted", submitted_at=time.time() - 3600, acknowledgement_timeout=60)
    watch = EventWatch.for_connection("armada_default")
    (payload,) = await payloads_of([t])
    assert payload["state"] == "SUCCEEDED"
    assert watch.fallbacks == 0
    assert local_armada.rpc_count("GetJobStatus") == 0


async def test_when_the_query_api_lags_the_events_the_event_decides(
    local_armada, local_armada_connection
):
    local_armada.set_ingestion_delay(3600)  # the query API will not know the job for an hour
    (job_id,) = submit(local_armada, "lagging", 1, **{"armada-hooks/runtime": "1s"})
    (payload,) = await payloads_of([trigger(job_id, "lagging")])
    assert payload["state"] == "SUCCEEDED"  # from the succeeded event
    assert payload["error"] is None
    assert payload["description"]["job_id"] == job_id


async def test_connection_extra_turns_event_mode_on_and_a_trigger_can_turn_it_off(
    local_armada, monkeypatch
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ARMADA_DEFAULT", local_armada.airflow_connection(event_mode=True)
    )
    on, off = submit(local_armada, "extra", 2, **{"armada-hooks/runtime": "2s"})
    local_armada.reset_rpc_counts()
    (payload,) = await payloads_of([trigger(on, "extra", event_mode=None)])
    assert payload["state"] == "SUCCEEDED"
    assert local_armada.rpc_count("GetJobStatus") == 0
    (payload,) = await payloads_of([trigger(off, "extra", event_mode=False, poll_interval=0.2)])
    assert payload["state"] == "SUCCEEDED"
    assert local_armada.rpc_count("GetJobStatus") >= 1


async def test_a_cancelled_trigger_leaves_and_its_stream_closes(
    local_armada, local_armada_connection
):
    (job_id,) = submit(local_armada, "quiet", 1, **{"armada-hooks/runtime": "1h"})
    watch = EventWatch.for_connection("armada_default")
    task = asyncio.ensure_future(payloads_of([trigger(job_id, "quiet")]))
    for _ in range(200):
        await asyncio.sleep(0.01)
        if watch.messages >= 2:
            break
    assert watch.following == 1
    assert watch.waiting == 1
    assert watch.open_streams == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert watch.following == 0
    assert watch.waiting == 0
    for _ in range(100):  # the follow task winds down and cancels its call
        await asyncio.sleep(0.01)
        if watch.open_streams == 0:
            break
    assert watch.open_streams == 0
    assert local_armada.rpc_count("GetJobStatus") == 0


async def test_a_sensor_target_state_is_met_by_its_event(local_armada, local_armada_connection):
    (job_id,) = submit(local_armada, "sensing", 1, **{"armada-hooks/runtime": "1h"})
    (payload,) = await payloads_of([trigger(job_id, "sensing", target_states=["RUNNING"])])
    assert payload["state"] == "RUNNING"
    assert local_armada.rpc_count("GetJobStatus") == 0


def test_event_states_follow_armadas_events():
    rejected = event_pb2.EventMessage(failed=event_pb2.JobFailedEvent(job_id="a", cause=4))
    failed = event_pb2.EventMessage(failed=event_pb2.JobFailedEvent(job_id="b"))
    returned = event_pb2.EventMessage(lease_returned=event_pb2.JobLeaseReturnedEvent(job_id="c"))
    cancelling = event_pb2.EventMessage(cancelling=event_pb2.JobCancellingEvent(job_id="d"))
    assert event_state(rejected) == ("a", JobState.REJECTED)
    assert event_state(failed) == ("b", JobState.FAILED)
    assert event_state(returned) == ("c", JobState.QUEUED)
    assert event_state(cancelling) == ("d", None)
    assert event_state(event_pb2.EventMessage()) == ("", None)


def test_a_deferred_operator_and_sensor_in_event_mode_run_through_airflow(
    request, local_armada, local_armada_connection, capfd
):
    (watched,) = submit(local_armada, "dag-events", 1, **{RUNTIME: "200s"})  # outlasts "job"
    dag_id = "event_mode_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC)) as dag:
        ArmadaOperator(
            task_id="job",
            armada_queue="default",
            job_set_id="dag-events",
            job_request=job_request_item(
                annotations={RUNTIME: "20s", LOGS: "ev-log-alpha-7f3\nev-log-omega-7f3"}
            ),
            deferrable=True,
            event_mode=True,
            fetch_logs=True,
            poll_interval=SLOW_POLL,  # polling would sit out an hour: only events end this
        )
        ArmadaJobSensor(
            task_id="watch",
            job_id=watched,
            armada_queue="default",
            job_set_id="dag-events",
            deferrable=True,
            event_mode=True,
            poke_interval=SLOW_POLL,
        )
    dag_run = run_dag(dag)
    output = "".join(capfd.readouterr())
    assert {ti.task_id: ti.state for ti in dag_run.get_task_instances()} == {
        "job": "success",
        "watch": "success",
    }
    assert local_armada.job(watched).state is JobState.SUCCEEDED
    # Both waits ended through events (polling would have sat out an hour): one stream
    # each, or one shared when the second deferral joined the first's still-open stream.
    assert local_armada.rpc_count("GetJobSetEvents") >= 1
    for line in ("ev-log-alpha-7f3", "ev-log-omega-7f3"):  # streamed while deferred, once
        assert output.count(line) == 1, output
