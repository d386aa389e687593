"""A local Armada for tests, demos and benchmarks: Armada's own gRPC API on loopback.

>>> from armada_hooks.testing import LocalArmada
>>> with LocalArmada(queues=["default"]) as armada:
...     client = armada.client()          # a real armada_client.ArmadaClient
...     ...                               # submit, watch, query, cancel, fetch logs

The pytest plugin (installed with the package) provides the ``local_armada``,
``local_armada_factory`` and ``local_armada_client`` fixtures, and the
``@pytest.mark.local_armada(**options)`` marker. See :mod:`.behaviour` for the job
annotations that script a simulated job's life. :class:`InMemoryArmada` is the same engine
and services without a server: ``armada_client``'s clients over an in-process channel.
"""

from __future__ import annotations

from armada_hooks.testing.behaviour import JobBehaviour
from armada_hooks.testing.faults import Faults
from armada_hooks.testing.memory import InMemoryArmada, InMemoryRpcError
from armada_hooks.testing.server import JobSnapshot, LocalArmada, ServerTls
from armada_hooks.testing.specs import job_request_item
from armada_hooks.testing.tls import TestPki, make_test_pki

__all__ = [
    "Faults",
    "InMemoryArmada",
    "InMemoryRpcError",
    "JobBehaviour",
    "JobSnapshot",
    "LocalArmada",
    "ServerTls",
    "TestPki",
    "job_request_item",
    "make_test_pki",
]
