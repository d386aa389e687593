"""Job-service replicas on one Redis: one stream per job set across replicas (a lease),
the others answering from the store; a killed replica's job sets taken over within 10 s,
resumed from the stored message id."""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from js_helpers import FAST, client_for, eventually, historic, submit

from armada_hooks.channels import ChannelSpec, open_channel
from armada_hooks.jobservice.client import JobServiceClient
from armada_hooks.jobservice.redis_store import RedisStore
from armada_hooks.jobservice.store import JobRecord, LeaseLostError
from armada_hooks.states import JobState

RUNTIME = "armada-hooks/runtime"
LEASED = dataclasses.replace(FAST, lease_ttl=1.0)
SCRIPT = str(Path(sys.executable).parent / "armada-hooks")
SERVING = re.compile(r"^job service serving on (127\.0\.0\.1:\d+)$")
KEY = ("default", "replicated")


def follower(service, key=KEY):
    return service.call(lambda core: core.followers[key])


def test_a_lease_has_one_holder_and_fences_the_others_writes(redis_url):
    one, two = RedisStore(redis_url), RedisStore(redis_url)
    assert one.acquire(KEY, 0.3)
    assert one.acquire(KEY, 0.3)  # renewed by its holder
    assert not two.acquire(KEY, 0.3)
    assert one.lease_holder(KEY) == one.owner
    with pytest.raises(LeaseLostError, match="followed by another replica"):
        two.record(KEY, "m1", [JobRecord("a", JobState.RUNNING)])
    assert two.jobs(KEY) == {}
    one.record(KEY, "m1", [JobRecord("a", JobState.RUNNING)])
    time.sleep(0.4)  # expired unrenewed
    assert two.acquire(KEY, 5)
    with pytest.raises(LeaseLostError):
        one.record(KEY, "m2", [JobRecord("a", JobState.FAILED)])
    two.release(KEY)
    one.release(KEY)  # not the holder: a no-op
    assert one.lease_holder(KEY) is None
    one.close()
    two.close()


@pytest.mark.local_armada(time_scale=20)
def test_replicas_share_one_stream_per_job_set_and_answer_alike(
    local_armada, job_service_factory, redis_url
):
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    first, second = (job_service_factory(store=s, settings=LEASED) for s in stores)
    [running, done] = submit(local_armada, "replicated", {RUNTIME: "1h"}, {RUNTIME: "0"})
    local_armada.wait_for_state(done)
    local_armada.wait_for_state(running, states=[JobState.RUNNING])
    clients = [client_for(first), client_for(second)]
    for client in clients:
        eventually(lambda c=client: historic(c, *KEY, done)[0] == "SUCCEEDED")
        eventually(lambda c=client: historic(c, *KEY, running)[0] == "RUNNING")
    holders = [follower(s).holding for s in (first, second)]
    assert sorted(holders) == [False, True]
    opened = [follower(s).streams_opened for s in (first, second)]
    assert sorted(opened) == [0, 1]  # one stream for the job set, whichever replica
    local_armada.client().cancel_jobs(queue="default", job_set_id="replicated", job_id=running)
    for client in clients:  # the passive replica sees it through the store
        eventually(lambda c=client: historic(c, *KEY, running)[0] == "CANCELLED")
    assert local_armada.rpc_count("GetJobStatus") == 0
    # a replica stopped gracefully gives its leases up: the other takes over at once
    holder = first if holders[0] else second
    other = second if holder is first else first
    holder.stop()
    eventually(lambda: follower(other).holding, timeout=5)


@pytest.mark.local_armada(time_scale=20)
def test_a_killed_replicas_job_sets_are_taken_over_within_10_s(
    local_armada, job_service_factory, redis_url
):
    [running] = submit(local_armada, "replicated", {RUNTIME: "1h"})
    local_armada.wait_for_state(running, states=[JobState.RUNNING])
    command = [SCRIPT, "job-service", "--armada-target", local_armada.target]
    killed = subprocess.Popen(
        [*command, "--store", redis_url, "--lease-ttl", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert killed.stdout is not None
        match = SERVING.match(killed.stdout.readline().strip())
        assert match
        gone = JobServiceClient(open_channel(ChannelSpec(match.group(1))))
        eventually(lambda: historic(gone, *KEY, running)[0] == "RUNNING")  # it holds the lease
        store = RedisStore(redis_url)
        survivor = job_service_factory(
            store=store, settings=dataclasses.replace(FAST, lease_ttl=2.0)
        )
        client = client_for(survivor)
        assert historic(client, *KEY, running)[0] == "RUNNING"  # from the store
        assert not follower(survivor).holding
        assert follower(survivor).streams_opened == 0
        stored_id = store.job_set(KEY).last_message_id
        assert stored_id
    finally:
        killed.send_signal(signal.SIGKILL)  # no goodbye: its lease must expire
        killed.wait(timeout=10)
    killed_at = time.monotonic()
    local_armada.client().cancel_jobs(queue="default", job_set_id="replicated", job_id=running)
    eventually(lambda: historic(client, *KEY, running)[0] == "CANCELLED", timeout=10)
    assert time.monotonic() - killed_at < 10
    taken = follower(survivor)
    assert taken.holding
    assert taken.streams_opened == 1
    assert taken.opened_from[0] == stored_id  # resumed from the stored message id
    eventually(lambda: store.jobs(KEY)[running].state is JobState.CANCELLED)  # written
    assert local_armada.rpc_count("GetJobStatus") == 0
    store.close()


@pytest.mark.local_armada(time_scale=20)
def test_a_passive_replica_answers_connection_err_once_the_holders_stream_is_down_past_the_grace(
    local_armada, job_service_factory, redis_url
):
    settings = dataclasses.replace(LEASED, connection_grace=1.0)
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    services = [job_service_factory(store=s, settings=settings) for s in stores]
    [running, done] = submit(local_armada, "replicated", {RUNTIME: "1h"}, {RUNTIME: "0"})
    local_armada.wait_for_state(done)
    local_armada.wait_for_state(running, states=[JobState.RUNNING])
    clients = [client_for(s) for s in services]
    for client in clients:
        eventually(lambda c=client: historic(c, *KEY, done)[0] == "SUCCEEDED")
        eventually(lambda c=client: historic(c, *KEY, running)[0] == "RUNNING")
    holding = [follower(s).holding for s in services]
    assert sorted(holding) == [False, True]
    passive = services[holding.index(False)]
    client = clients[holding.index(False)]
    local_armada.faults.fail("GetJobSetEvents", grpc.StatusCode.UNAVAILABLE, times=10_000)
    local_armada.restart()  # the holder's stream ends; every reopen fails
    _state, error = eventually(
        lambda: (r := historic(client, *KEY, running))[0] == "CONNECTION_ERR" and r
    )
    assert "UNAVAILABLE" in error
    assert "on the replica that follows it" in error
    assert historic(client, *KEY, done)[0] == "SUCCEEDED"  # an ended job is answered as it is
    assert not follower(passive).holding  # still passive: it read the holder's word
    assert follower(passive).streams_opened == 0
    local_armada.faults.clear()  # the holder's stream works again, and the store says so
    eventually(lambda: historic(client, *KEY, running)[0] == "RUNNING")
