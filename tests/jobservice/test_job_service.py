"""The job service against the local Armada over loopback: states through a job's life,
one shared stream per job set, the batched RPC, the not-found rule, health."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from js_helpers import FAST, client_for, eventually, historic, submit

from armada_hooks.channels import ChannelSpec, open_channel
from armada_hooks.jobservice.protos import job_states_pb2
from armada_hooks.states import JobState

RUNTIME = "armada-hooks/runtime"
QUEUE_TIME = "armada-hooks/queue-time"
OUTCOME = "armada-hooks/outcome"
REASON = "armada-hooks/failure-reason"
C = job_states_pb2.Certainty


@pytest.mark.local_armada(time_scale=20)
def test_states_through_each_kind_of_life(local_armada, js_client):
    queued, running, succeeded, failed, rejected, preempted = submit(
        local_armada,
        "lives",
        {QUEUE_TIME: "1h"},
        {RUNTIME: "1h"},
        {RUNTIME: "0"},
        {RUNTIME: "0", OUTCOME: "failed", REASON: "exit code 3"},
        {OUTCOME: "rejected", REASON: "no node fits"},
        {RUNTIME: "0", OUTCOME: "preempted"},
    )
    for job_id in (succeeded, failed, rejected, preempted):
        local_armada.wait_for_state(job_id)
    local_armada.wait_for_state(running, states=[JobState.RUNNING])

    def ask(job_id):
        return historic(js_client, "default", "lives", job_id)

    assert ask(queued) == ("SUBMITTED", "")
    eventually(lambda: ask(running) == ("RUNNING", ""))
    assert eventually(lambda: ask(succeeded)[0] == "SUCCEEDED")
    assert ask(failed) == ("FAILED", "exit code 3")
    assert ask(rejected) == ("FAILED", "rejected: no node fits")
    state, error = ask(preempted)
    assert state == "FAILED"
    assert error.startswith("preempted")
    local_armada.client().cancel_jobs(queue="default", job_set_id="lives", job_id=running)
    eventually(lambda: ask(running)[0] == "CANCELLED")

    batched = js_client.get_job_states(
        [("default", "lives", j) for j in (queued, rejected, preempted, running)]
    )
    assert [(job_states_pb2.JobState.Name(a.state), a.certainty) for a in batched.answers] == [
        ("QUEUED", C.CURRENT),
        ("REJECTED", C.CURRENT),
        ("PREEMPTED", C.CURRENT),
        ("CANCELLED", C.CURRENT),
    ]
    assert batched.answers[1].reason == "no node fits"
    assert [a.job.job_id for a in batched.answers] == [queued, rejected, preempted, running]


@pytest.mark.local_armada(time_scale=20)
def test_one_stream_per_job_set_shared_by_callers_and_no_status_calls(local_armada, job_service):
    sets = {name: submit(local_armada, name, *[{RUNTIME: "0"}] * 5) for name in ("s1", "s2")}
    for ids in sets.values():
        for job_id in ids:
            local_armada.wait_for_state(job_id)
    local_armada.reset_rpc_counts()
    clients = [client_for(job_service) for _ in range(3)]
    for _ in range(3):
        for client in clients:
            for name, ids in sets.items():
                for job_id in ids:
                    assert historic(client, "default", name, job_id)[0] == "SUCCEEDED"
    answers = (
        clients[0]
        .get_job_states([("default", name, j) for name, ids in sets.items() for j in ids])
        .answers
    )
    assert {a.state for a in answers} == {job_states_pb2.SUCCEEDED}
    counts = local_armada.rpc_counts()
    # one permission check for the (tokenless) callers on queue default, then cached
    assert job_service.call(lambda core: core.access.probes) == 1
    assert counts.get("GetJobSetEvents") == 2 + 1  # one stream per job set, for 3 x 10 asks
    assert counts.get("GetJobStatus", 0) == 0  # the streams cover every job asked about


def test_an_id_no_stream_shows_is_asked_of_armada_once_in_one_batch(local_armada, js_client):
    [known] = submit(local_armada, "nf", {RUNTIME: "1h"})
    [elsewhere] = submit(local_armada, "other-set", {RUNTIME: "1h"})
    local_armada.wait_for_state(elsewhere, states=[JobState.RUNNING])
    local_armada.wait_for_state(known, states=[JobState.RUNNING])
    local_armada.reset_rpc_counts()
    answers = js_client.get_job_states(
        [("default", "nf", j) for j in (known, "ghost-1", "ghost-2", elsewhere)]
    ).answers
    assert [(a.state, a.certainty) for a in answers] == [
        (job_states_pb2.RUNNING, C.CURRENT),
        (job_states_pb2.UNKNOWN, C.NOT_FOUND),
        (job_states_pb2.UNKNOWN, C.NOT_FOUND),
        (job_states_pb2.RUNNING, C.CURRENT),  # a wrong job set: Armada knows the job
    ]
    assert local_armada.rpc_count("GetJobStatus") == 1  # three unseen ids, one call
    assert historic(js_client, "default", "nf", "ghost-1") == ("JOB_ID_NOT_FOUND", "")
    assert local_armada.rpc_count("GetJobStatus") == 1  # the answer is remembered


def test_no_not_found_before_the_replay_has_caught_up(local_armada, job_service_factory):
    import dataclasses

    [job_id] = submit(local_armada, "late", {RUNTIME: "1h"})
    local_armada.faults.delay("GetJobSetEvents", 1.5)  # the stream is slow to open
    service = job_service_factory(
        settings=dataclasses.replace(FAST, first_answer_wait=0.2, empty_replay_wait=3.0)
    )
    client = client_for(service)
    assert historic(client, "default", "late", "ghost") == ("SUBMITTED", "")
    assert historic(client, "default", "late", job_id) == ("SUBMITTED", "")
    assert local_armada.rpc_count("GetJobStatus") == 0
    eventually(lambda: historic(client, "default", "late", job_id)[0] == "RUNNING")
    # once the stream has been quiet for catch_up_quiet, the unseen id is asked of Armada
    eventually(lambda: historic(client, "default", "late", "ghost")[0] == "JOB_ID_NOT_FOUND")
    assert local_armada.rpc_count("GetJobStatus") == 1


def test_a_stream_never_quiet_stops_holding_unseen_ids_back_after_its_patience(
    local_armada, job_service_factory
):
    # A job set so busy that its stream is never quiet for catch_up_quiet (here: a quiet
    # that cannot come) would never catch up: past replay_patience, an id it has not shown
    # is asked of Armada's query API anyway, and found unknown.
    import dataclasses

    [job_id] = submit(local_armada, "busy", {RUNTIME: "1h"})
    settings = dataclasses.replace(
        FAST,
        catch_up_quiet=3600,
        empty_replay_wait=3600,
        first_answer_wait=0.5,
        replay_patience=3.0,
    )
    client = client_for(job_service_factory(settings=settings))
    assert historic(client, "default", "busy", "ghost") == ("SUBMITTED", "")
    assert local_armada.rpc_count("GetJobStatus") == 0
    eventually(lambda: historic(client, "default", "busy", "ghost")[0] == "JOB_ID_NOT_FOUND")
    assert local_armada.rpc_count("GetJobStatus") == 1  # once, for the unseen id only
    assert historic(client, "default", "busy", job_id)[0] in ("SUBMITTED", "RUNNING")
    assert local_armada.rpc_count("GetJobStatus") == 1  # the stream shows this one


def test_an_empty_job_set_catches_up_after_its_silence(local_armada, js_client):
    # The first request waits (first_answer_wait) for the replay; a stream that says
    # nothing for empty_replay_wait has nothing to replay, so the id is asked of Armada.
    started = time.monotonic()
    assert historic(js_client, "default", "never-used", "ghost") == ("JOB_ID_NOT_FOUND", "")
    assert time.monotonic() - started >= FAST.empty_replay_wait * 0.9
    assert local_armada.rpc_count("GetJobStatus") == 1


def test_requests_that_name_no_job_are_refused_with_what_is_missing(js_client):
    with pytest.raises(grpc.RpcError) as caught:
        js_client.get_job_status("default", "", "")
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "job_set_id, job_id" in caught.value.details()
    with pytest.raises(grpc.RpcError) as caught:
        js_client.get_job_states([("default", "s", "a"), ("", "s", "b")])
    assert "jobs[1] has no queue" in caught.value.details()


def test_health_follows_armadas_reachability(local_armada, job_service, js_client):
    health = health_pb2_grpc.HealthStub(open_channel(ChannelSpec(job_service.target)))
    serving = health_pb2.HealthCheckResponse.SERVING

    def status(service=""):
        return health.Check(health_pb2.HealthCheckRequest(service=service)).status

    eventually(lambda: status() == serving)
    assert status("jobservice.JobService") == serving
    assert js_client.health().status == js_client.health().SERVING
    local_armada.stop()
    try:
        eventually(lambda: js_client.health().status == js_client.health().NOT_SERVING)
        eventually(lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING)
    finally:
        local_armada.start()
    eventually(lambda: status("armada_hooks.jobservice.JobStates") == serving)
