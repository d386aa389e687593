"""One Armada job set, read and rendered for a terminal (``armada-hooks jobs``).

Armada has no call that lists a queue's jobs: a job set's event stream is where its jobs
are named. :func:`read_job_set` replays the stream up to now (GetJobSetEvents without
watching), then asks GetJobStatus for every job's current state (``MAX_QUERY_IDS`` a
call) and GetJobErrors why the failed ones ended. :func:`follow` then watches the stream
from the last message read, one line per event. Event kinds map to states through
:func:`armada_hooks.job_events.event_state`, the mapping the event-mode triggers use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from armada_client.armada import event_pb2

from armada_hooks.job_description import proto_time
from armada_hooks.job_events import event_state
from armada_hooks.rpc import chunks
from armada_hooks.states import FAILURE_STATES, JobState, states_from_answers

if TYPE_CHECKING:
    from armada_client.client import ArmadaClient

    from armada_hooks.testing.job_sets import JobSetSummary


@dataclass
class JobRow:
    """What one job set says about one job: its events, its current state, why it failed."""

    job_id: str
    events: list[str] = field(default_factory=list)  # event kinds, oldest first
    last_at: datetime | None = None
    state: JobState = JobState.UNKNOWN  # GetJobStatus's answer (UNKNOWN: not answered)
    reason: str = ""


@dataclass
class JobSetView:
    """A job set's jobs in the order of their first event, and where its stream was left."""

    queue: str
    job_set_id: str
    jobs: dict[str, JobRow] = field(default_factory=dict)
    events: int = 0
    last_message_id: str = ""

    def take(self, message: event_pb2.EventStreamMessage) -> None:
        """Count one stream message against its job."""
        self.last_message_id = message.id
        kind = message.message.WhichOneof("events")
        job_id, _ = event_state(message.message)
        if kind is None or not job_id:
            return
        self.events += 1
        row = self.jobs.setdefault(job_id, JobRow(job_id))
        row.events.append(kind)
        row.last_at = event_time(message)


def event_time(message: event_pb2.EventStreamMessage) -> datetime | None:
    """When the event happened (UTC), or None if the server left it out."""
    kind = message.message.WhichOneof("events")
    if kind is None:
        return None
    body = getattr(message.message, kind)
    return proto_time(body, "created")


def read_job_set(
    client: ArmadaClient, queue: str, job_set_id: str, *, missing_ok: bool = False
) -> JobSetView:
    """The job set's events up to now, with each job's current state and failure reason.

    A job set with no event is an error (Armada's NOT_FOUND) unless ``missing_ok``.
    Raises ``grpc.RpcError`` as the calls fail.
    """
    view = JobSetView(queue, job_set_id)
    # Not watching, Armada stops after the job set's last message as of the request, and
    # errorIfMissing answers NOT_FOUND for a set with no stream (internal/server/event/event.go).
    request = event_pb2.JobSetRequest(
        queue=queue, id=job_set_id, watch=False, errorIfMissing=not missing_ok
    )
    for message in client.event_stub.GetJobSetEvents(request):
        view.take(message)
    ids = list(view.jobs)
    states = states_from_answers(ids, [client.get_job_status(part) for part in chunks(ids)])
    failed = [job_id for job_id, state in states.items() if state in FAILURE_STATES]
    reasons = {
        job_id: reason
        for part in chunks(failed)
        for job_id, reason in client.get_job_errors(part).job_errors.items()
    }
    for job_id, row in view.jobs.items():
        row.state = states[job_id]
        row.reason = reasons.get(job_id, "")
    return view


def follow(client: ArmadaClient, view: JobSetView, write: Callable[[str], None]) -> None:
    """Watch the job set after ``view.last_message_id``; ``write`` one line per event.

    Returns when the server ends the stream; the stream is cancelled however this ends
    (Ctrl-C included). Raises ``grpc.RpcError`` if the stream fails.
    """
    request = event_pb2.JobSetRequest(
        queue=view.queue, id=view.job_set_id, from_message_id=view.last_message_id, watch=True
    )
    stream = client.event_stub.GetJobSetEvents(request)
    try:
        for message in stream:
            view.take(message)
            if message.message.WhichOneof("events") is not None:
                write(event_line(message))
    finally:
        stream.cancel()


def event_line(message: event_pb2.EventStreamMessage) -> str:
    """``TIME  JOB  kind -> STATE: reason`` for one event (state and reason when it has them)."""
    kind = str(message.message.WhichOneof("events"))
    job_id, state = event_state(message.message)
    line = f"{_when(event_time(message))}  {job_id}  {kind}"
    if state is not None:
        line += f" -> {state.name}"
    reason = str(getattr(getattr(message.message, kind), "reason", ""))
    return f"{line}: {_one_line(reason)}" if reason else line


def render_job_set(view: JobSetView) -> list[str]:
    """The job set as a table: one row per job, its failure reason on a line below."""
    n = len(view.jobs)
    header = (
        f"job set {view.job_set_id!r} in queue {view.queue!r}: "
        f"{n} job{'s' * (n != 1)}, {view.events} event{'s' * (view.events != 1)}"
    )
    if not view.jobs:
        return [header]
    rows = [
        (
            row.job_id,
            row.state.name,
            row.events[-1],
            _when(row.last_at),
            f"{len(row.events)}: {' '.join(row.events)}",
        )
        for row in view.jobs.values()
    ]
    notes = [
        f"    reason: {_one_line(row.reason)}" if row.reason else "" for row in view.jobs.values()
    ]
    table = _table(("JOB ID", "STATE", "LAST EVENT", "AT (UTC)", "EVENTS"), rows)
    lines = [header, table[0]]
    for line, note in zip(table[1:], notes, strict=True):
        lines += [line, note] if note else [line]
    return lines


def render_job_sets(queue: str, job_sets: Sequence[JobSetSummary]) -> list[str]:
    """A queue's job sets (the local Armada's ListJobSets) as a table."""
    n = len(job_sets)
    header = f"queue {queue!r}: {n} job set{'s' * (n != 1)}"
    if not job_sets:
        return [header]
    rows = [
        (s.job_set_id, str(s.jobs), ", ".join(f"{k} {v}" for k, v in sorted(s.states.items())))
        for s in job_sets
    ]
    return [
        header,
        *_table(("JOB SET", "JOBS", "STATES"), rows),
        "(--job-set S lists a set's jobs)",
    ]


def _table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart; the last column is not padded."""
    rows = [columns, *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]])
        for row in rows
    ]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if moment is not None else "-"


def _one_line(text: str) -> str:
    return " ".join(text.split())
