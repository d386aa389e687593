"""The shared status poller: many waiting triggers, few status RPCs, each its own event."""

from __future__ import annotations

import asyncio
import math

import grpc
import pytest

from armada_hooks.testing import job_request_item
from armada_hooks.triggers.armada import ArmadaJobTrigger
from armada_hooks.triggers.poller import (
    EARLY,
    JITTER,
    JITTER_CAP,
    StatusPoller,
    next_on_grid,
    pause_before,
)

pytestmark = pytest.mark.local_armada(time_scale=20)


def submit_many(armada, n: int, **annotations: str) -> list[str]:
    client, ids = armada.client(), []
    for start in range(0, n, 500):
        items = [job_request_item(annotations=annotations) for _ in range(min(500, n - start))]
        ids += [r.job_id for r in client.submit_jobs("default", "set", items).job_response_items]
    return ids


async def first_event(trigger: ArmadaJobTrigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("no event")


async def test_1200_triggers_each_get_their_own_jobs_event_from_few_rpcs(
    local_armada, local_armada_connection
):
    failing = set(submit_many(local_armada, 200, **{"armada-hooks/outcome": "failed"}))
    ids = submit_many(local_armada, 1000, **{"armada-hooks/runtime": "20s"}) + sorted(failing)
    local_armada.reset_rpc_counts()
    loop = asyncio.get_running_loop()
    started = loop.time()
    interval = 0.5
    payloads = await asyncio.wait_for(
        asyncio.gather(*(first_event(ArmadaJobTrigger(i, poll_interval=interval)) for i in ids)),
        timeout=120,
    )
    elapsed = loop.time() - started
    assert [p["job_id"] for p in payloads] == ids
    assert [p["description"]["job_id"] for p in payloads] == ids
    assert all(p["error"] is None for p in payloads)
    assert {p["job_id"] for p in payloads if p["state"] == "FAILED"} == failing
    assert all(p["state"] == "SUCCEEDED" for p in payloads if p["job_id"] not in failing)
    # Batched: at most ceil(N/500) RPCs per tick and a tick every (1 - EARLY) interval at
    # the most, plus start-up ticks while 1,200 triggers join; per-job polling would need
    # N per interval (thousands here).
    chunks = math.ceil(len(ids) / 500)
    ticks = elapsed / (interval * (1 - EARLY)) + 20
    polls = local_armada.rpc_count("GetJobStatus")
    assert polls <= chunks * ticks
    assert polls < len(ids) * elapsed / interval / 20
    # The jobs a tick finds ended are described together: one GetJobDetails per tick's
    # batch (and one GetJobErrors for its failed jobs), not one per trigger.
    assert local_armada.rpc_count("GetJobDetails") <= polls + 10
    assert local_armada.rpc_count("GetJobErrors") <= polls + 10
    assert local_armada.rpc_count("GetJobDetails") < len(ids) / 10
    assert StatusPoller.for_connection("armada_default").waiting == 0


async def test_each_trigger_keeps_its_own_interval(local_armada, local_armada_connection):
    fast, slow = submit_many(local_armada, 2, **{"armada-hooks/runtime": "1h"})
    poller = StatusPoller.for_connection("armada_default")
    seen: dict[str, int] = {fast: 0, slow: 0}

    def counting(job_id):
        def done(state):
            seen[job_id] += 1
            return False

        return done

    waits = [
        asyncio.ensure_future(poller.wait(fast, 0.1, counting(fast))),
        asyncio.ensure_future(poller.wait(slow, 60, counting(slow))),
    ]
    await asyncio.sleep(2)
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    assert seen[fast] >= 10
    assert seen[slow] == 1  # polled once at start, not every tick of the fast one
    assert poller.waiting == 0  # cancelled waits leave the set


async def test_triggers_joining_one_by_one_share_one_status_rpc_per_interval(
    local_armada, local_armada_connection
):
    # Tasks defer one after another (a real triggerer picks them up over minutes): each
    # joins at its own moment, yet once all have joined they are polled on one grid.
    ids = submit_many(local_armada, 20, **{"armada-hooks/runtime": "1h"})
    poller = StatusPoller.for_connection("armada_default")
    interval = 0.5
    waits = []
    for job_id in ids:  # 20 arrivals 0.05 s apart: phases spread over two intervals
        waits.append(asyncio.ensure_future(poller.wait(job_id, interval, lambda state: False)))
        await asyncio.sleep(0.05)
    await asyncio.sleep(interval + JITTER_CAP)
    before = local_armada.rpc_count("GetJobStatus")
    await asyncio.sleep(4 * interval)
    polls = local_armada.rpc_count("GetJobStatus") - before
    for wait in waits:
        wait.cancel()
    await asyncio.gather(*waits, return_exceptions=True)
    assert 3 <= polls <= 5  # one tick per interval (4, give or take the window's edges)


def test_a_grid_tick_is_never_more_than_one_interval_away():
    anchor, interval = 100.0, 2.0
    for now in (100.0, 100.01, 101.0, 101.99, 102.0, 102.3, 157.77):
        tick = next_on_grid(anchor, interval, now)
        assert now < tick <= now + interval
        assert math.isclose((tick - anchor) / interval, round((tick - anchor) / interval))
    # A tick that came a little late keeps the grid: the next one is one interval on.
    assert next_on_grid(anchor, interval, 102.3) == 104.0


async def test_one_failure_is_retried_once_for_the_whole_batch(
    local_armada, local_armada_connection
):
    ids = submit_many(local_armada, 50, **{"armada-hooks/runtime": "0"})
    for job_id in ids:
        local_armada.wait_for_state(job_id)
    local_armada.reset_rpc_counts()
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=1)
    poller = StatusPoller.for_connection("armada_default")
    payloads = await asyncio.gather(
        *(first_event(ArmadaJobTrigger(i, poll_interval=30)) for i in ids)
    )
    assert all(p["state"] == "SUCCEEDED" for p in payloads)
    # The injected failure cost one retry of its batch, not one per trigger: every batch
    # sent one GetJobStatus, plus one retry. 50 triggers starting together share a batch
    # or two (two when a loaded machine spreads their start past the first-poll window).
    assert 1 <= poller.ticks <= 2
    assert local_armada.rpc_count("GetJobStatus") == poller.ticks + 1


async def test_a_persistent_error_reaches_every_trigger_of_the_batch(
    local_armada, local_armada_connection
):
    ids = submit_many(local_armada, 5)
    local_armada.reset_rpc_counts()
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.PERMISSION_DENIED, times=100)
    payloads = await asyncio.gather(
        *(first_event(ArmadaJobTrigger(i, poll_interval=30)) for i in ids)
    )
    assert {p["error"]["type"] for p in payloads} == {"ArmadaAuthError"}
    assert all(p["error"]["fatal"] for p in payloads)
    assert local_armada.rpc_count("GetJobStatus") == 1  # fatal: not retried, one for all


async def test_a_failing_description_batch_reaches_every_trigger_waiting_on_it(
    local_armada, local_armada_connection
):
    ids = submit_many(local_armada, 20, **{"armada-hooks/runtime": "0"})
    for job_id in ids:
        local_armada.wait_for_state(job_id)
    local_armada.reset_rpc_counts()
    local_armada.faults.fail("GetJobDetails", grpc.StatusCode.PERMISSION_DENIED, times=100)
    payloads = await asyncio.gather(
        *(first_event(ArmadaJobTrigger(i, poll_interval=30)) for i in ids)
    )
    assert [p["job_id"] for p in payloads] == ids
    assert {p["error"]["type"] for p in payloads} == {"ArmadaAuthError"}
    # One batch asked (fatal, so not retried) for all 20: one or two, as polls batch.
    assert 1 <= local_armada.rpc_count("GetJobDetails") <= 2


def test_the_pause_between_ticks_is_never_early_and_at_most_half_a_second_late():
    for due_in in (0.0, 0.2, 3.0, 30.0, 600.0):
        pauses = [pause_before(due_in) for _ in range(2000)]
        late = min(JITTER * due_in, JITTER_CAP)
        assert all(due_in <= p <= due_in + late for p in pauses)
        if due_in:
            assert max(pauses) > due_in + late * 0.9  # the jitter is there, up to its bound
    assert pause_before(-1.0) == 0.0  # overdue: tick now
