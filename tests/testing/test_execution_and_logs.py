"""Real subprocess execution and Binoculars logs of the local Armada."""

from __future__ import annotations

import calendar
import itertools
import math
import os
import re
import sys
import time

import grpc
import pytest
from armada_client.armada import (
    binoculars_pb2,
    binoculars_pb2_grpc,
    event_pb2,
    job_pb2,
    submit_pb2,
)
from armada_client.client import ArmadaClient
from armada_client.log_client import JobLogClient

from armada_hooks.states import JobState
from armada_hooks.testing import LocalArmada, job_request_item

TIME_SCALE = 20
SET = "exec-set"
RFC3339_NANO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")
SUBPROCESS = {"armada-hooks/execution": "subprocess"}


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _submit(armada: LocalArmada, item: submit_pb2.JobSubmitRequestItem) -> str:
    with armada.channel() as channel:
        response = ArmadaClient(channel).submit_jobs("default", SET, [item])
    return response.job_response_items[0].job_id


def _logs(
    armada: LocalArmada,
    job_id: str,
    *,
    since_time: str = "",
    pod_namespace: str = "default",
    pod_number: int = 0,
) -> list[binoculars_pb2.LogLine]:
    request = binoculars_pb2.LogRequest(
        job_id=job_id, pod_namespace=pod_namespace, pod_number=pod_number, since_time=since_time
    )
    with armada.channel() as channel:
        return list(binoculars_pb2_grpc.BinocularsStub(channel).Logs(request, timeout=10).log)


def _lines(armada: LocalArmada, job_id: str, **kwargs: object) -> list[str]:
    return [line.line for line in _logs(armada, job_id, **kwargs)]  # type: ignore[arg-type]


def _errors(armada: LocalArmada, job_id: str) -> str:
    with armada.channel() as channel:
        return ArmadaClient(channel).get_job_errors([job_id]).job_errors[job_id]


def _failed_event(armada: LocalArmada, job_id: str) -> event_pb2.JobFailedEvent:
    request = event_pb2.JobSetRequest(queue="default", id=SET, watch=False)
    with armada.channel() as channel:
        messages = list(ArmadaClient(channel).event_stub.GetJobSetEvents(request, timeout=10))
    failed = [
        m.message.failed
        for m in messages
        if m.message.WhichOneof("events") == "failed" and m.message.failed.job_id == job_id
    ]
    assert len(failed) == 1
    return failed[0]


def _nanos(stamp: str) -> int:
    """Epoch nanoseconds of an RFC3339Nano UTC timestamp, parsed independently of the server."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z", stamp)
    assert match, f"{stamp!r} is not RFC3339Nano"
    whole = calendar.timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
    return whole * 1_000_000_000 + int((match.group(2) or "0").ljust(9, "0"))


def _wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


# -- subprocess execution ---------------------------------------------------------

PRINT_LINES = "for i in range(1, 6):\n    print(f'output line {i} of 5', flush=True)\n"
EXPECTED_LINES = [f"output line {i} of 5" for i in range(1, 6)]


@pytest.fixture
def armada(local_armada_factory) -> LocalArmada:
    """A simulating local Armada; jobs opt into real execution by annotation."""
    return local_armada_factory(time_scale=TIME_SCALE)


@pytest.fixture
def subprocess_armada(local_armada_factory) -> LocalArmada:
    """A local Armada that runs every job's command for real."""
    return local_armada_factory(time_scale=TIME_SCALE, execution="subprocess")


@pytest.mark.parametrize("how", ["server-option", "annotation"])
def test_a_subprocess_job_that_exits_0_succeeds_and_its_output_is_its_log(
    local_armada_factory, how
):
    if how == "server-option":
        armada = local_armada_factory(time_scale=TIME_SCALE, execution="subprocess")
        item = job_request_item(_python(PRINT_LINES))
    else:
        armada = local_armada_factory(time_scale=TIME_SCALE)
        item = job_request_item(_python(PRINT_LINES), annotations=SUBPROCESS)
    job_id = _submit(armada, item)
    job = armada.wait_for_state(job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.exit_code == 0

    logs = _logs(armada, job_id)
    assert [line.line for line in logs] == EXPECTED_LINES
    for line in logs:
        assert RFC3339_NANO.match(line.timestamp), line.timestamp
    stamps = [_nanos(line.timestamp) for line in logs]
    assert stamps == sorted(stamps)
    # every line was stamped while the pod was running
    with armada.channel() as channel:
        run_id = job.run_ids[0]
        request = job_pb2.JobRunDetailsRequest(run_ids=[run_id])
        run = ArmadaClient(channel).job_stub.GetJobRunDetails(request).job_run_details[run_id]
    slack = 1_000  # the server keeps float seconds; allow a microsecond of rounding
    assert run.started_ts.ToNanoseconds() - slack <= stamps[0]
    assert stamps[-1] <= run.finished_ts.ToNanoseconds() + slack


def test_a_simulated_server_does_not_run_the_command(armada, tmp_path):
    marker = tmp_path / "ran"
    job_id = _submit(armada, job_request_item(_python(f"open({str(marker)!r}, 'w')")))
    assert armada.wait_for_state(job_id).state is JobState.SUCCEEDED
    assert not marker.exists()
    assert _lines(armada, job_id) == list(armada.job(job_id).log_lines)
    assert len(armada.job(job_id).log_lines) == 3  # the simulated default


def test_a_subprocess_job_that_exits_3_fails_with_its_exit_code(subprocess_armada):
    code = "import sys\nprint('starting', flush=True)\nsys.stderr.write('boom\\n')\nsys.exit(3)\n"
    job_id = _submit(subprocess_armada, job_request_item(_python(code)))
    job = subprocess_armada.wait_for_state(job_id)
    assert job.state is JobState.FAILED
    assert job.exit_code == 3
    assert _errors(subprocess_armada, job_id) == "Container main exited with code 3"
    failed = _failed_event(subprocess_armada, job_id)
    assert dict(failed.exit_codes) == {"main": 3}
    assert failed.reason == "Container main exited with code 3"
    assert [(s.name, s.exitCode) for s in failed.container_statuses] == [("main", 3)]
    # stderr is part of the container log, as in Kubernetes
    assert _lines(subprocess_armada, job_id) == ["starting", "boom"]


def test_env_vars_from_the_container_spec_reach_the_process(subprocess_armada):
    env = {"ARMADA_TEST_GREETING": "hello from the pod spec", "ARMADA_TEST_EMPTY": ""}
    code = (
        "import os\n"
        "print(os.environ['ARMADA_TEST_GREETING'])\n"
        "print(repr(os.environ['ARMADA_TEST_EMPTY']))\n"
    )
    job_id = _submit(subprocess_armada, job_request_item(_python(code), env=env))
    assert subprocess_armada.wait_for_state(job_id).state is JobState.SUCCEEDED
    assert _lines(subprocess_armada, job_id) == ["hello from the pod spec", "''"]


def test_a_command_that_does_not_exist_fails_the_job_naming_it(subprocess_armada, tmp_path):
    missing = str(tmp_path / "no-such-binary")
    job_id = _submit(subprocess_armada, job_request_item([missing, "--flag"]))
    job = subprocess_armada.wait_for_state(job_id)
    assert job.state is JobState.FAILED
    assert missing in job.reason
    assert "No such file" in job.reason
    assert _errors(subprocess_armada, job_id) == job.reason
    assert _failed_event(subprocess_armada, job_id).reason == job.reason


def test_an_empty_command_fails_the_job_with_a_clear_reason(subprocess_armada):
    job_id = _submit(subprocess_armada, job_request_item([]))
    job = subprocess_armada.wait_for_state(job_id)
    assert job.state is JobState.FAILED
    assert "no command" in job.reason
    assert _errors(subprocess_armada, job_id) == job.reason


def test_cancelling_a_running_subprocess_job_kills_the_process(subprocess_armada, tmp_path):
    marker = tmp_path / "finished"
    code = (
        "import os, time\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(60)\n"
        f"open({str(marker)!r}, 'w').write('finished')\n"
    )
    job_id = _submit(subprocess_armada, job_request_item(_python(code)))
    subprocess_armada.wait_for_state(job_id, [JobState.RUNNING])
    _wait_until(lambda: bool(subprocess_armada.job(job_id).log_lines), what="the pid line")
    pid = int(subprocess_armada.job(job_id).log_lines[0])
    os.kill(pid, 0)  # alive

    with subprocess_armada.channel() as channel:
        ArmadaClient(channel).cancel_jobs("default", SET, job_id)
    job = subprocess_armada.wait_for_state(job_id, timeout=10)
    assert job.state is JobState.CANCELLED

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_until(gone, timeout=10, what=f"process {pid} to be killed")  # well before its 60 s
    assert not marker.exists()
    final = subprocess_armada.job(job_id)
    assert final.state is JobState.CANCELLED  # the kill is not reported as a failure
    assert final.exit_code is None
    assert final.log_lines == (str(pid),)


def test_the_armada_client_log_client_reads_a_subprocess_jobs_lines(subprocess_armada):
    job_id = _submit(subprocess_armada, job_request_item(_python(PRINT_LINES)))
    assert subprocess_armada.wait_for_state(job_id).state is JobState.SUCCEEDED
    log_client = JobLogClient(subprocess_armada.target, job_id, disable_ssl=True)
    try:
        lines = log_client.logs()
    finally:
        log_client._channel.close()
    assert [line.line for line in lines] == EXPECTED_LINES
    assert all(RFC3339_NANO.match(line.timestamp) for line in lines)


# -- simulated logs ---------------------------------------------------------------


def test_simulated_log_lines_appear_progressively_while_running(local_armada_factory):
    armada = local_armada_factory(time_scale=10)
    n = 6
    job_id = _submit(
        armada,
        job_request_item(
            annotations={"armada-hooks/log-lines": str(n), "armada-hooks/runtime": "14s"}
        ),
    )
    armada.wait_for_state(job_id, [JobState.RUNNING])
    seen_while_running: list[list[str]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state_before = armada.job(job_id).state
        lines = _lines(armada, job_id)
        if state_before is not JobState.RUNNING or armada.job(job_id).state is not JobState.RUNNING:
            break
        seen_while_running.append(lines)
        time.sleep(0.02)  # poll interval; the loop ends on the job's state
    final = armada.wait_for_state(job_id)
    assert final.state is JobState.SUCCEEDED
    all_lines = _lines(armada, job_id)
    assert len(all_lines) == n
    assert all_lines == list(final.log_lines)
    counts = [len(lines) for lines in seen_while_running]
    assert counts == sorted(counts)  # lines only ever get added
    assert any(0 < c < n for c in counts), counts  # some, but not all, while running
    for lines in seen_while_running:
        assert lines == all_lines[: len(lines)]  # always a prefix of the final log


def test_literal_logs_are_returned_line_by_line(armada):
    text = "first line\nsecond line with  spaces\n\nfourth after a blank"
    job_id = _submit(armada, job_request_item(annotations={"armada-hooks/logs": text}))
    assert armada.wait_for_state(job_id).state is JobState.SUCCEEDED
    logs = _logs(armada, job_id)
    assert [line.line for line in logs] == [
        "first line",
        "second line with  spaces",
        "",
        "fourth after a blank",
    ]
    assert all(RFC3339_NANO.match(line.timestamp) for line in logs)


# -- since_time ------------------------------------------------------------------


@pytest.fixture
def spaced_job(local_armada_factory) -> tuple[LocalArmada, str, list[binoculars_pb2.LogLine]]:
    """A finished job with 7 log lines 5 job-seconds apart, so each has its own second."""
    armada = local_armada_factory(time_scale=40)
    job_id = _submit(
        armada,
        job_request_item(
            annotations={"armada-hooks/log-lines": "7", "armada-hooks/runtime": "40s"}
        ),
    )
    assert armada.wait_for_state(job_id).state is JobState.SUCCEEDED
    logs = _logs(armada, job_id)
    assert len(logs) == 7
    return armada, job_id, logs


def _expected_since(logs: list[binoculars_pb2.LogLine], since: str) -> list[str]:
    """Kubernetes' rule: lines stamped at or after since_time truncated to whole seconds."""
    cutoff = _nanos(since) // 1_000_000_000 * 1_000_000_000
    return [line.line for line in logs if _nanos(line.timestamp) >= cutoff]


def test_since_time_returns_lines_from_that_time_on(spaced_job):
    armada, job_id, logs = spaced_job
    since = logs[3].timestamp
    assert _lines(armada, job_id, since_time=since) == [line.line for line in logs[3:]]
    assert _lines(armada, job_id, since_time=since) == _expected_since(logs, since)


def _stamp(nanos: int) -> str:
    seconds, fraction = divmod(nanos, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def test_since_time_is_truncated_to_whole_seconds(spaced_job):
    armada, job_id, logs = spaced_job
    last = _nanos(logs[-1].timestamp)
    second = last // 1_000_000_000 * 1_000_000_000
    # half-way between the last line and the end of its second: later than the line, but
    # the same whole second, so the line is still returned
    later_same_second = _stamp((last + second + 1_000_000_000) // 2)
    assert _nanos(later_same_second) > last
    assert _lines(armada, job_id, since_time=later_same_second) == [logs[-1].line]
    # the start of the line's second returns it too; the next second is past every line
    assert _lines(armada, job_id, since_time=_stamp(second)) == [logs[-1].line]
    assert _lines(armada, job_id, since_time=_stamp(second + 1_000_000_000)) == []


def test_since_time_keeps_nanosecond_precision_before_truncating(spaced_job):
    # The last nanosecond of the line's second still truncates to that second. (Adding the
    # fraction to epoch seconds as a float rounds .999999999 up into the next second.)
    armada, job_id, logs = spaced_job
    second = _nanos(logs[-1].timestamp) // 1_000_000_000 * 1_000_000_000
    end_of_second = _stamp(second + 999_999_999)
    assert end_of_second.endswith(".999999999Z")
    assert _lines(armada, job_id, since_time=end_of_second) == [logs[-1].line]


def test_polling_with_the_last_seen_timestamp_returns_that_line_again(spaced_job):
    # A client following a log passes the timestamp of the last line it has seen as
    # since_time. Because since_time is truncated to whole seconds and is inclusive, that
    # line (and any others from the same second) comes back: the client must de-duplicate,
    # e.g. by (timestamp, line).
    armada, job_id, logs = spaced_job
    last_seen = logs[-1]
    again = _logs(armada, job_id, since_time=last_seen.timestamp)
    assert [(line.timestamp, line.line) for line in again] == [
        (last_seen.timestamp, last_seen.line)
    ]
    seen = {(line.timestamp, line.line) for line in logs}
    assert [line for line in again if (line.timestamp, line.line) not in seen] == []


def test_lines_within_the_same_second_overlap_between_polls(local_armada_factory):
    # Three lines a quarter of a job-second apart: a since_time taken from any of them
    # returns every line of the same whole second, not just the later ones.
    armada = local_armada_factory(time_scale=20)
    job_id = _submit(
        armada,
        job_request_item(
            annotations={"armada-hooks/logs": "a\nb\nc", "armada-hooks/runtime": "1s"}
        ),
    )
    assert armada.wait_for_state(job_id).state is JobState.SUCCEEDED
    logs = _logs(armada, job_id)
    assert [line.line for line in logs] == ["a", "b", "c"]
    for line in logs:
        got = _lines(armada, job_id, since_time=line.timestamp)
        assert got == _expected_since(logs, line.timestamp)
        assert line.line in got
    last = logs[-1].timestamp
    overlap = _lines(armada, job_id, since_time=last)
    same_second = [
        line.line for line in logs if _nanos(line.timestamp) // 10**9 == _nanos(last) // 10**9
    ]
    assert overlap == same_second


@pytest.mark.parametrize("since_time", ["not-a-time", "2024-13-45T99:99:99Z", "yesterday"])
def test_an_unparsable_since_time_returns_all_lines(spaced_job, since_time):
    armada, job_id, logs = spaced_job
    assert _lines(armada, job_id, since_time=since_time) == [line.line for line in logs]


def test_since_time_accepts_an_offset_other_than_utc(spaced_job):
    armada, job_id, logs = spaced_job
    utc = _nanos(logs[3].timestamp) // 10**9
    shifted = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(utc + 2 * 3600)) + "+02:00"
    assert _lines(armada, job_id, since_time=shifted) == [line.line for line in logs[3:]]


# -- NOT_FOUND --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "pod_namespace", "pod_number"),
    [
        ("unknown-job", "default", 0),
        ("not-started", "default", 0),
        ("wrong-namespace", "other-namespace", 0),
        ("second-pod", "default", 1),
    ],
)
def test_logs_of_a_pod_that_does_not_exist_are_not_found(armada, case, pod_namespace, pod_number):
    if case == "unknown-job":
        job_id = "01unknownjob00000000000000"
    elif case == "not-started":
        job_id = _submit(armada, job_request_item(annotations={"armada-hooks/queue-time": "1h"}))
        armada.wait_for_state(job_id, [JobState.QUEUED])
    else:
        job_id = _submit(armada, job_request_item(annotations={"armada-hooks/runtime": "1s"}))
        armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        assert _lines(armada, job_id)  # the real pod's log is there
    with pytest.raises(grpc.RpcError) as excinfo:
        _logs(armada, job_id, pod_namespace=pod_namespace, pod_number=pod_number)
    assert excinfo.value.code() is grpc.StatusCode.NOT_FOUND
    # Kubernetes' message, naming the pod that was looked up: armada-<job id>-<pod number>
    assert excinfo.value.details() == f'pods "armada-{job_id}-{pod_number}" not found'


def test_logs_are_found_once_a_queued_job_starts(local_armada_factory):
    armada = local_armada_factory(time_scale=20)
    job_id = _submit(
        armada,
        job_request_item(
            annotations={"armada-hooks/queue-time": "10s", "armada-hooks/runtime": "1s"}
        ),
    )
    with pytest.raises(grpc.RpcError) as excinfo:
        _logs(armada, job_id)
    assert excinfo.value.code() is grpc.StatusCode.NOT_FOUND
    assert f"armada-{job_id}-0" in excinfo.value.details()
    armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    assert len(_lines(armada, job_id)) == 3


def test_log_timestamps_are_whole_nanoseconds_of_job_time(spaced_job):
    armada, _, logs = spaced_job
    stamps = [_nanos(line.timestamp) for line in logs]
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # 40 s of runtime, 7 lines: one line every 5 job-seconds
    assert all(math.isclose(gap, 5e9, rel_tol=1e-3) for gap in gaps), gaps
    assert stamps[-1] <= armada.now() * 1e9
