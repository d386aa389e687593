"""The local Armada across stop/start: SQLite state, restart() on the same port, lost processes."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass

import grpc
import pytest
from armada_client.armada import (
    binoculars_pb2,
    binoculars_pb2_grpc,
    event_pb2,
    job_pb2,
    submit_pb2,
)
from armada_client.client import ArmadaClient

from armada_hooks.states import JobState
from armada_hooks.testing import JobSnapshot, LocalArmada, job_request_item

TIME_SCALE = 20
SET = "persisted-set"


def _submit(client: ArmadaClient, item: submit_pb2.JobSubmitRequestItem, job_set: str = SET) -> str:
    return client.submit_jobs("default", job_set, [item]).job_response_items[0].job_id


def _events(client: ArmadaClient, job_set: str = SET) -> list[event_pb2.EventStreamMessage]:
    request = event_pb2.JobSetRequest(queue="default", id=job_set, watch=False)
    return list(client.event_stub.GetJobSetEvents(request, timeout=10))


def _logs(channel: grpc.Channel, job_id: str) -> list[tuple[str, str]]:
    request = binoculars_pb2.LogRequest(job_id=job_id, pod_namespace="default")
    response = binoculars_pb2_grpc.BinocularsStub(channel).Logs(request, timeout=10)
    return [(line.timestamp, line.line) for line in response.log]


def _run_details(client: ArmadaClient, job_ids: list[str]) -> dict[str, job_pb2.JobDetails]:
    request = job_pb2.JobDetailsRequest(job_ids=job_ids, expand_job_run=True)
    return dict(client.job_stub.GetJobDetails(request, timeout=10).job_details)


def _kind(message: event_pb2.EventStreamMessage) -> str:
    return message.message.WhichOneof("events")


def _event_job_id(message: event_pb2.EventStreamMessage) -> str:
    return getattr(message.message, _kind(message)).job_id


def _wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def _wait_until_gone(pid: int, timeout: float = 10.0) -> None:
    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_until(gone, timeout, f"process {pid} to exit")


# -- a populated server, stopped and opened again from its SQLite file -------


@dataclass
class Reopened:
    first: LocalArmada
    second: LocalArmada
    client: ArmadaClient
    channel: grpc.Channel
    done: str
    failed: str
    running: str
    queued: str
    snapshots: dict[str, JobSnapshot]
    events: list[event_pb2.EventStreamMessage]
    logs: list[tuple[str, str]]
    details: dict[str, job_pb2.JobDetails]
    errors: dict[str, str]


@pytest.fixture
def reopened(tmp_path, local_armada_factory) -> Reopened:
    path = tmp_path / "armada.db"
    first = local_armada_factory(state_path=path, time_scale=TIME_SCALE)
    with first.channel() as channel:
        client = ArmadaClient(channel)
        client.create_queue(submit_pb2.Queue(name="team-a", priority_factor=2.5))
        client.create_queue(submit_pb2.Queue(name="short-lived", priority_factor=1))
        client.delete_queue("short-lived")
        done = _submit(
            client,
            job_request_item(
                client_id="client-id-done",
                external_job_uri="https://example.invalid/runs/done",
                annotations={"armada-hooks/runtime": "4s", "armada-hooks/log-lines": "4"},
            ),
        )
        failed = _submit(
            client,
            job_request_item(
                annotations={
                    "armada-hooks/runtime": "1s",
                    "armada-hooks/outcome": "failed",
                    "armada-hooks/exit-code": "7",
                }
            ),
        )
        running = _submit(
            client,
            job_request_item(
                client_id="client-id-running",
                annotations={"armada-hooks/runtime": "40s", "armada-hooks/log-lines": "3"},
            ),
        )
        queued = _submit(client, job_request_item(annotations={"armada-hooks/queue-time": "1h"}))
        first.wait_for_state(done, [JobState.SUCCEEDED])
        first.wait_for_state(failed, [JobState.FAILED])
        first.wait_for_state(running, [JobState.RUNNING])
        events = _events(client)
        logs = _logs(channel, done)
        details = _run_details(client, [done, failed, running, queued])
        errors = dict(client.get_job_errors([done, failed]).job_errors)
    first.stop()
    snapshots = {job.job_id: job for job in first.jobs()}
    # the precondition of the tests: the long job was still running when the server stopped
    assert snapshots[running].state is JobState.RUNNING
    assert snapshots[queued].state is JobState.QUEUED

    second = local_armada_factory(state_path=path, time_scale=TIME_SCALE)
    channel = second.channel()
    yield Reopened(
        first=first,
        second=second,
        client=ArmadaClient(channel),
        channel=channel,
        done=done,
        failed=failed,
        running=running,
        queued=queued,
        snapshots=snapshots,
        events=events,
        logs=logs,
        details=details,
        errors=errors,
    )
    channel.close()


def test_queues_survive_a_restart_from_the_state_file(reopened):
    assert reopened.client.get_queue("team-a").priority_factor == 2.5
    names = {q.name for q in reopened.client.get_queues()}
    assert names == {"default", "team-a"}  # the deleted queue stays deleted


def test_jobs_and_their_states_survive_a_restart_from_the_state_file(reopened):
    r = reopened
    ids = [r.done, r.failed, r.running, r.queued]
    assert {job.job_id for job in r.second.jobs()} == set(ids)
    for job_id in (r.done, r.failed, r.queued):
        assert r.second.job(job_id) == r.snapshots[job_id]
    states = r.client.get_job_status(ids).job_states
    assert states[r.done] == submit_pb2.SUCCEEDED
    assert states[r.failed] == submit_pb2.FAILED
    assert states[r.queued] == submit_pb2.QUEUED
    assert states[r.running] in (submit_pb2.RUNNING, submit_pb2.SUCCEEDED)
    assert r.client.get_job_errors([r.done, r.failed]).job_errors == r.errors
    assert r.errors[r.failed] == "Container main exited with code 7"


def test_jobs_keep_their_submission_order_after_a_restart_from_the_state_file(reopened):
    r = reopened
    assert [job.job_id for job in r.first.jobs()] == [r.done, r.failed, r.running, r.queued]
    assert [job.job_id for job in r.second.jobs()] == [r.done, r.failed, r.running, r.queued]


def test_runs_survive_a_restart_from_the_state_file(reopened):
    r = reopened
    after = _run_details(r.client, [r.done, r.failed, r.queued])
    for job_id in (r.done, r.failed, r.queued):
        assert after[job_id] == r.details[job_id]
    assert len(after[r.done].job_runs) == 1
    assert after[r.queued].job_runs == []
    run_id = after[r.done].job_runs[0].run_id
    request = job_pb2.JobRunDetailsRequest(run_ids=[run_id])
    runs = r.client.job_stub.GetJobRunDetails(request, timeout=10).job_run_details
    assert runs[run_id].job_id == r.done
    assert runs[run_id].state == job_pb2.RUN_STATE_SUCCEEDED


def test_client_id_deduplication_survives_a_restart_from_the_state_file(reopened):
    r = reopened
    again = [
        job_request_item(client_id="client-id-done"),
        job_request_item(client_id="client-id-running"),
    ]
    response = r.client.submit_jobs("default", SET, again)
    assert [item.job_id for item in response.job_response_items] == [r.done, r.running]
    assert len(r.second.jobs()) == 4


def test_external_job_uri_lookup_survives_a_restart_from_the_state_file(reopened):
    r = reopened
    found = r.client.get_job_status_by_external_job_uri(
        "default", SET, "https://example.invalid/runs/done"
    )
    assert dict(found.job_states) == {r.done: submit_pb2.SUCCEEDED}


def test_logs_survive_a_restart_from_the_state_file(reopened):
    r = reopened
    assert len(r.logs) == 4
    assert _logs(r.channel, r.done) == r.logs


def test_the_event_history_survives_with_the_same_message_ids(reopened):
    r = reopened
    after = _events(r.client)
    assert after[: len(r.events)] == r.events
    assert [m.id for m in after[: len(r.events)]] == [m.id for m in r.events]
    # resuming from the last id seen before the stop continues exactly where it left off
    request = event_pb2.JobSetRequest(
        queue="default", id=SET, from_message_id=r.events[-1].id, watch=False
    )
    resumed = list(r.client.event_stub.GetJobSetEvents(request, timeout=10))
    assert resumed == after[len(r.events) :]


def test_a_job_running_at_stop_carries_on_to_success_after_the_restart(reopened):
    r = reopened
    final = r.second.wait_for_state(r.running, timeout=30)
    assert final.state is JobState.SUCCEEDED
    assert final.run_ids == r.snapshots[r.running].run_ids  # the same run, not a new one
    assert len(final.log_lines) == 3
    events = _events(r.client)
    assert events[: len(r.events)] == r.events
    new = events[len(r.events) :]
    assert [(_kind(m), _event_job_id(m)) for m in new] == [("succeeded", r.running)]
    assert len({m.id for m in events}) == len(events)  # message ids stay unique
    assert [line for _, line in _logs(r.channel, r.running)] == list(final.log_lines)


def test_a_terminal_job_stays_terminal_after_the_restart(reopened):
    r = reopened
    r.second.wait_for_state(r.running, timeout=30)
    for job_id, state in ((r.done, JobState.SUCCEEDED), (r.failed, JobState.FAILED)):
        assert r.second.job(job_id) == r.snapshots[job_id]
        assert r.second.job(job_id).state is state
    late = [m for m in _events(r.client)[len(r.events) :] if _event_job_id(m) != r.running]
    assert late == []
    assert r.second.job(r.queued).state is JobState.QUEUED


# -- restart() on the same port ----------------------------------------------


def test_restart_keeps_the_port_and_an_existing_channel_works_again(local_armada_factory):
    armada = local_armada_factory(time_scale=TIME_SCALE)
    target, port = armada.target, armada.port
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        job_id = _submit(client, job_request_item(annotations={"armada-hooks/runtime": "1s"}))
        armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        assert client.get_job_status([job_id]).job_states[job_id] == submit_pb2.SUCCEEDED
        armada.restart()
        assert armada.target == target
        assert armada.port == port
        # gRPC reconnects the same channel on its own; wait_for_ready rides out the backoff
        request = job_pb2.JobStatusRequest(job_ids=[job_id])
        status = client.job_stub.GetJobStatus(request, timeout=20, wait_for_ready=True)
        assert status.job_states[job_id] == submit_pb2.SUCCEEDED
        second = _submit(client, job_request_item(annotations={"armada-hooks/runtime": "1s"}))
        assert armada.wait_for_state(second).state is JobState.SUCCEEDED


def test_calls_fail_unavailable_while_stopped_and_work_after_start_on_the_same_port(
    local_armada_factory,
):
    armada = local_armada_factory(time_scale=TIME_SCALE)
    target = armada.target
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        assert client.get_queue("default").name == "default"
        armada.stop()
        with pytest.raises(grpc.RpcError) as excinfo:
            client.queue_stub.GetQueue(submit_pb2.QueueGetRequest(name="default"), timeout=5)
        assert excinfo.value.code() is grpc.StatusCode.UNAVAILABLE
        assert excinfo.value.details()
        armada.start()
        assert armada.target == target
        queue = client.queue_stub.GetQueue(
            submit_pb2.QueueGetRequest(name="default"), timeout=20, wait_for_ready=True
        )
        assert queue.name == "default"


def test_restart_without_a_state_path_keeps_jobs_in_memory(local_armada_factory):
    # time_scale=1: job time equals wall time, so this test is about the in-memory store
    # only; the job clock across an in-memory restart has its own test below.
    armada = local_armada_factory(time_scale=1)
    assert armada.state_path is None
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        done = _submit(
            client,
            job_request_item(client_id="kept", annotations={"armada-hooks/runtime": "0.1s"}),
        )
        running = _submit(client, job_request_item(annotations={"armada-hooks/runtime": "2s"}))
        armada.wait_for_state(done, [JobState.SUCCEEDED])
        armada.wait_for_state(running, [JobState.RUNNING])
        before_events = _events(client)
        before = {job.job_id: job for job in armada.jobs()}
        armada.restart()
        assert armada.job(done) == before[done]
        request = job_pb2.JobStatusRequest(job_ids=[done, running])
        states = client.job_stub.GetJobStatus(request, timeout=20, wait_for_ready=True).job_states
        assert states[done] == submit_pb2.SUCCEEDED
        assert states[running] in (submit_pb2.RUNNING, submit_pb2.SUCCEEDED)
        again = client.submit_jobs("default", SET, [job_request_item(client_id="kept")])
        assert again.job_response_items[0].job_id == done
        final = armada.wait_for_state(running, timeout=30)
        assert final.state is JobState.SUCCEEDED
        assert final.run_ids == before[running].run_ids
        events = _events(client)
    assert events[: len(before_events)] == before_events
    new = events[len(before_events) :]
    assert [(_kind(m), _event_job_id(m)) for m in new] == [("succeeded", running)]


def test_job_time_does_not_go_backwards_across_an_in_memory_restart(local_armada_factory):
    # Job time runs time_scale times faster than wall time. An in-memory restart must carry
    # on from where job time was; otherwise jobs submitted before it are "not ingested yet"
    # (UNKNOWN) and log lines stamped in job time lie in the future, so Binoculars hides them.
    armada = local_armada_factory(time_scale=50)
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        finished = _submit(
            client,
            job_request_item(
                annotations={"armada-hooks/runtime": "20s", "armada-hooks/log-lines": "4"}
            ),
        )
        armada.wait_for_state(finished, [JobState.SUCCEEDED])
        waiting = _submit(client, job_request_item(annotations={"armada-hooks/queue-time": "1h"}))
        states = client.get_job_status([finished, waiting]).job_states
        assert dict(states) == {finished: submit_pb2.SUCCEEDED, waiting: submit_pb2.QUEUED}
        logs = _logs(channel, finished)
        assert len(logs) == 4
        before = armada.now()
        armada.restart()
        request = job_pb2.JobStatusRequest(job_ids=[finished, waiting])
        after = client.job_stub.GetJobStatus(request, timeout=20, wait_for_ready=True)
        assert dict(after.job_states) == dict(states)
        assert _logs(channel, finished) == logs
        assert armada.now() >= before


# -- event streams across a stop -----------------------------------------------


def test_a_watching_event_stream_ends_when_the_server_stops_and_resumes_without_gaps(
    tmp_path, local_armada_factory
):
    armada = local_armada_factory(state_path=tmp_path / "armada.db", time_scale=TIME_SCALE)
    channel = armada.channel()
    client = ArmadaClient(channel)
    job_id = _submit(client, job_request_item(annotations={"armada-hooks/runtime": "40s"}))
    armada.wait_for_state(job_id, [JobState.RUNNING])

    received: list[event_pb2.EventStreamMessage] = []
    ending: list[object] = []

    def watch() -> None:
        request = event_pb2.JobSetRequest(queue="default", id=SET, watch=True)
        try:
            for message in client.event_stub.GetJobSetEvents(request):
                received.append(message)
            ending.append("closed")
        except grpc.RpcError as exc:
            ending.append(exc.code())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _wait_until(lambda: any(_kind(m) == "running" for m in received), what="the running event")
    armada.stop()
    watcher.join(timeout=15)
    assert not watcher.is_alive(), "the watching stream hung after the server stopped"
    # either the stream is closed, or it fails with a code a client retries on
    assert ending in (["closed"], [grpc.StatusCode.UNAVAILABLE], [grpc.StatusCode.CANCELLED])
    assert [_kind(m) for m in received] == ["submitted", "queued", "leased", "pending", "running"]

    armada.start()
    request = event_pb2.JobSetRequest(
        queue="default", id=SET, from_message_id=received[-1].id, watch=True
    )
    stream = client.event_stub.GetJobSetEvents(request, timeout=30, wait_for_ready=True)
    resumed = []
    for message in stream:
        resumed.append(message)
        if _kind(message) == "succeeded":
            break
    stream.cancel()
    assert [_kind(m) for m in resumed] == ["succeeded"]
    history = _events(client)
    assert received + resumed == history
    channel.close()


# -- real processes are not resurrected ------------------------------------------

SLEEPER = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"


@pytest.mark.parametrize("how", ["reopen-state-file", "in-memory-restart"])
def test_a_subprocess_job_running_at_stop_is_failed_after_restart_as_lost(
    tmp_path, local_armada_factory, how
):
    state_path = tmp_path / "armada.db" if how == "reopen-state-file" else None
    armada = local_armada_factory(
        state_path=state_path, time_scale=TIME_SCALE, execution="subprocess"
    )
    with armada.channel() as channel:
        job_id = _submit(ArmadaClient(channel), job_request_item([sys.executable, "-c", SLEEPER]))
    armada.wait_for_state(job_id, [JobState.RUNNING])
    _wait_until(lambda: bool(armada.job(job_id).log_lines), what="the process to start")
    pid = int(armada.job(job_id).log_lines[0])

    if how == "reopen-state-file":
        armada.stop()
        _wait_until_gone(pid)  # stopping the server killed the process
        armada = local_armada_factory(
            state_path=state_path, time_scale=TIME_SCALE, execution="subprocess"
        )
    else:
        armada.restart()
        _wait_until_gone(pid)

    job = armada.wait_for_state(job_id, timeout=10)
    assert job.state is JobState.FAILED
    assert "lost" in job.reason
    assert "process" in job.reason
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        errors = client.get_job_errors([job_id]).job_errors
        events = _events(client)
    assert errors[job_id] == job.reason
    failed = [m.message.failed for m in events if _kind(m) == "failed"]
    assert len(failed) == 1
    assert failed[0].reason == job.reason
