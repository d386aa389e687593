"""Container logs through Binoculars: ``armada_hooks.hooks.logs`` and the hook's log fetching.

Everything except the :class:`JobLogCursor` unit tests talks gRPC to a LocalArmada, which
serves Binoculars on the same port as the rest of Armada's API.
"""

from __future__ import annotations

import calendar
import json
import logging
import re
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest
import structlog.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.hooks.logs import (
    ArmadaLogFetcher,
    BinocularsLogClient,
    JobLogCursor,
    LogPosition,
)
from armada_hooks.job_description import JobDescription
from armada_hooks.protocols import LogLineLike, LogProtocol
from armada_hooks.states import JobState
from armada_hooks.testing import LocalArmada, job_request_item
from armada_hooks.testing.behaviour import JobBehaviour

TIME_SCALE = 20
JOB_SET = "log-set"
NS = 1_000_000_000
SUBPROCESS = {"armada-hooks/execution": "subprocess"}


# -- helpers ----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """A hand-built log line (LogLineLike): RFC3339Nano timestamp and text."""

    timestamp: str
    line: str


def stamp(ns: int) -> str:
    """RFC3339Nano for epoch nanoseconds, written independently of armada_hooks."""
    whole, frac = divmod(ns, NS)
    return f"{datetime.fromtimestamp(whole, tz=UTC):%Y-%m-%dT%H:%M:%S}.{frac:09d}Z"


def nanos(text: str) -> int:
    """Epoch nanoseconds of an RFC3339(Nano) UTC timestamp, parsed independently."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z", text)
    assert match, f"{text!r} is not RFC3339Nano UTC"
    whole = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole * NS + int((match.group(2) or "0").ljust(9, "0"))


def line_at(seconds: float, text: str) -> Line:
    return Line(stamp(round(seconds * NS)), text)


BASE = 1_800_000_000  # an epoch second; the unit tests' lines sit just after it


@dataclass
class Record:
    level: int
    message: str
    server_state: JobState | None  # the job's state inside the local Armada at emit time
    logs_calls: int  # Binoculars Logs RPCs served so far, at emit time (which fetch delivered)
    raw: logging.LogRecord


class Collector(logging.Handler):
    """Collects what reaches a dedicated logger, noting the server's job state at each line."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[Record] = []
        self.armada: LocalArmada | None = None
        self.job_id: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        state = None
        calls = -1
        if self.armada is not None and self.job_id is not None:
            state = self.armada.job(self.job_id).state
            calls = self.armada.rpc_count("Logs")
        self.records.append(Record(record.levelno, record.getMessage(), state, calls, record))

    def watch(self, armada: LocalArmada, job_id: str) -> None:
        self.armada, self.job_id = armada, job_id

    def at(self, level: int) -> list[Record]:
        return [r for r in self.records if r.level == level]

    def lines(self) -> list[str]:
        return [r.message for r in self.at(logging.INFO)]


@pytest.fixture
def collected():
    """A dedicated logger (not propagating) and the handler collecting its records."""
    logger = logging.getLogger(f"tests.hooks.test_logs.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = Collector()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def connect(
    monkeypatch: pytest.MonkeyPatch,
    armada: LocalArmada,
    *,
    binoculars: str | None = "same",
    token: str | None = None,
) -> str:
    """Define an ``armada`` Airflow connection to ``armada`` in the environment; its id."""
    conn_id = f"armada_logs_{uuid.uuid4().hex[:8]}"
    extra: dict[str, object] = {"rpc_timeout": 5}
    if binoculars == "same":
        extra["binoculars_target"] = armada.target
    elif binoculars is not None:
        extra["binoculars_target"] = binoculars
    conn = {"conn_type": "armada", "host": armada.host, "port": armada.port, "extra": extra}
    if token is not None:
        conn["password"] = token
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def make_hook(conn_id: str, **kwargs: object) -> ArmadaHook:
    return ArmadaHook(conn_id, retry_wait_min=0.01, retry_wait_max=0.05, **kwargs)  # type: ignore[arg-type]


def simulated(lines: int, runtime: str, **annotations: str):
    return job_request_item(
        annotations={
            "armada-hooks/log-lines": str(lines),
            "armada-hooks/runtime": runtime,
            **annotations,
        }
    )


def python_job(code: str, **annotations: str):
    return job_request_item([sys.executable, "-c", code], annotations={**SUBPROCESS, **annotations})


def generated(job_id: str, n: int) -> list[str]:
    """The lines the local Armada generates for ``armada-hooks/log-lines: n``."""
    return [f"[{job_id}] line {i} of {n}" for i in range(1, n + 1)]


def wait_until(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def assert_streamed(handler: Collector) -> None:
    """Lines were logged while the job still ran, over several fetches: streaming, not a dump."""
    info = handler.at(logging.INFO)
    while_running = [r for r in info if r.server_state is JobState.RUNNING]
    assert info
    assert info[0].server_state is JobState.RUNNING, "the first line came after the job ended"
    fetches = [r.logs_calls for r in while_running]
    assert len(set(fetches)) >= 2, f"lines logged while running came from fetches {set(fetches)}"
    assert [r.logs_calls for r in info] == sorted(r.logs_calls for r in info)


# -- the acceptance test --------------------------------------------------


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_simulated_job_200_lines_stream_while_waiting_exactly_once_in_order(
    local_armada, collected, monkeypatch
):
    logger, handler = collected
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job("default", JOB_SET, simulated(200, "40"))  # 2 real seconds
    handler.watch(local_armada, job_id)

    fetcher = hook.log_fetcher(job_id, logger, interval=0.05)
    state = hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher)

    assert state is JobState.SUCCEEDED
    assert handler.lines() == generated(job_id, 200)
    assert fetcher.lines_logged == 200
    assert not fetcher.is_alive()
    assert handler.at(logging.WARNING) == []
    assert_streamed(handler)


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_subprocess_job_200_lines_stream_exactly_once_despite_whole_second_since_time(
    local_armada, collected, monkeypatch
):
    # 20 batches of 10 lines, 0.1 real s (2 job-s) apart: every batch shares a job-second,
    # so each fetch repeats the lines of the last second. One line per batch has the same
    # text as in every other batch: identical text at different times must all arrive.
    code = (
        "import time\n"
        "for b in range(20):\n"
        "    for i in range(9):\n"
        "        print(f'batch {b:02d} line {i}', flush=True)\n"
        "    print('same text every batch', flush=True)\n"
        "    time.sleep(0.1)\n"
    )
    expected = [
        text
        for b in range(20)
        for text in [*(f"batch {b:02d} line {i}" for i in range(9)), "same text every batch"]
    ]
    logger, handler = collected
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job("default", JOB_SET, python_job(code))
    handler.watch(local_armada, job_id)

    state = hook.wait_for_job(
        job_id, delay=0.05, log_fetcher=hook.log_fetcher(job_id, logger, interval=0.05)
    )

    assert state is JobState.SUCCEEDED
    assert len(expected) == 200
    assert handler.lines() == expected
    assert list(local_armada.job(job_id).log_lines) == expected  # the server had them once too
    assert handler.at(logging.WARNING) == []
    assert_streamed(handler)


# -- JobLogCursor -----------------------------------------------------------------


def test_cursor_starts_from_the_beginning_and_since_follows_the_last_line():
    cursor = JobLogCursor()
    assert cursor.since == ""
    first = [line_at(BASE + 0.1, "a"), line_at(BASE + 1.5, "b")]
    assert cursor.new_lines(first) == first
    assert cursor.since == first[-1].timestamp
    assert cursor.new_lines([]) == []  # nothing new: since stays
    assert cursor.since == first[-1].timestamp
    later = [first[-1], line_at(BASE + 1.7, "c"), line_at(BASE + 3.2, "d")]
    assert cursor.new_lines(later) == later[1:]
    assert cursor.since == later[-1].timestamp


def test_cursor_overlapping_batches_yield_each_line_once():
    # Kubernetes returns every line of the last second again on the next fetch.
    a, b, c = line_at(BASE + 5.1, "a"), line_at(BASE + 5.4, "b"), line_at(BASE + 5.9, "c")
    d, e = line_at(BASE + 6.0, "d"), line_at(BASE + 6.2, "e")
    cursor = JobLogCursor()
    out = []
    out += cursor.new_lines([a, b])
    out += cursor.new_lines([a, b])  # nothing new in the same second
    out += cursor.new_lines([a, b, c])
    out += cursor.new_lines([a, b, c, d])
    out += cursor.new_lines([d, e])  # the window moved to second 6
    out += cursor.new_lines([d, e])
    assert out == [a, b, c, d, e]
    assert cursor.since == e.timestamp


def test_cursor_keeps_identical_text_at_different_timestamps():
    same_second = [line_at(BASE + 2.1, "tick"), line_at(BASE + 2.2, "tick")]
    next_second = line_at(BASE + 3.05, "tick")
    cursor = JobLogCursor()
    assert cursor.new_lines(same_second[:1]) == same_second[:1]
    assert cursor.new_lines(same_second) == same_second[1:]
    assert cursor.new_lines([*same_second, next_second]) == [next_second]
    assert cursor.new_lines([next_second]) == []


def test_cursor_keeps_an_exact_repeat_written_twice():
    # Two writes of the same text in the same nanosecond are two lines of the log.
    twice = [line_at(BASE + 4.5, "again"), line_at(BASE + 4.5, "again")]
    cursor = JobLogCursor()
    assert cursor.new_lines(twice[:1]) == twice[:1]
    assert cursor.new_lines(twice) == twice[1:]
    assert cursor.new_lines(twice) == []


def test_cursor_replaced_log_keeps_only_newer_lines():
    a, b = line_at(BASE + 10.1, "a"), line_at(BASE + 10.2, "b")
    cursor = JobLogCursor()
    assert cursor.new_lines([a, b]) == [a, b]
    # A new pod's log: its prefix does not match what was seen in second 10.
    older = line_at(BASE + 10.0, "older, from the new pod")
    same_time = line_at(BASE + 10.2, "same time as b, different text")
    newer = [line_at(BASE + 10.3, "c"), line_at(BASE + 11.0, "d")]
    fresh = cursor.new_lines([older, b, same_time, *newer])
    assert fresh == [same_time, *newer]
    assert cursor.since == newer[-1].timestamp
    # and the cursor carries on normally from there
    e = line_at(BASE + 11.5, "e")
    assert cursor.new_lines([newer[-1], e]) == [e]


def _kubernetes_fetch(log: list[Line], since: str) -> list[Line]:
    """Lines stamped at or after ``since`` truncated to whole seconds (all when empty)."""
    if not since:
        return list(log)
    floor = nanos(since) // NS * NS
    return [line for line in log if nanos(line.timestamp) >= floor]


_entries = st.lists(
    st.tuples(st.integers(0, 4 * NS - 1), st.sampled_from(["a", "b", "tick", ""])),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(entries=_entries, cuts=st.lists(st.integers(0, 40), max_size=12))
def test_cursor_property_growing_prefixes_refetched_by_kubernetes_rule(entries, cuts):
    log = [Line(stamp(BASE * NS + ns), text) for ns, text in sorted(entries, key=lambda e: e[0])]
    prefixes = [*sorted(min(c, len(log)) for c in cuts), len(log)]
    cursor = JobLogCursor()
    out: list[Line] = []
    for n in prefixes:
        batch = _kubernetes_fetch(log[:n], cursor.since)
        out += cursor.new_lines(batch)
        assert cursor.since == (out[-1].timestamp if out else "")
    assert out == log


@settings(max_examples=300, deadline=None)
@given(entries=_entries, cuts=st.lists(st.integers(0, 40), max_size=12), at=st.integers(0, 12))
def test_cursor_property_resumed_from_any_stored_position_returns_exactly_the_rest(
    entries, cuts, at
):
    # A cursor rebuilt from the position of another (as after a triggerer crash) returns
    # every later line once, however the fetches fall and however many lines share a stamp.
    log = [Line(stamp(BASE * NS + ns), text) for ns, text in sorted(entries, key=lambda e: e[0])]
    prefixes = [*sorted(min(c, len(log)) for c in cuts), len(log)]
    first, out = JobLogCursor(), []
    for n in prefixes[: min(at, len(prefixes))]:
        out += first.new_lines(_kubernetes_fetch(log[:n], first.since))
    position = LogPosition.from_dict(first.position.to_dict())  # through JSON-ready values
    assert position.lines == len(out)
    resumed, rest = JobLogCursor(position), []
    for n in prefixes:
        if n >= len(out):
            rest += resumed.new_lines(_kubernetes_fetch(log[:n], resumed.since))
    assert out + rest == log
    assert resumed.position.lines == len(log)


def test_cursor_resumed_skips_only_the_lines_stamped_exactly_at_its_position():
    a, b, c = line_at(BASE + 7.1, "a"), line_at(BASE + 7.1, "b"), line_at(BASE + 7.1, "c")
    before = line_at(BASE + 7.0, "earlier in the second")
    cursor = JobLogCursor()
    assert cursor.new_lines([before, a, b]) == [before, a, b]
    position = cursor.position
    assert position == LogPosition(lines=3, since=b.timestamp, at_since=2)
    resumed = JobLogCursor(position)
    assert resumed.since == b.timestamp
    assert resumed.new_lines([before, a, b, c]) == [c]
    assert resumed.new_lines([before, a, b, c]) == []  # and overlaps as usual from there


@pytest.mark.parametrize(
    "value",
    [
        {"lines": "3", "since": "", "at_since": 0},
        {"lines": 3, "since": None, "at_since": 1},
        {"lines": 2, "since": "x", "at_since": 3},
        {"lines": -1, "since": "", "at_since": 0},
        {},
    ],
)
def test_a_stored_position_that_is_not_one_is_refused_by_name(value):
    with pytest.raises(ValueError, match="log position"):
        LogPosition.from_dict(value)


class ScriptedLog:
    """A LogProtocol over a growing list of lines, by Kubernetes' whole-second rule."""

    def __init__(self) -> None:
        self.lines: list[Line] = []

    def write(self, *texts: str) -> None:
        start = len(self.lines)
        for i, text in enumerate(texts):
            self.lines.append(line_at(BASE + (start + i) * 0.4, text))

    def logs(self, job_id: str, since_time: str = "", pod_namespace: str = "default"):
        return _kubernetes_fetch(self.lines, since_time)


def scripted_fetcher(log: ScriptedLog, logger: logging.Logger) -> ArmadaLogFetcher:
    return ArmadaLogFetcher(
        "job-1",
        logger,
        describe=lambda job_id: JobDescription(job_id, JobState.RUNNING, cluster="c"),
        log_client=lambda cluster: log,
    )


def test_a_resumed_fetcher_marks_the_lines_that_may_repeat_and_logs_the_rest_once(collected):
    logger, handler = collected
    log = ScriptedLog()
    log.write("one", "two")
    old = scripted_fetcher(log, logger)
    old.fetch_once()
    log.write("three")
    old.fetch_once()
    stored = old.settled  # what the trigger stores after this fetch: before "three"
    assert stored.lines == 2
    log.write("four")
    old.fetch_once()  # the old triggerer logs "four", then dies before storing again
    log.write("five")

    new = scripted_fetcher(log, logger)
    new.resume(stored)
    new.fetch_once()
    log.write("six")
    new.fetch_once()

    messages = [r.message for r in handler.records]
    assert messages == [
        "one",
        "two",
        "three",
        "four",
        "Container log of Armada job job-1 resumes after a triggerer restart, after line 2: "
        "lines 3 to 5 below may already appear above (the previous triggerer may have "
        "logged them after it last stored its position)",
        "three",
        "four",
        "five",
        "End of the 3 container lines of Armada job job-1 that may repeat; each line from "
        "here on appears once",
        "six",
    ]
    assert [r.level for r in handler.records].count(logging.WARNING) == 2
    assert new.cursor.position.lines == 6


def test_a_fetcher_resumed_with_nothing_new_says_no_line_repeats(collected):
    logger, handler = collected
    log = ScriptedLog()
    log.write("one")
    old = scripted_fetcher(log, logger)
    old.fetch_once()
    new = scripted_fetcher(log, logger)
    new.resume(old.cursor.position)
    new.fetch_once()
    assert [r.message for r in handler.records] == [
        "one",
        "Container log of Armada job job-1 resumes after a triggerer restart, after line 1; "
        "no line repeats",
    ]


# -- the fetcher ------------------------------------------------------------------


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_stop_drains_once_more_so_the_last_lines_arrive(local_armada, collected, monkeypatch):
    # With a 60 s interval the fetcher fetches once as the job starts; lines written after
    # that (the last one just before the process exits) can only arrive through stop()'s drain.
    code = (
        "import time\n"
        "time.sleep(0.3)\n"
        "for i in range(3):\n"
        "    print(f'early {i}', flush=True)\n"
        "time.sleep(0.3)\n"
        "print('last words', flush=True)\n"
    )
    logger, handler = collected
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job("default", JOB_SET, python_job(code))
    handler.watch(local_armada, job_id)
    fetcher = hook.log_fetcher(job_id, logger, interval=60)

    assert hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher) is JobState.SUCCEEDED

    assert not fetcher.is_alive()
    assert handler.lines() == ["early 0", "early 1", "early 2", "last words"]
    assert local_armada.rpc_count("Logs") == 2  # the first fetch and the drain
    assert {r.logs_calls for r in handler.at(logging.INFO)} == {2}  # all from the drain
    assert all(r.server_state is JobState.SUCCEEDED for r in handler.at(logging.INFO))


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_stop_on_a_fetcher_that_never_started_returns_at_once(local_armada, monkeypatch):
    hook = make_hook(connect(monkeypatch, local_armada))
    fetcher = hook.log_fetcher("no-such-job", logging.getLogger(__name__), interval=0.05)
    fetcher.stop()
    assert not fetcher.is_alive()
    assert local_armada.rpc_count("*") == 0


def test_interval_must_be_positive(monkeypatch):
    hook = ArmadaHook("unused")
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match="interval must be > 0"):
            hook.log_fetcher("job", logging.getLogger(__name__), interval=bad)


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_without_binoculars_target_says_so_once_and_fetches_nothing(
    local_armada, collected, monkeypatch
):
    logger, handler = collected
    conn_id = connect(monkeypatch, local_armada, binoculars=None)
    hook = make_hook(conn_id)
    job_id = hook.submit_job("default", JOB_SET, simulated(20, "10"))
    fetcher = hook.log_fetcher(job_id, logger, interval=0.02)

    assert hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher) is JobState.SUCCEEDED

    assert local_armada.rpc_count("Logs") == 0
    assert fetcher.lines_logged == 0
    assert len(handler.records) == 1
    (record,) = handler.records
    assert record.level == logging.INFO
    assert repr(conn_id) in record.message
    assert "'binoculars_target'" in record.message
    assert job_id in record.message
    assert "'local-cluster'" in record.message
    assert fetcher.fetch_once() == 0  # stays off
    assert len(handler.records) == 1


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_log_client_factory_is_used_per_cluster(local_armada, collected, monkeypatch):
    logger, handler = collected
    asked: list[str] = []

    def factory(cluster: str) -> LogProtocol:
        asked.append(cluster)
        return BinocularsLogClient(local_armada.channel())

    # No binoculars_target on the connection: only the factory can supply a log client.
    hook = make_hook(
        connect(monkeypatch, local_armada, binoculars=None), log_client_factory=factory
    )
    job_id = hook.submit_job(
        "default", JOB_SET, simulated(30, "10", **{"armada-hooks/cluster": "gpu-east"})
    )
    fetcher = hook.log_fetcher(job_id, logger, interval=0.05)

    assert hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher) is JobState.SUCCEEDED

    assert asked == ["gpu-east"]  # asked for the job's cluster, once, then cached
    assert handler.lines() == generated(job_id, 30)


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_log_client_factory_returning_none_disables_fetching_with_one_message(
    local_armada, collected, monkeypatch
):
    logger, handler = collected
    conn_id = connect(monkeypatch, local_armada)  # a target too: the factory wins
    hook = make_hook(conn_id, log_client_factory=lambda cluster: None)
    job_id = hook.submit_job("default", JOB_SET, simulated(10, "6"))

    state = hook.wait_for_job(
        job_id, delay=0.05, log_fetcher=hook.log_fetcher(job_id, logger, interval=0.02)
    )

    assert state is JobState.SUCCEEDED
    assert local_armada.rpc_count("Logs") == 0
    assert [r.level for r in handler.records] == [logging.INFO]
    assert repr(conn_id) in handler.records[0].message


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_templated_binoculars_target_is_filled_with_the_jobs_cluster(
    local_armada, collected, monkeypatch
):
    # The job's cluster is named "127.0.0.1", so "{cluster}:<port>" reaches the local
    # Armada only if the template is filled with the cluster of the job's run.
    logger, handler = collected
    template = f"{{cluster}}:{local_armada.port}"
    hook = make_hook(connect(monkeypatch, local_armada, binoculars=template))
    job_id = hook.submit_job(
        "default", JOB_SET, simulated(25, "8", **{"armada-hooks/cluster": "127.0.0.1"})
    )

    state = hook.wait_for_job(
        job_id, delay=0.05, log_fetcher=hook.log_fetcher(job_id, logger, interval=0.05)
    )

    assert state is JobState.SUCCEEDED
    assert handler.lines() == generated(job_id, 25)
    assert handler.at(logging.WARNING) == []


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_an_internal_error_is_warned_about_once_and_the_fetcher_recovers(
    local_armada, collected, monkeypatch
):
    logger, handler = collected
    local_armada.faults.fail("Logs", grpc.StatusCode.INTERNAL, times=3)
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job("default", JOB_SET, simulated(200, "30"))

    state = hook.wait_for_job(
        job_id, delay=0.05, log_fetcher=hook.log_fetcher(job_id, logger, interval=0.05)
    )

    assert state is JobState.SUCCEEDED
    assert local_armada.rpc_count("Logs") > 3  # the three failures and then successes
    warnings = handler.at(logging.WARNING)
    assert len(warnings) == 1
    assert job_id in warnings[0].message
    assert "INTERNAL" in warnings[0].message
    assert "injected by the local Armada" in warnings[0].message  # the server's own text
    assert handler.lines() == generated(job_id, 200)


@pytest.mark.local_armada(time_scale=TIME_SCALE, defaults=JobBehaviour(lease_time=40))
def test_a_pod_not_there_yet_is_waited_for_silently(local_armada, collected, monkeypatch):
    # lease_time=40 job-s: the job sits LEASED (on a cluster, no pod yet) for 2 real
    # seconds, during which the local Binoculars answers NOT_FOUND like Kubernetes.
    logger, handler = collected
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job("default", JOB_SET, simulated(40, "8"))
    fetcher = hook.log_fetcher(job_id, logger, interval=0.02)
    fetcher.start()
    try:
        wait_until(lambda: local_armada.rpc_count("Logs") >= 3, what="three Logs calls")
        assert local_armada.job(job_id).state is JobState.LEASED  # so those were NOT_FOUND
        with local_armada.channel() as channel, pytest.raises(grpc.RpcError) as caught:
            BinocularsLogClient(channel).logs(job_id)
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        assert hook.wait_for_job(job_id, delay=0.05) is JobState.SUCCEEDED
    finally:
        fetcher.stop()

    assert handler.records
    assert all(r.level == logging.INFO for r in handler.records)
    assert handler.lines() == generated(job_id, 40)


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_without_a_logger_lines_go_to_the_hooks_own_log_verbatim(local_armada, monkeypatch, capfd):
    # The hook's log is Airflow's (structlog, written to stdout/stderr): capfd reads it.
    text = ["100% done, %s and %(name)s stay literal", "{braces} too", "plain line"]
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job(
        "default",
        JOB_SET,
        job_request_item(
            annotations={"armada-hooks/logs": "\n".join(text), "armada-hooks/runtime": "4"}
        ),
    )
    fetcher = hook.log_fetcher(job_id, interval=0.05)

    assert hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher) is JobState.SUCCEEDED

    out, err = capfd.readouterr()
    captured = out + err
    positions = [captured.find(line) for line in text]
    assert all(p >= 0 for p in positions), captured
    assert positions == sorted(positions)
    assert fetcher.lines_logged == 3


# -- BinocularsLogClient ----------------------------------------------------------


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_binoculars_log_client_since_time_is_whole_second_inclusive(local_armada):
    client_armada = local_armada.client()
    response = client_armada.submit_jobs("default", JOB_SET, [simulated(30, "6")])
    job_id = response.job_response_items[0].job_id
    local_armada.wait_for_state(job_id, timeout=20)

    with local_armada.channel() as channel:
        client = BinocularsLogClient(channel)
        assert isinstance(client, LogProtocol)

        everything = list(client.logs(job_id))
        assert [line.line for line in everything] == generated(job_id, 30)
        assert all(isinstance(line, LogLineLike) for line in everything)
        stamps = [nanos(line.timestamp) for line in everything]
        assert stamps == sorted(stamps)
        assert client.logs(job_id, "") == everything
        assert client.logs(job_id, since_time="", pod_namespace="default") == everything

        overlapping = 0
        for i, line in enumerate(everything):
            floor = stamps[i] // NS * NS
            expected = [x for x, ns in zip(everything, stamps, strict=True) if ns >= floor]
            assert client.logs(job_id, line.timestamp) == expected
            overlapping += expected[0] != line
        assert overlapping > 0  # some fetches did return earlier lines of the same second

        after_last = stamp((stamps[-1] // NS + 1) * NS)
        assert client.logs(job_id, after_last) == []

        with pytest.raises(grpc.RpcError) as caught:
            client.logs(job_id, pod_namespace="elsewhere")
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as caught:
            client.logs("01nosuchjob0000000000000000")
        assert caught.value.code() is grpc.StatusCode.NOT_FOUND


# -- bearer token -----------------------------------------------------------------

TOKEN = "tok-logs-8c1f0e2b9a7d4e63"


@pytest.mark.local_armada(time_scale=TIME_SCALE, token=TOKEN)
def test_log_fetching_with_a_bearer_token_never_logs_the_token(
    local_armada, collected, monkeypatch, caplog, capfd
):
    caplog.set_level(logging.DEBUG)  # stdlib records (grpc, the fetcher's logger)
    # the hook's own log goes through Airflow's structlog to stdout/stderr: capfd sees it
    logger, handler = collected
    hook = make_hook(connect(monkeypatch, local_armada, token=TOKEN))
    job_id = hook.submit_job("default", JOB_SET, simulated(50, "10"))
    fetcher = hook.log_fetcher(job_id, logger, interval=0.05)

    assert hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher) is JobState.SUCCEEDED
    assert handler.lines() == generated(job_id, 50)

    # and a Binoculars channel without the token is refused by this server
    with local_armada.channel(token="") as channel, pytest.raises(grpc.RpcError) as caught:
        BinocularsLogClient(channel).logs(job_id)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED

    records = [r.raw for r in handler.records] + list(caplog.records)
    for record in records:
        text = " ".join(
            [record.getMessage(), repr(record.args), record.exc_text or "", repr(record.__dict__)]
        )
        assert TOKEN not in text, f"the token leaked into a log record: {record!r}"
    out, err = capfd.readouterr()
    assert f"Armada job {job_id} is RUNNING" in out + err  # the hook's log was captured
    assert TOKEN not in out + err
    assert TOKEN not in repr(hook.config)


# -- one cadence: log activity sets the pace ---------------------------------------


@pytest.mark.local_armada(time_scale=1)
def test_a_quiet_log_backs_off_and_is_back_at_the_interval_when_it_writes(
    local_armada, collected, monkeypatch
):
    code = (
        "import time\n"
        "print('first', flush=True)\n"
        "time.sleep(1.5)\n"
        "print('second', flush=True)\n"
        "time.sleep(30)\n"
    )
    logger, handler = collected
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job("default", JOB_SET, python_job(code))
    fetcher = ArmadaLogFetcher(
        job_id,
        logger,
        describe=hook.get_job_description,
        log_client=hook.log_client,
        interval=0.01,
        max_interval=0.08,
    )
    delays: list[tuple[int, float]] = []  # (lines so far, next delay) after each fetch
    deadline = time.monotonic() + 20
    while fetcher.lines_logged < 2:
        assert time.monotonic() < deadline, f"lines seen: {handler.lines()}"
        fetcher.fetch_once()
        if fetcher.fetches:
            delays.append((fetcher.lines_logged, fetcher.next_delay))
        time.sleep(0.005)
    hook.cancel_job("default", JOB_SET, job_id)

    assert handler.lines() == ["first", "second"]
    quiet = [d for lines, d in delays if lines == 1]
    # after 'first': the interval, then each empty fetch doubles the pause up to the cap
    assert quiet[0] == 0.01
    assert quiet[1:4] == [0.02, 0.04, 0.08]
    assert set(quiet[4:]) <= {0.08}
    assert delays[-1] == (2, 0.01)  # writing again: back at the interval at once


@pytest.mark.local_armada(time_scale=1)
def test_a_quiet_running_job_costs_few_binoculars_calls(local_armada, collected, monkeypatch):
    logger, _ = collected
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job("default", JOB_SET, python_job("import time; time.sleep(30)"))
    local_armada.wait_for_state(job_id, [JobState.RUNNING], timeout=15)
    fetcher = ArmadaLogFetcher(
        job_id,
        logger,
        describe=hook.get_job_description,
        log_client=hook.log_client,
        interval=0.05,
        max_interval=0.4,
    )
    local_armada.reset_rpc_counts()
    fetcher.start()
    time.sleep(2.0)
    fetcher.stop()
    hook.cancel_job("default", JOB_SET, job_id)
    calls = local_armada.rpc_count("Logs")
    # a fixed 0.05 s cadence would have made about 40 calls; backing off to 0.4 s, about 8
    assert 3 <= calls <= 14, calls
    assert fetcher.next_delay == 0.4


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_wait_for_job_logs_the_last_lines_before_saying_the_job_ended(local_armada, monkeypatch):
    hook = make_hook(connect(monkeypatch, local_armada))
    code = "import time\ntime.sleep(0.3)\nprint('the very last line', flush=True)\n"
    job_id = hook.submit_job("default", JOB_SET, python_job(code))
    with structlog.testing.capture_logs() as events:
        fetcher = hook.log_fetcher(job_id, interval=30)  # the final drain brings the line
        assert hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher) is JobState.SUCCEEDED
    messages = [str(e.get("event")) for e in events]
    ended = messages.index(f"Armada job {job_id} is SUCCEEDED")
    assert messages.index("the very last line") < ended
    assert messages.count(f"Armada job {job_id} is SUCCEEDED") == 1


@pytest.mark.local_armada(time_scale=TIME_SCALE)
def test_a_job_that_ended_before_any_poll_saw_it_run_still_logs_its_lines_first(
    local_armada, monkeypatch
):
    hook = make_hook(connect(monkeypatch, local_armada))
    job_id = hook.submit_job("default", JOB_SET, simulated(3, "0"))
    local_armada.wait_for_state(job_id, timeout=15)  # over before the first poll
    with structlog.testing.capture_logs() as events:
        fetcher = hook.log_fetcher(job_id, interval=30)
        assert hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher) is JobState.SUCCEEDED
    messages = [str(e.get("event")) for e in events]
    ended = messages.index(f"Armada job {job_id} is SUCCEEDED")
    assert [m for m in messages[:ended] if m.startswith(f"[{job_id}]")] == generated(job_id, 3)
    assert messages.count(f"Armada job {job_id} is SUCCEEDED") == 1
