"""gRPC channels to Armada: plaintext or TLS (optionally mutual), a bearer token, deadlines.

Shared by the hook and the local Armada's helpers. The token travels as
``authorization: Bearer <token>`` metadata on every call; it is never part of a
channel option, a log line or a repr.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import grpc
import grpc.aio

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CHANNEL_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
)


@dataclass(frozen=True)
class ChannelSpec:
    """Where and how to reach an Armada gRPC endpoint (PEM bytes, not paths)."""

    target: str
    tls: bool = False
    ca_cert: bytes | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None
    token: str | None = field(default=None, repr=False)
    deadline: float | None = None  # seconds; applied to every unary call that sets none

    def __post_init__(self) -> None:
        if self.deadline is not None and self.deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds, got {self.deadline}")

    def credentials(self) -> grpc.ChannelCredentials:
        """TLS credentials from the PEM material (system roots when no CA is given)."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_cert,
            private_key=self.client_key,
            certificate_chain=self.client_cert,
        )

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """Call metadata: the bearer token, if any."""
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    _UnaryUnary = grpc.UnaryUnaryClientInterceptor[Any, Any]
    _UnaryStream = grpc.UnaryStreamClientInterceptor[Any, Any]
    _AioUnaryUnary = grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
    _AioUnaryStream = grpc.aio.UnaryStreamClientInterceptor[Any, Any]
else:
    _UnaryUnary = grpc.UnaryUnaryClientInterceptor
    _UnaryStream = grpc.UnaryStreamClientInterceptor
    _AioUnaryUnary = grpc.aio.UnaryUnaryClientInterceptor
    _AioUnaryStream = grpc.aio.UnaryStreamClientInterceptor


class _Details:
    """Call details plus metadata and a default deadline (grpc's own type is abstract)."""

    def __init__(
        self, details: Any, metadata: Sequence[tuple[str, str]], deadline: float | None = None
    ) -> None:
        self.method = details.method
        self.timeout = details.timeout if details.timeout is not None else deadline
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)
        self.metadata = [*(details.metadata or ()), *metadata]


class _MetadataInterceptor(_UnaryUnary, _UnaryStream):
    def __init__(self, metadata: Sequence[tuple[str, str]], deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(_Details(details, self._metadata, self._deadline), request)

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return continuation(_Details(details, self._metadata), request)


class _AioUnaryMetadata(_AioUnaryUnary):
    def __init__(self, metadata: Sequence[tuple[str, str]], deadline: float | None) -> None:
        self._metadata = metadata
        self._deadline = deadline

    async def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_Details(details, self._metadata, self._deadline), request)


class _AioStreamMetadata(_AioUnaryStream):
    def __init__(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._metadata = metadata

    async def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: Any, request: Any
    ) -> Any:
        return await continuation(_Details(details, self._metadata), request)


def open_channel(spec: ChannelSpec) -> grpc.Channel:
    """A synchronous channel for ``spec``."""
    if spec.tls:
        channel = grpc.secure_channel(spec.target, spec.credentials(), options=CHANNEL_OPTIONS)
    else:
        channel = grpc.insecure_channel(spec.target, options=CHANNEL_OPTIONS)
    metadata = spec.metadata()
    if not metadata and spec.deadline is None:
        return channel
    return grpc.intercept_channel(channel, _MetadataInterceptor(metadata, spec.deadline))


def open_aio_channel(spec: ChannelSpec) -> grpc.aio.Channel:
    """An asyncio channel for ``spec``; create it inside the event loop that will use it."""
    metadata = spec.metadata()
    # grpc.aio files each interceptor under one call type only: one per type we use.
    interceptors = cast(
        Any,
        [_AioUnaryMetadata(metadata, spec.deadline), _AioStreamMetadata(metadata)]
        if metadata or spec.deadline is not None
        else None,
    )
    if spec.tls:
        return grpc.aio.secure_channel(
            spec.target, spec.credentials(), options=CHANNEL_OPTIONS, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(
        spec.target, options=CHANNEL_OPTIONS, interceptors=interceptors
    )


class OwnedChannels:
    """The channels one owner opened: closed together by :meth:`close` / :meth:`aclose`.

    Synchronous channels live until closed. An asyncio channel belongs to the event loop
    it was opened in: :meth:`aio` opens one per loop, replacing the previous loop's.
    """

    def __init__(self) -> None:
        self._sync: list[grpc.Channel] = []
        self._aio: tuple[asyncio.AbstractEventLoop, grpc.aio.Channel] | None = None

    def open(self, spec: ChannelSpec) -> grpc.Channel:
        """A new synchronous channel for ``spec``, closed with the others."""
        channel = open_channel(spec)
        self._sync.append(channel)
        return channel

    def aio(self, spec: ChannelSpec) -> tuple[grpc.aio.Channel, bool]:
        """The running loop's asyncio channel for ``spec``, and whether it is new."""
        loop = asyncio.get_running_loop()
        if self._aio is not None and self._aio[0] is loop:
            return self._aio[1], False
        self._drop_aio()
        channel = open_aio_channel(spec)
        self._aio = (loop, channel)
        return channel, True

    def close(self) -> None:
        """Close every channel; an asyncio one is closed on its loop if that loop is idle."""
        for channel in self._sync:
            channel.close()
        self._sync.clear()
        self._drop_aio()

    async def aclose(self) -> None:
        """:meth:`close`, awaiting the asyncio channel if it belongs to the running loop."""
        if self._aio is not None and self._aio[0] is asyncio.get_running_loop():
            channel, self._aio = self._aio[1], None
            await channel.close(None)
        self.close()

    def _drop_aio(self) -> None:
        if self._aio is None:
            return
        (loop, channel), self._aio = self._aio, None
        if loop.is_closed():
            return  # the loop took its channel with it
        if loop.is_running():  # this thread's or another's: close it there, soon
            asyncio.run_coroutine_threadsafe(channel.close(None), loop)
        elif not _loop_running_here():
            loop.run_until_complete(channel.close(None))
        # else: an idle loop while another runs in this thread; asyncio cannot switch to
        # it, so the channel is released when it is collected.


def _loop_running_here() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
