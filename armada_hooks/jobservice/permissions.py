"""Whether a caller may watch a queue, asked of Armada with the caller's own credentials.

Armada's event API checks, before it reads anything, that the caller may watch the
queue (the ``WatchAllEvents`` permission, or the queue's ``watch`` verb: server/event's
``validateUserHasWatchPermissions``). :class:`QueueAccess` asks that same question: a
non-watching ``GetJobSetEvents`` with ``errorIfMissing`` for a job set that does not
exist, sent with the caller's bearer token (or none) over the service's TLS settings.
PERMISSION_DENIED or UNAUTHENTICATED means no; NOT_FOUND (no such job set, or queue) or
an empty stream means yes. So an Armada without authentication lets tokenless callers
in, and one with authentication does not.

A verdict is cached for ``ttl`` seconds per (token digest, queue): it never answers for
another token. The token itself is neither logged nor kept; only its SHA-256 digest is
held, in memory, for the cache's lifetime.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from typing import TYPE_CHECKING, Any

import grpc

from armada_hooks.channels import open_aio_channel
from armada_hooks.rpc import describe_failure, status_code

if TYPE_CHECKING:
    from armada_hooks.channels import ChannelSpec

PROBE_JOB_SET = "armada-hooks-job-service-permission-probe"
DENIED_CODES = frozenset({grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED})
ALLOWED_CODES = frozenset({grpc.StatusCode.NOT_FOUND})


class AccessDenied(Exception):
    """Armada says the caller may not watch the queue; the message says which."""


class AccessUnknown(Exception):
    """Armada could not be asked whether the caller may watch the queue."""


def bearer_token(metadata: Any) -> str | None:
    """The bearer token in call metadata (``authorization: Bearer X``), or None."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() == "bearer" and token:
                return token
    return None


class QueueAccess:
    """Checks and caches whether callers may watch queues, for one Armada."""

    def __init__(self, armada: ChannelSpec, ttl: float, timeout: float) -> None:
        self._spec = dataclasses.replace(armada, token=None, deadline=None)
        self._ttl = ttl
        self._timeout = timeout
        self._verdicts: dict[tuple[str, str], tuple[float, str | None]] = {}  # -> (at, denial)
        self._asking: dict[tuple[str, str], asyncio.Task[str | None]] = {}
        self._channel: Any = None
        self._stub: Any = None
        self.probes = 0

    async def check(self, token: str | None, queue: str) -> None:
        """Return if the caller may watch ``queue``.

        :raises AccessDenied: Armada refused the caller's credentials for the queue.
        :raises AccessUnknown: Armada could not be asked.
        """
        key = (hashlib.sha256(token.encode()).hexdigest() if token else "", queue)
        now = time.monotonic()
        cached = self._verdicts.get(key)
        if cached is not None and now - cached[0] < self._ttl:
            denial = cached[1]
        else:
            asking = self._asking.get(key)
            if asking is None:
                # in a task of its own: a caller that goes away (its call cancelled) does
                # not cancel the check the other callers of that token wait for
                asking = asyncio.get_running_loop().create_task(self._ask(key, token, queue))
                self._asking[key] = asking
            denial = await asyncio.shield(asking)
        if denial is not None:
            raise AccessDenied(denial)

    async def _ask(self, key: tuple[str, str], token: str | None, queue: str) -> str | None:
        try:
            denial = await self._probe(token, queue)
        finally:
            del self._asking[key]
        self._verdicts[key] = (time.monotonic(), denial)
        return denial

    async def _probe(self, token: str | None, queue: str) -> str | None:
        from armada_client.armada import event_pb2, event_pb2_grpc

        if self._stub is None:
            self._channel = open_aio_channel(self._spec)
            self._stub = event_pb2_grpc.EventStub(self._channel)  # type: ignore[no-untyped-call]
        self.probes += 1
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        request = event_pb2.JobSetRequest(
            queue=queue, id=PROBE_JOB_SET, watch=False, errorIfMissing=True
        )
        call = self._stub.GetJobSetEvents(request, metadata=metadata, timeout=self._timeout)
        try:
            async for _ in call:
                break  # someone's job set has the probe's name: reading it was allowed
        except grpc.aio.AioRpcError as exc:
            code = status_code(exc)
            if code in DENIED_CODES:
                who = "this caller's token" if token else "a caller without a token"
                return (
                    f"Armada refuses {who} the right to watch queue {queue!r} "
                    f"({describe_failure(exc)}); present a token that may watch it"
                )
            if code not in ALLOWED_CODES:
                raise AccessUnknown(
                    f"cannot ask Armada whether the caller may watch queue {queue!r}: "
                    f"{describe_failure(exc)}"
                ) from exc
        finally:
            call.cancel()
        return None

    async def close(self) -> None:
        """Close the channel the checks use."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None
