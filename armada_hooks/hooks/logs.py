"""A job's container log through Binoculars: incremental, each line exactly once, in order.

Fetches follow log activity, not the number of jobs: a job that writes is fetched every
``interval`` seconds; a quiet one waits twice as long after each empty fetch, up to
``max_interval``, and is back to ``interval`` as soon as it writes again. The module
knows no hook: a fetcher is handed how to describe its job and how to reach a cluster's
Binoculars.

Binoculars passes ``since_time`` to Kubernetes, which keeps lines stamped at or after it
*truncated to whole seconds*. Fetching "since the last line seen" therefore returns that
line again, plus any others of the same second. :class:`JobLogCursor` keeps the lines of
that last second and drops them from the next fetch, so nothing is repeated or lost.

A cursor's :class:`LogPosition` is a few plain values that a deferred task stores outside
the triggerer, so that a trigger rebuilt after a crash resumes where the old one was and
says which lines may repeat (:meth:`ArmadaLogFetcher.resume`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from armada_hooks.defaults import DEFAULT_LOG_INTERVAL, MAX_LOG_INTERVAL
from armada_hooks.rpc import RETRYABLE_CODES, status_code, status_details
from armada_hooks.states import JobState
from armada_hooks.timestamps import parse_rfc3339_ns

if TYPE_CHECKING:
    import grpc

    from armada_hooks.job_description import JobDescription
    from armada_hooks.protocols import LogLineLike, LogProtocol
    from armada_hooks.rpc import RetryPolicy

_NS = 1_000_000_000


class LineLogger(Protocol):
    """Where fetched lines go: a ``logging.Logger``, an adapter, or Airflow's task logger."""

    def info(self, msg: Any, /, *args: Any) -> Any:
        """Log at INFO."""
        ...

    def warning(self, msg: Any, /, *args: Any) -> Any:
        """Log at WARNING."""
        ...


class BinocularsLogClient:
    """:class:`~armada_hooks.protocols.LogProtocol` over Armada's Binoculars gRPC service."""

    def __init__(self, channel: grpc.Channel) -> None:
        from armada_client.armada import binoculars_pb2_grpc

        self._stub = binoculars_pb2_grpc.BinocularsStub(channel)  # type: ignore[no-untyped-call]

    def logs(
        self, job_id: str, since_time: str = "", pod_namespace: str = "default"
    ) -> Sequence[LogLineLike]:
        """The job's pod log from ``since_time`` (whole seconds, inclusive) on."""
        from armada_client.armada import binoculars_pb2

        request = binoculars_pb2.LogRequest(
            job_id=job_id, pod_number=0, pod_namespace=pod_namespace, since_time=since_time
        )
        return list(self._stub.Logs(request).log)


@dataclasses.dataclass(frozen=True)
class LogPosition:
    """How far a job's log has been logged, in plain values (stored as JSON).

    :param lines: how many lines have been logged.
    :param since: the timestamp of the last of them ("" when none).
    :param at_since: how many of them carry exactly that timestamp.
    """

    lines: int = 0
    since: str = ""
    at_since: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The position as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogPosition:
        """The position :meth:`to_dict` made; ``ValueError`` names what is wrong."""
        lines, since, at_since = data.get("lines"), data.get("since"), data.get("at_since")
        if (
            not isinstance(lines, int)
            or not isinstance(at_since, int)
            or not isinstance(since, str)
        ):
            raise ValueError(f"not a log position (lines, since, at_since): {dict(data)!r}")
        if lines < 0 or not 0 <= at_since <= lines:
            raise ValueError(f"inconsistent log position: {dict(data)!r}")
        return cls(lines, since, at_since)


class JobLogCursor:
    """Turns overlapping fetches into new lines only; :attr:`since` is the next ``since_time``."""

    def __init__(self, position: LogPosition | None = None) -> None:
        start = position or LogPosition()
        self.since = start.since
        self.lines = start.lines
        self._last_ns = _ns(start.since) if start.since else -1
        self._at_since = start.at_since  # lines emitted stamped exactly `since`
        self._window: list[tuple[str, str]] = []  # lines emitted in the second of `since`
        self._resuming = position is not None and position.lines > 0

    @property
    def position(self) -> LogPosition:
        """Where the cursor stands: what a cursor resumed from it will not return again."""
        return LogPosition(self.lines, self.since, self._at_since)

    def new_lines(self, batch: Sequence[LogLineLike]) -> list[LogLineLike]:
        """The lines of ``batch`` (a fetch from :attr:`since`) not returned before."""
        if self._resuming:
            return self._first_after_resume(batch)
        pairs = [(line.timestamp, line.line) for line in batch]
        overlap = len(self._window)
        if pairs[:overlap] == self._window:
            fresh = list(batch[overlap:])
        else:  # the log changed under us (a new run's pod): keep only what is newer
            seen = set(self._window)
            fresh = [
                line
                for line in batch
                if (line.timestamp, line.line) not in seen and _ns(line.timestamp) >= self._last_ns
            ]
        return self._advance(fresh)

    def _first_after_resume(self, batch: Sequence[LogLineLike]) -> list[LogLineLike]:
        """Skip what the position covers: lines stamped before it, and its ``at_since``."""
        self._resuming = False
        skip, old, fresh = self._at_since, [], []
        for line in batch:
            stamp = _ns(line.timestamp)
            if stamp < self._last_ns or (stamp == self._last_ns and skip > 0):
                skip -= stamp == self._last_ns
                old.append(line)
            else:
                fresh.append(line)
        second = self._last_ns // _NS
        self._window = [(ln.timestamp, ln.line) for ln in old if _ns(ln.timestamp) // _NS == second]
        return self._advance(fresh)

    def _advance(self, fresh: list[LogLineLike]) -> list[LogLineLike]:
        for line in fresh:
            stamp = _ns(line.timestamp)
            if stamp // _NS != self._last_ns // _NS:
                self._window = []
            self._at_since = self._at_since + 1 if stamp == self._last_ns else 1
            self._window.append((line.timestamp, line.line))
            self._last_ns, self.since = stamp, line.timestamp
        self.lines += len(fresh)
        return fresh


def _ns(timestamp: str) -> int:
    try:
        return parse_rfc3339_ns(timestamp)
    except ValueError:
        return -1


class ArmadaLogFetcher(threading.Thread):
    """Streams a job's container log into ``logger`` while the job runs.

    Like the AWS Batch task log fetcher: :meth:`start` it once the job runs, :meth:`stop`
    it when the job ends — stopping drains the log once more, so the last lines arrive.
    A deferred task calls :meth:`fetch_once` itself and sleeps :attr:`next_delay` between
    fetches, then :meth:`drain` once the job has ended, so both ways share one cadence,
    and may :meth:`resume` from a stored :class:`LogPosition` (:attr:`settled` is the one
    to store). Fetch errors never fail the task: a pod not there yet is waited for;
    anything else is logged once per kind, and the next fetch catches up. The drain has
    no next fetch, so it retries a retryable failure with ``retry_policy`` (the hook's).
    With no Binoculars target for the job's cluster it says so once at INFO and fetches
    nothing.

    :param describe: ``job_id -> JobDescription`` (where the job runs).
    :param log_client: ``cluster -> LogProtocol | None`` (None: no Binoculars there).
    :param source: what configures the log clients, for the message when there is none
        (e.g. ``"Airflow connection 'armada_default'"``).
    :param retry_policy: how :meth:`drain` retries a Logs call that fails with a
        retryable code (none: it tries once).
    """

    def __init__(
        self,
        job_id: str,
        logger: LineLogger,
        *,
        describe: Callable[[str], JobDescription],
        log_client: Callable[[str], LogProtocol | None],
        source: str = "the connection",
        interval: float = DEFAULT_LOG_INTERVAL,
        max_interval: float = MAX_LOG_INTERVAL,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(name=f"armada-log-fetcher-{job_id}", daemon=True)
        if interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {interval}")
        self.job_id = job_id
        self.logger = logger
        self.describe = describe
        self.log_client_for = log_client
        self.source = source
        self.interval = interval
        self.max_interval = max(interval, max_interval)
        self.retry_policy = retry_policy
        self.next_delay = interval
        self.cursor = JobLogCursor()
        self.settled = LogPosition()
        self.resumed_from: LogPosition | None = None
        self.lines_logged = 0
        self.fetches = 0
        self._stop_event = threading.Event()
        self._client: LogProtocol | None = None
        self._namespace = "default"
        self._disabled = False
        self._warned: set[str] = set()

    def run(self) -> None:
        """Fetch at :attr:`next_delay` intervals until stopped, then once more."""
        while not self._stop_event.is_set():
            self.fetch_once()
            self._stop_event.wait(self.next_delay)
        self.drain()

    def stop(self) -> None:
        """Stop fetching after a final drain; returns when the thread has finished."""
        self._stop_event.set()
        if self.is_alive():
            self.join()

    def resume(self, position: LogPosition) -> None:
        """Carry on after ``position``, which an earlier fetcher of this job got to.

        That fetcher may have logged lines after the position it left (it died before
        storing a newer one), and no one can tell which: the first fetch here logs its
        lines between two WARNING lines saying they may repeat. Lines up to ``position``
        are not logged again, and lines after that first fetch are logged once.
        """
        self.cursor = JobLogCursor(position)
        self.settled = position
        self.resumed_from = position

    def drain(self) -> int:
        """The last fetch, once the job has ended: :meth:`fetch_once`, with retries.

        No later fetch would bring the lines a failed drain misses, so a retryable failure
        (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED) is retried by
        ``retry_policy`` before it is given up, and warned about.
        """
        return self.fetch_once(retry=True)

    def fetch_once(self, *, retry: bool = False) -> int:
        """Fetch and log the new lines; how many there were. Sets :attr:`next_delay`.

        ``retry``: retry a retryable failure with ``retry_policy`` (:meth:`drain`).
        :attr:`settled` becomes the position before this fetch's lines: those lines were
        handed to the logger a whole fetch earlier than a position stored now claims.
        """
        if self._disabled:
            return 0
        self.settled = self.cursor.position
        try:
            client = self._resolve()
            if client is None:
                self.next_delay = self.interval  # not running yet: look again soon
                return 0
            self.fetches += 1
            where = (self.job_id, self.cursor.since, self._namespace)
            if retry and self.retry_policy is not None:
                batch = self.retry_policy.call("Logs", client.logs, *where, codes=RETRYABLE_CODES)
            else:
                batch = client.logs(*where)
        except Exception as exc:
            self._on_error(exc, last=retry)
            self.next_delay = self.interval
            return 0
        fresh = self.cursor.new_lines(batch)
        resumed, self.resumed_from = self.resumed_from, None
        if resumed is not None:
            self._say_resumed(resumed, len(fresh))
        for line in fresh:
            self.logger.info("%s", line.line)
        if resumed is not None and fresh:
            self.logger.warning(
                "End of the %d container lines of Armada job %s that may repeat; "
                "each line from here on appears once",
                len(fresh),
                self.job_id,
            )
        self.lines_logged += len(fresh)
        if fresh:
            self.next_delay = self.interval
        else:  # quiet: back off, so Binoculars load follows log activity
            self.next_delay = min(self.max_interval, self.next_delay * 2)
        return len(fresh)

    def _say_resumed(self, position: LogPosition, fresh: int) -> None:
        where = f"after line {position.lines}" if position.lines else "from its first line"
        if not fresh:
            self.logger.info(
                "Container log of Armada job %s resumes after a triggerer restart, %s; "
                "no line repeats",
                self.job_id,
                where,
            )
            return
        first = position.lines + 1
        self.logger.warning(
            "Container log of Armada job %s resumes after a triggerer restart, %s: "
            "lines %d to %d below may already appear above (the previous triggerer may "
            "have logged them after it last stored its position)",
            self.job_id,
            where,
            first,
            first + fresh - 1,
        )

    def _resolve(self) -> LogProtocol | None:
        if self._client is not None:
            return self._client
        description = self.describe(self.job_id)
        if not description.cluster or description.state is JobState.UNKNOWN:
            return None  # not leased yet: try again next tick
        self._namespace = description.namespace or "default"
        client = self.log_client_for(description.cluster)
        if client is None:
            self._disabled = True
            self.logger.info(
                "No Binoculars target for cluster %r on %s (extra 'binoculars_target'); "
                "the container log of Armada job %s is not fetched",
                description.cluster,
                self.source,
                self.job_id,
            )
        self._client = client
        return client

    def _on_error(self, exc: Exception, *, last: bool = False) -> None:
        code = status_code(exc)
        # A typed error (the retries gave up) carries the code's name as a string.
        typed = getattr(exc, "code", None)
        name = code.name if code else typed if isinstance(typed, str) and typed else ""
        name = name or type(exc).__name__
        if name == "NOT_FOUND":
            self._client = None  # the pod is not there (yet, or any more): look again
            return
        if last:  # nothing fetches after the drain: say what is missing, every time
            self.logger.warning(
                "Could not fetch the end of the log of Armada job %s (%s: %s); lines it wrote "
                "after the last fetch are missing here",
                self.job_id,
                name,
                status_details(exc),
            )
        elif name not in self._warned:
            self._warned.add(name)
            self.logger.warning(
                "Could not fetch the log of Armada job %s (%s: %s); will keep trying",
                self.job_id,
                name,
                status_details(exc),
            )
