"""Streams resumed after a restart of the job service (SQLite, Redis) and after a drop; the
CONNECTION_ERR rule; idle streams closed and expired job sets purged."""

from __future__ import annotations

import dataclasses

import grpc
import pytest
from armada_client.armada import event_pb2
from js_helpers import FAST, client_for, eventually, historic, submit

from armada_hooks.jobservice.redis_store import RedisStore
from armada_hooks.jobservice.sqlite_store import SQLiteStore
from armada_hooks.states import JobState

RUNTIME = "armada-hooks/runtime"


def replayed(local_armada, job_set):
    """Every message of the job set, read without watching."""
    stub = local_armada.client().event_stub
    return list(stub.GetJobSetEvents(event_pb2.JobSetRequest(queue="default", id=job_set)))


def only_follower(service):
    return service.call(lambda core: next(iter(core.followers.values())))


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_restarted_job_service_resumes_from_the_stored_message_id(
    local_armada, job_service_factory, tmp_path, request, kind
):
    stores = []

    def path():  # the store a (re)started service opens: the same data each time
        if kind == "sqlite":
            return tmp_path / "js.db"
        stores.append(RedisStore(url))
        return stores[-1]

    url = request.getfixturevalue("redis_url") if kind == "redis" else ""
    [long_job, short_job] = submit(local_armada, "restart", {RUNTIME: "1h"}, {RUNTIME: "1h"})
    local_armada.wait_for_state(short_job, states=[JobState.RUNNING])
    first = job_service_factory(store=path())
    client = client_for(first)
    assert historic(client, "default", "restart", short_job)[0] == "RUNNING"
    seen_before = only_follower(first).messages
    first.stop()

    local_armada.client().cancel_jobs(queue="default", job_set_id="restart", job_id=short_job)
    local_armada.wait_for_state(short_job)  # ends while no job service runs
    local_armada.reset_rpc_counts()
    second = job_service_factory(store=path())
    # resumed at start (the job set was followed, and not all of it has ended)
    follower = eventually(lambda: second.call(lambda core: list(core.followers.values())))[0]
    assert follower.opened_from[0] != ""
    client = client_for(second)
    eventually(lambda: historic(client, "default", "restart", short_job)[0] == "CANCELLED")
    assert historic(client, "default", "restart", long_job)[0] == "RUNNING"
    probes = second.call(lambda core: core.access.probes)
    assert local_armada.rpc_count("GetJobSetEvents") == 1 + probes  # one stream, resumed
    assert local_armada.rpc_count("GetJobStatus") == 0
    total = len(replayed(local_armada, "restart"))
    assert follower.messages == total - seen_before  # nothing replayed twice, none missed
    stored = SQLiteStore(tmp_path / "js.db") if kind == "sqlite" else RedisStore(url)
    assert stored.job_set(("default", "restart")) is not None
    second.stop()
    for store in [*stores, stored]:
        store.close()


@pytest.mark.local_armada(time_scale=20)
def test_a_dropped_stream_resumes_after_its_last_message(local_armada, job_service):
    ids = submit(local_armada, "drops", *[{RUNTIME: "0"}] * 3)
    for job_id in ids:
        local_armada.wait_for_state(job_id)
    local_armada.faults.drop_streams(after=4)
    client = client_for(job_service)
    for job_id in ids:
        eventually(lambda j=job_id: historic(client, "default", "drops", j)[0] == "SUCCEEDED")
    follower = only_follower(job_service)
    assert follower.streams_opened == 2
    assert follower.opened_from[1] == replayed(local_armada, "drops")[3].id
    assert follower.messages == len(replayed(local_armada, "drops"))


def test_connection_err_only_past_the_grace_and_never_for_an_ended_job(
    local_armada, job_service_factory
):
    settings = dataclasses.replace(FAST, connection_grace=1.0)
    service = job_service_factory(settings=settings)
    [running, done] = submit(local_armada, "outage", {RUNTIME: "1h"}, {RUNTIME: "0"})
    local_armada.wait_for_state(done)
    local_armada.wait_for_state(running, states=[JobState.RUNNING])
    client = client_for(service)
    assert historic(client, "default", "outage", running)[0] == "RUNNING"
    local_armada.faults.fail("GetJobSetEvents", grpc.StatusCode.UNAVAILABLE, times=10_000)
    local_armada.restart()  # the open stream ends; every reopen fails
    assert historic(client, "default", "outage", running)[0] == "RUNNING"  # within the grace
    _state, error = eventually(
        lambda: (r := historic(client, "default", "outage", running))[0] == "CONNECTION_ERR" and r
    )
    assert "UNAVAILABLE" in error
    assert historic(client, "default", "outage", done)[0] == "SUCCEEDED"
    assert historic(client, "default", "outage", "never-seen")[0] == "CONNECTION_ERR"
    local_armada.faults.clear()
    eventually(lambda: historic(client, "default", "outage", running)[0] == "RUNNING")


def test_idle_streams_close_and_expired_all_terminal_job_sets_are_purged(
    local_armada, job_service_factory
):
    settings = dataclasses.replace(FAST, idle_timeout=0.5, retention=0.8)
    store = SQLiteStore(":memory:")
    service = job_service_factory(settings=settings, store=store)
    [done] = submit(local_armada, "finished", {RUNTIME: "0"})
    [busy] = submit(local_armada, "busy", {RUNTIME: "1h"})
    local_armada.wait_for_state(done)
    client = client_for(service)
    eventually(lambda: historic(client, "default", "finished", done)[0] == "SUCCEEDED")
    eventually(lambda: historic(client, "default", "busy", busy)[0] != "JOB_ID_NOT_FOUND")
    eventually(lambda: service.call(lambda core: core.idle_closed) == 2)
    assert service.call(lambda core: len(core.followers)) == 0
    eventually(lambda: store.job_set(("default", "finished")) is None)
    assert store.job_set(("default", "busy")) is not None  # not all ended: kept
    # asking again resumes the kept job set from where it was left
    local_armada.reset_rpc_counts()
    assert historic(client, "default", "busy", busy)[0] in ("SUBMITTED", "RUNNING")
    assert only_follower(service).opened_from[0] != ""
