"""The in-memory Armada: the local Armada's engine behind an in-process channel.

What the server does (validation, states, events, limits) is tested against the gRPC
server elsewhere; here is only what the in-process client adds: a hand-driven clock, no
thread of its own, scripted faults and call counts, errors shaped like gRPC's, messages
copied as on the wire, and event streams that replay, watch and stop.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from armada_client.armada import event_pb2
from armada_client.armada import submit_pb2 as submit

from armada_hooks.protocols import ArmadaProtocol, AsyncArmadaProtocol, LogProtocol
from armada_hooks.states import JobState
from armada_hooks.testing import InMemoryArmada, InMemoryRpcError, JobBehaviour, job_request_item
from armada_hooks.testing.behaviour import RUNTIME

T0 = 1000.0
SET = "set-1"
# JobBehaviour's defaults: queued 0.2 s, leased 0.05 s, pending 0.2 s, running 1 s.
KINDS = ["submitted", "queued", "leased", "pending", "running", "succeeded"]


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def at(self, seconds_after_start: float) -> None:
        self.now = T0 + seconds_after_start


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def armada(clock):
    return InMemoryArmada(queues=["default"], clock=clock)


@pytest.fixture
def client(armada):
    return armada.client()


def one_job(client, **annotations):
    response = client.submit_jobs("default", SET, [job_request_item(annotations=annotations)])
    return response.job_response_items[0].job_id


def status(client, job_id):
    return JobState(client.get_job_status([job_id]).job_states[job_id])


def kinds(messages):
    return [m.message.WhichOneof("events") for m in messages]


def rpc_error(call, *args):
    with pytest.raises(InMemoryRpcError) as caught:
        call(*args)
    return caught.value.code(), caught.value.details()


# -- the clients ----------------------------------------------------------------------


def test_the_clients_satisfy_the_protocols(armada):
    assert isinstance(armada.client(), ArmadaProtocol)
    assert isinstance(armada.async_client(), AsyncArmadaProtocol)
    assert isinstance(armada.log_client(), LogProtocol)
    assert not isinstance(armada.log_client(), ArmadaProtocol)


def test_errors_are_grpc_errors_with_the_servers_code_and_text(client):
    code, details = rpc_error(client.submit_jobs, "nope", SET, [job_request_item()])
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert details.startswith('could not find queue "nope" (')
    bad = job_request_item(namespace="")
    assert (
        rpc_error(client.submit_jobs, "default", SET, [bad])[0] is grpc.StatusCode.INVALID_ARGUMENT
    )
    error = InMemoryRpcError(grpc.StatusCode.UNAVAILABLE, "try again")
    assert isinstance(error, grpc.RpcError)
    assert isinstance(error, grpc.aio.AioRpcError)  # what an asyncio caller catches


def test_messages_are_copied_as_on_the_wire(client):
    queue = client.get_queue("default")
    queue.priority_factor = 9  # the caller's copy, not the server's
    assert client.get_queue("default").priority_factor == 1


# -- time -----------------------------------------------------------------------------


def test_job_time_moves_only_with_the_clock(armada, client, clock):
    job_id = one_job(client)
    for _ in range(3):
        assert status(client, job_id) is JobState.QUEUED
    for when, state in [(0.22, JobState.LEASED), (0.3, JobState.PENDING), (0.5, JobState.RUNNING)]:
        clock.at(when)
        assert status(client, job_id) is state
        assert armada.job_state(job_id) is state
    clock.at(1.45)
    assert status(client, job_id) is JobState.SUCCEEDED
    details = client.get_job_details([job_id]).job_details[job_id]
    assert details.submitted_ts.seconds == int(T0)
    assert details.last_transition_ts.ToNanoseconds() == int((T0 + 1.45) * 1e9)


def test_time_scale_speeds_up_a_manual_clock(clock):
    client = InMemoryArmada(time_scale=10, clock=clock).client()
    job_id = one_job(client)
    clock.at(0.1)  # one job-second
    assert status(client, job_id) is JobState.RUNNING
    clock.at(0.15)
    assert status(client, job_id) is JobState.SUCCEEDED


def test_defaults_and_ingestion_delay_apply(clock):
    armada = InMemoryArmada(clock=clock, defaults=JobBehaviour(outcome="failed"), ingestion_delay=5)
    client = armada.client()
    job_id = one_job(client)
    clock.at(4.9)
    assert status(client, job_id) is JobState.UNKNOWN  # not yet in the query API
    assert armada.job_state(job_id) is JobState.FAILED
    clock.at(5)
    assert status(client, job_id) is JobState.FAILED


def test_no_thread_runs_for_it(clock):
    before = set(threading.enumerate())
    armada = InMemoryArmada(clock=clock)
    job_id = one_job(armada.client())
    clock.at(10)
    assert armada.job_state(job_id) is JobState.SUCCEEDED
    assert set(threading.enumerate()) <= before


# -- faults and counts -----------------------------------------------------------------


def test_fail_next_fails_the_next_calls_of_one_rpc_then_recovers(armada, client):
    job_id = one_job(client)
    armada.fail_next("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=2)
    for _ in range(2):
        assert rpc_error(client.get_job_status, [job_id])[0] is grpc.StatusCode.UNAVAILABLE
    assert status(client, job_id) is JobState.QUEUED
    assert client.get_job_details([job_id]).job_details  # other RPCs were never affected
    assert armada.calls == {"SubmitJobs": 1, "GetJobStatus": 3, "GetJobDetails": 1}


def test_fail_next_names_the_rpcs_it_knows(armada):
    with pytest.raises(
        ValueError, match=r"unknown RPC 'get_job_status'; use one of .*GetJobStatus"
    ):
        armada.fail_next("get_job_status", grpc.StatusCode.UNAVAILABLE)


def test_a_stream_fault_surfaces_at_the_first_read(armada, client):
    one_job(client)
    armada.fail_next("GetJobSetEvents", grpc.StatusCode.UNAVAILABLE)
    stream = client.get_job_events_stream("default", SET)
    assert rpc_error(next, stream)[0] is grpc.StatusCode.UNAVAILABLE
    assert armada.calls["GetJobSetEvents"] == 1


# -- logs -------------------------------------------------------------------------------


def test_logs_come_from_binoculars_as_job_time_passes(armada, client, clock):
    job_id = one_job(client, **{RUNTIME: "4"})
    logs = armada.log_client()
    code, details = rpc_error(logs.logs, job_id)
    assert (code, details) == (grpc.StatusCode.NOT_FOUND, f'pods "armada-{job_id}-0" not found')
    clock.at(0.45 + 2.5)  # lines at 1, 2 and 3 job-seconds into the run
    assert [line.line for line in logs.logs(job_id)] == [
        f"[{job_id}] line {i} of 3" for i in (1, 2)
    ]
    assert armada.calls["Logs"] == 2


# -- event streams ---------------------------------------------------------------------


def test_the_event_stream_replays_then_watches(client, clock):
    one_job(client)
    stream = client.get_job_events_stream("default", SET)
    assert kinds(itertools.islice(stream, 2)) == KINDS[:2]
    with ThreadPoolExecutor(1) as pool:
        rest = pool.submit(lambda: list(itertools.islice(stream, 4)))
        assert not rest.done()
        clock.at(10)  # time passes while the stream waits
        assert kinds(rest.result(timeout=5)) == KINDS[2:]
    stream.cancel()
    again = client.get_job_events_stream("default", SET)
    first = next(again)
    again.cancel()
    resumed = client.get_job_events_stream("default", SET, first.id)
    assert kinds(itertools.islice(resumed, 5)) == KINDS[1:]  # strictly after `first`
    resumed.cancel()


def test_a_watch_ends_when_its_reader_cancels_it(client):
    one_job(client)
    request = event_pb2.JobSetRequest(queue="default", id=SET, watch=True)
    stream = client.event_stub.GetJobSetEvents(request)
    seen = []
    two = threading.Event()

    def read():
        for message in stream:
            seen.append(message)
            if len(seen) == 2:
                two.set()

    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(read)
        assert two.wait(timeout=5)
        assert not reading.done()  # still watching
        stream.cancel()
        reading.result(timeout=5)  # and now it has ended
    assert kinds(seen) == KINDS[:2]


def test_a_replay_without_watch_ends_at_once(client):
    one_job(client)
    request = event_pb2.JobSetRequest(queue="default", id=SET)
    assert kinds(client.event_stub.GetJobSetEvents(request)) == KINDS[:2]
    assert (
        list(client.event_stub.GetJobSetEvents(event_pb2.JobSetRequest(queue="default", id="x")))
        == []
    )


async def test_the_async_client_answers_and_watches(armada, clock):
    aio = armada.async_client()
    response = await aio.submit_jobs("default", SET, [job_request_item()])
    assert isinstance(response, submit.JobSubmitResponse)
    job_id = response.job_response_items[0].job_id
    assert JobState((await aio.get_job_status([job_id])).job_states[job_id]) is JobState.QUEUED
    stream = await aio.get_job_events_stream("default", SET)
    seen = [await anext(stream), await anext(stream)]
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # nothing new until job time moves
    clock.at(10)
    seen.append(await asyncio.wait_for(waiting, timeout=5))
    assert kinds(seen) == KINDS[:3]
    stream.cancel()
