"""The local Armada's state: queues, jobs, job-set event logs, and their SQLite copy.

Every read and write happens under ``store.lock``. Each job set's event log has a
condition variable on that same lock, so a watching event stream wakes as soon as an
event is appended. With a ``path``, dirty state is written to SQLite by :meth:`flush`
(called periodically by the lifecycle engine and on stop), and loaded on start.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from armada_client.armada import event_pb2, submit_pb2

from armada_hooks.testing.records import JobRecord

if TYPE_CHECKING:
    from collections.abc import Iterable

    from armada_hooks.testing.events import JobRef

JobSetKey = tuple[str, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS queues (name TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, ordinal INTEGER NOT NULL, data TEXT NOT NULL, item BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    queue TEXT NOT NULL, job_set TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (queue, job_set, seq)
);
"""


def message_id(seq: int, created_ms: int) -> str:
    """An opaque event message id, shaped like Armada's ``ms:seq:index:last``."""
    return f"{created_ms}:{seq}:0:1"


def message_seq(message_id: str) -> int:
    """The sequence number inside a message id made by :func:`message_id`."""
    parts = message_id.split(":")
    if len(parts) != 4 or not parts[1].isdigit():
        raise ValueError(f"from_message_id {message_id!r} is not a message id this server issued")
    return int(parts[1])


@dataclass
class JobSetLog:
    """The ordered events of one (queue, job set); message ids are 1-based sequence numbers."""

    cond: threading.Condition
    events: list[event_pb2.EventStreamMessage] = field(default_factory=list)


class Store:
    """All server state, guarded by one lock; optionally mirrored to SQLite."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.lock = threading.RLock()
        self.path = Path(path) if path is not None else None
        self.queues: dict[str, submit_pb2.Queue] = {}
        self.jobs: dict[str, JobRecord] = {}  # in submission order
        self._ordinal: dict[str, int] = {}
        self.runs: dict[str, JobRecord] = {}
        self.by_client_id: dict[tuple[str, str], str] = {}
        self.by_external_uri: dict[tuple[str, str, str], list[str]] = {}
        self.job_sets: dict[JobSetKey, JobSetLog] = {}
        self.clock_high_water = 0.0
        self._dirty_jobs: set[str] = set()
        self._dirty_queues: set[str] = set()
        self._deleted_queues: set[str] = set()
        self._new_events: list[tuple[JobSetKey, int, bytes]] = []
        if self.path is not None:
            self._load()

    # -- jobs and indexes -------------------------------------------------

    def add_job(self, job: JobRecord) -> None:
        """Record a newly submitted job and index it."""
        self.jobs[job.job_id] = job
        self._ordinal[job.job_id] = len(self._ordinal)
        if job.client_id:
            self.by_client_id.setdefault((job.queue, job.client_id), job.job_id)
        if job.external_job_uri:
            key = (job.queue, job.job_set_id, job.external_job_uri)
            self.by_external_uri.setdefault(key, []).append(job.job_id)
        for run in job.runs:
            self.runs[run.run_id] = job
        self.mark(job)

    def mark(self, job: JobRecord) -> None:
        """Note that ``job`` changed, so the next flush writes it."""
        self._dirty_jobs.add(job.job_id)

    def job_set(self, key: JobSetKey) -> JobSetLog:
        """The event log of ``key``, created empty if new."""
        log = self.job_sets.get(key)
        if log is None:
            log = JobSetLog(cond=threading.Condition(self.lock))
            self.job_sets[key] = log
        return log

    def emit(self, job: JobRef, message: event_pb2.EventMessage, now: float) -> None:
        """Append an event to the job's job set and wake its watchers."""
        log = self.job_set((job.queue, job.job_set_id))
        seq = len(log.events) + 1
        stream_message = event_pb2.EventStreamMessage(
            id=message_id(seq, int(now * 1000)), message=message
        )
        log.events.append(stream_message)
        if self.path is not None:
            self._new_events.append(
                ((job.queue, job.job_set_id), seq, stream_message.SerializeToString())
            )
        log.cond.notify_all()

    # -- queues -----------------------------------------------------------

    def put_queue(self, queue: submit_pb2.Queue) -> None:
        """Create or replace a queue."""
        self.queues[queue.name] = queue
        self._dirty_queues.add(queue.name)
        self._deleted_queues.discard(queue.name)

    def delete_queue(self, name: str) -> None:
        """Remove a queue (its jobs stay, as in Armada)."""
        self.queues.pop(name, None)
        self._dirty_queues.discard(name)
        self._deleted_queues.add(name)

    # -- persistence ------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        conn = sqlite3.connect(self.path, timeout=30)
        conn.executescript(_SCHEMA)
        return conn

    def _load(self) -> None:
        assert self.path is not None
        if not self.path.exists():
            return
        conn = self._connect()
        try:
            for (data,) in conn.execute("SELECT data FROM queues"):
                queue = submit_pb2.Queue.FromString(data)
                self.queues[queue.name] = queue
            for data, item in conn.execute("SELECT data, item FROM jobs ORDER BY ordinal"):
                self.add_job(JobRecord.from_json(json.loads(data), item))
            rows = conn.execute(
                "SELECT queue, job_set, data FROM events ORDER BY queue, job_set, seq"
            )
            for queue_name, job_set_id, data in rows:
                log = self.job_set((queue_name, job_set_id))
                log.events.append(event_pb2.EventStreamMessage.FromString(data))
            row = conn.execute("SELECT value FROM meta WHERE key = 'clock'").fetchone()
            if row is not None:
                self.clock_high_water = float(row[0])
        finally:
            conn.close()
        self._dirty_jobs.clear()

    def flush(self, now: float | None = None) -> None:
        """Record job time ``now``; write what changed since the last flush to SQLite."""
        if now is not None:
            self.clock_high_water = max(self.clock_high_water, now)
        if self.path is None:
            return
        with self.lock:
            jobs = [
                (
                    job_id,
                    self._ordinal[job_id],
                    json.dumps(self.jobs[job_id].to_json()),
                    self.jobs[job_id].item.SerializeToString(),
                )
                for job_id in self._dirty_jobs
            ]
            queues = [(n, self.queues[n].SerializeToString()) for n in self._dirty_queues]
            deleted = list(self._deleted_queues)
            events = self._new_events
            self._dirty_jobs, self._dirty_queues, self._deleted_queues = set(), set(), set()
            self._new_events = []
        conn = self._connect()
        try:
            with conn:
                conn.executemany("INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)", jobs)
                conn.executemany("INSERT OR REPLACE INTO queues VALUES (?, ?)", queues)
                conn.executemany("DELETE FROM queues WHERE name = ?", [(n,) for n in deleted])
                conn.executemany(
                    "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?)",
                    [(k[0], k[1], seq, data) for k, seq, data in events],
                )
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('clock', ?)",
                    (str(now if now is not None else time.time()),),
                )
        finally:
            conn.close()

    def jobs_in_set(self, queue: str, job_set_id: str) -> Iterable[JobRecord]:
        """Every job of one job set, in submission order."""
        return [j for j in self.jobs.values() if j.queue == queue and j.job_set_id == job_set_id]
