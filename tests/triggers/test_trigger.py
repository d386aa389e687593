"""ArmadaJobTrigger against the local Armada: real polling, one event, plain serialization."""

from __future__ import annotations

import asyncio
import importlib
import time

import pytest

from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item
from armada_hooks.triggers.armada import ArmadaJobTrigger

pytestmark = pytest.mark.local_armada(time_scale=20, token="trigger-secret-token")


def submit(armada, **annotations: str) -> str:
    item = job_request_item(annotations=annotations)
    return armada.client().submit_jobs("default", "set", [item]).job_response_items[0].job_id


async def first_event(trigger: ArmadaJobTrigger, timeout: float = 30.0) -> dict:
    async def run() -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("the trigger ended without an event")

    return await asyncio.wait_for(run(), timeout)


def rebuild(trigger: ArmadaJobTrigger) -> ArmadaJobTrigger:
    path, kwargs = trigger.serialize()
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)(**kwargs)


def test_serialize_is_plain_values_and_dict_equals_kwargs() -> None:
    trigger = ArmadaJobTrigger(
        "job-1", "my_conn", queue="q", job_set_id="s", poll_interval=5, submitted_at=1000.0
    )
    path, kwargs = trigger.serialize()
    assert path == "armada_hooks.triggers.armada.ArmadaJobTrigger"
    assert kwargs == {
        "job_id": "job-1",
        "armada_conn_id": "my_conn",
        "queue": "q",
        "job_set_id": "s",
        "poll_interval": 5.0,
        "acknowledgement_timeout": 300.0,
        "submitted_at": 1000.0,
        "fetch_logs": False,
        "target_states": [],
        "event_mode": None,
        "log_interval": None,
    }
    assert trigger.__dict__ == kwargs
    plain = str | float | bool | type(None)
    assert all(
        isinstance(v, plain) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
        for v in kwargs.values()
    )
    rebuilt = type(trigger)(**trigger.__dict__)  # how Flyte's connector rebuilds it
    assert rebuilt.serialize() == trigger.serialize()


def test_invalid_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="poll_interval must be > 0"):
        ArmadaJobTrigger("j", poll_interval=0)
    with pytest.raises(ValueError, match="acknowledgement_timeout"):
        ArmadaJobTrigger("j", acknowledgement_timeout=-1)
    with pytest.raises(KeyError):
        ArmadaJobTrigger("j", target_states=["RUNING"])


async def test_target_states_end_the_wait_early(local_armada, local_armada_connection) -> None:
    job_id = submit(local_armada, **{"armada-hooks/runtime": "1h"})
    payload = await first_event(
        ArmadaJobTrigger(job_id, poll_interval=0.1, target_states=["RUNNING"])
    )
    assert payload["state"] == "RUNNING"
    assert local_armada.job(job_id).state is JobState.RUNNING


async def test_an_ended_job_fires_at_the_first_poll(local_armada, local_armada_connection) -> None:
    job_id = submit(local_armada, **{"armada-hooks/runtime": "0"})
    local_armada.wait_for_state(job_id)
    local_armada.reset_rpc_counts()
    # An hour between polls: only an immediate first poll can answer within the timeout.
    payload = await first_event(ArmadaJobTrigger(job_id, poll_interval=3600), timeout=20)
    assert payload["state"] == "SUCCEEDED"
    assert payload["error"] is None
    assert payload["description"]["job_id"] == job_id
    assert local_armada.rpc_count("GetJobStatus") == 1


async def test_it_really_polls_until_the_job_ends(local_armada, local_armada_connection) -> None:
    job_id = submit(local_armada, **{"armada-hooks/runtime": "40s"})  # 2 real seconds
    local_armada.reset_rpc_counts()
    payload = await first_event(ArmadaJobTrigger(job_id, poll_interval=0.2))
    assert payload["state"] == "SUCCEEDED"
    polls = local_armada.rpc_count("GetJobStatus")
    assert 3 <= polls <= 2.6 / 0.2 + 5  # polled through the run, at about the interval


@pytest.mark.parametrize(
    ("annotations", "state", "reason"),
    [
        ({"armada-hooks/outcome": "failed", "armada-hooks/failure-reason": "OOM"}, "FAILED", "OOM"),
        ({"armada-hooks/outcome": "rejected"}, "REJECTED", "Rejected by the local Armada"),
        ({"armada-hooks/outcome": "preempted"}, "PREEMPTED", "Preempted by the local Armada"),
    ],
)
async def test_a_bad_ending_carries_state_and_reason(
    local_armada, local_armada_connection, annotations, state, reason
) -> None:
    job_id = submit(local_armada, **annotations)
    payload = await first_event(ArmadaJobTrigger(job_id, poll_interval=0.1))
    assert payload["state"] == state
    assert reason in payload["reason"]
    assert payload["error"] is None


async def test_a_lost_job_is_cancelled_and_reported(local_armada, local_armada_connection) -> None:
    job_id = submit(local_armada, **{"armada-hooks/lost": "true"})
    trigger = ArmadaJobTrigger(
        job_id, queue="default", job_set_id="set", poll_interval=0.1, acknowledgement_timeout=0.5
    )
    payload = await first_event(trigger)
    assert payload["error"]["type"] == "ArmadaJobLostError"
    assert payload["error"]["fatal"] is False
    assert "has been cancelled" in payload["error"]["message"]
    assert local_armada.job(job_id).state is JobState.CANCELLED


async def test_a_rebuilt_trigger_keeps_counting_from_the_submission(
    local_armada, local_armada_connection
) -> None:
    job_id = submit(local_armada, **{"armada-hooks/lost": "true"})
    original = ArmadaJobTrigger(
        job_id,
        queue="default",
        job_set_id="set",
        poll_interval=0.1,
        acknowledgement_timeout=60,
        submitted_at=time.time() - 120,
    )
    payload = await first_event(rebuild(original), timeout=10)
    assert payload["error"]["type"] == "ArmadaJobLostError"


async def test_a_rebuilt_trigger_waits_like_the_original(local_armada, local_armada_connection):
    job_id = submit(local_armada, **{"armada-hooks/outcome": "failed"})
    original = ArmadaJobTrigger(job_id, poll_interval=0.1)
    first, second = await first_event(original), await first_event(rebuild(original))
    assert first == second


async def test_refused_credentials_end_in_a_fatal_error_event(
    local_armada, local_armada_connection, monkeypatch
) -> None:
    job_id = submit(local_armada)
    wrong = local_armada.airflow_connection().replace("trigger-secret-token", "wrong-token")
    monkeypatch.setenv("AIRFLOW_CONN_ARMADA_DEFAULT", wrong)
    payload = await first_event(ArmadaJobTrigger(job_id, poll_interval=0.1))
    assert payload["error"]["type"] == "ArmadaAuthError"
    assert payload["error"]["fatal"] is True
    assert "wrong-token" not in str(payload)


async def test_on_kill_cancels_the_job(local_armada, local_armada_connection) -> None:
    job_id = submit(local_armada, **{"armada-hooks/runtime": "1h"})
    local_armada.wait_for_state(job_id, [JobState.RUNNING])
    await ArmadaJobTrigger(job_id, queue="default", job_set_id="set").on_kill()
    assert local_armada.job(job_id).state is JobState.CANCELLED


async def test_on_kill_without_queue_leaves_the_job_alone(local_armada, local_armada_connection):
    job_id = submit(local_armada, **{"armada-hooks/runtime": "1h"})
    local_armada.wait_for_state(job_id, [JobState.RUNNING])
    local_armada.reset_rpc_counts()
    await ArmadaJobTrigger(job_id).on_kill()
    assert local_armada.rpc_count("CancelJobs") == 0
    assert local_armada.job(job_id).state is JobState.RUNNING


async def test_logs_stream_into_the_trigger_log(local_armada, local_armada_connection, capfd):
    job_id = submit(local_armada, **{"armada-hooks/runtime": "20s", "armada-hooks/log-lines": "5"})
    payload = await first_event(ArmadaJobTrigger(job_id, poll_interval=0.1, fetch_logs=True))
    assert payload["state"] == "SUCCEEDED"
    out = capfd.readouterr().out
    lines = [f"[{job_id}] line {i} of 5" for i in range(1, 6)]
    positions = [out.index(line) for line in lines]
    assert positions == sorted(positions)
    assert all(out.count(line) == 1 for line in lines)
    assert "trigger-secret-token" not in out


async def test_log_streaming_triggers_share_the_loops_hook_and_leave_it_open(
    local_armada, local_armada_connection, monkeypatch, capfd
):
    from armada_hooks.hooks.armada import ArmadaHook

    built: list[ArmadaHook] = []
    init = ArmadaHook.__init__

    def counting_init(self: ArmadaHook, *args: object, **kwargs: object) -> None:
        built.append(self)
        init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ArmadaHook, "__init__", counting_init)
    logs = {"armada-hooks/runtime": "20s", "armada-hooks/log-lines": "3"}

    def streaming(job_id: str) -> ArmadaJobTrigger:
        return ArmadaJobTrigger(job_id, poll_interval=0.1, fetch_logs=True, log_interval=0.2)

    together = [submit(local_armada, **logs) for _ in range(3)]
    payloads = await asyncio.gather(*(first_event(streaming(j)) for j in together))
    after = submit(local_armada, **logs)  # the first waits are over: the hook still works
    payloads.append(await first_event(streaming(after)))

    assert [p["state"] for p in payloads] == ["SUCCEEDED"] * 4
    assert len(built) == 1  # the loop's shared hook: one connection lookup, one channel each
    out = capfd.readouterr().out
    for job_id in [*together, after]:
        assert all(out.count(f"[{job_id}] line {i} of 3") == 1 for i in (1, 2, 3)), job_id


async def test_each_triggers_log_lines_are_logged_in_that_triggers_own_context(
    local_armada, local_armada_connection
):
    # Airflow's triggerer sends a log record to a task's log by the context it is logged
    # in; the shared poller runs in the context of the trigger that started it, so a log
    # pump started from its callback would write every trigger's lines into that one log.
    import contextvars

    running = contextvars.ContextVar("running_trigger", default="")
    seen: list[tuple[str, str]] = []

    class Recorder:
        def _record(self, msg: object, *args: object, **kwargs: object) -> None:
            seen.append((running.get(), str(msg) % args if args else str(msg)))

        info = warning = debug = error = exception = _record

    class RecordedTrigger(ArmadaJobTrigger):
        @property
        def log(self) -> Recorder:  # type: ignore[override]
            return Recorder()

    logs = {"armada-hooks/runtime": "20s", "armada-hooks/log-lines": "3"}
    ids = [submit(local_armada, **logs) for _ in range(3)]

    async def run_as(job_id: str) -> dict:
        running.set(job_id)
        trigger = RecordedTrigger(job_id, poll_interval=0.1, fetch_logs=True, log_interval=0.2)
        return await first_event(trigger)

    payloads = await asyncio.gather(*(run_as(job_id) for job_id in ids))
    assert [p["state"] for p in payloads] == ["SUCCEEDED"] * 3
    container_lines = [(ctx, msg) for ctx, msg in seen if " line " in msg and " of 3" in msg]
    assert len(container_lines) == 9, seen
    for ctx, message in container_lines:
        assert f"[{ctx}] " in message, (ctx, message)
