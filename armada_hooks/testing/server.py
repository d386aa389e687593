"""``LocalArmada``: a real gRPC server speaking Armada's API, for tests, demos and benchmarks."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlencode

import grpc
from armada_client.armada import (
    binoculars_pb2_grpc,
    event_pb2_grpc,
    job_pb2_grpc,
    submit_pb2,
    submit_pb2_grpc,
)
from armada_client.client import ArmadaClient

from armada_hooks.channels import CHANNEL_OPTIONS, ChannelSpec, open_aio_channel, open_channel
from armada_hooks.lifetime import Startable
from armada_hooks.states import TERMINAL_STATES, JobState
from armada_hooks.testing.behaviour import JobBehaviour
from armada_hooks.testing.binoculars_service import BinocularsService
from armada_hooks.testing.clock import SimClock
from armada_hooks.testing.cluster import DEFAULT_NODES, check_nodes
from armada_hooks.testing.core import Core, Settings
from armada_hooks.testing.event_service import EventService
from armada_hooks.testing.faults import Faults
from armada_hooks.testing.gate import Gate, RpcCounter
from armada_hooks.testing.job_sets import JobSetsService, add_to_server
from armada_hooks.testing.jobs_service import JobsService
from armada_hooks.testing.lifecycle import Lifecycle
from armada_hooks.testing.queue_service import QueueService
from armada_hooks.testing.store import Store
from armada_hooks.testing.submit_service import SubmitService

if TYPE_CHECKING:
    from collections.abc import Iterable

    from armada_hooks.testing.cluster import Node
    from armada_hooks.testing.records import JobRecord


@dataclass(frozen=True)
class ServerTls:
    """PEM material for the server's TLS; ``client_ca`` set means clients must present a cert."""

    cert_chain: bytes
    private_key: bytes = dataclasses.field(repr=False)
    client_ca: bytes | None = None


@dataclass(frozen=True)
class JobSnapshot:
    """A read-only look at one job inside the local Armada (for tests and the demo)."""

    job_id: str
    queue: str
    job_set_id: str
    state: JobState
    reason: str
    exit_code: int | None
    run_ids: tuple[str, ...]
    log_lines: tuple[str, ...]
    client_id: str
    external_job_uri: str
    priority: float
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    submitted_ts: float = 0.0


@dataclass(frozen=True)
class Services:
    """One engine (store, lifecycle, settings, faults) and Armada's services over it.

    Plus ``job_sets``: the local Armada's own ListJobSets (see :mod:`.job_sets`).

    The gRPC server registers these; :class:`~.memory.InMemoryArmada` calls them in-process.
    """

    core: Core
    submit: SubmitService
    queues: QueueService
    jobs: JobsService
    events: EventService
    binoculars: BinocularsService
    job_sets: JobSetsService

    @classmethod
    def build(
        cls,
        store: Store,
        clock: SimClock,
        settings: Settings,
        faults: Faults,
        queues: Iterable[str] = (),
    ) -> Services:
        """The services over ``store`` with a lifecycle on ``clock``; ``queues`` created if new."""
        with store.lock:
            for name in queues:
                if name not in store.queues:
                    store.put_queue(submit_pb2.Queue(name=name, priority_factor=1))
        core = Core(
            store=store, lifecycle=Lifecycle(store, clock), settings=settings, faults=faults
        )
        return cls(
            core,
            SubmitService(core),
            QueueService(core),
            JobsService(core),
            EventService(core),
            BinocularsService(core),
            JobSetsService(core),
        )

    def register(self, server: object) -> None:
        """Add every service to ``server`` (a ``grpc.Server``, or any registry of handlers)."""
        for add, servicer in (
            (submit_pb2_grpc.add_SubmitServicer_to_server, self.submit),
            (submit_pb2_grpc.add_QueueServiceServicer_to_server, self.queues),
            (job_pb2_grpc.add_JobsServicer_to_server, self.jobs),
            (event_pb2_grpc.add_EventServicer_to_server, self.events),
            (binoculars_pb2_grpc.add_BinocularsServicer_to_server, self.binoculars),
        ):
            add(servicer, server)  # type: ignore[no-untyped-call]
        add_to_server(self.job_sets, server)  # type: ignore[arg-type]


def _snapshot(job: JobRecord) -> JobSnapshot:
    return JobSnapshot(
        job_id=job.job_id,
        queue=job.queue,
        job_set_id=job.job_set_id,
        state=JobState(job.state),
        reason=job.reason,
        exit_code=job.exit_code,
        run_ids=tuple(r.run_id for r in job.runs),
        log_lines=tuple(line for _, line in job.logs),
        client_id=job.client_id,
        external_job_uri=job.external_job_uri,
        priority=job.priority,
        annotations=dict(job.item.annotations),
        submitted_ts=job.submitted_ts,
    )


DEFAULT_MAX_WORKERS = 4096  # threads for concurrent calls; idle streams cost a thread each
# gRPC's core cancels calls at random once more than 1,000 wait for a thread (its soft
# limit); a burst of new streams waits while the pool grows, so the limits are raised.
SERVER_OPTIONS = (
    *CHANNEL_OPTIONS,
    ("grpc.server.max_pending_requests", 20_000),
    ("grpc.server.max_pending_requests_hard_limit", 40_000),
)


class LocalArmada(Startable):
    """A local Armada: Armada's gRPC API on ``127.0.0.1`` (port 0 by default).

    Submit, QueueService, Jobs, Event and Binoculars over real gRPC (and ListJobSets, a
    call of its own: :mod:`.job_sets`), with simulated (or real-subprocess) job
    lifecycles, fault injection, RPC counters, bearer-token auth, TLS and SQLite
    persistence.

    >>> with LocalArmada(queues=["default"], time_scale=10) as armada:
    ...     client = armada.client()
    ...     client.submit_jobs("default", "my-job-set", [item])

    Durations (``time_scale``, ``ingestion_delay``, job annotations) are job-time seconds;
    ``time_scale=60`` runs a job-minute per real second. ``nodes`` are the simulated
    cluster's nodes (default: one with 8 CPUs, 32Gi memory, 100Gi ephemeral storage and
    no GPUs): a job whose requests fit on none is rejected, as Armada's submission check
    rejects it. Every call, an open watching event stream included, holds one of
    ``max_workers`` threads (made as needed): the default serves thousands of streams at
    once, as a job service following that many job sets needs.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        queues: Iterable[str] = (),
        auto_create_queues: bool = False,
        time_scale: float = 1.0,
        ingestion_delay: float = 0.0,
        defaults: JobBehaviour | None = None,
        execution: Literal["simulate", "subprocess"] | None = None,
        state_path: str | Path | None = None,
        token: str | None = None,
        tls: ServerTls | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        nodes: Iterable[Node] = DEFAULT_NODES,
    ) -> None:
        defaults = defaults or JobBehaviour()
        if execution is not None:
            defaults = dataclasses.replace(defaults, execution=execution)
        self.host = host
        self._port = port
        self.time_scale = time_scale
        self.state_path = Path(state_path) if state_path is not None else None
        self.settings = Settings(
            auto_create_queues=auto_create_queues,
            ingestion_delay=ingestion_delay,
            defaults=defaults,
            user="armada-hooks-test-user" if token else "anonymous",
            nodes=check_nodes(nodes),
        )
        self.faults = Faults()
        self.counter = RpcCounter()
        self.token = token
        self.tls = tls
        self.max_workers = max_workers
        self._initial_queues = list(queues)
        self._store: Store | None = None
        self._server: grpc.Server | None = None
        self._lifecycle: Lifecycle | None = None
        self._events: EventService | None = None
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------

    def start(self) -> LocalArmada:
        """Load state (if any), bind, and serve. Returns ``self``."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("this LocalArmada is already running")
            if self._store is None or self.state_path is not None:
                self._store = Store(self.state_path)
            store = self._store
            clock = SimClock(self.time_scale, start=store.clock_high_water or None)
            services = Services.build(
                store, clock, self.settings, self.faults, self._initial_queues
            )
            server = grpc.server(
                futures.ThreadPoolExecutor(
                    max_workers=self.max_workers, thread_name_prefix="local-armada"
                ),
                interceptors=[Gate(self.counter, self.faults, self.token)],
                options=SERVER_OPTIONS,
            )
            services.register(server)
            address = f"{self.host}:{self._port}"
            try:
                if self.tls is not None:
                    credentials = grpc.ssl_server_credentials(
                        [(self.tls.private_key, self.tls.cert_chain)],
                        root_certificates=self.tls.client_ca,
                        require_client_auth=self.tls.client_ca is not None,
                    )
                    port = server.add_secure_port(address, credentials)
                else:
                    port = server.add_insecure_port(address)
            except RuntimeError as exc:
                raise RuntimeError(f"the local Armada could not bind {address}: {exc}") from exc
            if port == 0:
                raise RuntimeError(f"the local Armada could not bind {address}")
            self._port = port
            lifecycle = services.core.lifecycle
            lifecycle.start()
            server.start()
            self._server, self._lifecycle, self._events = server, lifecycle, services.events
        return self

    def stop(self, grace: float = 0.5) -> None:
        """Stop serving (open streams end), stop the lifecycle, and persist state."""
        with self._lock:
            server, lifecycle, events = self._server, self._lifecycle, self._events
            self._server = self._lifecycle = self._events = None
        if server is None or lifecycle is None or events is None:
            return
        events.wake_all()
        server.stop(grace).wait()
        lifecycle.stop()

    def restart(self, downtime: float = 0.0) -> None:
        """Stop, then serve again on the same port; job lifecycles carry on.

        With ``state_path`` the jobs are reloaded from SQLite, otherwise kept in memory.
        """
        self.stop()
        if downtime:
            time.sleep(downtime)
        self.start()

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._server is not None

    # -- addresses and clients -------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (known after :meth:`start`)."""
        return self._port

    @property
    def target(self) -> str:
        """``host:port`` to dial."""
        return f"{self.host}:{self._port}"

    def channel_spec(
        self,
        *,
        token: str | None = None,
        ca_cert: bytes | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
    ) -> ChannelSpec:
        """How to reach this server (TLS and the server's token unless overridden)."""
        return ChannelSpec(
            target=self.target,
            tls=self.tls is not None,
            ca_cert=ca_cert,
            client_cert=client_cert,
            client_key=client_key,
            token=token if token is not None else self.token,
        )

    def airflow_connection(self, *, ca_cert: bytes | None = None, **extra: object) -> str:
        """An ``AIRFLOW_CONN_*`` value (JSON) for this server: token, TLS, Binoculars target.

        Pass the CA's PEM as ``ca_cert`` for a TLS server; ``extra`` adds connection extras.
        """
        extras = self._extras(ca_cert.decode() if ca_cert is not None else None, extra)
        conn: dict[str, object] = {
            "conn_type": "armada",
            "host": self.host,
            "port": self.port,
            "extra": extras,
        }
        if self.token:
            conn["password"] = self.token
        return json.dumps(conn)

    def airflow_connection_uri(
        self, *, ca_cert: str | None = None, token: str | None = None, **extra: object
    ) -> str:
        """The same connection as an ``armada://`` URI, its extras URL-encoded.

        ``ca_cert`` is a path or PEM text; ``token`` is written as the password (pass a
        placeholder to print a URI without the secret).
        """
        extras = self._extras(ca_cert, extra)
        query = urlencode(
            {k: str(v).lower() if isinstance(v, bool) else v for k, v in extras.items()}
        )
        auth = f":{quote(token, safe='')}@" if token else ""
        return f"armada://{auth}{self.host}:{self.port}?{query}"

    def _extras(self, ca_cert: str | None, extra: dict[str, object]) -> dict[str, object]:
        extras: dict[str, object] = {"binoculars_target": self.target, "tls": self.tls is not None}
        if ca_cert is not None:
            extras["ca_cert"] = ca_cert
        extras.update(extra)
        return extras

    def channel(self, **overrides: object) -> grpc.Channel:
        """A synchronous channel to this server (see :meth:`channel_spec` for overrides)."""
        return open_channel(self.channel_spec(**overrides))  # type: ignore[arg-type]

    def aio_channel(self, **overrides: object) -> grpc.aio.Channel:
        """An asyncio channel to this server; call inside the running event loop."""
        return open_aio_channel(self.channel_spec(**overrides))  # type: ignore[arg-type]

    def client(self, **overrides: object) -> ArmadaClient:
        """The real ``armada_client.ArmadaClient`` on a new channel to this server."""
        return ArmadaClient(self.channel(**overrides))

    # -- controls and inspection -----------------------------------------

    @property
    def store(self) -> Store:
        """The server's state (hold ``store.lock`` while reading it)."""
        if self._store is None:
            raise RuntimeError("the local Armada has not been started")
        return self._store

    def now(self) -> float:
        """Current job time (epoch seconds)."""
        if self._lifecycle is None:
            raise RuntimeError("the local Armada is not running")
        return self._lifecycle.clock.now()

    def create_queue(self, name: str, priority_factor: float = 1.0) -> None:
        """Create a queue directly (no RPC, not counted)."""
        with self.store.lock:
            self.store.put_queue(submit_pb2.Queue(name=name, priority_factor=priority_factor))

    def set_ingestion_delay(self, seconds: float) -> None:
        """Job-time seconds before new jobs show in the query API (earlier jobs keep theirs)."""
        if seconds < 0:
            raise ValueError("ingestion delay must be >= 0")
        self.settings.ingestion_delay = seconds

    def engine_stats(self) -> dict[str, float]:
        """Lifecycle engine figures: transitions applied, worst lag behind schedule (s)."""
        if self._lifecycle is None:
            raise RuntimeError("the local Armada is not running")
        with self.store.lock:
            return {
                "transitions": float(self._lifecycle.transitions),
                "max_lag_seconds": self._lifecycle.max_lag,
                "pending_transitions": float(len(self._lifecycle._heap)),
            }

    def rpc_count(self, method: str = "*") -> int:
        """Calls of ``method`` (``"GetJobStatus"``, ``"api.Jobs/GetJobStatus"``, ``"*"``)."""
        return self.counter.count(method)

    def rpc_counts_by_job(self, method: str) -> dict[str, int]:
        """Calls of ``method`` per job id, for RPCs whose request names one job (``Logs``)."""
        return self.counter.by_job(method)

    def rpc_counts(self) -> dict[str, int]:
        """Calls per short method name since start or the last reset."""
        return self.counter.snapshot()

    def reset_rpc_counts(self) -> None:
        """Zero the RPC counters."""
        self.counter.reset()

    def job(self, job_id: str) -> JobSnapshot:
        """The server's view of a job (not subject to the ingestion delay)."""
        with self.store.lock:
            record = self.store.jobs.get(job_id)
            if record is None:
                raise KeyError(f"the local Armada has no job {job_id!r}")
            return _snapshot(record)

    def jobs(self) -> list[JobSnapshot]:
        """Every job the server has, in submission order."""
        with self.store.lock:
            return [_snapshot(j) for j in self.store.jobs.values()]

    def wait_for_state(
        self, job_id: str, states: Iterable[JobState] = TERMINAL_STATES, timeout: float = 30.0
    ) -> JobSnapshot:
        """Block until the job reaches one of ``states`` (server side, no RPC)."""
        wanted = {JobState(s) for s in states}
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.job(job_id)
            if snapshot.state in wanted:
                return snapshot
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"job {job_id} is {snapshot.state.name} after {timeout}s, "
                    f"not one of {sorted(s.name for s in wanted)}"
                )
            time.sleep(0.01)
