"""What the job service keeps, and the small interface every store offers.

Per (queue, job set): the id of the last stream message applied, the wall-clock time a
request last touched it, and each job's Armada state and reason. A message's job changes
and its id are written in one step, so that a stream resumed from the stored id after a
restart replays nothing that was applied and misses nothing that was not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from armada_hooks.states import JobState

JobSetKey = tuple[str, str]  # (queue, job set id)


@dataclass(frozen=True)
class JobRecord:
    """One job's last known Armada state and the reason Armada gave (if any)."""

    job_id: str
    state: JobState
    reason: str = ""


@dataclass(frozen=True)
class JobSetRecord:
    """One followed job set: where its stream was left, when it was last asked about.

    ``all_terminal``: every job it knows has ended (true of a job set that knows none).
    """

    queue: str
    job_set_id: str
    last_message_id: str
    touched: float  # epoch seconds
    all_terminal: bool

    @property
    def key(self) -> JobSetKey:
        """``(queue, job_set_id)``."""
        return (self.queue, self.job_set_id)


class JobStateStore(Protocol):
    """The job service's storage; SQLite is the embedded default.

    Called from the service's event loop and, for the sweep's bulk reads and writes, from
    a worker thread: a store is safe to call from several threads.
    """

    def job_set(self, key: JobSetKey) -> JobSetRecord | None:
        """The job set's record, or None if the store has none."""
        ...

    def jobs(self, key: JobSetKey) -> dict[str, JobRecord]:
        """Every job the store knows in the job set, by id."""
        ...

    def record(self, key: JobSetKey, message_id: str, changes: Iterable[JobRecord]) -> None:
        """Write job changes and the id of the last message they came from, atomically."""
        ...

    def touch(self, key: JobSetKey, when: float) -> None:
        """Note a request at epoch second ``when`` (creating the job set's record)."""
        ...

    def touch_many(self, touches: Mapping[JobSetKey, float]) -> None:
        """:meth:`touch` each job set at its epoch second, in one write."""
        ...

    def job_sets(self) -> list[JobSetRecord]:
        """Every job set the store holds."""
        ...

    def purge(self, key: JobSetKey) -> None:
        """Delete the job set and its jobs."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


@dataclass(frozen=True)
class StreamDown:
    """A job set's event stream has not worked since ``since`` (epoch seconds): ``problem``."""

    since: float
    problem: str


class LeaseLostError(Exception):
    """A write for a job set whose lease another replica holds now."""


@runtime_checkable
class LeasedStore(Protocol):
    """A store shared by replicas: one replica at a time follows each job set.

    Its :meth:`record` refuses (:class:`LeaseLostError`) a write for a job set whose
    lease another replica holds, so a replica that lost a lease can never overwrite the
    new holder's states.
    """

    owner: str  # this replica's name in the leases

    def acquire(self, key: JobSetKey, ttl: float) -> bool:
        """Take or renew the job set's lease for ``ttl`` seconds; False if another holds it."""
        ...

    def release(self, key: JobSetKey) -> None:
        """Give the job set's lease up, if this replica holds it."""
        ...

    def set_stream_down(self, key: JobSetKey, down: StreamDown | None) -> None:
        """(The lease holder.) Since when its stream of the job set has not worked, and why.

        None: it works.
        """
        ...

    def stream_down(self, key: JobSetKey) -> StreamDown | None:
        """What the lease holder last recorded of its stream of the job set (None: works)."""
        ...
