"""`armada-hooks job-service`: prints where it serves, answers, keeps its store, stops by PID."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from js_helpers import client_for, eventually, historic, submit

from armada_hooks.channels import ChannelSpec, open_channel
from armada_hooks.cli import main
from armada_hooks.jobservice.client import JobServiceClient
from armada_hooks.jobservice.sqlite_store import SQLiteStore

SCRIPT = str(Path(sys.executable).parent / "armada-hooks")
SERVING = re.compile(r"^job service serving on (127\.0\.0\.1:\d+)$")


# The console script's main() in a fresh interpreter that says, as it exits, whether
# Airflow was ever imported: the job service must start without it (seconds saved).
NO_AIRFLOW_MAIN = (
    "import atexit, sys; "
    "atexit.register(lambda: print('airflow imported:', 'airflow' in sys.modules)); "
    "from armada_hooks.cli import main; sys.exit(main())"
)


def test_job_service_command_serves_until_sigterm_without_importing_airflow(
    local_armada, tmp_path
):
    [job_id] = submit(local_armada, "cli", {"armada-hooks/runtime": "0"})
    store = tmp_path / "js.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            NO_AIRFLOW_MAIN,
            "job-service",
            "--armada-target",
            local_armada.target,
            "--store",
            f"sqlite:{store}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = SERVING.match(line)
        assert match, line
        client = JobServiceClient(open_channel(ChannelSpec(match.group(1))))
        eventually(lambda: historic(client, "default", "cli", job_id)[0] == "SUCCEEDED")
        # an id no stream shows: asked of Armada's query API, on the same Airflow-free path
        assert historic(client, "default", "cli", "01nosuchjob")[0] == "JOB_ID_NOT_FOUND"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "job service stopped" in out
    assert "airflow imported: False" in out
    assert SQLiteStore(store).jobs(("default", "cli"))[job_id].state.name == "SUCCEEDED"


def test_job_service_command_says_what_is_wrong_with_its_options(capsys):
    # in-process: the same main() the console script runs
    args = ["job-service", "--armada-target", "127.0.0.1:1"]
    assert main([*args, "--store", "ftp://x:1/0"]) == 2
    assert "use sqlite:PATH or redis://HOST:PORT/DB" in capsys.readouterr().err
    assert main([*args, "--store", "redis://127.0.0.1:1/0"]) == 2
    assert "redis://127.0.0.1:1/0 cannot be reached" in capsys.readouterr().err
    assert main([*args, "--idle-timeout", "-1"]) == 2
    assert "idle_timeout must be a number of seconds >= 0" in capsys.readouterr().err


def test_client_for_helper_is_a_working_client(job_service):
    assert client_for(job_service).health().status in (1, 2)


def test_the_listener_serves_tls_when_given_a_certificate(local_armada, tmp_path):
    from armada_hooks.testing import make_test_pki

    pki = make_test_pki()
    paths = pki.write(tmp_path)
    [job_id] = submit(local_armada, "tls", {"armada-hooks/runtime": "0"})
    proc = subprocess.Popen(
        [
            *(SCRIPT, "job-service", "--armada-target", local_armada.target),
            *("--tls-cert", str(paths["server_cert"]), "--tls-key", str(paths["server_key"])),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        match = SERVING.match(proc.stdout.readline().strip())
        assert match
        spec = ChannelSpec(match.group(1), tls=True, ca_cert=pki.ca_cert)
        client = JobServiceClient(open_channel(spec))
        eventually(lambda: historic(client, "default", "tls", job_id)[0] == "SUCCEEDED")
        plaintext = JobServiceClient(open_channel(ChannelSpec(match.group(1))))
        with pytest.raises(grpc.RpcError):
            plaintext.health()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def test_tls_cert_without_key_is_refused(capsys, tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    assert main(["job-service", "--armada-target", "127.0.0.1:1", "--tls-cert", str(cert)]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err


def test_armada_conn_id_takes_address_tls_and_token_from_the_connection(monkeypatch, capsys):
    import argparse

    from armada_hooks.cli import job_service_armada
    from armada_hooks.testing import LocalArmada

    armada = LocalArmada(port=50123, token="conn-token")  # not started: only its connection
    monkeypatch.setenv("AIRFLOW_CONN_JS_ARMADA", armada.airflow_connection())
    args = argparse.Namespace(
        armada_conn_id="js_armada", armada_target=None, tls=False, ca_cert=None, token_file=None
    )
    spec = job_service_armada(args)
    assert (spec.target, spec.token, spec.tls) == ("127.0.0.1:50123", "conn-token", False)
    assert main(["job-service", "--armada-conn-id", "js_armada", "--tls"]) == 2
    assert "takes TLS and the token from the connection" in capsys.readouterr().err
    assert main(["job-service", "--armada-conn-id", "no_such_connection"]) == 2
    assert "AIRFLOW_CONN_NO_SUCH_CONNECTION" in capsys.readouterr().err
