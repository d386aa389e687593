"""The in-memory Armada: protocol conformance, job life by a hand-driven clock, wire semantics.

Time is a fake clock the tests move by hand; the only real waiting is inside the
in-memory event stream's watch loop, exercised from a worker thread or an asyncio task.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from armada_client.armada import event_pb2, health_pb2, job_pb2
from armada_client.armada import submit_pb2 as submit
from google.protobuf import empty_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from armada_hooks.protocols import (
    ArmadaProtocol,
    AsyncArmadaProtocol,
    LogLineLike,
    LogProtocol,
)
from armada_hooks.states import TERMINAL_STATES, JobState
from armada_hooks.testing import InMemoryArmada, InMemoryRpcError, JobBehaviour, job_request_item
from armada_hooks.testing.memory import (
    InMemoryArmadaClient,
    InMemoryAsyncArmadaClient,
    InMemoryLogClient,
)
from armada_hooks.timestamps import rfc3339_nano

T0 = 1000.0  # the fake clock's epoch start: whole seconds, so log stamps are easy to read
SET = "set-1"


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def at(self, seconds_after_start: float) -> None:
        self.now = T0 + seconds_after_start


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def armada(clock):
    return InMemoryArmada(queues=["default", "other"], clock=clock)


@pytest.fixture
def client(armada):
    return armada.client()


def submit_ids(client, *items, queue="default", job_set=SET):
    response = client.submit_jobs(queue, job_set, list(items))
    return [item.job_id for item in response.job_response_items]


def one_job(client, **annotations):
    return submit_ids(client, job_request_item(annotations=annotations))[0]


def status(client, job_id):
    return JobState(client.get_job_status([job_id]).job_states[job_id])


def rpc_error(call, *args):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    return caught.value.code(), caught.value.details()


def first_job_of_the_set(client, item):
    """Submit ``item``; whether it is the first job of the job set to have any event."""
    job_id = submit_ids(client, item)[0]
    return next(client.get_job_events_stream("default", SET)).message.submitted.job_id == job_id


def payload(message):
    return getattr(message.message, message.message.WhichOneof("events"))


def kinds(messages):
    return [m.message.WhichOneof("events") for m in messages]


def seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


# -- protocols ---------------------------------------------------------------


def _typed_sync(c: InMemoryArmadaClient) -> ArmadaProtocol:
    return c


def _typed_async(c: InMemoryAsyncArmadaClient) -> AsyncArmadaProtocol:
    return c


def _typed_logs(c: InMemoryLogClient) -> LogProtocol:
    return c


def test_clients_satisfy_the_protocols_at_run_time(armada, client):
    assert isinstance(_typed_sync(armada.client()), ArmadaProtocol)
    assert isinstance(_typed_async(armada.async_client()), AsyncArmadaProtocol)
    assert isinstance(_typed_logs(armada.log_client()), LogProtocol)
    assert not isinstance(armada.log_client(), ArmadaProtocol)
    assert not isinstance(armada.client(), LogProtocol)


def test_log_lines_satisfy_log_line_like(armada, client, clock):
    job_id = one_job(client, **{"armada-hooks/runtime": "10"})
    clock.at(100)
    lines = armada.log_client().logs(job_id)
    assert lines
    assert all(isinstance(line, LogLineLike) for line in lines)


def test_rpc_error_looks_like_a_grpc_error():
    error = InMemoryRpcError(grpc.StatusCode.UNAVAILABLE, "try again")
    assert isinstance(error, grpc.RpcError)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert error.details() == "try again"
    assert "try again" in str(error)


# -- life by job time ---------------------------------------------------------

# Defaults: queue 0.2, lease 0.05, pending 0.2, runtime 1.0 -> ends at 1.45 job seconds.
PHASES = [
    (0.0, JobState.QUEUED),
    (0.1, JobState.QUEUED),
    (0.22, JobState.LEASED),
    (0.3, JobState.PENDING),
    (0.5, JobState.RUNNING),
    (1.4, JobState.RUNNING),
]


@pytest.mark.parametrize(
    ("outcome", "final"),
    [
        ("succeeded", JobState.SUCCEEDED),
        ("failed", JobState.FAILED),
        ("preempted", JobState.PREEMPTED),
    ],
)
def test_a_job_walks_the_states_by_job_time(armada, client, clock, outcome, final):
    job_id = one_job(client, **{"armada-hooks/outcome": outcome})
    for when, expected in [*PHASES, (1.5, final), (1000.0, final)]:
        clock.at(when)
        assert status(client, job_id) is expected, when
        assert armada.job_state(job_id) is expected


def test_a_rejected_job_is_rejected_right_after_its_queue_time(armada, client, clock):
    job_id = one_job(client, **{"armada-hooks/outcome": "rejected"})
    clock.at(0.19)
    assert status(client, job_id) is JobState.QUEUED
    clock.at(0.21)
    assert status(client, job_id) is JobState.REJECTED
    details = client.get_job_details([job_id]).job_details[job_id]
    assert list(details.job_runs) == []


def test_time_scale_runs_job_time_faster(clock):
    armada = InMemoryArmada(time_scale=10, clock=clock)
    client = armada.client()
    job_id = one_job(client)
    clock.at(0.1)  # one job-second: running
    assert status(client, job_id) is JobState.RUNNING
    clock.at(0.15)  # 1.5 job-seconds: done
    assert status(client, job_id) is JobState.SUCCEEDED
    details = client.get_job_details([job_id]).job_details[job_id]
    # stamps are in job time: the run finished 1.45 job-seconds after submission
    assert seconds(details.last_transition_ts) - seconds(details.submitted_ts) == pytest.approx(
        1.45
    )


def test_time_scale_must_be_positive():
    with pytest.raises(ValueError, match="time_scale"):
        InMemoryArmada(time_scale=0)


def test_lease_returns_requeue_the_job_with_a_new_run_each_time(client, clock):
    job_id = one_job(client, **{"armada-hooks/lease-returns": "1"})
    timeline = [
        (0.22, JobState.LEASED),
        (0.27, JobState.QUEUED),  # returned at 0.25
        (0.47, JobState.LEASED),  # leased again at 0.45
        (0.55, JobState.PENDING),
        (0.8, JobState.RUNNING),
        (1.7, JobState.SUCCEEDED),  # 1.45 + 0.25
    ]
    for when, expected in timeline:
        clock.at(when)
        assert status(client, job_id) is expected, when
    details = client.get_job_details([job_id]).job_details[job_id]
    runs = list(details.job_runs)
    assert [r.state for r in runs] == [
        job_pb2.RUNS_STATE_LEASE_RETURNED,
        job_pb2.RUN_STATE_SUCCEEDED,
    ]
    assert details.latest_run_id == runs[-1].run_id != runs[0].run_id


def test_defaults_apply_to_every_job_and_annotations_override_them(clock):
    armada = InMemoryArmada(clock=clock, defaults=JobBehaviour(runtime=100, outcome="failed"))
    client = armada.client()
    default_job = one_job(client)
    quick_job = one_job(
        client, **{"armada-hooks/runtime": "1", "armada-hooks/outcome": "succeeded"}
    )
    clock.at(50)
    assert status(client, default_job) is JobState.RUNNING
    assert status(client, quick_job) is JobState.SUCCEEDED
    clock.at(101)
    assert status(client, default_job) is JobState.FAILED


# -- query API ----------------------------------------------------------------


def test_every_requested_id_is_answered_unknown_ones_as_unknown(client):
    job_id = one_job(client)
    states = client.get_job_status([job_id, "nope"]).job_states
    assert dict(states) == {job_id: submit.QUEUED, "nope": submit.UNKNOWN}


def test_details_carry_the_run_with_the_timestamps_reached_so_far(client, clock):
    job_id = one_job(client, **{"armada-hooks/cluster": "gpu-east"})
    clock.at(0.5)  # running
    details = client.get_job_details([job_id, "nope"]).job_details
    assert list(details) == [job_id]
    job = details[job_id]
    assert (job.queue, job.jobset, job.namespace) == ("default", SET, "default")
    assert job.state == submit.RUNNING
    assert seconds(job.submitted_ts) == T0
    (run,) = job.job_runs
    assert run.run_id == job.latest_run_id
    assert (run.cluster, run.node, run.job_id) == ("gpu-east", "memory-node", job_id)
    assert run.state == job_pb2.RUN_STATE_RUNNING
    assert seconds(run.leased_ts) == pytest.approx(T0 + 0.2)
    assert seconds(run.pending_ts) == pytest.approx(T0 + 0.25)
    assert seconds(run.started_ts) == pytest.approx(T0 + 0.45)
    assert not run.HasField("finished_ts")

    clock.at(2)
    (run,) = client.get_job_details([job_id]).job_details[job_id].job_runs
    assert seconds(run.finished_ts) == pytest.approx(T0 + 1.45)
    assert run.state == job_pb2.RUN_STATE_SUCCEEDED
    runs = client.get_job_run_details([run.run_id, "no-such-run"]).job_run_details
    assert list(runs) == [run.run_id]
    assert runs[run.run_id] == run


def test_errors_give_the_reason_only_for_jobs_that_ended_badly(client, clock):
    ids = {
        "failed": one_job(
            client, **{"armada-hooks/outcome": "failed", "armada-hooks/exit-code": "3"}
        ),
        "preempted": one_job(client, **{"armada-hooks/outcome": "preempted"}),
        "rejected": one_job(client, **{"armada-hooks/outcome": "rejected"}),
        "custom": one_job(
            client,
            **{"armada-hooks/outcome": "failed", "armada-hooks/failure-reason": "OOMKilled"},
        ),
        "succeeded": one_job(client),
        "running": one_job(client, **{"armada-hooks/runtime": "1h"}),
    }
    clock.at(0.5)
    early = client.get_job_errors([ids["failed"]]).job_errors
    assert early == {ids["failed"]: ""}  # not failed yet
    clock.at(10)
    errors = client.get_job_errors([*ids.values(), "nope"]).job_errors
    assert "nope" not in errors
    assert errors[ids["failed"]] == "Container main exited with code 3"
    assert "preempted" in errors[ids["preempted"]].lower()
    assert "rejected" in errors[ids["rejected"]].lower()
    assert errors[ids["custom"]] == "OOMKilled"
    assert errors[ids["succeeded"]] == ""
    assert errors[ids["running"]] == ""


QUERIES = [
    pytest.param("get_job_status", "jobIds", id="get_job_status"),
    pytest.param("get_job_details", "jobIds", id="get_job_details"),
    pytest.param("get_job_errors", "JobIds", id="get_job_errors"),
    pytest.param("get_job_run_details", "RunIds", id="get_job_run_details"),
]


@pytest.mark.parametrize(("method", "what"), QUERIES)
def test_more_than_500_ids_are_refused(client, method, what):
    call = getattr(client, method)
    assert call([f"id-{i}" for i in range(500)]) is not None  # 500 is fine
    code, details = rpc_error(call, [f"id-{i}" for i in range(501)])
    assert code is grpc.StatusCode.UNKNOWN
    assert details == f"request contained more than 500 {what}"


def test_ingestion_delay_hides_a_new_job_from_the_query_api(clock):
    armada = InMemoryArmada(clock=clock, ingestion_delay=1.0)
    client = armada.client()
    job_id = submit_ids(client, job_request_item(external_job_uri="uri-1"))[0]
    clock.at(0.9)
    assert status(client, job_id) is JobState.UNKNOWN
    assert dict(client.get_job_details([job_id]).job_details) == {}
    assert dict(client.get_job_errors([job_id]).job_errors) == {}
    assert dict(client.get_job_status_by_external_job_uri("default", SET, "uri-1").job_states) == {}
    assert armada.job_state(job_id) is JobState.RUNNING  # it lives on regardless
    clock.at(1.0)
    assert status(client, job_id) is JobState.RUNNING
    assert list(client.get_job_details([job_id]).job_details) == [job_id]
    assert list(client.get_job_status_by_external_job_uri("default", SET, "uri-1").job_states) == [
        job_id
    ]


def test_a_lost_job_is_unknown_forever_but_can_be_cancelled(armada, client, clock):
    job_id = one_job(client, **{"armada-hooks/lost": "true"})
    clock.at(10_000)
    assert status(client, job_id) is JobState.UNKNOWN
    assert armada.job_state(job_id) is JobState.UNKNOWN
    assert dict(client.get_job_details([job_id]).job_details) == {}
    assert rpc_error(armada.log_client().logs, job_id)[0] is grpc.StatusCode.NOT_FOUND
    stream = client.get_job_events_stream("default", SET)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(next, stream)  # a lost job emits nothing until it is cancelled
        client.cancel_jobs("default", SET, job_id)
        first = pending.result(timeout=5)
        assert first.message.WhichOneof("events") == "cancelling"
        assert first.message.cancelling.job_id == job_id
    # As in the local Armada: cancelled on the server, still never seen by the query API.
    assert armada.job_state(job_id) is JobState.CANCELLED
    assert status(client, job_id) is JobState.UNKNOWN


def test_external_job_uri_finds_ingested_jobs_of_the_job_set(client):
    by_field = submit_ids(client, job_request_item(external_job_uri="airflow://dag/task/1"))[0]
    by_annotation = submit_ids(
        client,
        job_request_item(annotations={"armadaproject.io/externalJobUri": "airflow://dag/task/1"}),
    )[0]
    submit_ids(client, job_request_item(external_job_uri="airflow://dag/task/2"))
    submit_ids(client, job_request_item(external_job_uri="airflow://dag/task/1"), job_set="other")

    found = client.get_job_status_by_external_job_uri("default", SET, "airflow://dag/task/1")
    assert isinstance(found, job_pb2.JobStatusResponse)
    assert dict(found.job_states) == {by_field: submit.QUEUED, by_annotation: submit.QUEUED}
    assert (
        dict(client.get_job_status_by_external_job_uri("default", SET, "airflow://x").job_states)
        == {}
    )
    code, details = rpc_error(client.get_job_status_by_external_job_uri, "default", SET, "")
    assert (code, details) == (grpc.StatusCode.UNKNOWN, "request must contain external job uri")


def test_health_is_serving(client):
    serving = health_pb2.HealthCheckResponse.SERVING
    assert client.submit_health().status == serving
    assert client.event_health().status == serving


# -- submit -------------------------------------------------------------------


def test_client_id_deduplicates_per_queue_against_earlier_requests(client):
    first = submit_ids(client, job_request_item(client_id="c-1"))[0]
    again = submit_ids(client, job_request_item(client_id="c-1"), job_set="another-set")[0]
    other_queue = submit_ids(client, job_request_item(client_id="c-1"), queue="other")[0]
    twice_in_one = submit_ids(client, *[job_request_item(client_id="c-2")] * 2)
    no_client_id = submit_ids(client, job_request_item(), job_request_item())

    assert again == first
    assert other_queue != first
    assert len(set(twice_in_one)) == 2  # Armada dedups against earlier requests only
    assert submit_ids(client, job_request_item(client_id="c-2"))[0] == twice_in_one[0]
    assert len(set(no_client_id)) == 2


@pytest.mark.parametrize(
    ("queue", "item", "code", "message"),
    [
        pytest.param(
            "nope",
            job_request_item(),
            grpc.StatusCode.PERMISSION_DENIED,
            'could not find queue "nope"',
            id="unknown-queue",
        ),
        pytest.param(
            "",
            job_request_item(),
            grpc.StatusCode.PERMISSION_DENIED,
            'could not find queue ""',
            id="empty-queue",
        ),
        pytest.param(
            "default",
            job_request_item(namespace=""),
            grpc.StatusCode.INVALID_ARGUMENT,
            "namespace is a required field",
            id="no-namespace",
        ),
        pytest.param(
            "default",
            job_request_item(client_id="x" * 101),
            grpc.StatusCode.INVALID_ARGUMENT,
            "client id of length 101 is greater than max allowed length of  100",
            id="long-client-id",
        ),
        pytest.param(
            "default",
            job_request_item(annotations={"armada-hooks/runtime": "soon"}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "annotation armada-hooks/runtime='soon' is not a duration",
            id="bad-annotation",
        ),
        pytest.param(
            "default",
            job_request_item(annotations={"armada-hooks/execution": "subprocess"}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "armada-hooks/execution=subprocess is not supported",
            id="subprocess",
        ),
    ],
)
def test_bad_submissions_fail_as_a_whole_with_armadas_codes(client, queue, item, code, message):
    good = job_request_item(client_id="good-one")
    got_code, details = rpc_error(client.submit_jobs, queue, SET, [good, item])
    assert got_code is code
    assert details.startswith(message)
    assert first_job_of_the_set(client, job_request_item(client_id="good-one")) is True
    assert client.armada.calls["submit_jobs"] == 2


def test_missing_job_set_is_invalid(client):
    code, details = rpc_error(client.submit_jobs, "default", "", [job_request_item()])
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, "job set id is a required field")


def test_concurrent_submits_from_many_threads_are_all_kept(armada, client):
    def work(n):
        return [one_job(client) for _ in range(25)]

    with ThreadPoolExecutor(8) as pool:
        ids = list(itertools.chain.from_iterable(pool.map(work, range(8))))
    assert len(set(ids)) == 200
    states = client.get_job_status(ids).job_states
    assert set(states) == set(ids)
    assert all(state == submit.QUEUED for state in states.values())
    assert armada.calls["submit_jobs"] == 200


# -- cancellation -------------------------------------------------------------


def test_cancel_freezes_an_active_job_in_cancelled(armada, client, clock):
    job_id = one_job(client, **{"armada-hooks/runtime": "10"})
    clock.at(1)
    result = client.cancel_jobs("default", SET, job_id)
    assert list(result.cancelled_ids) == [job_id]
    clock.at(1000)
    assert status(client, job_id) is JobState.CANCELLED
    assert armada.job_state(job_id) is JobState.CANCELLED
    details = client.get_job_details([job_id]).job_details[job_id]
    assert seconds(details.cancel_ts) == T0 + 1
    (run,) = details.job_runs
    assert run.state == job_pb2.RUN_STATE_CANCELLED
    assert seconds(run.finished_ts) == T0 + 1
    assert client.get_job_errors([job_id]).job_errors[job_id] == ""


def test_cancel_leaves_a_terminal_job_alone(client, clock):
    job_id = one_job(client)
    clock.at(5)
    client.cancel_jobs("default", SET, job_id)
    assert status(client, job_id) is JobState.SUCCEEDED


def test_cancel_ignores_a_job_of_another_job_set(client, clock):
    job_id = one_job(client)
    assert list(client.cancel_jobs("default", "another-set", job_id).cancelled_ids) == [job_id]
    clock.at(5)
    assert status(client, job_id) is JobState.SUCCEEDED


def test_cancel_needs_a_known_queue_and_a_job_set(client):
    job_id = one_job(client)
    code, details = rpc_error(client.cancel_jobs, "nope", SET, job_id)
    assert (code, details) == (grpc.StatusCode.PERMISSION_DENIED, 'could not find queue "nope"')
    with pytest.raises(ValueError, match="queue and job_set_id"):
        client.cancel_jobs("default", "", job_id)
    assert status(client, job_id) is JobState.QUEUED


def test_cancel_jobs_without_an_id_cancels_the_whole_job_set(client):
    ids = submit_ids(client, job_request_item(), job_request_item())
    other = submit_ids(client, job_request_item(), job_set="other-set")[0]
    assert list(client.cancel_jobs("default", SET).cancelled_ids) == [""]
    assert [status(client, i) for i in ids] == [JobState.CANCELLED] * 2
    assert status(client, other) is JobState.QUEUED


def test_cancel_jobset_filters_by_state_as_armada_does(client, clock):
    parked = one_job(client, **{"armada-hooks/queue-time": "1h"})
    running = one_job(client, **{"armada-hooks/runtime": "1h"})
    clock.at(1)
    client.cancel_jobset("default", SET, [JobState.QUEUED])
    assert status(client, parked) is JobState.CANCELLED
    assert status(client, running) is JobState.RUNNING
    client.cancel_jobset("default", SET, [JobState.PENDING])  # PENDING selects leased jobs too
    assert status(client, running) is JobState.CANCELLED


def test_cancel_jobset_without_filter_cancels_every_active_job(client, clock):
    done = one_job(client)
    active = one_job(client, **{"armada-hooks/runtime": "1h"})
    clock.at(5)
    assert client.cancel_jobset("default", SET, []) == empty_pb2.Empty()
    assert status(client, done) is JobState.SUCCEEDED
    assert status(client, active) is JobState.CANCELLED


# -- faults and counts ----------------------------------------------------------


def test_fail_next_fails_the_next_calls_of_one_method_then_recovers(armada, client):
    job_id = one_job(client)
    armada.fail_next("get_job_status", grpc.StatusCode.UNAVAILABLE, times=2)
    for _ in range(2):
        code, _ = rpc_error(client.get_job_status, [job_id])
        assert code is grpc.StatusCode.UNAVAILABLE
    assert status(client, job_id) is JobState.QUEUED
    assert client.get_job_details([job_id]).job_details  # other methods were never affected
    assert armada.calls["get_job_status"] == 3
    assert armada.calls["get_job_details"] == 1
    assert armada.calls["submit_jobs"] == 1


def test_fail_next_queues_codes_in_order(armada, client):
    armada.fail_next("submit_health", grpc.StatusCode.UNAVAILABLE)
    armada.fail_next("submit_health", grpc.StatusCode.DEADLINE_EXCEEDED)
    assert rpc_error(client.submit_health)[0] is grpc.StatusCode.UNAVAILABLE
    assert rpc_error(client.submit_health)[0] is grpc.StatusCode.DEADLINE_EXCEEDED
    assert client.submit_health().status == health_pb2.HealthCheckResponse.SERVING


def test_fail_next_refuses_an_unknown_method(armada):
    with pytest.raises(ValueError, match="unknown method 'GetJobStatus'"):
        armada.fail_next("GetJobStatus", grpc.StatusCode.UNAVAILABLE)


def test_a_failed_submit_creates_no_job(armada, client):
    armada.fail_next("submit_jobs", grpc.StatusCode.UNAVAILABLE)
    assert rpc_error(client.submit_jobs, "default", SET, [job_request_item(client_id="c")])[0] is (
        grpc.StatusCode.UNAVAILABLE
    )
    assert first_job_of_the_set(client, job_request_item(client_id="c")) is True


def test_a_failed_stream_raises_when_first_read(armada, client):
    armada.fail_next("get_job_events_stream", grpc.StatusCode.UNAVAILABLE)
    stream = client.get_job_events_stream("default", SET)
    assert armada.calls["get_job_events_stream"] == 1  # counted when the call is made
    with pytest.raises(InMemoryRpcError) as caught:
        next(stream)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


def test_fail_next_applies_to_logs(armada, client, clock):
    job_id = one_job(client)
    clock.at(5)
    armada.fail_next("logs", grpc.StatusCode.INTERNAL)
    logs = armada.log_client()
    assert rpc_error(logs.logs, job_id)[0] is grpc.StatusCode.INTERNAL
    assert len(logs.logs(job_id)) == 3


# -- logs -----------------------------------------------------------------------

INSTANT = JobBehaviour(queue_time=0, lease_time=0, pending_time=0, runtime=10, log_lines=4)


@pytest.fixture
def instant(clock):
    """Jobs start running at submission: lines land at T0 + 2, 4, 6 and 8."""
    return InMemoryArmada(clock=clock, defaults=INSTANT)


def test_log_lines_appear_as_job_time_passes(instant, clock):
    job_id = one_job(instant.client())
    logs = instant.log_client()
    clock.at(5)
    lines = logs.logs(job_id)
    assert [(line.timestamp, line.line) for line in lines] == [
        (rfc3339_nano(T0 + 2), f"[{job_id}] line 1 of 4"),
        (rfc3339_nano(T0 + 4), f"[{job_id}] line 2 of 4"),
    ]
    assert lines[0].timestamp == "1970-01-01T00:16:42.000000000Z"
    clock.at(100)
    assert len(logs.logs(job_id)) == 4


def test_since_time_is_cut_to_whole_seconds_so_calls_overlap(instant, clock):
    job_id = one_job(instant.client())
    logs = instant.log_client()
    clock.at(100)
    since = rfc3339_nano(T0 + 4.5)  # Kubernetes keeps lines from T0 + 4 on
    assert [line.line[-11:] for line in logs.logs(job_id, since_time=since)] == [
        "line 2 of 4",
        "line 3 of 4",
        "line 4 of 4",
    ]
    last = logs.logs(job_id)[-1]
    assert logs.logs(job_id, since_time=last.timestamp) == [last]  # inclusive
    assert len(logs.logs(job_id, since_time="not a time")) == 4  # ignored, as Binoculars does


def test_literal_logs_annotation(instant, clock):
    job_id = one_job(instant.client(), **{"armada-hooks/logs": "hello\nworld"})
    clock.at(100)
    lines = instant.log_client().logs(job_id)
    assert [line.line for line in lines] == ["hello", "world"]
    assert lines[0].timestamp < lines[1].timestamp


def test_logs_are_not_found_until_the_pod_exists(armada, client, clock):
    logs = armada.log_client()
    job_id = one_job(client)
    code, details = rpc_error(logs.logs, job_id)
    assert (code, details) == (grpc.StatusCode.NOT_FOUND, f'pods "armada-{job_id}-0" not found')
    clock.at(0.3)  # pending: the pod exists, nothing written yet
    assert logs.logs(job_id) == []
    assert rpc_error(logs.logs, job_id, "", "elsewhere")[0] is grpc.StatusCode.NOT_FOUND
    assert rpc_error(logs.logs, "no-such-job")[1] == 'pods "armada-no-such-job-0" not found'


def test_a_cancelled_job_writes_no_more_lines(instant, clock):
    client = instant.client()
    job_id = one_job(client)
    clock.at(5)
    client.cancel_jobs("default", SET, job_id)
    clock.at(100)
    assert len(instant.log_client().logs(job_id)) == 2


# -- events ---------------------------------------------------------------------


def test_the_event_stream_replays_what_happened_with_sequential_ids(armada, client, clock):
    job_id = one_job(client, **{"armada-hooks/outcome": "failed", "armada-hooks/exit-code": "2"})
    clock.at(10)
    events = list(itertools.islice(client.get_job_events_stream("default", SET), 6))
    assert [m.id for m in events] == ["1", "2", "3", "4", "5", "6"]
    assert kinds(events) == ["submitted", "queued", "leased", "pending", "running", "failed"]
    failed = events[-1].message.failed
    assert failed.job_id == job_id
    assert failed.exit_codes["main"] == 2
    assert failed.reason == "Container main exited with code 2"
    assert failed.cause == event_pb2.Error
    assert events[0].message.submitted.job.annotations["armada-hooks/exit-code"] == "2"
    created = [seconds(payload(m).created) for m in events]
    assert created == sorted(created)
    assert created[-1] == pytest.approx(T0 + 1.45)


def test_the_event_stream_resumes_strictly_after_from_message_id(client, clock):
    one_job(client)
    clock.at(10)
    first = list(itertools.islice(client.get_job_events_stream("default", SET), 6))
    resumed = list(itertools.islice(client.get_job_events_stream("default", SET, "3"), 3))
    assert resumed == first[3:]
    code, _ = rpc_error(lambda: next(client.get_job_events_stream("default", SET, "x:1")))
    assert code is grpc.StatusCode.INVALID_ARGUMENT


def test_the_event_stream_watches_for_new_events(client, clock):
    one_job(client)
    stream = client.get_job_events_stream("default", SET)
    assert kinds(itertools.islice(stream, 2)) == ["submitted", "queued"]
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(lambda: list(itertools.islice(stream, 4)))
        assert not waiting.done()
        clock.at(10)  # time passes while the stream waits
        assert kinds(waiting.result(timeout=5)) == ["leased", "pending", "running", "succeeded"]


def test_events_of_a_job_set_are_ordered_by_time_and_never_renumbered(client, clock):
    a = one_job(client)
    clock.at(0.1)
    b = one_job(client)
    clock.at(0.31)  # a pending (0.25), b leased (0.3)
    early = list(itertools.islice(client.get_job_events_stream("default", SET), 7))
    clock.at(10)
    late = list(itertools.islice(client.get_job_events_stream("default", SET), 12))
    assert late[:7] == early
    owners = [payload(m).job_id for m in late]
    assert owners[:4] == [a, a, b, b]
    assert kinds(late)[4:7] == ["leased", "pending", "leased"]
    assert owners[4:7] == [a, a, b]


def test_cancel_appends_cancelling_and_cancelled(client, clock):
    job_id = one_job(client, **{"armada-hooks/runtime": "1h"})
    clock.at(1)
    client.cancel_jobs("default", SET, job_id)
    clock.at(10_000)
    events = list(itertools.islice(client.get_job_events_stream("default", SET), 7))
    assert kinds(events) == [
        "submitted",
        "queued",
        "leased",
        "pending",
        "running",
        "cancelling",
        "cancelled",
    ]
    assert events[-1].message.cancelled.job_id == job_id


def test_an_unknown_queue_fails_the_stream(client):
    stream = client.get_job_events_stream("nope", SET)
    code, details = rpc_error(next, stream)
    assert (code, details) == (
        grpc.StatusCode.NOT_FOUND,
        "[GetJobSetEvents] Queue nope does not exist",
    )


# -- asyncio client ---------------------------------------------------------------


async def test_the_async_client_gives_the_same_answers(armada, clock):
    sync, aio = armada.client(), armada.async_client()
    response = await aio.submit_jobs("default", SET, [job_request_item(client_id="a-1")])
    assert isinstance(response, submit.JobSubmitResponse)
    job_id = response.job_response_items[0].job_id
    assert submit_ids(sync, job_request_item(client_id="a-1")) == [job_id]
    clock.at(0.5)
    assert await aio.get_job_status([job_id]) == sync.get_job_status([job_id])
    assert await aio.get_job_details([job_id]) == sync.get_job_details([job_id])
    assert await aio.get_job_errors([job_id]) == sync.get_job_errors([job_id])
    run_id = sync.get_job_details([job_id]).job_details[job_id].latest_run_id
    assert await aio.get_job_run_details([run_id]) == sync.get_job_run_details([run_id])
    assert await aio.get_job_status_by_external_job_uri(
        "default", SET, "u"
    ) == sync.get_job_status_by_external_job_uri("default", SET, "u")
    assert (await aio.submit_health()).status == health_pb2.HealthCheckResponse.SERVING
    assert (await aio.event_health()).status == health_pb2.HealthCheckResponse.SERVING
    assert list((await aio.cancel_jobs("default", SET, job_id)).cancelled_ids) == [job_id]
    assert armada.job_state(job_id) is JobState.CANCELLED
    with pytest.raises(InMemoryRpcError) as caught:
        await aio.get_job_status([str(i) for i in range(501)])
    assert caught.value.code() is grpc.StatusCode.UNKNOWN


async def test_the_async_cancel_jobset(armada, clock):
    aio = armada.async_client()
    job_id = one_job(armada.client())
    await aio.cancel_jobset("default", SET, [JobState.QUEUED])
    assert armada.job_state(job_id) is JobState.CANCELLED


async def test_the_async_event_stream_replays_and_watches(armada, clock):
    aio = armada.async_client()
    one_job(armada.client())
    stream = await aio.get_job_events_stream("default", SET, "1")
    assert (await anext(stream)).id == "2"

    async def rest():
        return [m async for m in _take(stream, 4)]

    waiting = asyncio.ensure_future(rest())
    for _ in range(3):
        await asyncio.sleep(0)  # let the stream run until it waits for news
    assert not waiting.done()
    clock.at(10)
    messages = await asyncio.wait_for(waiting, timeout=5)
    assert [m.id for m in messages] == ["3", "4", "5", "6"]
    assert kinds(messages)[-1] == "succeeded"
    await stream.aclose()


async def test_the_async_stream_raises_a_scripted_fault_when_read(armada):
    armada.fail_next("get_job_events_stream", grpc.StatusCode.UNAVAILABLE)
    stream = await armada.async_client().get_job_events_stream("default", SET)
    with pytest.raises(InMemoryRpcError) as caught:
        await anext(stream)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE


async def _take(stream, n):
    for _ in range(n):
        yield await anext(stream)


def test_job_state_of_a_never_submitted_job_is_a_key_error(armada):
    with pytest.raises(KeyError):
        armada.job_state("nope")


def test_terminal_states_are_final_for_every_outcome(clock):
    armada = InMemoryArmada(clock=clock)
    client = armada.client()
    ids = [
        one_job(client, **{"armada-hooks/outcome": o})
        for o in ("succeeded", "failed", "preempted", "rejected")
    ]
    clock.at(3)
    before = [armada.job_state(i) for i in ids]
    assert all(s in TERMINAL_STATES for s in before)
    barrier = threading.Barrier(2)

    def cancel_all():
        barrier.wait()
        client.cancel_jobset("default", SET, [])

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(cancel_all), pool.submit(cancel_all)]:
            f.result(timeout=5)
    clock.at(1e6)
    assert [armada.job_state(i) for i in ids] == before


# -- parity with the local Armada (gRPC) -------------------------------------------

LOCAL = pytest.mark.local_armada(time_scale=50, queues=["default", "other"])


def local_events(local_client, job_set=SET):
    stream = local_client.event_stub.GetJobSetEvents(
        event_pb2.JobSetRequest(id=job_set, queue="default", watch=False)
    )
    return kinds(list(stream))


@LOCAL
@pytest.mark.parametrize(
    ("queue", "item"),
    [
        pytest.param("nope", job_request_item(), id="unknown-queue"),
        pytest.param("default", job_request_item(namespace=""), id="no-namespace"),
        pytest.param("default", job_request_item(cpu="-1"), id="negative-cpu"),
        pytest.param("default", job_request_item(client_id="x" * 101), id="long-client-id"),
        pytest.param(
            "default",
            job_request_item(annotations={"armada-hooks/outcome": "maybe"}),
            id="bad-annotation",
        ),
        pytest.param(
            "default", job_request_item(annotations={"armada-hooks/nope": "1"}), id="unknown-key"
        ),
    ],
)
def test_bad_submissions_answer_like_the_local_armada(local_armada, client, queue, item):
    expected = rpc_error(local_armada.client().submit_jobs, queue, SET, [item])
    assert rpc_error(client.submit_jobs, queue, SET, [item]) == expected


@LOCAL
@pytest.mark.parametrize(("method", "what"), QUERIES)
def test_oversized_queries_answer_like_the_local_armada(local_armada, client, method, what):
    ids = [f"id-{i}" for i in range(501)]
    expected = rpc_error(getattr(local_armada.client(), method), ids)
    assert rpc_error(getattr(client, method), ids) == expected


@LOCAL
@pytest.mark.parametrize(
    "annotations",
    [
        pytest.param({}, id="succeeded"),
        pytest.param(
            {"armada-hooks/outcome": "failed", "armada-hooks/exit-code": "7"}, id="failed"
        ),
        pytest.param({"armada-hooks/outcome": "preempted"}, id="preempted"),
        pytest.param({"armada-hooks/outcome": "rejected"}, id="rejected"),
        pytest.param({"armada-hooks/lease-returns": "2"}, id="lease-returns"),
    ],
)
def test_a_job_ends_with_the_same_state_errors_and_events_as_on_the_local_armada(
    local_armada, client, clock, annotations
):
    local_client = local_armada.client()
    local_id = submit_ids(local_client, job_request_item(annotations=annotations))[0]
    local_armada.wait_for_state(local_id)
    memory_id = submit_ids(client, job_request_item(annotations=annotations))[0]
    clock.at(100)

    assert status(client, memory_id) is status(local_client, local_id)
    local_error = local_client.get_job_errors([local_id]).job_errors[local_id]
    assert client.get_job_errors([memory_id]).job_errors[memory_id] == local_error
    expected = local_events(local_client)
    stream = client.get_job_events_stream("default", SET)
    assert kinds(itertools.islice(stream, len(expected))) == expected
    local_runs = local_client.get_job_details([local_id]).job_details[local_id].job_runs
    memory_runs = client.get_job_details([memory_id]).job_details[memory_id].job_runs
    assert [r.state for r in memory_runs] == [r.state for r in local_runs]
    assert [r.HasField("started_ts") for r in memory_runs] == [
        r.HasField("started_ts") for r in local_runs
    ]


@LOCAL
def test_a_cancelled_job_matches_the_local_armada(local_armada, client, clock):
    local_client = local_armada.client()
    endless = {"armada-hooks/runtime": "1h"}
    local_id = submit_ids(local_client, job_request_item(annotations=endless))[0]
    local_armada.wait_for_state(local_id, [JobState.RUNNING])
    local_client.cancel_jobs("default", SET, local_id)
    memory_id = one_job(client, **endless)
    clock.at(1)
    client.cancel_jobs("default", SET, memory_id)

    assert status(client, memory_id) is status(local_client, local_id) is JobState.CANCELLED
    expected = local_events(local_client)
    assert kinds(itertools.islice(client.get_job_events_stream("default", SET), len(expected))) == (
        expected
    )
    (local_run,) = local_client.get_job_details([local_id]).job_details[local_id].job_runs
    (memory_run,) = client.get_job_details([memory_id]).job_details[memory_id].job_runs
    assert memory_run.state == local_run.state == job_pb2.RUN_STATE_CANCELLED
