"""Submit responses Armada's server never sends but its API allows: the hook must not trust them.

Armada fills ``JobSubmitResponseItem.error`` in no version we know of, so the local Armada
cannot produce it; a thin client that forwards everything to a real ``ArmadaClient`` but
rewrites the submit response stands in for such a server (a narrow, documented double).
"""

from __future__ import annotations

from typing import Any

import pytest
from armada_client.armada import submit_pb2

from armada_hooks._compat import AirflowFailException
from armada_hooks.errors import ArmadaJobSpecError, ArmadaRpcError
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.protocols import ArmadaProtocol
from armada_hooks.testing import job_request_item


class RewritingClient:
    """Forwards to a real client; ``rewrite`` edits each SubmitJobs response."""

    def __init__(self, real: Any, rewrite: Any) -> None:
        self._real = real
        self._rewrite = rewrite

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def submit_jobs(self, queue: str, job_set_id: str, job_request_items: Any) -> Any:
        response = self._real.submit_jobs(queue, job_set_id, job_request_items)
        return self._rewrite(response)


def with_item_error(response: submit_pb2.JobSubmitResponse) -> submit_pb2.JobSubmitResponse:
    response.job_response_items[1].error = "gpu quota exceeded for queue default"
    return response


def missing_an_id(response: submit_pb2.JobSubmitResponse) -> submit_pb2.JobSubmitResponse:
    del response.job_response_items[-1]
    return response


def test_a_per_item_error_fails_the_submit_naming_the_item(local_armada):
    client = RewritingClient(local_armada.client(), with_item_error)
    assert isinstance(client, ArmadaProtocol)  # structurally a client, via forwarding
    hook = ArmadaHook(client=client)  # type: ignore[arg-type]
    with pytest.raises(ArmadaJobSpecError) as excinfo:
        hook.submit_jobs("default", "set", [job_request_item(), job_request_item()])
    assert isinstance(excinfo.value, AirflowFailException)
    assert "item 1: gpu quota exceeded for queue default" in str(excinfo.value)
    assert "'default'" in str(excinfo.value)


def test_a_response_with_too_few_job_ids_is_an_error(local_armada):
    hook = ArmadaHook(client=RewritingClient(local_armada.client(), missing_an_id))  # type: ignore[arg-type]
    with pytest.raises(ArmadaRpcError, match="1 job ids for 2 items"):
        hook.submit_jobs("default", "set", [job_request_item(), job_request_item()])
