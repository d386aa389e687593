"""Cancel, cancel job set, reprioritize and preempt against the local Armada."""

from __future__ import annotations

import grpc
import pytest
from armada_client import typings
from armada_client.armada import event_pb2, job_pb2, submit_pb2

from armada_hooks.states import JobState
from armada_hooks.testing import JobBehaviour, job_request_item

pytestmark = pytest.mark.local_armada(time_scale=50)

QUEUE = "default"
SET = "ops"
LONG = {"armada-hooks/runtime": "1h"}  # stays RUNNING for the whole test
PARKED = {"armada-hooks/queue-time": "1h"}  # stays QUEUED for the whole test


def item(annotations=None):
    return job_request_item(annotations=annotations)


def submit(client, *items, job_set=SET):
    response = client.submit_jobs(QUEUE, job_set, list(items))
    return [i.job_id for i in response.job_response_items]


def job_events(client, job_id, job_set=SET):
    """(kind, event) of one job, in stream order."""
    stream = client.event_stub.GetJobSetEvents(
        event_pb2.JobSetRequest(id=job_set, queue=QUEUE, watch=False)
    )
    found = []
    for message in stream:
        kind = message.message.WhichOneof("events")
        event = getattr(message.message, kind)
        if event.job_id == job_id:
            found.append((kind, event))
    return found


def kinds(client, job_id, job_set=SET):
    return [kind for kind, _ in job_events(client, job_id, job_set)]


def running_job(local_armada, client, job_set=SET):
    [job_id] = submit(client, item(LONG), job_set=job_set)
    local_armada.wait_for_state(job_id, [JobState.RUNNING])
    return job_id


def finished_job(local_armada, client, job_set=SET):
    [job_id] = submit(client, item(), job_set=job_set)
    local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    return job_id


# -- CancelJobs -------------------------------------------------------------------


def test_cancelling_a_running_job_cancels_it_and_echoes_the_id(local_armada):
    client = local_armada.client()
    job_id = running_job(local_armada, client)

    result = client.cancel_jobs(QUEUE, SET, job_id)

    assert list(result.cancelled_ids) == [job_id]
    assert local_armada.job(job_id).state is JobState.CANCELLED
    assert client.get_job_status([job_id]).job_states[job_id] == submit_pb2.CANCELLED
    assert kinds(client, job_id)[-2:] == ["cancelling", "cancelled"]


def test_cancelling_a_queued_job_cancels_it_before_it_runs(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, item(PARKED))

    client.cancel_jobs(QUEUE, SET, job_id)

    assert local_armada.job(job_id).state is JobState.CANCELLED
    assert local_armada.job(job_id).run_ids == ()
    assert kinds(client, job_id) == ["submitted", "queued", "cancelling", "cancelled"]


def test_a_cancellation_carries_its_reason_to_the_events_and_the_job_details(local_armada):
    client = local_armada.client()
    job_id = running_job(local_armada, client)

    client.submit_stub.CancelJobs(
        submit_pb2.JobCancelRequest(
            queue=QUEUE, job_set_id=SET, job_id=job_id, reason="superseded by run 7"
        )
    )

    (k1, cancelling), (k2, cancelled) = job_events(client, job_id)[-2:]
    assert (k1, k2) == ("cancelling", "cancelled")
    assert cancelling.reason == cancelled.reason == "superseded by run 7"
    assert cancelling.requestor
    assert cancelled.requestor == cancelling.requestor
    details = client.get_job_details([job_id]).job_details[job_id]
    assert details.state == submit_pb2.CANCELLED
    assert details.cancel_reason == "superseded by run 7"
    assert details.cancel_user == cancelling.requestor
    assert details.HasField("cancel_ts")
    [run] = details.job_runs
    assert run.state == job_pb2.RUN_STATE_CANCELLED
    assert run.started_ts.ToNanoseconds() <= details.cancel_ts.ToNanoseconds()
    assert run.finished_ts.ToNanoseconds() == details.cancel_ts.ToNanoseconds()


def test_cancelling_several_jobs_by_job_ids(local_armada):
    client = local_armada.client()
    first, second, spared = submit(client, item(PARKED), item(PARKED), item(PARKED))

    result = client.submit_stub.CancelJobs(
        submit_pb2.JobCancelRequest(queue=QUEUE, job_set_id=SET, job_ids=[first, second])
    )

    assert sorted(result.cancelled_ids) == sorted([first, second])
    assert local_armada.job(first).state is JobState.CANCELLED
    assert local_armada.job(second).state is JobState.CANCELLED
    assert local_armada.job(spared).state is JobState.QUEUED


def test_an_id_named_twice_is_cancelled_once_and_echoed_once(local_armada):
    # Armada de-duplicates the ids of a CancelJobs request (slices.Unique) before echoing.
    client = local_armada.client()
    [job_id] = submit(client, item(PARKED))

    result = client.submit_stub.CancelJobs(
        submit_pb2.JobCancelRequest(queue=QUEUE, job_set_id=SET, job_id=job_id, job_ids=[job_id])
    )

    assert list(result.cancelled_ids) == [job_id]
    assert kinds(client, job_id).count("cancelled") == 1


def test_cancelling_a_finished_job_leaves_it_succeeded(local_armada):
    client = local_armada.client()
    job_id = finished_job(local_armada, client)

    result = client.cancel_jobs(QUEUE, SET, job_id)

    assert list(result.cancelled_ids) == [job_id]
    assert local_armada.job(job_id).state is JobState.SUCCEEDED
    assert "cancelled" not in kinds(client, job_id)
    details = client.get_job_details([job_id]).job_details[job_id]
    assert details.state == submit_pb2.SUCCEEDED
    assert not details.HasField("cancel_ts")
    assert [run.state for run in details.job_runs] == [job_pb2.RUN_STATE_SUCCEEDED]


def test_a_job_of_another_job_set_is_not_cancelled(local_armada):
    client = local_armada.client()
    job_id = running_job(local_armada, client, job_set="set-a")

    client.cancel_jobs(QUEUE, "set-b", job_id)

    assert local_armada.job(job_id).state is JobState.RUNNING
    assert "cancelling" not in kinds(client, job_id, job_set="set-a")
    assert kinds(client, job_id, job_set="set-b") == []


def test_cancel_jobs_without_any_job_id_cancels_the_whole_job_set_as_armada_does(local_armada):
    client = local_armada.client()
    job_id = running_job(local_armada, client)
    elsewhere = running_job(local_armada, client, job_set="another-set")

    result = client.submit_stub.CancelJobs(submit_pb2.JobCancelRequest(queue=QUEUE, job_set_id=SET))

    assert list(result.cancelled_ids) == [""]
    assert local_armada.job(job_id).state is JobState.CANCELLED
    assert local_armada.job(elsewhere).state is JobState.RUNNING


# -- CancelJobSet ---------------------------------------------------------------


def test_cancelling_a_job_set_cancels_only_its_active_jobs(local_armada):
    client = local_armada.client()
    done = finished_job(local_armada, client)
    running = running_job(local_armada, client)
    [queued] = submit(client, item(PARKED))
    elsewhere = running_job(local_armada, client, job_set="another-set")

    client.cancel_jobset(QUEUE, SET, [])

    assert local_armada.job(running).state is JobState.CANCELLED
    assert local_armada.job(queued).state is JobState.CANCELLED
    assert local_armada.job(done).state is JobState.SUCCEEDED
    assert "cancelled" not in kinds(client, done)
    assert local_armada.job(elsewhere).state is JobState.RUNNING


def test_cancelling_a_job_set_honours_the_state_filter(local_armada):
    # armada_client sends each filter state by its .value (api.JobState's number), so
    # our JobState and armada_client's typings.JobState both serve.
    client = local_armada.client()
    running = running_job(local_armada, client)
    [queued] = submit(client, item(PARKED))

    client.cancel_jobset(QUEUE, SET, [JobState.QUEUED])

    assert local_armada.job(queued).state is JobState.CANCELLED
    assert local_armada.job(running).state is JobState.RUNNING

    client.cancel_jobset(QUEUE, SET, [typings.JobState.PENDING, typings.JobState.RUNNING])

    assert local_armada.job(running).state is JobState.CANCELLED


@pytest.mark.local_armada(time_scale=50, defaults=JobBehaviour(lease_time=3600))
def test_the_pending_and_running_filter_also_cancels_a_leased_job(local_armada):
    # Armada's scheduler treats PENDING/RUNNING in the filter as "every leased job"
    # (scheduleringester handleCancelJobSet: cancelLeased), LEASED included.
    client = local_armada.client()
    [job_id] = submit(client, item())
    local_armada.wait_for_state(job_id, [JobState.LEASED])

    client.cancel_jobset(QUEUE, SET, [JobState.PENDING, JobState.RUNNING])

    assert local_armada.job(job_id).state is JobState.CANCELLED


def test_cancelling_a_job_set_with_a_reason_records_it(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, item(PARKED))

    client.submit_stub.CancelJobSet(
        submit_pb2.JobSetCancelRequest(queue=QUEUE, job_set_id=SET, reason="dag run cleared")
    )

    (_, cancelling), (_, cancelled) = job_events(client, job_id)[-2:]
    assert cancelling.reason == cancelled.reason == "dag run cleared"
    assert client.get_job_details([job_id]).job_details[job_id].cancel_reason == ("dag run cleared")


# -- ReprioritizeJobs -------------------------------------------------------------


def test_reprioritizing_jobs_by_id_changes_only_their_priority(local_armada):
    client = local_armada.client()
    first, second, untouched = submit(client, item(PARKED), item(LONG), item(PARKED))

    result = client.reprioritize_jobs(5.0, [first, second], SET, QUEUE)

    assert dict(result.reprioritization_results) == {first: "", second: ""}
    assert local_armada.job(first).priority == 5.0
    assert local_armada.job(second).priority == 5.0
    assert local_armada.job(untouched).priority == 1.0
    (k1, reprioritizing), (k2, reprioritized) = job_events(client, first)[-2:]
    assert (k1, k2) == ("reprioritizing", "reprioritized")
    assert reprioritizing.new_priority == reprioritized.new_priority == 5.0
    assert "reprioritizing" not in kinds(client, untouched)


def test_reprioritizing_a_job_set_changes_every_active_job(local_armada):
    client = local_armada.client()
    done = finished_job(local_armada, client)
    queued, running = submit(client, item(PARKED), item(LONG))
    elsewhere = running_job(local_armada, client, job_set="another-set")

    result = client.reprioritize_jobs(3.0, None, SET, QUEUE)

    # Armada answers for the job set as a whole, not per job.
    assert dict(result.reprioritization_results) == {f"all jobs in job set {SET}": ""}
    assert local_armada.job(queued).priority == 3.0
    assert local_armada.job(running).priority == 3.0
    assert local_armada.job(done).priority == 1.0
    assert local_armada.job(elsewhere).priority == 1.0
    assert kinds(client, running)[-2:] == ["reprioritizing", "reprioritized"]


def test_reprioritizing_a_finished_job_silently_leaves_it_alone(local_armada):
    client = local_armada.client()
    done = finished_job(local_armada, client)
    [active] = submit(client, item(PARKED))

    results = client.reprioritize_jobs(2.0, [done, active], SET, QUEUE).reprioritization_results

    # Armada reprioritizes asynchronously: every id asked about reads "".
    assert dict(results) == {done: "", active: ""}
    assert local_armada.job(active).priority == 2.0
    assert local_armada.job(done).priority == 1.0
    assert "reprioritizing" not in kinds(client, done)


def test_reprioritizing_a_job_of_another_job_set_leaves_it_alone(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, item(PARKED), job_set="set-a")

    results = client.reprioritize_jobs(2.0, [job_id], "set-b", QUEUE).reprioritization_results

    assert dict(results) == {job_id: ""}
    assert local_armada.job(job_id).priority == 1.0


# -- PreemptJobs (internal/server/submit/submit.go, scheduler/scheduler.go) ------------

PREEMPTIBLE = "armada-preemptible"


def running_preemptible_job(local_armada, client, job_set=SET):
    [job_id] = submit(
        client, job_request_item(annotations=LONG, priority_class=PREEMPTIBLE), job_set=job_set
    )
    local_armada.wait_for_state(job_id, [JobState.RUNNING])
    return job_id


def preempt(client, job_ids, reason="", queue=QUEUE, job_set=SET):
    return client.submit_stub.PreemptJobs(
        submit_pb2.JobPreemptRequest(
            queue=queue, job_set_id=job_set, job_ids=job_ids, reason=reason
        )
    )


def test_preempting_a_running_preemptible_job_preempts_it(local_armada):
    client = local_armada.client()
    job_id = running_preemptible_job(local_armada, client)

    result = client.preempt_jobs(QUEUE, SET, job_id)

    assert dict(result.preemption_results) == {job_id: ""}
    assert local_armada.job(job_id).state is JobState.PREEMPTED
    assert client.get_job_status([job_id]).job_states[job_id] == submit_pb2.PREEMPTED
    assert kinds(client, job_id)[-3:] == ["preempting", "preempted", "failed"]
    [run] = client.get_job_details([job_id]).job_details[job_id].job_runs
    assert run.state == job_pb2.RUN_STATE_PREEMPTED
    assert run.HasField("finished_ts")


def test_a_preemption_names_the_requestor_in_the_reason_as_armadas_ingester_does(local_armada):
    client = local_armada.client()
    job_id = running_preemptible_job(local_armada, client)

    preempt(client, [job_id], reason="make room for prod")

    (_, preempting), (_, preempted), (_, failed) = job_events(client, job_id)[-3:]
    assert (preempting.reason, preempting.requestor) == ("make room for prod", "anonymous")
    assert preempted.reason == failed.reason == "Preempted by anonymous - make room for prod"
    assert preempted.requestor == "anonymous"
    assert preempted.run_id == local_armada.job(job_id).run_ids[-1]
    errors = client.get_job_errors([job_id]).job_errors
    assert errors[job_id] == "Preempted by anonymous - make room for prod"


def test_without_a_reason_the_preemption_reason_names_only_the_requestor(local_armada):
    client = local_armada.client()
    job_id = running_preemptible_job(local_armada, client)

    preempt(client, [job_id])

    assert local_armada.job(job_id).reason == "Preempted by anonymous"


@pytest.mark.parametrize("priority_class", ["", "armada-default", "armada-resilient"])
def test_a_job_of_a_non_preemptible_priority_class_keeps_running(local_armada, priority_class):
    # config/scheduler/config.yaml: armada-default is not preemptible; only
    # armada-preemptible is. The request is still recorded in the job set.
    client = local_armada.client()
    [job_id] = submit(client, job_request_item(annotations=LONG, priority_class=priority_class))
    local_armada.wait_for_state(job_id, [JobState.RUNNING])

    result = preempt(client, [job_id], reason="try")

    assert dict(result.preemption_results) == {job_id: ""}
    assert local_armada.job(job_id).state is JobState.RUNNING
    assert kinds(client, job_id)[-2:] == ["running", "preempting"]


def test_preempting_a_queued_job_answers_no_error_and_leaves_it_queued(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, job_request_item(annotations=PARKED, priority_class=PREEMPTIBLE))

    result = client.preempt_jobs(QUEUE, SET, job_id)

    assert dict(result.preemption_results) == {job_id: ""}
    assert local_armada.job(job_id).state is JobState.QUEUED
    assert kinds(client, job_id) == ["submitted", "queued", "preempting"]


def test_preempting_names_no_job_preempts_nothing_and_answers_nothing(local_armada):
    client = local_armada.client()
    job_id = running_preemptible_job(local_armada, client)

    result = preempt(client, [])

    assert dict(result.preemption_results) == {}
    assert local_armada.job(job_id).state is JobState.RUNNING
    assert kinds(client, job_id)[-1] == "running"


def test_every_named_id_is_answered_and_recorded_even_unknown_or_elsewhere(local_armada):
    client = local_armada.client()
    elsewhere = running_preemptible_job(local_armada, client, job_set="set-b")

    result = preempt(client, [elsewhere, "no-such-job"])

    assert dict(result.preemption_results) == {elsewhere: "", "no-such-job": ""}
    assert local_armada.job(elsewhere).state is JobState.RUNNING
    assert [kind for kind, _ in job_events(client, "no-such-job")] == ["preempting"]
    assert [kind for kind, _ in job_events(client, elsewhere)] == ["preempting"]
    assert "preempting" not in kinds(client, elsewhere, job_set="set-b")


@pytest.mark.parametrize(
    ("request_fields", "details"),
    [
        pytest.param(
            {"reason": "x" * 51},
            f'value "{"x" * 50}..." is invalid for field "Reason": '
            "reason cannot be longer than 50 bytes",
            id="long-reason",
        ),
        pytest.param(
            {"queue": ""},
            'value "" is invalid for field "Queue": queue cannot be empty',
            id="queue",
        ),
        pytest.param(
            {"job_set_id": ""},
            'value "" is invalid for field "JobSetId": jobset cannot be empty',
            id="job-set",
        ),
    ],
)
def test_preempt_requests_are_checked_as_armadas_job_set_validation_does(
    local_armada, request_fields, details
):
    # internal/server/submit/validation/job_set.go
    client = local_armada.client()
    fields = {"queue": QUEUE, "job_set_id": SET, "job_ids": ["x"], **request_fields}

    with pytest.raises(grpc.RpcError) as caught:
        client.submit_stub.PreemptJobs(submit_pb2.JobPreemptRequest(**fields))

    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == details


def test_preempting_on_an_unknown_queue_is_unknown_as_armadas_queue_lookup_answers(local_armada):
    # submit.go's authorize returns the queue cache's ErrQueueNotFound unwrapped.
    client = local_armada.client()

    with pytest.raises(grpc.RpcError) as caught:
        client.preempt_jobs("no-such-queue", SET, "some-job")

    assert caught.value.code() is grpc.StatusCode.UNKNOWN
    assert caught.value.details() == 'could not find queue "no-such-queue"'


# -- unknown queue ----------------------------------------------------------------

OPERATIONS = [
    pytest.param(lambda c: c.cancel_jobs("no-such-queue", SET, "some-job"), id="CancelJobs"),
    pytest.param(lambda c: c.cancel_jobset("no-such-queue", SET, []), id="CancelJobSet"),
    pytest.param(
        lambda c: c.reprioritize_jobs(2.0, ["some-job"], SET, "no-such-queue"),
        id="ReprioritizeJobs",
    ),
]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_job_operations_on_an_unknown_queue_are_denied(local_armada, operation):
    client = local_armada.client()

    with pytest.raises(grpc.RpcError) as caught:
        operation(client)

    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.details().startswith('could not find queue "no-such-queue" (')
