"""Helpers the local Armada's tests share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from armada_client.armada import event_pb2

if TYPE_CHECKING:
    from collections.abc import Callable

    from armada_hooks.testing import LocalArmada


@pytest.fixture
def job_events(local_armada: LocalArmada) -> Callable[..., list[tuple[str, Any]]]:
    """``job_events(job_id, job_set, queue="default")``: (kind, event) of one job, in order.

    Read over gRPC with GetJobSetEvents, without watching.
    """
    client = local_armada.client()

    def read(job_id: str, job_set: str, queue: str = "default") -> list[tuple[str, Any]]:
        stream = client.event_stub.GetJobSetEvents(event_pb2.JobSetRequest(id=job_set, queue=queue))
        found = []
        for message in stream:
            kind = message.message.WhichOneof("events")
            event = getattr(message.message, kind)
            if event.job_id == job_id:
                found.append((kind, event))
        return found

    return read
