"""A connection with ``job_service_target``: the hook, the synchronous wait, the shared
poller and the trigger get job statuses from the job service (Armada sees no
GetJobStatus); submit, cancel and descriptions still go to Armada."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pytest
from js_helpers import FAST, client_for, eventually, submit

from armada_hooks.errors import (
    ArmadaAuthError,
    ArmadaConnectionError,
    ArmadaJobFailedError,
    ArmadaJobRejectedError,
    ArmadaRpcError,
)
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.hooks.connection import ArmadaConnectionConfig
from armada_hooks.jobservice.protos import job_states_pb2
from armada_hooks.jobservice.status_client import (
    AsyncJobServiceStatusClient,
    JobServiceStatusClient,
)
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item
from armada_hooks.triggers.armada import ArmadaJobTrigger

pytestmark = pytest.mark.local_armada(time_scale=20)

CONN = "armada_js"
RUNTIME = "armada-hooks/runtime"
OUTCOME = "armada-hooks/outcome"


@pytest.fixture
def js_connection(local_armada, job_service, monkeypatch) -> str:
    """``armada_js``: the local Armada, with statuses from ``job_service``."""
    value = local_armada.airflow_connection(job_service_target=job_service.target)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", value)
    return CONN


def test_the_synchronous_wait_asks_the_job_service_and_armada_gets_no_status_call(
    local_armada, job_service, js_connection
):
    hook = ArmadaHook(js_connection)
    assert isinstance(hook.client, JobServiceStatusClient)
    items = [
        job_request_item(annotations={RUNTIME: "2s"}),
        job_request_item(annotations={RUNTIME: "0", OUTCOME: "failed"}),
        job_request_item(annotations={OUTCOME: "rejected"}),
    ]
    ok, failed, rejected = hook.submit_jobs("default", "sync-set", items)
    local_armada.reset_rpc_counts()
    assert hook.wait_for_job(ok, delay=0.1) is JobState.SUCCEEDED
    assert hook.poll_for_job_complete(failed, delay=0.1) is JobState.FAILED
    assert hook.get_job_status(rejected) is JobState.REJECTED  # kept apart from FAILED
    assert hook.check_job_success(ok) is True
    with pytest.raises(ArmadaJobFailedError):
        hook.check_job_success(failed)
    with pytest.raises(ArmadaJobRejectedError):
        hook.check_job_success(rejected)
    counts = local_armada.rpc_counts()
    assert counts.get("GetJobStatus", 0) == 0
    # the job service's one stream of the set, and its one permission check of the caller
    assert counts.get("GetJobSetEvents") == 1 + 1
    assert counts.get("GetJobDetails", 0) >= 1  # descriptions still come from Armada
    # the hook named the jobs it submitted by queue and job set: no lookup was needed
    assert job_service.call(lambda core: core.lookups.calls) == 0
    hook.close()


def test_ids_named_alone_are_looked_up_once_for_every_process(
    local_armada, job_service, js_connection
):
    ids = submit(local_armada, "alone", *[{RUNTIME: "0"}] * 4)  # not through the hook
    for job_id in ids:
        local_armada.wait_for_state(job_id)
    local_armada.reset_rpc_counts()
    first, second = ArmadaHook(js_connection), ArmadaHook(js_connection)  # two "processes"
    assert first.get_job_statuses([*ids, "ghost"]) == {
        **dict.fromkeys(ids, JobState.SUCCEEDED),
        "ghost": JobState.UNKNOWN,
    }
    assert local_armada.rpc_count("GetJobDetails") == 1  # five ids, one batched lookup
    assert second.get_job_statuses(ids) == dict.fromkeys(ids, JobState.SUCCEEDED)
    assert first.get_job_statuses(ids) == dict.fromkeys(ids, JobState.SUCCEEDED)
    assert local_armada.rpc_count("GetJobDetails") == 1  # remembered by the service
    assert local_armada.rpc_count("GetJobStatus") == 0
    assert local_armada.rpc_count("GetJobSetEvents") == 1 + 1  # the stream, the check
    first.close()
    second.close()


async def test_the_shared_poller_and_the_trigger_use_the_job_service(
    local_armada, job_service, js_connection
):
    ids = submit(local_armada, "deferred", *[{RUNTIME: "1s"}] * 15, *[{OUTCOME: "failed"}] * 5)
    local_armada.reset_rpc_counts()

    async def first_event(trigger: ArmadaJobTrigger) -> dict:
        async for event in trigger.run():
            return event.payload
        raise AssertionError("no event")

    triggers = [ArmadaJobTrigger(job_id, js_connection, poll_interval=0.2) for job_id in ids]
    payloads = await asyncio.wait_for(asyncio.gather(*map(first_event, triggers)), timeout=60)
    assert [p["state"] for p in payloads] == ["SUCCEEDED"] * 15 + ["FAILED"] * 5
    assert all(p["description"]["job_id"] == j for p, j in zip(payloads, ids, strict=True))
    counts = local_armada.rpc_counts()
    assert counts.get("GetJobStatus", 0) == 0
    assert counts.get("GetJobSetEvents") == 1 + 1  # the stream, the permission check
    hook = ArmadaHook(js_connection)
    assert isinstance(hook.async_client, AsyncJobServiceStatusClient)
    assert await hook.aget_job_statuses(ids[:2]) == dict.fromkeys(ids[:2], JobState.SUCCEEDED)
    await hook.aclose()


def test_a_state_the_job_service_cannot_vouch_for_is_retried_then_an_error(
    local_armada, job_service_factory, monkeypatch
):
    service = job_service_factory(settings=dataclasses.replace(FAST, connection_grace=0.3))
    [running, done] = submit(local_armada, "stale", {RUNTIME: "1h"}, {RUNTIME: "0"})
    local_armada.wait_for_state(done)
    local_armada.wait_for_state(running, states=[JobState.RUNNING])
    value = local_armada.airflow_connection(job_service_target=service.target)
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", value)
    hook = ArmadaHook(CONN, status_retries=1, retry_wait_min=0.05, retry_wait_max=0.1)
    assert hook.get_job_statuses([running, done]) == {
        running: JobState.RUNNING,
        done: JobState.SUCCEEDED,
    }
    local_armada.stop()  # the job set's stream goes down for longer than the grace
    try:
        stale_answer = job_states_pb2.STALE
        asker = client_for(service)
        eventually(
            lambda: asker.get_job_states([("default", "stale", running)]).answers[0].certainty
            == stale_answer
        )
        with pytest.raises(ArmadaRpcError) as stale:
            hook.get_job_status(running)  # retried once (status_retries=1), then an error
        assert stale.value.code == "UNAVAILABLE"
        assert f"cannot vouch for job {running}" in stale.value.message
        assert hook.get_job_status(done) is JobState.SUCCEEDED  # an ended job stays answered
    finally:
        local_armada.start()
    hook.close()


@pytest.mark.local_armada(token="the-token")
def test_a_wrong_token_is_refused_by_the_job_service_with_a_typed_error(
    local_armada, job_service, monkeypatch
):
    [job_id] = submit(local_armada, "guarded", {RUNTIME: "1h"})
    conn = json.loads(local_armada.airflow_connection(job_service_target=job_service.target))
    assert conn["password"] == "the-token"
    conn["password"] = "wrong"  # a wrong token, on purpose
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(conn))
    hook = ArmadaHook(CONN, status_retries=0)
    with pytest.raises(ArmadaAuthError, match="PERMISSION_DENIED"):
        hook.get_job_status(job_id)
    hook.close()


def test_the_extra_is_parsed_and_checked(monkeypatch):
    def config(**extra: object) -> ArmadaConnectionConfig:
        conn = {"conn_type": "armada", "host": "armada", "port": 50051, "extra": extra}
        monkeypatch.setenv("AIRFLOW_CONN_JS_EXTRA", json.dumps(conn))
        return ArmadaConnectionConfig.from_connection(ArmadaHook.get_connection("js_extra"))

    assert config().job_service_spec() is None
    spec = config(job_service_target=" js:60003 ", tls=True).job_service_spec()
    assert spec is not None
    assert (spec.target, spec.tls) == ("js:60003", True)
    assert config(extra__armada__job_service_target="js:1").job_service_target == "js:1"
    with pytest.raises(ArmadaConnectionError, match="job_service_target 'http://js:1' must be"):
        config(job_service_target="http://js:1")
