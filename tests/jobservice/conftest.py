"""Fixtures of the job service's tests: a job service in front of the local Armada."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from js_helpers import FAST
from redis_helpers import RedisServer

from armada_hooks.channels import ChannelSpec, open_channel
from armada_hooks.jobservice.client import JobServiceClient
from armada_hooks.jobservice.server import JobServiceServer
from armada_hooks.testing import LocalArmada


@pytest.fixture
def job_service_factory(local_armada: LocalArmada) -> Iterator[Callable[..., JobServiceServer]]:
    """``job_service_factory(**server_kwargs)``: a started job service for the local Armada."""
    started: list[JobServiceServer] = []

    def start(**kwargs: Any) -> JobServiceServer:
        kwargs.setdefault("settings", FAST)
        server = JobServiceServer(local_armada.channel_spec(), **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def job_service(job_service_factory: Callable[..., JobServiceServer]) -> JobServiceServer:
    """A started job service (in-memory store, quick timings) for the local Armada."""
    return job_service_factory()


@pytest.fixture
def js_client(job_service: JobServiceServer) -> Iterator[JobServiceClient]:
    """A client of :func:`job_service`."""
    channel = open_channel(ChannelSpec(job_service.target))
    yield JobServiceClient(channel)
    channel.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session (127.0.0.1, a free port), emptied by each user."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, empty, as ``redis://127.0.0.1:PORT/0``."""
    redis_server.flush()
    return redis_server.url
