"""A streaming trigger rebuilt after its triggerer died resumes the log from its stored position.

The triggerer's store is the task instance's XCom (``LogPositions.of_task``), which needs a
real triggerer: the real-stack scenario 6 covers it. Here the store is a dict, and the
crash is the trigger's task cancelled mid-stream, with no clean-up of ours running after.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import pytest

from armada_hooks._compat import capture_log_events
from armada_hooks.hooks.logs import LogPosition
from armada_hooks.testing import job_request_item
from armada_hooks.triggers.armada import ArmadaJobTrigger
from armada_hooks.triggers.log_positions import LogPositions

pytestmark = pytest.mark.local_armada(time_scale=20)

LINES = 80  # a line every 50 ms: the log grows while the first trigger streams it
CODE = (
    "import time\n"
    f"for i in range({LINES}):\n"
    "    print(f'container line {i + 1}', flush=True)\n"
    "    time.sleep(0.05)\n"
)
RESUMED = "resumes after a triggerer restart"
END = "that may repeat; each line from here on appears once"


class Collected:
    """The trigger log's messages, formatted, in order."""

    def __init__(self, events: list) -> None:
        self.events = events

    @property
    def messages(self) -> list[str]:
        out = []
        for event in list(self.events):
            text, args = str(event["event"]), event.get("positional_args")
            out.append(text % tuple(args) if args else text)
        return out


STORE: dict[str, Any] = {}  # the "XCom table" of the tests' task instances


class StoredTrigger(ArmadaJobTrigger):
    """The trigger with a dict for its task instance's XCom, storing at most every 0.3 s."""

    def _log_positions(self) -> LogPositions | None:
        async def load() -> Any:
            return STORE.get(self.job_id)

        async def store(value: Any) -> None:
            STORE[self.job_id] = value

        return LogPositions(self.job_id, self.log, load, store, interval=0.3)


@pytest.fixture
def collected():
    with capture_log_events() as events:
        yield Collected(events)
    STORE.clear()


def submit(armada) -> str:
    item = job_request_item(
        [sys.executable, "-c", CODE], annotations={"armada-hooks/execution": "subprocess"}
    )
    return armada.client().submit_jobs("default", "set", [item]).job_response_items[0].job_id


async def run_to_end(trigger: ArmadaJobTrigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise AssertionError("the trigger ended without an event")


async def until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def container_lines(messages: list[str]) -> list[str]:
    return [m for m in messages if m.startswith("container line")]


async def test_a_rebuilt_trigger_logs_every_line_once_outside_one_marked_window(
    local_armada, local_armada_connection, collected
):
    job_id = submit(local_armada)
    first = StoredTrigger(job_id, poll_interval=0.1, fetch_logs=True, log_interval=0.1)
    run = asyncio.ensure_future(run_to_end(first))
    # Crash once a position past the first lines is stored and more lines were logged since.
    await until(
        lambda: (
            STORE.get(job_id, {}).get("lines", 0) >= 5
            and len(container_lines(collected.messages)) >= STORE[job_id]["lines"] + 3
        )
    )
    run.cancel()  # the triggerer is gone: the trigger stores nothing more
    with pytest.raises(asyncio.CancelledError):
        await run
    stored = LogPosition.from_dict(STORE[job_id])
    before = list(collected.messages)
    logged = container_lines(before)
    assert logged == [f"container line {i}" for i in range(1, len(logged) + 1)]
    assert len(logged) > stored.lines  # the old trigger logged lines after its last store

    rebuilt = StoredTrigger(**first.serialize()[1])
    assert (await asyncio.wait_for(run_to_end(rebuilt), 60))["state"] == "SUCCEEDED"

    after = collected.messages[len(before) :]
    mark = next(i for i, m in enumerate(after) if RESUMED in m)
    end = next(i for i, m in enumerate(after) if END in m)
    window = after[mark + 1 : end]
    assert after[:mark] == []  # the rebuilt trigger said it resumed before any line
    first_repeat = stored.lines + 1
    assert window == [
        f"container line {i}" for i in range(first_repeat, first_repeat + len(window))
    ]
    assert f"lines {first_repeat} to {first_repeat + len(window) - 1} below" in after[mark]
    # Every line: once before the crash up to the stored position, then the marked window
    # (which holds every line the old trigger may have logged after it), then once each.
    expected = [f"container line {i}" for i in range(1, LINES + 1)]
    assert container_lines(before)[: stored.lines] + window + after[end + 1 :] == expected
    assert set(container_lines(before)[stored.lines :]) <= set(window)


async def test_the_first_trigger_stores_a_start_so_a_rebuilt_one_marks_even_its_first_lines(
    local_armada, local_armada_connection, collected
):
    job_id = submit(local_armada)
    positions = StoredTrigger(job_id)._log_positions()
    assert positions is not None
    assert await positions.start() is None  # nothing stored: a first trigger
    assert STORE[job_id] == {"job_id": job_id, "lines": 0, "since": "", "at_since": 0}
    # the old trigger died then, and may have logged what the job has written by now
    await until(lambda: len(local_armada.job(job_id).log_lines) >= 5)
    rebuilt = StoredTrigger(job_id, poll_interval=0.1, fetch_logs=True, log_interval=0.1)
    assert (await asyncio.wait_for(run_to_end(rebuilt), 60))["state"] == "SUCCEEDED"
    mark = next(m for m in collected.messages if RESUMED in m)
    assert "from its first line: lines 1 to" in mark
    assert container_lines(collected.messages) == [
        f"container line {i}" for i in range(1, LINES + 1)
    ]


def test_a_trigger_without_a_task_instance_stores_nothing():
    # dag.test() and Flyte's connector run triggers with no task instance: no triggerer
    # rebuilds them, so there is no position to keep and no XCom to write.
    assert ArmadaJobTrigger("job-1", fetch_logs=True)._log_positions() is None


# -- LogPositions: the cadence and the failures -------------------------------------


class Store:
    def __init__(self, value: Any = None, fail: Exception | None = None) -> None:
        self.value, self.fail, self.writes = value, fail, 0

    async def load(self) -> Any:
        if self.fail:
            raise self.fail
        return self.value

    async def store(self, value: Any) -> None:
        if self.fail:
            raise self.fail
        self.value, self.writes = value, self.writes + 1


def at(lines: int) -> LogPosition:
    return LogPosition(lines, f"2026-01-01T00:00:{lines:02d}.000000000Z", 1)


async def test_positions_are_stored_at_once_past_the_start_then_at_most_every_interval(collected):
    store = Store()
    positions = LogPositions("job-1", ArmadaJobTrigger("job-1").log, store.load, store.store, 0.5)
    assert await positions.start() is None
    assert store.writes == 1  # the start, so that a rebuilt trigger knows it is one
    await positions.save(LogPosition())  # nothing logged yet: nothing to store
    await positions.save(at(3))
    assert store.value == {"job_id": "job-1", **at(3).to_dict()}  # the first lines: at once
    await positions.save(at(4))
    await positions.save(at(5))
    assert (store.writes, store.value["lines"]) == (2, 3)  # not within the interval
    await asyncio.sleep(0.55)
    await positions.save(at(5))
    await positions.save(at(5))  # unchanged: not stored again
    assert (store.writes, store.value["lines"]) == (3, 5)
    again = LogPositions("job-1", ArmadaJobTrigger("job-1").log, store.load, store.store)
    assert await again.start() == at(5)
    assert store.writes == 3  # a rebuilt trigger reads; it stores nothing yet


@pytest.mark.parametrize(
    "value",
    [
        {"job_id": "job-1"},  # what the operator leaves before it defers
        {"job_id": "another-job", **at(5).to_dict()},
        {"job_id": "job-1", "lines": "x"},
        7,
    ],
)
async def test_a_stored_value_that_is_not_this_jobs_position_is_not_resumed_from(value, collected):
    store = Store(value)
    positions = LogPositions("job-1", ArmadaJobTrigger("job-1").log, store.load, store.store)
    assert await positions.start() is None
    assert store.value == {"job_id": "job-1", **LogPosition().to_dict()}


async def test_a_failing_store_is_warned_about_once_and_never_fails_the_wait(collected):
    store = Store(fail=ConnectionError("supervisor gone"))
    positions = LogPositions("job-1", ArmadaJobTrigger("job-1").log, store.load, store.store, 0)
    assert await positions.start() is None
    for n in (1, 2, 3):
        await positions.save(at(n))
    warnings = [m for m in collected.messages if "log position" in m]
    assert warnings == [
        "Could not read the stored log position of Armada job job-1 (ConnectionError: "
        "supervisor gone); if a triggerer restarted, lines logged before it may repeat",
        "Could not store the log position of Armada job job-1 (ConnectionError: supervisor "
        "gone); if the triggerer restarts, lines may repeat from the last stored position",
    ]
    assert positions.stores == 0
