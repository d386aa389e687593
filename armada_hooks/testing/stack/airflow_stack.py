"""``AirflowStack``: a real Airflow 3 deployment on 127.0.0.1, wired to a local Armada.

PostgreSQL (:class:`~.postgres.LocalPostgres`), ``airflow db migrate``, then the API
server, the scheduler (LocalExecutor), the DAG processor and two triggerers, each a
process of its own with its own temp ``AIRFLOW_HOME`` and environment (nothing of the
calling process's ``AIRFLOW*`` variables leaks in), and a :class:`~..server.LocalArmada`
with a bearer token that the ``armada_default`` connection points at (Binoculars and a
Lookout URL set). Every process's log is kept under ``artifacts_dir``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from armada_hooks.defaults import DEFAULT_CONN_ID
from armada_hooks.lifetime import Startable
from armada_hooks.testing.stack.postgres import LocalPostgres
from armada_hooks.testing.stack.processes import (
    LOOPBACK,
    ManagedProcess,
    StackError,
    free_port,
    run_checked,
    wait_until,
)
from armada_hooks.testing.stack.rest import AirflowRest
from armada_hooks.testing.stack.sockets import listening_addresses

if TYPE_CHECKING:
    from collections.abc import Callable

    from armada_client.client import ArmadaClient

    from armada_hooks.testing.server import LocalArmada
    from armada_hooks.testing.stack.runs import StackRun

ADMIN = "admin"
DEFAULT_LOOKOUT_URL = "http://127.0.0.1:8089"  # where Armada's local development Lookout listens
STARTUP_TIMEOUT = 180.0
REST_TIMEOUT = 120.0  # seconds one REST call may take (the API server stalls under load)
MIGRATE_TIMEOUT = 300.0

# Settings of every stack process ([section] key -> value), besides the wiring ones.
BASE_CONFIG: dict[tuple[str, str], str] = {
    ("core", "executor"): "LocalExecutor",
    ("core", "load_examples"): "False",
    ("core", "dags_are_paused_at_creation"): "False",
    # Each running task talks to the API server's Execution API, which holds a DB
    # connection per request: with SQLAlchemy's default pool (5 + 10 overflow) a burst of
    # deferring tasks waits 30 s for a connection and fails (QueuePool limit). A pool that
    # outnumbers the workers (PostgreSQL here takes max_connections=200) avoids that.
    ("core", "parallelism"): "16",
    ("database", "sql_alchemy_pool_size"): "10",
    ("database", "sql_alchemy_max_overflow"): "30",
    ("core", "max_active_tasks_per_dag"): "256",
    ("core", "simple_auth_manager_users"): f"{ADMIN}:admin",
    ("api", "expose_config"): "False",
    ("api", "workers"): "1",
    ("logging", "logging_level"): "INFO",
    # A new DAG file is seen within seconds; a parsed one is not re-parsed every 30 s.
    ("dag_processor", "refresh_interval"): "5",
    ("dag_processor", "min_file_process_interval"): "120",
    ("dag_processor", "parsing_processes"): "1",
    # apache/airflow#71172: a reschedule-mode sensor is failed when the executor's report of
    # one poke is drained only after the next poke was queued. An idle scheduler drains
    # LocalExecutor's reports every loop: a short loop keeps a report ahead of a re-queue
    # that a poke_interval of a few seconds brings.
    ("scheduler", "scheduler_idle_sleep_time"): "0.5",
    # A worker's Execution API calls wait up to 60 s (default 5 s, 5 tries): the API server
    # stalls for 5-45 s on a session's first task start on two busy cores, and a worker
    # that gives up fails its task's try before the task has run.
    ("workers", "execution_api_timeout"): "60",
    # A killed triggerer's triggers are taken over once its heartbeat is this old.
    ("triggerer", "job_heartbeat_sec"): "2",
    ("triggerer", "triggerer_health_check_threshold"): "15",
}


def _env_key(section: str, key: str) -> str:
    return f"AIRFLOW__{section.upper()}__{key.upper()}"


def _airflow_bin() -> str:
    path = Path(sys.executable).with_name("airflow")
    if not path.exists():
        raise StackError(f"no airflow command beside {sys.executable}: install apache-airflow")
    return str(path)


class AirflowStack(Startable):
    """Airflow 3 (API server, scheduler, DAG processor, triggerers) + PostgreSQL + local Armada.

    :param dags_folder: the DAG files to serve.
    :param artifacts_dir: where every process's log (and the task logs) are kept.
    :param triggerers: how many triggerers to run (two by default, to share deferred tasks).
    :param triggerer_capacity: triggers one triggerer runs at most (``--capacity``).
    :param armada: a started local Armada to use; by default one is started (queue
        ``default``, a random bearer token) and stopped with the stack.
    :param armada_options: more :class:`~..server.LocalArmada` arguments for the stack's
        own local Armada, e.g. ``{"state_path": path}`` so that ``stack.armada.restart()``
        serves its jobs again from that SQLite file, on the same port.
    :param lookout_url: the ``armada_default`` connection's ``lookout_url``.
    :param extra_connections: more Airflow connections, each the ``armada_default`` one with
        these fields replaced (e.g. ``{"armada_wrong_token": {"password": "nope"}}``); an
        ``extra`` mapping is merged into its extras (``{"extra": {"rpc_timeout": 2}}``).
    :param config: more Airflow settings, ``{(section, key): value}``, for every process.
    :param environment: more environment variables for every process.
    :param default_connection: define ``armada_default`` (and ``extra_connections``) in
        the processes' environment; ``False`` leaves the connections to be defined as a
        user would, e.g. with ``airflow connections add`` run with the stack's ``env``.

    >>> with AirflowStack(dags_folder=Path("dags"), artifacts_dir=Path("logs")) as stack:
    ...     run_id = stack.rest.trigger("my_dag")
    ...     assert stack.rest.wait_for_run("my_dag", run_id) == "success"
    """

    def __init__(
        self,
        *,
        dags_folder: Path | str,
        artifacts_dir: Path | str,
        triggerers: int = 2,
        triggerer_capacity: int = 1000,
        armada: LocalArmada | None = None,
        armada_options: Mapping[str, Any] | None = None,
        lookout_url: str = DEFAULT_LOOKOUT_URL,
        extra_connections: Mapping[str, Mapping[str, object]] | None = None,
        config: Mapping[tuple[str, str], str] | None = None,
        environment: Mapping[str, str] | None = None,
        default_connection: bool = True,
    ) -> None:
        if triggerers < 1:
            raise ValueError(f"triggerers must be >= 1, got {triggerers}")
        self.dags_folder = Path(dags_folder).resolve()
        self.artifacts_dir = Path(artifacts_dir).resolve()
        self.triggerer_count = triggerers
        self.triggerer_capacity = triggerer_capacity
        self.lookout_url = lookout_url
        self.extra_connections = dict(extra_connections or {})
        self.config = {**BASE_CONFIG, **(config or {})}
        self.environment = dict(environment or {})
        self.default_connection = default_connection
        self._armada = armada
        self._own_armada = armada is None
        if armada is not None and armada_options:
            raise ValueError(
                "armada_options configure the stack's own local Armada: pass "
                "either armada or armada_options"
            )
        self._armada_options = {
            "queues": ["default"],
            "token": secrets.token_urlsafe(24),
            **(armada_options or {}),
        }
        self.postgres = LocalPostgres(log_dir=self.artifacts_dir)
        self.password = secrets.token_urlsafe(18)
        self.home: Path | None = None
        self.api_port = 0
        self.env: dict[str, str] = {}
        self.processes: dict[str, ManagedProcess] = {}
        self.startup_seconds: dict[str, float] = {}
        self._rest: AirflowRest | None = None

    # -- access ------------------------------------------------------------------------

    @property
    def armada(self) -> LocalArmada:
        """The local Armada the stack's connections point at (its counters, jobs, faults)."""
        if self._armada is None:
            raise StackError("the stack has not been started")
        return self._armada

    @property
    def rest(self) -> AirflowRest:
        """The REST API client, logged in as the admin user."""
        if self._rest is None:
            raise StackError("the stack has not been started")
        return self._rest

    @property
    def api_url(self) -> str:
        """The API server's base URL (the UI is served there too)."""
        return f"http://{LOOPBACK}:{self.api_port}"

    def armada_client(self) -> ArmadaClient:
        """A real ``ArmadaClient`` for the local Armada (with its token)."""
        return self.armada.client()

    def run_dag(
        self,
        dag_id: str,
        *,
        conf: dict[str, Any] | None = None,
        timeout: float = 300.0,
        meanwhile: Callable[[str], None] | None = None,
    ) -> StackRun:
        """Trigger ``dag_id`` over the REST API and wait for the run (:func:`.runs.run_dag`)."""
        from armada_hooks.testing.stack.runs import run_dag

        return run_dag(self, dag_id, conf=conf, timeout=timeout, meanwhile=meanwhile)

    def triggerers(self) -> list[ManagedProcess]:
        """The triggerer processes, in start order."""
        return [p for name, p in self.processes.items() if name.startswith("triggerer")]

    # -- start and stop ----------------------------------------------------------------

    def start(self) -> AirflowStack:
        """Start everything and wait until it is healthy; ``stop()`` undoes a failed start."""
        begun = time.monotonic()
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._phase("postgres", self.postgres.start)
            self._phase("armada", self._start_armada)
            self._prepare_home()
            self._phase("db-migrate", self._migrate)
            self._phase("processes", self._start_processes)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds["total"] = time.monotonic() - begun
        return self

    def _phase(self, name: str, step: Any) -> None:
        begun = time.monotonic()
        step()
        self.startup_seconds[name] = time.monotonic() - begun

    def _start_armada(self) -> None:
        if self._armada is None:
            from armada_hooks.testing.server import LocalArmada

            self._armada = LocalArmada(**self._armada_options)
        if not self._armada.running:
            self._armada.start()

    def connection_json(self, **fields: object) -> str:
        """The ``armada_default`` connection (JSON) with ``fields`` replaced.

        An ``extra`` mapping is merged into the connection's extras instead.
        """
        conn = json.loads(self.armada.airflow_connection(lookout_url=self.lookout_url))
        extra = fields.pop("extra", None)
        if isinstance(extra, Mapping):
            conn["extra"] = {**conn["extra"], **extra}
        elif extra is not None:
            conn["extra"] = extra
        conn.update(fields)
        return json.dumps(conn)

    def _prepare_home(self) -> None:
        from cryptography.fernet import Fernet

        self.home = Path(tempfile.mkdtemp(prefix="armada-hooks-airflow-"))
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({ADMIN: self.password}))
        self.api_port = free_port()
        wiring: dict[tuple[str, str], str] = {
            ("core", "dags_folder"): str(self.dags_folder),
            ("core", "fernet_key"): Fernet.generate_key().decode(),
            ("core", "execution_api_server_url"): f"{self.api_url}/execution/",
            ("core", "simple_auth_manager_passwords_file"): str(passwords),
            ("database", "sql_alchemy_conn"): self.postgres.sqlalchemy_url(),
            ("api", "base_url"): self.api_url,
            ("api", "host"): LOOPBACK,
            ("api", "port"): str(self.api_port),
            ("api", "secret_key"): secrets.token_urlsafe(24),
            ("api_auth", "jwt_secret"): secrets.token_urlsafe(32),
            ("logging", "base_log_folder"): str(self.artifacts_dir / "task-logs"),
            ("logging", "dag_processor_child_process_log_directory"): str(
                self.artifacts_dir / "dag-processor-files"
            ),
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({_env_key(*key): value for key, value in {**self.config, **wiring}.items()})
        env["AIRFLOW_HOME"] = str(self.home)
        env["NO_PROXY"] = env["no_proxy"] = f"{LOOPBACK},localhost"
        env.update(self.environment)
        if self.default_connection:
            connections = {DEFAULT_CONN_ID: self.connection_json()}
            for conn_id, fields in self.extra_connections.items():
                connections[conn_id] = self.connection_json(**fields)
            for conn_id, value in connections.items():
                env[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
        self.env = env

    def _migrate(self) -> None:
        run_checked(
            "airflow db migrate",
            [_airflow_bin(), "db", "migrate"],
            env=self.env,
            log_path=self.artifacts_dir / "db-migrate.log",
            timeout=MIGRATE_TIMEOUT,
        )

    def _process(self, name: str, *args: str) -> ManagedProcess:
        return ManagedProcess(
            name,
            [_airflow_bin(), *args],
            env=self.env,
            log_path=self.artifacts_dir / f"{name}.log",
            cwd=self.home,
        )

    def _start_processes(self) -> None:
        airflow = {
            "api-server": ("api-server", "--host", LOOPBACK, "--port", str(self.api_port)),
            "scheduler": ("scheduler", "--skip-serve-logs"),
            "dag-processor": ("dag-processor",),
        }
        for i in range(1, self.triggerer_count + 1):
            airflow[f"triggerer-{i}"] = (
                "triggerer",
                "--skip-serve-logs",
                "--capacity",
                str(self.triggerer_capacity),
            )
        for name, args in airflow.items():
            self.processes[name] = self._process(name, *args).start()
        self._rest = AirflowRest(self.api_url, ADMIN, self.password, timeout=REST_TIMEOUT)
        self.wait_healthy()

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait for the API (and a login), the scheduler, DAG processor and every triggerer."""
        procs = list(self.processes.values())
        wait_until(
            self._api_healthy, timeout=timeout, what="the API server's health", processes=procs
        )
        self.rest.login()
        wait_until(
            lambda: self.live_triggerers() >= self.triggerer_count,
            timeout=timeout,
            what=f"{self.triggerer_count} triggerers to heartbeat",
            processes=procs,
        )

    def _api_healthy(self) -> bool:
        health = self.rest.health()
        components = ("metadatabase", "scheduler", "triggerer", "dag_processor")
        return all(health.get(c, {}).get("status") == "healthy" for c in components)

    def live_triggerers(self, within: float = 30.0) -> int:
        """Triggerer jobs whose heartbeat is at most ``within`` seconds old."""
        return len(self.triggerer_job_ids(within))

    def triggers_by_triggerer(self) -> dict[int, int]:
        """Triggerer job id -> how many triggers it has been assigned (metadata DB)."""
        rows = self.postgres.query(
            "SELECT triggerer_id, count(*) FROM trigger WHERE triggerer_id IS NOT NULL "
            "GROUP BY triggerer_id"
        )
        return {int(str(job_id)): int(str(n)) for job_id, n in rows}

    def triggerer_job_ids(self, within: float = 30.0) -> set[int]:
        """Ids of the triggerer jobs whose heartbeat is at most ``within`` seconds old."""
        rows = self.postgres.query(
            "SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running' "
            "AND latest_heartbeat > now() - make_interval(secs => %s)",
            (within,),
        )
        return {int(str(row[0])) for row in rows}

    def executor_reported(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> bool:
        """Whether the scheduler has taken in the executor's report that this try's worker ended.

        A deferring try's worker reports success as it exits. A trigger that fires before
        the scheduler has taken that report in meets an Airflow 3.3.2 race (the stale report
        fails the re-queued task: "state mismatch"), so a test about to let a deferred job
        end at once waits for this first. Read from the scheduler's log.
        """
        key = (
            f"TaskInstanceKey(dag_id={dag_id!r}, task_id={task_id!r}, run_id={run_id!r}, "
            f"try_number={try_number}, map_index={map_index})"
        )
        log = self.processes["scheduler"].log_path
        return f"Received executor event with state success for task instance {key}" in (
            log.read_text(errors="replace")
        )

    def wait_for_dags(self, *dag_ids: str, timeout: float = 120.0) -> None:
        """Wait until the DAG processor has parsed these DAGs (fail at once on an import error)."""

        def parsed() -> bool:
            errors = self.rest.import_errors()
            if errors:
                raise StackError(f"DAG files failed to parse: {errors}")
            for dag_id in dag_ids:
                self.rest.dag(dag_id)
            return True

        procs = list(self.processes.values())
        wait_until(parsed, timeout=timeout, what=f"DAGs {dag_ids}", processes=procs)

    def listening(self) -> dict[str, set[tuple[str, int]]]:
        """Every listening TCP address of each stack process (and what it forked)."""
        pids = {name: p.pid for name, p in self.processes.items() if p.running()}
        if self.postgres.process is not None:
            pids["postgres"] = self.postgres.process.pid
        return listening_addresses(pids)

    def stop(self) -> None:
        """Stop every process by its PID (triggerers and scheduler first), then PostgreSQL."""
        if self._rest is not None:
            self._rest.close()
            self._rest = None
        for name in reversed(list(self.processes)):
            self.processes[name].stop()
        self.postgres.stop()
        if self._own_armada and self._armada is not None:
            self._armada.stop()
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None
