"""The minimal client surface :class:`~armada_hooks.hooks.armada.ArmadaHook` needs.

``armada_client.ArmadaClient`` and ``ArmadaAsyncIOClient`` satisfy these structurally,
unchanged; so do the in-memory client in :mod:`armada_hooks.testing` and any other
implementation (a cache-backed one, a test double). Swapping a client never touches
hook code. This package imports no Airflow.
"""

from __future__ import annotations

from armada_hooks.protocols.armada import ArmadaProtocol, AsyncArmadaProtocol
from armada_hooks.protocols.logs import LogLineLike, LogProtocol

__all__ = ["ArmadaProtocol", "AsyncArmadaProtocol", "LogLineLike", "LogProtocol"]
