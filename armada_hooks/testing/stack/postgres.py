"""A throw-away PostgreSQL server: Debian's binaries, a temp data dir, 127.0.0.1, a free port.

Debian installs the server programs (``initdb``, ``postgres``) under
``/usr/lib/postgresql/<version>/bin``, off the ``PATH``; the newest version there is used
(``$ARMADA_HOOKS_PG_BIN`` names another directory). PostgreSQL refuses to run as root, so
under root (CI) the data directory is handed to the ``postgres`` account (created by
Debian's package) and the server runs as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import signal
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from armada_hooks.lifetime import Startable
from armada_hooks.testing.stack.processes import (
    LOOPBACK,
    ManagedProcess,
    StackError,
    free_port,
    run_checked,
    wait_until,
)

if TYPE_CHECKING:
    from psycopg2.extensions import connection

PG_BIN_ENV = "ARMADA_HOOKS_PG_BIN"
DEBIAN_PG_ROOT = Path("/usr/lib/postgresql")
SERVICE_USER = "postgres"
INSTALL_HINT = "install Debian's server: apt-get install -y postgresql (`make pytest` does)"
# A test server: durability traded for speed; nothing here must survive a crash.
FAST_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")


def find_pg_bin() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (see the module docstring)."""
    override = os.environ.get(PG_BIN_ENV)
    if override:
        path = Path(override)
        if not (path / "initdb").is_file():
            raise StackError(f"${PG_BIN_ENV}={override} has no initdb")
        return path
    versions = []
    if DEBIAN_PG_ROOT.is_dir():
        for entry in DEBIAN_PG_ROOT.iterdir():
            if re.fullmatch(r"\d+(\.\d+)?", entry.name) and (entry / "bin" / "initdb").is_file():
                versions.append((float(entry.name), entry / "bin"))
    if versions:
        return max(versions)[1]
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    raise StackError(
        f"no PostgreSQL server found in {DEBIAN_PG_ROOT}/*/bin or on PATH: {INSTALL_HINT}"
    )


class LocalPostgres(Startable):
    """A PostgreSQL server of its own for a test session; ``with`` starts and stops it.

    >>> with LocalPostgres(log_dir=Path("logs")) as pg:
    ...     pg.sqlalchemy_url("airflow")
    """

    def __init__(self, *, log_dir: Path, database: str = "airflow", user: str = "airflow") -> None:
        self.log_dir = log_dir
        self.database = database
        self.user = user
        self.password = secrets.token_urlsafe(18)
        self.host = LOOPBACK
        self.port = 0
        self.root: Path | None = None
        self.process: ManagedProcess | None = None
        self._run_as = SERVICE_USER if os.geteuid() == 0 else None

    def start(self, timeout: float = 60.0) -> LocalPostgres:
        """Run initdb in a temp data dir, start the server on a free port, create the database."""
        bin_dir = find_pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="armada-hooks-pg-"))
        data, sockets = self.root / "data", self.root / "sockets"
        sockets.mkdir()
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self._run_as is not None:
            try:
                account = pwd.getpwnam(self._run_as)
            except KeyError:
                raise StackError(
                    f"running as root, PostgreSQL needs the {self._run_as!r} account: "
                    + INSTALL_HINT
                ) from None
            for path in (self.root, sockets, pwfile):
                os.chown(path, account.pw_uid, account.pw_gid)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}
        log = self.log_dir / "postgres.log"
        run_checked(
            "initdb",
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                self.user,
                f"--pwfile={pwfile}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            env=env,
            log_path=log,
            timeout=timeout,
            user=self._run_as,
        )
        pwfile.unlink()
        self.port = free_port()
        settings = [
            f"listen_addresses={self.host}",
            f"port={self.port}",
            f"unix_socket_directories={sockets}",
            "max_connections=200",
            *FAST_SETTINGS,
        ]
        argv = [str(bin_dir / "postgres"), "-D", str(data)]
        for setting in settings:
            argv += ["-c", setting]
        # SIGINT is PostgreSQL's fast shutdown: sessions are ended, no wait for clients.
        self.process = ManagedProcess(
            "postgres", argv, env=env, log_path=log, user=self._run_as, stop_signal=signal.SIGINT
        ).start()
        wait_until(
            self._accepts_connections,
            timeout=timeout,
            what=f"PostgreSQL on {self.host}:{self.port}",
            processes=[self.process],
        )
        with self.connect("postgres") as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{self.database}"')
        return self

    def _accepts_connections(self) -> bool:
        with self.connect("postgres"):
            return True

    def connect(self, database: str | None = None) -> contextlib.closing[connection]:
        """A psycopg2 connection to ``database`` (default: ours); ``with`` closes it."""
        import psycopg2

        return contextlib.closing(
            psycopg2.connect(
                host=self.host,
                port=self.port,
                user=self.user,
                password=self.password,
                dbname=database or self.database,
                connect_timeout=5,
            )
        )

    def sqlalchemy_url(self, database: str | None = None) -> str:
        """The SQLAlchemy URL Airflow's ``sql_alchemy_conn`` takes."""
        return (
            f"postgresql+psycopg2://{self.user}:{self.password}@{self.host}:{self.port}/"
            f"{database or self.database}"
        )

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Rows of one read-only query on our database (for tests' look inside Airflow)."""
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def stop(self) -> None:
        """Stop the server by its PID and remove the data directory."""
        if self.process is not None:
            self.process.stop()
            self.process = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
