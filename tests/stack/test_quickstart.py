"""The quickstart's "On a real Airflow" commands, run verbatim on a real Airflow deployment.

The page's ``<!-- real-airflow -->`` blocks run in order, as a user types them, on a stack
of its own that starts as a fresh deployment does: no connection defined, new DAGs paused
(Airflow's default), the DAG file written by the user. The Armada it points at serves TLS
with a certificate the processes trust (as a real Armada's would be), so the page's
``tls=true`` URI works unchanged. Only the page's placeholders for the user's own servers
are replaced (:data:`PLACEHOLDERS`), and each must appear on the page.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from docs_blocks import ROOT, matches, parse_blocks, parse_console

from armada_hooks.testing.server import LocalArmada, ServerTls
from armada_hooks.testing.stack import AirflowStack
from armada_hooks.testing.tls import make_test_pki

PAGE = ROOT / "docs" / "quickstart.md"
DAG_FILE = "dags/hello_armada.py"
DAG_ID = "hello_armada"
COMMAND_TIMEOUT = 120.0
# The page's placeholders for the user's Armada -> this stack's (token and port at run time).
PLACEHOLDERS = {
    "MY_TOKEN": "{token}",
    "armada.example.com:443": "localhost:{port}",
    "binoculars-%7Bcluster%7D.example.com%3A443": "localhost%3A{port}",
}


@pytest.fixture(scope="module")
def fresh_deployment(tmp_path_factory, pytestconfig):
    """A stack with nothing defined yet, its Armada on TLS that its processes trust."""
    pki_dir = tmp_path_factory.mktemp("pki")
    paths = make_test_pki().write(pki_dir)
    armada = LocalArmada(
        queues=["default"],
        token="quickstart-" + os.urandom(12).hex(),
        execution="subprocess",
        tls=ServerTls(
            cert_chain=paths["server_cert"].read_bytes(),
            private_key=paths["server_key"].read_bytes(),
        ),
    ).start()
    dags = tmp_path_factory.mktemp("dags")
    artifacts = pytestconfig.rootpath / ".stack-logs" / f"quickstart-{os.getpid()}"
    stack = AirflowStack(
        dags_folder=dags,
        artifacts_dir=artifacts,
        triggerers=1,
        armada=armada,
        default_connection=False,
        # Airflow's defaults, which the stack's scenarios change: new DAGs start paused.
        config={("core", "dags_are_paused_at_creation"): "True"},
        # gRPC's trusted roots: what a real Armada's public CA is for a user.
        environment={"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(paths["ca_cert"])},
    )
    try:
        yield stack.start(), dags
    finally:
        stack.stop()
        armada.stop()


def _run(command: str, stack: AirflowStack, cwd: Path) -> str:
    env = dict(stack.env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{output}"
    return output


def _runs(stack: AirflowStack) -> list[dict]:
    return list(stack.rest.get(f"/dags/{DAG_ID}/dagRuns")["dag_runs"])


@pytest.mark.timeout(900)  # the stack's start-up counts here too
def test_the_quickstart_runs_verbatim_on_a_real_airflow(fresh_deployment, tmp_path):
    stack, dags = fresh_deployment
    blocks = parse_blocks(PAGE)
    dag_source = next(b.code for b in blocks if b.marker == "file" and b.arg == DAG_FILE)
    real = [b for b in blocks if b.marker == "real-airflow"]
    assert len(real) >= 4, "the page's real-Airflow steps are gone"
    page_text = PAGE.read_text()
    for placeholder in PLACEHOLDERS:
        assert placeholder in page_text, f"the test replaces {placeholder!r}; the page lost it"
    values = {"token": stack.armada.token, "port": stack.armada.port}

    for block in real:
        for command, expected in parse_console(block.code):
            for placeholder, value in PLACEHOLDERS.items():
                command = command.replace(placeholder, value.format(**values))
            if "airflow dags unpause" in command:
                # The user waits for the DAG processor to parse the file they added.
                stack.wait_for_dags(DAG_ID)
            if "airflow dags list-runs" in command:
                # ... and for the run to end before looking at it.
                run_id = _runs(stack)[0]["dag_run_id"]
                assert stack.rest.wait_for_run(DAG_ID, run_id, timeout=180) == "success"
            output = _run(command, stack, tmp_path)
            assert matches(expected, output), (
                f"{block.where}: {command!r} printed something else.\n"
                f"expected:\n{expected}\ngot:\n{output}"
            )
            assert stack.armada.token not in output
        if "airflow connections add" in block.code:
            # The user saves the DAG after defining the connection (step 3 of the page).
            (dags / Path(DAG_FILE).name).write_text(dag_source)

    (run,) = _runs(stack)
    run_id = run["dag_run_id"]
    log = stack.rest.task_log(DAG_ID, run_id, "hello", 1)
    assert "hello from Armada" in log  # the container's own output, over Binoculars on TLS
    assert "Submitted Armada job" in log
    (job,) = [j for j in stack.armada.jobs() if j.job_set_id == f"{DAG_ID}-{run_id}"]
    links = stack.rest.get(f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/hello/links")
    assert f"https://lookout.example.com/jobs/{job.job_id}" in str(links)


def test_the_page_marks_its_real_airflow_steps():
    """The steps a user runs on their deployment are the ones run above, none skipped."""
    blocks = parse_blocks(PAGE)
    section = PAGE.read_text().split("## On a real Airflow", 1)[1]
    console = [b for b in blocks if b.lang == "console" and b.code in section]
    unrun = [b.where for b in console if b.marker not in ("real-airflow", "not-runnable")]
    assert unrun == []
    assert [b.arg for b in console if b.marker == "not-runnable"] == [
        "installs into your Airflow deployment's environment"
    ]
