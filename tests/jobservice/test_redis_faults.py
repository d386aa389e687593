"""The job service on Redis: Redis restarted mid-stream loses no state and applies none
twice; two services share one Redis and answer alike."""

from __future__ import annotations

import pytest
from armada_client.armada import event_pb2
from js_helpers import client_for, eventually, historic, submit

from armada_hooks.jobservice.redis_store import RedisStore
from armada_hooks.states import JobState

RUNTIME = "armada-hooks/runtime"
KEY = ("default", "redis-set")


@pytest.mark.local_armada(time_scale=20)
def test_redis_restarted_mid_stream_loses_nothing(
    local_armada, job_service_factory, redis_server, redis_url
):
    store = RedisStore(redis_url)
    service = job_service_factory(store=store)
    client = client_for(service)
    early = submit(local_armada, "redis-set", *[{RUNTIME: "0"}] * 3)
    late = submit(local_armada, "redis-set", *[{RUNTIME: "30s"}] * 3)  # end during the outage
    for job_id in early:
        eventually(lambda j=job_id: historic(client, *KEY, j)[0] == "SUCCEEDED")
    assert local_armada.job(late[0]).state is not JobState.SUCCEEDED
    redis_server.stop()
    try:
        # the late jobs' events arrive, the store refuses them: kept, retried
        eventually(lambda: service.call(lambda core: core.followers[KEY].store_down))
        for job_id in late:  # answered from memory while Redis is down
            local_armada.wait_for_state(job_id)
            eventually(lambda j=job_id: historic(client, *KEY, j)[0] == "SUCCEEDED")
    finally:
        redis_server.start()
    ids = early + late
    # what was applied during the outage is written once Redis is back, with its message id
    eventually(lambda: {r.state for r in store.jobs(KEY).values()} == {JobState.SUCCEEDED})
    assert set(store.jobs(KEY)) == set(ids)
    stub = local_armada.client().event_stub
    messages = list(stub.GetJobSetEvents(event_pb2.JobSetRequest(queue=KEY[0], id=KEY[1])))
    eventually(lambda: store.job_set(KEY).last_message_id == messages[-1].id)
    follower = service.call(lambda core: core.followers[KEY])
    assert follower.messages == len(messages)  # each applied once, none missed
    assert follower.streams_opened == 1  # the stream itself never dropped
    service.stop()
    store.close()


def test_two_services_on_one_redis_answer_alike(local_armada, job_service_factory, redis_url):
    ids = submit(local_armada, "shared", {RUNTIME: "0"}, {"armada-hooks/outcome": "rejected"})
    for job_id in ids:
        local_armada.wait_for_state(job_id)
    stores = [RedisStore(redis_url), RedisStore(redis_url)]
    services = [job_service_factory(store=s) for s in stores]
    answers = [
        [historic(client_for(s), "default", "shared", j)[0] for j in ids] for s in services
    ]
    assert answers == [["SUCCEEDED", "FAILED"]] * 2
    assert {r.state for r in stores[0].jobs(("default", "shared")).values()} == {
        JobState.SUCCEEDED,
        JobState.REJECTED,
    }
    for service in services:
        service.stop()
    for store in stores:
        store.close()
