"""What the triggers of one event loop share per connection: a hook, a poller, a watch.

A triggerer runs every trigger in one event loop; sharing there is what turns a thousand
waits into a few RPCs. Entries belong to their loop and go with it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from armada_hooks.hooks.armada import ArmadaHook

T = TypeVar("T")

_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], Any]] = (
    weakref.WeakKeyDictionary()
)


def per_loop(kind: str, conn_id: str, build: Callable[[], T]) -> T:
    """The running loop's ``kind`` for ``conn_id``, built on first use."""
    entries = _SHARED.setdefault(asyncio.get_running_loop(), {})
    key = (kind, conn_id)
    if key not in entries:
        entries[key] = build()
    return cast("T", entries[key])


def shared_hook(conn_id: str) -> ArmadaHook:
    """The running loop's hook for ``conn_id``: its connection is loaded once for all."""

    def build() -> ArmadaHook:
        from armada_hooks.hooks.armada import ArmadaHook

        return ArmadaHook(conn_id)

    return per_loop("hook", conn_id, build)
