"""The query batchers' base is abstract: a batcher says how to ask and how to read."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from armada_hooks.jobservice.queries import JobSetLookups, StatusQueries, _Batcher
from armada_hooks.rpc import RetryPolicy

POLICY = RetryPolicy(
    retries=0, wait_min=0.1, wait_max=0.1, conn_id="t", log=logging.getLogger(__name__)
)


def test_the_batching_base_cannot_be_used_without_its_two_hooks():
    with pytest.raises(TypeError, match="abstract"):
        _Batcher(None, POLICY, 0.01, 1.0)  # type: ignore[abstract]

    class AsksOnly(_Batcher[int]):
        async def _rpc(self, ids: list[str]) -> Any:
            return None

    with pytest.raises(TypeError, match="_results"):
        AsksOnly(None, POLICY, 0.01, 1.0)  # type: ignore[abstract]
    for complete in (StatusQueries, JobSetLookups):
        assert complete(None, POLICY, 0.01, 1.0).calls == 0
