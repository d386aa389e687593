from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from armada_client.client import ArmadaClient

from armada_hooks.channels import ChannelSpec, open_channel
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
        assert re.search(rf"^{re.escape(task)}\s+(success|failed)\s+\d", out, re.M), task
    assert re.search(r"^flaky\s+success\s+2\s", out, re.M)  # resubmitted on its retry
    assert re.search(r"^bad_spec\s+failed\s+1\s", out, re.M)  # no retry for a bad spec
    assert "epoch 4: loss 0.200" in out  # the real process's log, streamed
    assert "http://localhost:8089/jobs/" in out


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
