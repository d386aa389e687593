"""Serving the job service: an asyncio gRPC server on loopback, in its own thread or not.

:class:`JobServiceServer` serves ``jobservice.JobService``, our ``JobStates`` and the
standard ``grpc.health.v1.Health`` (overall and per service: SERVING while Armada answers
its Health, NOT_SERVING when it cannot be reached) on ``host:port`` (port 0 picks a free
one). :meth:`~JobServiceServer.start` runs it in a background thread with its own event
loop (tests, embedding); :meth:`~JobServiceServer.serve` runs it in the caller's loop.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from armada_hooks.channels import CHANNEL_OPTIONS
from armada_hooks.jobservice.core import JobServiceCore
from armada_hooks.jobservice.protos import job_states_pb2_grpc, jobservice_pb2_grpc
from armada_hooks.jobservice.servicers import HistoricJobService, JobStatesService
from armada_hooks.jobservice.settings import JobServiceSettings
from armada_hooks.jobservice.sqlite_store import SQLiteStore
from armada_hooks.lifetime import Startable

if TYPE_CHECKING:
    from armada_hooks.channels import ChannelSpec
    from armada_hooks.jobservice.store import JobStateStore

SERVICE_NAMES = ("jobservice.JobService", "armada_hooks.jobservice.JobStates")
STOP_GRACE = 1.0  # seconds in-flight calls get when the server stops
# The collector's thresholds in a process that is a job service: Python's defaults for
# the young generations (700, 10), a full collection after 1,000 middle ones (default 10).
COLLECTOR_THRESHOLDS = (700, 10, 1000)


def tune_collector() -> None:
    """Set the garbage collector for a process whose work is to be a job service.

    Following 1,000 job sets keeps about 100,000 objects alive (each stream's gRPC call,
    tasks and timers; each job's record). At Python's default thresholds, the objects of
    the calls in flight at each middle collection count as survivors, and 1,000 calls a
    second add enough of them to force a full collection every few seconds: on a small
    machine each one holds the event loop for 50 to 90 ms, and every call arriving
    meanwhile waits. With these thresholds a full collection comes about a hundred times
    less often; the young collections, which free each call's cyclic garbage, are as
    frequent and as cheap as before. ``armada-hooks job-service`` calls this; a service
    embedded in another process leaves that process's collector alone.
    """
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Let the tasks grpc left behind (a cancelled call's status) end, then close ``loop``."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.close()


class JobServiceServer(Startable):
    """The job service for the Armada that ``armada`` reaches, on ``host:port``.

    ``store`` is a :class:`~.store.JobStateStore`, or a path of the SQLite file to use
    (default: in memory, lost on stop). The store is closed on stop if the server opened it.
    """

    def __init__(
        self,
        armada: ChannelSpec,
        *,
        store: JobStateStore | str | Path = ":memory:",
        settings: JobServiceSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.armada = armada
        self.settings = settings or JobServiceSettings()
        self.host = host
        self._port = port
        self._tls = tls  # (certificate chain PEM, private key PEM) for the listener
        self._store_arg = store
        self.core: JobServiceCore | None = None
        self._server: grpc.aio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        return self._port

    @property
    def target(self) -> str:
        """``host:port`` to dial."""
        return f"{self.host}:{self._port}"

    # -- in the caller's loop ------------------------------------------------

    async def open(self) -> None:
        """Start following and serving in the running loop."""
        given = self._store_arg
        self._owns_store = isinstance(given, str | Path)
        store = SQLiteStore(given) if isinstance(given, str | Path) else given
        core = JobServiceCore(self.armada, store, self.settings)
        server = grpc.aio.server(options=CHANNEL_OPTIONS)
        jobservice_pb2_grpc.add_JobServiceServicer_to_server(HistoricJobService(core), server)
        job_states_pb2_grpc.add_JobStatesServicer_to_server(JobStatesService(core), server)
        health_servicer = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)  # type: ignore[no-untyped-call]

        async def health_changed(reachable: bool) -> None:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if reachable
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for name in ("", *SERVICE_NAMES):
                await health_servicer.set(name, status)

        core.on_health_change(health_changed)
        address = f"{self.host}:{self._port}"
        if self._tls is not None:
            credentials = grpc.ssl_server_credentials([(self._tls[1], self._tls[0])])
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
        if port == 0:
            raise RuntimeError(f"the job service could not bind {address}")
        self._port = port
        await core.start()
        await server.start()
        self.core, self._server = core, server
        self._stopped = asyncio.Event()

    async def close(self) -> None:
        """Stop serving, close every stream, write what was applied, close the store."""
        server, core = self._server, self.core
        self._server = None
        if server is not None:
            await server.stop(STOP_GRACE)
        if core is not None:
            await core.stop()
            if self._owns_store:
                core.store.close()
        if self._stopped is not None:
            self._stopped.set()

    async def serve(self, stop: asyncio.Event) -> None:
        """Open, serve until ``stop`` is set, close."""
        await self.open()
        try:
            await stop.wait()
        finally:
            await self.close()

    # -- in a thread of its own ----------------------------------------------

    def start(self) -> JobServiceServer:
        """Serve from a background thread with its own event loop; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("this job service is already running")
        loop = asyncio.new_event_loop()
        opened: Future[None] = Future()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.open())
            except BaseException as exc:
                opened.set_exception(exc)
                loop.close()
                return
            opened.set_result(None)
            loop.run_forever()
            _finish(loop)

        thread = threading.Thread(target=run, name="job-service", daemon=True)
        thread.start()
        opened.result()
        self._loop, self._thread = loop, thread
        return self

    def stop(self) -> None:
        """Stop the background server (streams closed, store written) and its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._loop = self._thread = None

    def call(self, fn: Any) -> Any:
        """Run ``fn(core)`` in the server's loop and return its result (tests, inspection)."""
        if self._loop is None or self.core is None:
            raise RuntimeError("the job service is not running")
        core = self.core

        async def run() -> Any:
            result = fn(core)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result()
