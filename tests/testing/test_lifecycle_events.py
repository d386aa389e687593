from __future__ import annotations

import threading
import time

import grpc
import pytest
from armada_client.armada import event_pb2, job_pb2, submit_pb2
from armada_client.client import ArmadaClient
from armada_client.typings import EventType

from armada_hooks.states import JobState
from armada_hooks.testing import JobBehaviour, LocalArmada, job_request_item

pytestmark = pytest.mark.local_armada(time_scale=50)

QUEUE = "default"
STREAM_DEADLINE = 10.0  # real seconds; a stream that hangs fails the test instead

HAPPY_PATH = ["submitted", "queued", "leased", "pending", "running", "succeeded"]


def submit(
    client: ArmadaClient,
    job_set: str,
    annotations: dict[str, str] | None = None,
    queue: str = QUEUE,
) -> str:
    response = client.submit_jobs(queue, job_set, [job_request_item(annotations=annotations)])
    return response.job_response_items[0].job_id


def request(
    job_set: str,
    *,
    queue: str = QUEUE,
    watch: bool = False,
    from_message_id: str = "",
    error_if_missing: bool = False,
) -> event_pb2.JobSetRequest:
    return event_pb2.JobSetRequest(
        queue=queue,
        id=job_set,
        watch=watch,
        from_message_id=from_message_id,
        errorIfMissing=error_if_missing,
    )


def read_events(client: ArmadaClient, job_set: str, **options: object) -> list:
    """Every message of a non-watching stream (the stream must end on its own)."""
    assert not options.get("watch"), "use open_stream for watching streams"
    stream = client.event_stub.GetJobSetEvents(
        request(job_set, **options),  # type: ignore[arg-type]
        timeout=STREAM_DEADLINE,
    )
    return list(stream)


def open_stream(client: ArmadaClient, job_set: str, **options: object):
    return client.event_stub.GetJobSetEvents(
        request(job_set, watch=True, **options),  # type: ignore[arg-type]
        timeout=STREAM_DEADLINE,
    )


def take(stream, n: int) -> list:
    return [next(stream) for _ in range(n)]


def kinds(messages) -> list[str]:
    return [m.message.WhichOneof("events") for m in messages]


def payload(message):
    return getattr(message.message, message.message.WhichOneof("events"))


def run_job(armada: LocalArmada, client: ArmadaClient, job_set: str, **annotations: str) -> str:
    job_id = submit(client, job_set, {f"armada-hooks/{k}": v for k, v in annotations.items()})
    armada.wait_for_state(job_id, timeout=10)
    return job_id


def details(client: ArmadaClient, job_id: str) -> job_pb2.JobDetails:
    return client.get_job_details([job_id]).job_details[job_id]


def status(client: ArmadaClient, job_id: str) -> int:
    return client.get_job_status([job_id]).job_states[job_id]


# -- the event sequence of each outcome ------------------------------------------------


def test_a_succeeding_job_emits_submitted_queued_leased_pending_running_succeeded(
    local_armada, local_armada_client
):
    job_id = run_job(local_armada, local_armada_client, "ok")

    messages = read_events(local_armada_client, "ok")

    assert kinds(messages) == HAPPY_PATH
    assert status(local_armada_client, job_id) == submit_pb2.SUCCEEDED
    run = details(local_armada_client, job_id).job_runs[0]
    for message in messages[3:]:  # pending, running and succeeded name the run's pod
        assert payload(message).kubernetes_id == run.run_id
        assert payload(message).pod_name


def test_a_failing_job_ends_with_a_failed_event_carrying_exit_code_reason_and_status(
    local_armada, local_armada_client
):
    job_id = run_job(
        local_armada, local_armada_client, "bad", outcome="failed", **{"exit-code": "3"}
    )

    messages = read_events(local_armada_client, "bad")

    assert kinds(messages) == [*HAPPY_PATH[:-1], "failed"]
    failed = messages[-1].message.failed
    assert dict(failed.exit_codes) == {"main": 3}
    assert failed.reason == "Container main exited with code 3"
    assert failed.cause == event_pb2.Error
    assert [(s.name, s.exitCode) for s in failed.container_statuses] == [("main", 3)]
    assert failed.container_statuses[0].message == failed.reason
    assert status(local_armada_client, job_id) == submit_pb2.FAILED
    assert local_armada_client.get_job_errors([job_id]).job_errors[job_id] == failed.reason


def test_a_failure_reason_annotation_is_the_failed_events_reason(local_armada, local_armada_client):
    run_job(
        local_armada,
        local_armada_client,
        "oom",
        outcome="failed",
        **{"exit-code": "137", "failure-reason": "OOMKilled: memory limit reached"},
    )

    failed = read_events(local_armada_client, "oom")[-1].message.failed

    assert failed.reason == "OOMKilled: memory limit reached"
    assert dict(failed.exit_codes) == {"main": 137}


def test_a_rejected_job_fails_from_the_queue_with_cause_rejected_and_never_runs(
    local_armada, local_armada_client
):
    job_id = run_job(local_armada, local_armada_client, "rej", outcome="rejected")

    messages = read_events(local_armada_client, "rej")

    assert kinds(messages) == ["submitted", "queued", "failed"]
    failed = messages[-1].message.failed
    assert failed.cause == event_pb2.Rejected
    assert "Rejected" in failed.reason
    assert dict(failed.exit_codes) == {}
    assert status(local_armada_client, job_id) == submit_pb2.REJECTED
    job = details(local_armada_client, job_id)
    assert list(job.job_runs) == []
    assert job.latest_run_id == ""


def test_a_preempted_job_emits_preempted_then_failed_and_ends_preempted(
    local_armada, local_armada_client
):
    job_id = run_job(local_armada, local_armada_client, "pre", outcome="preempted")

    messages = read_events(local_armada_client, "pre")

    assert kinds(messages) == [*HAPPY_PATH[:-1], "preempted", "failed"]
    run = details(local_armada_client, job_id).job_runs[0]
    assert messages[-2].message.preempted.run_id == run.run_id
    assert "Preempted" in messages[-2].message.preempted.reason
    assert status(local_armada_client, job_id) == submit_pb2.PREEMPTED
    assert run.state == job_pb2.RUN_STATE_PREEMPTED


def test_returned_leases_are_reported_and_each_lease_is_a_run(local_armada, local_armada_client):
    job_id = run_job(local_armada, local_armada_client, "ret", **{"lease-returns": "2"})

    messages = read_events(local_armada_client, "ret")

    assert kinds(messages) == [
        "submitted",
        "queued",
        "leased",
        "lease_returned",
        "leased",
        "lease_returned",
        *HAPPY_PATH[2:],
    ]
    runs = details(local_armada_client, job_id).job_runs
    assert [r.state for r in runs] == [
        job_pb2.RUNS_STATE_LEASE_RETURNED,
        job_pb2.RUNS_STATE_LEASE_RETURNED,
        job_pb2.RUN_STATE_SUCCEEDED,
    ]
    assert len({r.run_id for r in runs}) == 3
    returned = [m.message.lease_returned for m in messages if kinds([m]) == ["lease_returned"]]
    assert [e.kubernetes_id for e in returned] == [runs[0].run_id, runs[1].run_id]
    assert messages[-1].message.succeeded.kubernetes_id == runs[2].run_id


@pytest.mark.local_armada(
    time_scale=1,
    defaults=JobBehaviour(queue_time=0.5, lease_time=0.5, pending_time=0.5, runtime=0.5),
)
def test_get_job_status_walks_queued_leased_pending_running_in_order(
    local_armada, local_armada_client
):
    job_id = submit(local_armada_client, "walk")

    seen: list[int] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        state = status(local_armada_client, job_id)
        if not seen or seen[-1] != state:
            seen.append(state)
        if state == submit_pb2.SUCCEEDED:
            break
        time.sleep(0.01)

    assert [submit_pb2.JobState.Name(s) for s in seen] == [
        "QUEUED",
        "LEASED",
        "PENDING",
        "RUNNING",
        "SUCCEEDED",
    ]


# -- watch -----------------------------------------------------------------------------


def test_without_watch_the_stream_returns_the_events_so_far_and_ends(
    local_armada, local_armada_client
):
    job_id = submit(local_armada_client, "live", {"armada-hooks/runtime": "1h"})
    local_armada.wait_for_state(job_id, [JobState.RUNNING], timeout=10)

    messages = read_events(local_armada_client, "live")

    assert kinds(messages) == HAPPY_PATH[:-1]
    assert local_armada.job(job_id).state is JobState.RUNNING


def test_with_watch_the_stream_stays_open_and_delivers_new_events(
    local_armada, local_armada_client
):
    first = run_job(local_armada, local_armada_client, "watched")
    caught_up = threading.Event()
    submitted: list[str] = []

    def submit_second_job() -> None:
        if caught_up.wait(STREAM_DEADLINE):
            submitted.append(submit(local_armada_client, "watched"))

    stream = open_stream(local_armada_client, "watched")
    submitter = threading.Thread(target=submit_second_job)
    submitter.start()
    try:
        history = take(stream, 6)
        caught_up.set()  # the consumer now blocks in next() until the new job's events arrive
        live = take(stream, 6)
        submitter.join()
    finally:
        stream.cancel()

    assert kinds(history) == HAPPY_PATH
    assert {payload(m).job_id for m in history} == {first}
    assert kinds(live) == HAPPY_PATH
    assert {payload(m).job_id for m in live} == set(submitted)
    with pytest.raises(grpc.RpcError) as exc:
        next(stream)
    assert exc.value.code() is grpc.StatusCode.CANCELLED


def test_watching_a_job_set_before_it_exists_delivers_its_events_once_submitted(
    local_armada, local_armada_client
):
    stream = open_stream(local_armada_client, "later")
    try:
        job_id = submit(local_armada_client, "later")
        messages = take(stream, 6)
    finally:
        stream.cancel()

    assert kinds(messages) == HAPPY_PATH
    assert {payload(m).job_id for m in messages} == {job_id}


def test_the_clients_event_stream_unmarshals_to_typed_events(local_armada, local_armada_client):
    job_id = run_job(local_armada, local_armada_client, "typed")

    stream = local_armada_client.get_job_events_stream(QUEUE, "typed")
    try:
        events = [local_armada_client.unmarshal_event_response(next(stream)) for _ in range(6)]
    finally:
        stream.cancel()

    assert [e.type for e in events] == [EventType(k) for k in HAPPY_PATH]
    assert {e.message.job_id for e in events} == {job_id}
    assert len({e.id for e in events}) == 6


# -- resuming from a message id --------------------------------------------------------


def test_resuming_without_watch_returns_exactly_the_messages_after_the_given_one(
    local_armada, local_armada_client
):
    run_job(local_armada, local_armada_client, "resume")
    run_job(local_armada, local_armada_client, "resume", outcome="failed")
    everything = read_events(local_armada_client, "resume")
    assert len(everything) == 12

    for k, message in enumerate(everything):
        rest = read_events(local_armada_client, "resume", from_message_id=message.id)
        assert rest == everything[k + 1 :], f"resuming after message {k}"


@pytest.mark.parametrize("k", [0, 2, 5])
def test_resuming_a_watch_returns_the_messages_after_the_given_one_then_new_ones(
    local_armada, local_armada_client, k
):
    run_job(local_armada, local_armada_client, "resume-watch")
    everything = read_events(local_armada_client, "resume-watch")

    stream = open_stream(local_armada_client, "resume-watch", from_message_id=everything[k].id)
    try:
        rest = take(stream, len(everything) - k - 1)
        later = submit(local_armada_client, "resume-watch")
        following = next(stream)
    finally:
        stream.cancel()

    assert rest == everything[k + 1 :]
    assert kinds([following]) == ["submitted"]
    assert following.message.submitted.job_id == later


@pytest.mark.parametrize("bad_id", ["not-a-message-id", "1700000000000:x:0:1", "1:2:3"])
def test_an_invalid_from_message_id_is_invalid_argument(local_armada, local_armada_client, bad_id):
    run_job(local_armada, local_armada_client, "resume-bad")

    with pytest.raises(grpc.RpcError) as exc:
        read_events(local_armada_client, "resume-bad", from_message_id=bad_id)

    assert exc.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "from_message_id" in exc.value.details()
    assert bad_id in exc.value.details()


# -- missing job sets and queues -------------------------------------------------------


def test_error_if_missing_on_an_unknown_job_set_is_not_found(local_armada_client):
    with pytest.raises(grpc.RpcError) as exc:
        read_events(local_armada_client, "never-submitted", error_if_missing=True)

    assert exc.value.code() is grpc.StatusCode.NOT_FOUND
    assert exc.value.details() == (
        "[GetJobSetEvents] Jobset never-submitted for queue default does not exist"
    )


def test_without_error_if_missing_an_unknown_job_set_is_an_empty_stream(local_armada_client):
    assert read_events(local_armada_client, "never-submitted", error_if_missing=False) == []


def test_reading_an_unknown_job_set_does_not_bring_it_into_existence(local_armada_client):
    assert read_events(local_armada_client, "ghost", error_if_missing=False) == []

    with pytest.raises(grpc.RpcError) as exc:
        read_events(local_armada_client, "ghost", error_if_missing=True)

    assert exc.value.code() is grpc.StatusCode.NOT_FOUND
    assert exc.value.details() == "[GetJobSetEvents] Jobset ghost for queue default does not exist"


def test_error_if_missing_on_an_existing_job_set_streams_its_events(
    local_armada, local_armada_client
):
    run_job(local_armada, local_armada_client, "exists")

    messages = read_events(local_armada_client, "exists", error_if_missing=True)

    assert kinds(messages) == HAPPY_PATH


@pytest.mark.parametrize("error_if_missing", [True, False])
def test_an_unknown_queue_is_not_found(local_armada_client, error_if_missing):
    with pytest.raises(grpc.RpcError) as exc:
        read_events(
            local_armada_client, "s", queue="no-such-queue", error_if_missing=error_if_missing
        )

    assert exc.value.code() is grpc.StatusCode.NOT_FOUND
    assert exc.value.details() == "[GetJobSetEvents] Queue no-such-queue does not exist"


# -- isolation and event contents ------------------------------------------------------


@pytest.mark.local_armada(time_scale=50, queues=["default", "other"])
def test_a_job_sets_stream_holds_only_its_own_events(local_armada, local_armada_client):
    mine = run_job(local_armada, local_armada_client, "mine")
    theirs = run_job(local_armada, local_armada_client, "theirs")
    same_name_id = submit(local_armada_client, "mine", queue="other")
    local_armada.wait_for_state(same_name_id, timeout=10)

    streams = {
        (QUEUE, "mine"): read_events(local_armada_client, "mine"),
        (QUEUE, "theirs"): read_events(local_armada_client, "theirs"),
        ("other", "mine"): read_events(local_armada_client, "mine", queue="other"),
    }

    expected_job = {
        (QUEUE, "mine"): mine,
        (QUEUE, "theirs"): theirs,
        ("other", "mine"): same_name_id,
    }
    for (queue, job_set), messages in streams.items():
        assert kinds(messages) == HAPPY_PATH
        assert {payload(m).job_id for m in messages} == {expected_job[queue, job_set]}
        assert {(payload(m).queue, payload(m).job_set_id) for m in messages} == {(queue, job_set)}


def test_events_name_their_job_job_set_and_queue_and_are_created_in_order(
    local_armada, local_armada_client
):
    first = submit(local_armada_client, "ids")
    second = submit(local_armada_client, "ids", {"armada-hooks/outcome": "failed"})
    for job_id in (first, second):
        local_armada.wait_for_state(job_id, timeout=10)

    events = [
        ArmadaClient.unmarshal_event_response(m) for m in read_events(local_armada_client, "ids")
    ]

    assert len(events) == 12
    assert {(e.message.job_set_id, e.message.queue) for e in events} == {("ids", QUEUE)}
    per_job = {
        job_id: [e.type.value for e in events if e.message.job_id == job_id]
        for job_id in (first, second)
    }
    assert per_job == {first: HAPPY_PATH, second: [*HAPPY_PATH[:-1], "failed"]}
    created = [e.message.created.ToNanoseconds() for e in events]
    assert created == sorted(created)
    assert all(c > 0 for c in created)
    assert len({e.id for e in events}) == 12


# -- time scale ------------------------------------------------------------------------


@pytest.mark.local_armada(time_scale=60)
def test_time_scale_runs_job_time_faster_and_timestamps_are_in_job_time(
    local_armada, local_armada_client
):
    job_id = submit(local_armada_client, "scaled", {"armada-hooks/runtime": "60s"})

    local_armada.wait_for_state(job_id, [JobState.SUCCEEDED], timeout=10)

    run = details(local_armada_client, job_id).job_runs[0]
    job_seconds = (run.finished_ts.ToNanoseconds() - run.started_ts.ToNanoseconds()) / 1e9
    assert job_seconds == pytest.approx(60.0, abs=1.0)
    messages = read_events(local_armada_client, "scaled")
    running, succeeded = messages[-2].message.running, messages[-1].message.succeeded
    event_seconds = (succeeded.created.ToNanoseconds() - running.created.ToNanoseconds()) / 1e9
    assert event_seconds == pytest.approx(60.0, abs=1.0)


# -- Event.Watch (internal/server/event/event.go serves it as GetJobSetEvents) ---------


def test_watch_streams_the_job_sets_events_and_stays_open(local_armada, local_armada_client):
    first = run_job(local_armada, local_armada_client, "watched")
    stream = local_armada_client.event_stub.Watch(
        event_pb2.WatchRequest(queue=QUEUE, job_set_id="watched"), timeout=STREAM_DEADLINE
    )
    assert kinds(take(stream, len(HAPPY_PATH))) == HAPPY_PATH
    second = submit(local_armada_client, "watched")
    later = take(stream, len(HAPPY_PATH))
    stream.cancel()
    assert kinds(later) == HAPPY_PATH
    assert {payload(m).job_id for m in later} == {second} != {first}


def test_watch_resumes_after_from_id(local_armada, local_armada_client):
    run_job(local_armada, local_armada_client, "resumed")
    messages = read_events(local_armada_client, "resumed")
    stream = local_armada_client.event_stub.Watch(
        event_pb2.WatchRequest(queue=QUEUE, job_set_id="resumed", from_id=messages[2].id),
        timeout=STREAM_DEADLINE,
    )
    rest = take(stream, len(messages) - 3)
    stream.cancel()
    assert [m.id for m in rest] == [m.id for m in messages[3:]]


def test_watch_on_an_unknown_job_set_is_not_found_as_error_if_missing(local_armada_client):
    stream = local_armada_client.event_stub.Watch(
        event_pb2.WatchRequest(queue=QUEUE, job_set_id="never"), timeout=STREAM_DEADLINE
    )
    with pytest.raises(grpc.RpcError) as exc:
        next(stream)
    assert exc.value.code() is grpc.StatusCode.NOT_FOUND
    assert exc.value.details() == "[GetJobSetEvents] Jobset never for queue default does not exist"
