from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from armada_client.armada import event_pb2_grpc, job_pb2_grpc
from armada_client.client import ArmadaClient

from armada_hooks.channels import ChannelSpec, open_channel
from armada_hooks.cli import main
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item

SCRIPT = str(Path(sys.executable).parent / "armada-hooks")
PROCS: list[subprocess.Popen[str]] = []  # the servers started by serve(), newest last
SERVING = re.compile(r"local Armada serving on (127\.0\.0\.1:\d+)")


@contextmanager
def serve(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """Run `armada-hooks local-armada ARGS`; yield its target and the lines printed so far."""
    proc = subprocess.Popen(
        [SCRIPT, "local-armada", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    PROCS.append(proc)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            match = SERVING.search(line)
            if match:
                break
        else:
            pytest.fail(f"local-armada exited without serving: {''.join(lines)}")
        yield match.group(1), lines
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        lines.append(out)
    assert proc.returncode == 0, "".join(lines)
    assert "local Armada stopped" in "".join(lines)


def submit_and_wait(client: ArmadaClient, queue: str = "q") -> str:
    job_id = (
        client.submit_jobs(
            queue, "cli-set", [job_request_item(annotations={"armada-hooks/runtime": "0"})]
        )
        .job_response_items[0]
        .job_id
    )
    stream = client.get_job_events_stream(queue, "cli-set")
    for message in stream:
        if message.message.WhichOneof("events") == "succeeded":
            client.unwatch_events(stream)
            break
    return job_id


def test_local_armada_command_serves_until_interrupted() -> None:
    with serve("--queue", "q", "--time-scale", "50") as (target, _):
        client = ArmadaClient(grpc.insecure_channel(target))
        job_id = submit_and_wait(client)
        assert client.get_job_status([job_id]).job_states[job_id] == JobState.SUCCEEDED.value


def test_local_armada_command_prints_the_airflow_connection() -> None:
    proc = subprocess.Popen(
        [SCRIPT, "local-armada", "--queue", "q"], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    first, second = proc.stdout.readline(), proc.stdout.readline()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    target = SERVING.search(first).group(1)  # type: ignore[union-attr]
    assert f"AIRFLOW_CONN_ARMADA_DEFAULT='armada://{target}?binoculars_target=" in second
    assert proc.returncode == 0


def test_state_file_keeps_jobs_across_server_processes(tmp_path: Path) -> None:
    state = tmp_path / "armada.db"
    with serve("--queue", "q", "--time-scale", "50", "--state", str(state)) as (target, _):
        job_id = submit_and_wait(ArmadaClient(grpc.insecure_channel(target)))
    with serve("--state", str(state)) as (target, _):
        client = ArmadaClient(grpc.insecure_channel(target))
        assert client.get_job_status([job_id]).job_states[job_id] == JobState.SUCCEEDED.value
        assert client.get_queue("q").name == "q"


def test_token_file_requires_the_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token\n")
    with serve("--queue", "q", "--token-file", str(token_file)) as (target, lines):
        anonymous = ArmadaClient(grpc.insecure_channel(target))
        with pytest.raises(grpc.RpcError) as excinfo:
            anonymous.submit_health()
        assert excinfo.value.code() is grpc.StatusCode.UNAUTHENTICATED
        authed = ArmadaClient(open_channel(ChannelSpec(target=target, token="s3cret-token")))
        assert authed.submit_health().status == 1  # SERVING
    assert "s3cret-token" not in "".join(lines)


def test_token_from_environment() -> None:
    with serve("--queue", "q", env={"ARMADA_HOOKS_LOCAL_TOKEN": "env-token"}) as (target, _):
        with pytest.raises(grpc.RpcError) as excinfo:
            ArmadaClient(open_channel(ChannelSpec(target=target, token="other"))).submit_health()
        assert excinfo.value.code() is grpc.StatusCode.PERMISSION_DENIED
        ok = ArmadaClient(open_channel(ChannelSpec(target=target, token="env-token")))
        assert ok.submit_health().status == 1


def test_empty_token_file_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("\n")
    result = subprocess.run(
        [SCRIPT, "local-armada", "--token-file", str(token_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"token file {token_file} is empty" in result.stderr


def test_node_options_shape_the_simulated_cluster() -> None:
    with serve("--queue", "q", "--time-scale", "50", "--node", "tiny:cpu=1,memory=1Gi") as (
        target,
        _,
    ):
        client = ArmadaClient(grpc.insecure_channel(target))
        [item] = client.submit_jobs("q", "cli-set", [job_request_item(cpu="2")]).job_response_items
        stream = client.get_job_events_stream("q", "cli-set")
        for message in stream:
            if message.message.WhichOneof("events") == "failed":
                client.unwatch_events(stream)
                break
        assert client.get_job_status([item.job_id]).job_states[item.job_id] == (
            JobState.REJECTED.value
        )
        assert (
            "Number of nodes in cluster: 1"
            in client.get_job_errors([item.job_id]).job_errors[item.job_id]
        )


def test_a_bad_node_option_says_what_to_write() -> None:
    result = subprocess.run(
        [SCRIPT, "local-armada", "--node", "cpu"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "--node: node 'cpu': 'cpu' is not RESOURCE=QUANTITY" in result.stderr


def test_tls_dir_serves_tls_with_a_generated_ca(tmp_path: Path) -> None:
    with serve("--queue", "q", "--tls-dir", str(tmp_path / "tls")) as (target, lines):
        ca = (tmp_path / "tls" / "ca_cert.pem").read_bytes()
        assert "ca_cert.pem" in "".join(lines)
        secure = ArmadaClient(open_channel(ChannelSpec(target=target, tls=True, ca_cert=ca)))
        assert secure.submit_health().status == 1
        plaintext = ArmadaClient(grpc.insecure_channel(target))
        with pytest.raises(grpc.RpcError) as excinfo:
            plaintext.submit_health()
        assert excinfo.value.code() is grpc.StatusCode.UNAVAILABLE


def test_demo_command_runs_the_example_dag_and_passes() -> None:
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [SCRIPT, "demo", "--time-scale", "20"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "demo passed" in out
    assert "<-- expected" not in out
    for task in ("fan_out[0]", "fan_out[2]", "train", "flaky", "watch_external", "bad_spec"):
        assert re.search(rf"^{re.escape(task)}\s+(success|failed \(intended\))\s+\d", out, re.M), (
            task
        )
    assert re.search(r"^flaky\s+success\s+2\s", out, re.M)  # resubmitted on its retry
    assert re.search(r"^bad_spec\s+failed \(intended\)\s+1\s", out, re.M)  # no retry
    assert "epoch 4: loss 0.200" in out  # the real process's log, streamed
    assert "http://localhost:8089/jobs/" in out
    # Readable: each intended failure one line, no error records, no noise, ~80 lines.
    assert "task bad_spec failed as intended: ArmadaJobSpecError: " in out
    assert "task flaky failed as intended: ArmadaJobFailedError: " in out
    for noise in ("Traceback", "[error", "[warning", "XCom not found", "No tasks to run"):
        assert noise not in out + result.stderr, noise
    assert "9 of 9 tasks ended as intended; failures intended: bad_spec, flaky" in out
    assert len(out.splitlines()) <= 90, out


UNINTENDED_DAG = """
from datetime import datetime

from armada_hooks._compat import DAG

from armada_hooks.operators.armada import ArmadaOperator

QUEUE, EXTERNAL_JOB_SET, EXTERNAL_JOB_URI = "demo", "nightly", "demo://nightly"
EXPECTED = {"meant_to_fail": ("failed", 1), "meant_to_pass": ("success", 1)}
BAD = {
    "podSpec": {
        "containers": [
            {
                "name": "main",
                "resources": {
                    "requests": {"cpu": {"string": "1"}},
                    "limits": {"cpu": {"string": "2"}},
                },
            }
        ]
    }
}

with DAG("unintended", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
    for task_id in EXPECTED:
        ArmadaOperator(task_id=task_id, armada_queue=QUEUE, job_request=BAD)
"""


def test_demo_shows_an_unintended_failure_in_full(tmp_path: Path) -> None:
    dag_file = tmp_path / "unintended.py"
    dag_file.write_text(UNINTENDED_DAG)
    result = subprocess.run(
        [SCRIPT, "demo", "--dag-file", str(dag_file), "--time-scale", "50"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = result.stdout
    assert result.returncode == 1, out[-3000:] + result.stderr[-3000:]
    assert "task meant_to_fail failed as intended: ArmadaJobSpecError: " in out
    assert "meant_to_pass failed as intended" not in out
    assert out.count("Traceback (most recent call last)") == 1, out  # meant_to_pass's
    assert "[error    ] Task failed with exception" in out
    assert re.search(r"^meant_to_pass\s+failed\s+1 .*<-- expected success after 1 tries", out, re.M)
    assert "demo FAILED" in out
    assert "1 of 2 tasks ended as intended; failures intended: meant_to_fail" in out


def test_demo_says_where_the_dag_file_should_be(tmp_path: Path) -> None:
    result = subprocess.run(
        [SCRIPT, "demo", "--dag-file", str(tmp_path / "missing.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "missing.py not found" in result.stdout


def test_local_armada_prints_a_complete_connection_that_streams_logs(monkeypatch) -> None:
    from armada_hooks.hooks.armada import ArmadaHook

    args = ("--queue", "q", "--time-scale", "50", "--lookout-url", "https://lookout.example")
    with serve(*args) as (target, lines):
        assert lines[-1] == f"local Armada serving on {target}\n"
        printed = [next(PROCS[-1].stdout) for _ in range(2)]  # type: ignore[union-attr]
        uri = re.search(r"ARMADA_DEFAULT='(armada://[^']+)'", printed[0])
        as_json = re.search(r"ARMADA_DEFAULT='(\{.+\})'", printed[1])
        assert uri, printed
        assert as_json, printed
        assert "binoculars_target=127.0.0.1%3A" in uri.group(1)  # URL-encoded
        assert "lookout_url=https%3A%2F%2Flookout.example" in uri.group(1)
        for value in (uri.group(1), as_json.group(1)):
            monkeypatch.setenv("AIRFLOW_CONN_CLI_PRINTED", value)
            with ArmadaHook("cli_printed", retry_wait_min=0.01, retry_wait_max=0.05) as hook:
                assert hook.config.lookout_url == "https://lookout.example"
                item = job_request_item(annotations={"armada-hooks/log-lines": "3"})
                job_id = hook.submit_job("q", "cli-logs", item)
                fetcher = hook.log_fetcher(job_id, interval=0.05)
                assert hook.wait_for_job(job_id, delay=0.05, log_fetcher=fetcher).name == (
                    "SUCCEEDED"
                )
                assert fetcher.lines_logged == 3  # logs work with what it printed


# -- armada-hooks jobs --------------------------------------------------------------------

OOM = {"armada-hooks/outcome": "failed", "armada-hooks/failure-reason": "OOMKilled: 64Mi"}
ALL_KINDS = "submitted queued leased pending running"


def wait_for(client: ArmadaClient, wanted: dict[str, JobState], timeout: float = 30) -> None:
    """Poll GetJobStatus until every job is in its wanted state."""
    deadline = time.monotonic() + timeout
    while True:
        states = client.get_job_status(list(wanted)).job_states
        if all(states.get(j) == s.value for j, s in wanted.items()):
            return
        assert time.monotonic() < deadline, f"jobs not in {wanted}: {dict(states)}"
        time.sleep(0.05)


def submit(client: ArmadaClient, job_set: str, *annotations: dict[str, str]) -> list[str]:
    items = [job_request_item(annotations=a) for a in annotations]
    return [i.job_id for i in client.submit_jobs("q", job_set, items).job_response_items]


def jobs(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `armada-hooks jobs ARGS` in this process: its exit code, stdout and stderr."""
    code = main(["jobs", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def armada_with_jobs() -> Iterator[tuple[str, dict[str, str]]]:
    """A local-armada process whose job set `mixed` holds a succeeded, a failed and a
    running job, and whose job set `other` holds one succeeded job."""
    with serve("--queue", "q", "--time-scale", "50") as (target, _):
        client = ArmadaClient(grpc.insecure_channel(target))
        done, failed, running = submit(
            client, "mixed", {"armada-hooks/runtime": "0"}, OOM, {"armada-hooks/runtime": "1h"}
        )
        (other,) = submit(client, "other", {"armada-hooks/runtime": "0"})
        wanted = {done: JobState.SUCCEEDED, failed: JobState.FAILED, other: JobState.SUCCEEDED}
        wait_for(client, {**wanted, running: JobState.RUNNING})
        yield target, {"done": done, "failed": failed, "running": running}


def test_jobs_lists_a_job_sets_jobs_states_events_and_failure_reason(
    armada_with_jobs, capsys
) -> None:
    target, ids = armada_with_jobs
    code, out, err = jobs(capsys, "--target", target, "--queue", "q", "--job-set", "mixed")

    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "job set 'mixed' in queue 'q': 3 jobs, 17 events"
    assert lines[1].split() == ["JOB", "ID", "STATE", "LAST", "EVENT", "AT", "(UTC)", "EVENTS"]
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    expected = [
        rf"{ids['done']}  SUCCEEDED  succeeded   {when}  6: {ALL_KINDS} succeeded",
        rf"{ids['failed']}  FAILED     failed      {when}  6: {ALL_KINDS} failed",
        r"    reason: OOMKilled: 64Mi",
        rf"{ids['running']}  RUNNING    running     {when}  5: {ALL_KINDS}",
    ]
    assert len(lines) == 2 + len(expected), out
    for pattern, line in zip(expected, lines[2:], strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)


def test_jobs_without_a_job_set_lists_the_local_armadas_job_sets(armada_with_jobs, capsys):
    target, _ = armada_with_jobs
    code, out, err = jobs(capsys, "--target", target, "--queue", "q")

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "queue 'q': 2 job sets",
        "JOB SET  JOBS  STATES",
        "mixed    3     FAILED 1, RUNNING 1, SUCCEEDED 1",
        "other    1     SUCCEEDED 1",
        "(--job-set S lists a set's jobs)",
    ]


def test_jobs_prints_the_servers_own_error_for_an_unknown_queue_or_job_set(
    armada_with_jobs, capsys
) -> None:
    target, _ = armada_with_jobs
    # As a command: one line on stderr, exit code 1, no traceback.
    result = subprocess.run(
        [SCRIPT, "jobs", "--target", target, "--queue", "nope"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith('error: PERMISSION_DENIED: could not find queue "nope"')
    assert result.stderr.count("\n") == 1, result.stderr

    code, out, err = jobs(capsys, "--target", target, "--queue", "nope", "--job-set", "mixed")
    assert (code, out) == (1, "")
    assert err == (
        f"error: NOT_FOUND: [GetJobSetEvents] Queue nope does not exist (Armada at {target})\n"
    )
    code, out, err = jobs(capsys, "--target", target, "--queue", "q", "--job-set", "typo")
    assert (code, out) == (1, "")
    assert "NOT_FOUND: [GetJobSetEvents] Jobset typo for queue q does not exist" in err


def read_until(
    lines: queue.Queue[str], done: Callable[[str], bool], timeout: float = 60
) -> list[str]:
    """Lines from ``lines`` up to and including the first where ``done``."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not seen or not done(seen[-1]):
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            pytest.fail(f"no such line within {timeout}s; got {seen}")
    return seen


def test_jobs_watch_prints_new_events_as_a_job_progresses_and_exits_0_on_sigint(
    armada_with_jobs,
) -> None:
    target, _ = armada_with_jobs
    client = ArmadaClient(grpc.insecure_channel(target))
    (before,) = submit(client, "watched", {"armada-hooks/runtime": "0"})
    wait_for(client, {before: JobState.SUCCEEDED})
    proc = subprocess.Popen(
        [SCRIPT, "jobs", "--target", target, "--queue", "q", "--job-set", "watched", "--watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    try:
        listing = read_until(lines, lambda line: line.startswith(before))
        assert listing[0] == "job set 'watched' in queue 'q': 1 job, 6 events\n"
        (after,) = submit(client, "watched", {"armada-hooks/runtime": "2"})
        watched = read_until(lines, lambda line: "succeeded" in line)
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)

    assert proc.returncode == 0, err
    assert err == ""
    assert all(f"  {after}  " in line for line in watched)  # nothing replayed twice
    kinds = [line.split(f"  {after}  ")[1].strip() for line in watched]
    assert kinds == [
        "submitted -> SUBMITTED",
        "queued -> QUEUED",
        "leased -> LEASED",
        "pending -> PENDING",
        "running -> RUNNING",
        "succeeded -> SUCCEEDED",
    ]


def test_jobs_without_a_job_set_on_a_real_armada_api_says_the_job_set_is_required(
    capsys,
) -> None:
    # A server with only Armada's own Event and Jobs services (armada_client's generated
    # servicers, which answer UNIMPLEMENTED): ListJobSets is unknown to it, as to Armada.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    event_pb2_grpc.add_EventServicer_to_server(event_pb2_grpc.EventServicer(), server)
    job_pb2_grpc.add_JobsServicer_to_server(job_pb2_grpc.JobsServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        target = f"127.0.0.1:{port}"
        code, out, err = jobs(capsys, "--target", target, "--queue", "q")
        assert (code, out) == (2, "")
        assert err == (
            "error: --job-set is required: Armada has no call that lists a queue's job sets "
            "(only the local Armada answers that)\n"
        )
        code, out, err = jobs(capsys, "--target", target, "--queue", "q", "--job-set", "s")
        assert (code, out) == (1, "")
        assert err.startswith("error: UNIMPLEMENTED: ")
    finally:
        server.stop(None)


def test_jobs_reads_a_token_protected_tls_armada_with_token_file_and_ca_cert(
    tmp_path: Path, capsys
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("jobs-s3cret\n")
    outputs: list[str] = []

    def printed(*args: Any) -> tuple[int, str, str]:
        code, out, err = jobs(*args)
        outputs.extend((out, err))
        return code, out, err

    tls = tmp_path / "tls"
    args = ("--queue", "q", "--time-scale", "50", "--token-file", str(token_file))
    with serve(*args, "--tls-dir", str(tls)) as (target, _):
        ca = (tls / "ca_cert.pem").read_bytes()
        spec = ChannelSpec(target=target, tls=True, ca_cert=ca, token="jobs-s3cret")
        client = ArmadaClient(open_channel(spec))
        (job_id,) = submit(client, "secured", {"armada-hooks/runtime": "0"})
        wait_for(client, {job_id: JobState.SUCCEEDED})
        common = ("--target", target, "--queue", "q", "--ca-cert", str(tls / "ca_cert.pem"))

        code, out, err = jobs(
            capsys, *common, "--job-set", "secured", "--token-file", str(token_file)
        )
        assert (code, err) == (0, "")
        assert re.search(rf"^{job_id}  SUCCEEDED  ", out, re.M), out
        code, out, err = printed(capsys, *common, "--token-file", str(token_file))
        assert (code, err) == (0, "")
        assert "secured  1     SUCCEEDED 1" in out

        code, out, err = printed(capsys, *common, "--job-set", "secured")
        assert (code, out) == (1, "")
        assert err.startswith("error: UNAUTHENTICATED: Request could not be authenticated")
        code, out, err = printed(capsys, *common, "--token-file", str(tmp_path / "missing"))
        assert (code, out) == (2, "")
        assert (
            err
            == f"error: cannot read token file {tmp_path / 'missing'}: No such file or directory\n"
        )
    assert "jobs-s3cret" not in "".join(outputs)
