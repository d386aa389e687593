"""The clients and searches Armada's old operator documented, against our job service."""

from __future__ import annotations

import grpc.aio
import pytest
from js_helpers import submit

from armada_hooks.errors import ArmadaJobServiceConfigError
from armada_hooks.jobservice.client import JobServiceAsyncIOClient
from armada_hooks.jobservice.historic import JobState
from armada_hooks.jobservice.protos import jobservice_pb2
from armada_hooks.jobservice.search import (
    TIME_OUT_ENV,
    search_for_job_complete,
    search_for_job_complete_async,
)
from armada_hooks.states import JobState as ArmadaState

RUNTIME = "armada-hooks/runtime"


@pytest.mark.local_armada(time_scale=20)
def test_search_for_job_complete_returns_the_end_and_its_message(local_armada, js_client):
    [ok, bad] = submit(
        local_armada,
        "search",
        {RUNTIME: "2s"},
        {RUNTIME: "0", "armada-hooks/outcome": "failed", "armada-hooks/failure-reason": "oom"},
    )
    state, message = search_for_job_complete(
        armada_queue="default",
        job_set_id="search",
        airflow_task_name="task",
        job_id=ok,
        job_service_client=js_client,
        poll_interval=0.05,
    )
    assert (state, message) == (JobState.SUCCEEDED, f"Armada task:{ok} succeeded")
    state, message = search_for_job_complete("default", "search", "task", bad, js_client)
    assert state is JobState.FAILED
    assert message.endswith("failed with reason oom")


def test_job_id_not_found_is_tolerated_for_time_out_for_failure(local_armada, js_client):
    state, message = search_for_job_complete(
        "default", "empty", "t", "ghost", js_client, time_out_for_failure=0.3, poll_interval=0.05
    )
    assert state is JobState.JOB_ID_NOT_FOUND
    assert "hit a timeout" in message


def test_a_test_callable_replaces_the_client_and_the_env_overrides_the_timeout(monkeypatch):
    answers = iter([jobservice_pb2.JobServiceResponse.CONNECTION_ERR] + [6] * 1000)
    calls = []

    def status(**kwargs):
        calls.append(kwargs)
        return jobservice_pb2.JobServiceResponse(state=next(answers))

    monkeypatch.setenv(TIME_OUT_ENV, "0")
    state, _ = search_for_job_complete(
        "q", "s", "t", "j", job_status_callable=status, poll_interval=0
    )
    assert state is JobState.JOB_ID_NOT_FOUND
    assert calls[0] == {"armada_queue": "q", "job_id": "j", "job_set_id": "s"}
    assert len(calls) == 2  # CONNECTION_ERR polled again; the first NOT_FOUND ended it
    monkeypatch.setenv(TIME_OUT_ENV, "soon")
    with pytest.raises(ArmadaJobServiceConfigError, match="not a number"):
        search_for_job_complete("q", "s", "t", "j", job_status_callable=status)
    monkeypatch.delenv(TIME_OUT_ENV)
    with pytest.raises(ArmadaJobServiceConfigError, match="job_service_client"):
        search_for_job_complete("q", "s", "t", "j")


@pytest.mark.local_armada(time_scale=20)
async def test_the_asyncio_client_and_search(local_armada, job_service):
    [job_id] = submit(local_armada, "async", {RUNTIME: "1s"})
    channel = grpc.aio.insecure_channel(job_service.target)
    try:
        client = JobServiceAsyncIOClient(channel)
        assert (await client.health()).status == jobservice_pb2.HealthCheckResponse.SERVING
        state, _message = await search_for_job_complete_async(
            "default", "async", "task", job_id, client, poll_interval=0.05
        )
        assert state is JobState.SUCCEEDED
        [answer] = (await client.get_job_states([("default", "async", job_id)])).answers
        assert ArmadaState(answer.state) is ArmadaState.SUCCEEDED
    finally:
        await channel.close()
