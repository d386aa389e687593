"""The job service's embedded store: one SQLite file in WAL mode.

WAL lets readers (``sqlite3`` on the command line, a second process) look while the
service writes; ``synchronous=NORMAL`` makes a commit durable at the next checkpoint,
which loses at most the last moments on power loss and nothing on a process crash. What
a lost commit held is replayed, since the message id is committed with the changes.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from armada_hooks.jobservice.settings import JobServiceConfigError
from armada_hooks.jobservice.store import JobRecord, JobSetKey, JobSetRecord
from armada_hooks.states import TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from armada_hooks.jobservice.store import JobStateStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_sets (
    queue TEXT NOT NULL,
    job_set_id TEXT NOT NULL,
    last_message_id TEXT NOT NULL DEFAULT '',
    touched REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, job_set_id)
);
CREATE TABLE IF NOT EXISTS jobs (
    queue TEXT NOT NULL,
    job_set_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    state INTEGER NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (queue, job_set_id, job_id)
);
"""
_TOUCH = (
    "INSERT INTO job_sets (queue, job_set_id, touched) VALUES (?, ?, ?) "
    "ON CONFLICT (queue, job_set_id) DO UPDATE SET touched = max(touched, excluded.touched)"
)
_TERMINAL = ",".join(str(s.value) for s in sorted(TERMINAL_STATES, key=lambda s: s.value))


class SQLiteStore:
    """A :class:`~armada_hooks.jobservice.store.JobStateStore` in one SQLite file.

    ``path`` ``":memory:"`` keeps everything in memory (lost when the store closes). The
    connection may be used from any thread, one call at a time.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            parent = Path(self.path).parent
            if not parent.is_dir():
                raise JobServiceConfigError(
                    f"job service store {self.path}: folder {parent} does not exist"
                )
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JobServiceConfigError(
                f"job service store {self.path} cannot be used as SQLite: {exc}"
            ) from exc
        self._lock = threading.Lock()

    def journal_mode(self) -> str:
        """SQLite's journal mode for this file (``"wal"``; ``"memory"`` for ``:memory:``)."""
        with self._lock:
            return str(self._db.execute("PRAGMA journal_mode").fetchone()[0])

    def job_set(self, key: JobSetKey) -> JobSetRecord | None:
        """The job set's record, or None."""
        with self._lock:
            row = self._db.execute(
                f"SELECT s.queue, s.job_set_id, s.last_message_id, s.touched, "
                f"NOT EXISTS (SELECT 1 FROM jobs j WHERE j.queue = s.queue AND "
                f"j.job_set_id = s.job_set_id AND j.state NOT IN ({_TERMINAL})) "
                f"FROM job_sets s WHERE s.queue = ? AND s.job_set_id = ?",
                key,
            ).fetchone()
        return _job_set(row) if row is not None else None

    def jobs(self, key: JobSetKey) -> dict[str, JobRecord]:
        """Every job of the job set, by id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id, state, reason FROM jobs WHERE queue = ? AND job_set_id = ?", key
            ).fetchall()
        return {job: JobRecord(job, JobState(state), reason) for job, state, reason in rows}

    def record(self, key: JobSetKey, message_id: str, changes: Iterable[JobRecord]) -> None:
        """Upsert the changed jobs and the job set's last message id in one transaction."""
        rows = [(*key, c.job_id, c.state.value, c.reason) for c in changes]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO jobs (queue, job_set_id, job_id, state, reason) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (queue, job_set_id, job_id) "
                    "DO UPDATE SET state = excluded.state, reason = excluded.reason",
                    rows,
                )
                self._db.execute(
                    "INSERT INTO job_sets (queue, job_set_id, last_message_id) VALUES (?, ?, ?) "
                    "ON CONFLICT (queue, job_set_id) DO UPDATE SET "
                    "last_message_id = excluded.last_message_id",
                    (*key, message_id),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def touch(self, key: JobSetKey, when: float) -> None:
        """Note a request at ``when`` (epoch seconds)."""
        self.touch_many({key: when})

    def touch_many(self, touches: Mapping[JobSetKey, float]) -> None:
        """Note requests (epoch seconds by job set) in one transaction."""
        rows = [(*key, when) for key, when in touches.items()]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(_TOUCH, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def job_sets(self) -> list[JobSetRecord]:
        """Every job set held."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT s.queue, s.job_set_id, s.last_message_id, s.touched, "
                f"NOT EXISTS (SELECT 1 FROM jobs j WHERE j.queue = s.queue AND "
                f"j.job_set_id = s.job_set_id AND j.state NOT IN ({_TERMINAL})) "
                f"FROM job_sets s ORDER BY s.queue, s.job_set_id"
            ).fetchall()
        return [_job_set(row) for row in rows]

    def purge(self, key: JobSetKey) -> None:
        """Delete the job set and its jobs."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM jobs WHERE queue = ? AND job_set_id = ?", key)
            self._db.execute("DELETE FROM job_sets WHERE queue = ? AND job_set_id = ?", key)
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


def _job_set(row: tuple[str, str, str, float, int]) -> JobSetRecord:
    queue, job_set_id, last_message_id, touched, all_terminal = row
    return JobSetRecord(queue, job_set_id, last_message_id, float(touched), bool(all_terminal))


def open_store(address: str) -> JobStateStore:
    """The store a ``--store`` address names: ``sqlite:PATH`` (or a bare path), or Redis.

    ``redis://HOST:PORT/DB`` opens a :class:`~.redis_store.RedisStore`.

    :raises JobServiceConfigError: an address of a kind this build cannot open.
    """
    if address.startswith(("redis://", "rediss://")):
        from armada_hooks.jobservice.redis_store import RedisStore

        return RedisStore(address)
    if address.startswith("sqlite:"):
        return SQLiteStore(address.removeprefix("sqlite:").removeprefix("//") or ":memory:")
    if "://" in address:
        scheme = address.split("://", 1)[0]
        raise JobServiceConfigError(
            f"job service store {address!r}: {scheme}:// is not supported; use sqlite:PATH "
            "or redis://HOST:PORT/DB"
        )
    return SQLiteStore(address)
