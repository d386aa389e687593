"""Cordon, uncordon, preempt-on-queue and cancel-on-queue, as Armada's queue service does them.

Followed: internal/server/queue/queue_service.go (validation and messages),
queue_repository.go (cordoning an unknown queue), scheduleringester/schedulerdb.go and
instructions.go (which jobs are selected; the cancel reason), scheduler/scheduler.go
(cordoned queues are neither checked nor scheduled; API preemption needs a preemptible
priority class and says "Preempted - preemption requested via API").
"""

from __future__ import annotations

import grpc
import pytest
from armada_client.armada import submit_pb2

from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item

pytestmark = pytest.mark.local_armada(time_scale=50)

QUEUE = "default"
SET = "control"
LONG = {"armada-hooks/runtime": "1h"}
PARKED = {"armada-hooks/queue-time": "1h"}


def submit(local_armada, *items, queue=QUEUE):
    response = local_armada.client().submit_jobs(queue, SET, list(items))
    return [i.job_id for i in response.job_response_items]


def running(local_armada, priority_class="armada-preemptible", queue=QUEUE):
    [job_id] = submit(
        local_armada, job_request_item(annotations=LONG, priority_class=priority_class), queue=queue
    )
    local_armada.wait_for_state(job_id, [JobState.RUNNING])
    return job_id


@pytest.fixture
def kinds(job_events):
    """``kinds(job_id)``: the kinds of one job's events in this module's job set."""
    return lambda job_id: [kind for kind, _ in job_events(job_id, SET)]


def error_of(call, request):
    with pytest.raises(grpc.RpcError) as caught:
        call(request)
    return caught.value.code(), caught.value.details()


# -- cordon -------------------------------------------------------------------------


def test_a_cordoned_queue_takes_jobs_but_leases_none_until_uncordoned(local_armada, kinds) -> None:
    stub = local_armada.client().queue_stub
    stub.CordonQueue(submit_pb2.QueueCordonRequest(name=QUEUE))
    assert local_armada.client().get_queue(QUEUE).cordoned

    [job_id] = submit(local_armada, job_request_item(annotations={"armada-hooks/runtime": "0"}))
    with pytest.raises(TimeoutError):
        local_armada.wait_for_state(job_id, [JobState.LEASED, JobState.SUCCEEDED], timeout=0.5)
    assert kinds(job_id) == ["submitted", "queued"]

    stub.UncordonQueue(submit_pb2.QueueUncordonRequest(name=QUEUE))
    assert not local_armada.client().get_queue(QUEUE).cordoned
    assert local_armada.wait_for_state(job_id).state is JobState.SUCCEEDED


def test_a_cordoned_queues_jobs_are_not_checked_until_it_is_uncordoned(local_armada) -> None:
    stub = local_armada.client().queue_stub
    stub.CordonQueue(submit_pb2.QueueCordonRequest(name=QUEUE))
    [job_id] = submit(local_armada, job_request_item(cpu="64"))
    with pytest.raises(TimeoutError):
        local_armada.wait_for_state(job_id, timeout=0.5)
    stub.UncordonQueue(submit_pb2.QueueUncordonRequest(name=QUEUE))
    assert local_armada.wait_for_state(job_id).state is JobState.REJECTED


def test_cordoning_leaves_running_jobs_running(local_armada) -> None:
    job_id = running(local_armada)
    local_armada.client().queue_stub.CordonQueue(submit_pb2.QueueCordonRequest(name=QUEUE))
    assert local_armada.job(job_id).state is JobState.RUNNING


def test_updating_a_cordoned_queue_without_the_flag_uncordons_it(local_armada) -> None:
    client = local_armada.client()
    client.queue_stub.CordonQueue(submit_pb2.QueueCordonRequest(name=QUEUE))
    [job_id] = submit(local_armada, job_request_item(annotations={"armada-hooks/runtime": "0"}))
    client.update_queue(submit_pb2.Queue(name=QUEUE, priority_factor=1))
    assert local_armada.wait_for_state(job_id).state is JobState.SUCCEEDED


@pytest.mark.parametrize(
    ("rpc", "verb"), [("CordonQueue", "cordon"), ("UncordonQueue", "uncordon")]
)
def test_cordoning_needs_a_name_and_a_known_queue(local_armada, rpc, verb) -> None:
    call = getattr(local_armada.client().queue_stub, rpc)
    request = getattr(
        submit_pb2, "QueueCordonRequest" if verb == "cordon" else "QueueUncordonRequest"
    )
    assert error_of(call, request(name="")) == (
        grpc.StatusCode.UNKNOWN,
        f"cannot {verb} queue with empty name",
    )
    assert error_of(call, request(name="ghost")) == (
        grpc.StatusCode.UNKNOWN,
        'could not find queue "ghost"',
    )


# -- preempt on queue ---------------------------------------------------------------


def test_preempt_on_queue_preempts_the_queues_preemptible_leased_jobs(local_armada, kinds) -> None:
    local_armada.create_queue("other")
    preemptible = running(local_armada)
    default_class = running(local_armada, priority_class="")
    elsewhere = running(local_armada, queue="other")
    [queued] = submit(
        local_armada, job_request_item(annotations=PARKED, priority_class="armada-preemptible")
    )

    local_armada.client().queue_stub.PreemptOnQueue(submit_pb2.QueuePreemptRequest(name=QUEUE))

    done = local_armada.job(preemptible)
    assert done.state is JobState.PREEMPTED
    assert done.reason == "Preempted - preemption requested via API"
    assert kinds(preemptible)[-2:] == ["preempted", "failed"]  # no preempting
    assert local_armada.job(default_class).state is JobState.RUNNING
    assert local_armada.job(elsewhere).state is JobState.RUNNING
    assert local_armada.job(queued).state is JobState.QUEUED


@pytest.mark.parametrize(
    ("fields", "preempted"),
    [
        ({"priorityClasses": ["armada-preemptible"]}, True),
        ({"priorityClasses": ["armada-default"]}, False),
        ({"pools": ["default"]}, True),
        ({"pools": ["gpu"]}, False),
    ],
)
def test_preempt_on_queue_narrows_to_priority_classes_and_pools(
    local_armada, fields, preempted
) -> None:
    job_id = running(local_armada)
    local_armada.client().queue_stub.PreemptOnQueue(
        submit_pb2.QueuePreemptRequest(name=QUEUE, **fields)
    )
    state = local_armada.job(job_id).state
    assert state is (JobState.PREEMPTED if preempted else JobState.RUNNING)


def test_preempt_on_queue_needs_a_name_but_not_a_known_queue(local_armada) -> None:
    stub = local_armada.client().queue_stub
    assert error_of(stub.PreemptOnQueue, submit_pb2.QueuePreemptRequest(name="")) == (
        grpc.StatusCode.UNKNOWN,
        "cannot preempt jobs on queue with empty name",
    )
    stub.PreemptOnQueue(submit_pb2.QueuePreemptRequest(name="ghost"))  # nothing to preempt


# -- cancel on queue ----------------------------------------------------------------


def test_cancel_on_queue_cancels_the_jobs_in_the_given_states(local_armada, kinds) -> None:
    run_id = running(local_armada)
    [queued] = submit(local_armada, job_request_item(annotations=PARKED))

    local_armada.client().queue_stub.CancelOnQueue(
        submit_pb2.QueueCancelRequest(name=QUEUE, jobStates=[submit_pb2.QUEUED])
    )

    assert local_armada.job(queued).state is JobState.CANCELLED
    assert local_armada.job(run_id).state is JobState.RUNNING
    assert kinds(queued) == ["submitted", "queued", "cancelled"]
    details = local_armada.client().get_job_details([queued]).job_details[queued]
    assert (details.cancel_reason, details.cancel_user) == (
        "cancelled by CancelOnQueue",
        "anonymous",
    )


def test_cancel_on_queue_with_no_states_cancels_nothing(local_armada) -> None:
    job_id = running(local_armada)
    local_armada.client().queue_stub.CancelOnQueue(submit_pb2.QueueCancelRequest(name=QUEUE))
    assert local_armada.job(job_id).state is JobState.RUNNING


def test_cancel_on_queue_by_priority_class(local_armada) -> None:
    keep = running(local_armada)
    cancel = running(local_armada, priority_class="armada-default")
    local_armada.client().queue_stub.CancelOnQueue(
        submit_pb2.QueueCancelRequest(
            name=QUEUE,
            jobStates=[submit_pb2.RUNNING, submit_pb2.PENDING],
            priorityClasses=["armada-default"],
        )
    )
    assert local_armada.job(cancel).state is JobState.CANCELLED
    assert local_armada.job(keep).state is JobState.RUNNING


@pytest.mark.parametrize(
    ("request_", "details"),
    [
        (submit_pb2.QueueCancelRequest(name=""), "cannot cancel jobs on queue with empty name"),
        (
            submit_pb2.QueueCancelRequest(name=QUEUE, jobStates=[submit_pb2.SUCCEEDED]),
            "provided job states must be non-terminal",
        ),
    ],
)
def test_cancel_on_queue_refuses_what_armada_refuses(local_armada, request_, details) -> None:
    stub = local_armada.client().queue_stub
    assert error_of(stub.CancelOnQueue, request_) == (grpc.StatusCode.UNKNOWN, details)
