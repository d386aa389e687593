"""Helpers of the job service's tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from armada_hooks.channels import ChannelSpec, open_channel
from armada_hooks.jobservice.client import JobServiceClient
from armada_hooks.jobservice.historic import job_state_from_pb
from armada_hooks.jobservice.server import JobServiceServer
from armada_hooks.jobservice.settings import JobServiceSettings
from armada_hooks.testing import LocalArmada, job_request_item

# Quick timings for tests; each test that needs another changes only what it needs.
FAST = JobServiceSettings(
    catch_up_quiet=0.2,
    empty_replay_wait=0.5,
    first_answer_wait=2.0,
    stream_ok_after=0.3,
    sweep_interval=0.1,
    health_interval=0.2,
    reconnect_wait_max=0.3,
    rpc_timeout=5.0,
)


def client_for(server: JobServiceServer) -> JobServiceClient:
    """A client of ``server`` (its channel closes when collected)."""
    return JobServiceClient(open_channel(ChannelSpec(server.target)))


def historic(client: JobServiceClient, queue: str, job_set: str, job_id: str) -> tuple[str, str]:
    """(historic state name, error) of one job."""
    response = client.get_job_status(queue, job_set, job_id)
    return job_state_from_pb(response.state).name, response.error


def submit(armada: LocalArmada, job_set: str, *annotations: dict[str, str]) -> list[str]:
    """Submit one job per annotations dict to queue ``default``; their ids."""
    client = armada.client()
    items = [job_request_item(annotations=a) for a in annotations]
    return [r.job_id for r in client.submit_jobs("default", job_set, items).job_response_items]


def eventually(check: Callable[[], Any], timeout: float = 10.0, every: float = 0.05) -> Any:
    """Call ``check`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"still {result!r} after {timeout}s")
        time.sleep(every)
