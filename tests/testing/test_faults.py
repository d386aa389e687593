from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import grpc
import pytest
from armada_client.armada import (
    binoculars_pb2,
    binoculars_pb2_grpc,
    event_pb2,
    job_pb2,
    submit_pb2,
    submit_pb2_grpc,
)
from armada_client.client import ArmadaClient
from google.protobuf import empty_pb2

from armada_hooks.testing import LocalArmada, job_request_item

pytestmark = pytest.mark.local_armada(time_scale=50)

QUEUE = "default"
STREAM_DEADLINE = 10.0  # real seconds; a hanging stream fails the test instead
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
INTERNAL = grpc.StatusCode.INTERNAL


def submit(client: ArmadaClient, job_set: str = "set") -> str:
    response = client.submit_jobs(QUEUE, job_set, [job_request_item()])
    return response.job_response_items[0].job_id


def finished_job(armada: LocalArmada, client: ArmadaClient, job_set: str = "set") -> str:
    job_id = submit(client, job_set)
    armada.wait_for_state(job_id, timeout=10)
    return job_id


def outcome(call, *args, **kwargs) -> grpc.StatusCode:
    """The status a unary call ends with (OK when it returns)."""
    try:
        call(*args, **kwargs)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        call(*args, **kwargs)
    return exc.value


def events_request(job_set: str, *, watch: bool, from_message_id: str = ""):
    return event_pb2.JobSetRequest(
        queue=QUEUE, id=job_set, watch=watch, from_message_id=from_message_id
    )


def all_events(client: ArmadaClient, job_set: str, from_message_id: str = "") -> list:
    request = events_request(job_set, watch=False, from_message_id=from_message_id)
    return list(client.event_stub.GetJobSetEvents(request, timeout=STREAM_DEADLINE))


def consume_until_error(stream, limit: int) -> tuple[list, grpc.RpcError | None]:
    """Up to ``limit`` messages, and the error that ended the stream first, if any."""
    received = []
    try:
        while len(received) < limit:
            received.append(next(stream))
    except grpc.RpcError as exc:
        return received, exc
    return received, None


# -- scripted failures -----------------------------------------------------------------


def test_fail_times_three_fails_the_next_three_calls_then_lets_calls_through(
    local_armada, local_armada_client
):
    job_id = submit(local_armada_client)
    local_armada.faults.fail("GetJobStatus", UNAVAILABLE, times=3)

    errors = [rpc_error(local_armada_client.get_job_status, [job_id]) for _ in range(3)]
    details = local_armada_client.get_job_details([job_id])  # another method: untouched
    fourth = local_armada_client.get_job_status([job_id])

    assert [e.code() for e in errors] == [UNAVAILABLE] * 3
    for error in errors:
        assert "fault injection" in error.details()
        assert "UNAVAILABLE" in error.details()
    assert job_id in details.job_details
    assert job_id in fourth.job_states
    assert outcome(local_armada_client.get_job_status, [job_id]) is grpc.StatusCode.OK


def test_a_failed_method_does_not_affect_other_methods(local_armada, local_armada_client):
    finished_job(local_armada, local_armada_client)
    local_armada.faults.fail("GetJobStatus", UNAVAILABLE, times=100)

    assert local_armada_client.get_queue(QUEUE).name == QUEUE
    assert len(all_events(local_armada_client, "set")) == 6
    assert submit(local_armada_client)
    assert outcome(local_armada_client.get_job_status, ["x"]) is UNAVAILABLE


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
    ],
)
def test_each_transient_code_can_be_injected(local_armada, local_armada_client, code):
    local_armada.faults.fail("SubmitJobs", code)

    error = rpc_error(local_armada_client.submit_jobs, QUEUE, "set", [job_request_item()])

    assert error.code() is code
    assert error.details() == f"{code.name} injected by the local Armada's fault injection"
    assert local_armada.jobs() == []  # the failed call never reached the service
    assert submit(local_armada_client)


def test_an_injected_failure_on_the_event_stream_ends_it_before_any_message(
    local_armada, local_armada_client
):
    finished_job(local_armada, local_armada_client)
    local_armada.faults.fail("GetJobSetEvents", INTERNAL)

    error = rpc_error(all_events, local_armada_client, "set")

    assert error.code() is INTERNAL
    assert "fault injection" in error.details()
    assert len(all_events(local_armada_client, "set")) == 6


def test_a_script_passes_calls_whose_entry_is_none(local_armada, local_armada_client):
    local_armada.faults.script("GetJobStatus", [None, UNAVAILABLE, None, None, INTERNAL])

    results = [outcome(local_armada_client.get_job_status, ["x"]) for _ in range(7)]

    ok = grpc.StatusCode.OK
    assert results == [ok, UNAVAILABLE, ok, ok, INTERNAL, ok, ok]


def test_a_star_script_applies_to_whichever_calls_come_next(local_armada, local_armada_client):
    local_armada.faults.script("*", [UNAVAILABLE, None, INTERNAL])

    results = [
        outcome(local_armada_client.get_queue, QUEUE),
        outcome(local_armada_client.get_job_status, ["x"]),
        outcome(local_armada_client.submit_health),
        outcome(local_armada_client.get_job_details, ["x"]),
    ]

    assert results == [UNAVAILABLE, grpc.StatusCode.OK, INTERNAL, grpc.StatusCode.OK]


@pytest.mark.parametrize(
    "pattern", ["GetJobStatus", "api.Jobs/GetJobStatus", "/api.Jobs/GetJobStatus"]
)
def test_short_and_service_qualified_patterns_name_the_same_method(
    local_armada, local_armada_client, pattern
):
    local_armada.faults.fail(pattern, UNAVAILABLE, times=2)

    assert outcome(local_armada_client.get_job_details, ["x"]) is grpc.StatusCode.OK
    assert outcome(local_armada_client.get_job_status, ["x"]) is UNAVAILABLE
    assert outcome(local_armada_client.get_job_status, ["x"]) is UNAVAILABLE
    assert outcome(local_armada_client.get_job_status, ["x"]) is grpc.StatusCode.OK


def test_a_service_qualified_pattern_leaves_the_same_name_on_another_service_alone(
    local_armada, local_armada_client
):
    legacy = submit_pb2_grpc.SubmitStub(local_armada.channel())
    local_armada.faults.fail("api.QueueService/GetQueue", UNAVAILABLE, times=1)

    assert legacy.GetQueue(submit_pb2.QueueGetRequest(name=QUEUE)).name == QUEUE
    assert outcome(local_armada_client.get_queue, QUEUE) is UNAVAILABLE
    assert local_armada_client.get_queue(QUEUE).name == QUEUE


def test_a_pattern_naming_another_service_does_not_match(local_armada, local_armada_client):
    local_armada.faults.fail("api.Submit/GetJobStatus", UNAVAILABLE, times=5)

    assert outcome(local_armada_client.get_job_status, ["x"]) is grpc.StatusCode.OK


def test_ok_is_refused_in_a_script(local_armada):
    with pytest.raises(ValueError, match="use None"):
        local_armada.faults.script("GetJobStatus", [grpc.StatusCode.OK])


# -- random failures -------------------------------------------------------------------


def test_fail_randomly_with_probability_one_fails_every_call(local_armada, local_armada_client):
    local_armada.faults.fail_randomly("GetJobStatus", UNAVAILABLE, probability=1.0)

    errors = [rpc_error(local_armada_client.get_job_status, ["x"]) for _ in range(30)]

    assert {e.code() for e in errors} == {UNAVAILABLE}
    assert all("fault injection (random)" in e.details() for e in errors)
    assert outcome(local_armada_client.get_job_details, ["x"]) is grpc.StatusCode.OK


def test_fail_randomly_with_probability_zero_fails_no_call(local_armada, local_armada_client):
    local_armada.faults.fail_randomly("*", UNAVAILABLE, probability=0.0)

    results = {outcome(local_armada_client.get_job_status, ["x"]) for _ in range(30)}

    assert results == {grpc.StatusCode.OK}


def _random_pattern(armada: LocalArmada, seed: int, calls: int = 200) -> list[bool]:
    armada.faults.fail_randomly("GetJobStatus", UNAVAILABLE, probability=0.5, seed=seed)
    client = armada.client()
    return [outcome(client.get_job_status, ["x"]) is grpc.StatusCode.OK for _ in range(calls)]


def test_seeded_random_failures_are_binomial_and_reproducible(local_armada_factory):
    first = _random_pattern(local_armada_factory(), seed=7)
    again = _random_pattern(local_armada_factory(), seed=7)
    other = _random_pattern(local_armada_factory(), seed=8)

    failures = first.count(False)
    assert 60 <= failures <= 140  # mean 100, sd ~7: a > 5 sd bound
    assert first == again
    assert other != first


@pytest.mark.parametrize("probability", [-0.1, 1.5])
def test_a_probability_outside_zero_to_one_is_refused(local_armada, probability):
    with pytest.raises(ValueError, match="probability must be within"):
        local_armada.faults.fail_randomly("*", UNAVAILABLE, probability=probability)


# -- latency ---------------------------------------------------------------------------


def test_added_latency_exceeds_a_short_deadline_but_not_a_long_one(
    local_armada, local_armada_client
):
    local_armada.faults.delay("GetJobStatus", 0.5)
    stub = local_armada_client.job_stub
    request = job_pb2.JobStatusRequest(job_ids=["x"])

    short = rpc_error(stub.GetJobStatus, request, timeout=0.1)
    long = stub.GetJobStatus(request, timeout=10)

    assert short.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert "Deadline" in short.details()
    assert long.job_states["x"] == submit_pb2.UNKNOWN


def test_latency_comes_before_an_injected_failure(local_armada, local_armada_client):
    local_armada.faults.delay("GetJobStatus", 1.0)
    local_armada.faults.fail("GetJobStatus", UNAVAILABLE, times=2)

    request = job_pb2.JobStatusRequest(job_ids=["x"])
    stub = local_armada_client.job_stub

    assert rpc_error(stub.GetJobStatus, request, timeout=0.2).code() is (
        grpc.StatusCode.DEADLINE_EXCEEDED
    )
    assert rpc_error(stub.GetJobStatus, request, timeout=10).code() is UNAVAILABLE


def test_latency_for_a_number_of_calls_slows_only_those(local_armada, local_armada_client):
    local_armada.faults.delay("*", 1.0, times=2)
    request = job_pb2.JobStatusRequest(job_ids=["x"])
    stub = local_armada_client.job_stub
    submit_stub = submit_pb2_grpc.SubmitStub(local_armada.channel())

    first = rpc_error(stub.GetJobStatus, request, timeout=0.3)
    second = rpc_error(submit_stub.Health, empty_pb2.Empty(), timeout=0.3)
    third = stub.GetJobStatus(request, timeout=0.5)  # the two slow calls are spent

    assert first.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert second.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert third.job_states["x"] == submit_pb2.UNKNOWN


def test_a_call_slowed_past_its_deadline_still_runs_on_the_server(local_armada):
    local_armada.faults.delay("SubmitJobs", 0.5, times=1)
    stub = submit_pb2_grpc.SubmitStub(local_armada.channel())
    request = submit_pb2.JobSubmitRequest(
        queue=QUEUE, job_set_id="slow", job_request_items=[job_request_item()]
    )

    error = rpc_error(stub.SubmitJobs, request, timeout=0.1)
    deadline = time.monotonic() + 10
    while not local_armada.jobs() and time.monotonic() < deadline:
        time.sleep(0.05)

    assert error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert [job.job_set_id for job in local_armada.jobs()] == ["slow"]


def test_a_limited_latency_needs_a_positive_number_of_calls(local_armada):
    with pytest.raises(ValueError, match="times must be >= 1"):
        local_armada.faults.delay("*", 1.0, times=0)


def test_negative_latency_is_refused(local_armada):
    with pytest.raises(ValueError, match="latency must be >= 0"):
        local_armada.faults.delay("*", -1)


# -- dropped event streams -------------------------------------------------------------


def test_a_dropped_stream_delivers_exactly_after_messages_then_unavailable(
    local_armada, local_armada_client
):
    finished_job(local_armada, local_armada_client)
    everything = all_events(local_armada_client, "set")
    local_armada.faults.drop_streams(after=3)

    stream = local_armada_client.event_stub.GetJobSetEvents(
        events_request("set", watch=True), timeout=STREAM_DEADLINE
    )
    received, error = consume_until_error(stream, limit=len(everything))

    assert received == everything[:3]
    assert error is not None
    assert error.code() is UNAVAILABLE
    assert error.details() == "event stream dropped by the local Armada's fault injection"


def test_resubscribing_from_the_last_message_after_a_drop_yields_the_rest_exactly(
    local_armada, local_armada_client
):
    finished_job(local_armada, local_armada_client)
    everything = all_events(local_armada_client, "set")
    local_armada.faults.drop_streams(after=3)
    stream = local_armada_client.event_stub.GetJobSetEvents(
        events_request("set", watch=True), timeout=STREAM_DEADLINE
    )
    received, error = consume_until_error(stream, limit=len(everything))
    assert error is not None

    resumed = local_armada_client.event_stub.GetJobSetEvents(
        events_request("set", watch=True, from_message_id=received[-1].id),
        timeout=STREAM_DEADLINE,
    )
    try:
        rest, resumed_error = consume_until_error(resumed, limit=len(everything) - 3)
    finally:
        resumed.cancel()

    assert resumed_error is None
    assert received + rest == everything


def test_drop_streams_times_drops_that_many_streams_and_zero_drops_before_any_message(
    local_armada, local_armada_client
):
    finished_job(local_armada, local_armada_client)
    local_armada.faults.drop_streams(after=0, times=2)

    for _ in range(2):
        error = rpc_error(all_events, local_armada_client, "set")
        assert error.code() is UNAVAILABLE
        assert "dropped" in error.details()

    assert len(all_events(local_armada_client, "set")) == 6


def test_the_clients_resilient_stream_delivers_a_gapless_prefix_when_dropped(
    local_armada, local_armada_client
):
    # armada_client's stream is not expected to survive a drop; whatever it does, what it
    # delivered must be the job set's events in order, and resuming from them completes it.
    finished_job(local_armada, local_armada_client)
    everything = all_events(local_armada_client, "set")
    local_armada.faults.drop_streams(after=3)

    stream = local_armada_client.get_job_events_stream(QUEUE, "set")
    try:
        received, _ = consume_until_error(stream, limit=len(everything))
    finally:
        stream.cancel()

    assert len(received) >= 3
    assert received == everything[: len(received)]
    rest = all_events(local_armada_client, "set", from_message_id=received[-1].id)
    assert received + rest == everything


@pytest.mark.parametrize(("after", "times"), [(-1, 1), (1, 0)])
def test_invalid_drop_settings_are_refused(local_armada, after, times):
    with pytest.raises(ValueError, match="after must be >= 0"):
        local_armada.faults.drop_streams(after, times=times)


# -- counters --------------------------------------------------------------------------


def test_counters_count_every_call_per_method_including_failed_ones(
    local_armada, local_armada_client
):
    job_id = finished_job(local_armada, local_armada_client)
    local_armada.reset_rpc_counts()
    local_armada.faults.fail("GetJobStatus", UNAVAILABLE, times=2)

    for _ in range(3):
        outcome(local_armada_client.get_job_status, [job_id])
    local_armada_client.get_job_details([job_id])
    all_events(local_armada_client, "set")

    assert local_armada.rpc_counts() == {
        "GetJobStatus": 3,
        "GetJobDetails": 1,
        "GetJobSetEvents": 1,
    }
    assert local_armada.rpc_count("GetJobStatus") == 3
    assert local_armada.rpc_count("api.Jobs/GetJobStatus") == 3
    assert local_armada.rpc_count("/api.Jobs/GetJobStatus") == 3
    assert local_armada.rpc_count("api.Submit/GetJobStatus") == 0
    assert local_armada.rpc_count("GetJobSetEvents") == 1
    assert local_armada.rpc_count("*") == local_armada.rpc_count() == 5


def test_counters_tell_services_apart_by_qualified_name(local_armada, local_armada_client):
    legacy = submit_pb2_grpc.SubmitStub(local_armada.channel())
    local_armada.reset_rpc_counts()

    local_armada_client.get_queue(QUEUE)
    legacy.GetQueue(submit_pb2.QueueGetRequest(name=QUEUE))
    legacy.GetQueue(submit_pb2.QueueGetRequest(name=QUEUE))

    assert local_armada.rpc_counts() == {"GetQueue": 3}
    assert local_armada.rpc_count("GetQueue") == 3
    assert local_armada.rpc_count("api.QueueService/GetQueue") == 1
    assert local_armada.rpc_count("api.Submit/GetQueue") == 2


def test_calls_refused_for_authentication_are_counted(local_armada_factory):
    armada = local_armada_factory(token="s3cret")
    anonymous = armada.client(token="")

    error = rpc_error(anonymous.get_job_status, ["x"])

    assert error.code() is grpc.StatusCode.UNAUTHENTICATED
    assert armada.rpc_counts() == {"GetJobStatus": 1}


def test_reset_rpc_counts_zeroes_every_counter(local_armada, local_armada_client):
    submit(local_armada_client)
    local_armada_client.get_job_status(["x"])
    assert local_armada.rpc_count() > 0

    local_armada.reset_rpc_counts()

    assert local_armada.rpc_counts() == {}
    assert local_armada.rpc_count() == 0
    assert local_armada.rpc_count("GetJobStatus") == 0
    local_armada_client.get_job_status(["x"])
    assert local_armada.rpc_counts() == {"GetJobStatus": 1}


def test_calls_naming_one_job_are_also_counted_per_job(local_armada, local_armada_client):
    first, second = finished_job(local_armada, local_armada_client), submit(local_armada_client)
    local_armada.reset_rpc_counts()
    logs = binoculars_pb2_grpc.BinocularsStub(local_armada.channel()).Logs
    for job_id in (first, first, second):
        outcome(logs, binoculars_pb2.LogRequest(job_id=job_id, pod_namespace="default"))
    local_armada_client.get_job_status([first, second])  # names many jobs: not per job

    assert local_armada.rpc_counts_by_job("Logs") == {first: 2, second: 1}
    assert local_armada.rpc_counts_by_job("binoculars.Binoculars/Logs") == {first: 2, second: 1}
    assert local_armada.rpc_counts_by_job("GetJobStatus") == {}
    local_armada.reset_rpc_counts()
    assert local_armada.rpc_counts_by_job("Logs") == {}


def test_counts_survive_a_restart(local_armada, local_armada_client):
    submit(local_armada_client)
    local_armada_client.get_job_status(["x"])
    before = local_armada.rpc_counts()

    local_armada.restart()

    assert local_armada.rpc_counts() == before
    local_armada.client().get_job_status(["x"])
    assert local_armada.rpc_counts() == {**before, "GetJobStatus": before["GetJobStatus"] + 1}


# -- holds -----------------------------------------------------------------------------


def submit_in_thread(
    client: ArmadaClient, job_set: str = "set"
) -> tuple[concurrent.futures.Future[str], Callable[[], None]]:
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    return pool.submit(submit, client, job_set), lambda: pool.shutdown(wait=True)


def test_a_call_held_before_serving_has_no_effect_until_released(local_armada, local_armada_client):
    hold = local_armada.faults.hold("SubmitJobs")
    reply, done = submit_in_thread(local_armada_client)
    hold.wait_held(timeout=10)

    assert local_armada.jobs() == []
    assert not reply.done()
    hold.release()
    job_id = reply.result(timeout=10)
    done()
    assert [j.job_id for j in local_armada.jobs()] == [job_id]
    assert submit(local_armada_client) != job_id  # one call held, the next one is not


def test_a_reply_held_after_serving_leaves_the_job_submitted_and_unanswered(
    local_armada, local_armada_client
):
    hold = local_armada.faults.hold("SubmitJobs", after_serving=True)
    reply, done = submit_in_thread(local_armada_client)
    hold.wait_held(timeout=10)

    (job,) = local_armada.jobs()
    assert not reply.done()
    hold.release()
    assert reply.result(timeout=10) == job.job_id
    done()


def test_a_hold_of_two_calls_keeps_both_until_released_together(local_armada, local_armada_client):
    hold = local_armada.faults.hold("SubmitJobs", times=2)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    replies = [pool.submit(submit, local_armada_client) for _ in range(2)]
    hold.wait_held(2, timeout=10)
    assert hold.held == 2
    assert not any(r.done() for r in replies)

    hold.release()
    assert len({r.result(timeout=10) for r in replies}) == 2
    pool.shutdown(wait=True)


def test_a_held_call_goes_on_after_its_limit_and_clear_releases_the_rest(
    local_armada, local_armada_client
):
    local_armada.faults.hold("SubmitJobs", limit=0.5)
    assert submit(local_armada_client)  # nobody releases it: let go after half a second

    hold = local_armada.faults.hold("GetJobStatus")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    request = job_pb2.JobStatusRequest(job_ids=["x"])
    reply = pool.submit(local_armada_client.job_stub.GetJobStatus, request, timeout=10)
    hold.wait_held(timeout=10)
    local_armada.faults.clear()
    assert reply.result(timeout=10).job_states["x"] == submit_pb2.UNKNOWN
    pool.shutdown(wait=True)


def test_when_picks_the_calls_to_hold(local_armada, local_armada_client):
    hold = local_armada.faults.hold("SubmitJobs", when=lambda request: request.job_set_id == "b")
    other = submit(local_armada_client, "a")  # not held: another job set
    reply, done = submit_in_thread(local_armada_client, "b")
    hold.wait_held(timeout=10)
    assert [j.job_id for j in local_armada.jobs()] == [other]
    hold.release()
    assert reply.result(timeout=10) != other
    done()


def test_wait_held_times_out_naming_the_method(local_armada):
    hold = local_armada.faults.hold("CancelJobs")
    with pytest.raises(TimeoutError, match="0 of 1 calls of CancelJobs held"):
        hold.wait_held(timeout=0.1)


@pytest.mark.parametrize(("times", "limit"), [(0, 1.0), (1, 0.0)])
def test_invalid_hold_settings_are_refused(local_armada, times, limit):
    with pytest.raises(ValueError, match="times must be >= 1 and limit > 0"):
        local_armada.faults.hold("*", times=times, limit=limit)


# -- clear -----------------------------------------------------------------------------


def test_clear_removes_every_kind_of_fault(local_armada, local_armada_client):
    finished_job(local_armada, local_armada_client)
    faults = local_armada.faults
    faults.fail("GetJobStatus", UNAVAILABLE, times=10)
    faults.script("*", [INTERNAL] * 10)
    faults.fail_randomly("*", UNAVAILABLE, probability=1.0)
    faults.delay("*", 5.0)
    faults.drop_streams(after=0, times=5)

    faults.clear()

    stub = local_armada_client.job_stub
    request = job_pb2.JobStatusRequest(job_ids=["x"])
    for _ in range(3):
        assert stub.GetJobStatus(request, timeout=2).job_states["x"] == submit_pb2.UNKNOWN
    assert len(all_events(local_armada_client, "set")) == 6
    assert submit(local_armada_client)
