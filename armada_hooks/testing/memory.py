"""The in-memory Armada: ``armada_client``'s own clients over an in-process channel.

No socket and no thread: each RPC, serialized as on the wire, goes straight to the local
Armada's servicers (:class:`~.server.Services`) over its store and lifecycle engine, once
every transition due by job time is applied. ``clock`` (a callable of epoch seconds) moves
job time by hand. ``ArmadaHook(client=InMemoryArmada().client())`` needs no server.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import TYPE_CHECKING, Any, NoReturn, cast

import grpc
from armada_client.armada import event_pb2
from armada_client.asyncio_client import ArmadaAsyncIOClient
from armada_client.client import ArmadaClient

from armada_hooks.hooks.logs import BinocularsLogClient
from armada_hooks.states import JobState
from armada_hooks.testing.behaviour import JobBehaviour
from armada_hooks.testing.clock import ManualClock, SimClock
from armada_hooks.testing.core import Settings
from armada_hooks.testing.faults import Faults, matches
from armada_hooks.testing.server import Services
from armada_hooks.testing.store import Store

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterable, Iterator

POLL_SECONDS = 0.05  # real seconds between looks at a watched job set with nothing new


class InMemoryRpcError(grpc.aio.AioRpcError):
    """A failed in-process call, with ``code()`` and ``details()`` as a real channel's have."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details, None)


class _Context:
    """What the servicers use of a ``grpc.ServicerContext``: ``abort`` raises, the call is live."""

    def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise InMemoryRpcError(code, details)

    def is_active(self) -> bool:
        return True


_CONTEXT = cast("grpc.ServicerContext", _Context())


class _Routes(dict[str, Any]):
    """A registry for ``add_*Servicer_to_server``: method handlers by path, ``/api.Jobs/...``."""

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        pass  # the same handlers come by name, below

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Any]) -> None:
        self.update((f"/{service}/{name}", handler) for name, handler in handlers.items())


class InMemoryArmada:
    """The local Armada's engine and services without a server, for clients in this process.

    ``calls`` counts calls by RPC name (``"GetJobStatus"``), as ``LocalArmada.rpc_counts()``
    does; ``faults`` is a :class:`~.faults.Faults` (RPC names, ``"*"``) for scripted errors.
    """

    def __init__(
        self,
        *,
        queues: Iterable[str] = ("default",),
        time_scale: float = 1.0,
        ingestion_delay: float = 0.0,
        defaults: JobBehaviour | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        sim = SimClock(time_scale) if clock is None else ManualClock(clock, time_scale)
        self.settings = Settings(defaults=defaults or JobBehaviour())
        self.settings.ingestion_delay = ingestion_delay
        self.faults = Faults()
        self.calls: collections.Counter[str] = collections.Counter()
        services = Services.build(Store(), sim, self.settings, self.faults, queues)
        self.lifecycle = services.core.lifecycle
        self.routes = _Routes()
        services.register(self.routes)

    def client(self) -> ArmadaClient:
        """``armada_client.ArmadaClient`` (an ``ArmadaProtocol``) on an in-process channel."""
        return ArmadaClient(cast("grpc.Channel", _Channel(self, aio=False)))

    def async_client(self) -> ArmadaAsyncIOClient:
        """``ArmadaAsyncIOClient`` (an ``AsyncArmadaProtocol``) on an in-process channel."""
        return ArmadaAsyncIOClient(cast("grpc.aio.Channel", _Channel(self, aio=True)))

    def log_client(self) -> BinocularsLogClient:
        """A Binoculars log client (a ``LogProtocol``) on an in-process channel."""
        return BinocularsLogClient(cast("grpc.Channel", _Channel(self, aio=False)))

    def fail_next(self, method: str, code: grpc.StatusCode, times: int = 1) -> None:
        """Make the next ``times`` calls of RPC ``method`` (``"GetJobStatus"``) raise ``code``."""
        if not any(matches(method, path) for path in self.routes):
            names = sorted({path.rsplit("/", 1)[-1] for path in self.routes})
            raise ValueError(f"unknown RPC {method!r}; use one of {', '.join(names)}")
        self.faults.fail(method, code, times=times)

    def job_state(self, job_id: str) -> JobState:
        """The job's state now, ingested or not (KeyError for a job never submitted)."""
        with self.lifecycle.store.lock:
            self.lifecycle.catch_up()
            return JobState(self.lifecycle.store.jobs[job_id].state)

    def admit(self, path: str) -> None:
        """Count a call of ``path``, fail it if a fault is due, and apply what is due by now."""
        with self.lifecycle.store.lock:
            self.calls[path.rsplit("/", 1)[-1]] += 1
        fault = self.faults.next_fault(path)
        time.sleep(fault.latency)
        if fault.code is not None:
            raise InMemoryRpcError(fault.code, fault.message)
        self.lifecycle.catch_up()


class _Channel:
    """An in-process channel: a call of ``/api.Jobs/GetJobStatus`` is that servicer method's."""

    def __init__(self, armada: InMemoryArmada, *, aio: bool) -> None:
        self.armada, self.aio = armada, aio

    def unary_unary(self, path: str, **codecs: Any) -> Any:
        armada, handler = self.armada, self.armada.routes[path]

        def call(request: Any, **_: Any) -> Any:
            armada.admit(path)
            request = handler.request_deserializer(codecs["request_serializer"](request))
            answer = handler.response_serializer(handler.unary_unary(request, _CONTEXT))
            return codecs["response_deserializer"](answer)

        async def acall(request: Any, **_: Any) -> Any:
            return call(request)

        return acall if self.aio else call

    def unary_stream(self, path: str, **codecs: Any) -> Any:
        armada, handler = self.armada, self.armada.routes[path]
        decode = codecs["response_deserializer"]

        def looks(request: Any) -> Iterator[list[Any] | None]:
            """The servicer's answer; for a watch, the replay after the last message, again."""
            if watch := isinstance(request, event_pb2.JobSetRequest) and request.watch:
                request.watch = False  # each look replays what came after the last message seen
            armada.admit(path)  # at the first read, where a gRPC stream's error surfaces
            while True:
                replay = handler.unary_stream(request, _CONTEXT)
                page = [decode(handler.response_serializer(m)) for m in replay]
                yield page if page or not watch else None  # None: nothing new, wait a little
                if not watch:
                    return
                if page:
                    request.from_message_id = page[-1].id
                armada.lifecycle.catch_up()

        def call(request: Any, **_: Any) -> _Stream:
            return _Stream(
                looks(handler.request_deserializer(codecs["request_serializer"](request)))
            )

        return call


class _Stream:
    """A server stream, read with ``for`` or ``async for``; ``cancel()`` ends it (a watch too)."""

    def __init__(self, looks: Iterator[list[Any] | None]) -> None:
        self.looks, self.cancelled = looks, False

    def cancel(self) -> bool:
        self.cancelled = True
        return True

    def __iter__(self) -> Iterator[Any]:
        for page in self.looks:
            if self.cancelled:
                return
            if page is None:
                time.sleep(POLL_SECONDS)
            yield from page or ()

    async def __aiter__(self) -> AsyncIterator[Any]:
        for page in self.looks:
            if self.cancelled:
                return
            if page is None:
                await asyncio.sleep(POLL_SECONDS)
            for message in page or ():
                yield message
