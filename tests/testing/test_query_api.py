"""The local Armada's query API (``api.Jobs``) as Armada's real clients see it."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from armada_client.armada import event_pb2, job_pb2, job_pb2_grpc, submit_pb2
from armada_client.asyncio_client import ArmadaAsyncIOClient

from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item

pytestmark = pytest.mark.local_armada(time_scale=50, queues=["default", "other"])

QUEUE = "default"
LONG = {"armada-hooks/runtime": "1h"}  # stays RUNNING for the whole test
PARKED = {"armada-hooks/queue-time": "1h"}  # stays QUEUED for the whole test


def submit(client, *items, queue=QUEUE, job_set="set-1"):
    response = client.submit_jobs(queue, job_set, list(items))
    return [item.job_id for item in response.job_response_items]


def event_kinds(client, job_id, queue=QUEUE, job_set="set-1"):
    stream = client.event_stub.GetJobSetEvents(
        event_pb2.JobSetRequest(id=job_set, queue=queue, watch=False)
    )
    kinds = []
    for message in stream:
        kind = message.message.WhichOneof("events")
        if getattr(message.message, kind).job_id == job_id:
            kinds.append(kind)
    return kinds


def wait_until_visible(client, job_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        state = client.get_job_status([job_id]).job_states[job_id]
        if state != submit_pb2.UNKNOWN:
            return state
        assert time.monotonic() < deadline, f"job {job_id} never reached the query API"
        time.sleep(0.01)


def ns(ts):
    return ts.ToNanoseconds()


# -- batching and the 500-id limit ------------------------------------------


def test_a_thousand_jobs_go_in_one_submit_and_come_back_in_two_status_calls(local_armada):
    client = local_armada.client()
    local_armada.reset_rpc_counts()

    job_ids = submit(client, *[job_request_item(["echo", str(i)]) for i in range(1000)])
    first = client.get_job_status(job_ids[:500]).job_states
    second = client.get_job_status(job_ids[500:]).job_states

    assert local_armada.rpc_count("SubmitJobs") == 1
    assert local_armada.rpc_count("GetJobStatus") == 2
    assert local_armada.rpc_count("*") == 3
    assert len(set(job_ids)) == 1000
    assert len(local_armada.jobs()) == 1000
    states = {**first, **second}
    assert set(states) == set(job_ids)
    assert all(state != submit_pb2.UNKNOWN for state in states.values())


QUERIES = [
    pytest.param("get_job_status", "jobIds", id="GetJobStatus"),
    pytest.param("get_job_details", "jobIds", id="GetJobDetails"),
    pytest.param("get_job_errors", "JobIds", id="GetJobErrors"),
    pytest.param("get_job_run_details", "RunIds", id="GetJobRunDetails"),
]


@pytest.mark.parametrize(("method", "what"), QUERIES)
def test_more_than_500_ids_in_one_query_are_refused(local_armada, method, what):
    client = local_armada.client()
    ids = [f"id-{i}" for i in range(501)]

    with pytest.raises(grpc.RpcError) as caught:
        getattr(client, method)(ids)

    assert caught.value.code() is grpc.StatusCode.UNKNOWN
    assert caught.value.details() == f"request contained more than 500 {what}"


@pytest.mark.parametrize(
    ("method", "answers"),
    [
        pytest.param("get_job_details", "job_details", id="GetJobDetails"),
        pytest.param("get_job_errors", "job_errors", id="GetJobErrors"),
        pytest.param("get_job_run_details", "job_run_details", id="GetJobRunDetails"),
    ],
)
def test_exactly_500_ids_in_one_query_are_accepted(local_armada, method, answers):
    client = local_armada.client()
    [job_id] = submit(client, job_request_item())
    job = local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    real_id = job.run_ids[0] if method == "get_job_run_details" else job_id
    ids = [real_id, *(f"no-such-id-{i}" for i in range(499))]

    response = getattr(client, method)(ids)

    assert set(getattr(response, answers)) == {real_id}


def test_exactly_500_ids_in_one_status_query_are_all_answered(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, job_request_item())
    local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    ids = [job_id, *(f"no-such-id-{i}" for i in range(499))]

    states = client.get_job_status(ids).job_states

    assert set(states) == set(ids)
    assert states[job_id] == submit_pb2.SUCCEEDED
    assert sum(state == submit_pb2.UNKNOWN for state in states.values()) == 499


# -- every id answered --------------------------------------------------------


def test_every_requested_id_is_answered_and_unknown_ids_read_unknown(local_armada):
    client = local_armada.client()
    done, queued = submit(client, job_request_item(), job_request_item(annotations=PARKED))
    local_armada.wait_for_state(done, [JobState.SUCCEEDED])
    unknown = ["no-such-job", "01hzzzzzzzzzzzzzzzzzzzzzzz"]

    states = client.get_job_status([done, queued, *unknown]).job_states

    assert set(states) == {done, queued, *unknown}
    assert states[done] == submit_pb2.SUCCEEDED
    # QUEUED is the enum's zero value: it must be present as a key, not just default to it.
    assert queued in states
    assert states[queued] == submit_pb2.QUEUED
    for job_id in unknown:
        assert states[job_id] == submit_pb2.UNKNOWN == 5


def test_unknown_ids_are_left_out_of_details_errors_and_run_details(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, job_request_item())
    job = local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])

    details = client.get_job_details([job_id, "no-such-job"]).job_details
    errors = client.get_job_errors([job_id, "no-such-job"]).job_errors
    runs = client.get_job_run_details([*job.run_ids, "no-such-run"]).job_run_details

    assert set(details) == {job_id}
    assert dict(errors) == {job_id: ""}
    assert set(runs) == set(job.run_ids)


# -- ingestion delay ------------------------------------------------------------


@pytest.mark.local_armada(time_scale=50, ingestion_delay=50)
def test_a_new_job_is_invisible_to_the_query_api_until_the_ingestion_delay_passes(
    local_armada,
):
    client = local_armada.client()
    uri = "s3://bucket/ingest"
    [job_id] = submit(client, job_request_item(annotations=LONG, external_job_uri=uri))

    assert client.get_job_status([job_id]).job_states[job_id] == submit_pb2.UNKNOWN
    assert dict(client.get_job_details([job_id]).job_details) == {}
    assert dict(client.get_job_errors([job_id]).job_errors) == {}
    by_uri = client.get_job_status_by_external_job_uri(QUEUE, "set-1", uri).job_states
    assert dict(by_uri) == {}
    server_side = local_armada.job(job_id).state  # the server has the job all along
    assert server_side in {JobState.QUEUED, JobState.LEASED, JobState.PENDING, JobState.RUNNING}

    state = wait_until_visible(client, job_id)
    visible_at = local_armada.now()

    assert state != submit_pb2.UNKNOWN
    details = client.get_job_details([job_id]).job_details
    assert set(details) == {job_id}
    submitted = ns(details[job_id].submitted_ts) / 1e9
    assert visible_at >= submitted + 50
    assert set(client.get_job_errors([job_id]).job_errors) == {job_id}
    by_uri = client.get_job_status_by_external_job_uri(QUEUE, "set-1", uri).job_states
    assert set(by_uri) == {job_id}


def test_set_ingestion_delay_applies_only_to_jobs_submitted_afterwards(local_armada):
    client = local_armada.client()
    [before] = submit(client, job_request_item(annotations=PARKED))
    assert client.get_job_status([before]).job_states[before] == submit_pb2.QUEUED

    local_armada.set_ingestion_delay(3600)
    [delayed] = submit(client, job_request_item(annotations=PARKED))
    states = client.get_job_status([before, delayed]).job_states
    assert states[before] == submit_pb2.QUEUED
    assert states[delayed] == submit_pb2.UNKNOWN

    local_armada.set_ingestion_delay(0)
    [after] = submit(client, job_request_item(annotations=PARKED))
    states = client.get_job_status([before, delayed, after]).job_states
    assert states[delayed] == submit_pb2.UNKNOWN  # keeps the delay it was submitted with
    assert states[after] == submit_pb2.QUEUED


def test_a_negative_ingestion_delay_is_refused(local_armada):
    with pytest.raises(ValueError, match="ingestion delay must be >= 0"):
        local_armada.set_ingestion_delay(-1)


# -- lost jobs --------------------------------------------------------------------


def test_a_lost_job_stays_unknown_but_can_still_be_cancelled(local_armada):
    client = local_armada.client()
    lost, normal = submit(
        client,
        job_request_item(annotations={"armada-hooks/lost": "true"}),
        job_request_item(),
    )
    local_armada.wait_for_state(normal, [JobState.SUCCEEDED])

    assert client.get_job_status([lost]).job_states[lost] == submit_pb2.UNKNOWN
    assert lost not in client.get_job_details([lost]).job_details
    assert lost not in client.get_job_errors([lost]).job_errors
    assert "submitted" not in event_kinds(client, lost)
    assert local_armada.job(lost).state is JobState.SUBMITTED

    result = client.cancel_jobs(QUEUE, "set-1", lost)

    assert list(result.cancelled_ids) == [lost]
    assert local_armada.job(lost).state is JobState.CANCELLED
    assert client.get_job_status([lost]).job_states[lost] == submit_pb2.UNKNOWN


# -- client_id deduplication ----------------------------------------------------


def test_resubmitting_a_client_id_returns_the_original_job(local_armada):
    client = local_armada.client()
    [original] = submit(client, job_request_item(client_id="run-42"))
    local_armada.wait_for_state(original, [JobState.SUCCEEDED])

    [again] = submit(client, job_request_item(["echo", "different"], client_id="run-42"))
    [from_other_set] = submit(client, job_request_item(client_id="run-42"), job_set="set-2")

    assert again == original
    assert from_other_set == original
    assert [job.job_id for job in local_armada.jobs()] == [original]
    assert event_kinds(client, original).count("submitted") == 1
    assert client.get_job_status([original]).job_states[original] == submit_pb2.SUCCEEDED


def test_the_same_client_id_in_another_queue_creates_another_job(local_armada):
    client = local_armada.client()
    [in_default] = submit(client, job_request_item(client_id="run-42"))
    [in_other] = submit(client, job_request_item(client_id="run-42"), queue="other")

    assert in_other != in_default
    assert {(j.job_id, j.queue) for j in local_armada.jobs()} == {
        (in_default, "default"),
        (in_other, "other"),
    }


def test_an_empty_client_id_never_deduplicates(local_armada):
    client = local_armada.client()
    first = submit(client, job_request_item(), job_request_item())
    second = submit(client, job_request_item())

    assert len(set(first + second)) == 3
    assert len(local_armada.jobs()) == 3


# -- external job uri -------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [
        pytest.param({"external_job_uri": "airflow://dag/task/1"}, id="item-field"),
        pytest.param(
            {"annotations": {"armadaproject.io/externalJobUri": "airflow://dag/task/1"}},
            id="annotation",
        ),
    ],
)
def test_a_job_is_found_by_queue_job_set_and_external_job_uri(local_armada, how):
    client = local_armada.client()
    [job_id] = submit(client, job_request_item(**how))
    local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    [_unrelated] = submit(client, job_request_item(external_job_uri="airflow://dag/task/2"))

    found = client.get_job_status_by_external_job_uri(QUEUE, "set-1", "airflow://dag/task/1")

    assert dict(found.job_states) == {job_id: submit_pb2.SUCCEEDED}
    for queue, job_set in [("other", "set-1"), (QUEUE, "set-2")]:
        missed = client.get_job_status_by_external_job_uri(queue, job_set, "airflow://dag/task/1")
        assert dict(missed.job_states) == {}


def test_every_job_sharing_an_external_job_uri_is_returned(local_armada):
    client = local_armada.client()
    uri = "airflow://dag/task/shared"
    first, second = submit(
        client,
        job_request_item(external_job_uri=uri),
        job_request_item(external_job_uri=uri, annotations=PARKED),
    )
    local_armada.wait_for_state(first, [JobState.SUCCEEDED])

    found = client.get_job_status_by_external_job_uri(QUEUE, "set-1", uri).job_states

    assert dict(found) == {first: submit_pb2.SUCCEEDED, second: submit_pb2.QUEUED}


def test_an_empty_external_job_uri_is_refused(local_armada):
    client = local_armada.client()
    submit(client, job_request_item())

    with pytest.raises(grpc.RpcError) as caught:
        client.get_job_status_by_external_job_uri(QUEUE, "set-1", "")

    assert caught.value.code() is grpc.StatusCode.UNKNOWN
    assert caught.value.details() == "request must contain external job uri"


# -- details, runs and errors ---------------------------------------------------


def test_job_details_describe_the_job_and_its_run(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, job_request_item(namespace="team-a"), job_set="details")
    job = local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])

    details = client.get_job_details([job_id]).job_details[job_id]

    assert details.job_id == job_id
    assert (details.queue, details.jobset, details.namespace) == (QUEUE, "details", "team-a")
    assert details.state == submit_pb2.SUCCEEDED
    assert not details.HasField("cancel_ts")
    assert details.cancel_reason == ""
    assert [run.run_id for run in details.job_runs] == list(job.run_ids)
    assert details.latest_run_id == job.run_ids[-1]
    [run] = details.job_runs
    assert run.job_id == job_id
    assert run.state == job_pb2.RUN_STATE_SUCCEEDED
    assert run.cluster == "local-cluster"
    assert run.node
    for field in ("leased_ts", "pending_ts", "started_ts", "finished_ts"):
        assert run.HasField(field), field
    assert (
        ns(details.submitted_ts)
        <= ns(run.leased_ts)
        <= ns(run.pending_ts)
        <= ns(run.started_ts)
        <= ns(run.finished_ts)
    )
    assert ns(run.started_ts) < ns(run.finished_ts)  # it ran for its runtime
    assert ns(details.last_transition_ts) == ns(run.finished_ts)


def test_the_cluster_annotation_names_the_cluster_of_the_runs(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, job_request_item(annotations={"armada-hooks/cluster": "gpu-eu-2"}))
    job = local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])

    [run] = client.get_job_details([job_id]).job_details[job_id].job_runs
    run_details = client.get_job_run_details(list(job.run_ids)).job_run_details

    assert run.cluster == "gpu-eu-2"
    assert run_details[run.run_id].cluster == "gpu-eu-2"


def test_job_details_include_runs_and_spec_only_when_asked(local_armada):
    client = local_armada.client()
    item = job_request_item(
        ["python", "-c", "print(1)"],
        client_id="spec-1",
        priority=3,
        labels={"team": "data"},
        annotations={"note": "hello"},
    )
    [job_id] = submit(client, item)
    local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    stub = job_pb2_grpc.JobsStub(local_armada.channel())

    plain = stub.GetJobDetails(job_pb2.JobDetailsRequest(job_ids=[job_id])).job_details[job_id]
    full = stub.GetJobDetails(
        job_pb2.JobDetailsRequest(job_ids=[job_id], expand_job_run=True, expand_job_spec=True)
    ).job_details[job_id]

    assert not plain.HasField("job_spec")
    assert len(plain.job_runs) == 0
    assert plain.latest_run_id  # the latest run id is there without expanding the runs
    assert len(full.job_runs) == 1
    spec = full.job_spec
    assert (spec.id, spec.queue, spec.job_set_id, spec.client_id) == (
        job_id,
        QUEUE,
        "set-1",
        "spec-1",
    )
    assert spec.namespace == "default"
    assert spec.priority == 3
    assert dict(spec.labels) == {"team": "data"}
    assert dict(spec.annotations) == {"note": "hello"}
    assert list(spec.pod_spec.containers[0].command) == ["python", "-c", "print(1)"]


def test_run_details_describe_every_run_of_a_requeued_job(local_armada):
    client = local_armada.client()
    [job_id] = submit(client, job_request_item(annotations={"armada-hooks/lease-returns": "1"}))
    job = local_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    assert len(job.run_ids) == 2
    returned, final = job.run_ids

    runs = client.get_job_run_details([returned, final]).job_run_details
    details = client.get_job_details([job_id]).job_details[job_id]

    assert set(runs) == {returned, final}
    assert runs[returned].state == job_pb2.RUNS_STATE_LEASE_RETURNED
    assert runs[final].state == job_pb2.RUN_STATE_SUCCEEDED
    assert all(run.job_id == job_id for run in runs.values())
    assert ns(runs[returned].finished_ts) <= ns(runs[final].leased_ts)
    assert details.latest_run_id == final
    assert [run.run_id for run in details.job_runs] == [returned, final]


def test_job_errors_give_the_failure_reason_and_nothing_for_a_success(local_armada):
    client = local_armada.client()
    custom, by_exit_code, success = submit(
        client,
        job_request_item(
            annotations={
                "armada-hooks/outcome": "failed",
                "armada-hooks/failure-reason": "OOMKilled: memory limit 64Mi",
            }
        ),
        job_request_item(
            annotations={"armada-hooks/outcome": "failed", "armada-hooks/exit-code": "3"}
        ),
        job_request_item(),
    )
    for job_id in (custom, by_exit_code, success):
        local_armada.wait_for_state(job_id)

    errors = client.get_job_errors([custom, by_exit_code, success]).job_errors
    states = client.get_job_status([custom, by_exit_code, success]).job_states

    assert dict(errors) == {
        custom: "OOMKilled: memory limit 64Mi",
        by_exit_code: "Container main exited with code 3",
        success: "",
    }
    assert [states[i] for i in (custom, by_exit_code, success)] == [
        submit_pb2.FAILED,
        submit_pb2.FAILED,
        submit_pb2.SUCCEEDED,
    ]


# -- the asyncio client -----------------------------------------------------------


async def _await_state(client, job_id, wanted, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        state = (await client.get_job_status([job_id])).job_states[job_id]
        if state == wanted:
            return
        assert time.monotonic() < deadline, (
            f"job {job_id} is {submit_pb2.JobState.Name(state)}, "
            f"not {submit_pb2.JobState.Name(wanted)}"
        )
        await asyncio.sleep(0.01)


async def test_the_asyncio_client_submits_queries_and_cancels(local_armada):
    channel = local_armada.aio_channel()
    try:
        client = ArmadaAsyncIOClient(channel)
        response = await client.submit_jobs(
            QUEUE,
            "async-set",
            [
                job_request_item(),
                job_request_item(
                    annotations={
                        "armada-hooks/outcome": "failed",
                        "armada-hooks/failure-reason": "bad input",
                    }
                ),
                job_request_item(annotations=LONG),
            ],
        )
        done, failed, running = [item.job_id for item in response.job_response_items]

        await _await_state(client, done, submit_pb2.SUCCEEDED)
        await _await_state(client, failed, submit_pb2.FAILED)
        await _await_state(client, running, submit_pb2.RUNNING)
        details = (await client.get_job_details([done])).job_details[done]
        errors = (await client.get_job_errors([done, failed])).job_errors
        cancelled = await client.cancel_jobs(QUEUE, "async-set", running)
        await _await_state(client, running, submit_pb2.CANCELLED)
    finally:
        await channel.close()

    assert (details.queue, details.jobset, details.state) == (
        QUEUE,
        "async-set",
        submit_pb2.SUCCEEDED,
    )
    assert [run.state for run in details.job_runs] == [job_pb2.RUN_STATE_SUCCEEDED]
    assert dict(errors) == {done: "", failed: "bad input"}
    assert list(cancelled.cancelled_ids) == [running]
    assert local_armada.job(running).state is JobState.CANCELLED


# -- GetActiveQueues (internal/server/queryapi/query_api.go, database/query.sql) ----


def test_get_active_queues_lists_queues_with_leased_pending_or_running_jobs(local_armada):
    client = local_armada.client()
    stub = job_pb2_grpc.JobsStub(local_armada.channel())
    assert dict(stub.GetActiveQueues(job_pb2.GetActiveQueuesRequest()).active_queues_by_pool) == {}

    [running] = submit(client, job_request_item(annotations=LONG), queue="other")
    [queued] = submit(client, job_request_item(annotations=PARKED))
    local_armada.wait_for_state(running, [JobState.RUNNING])

    active = stub.GetActiveQueues(job_pb2.GetActiveQueuesRequest()).active_queues_by_pool
    assert {pool: list(a.queues) for pool, a in active.items()} == {"default": ["other"]}
    assert local_armada.job(queued).state is JobState.QUEUED

    client.cancel_jobs("other", "set-1", running)
    assert dict(stub.GetActiveQueues(job_pb2.GetActiveQueuesRequest()).active_queues_by_pool) == {}
