"""Issue 12, §3: after the stack's scenarios have run, no secret is anywhere it can be read.

This module's name sorts last in tests/stack, so it runs after every scenario: their
triggers, XComs, rendered fields and task logs are all there to look at. The secrets are
the bearer tokens of every local Armada the stack's connections point at (and the wrong
one of ``armada_wrong_token``) and the mTLS client's private key. They must appear in no
file under the stack's artifacts (every process log, every task log) or its Airflow home,
in no row of any table of the metadata database (the ``connection`` table holds its
passwords Fernet-encrypted), and in no answer of the REST API. The last test plants a
secret in a file, a table row and a REST answer and checks that the same scanners find it.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from secrets import token_urlsafe
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.fernet import Fernet

from armada_hooks.testing.stack import AirflowRestError
from armada_hooks.testing.stack.ledger import jobs_of_run

if TYPE_CHECKING:
    from armada_hooks.testing.stack import AirflowStack

STORED_CONN = "armada_stored"  # the connection of tests/stack/dags/stack_secrets.py
NAMED_TABLES = ("trigger", "xcom", "rendered_task_instance_fields", "serialized_dag", "connection")
PAGE = 100
REST_LIST_PATHS = {  # list endpoints, and the key of their entries
    "/variables": "variables",
    "/pools": "pools",
    "/importErrors": "import_errors",
    "/dagWarnings": "dag_warnings",
    "/eventLogs": "event_logs",
    "/jobs": "jobs",
    "/plugins": "plugins",
    "/providers": "providers",
    "/assets": "assets",
}
REST_PATHS = ("/version", "/monitor/health", "/config")  # no paging (/config: refused)


@dataclass(frozen=True)
class Secrets:
    """What must never be readable, by name (the name is what a failure prints)."""

    values: dict[str, str]

    def found_in(self, text: str | bytes) -> list[str]:
        """The names of the secrets ``text`` contains."""
        data = text.encode() if isinstance(text, str) else text
        return [name for name, value in self.values.items() if value.encode() in data]


@pytest.fixture(scope="module")
def secrets_(stack: AirflowStack, tls_armadas) -> Secrets:
    values = {"armada_default token": str(stack.armada.token)}
    for conn_id, armada in tls_armadas.by_conn_id().items():
        values[f"{conn_id} token"] = str(armada.token)
    values["armada_wrong_token password"] = "not-the-armada-token"
    key_body = tls_armadas.pki.client_key.decode().splitlines()[1]  # a line of base64
    values["mTLS client key"] = key_body
    return Secrets(values)


# -- the scanners ----------------------------------------------------------------------


def scan_files(roots: list[Path], secrets: Secrets) -> tuple[int, list[str]]:
    """How many files were read under ``roots``, and ``"path: secret"`` for each leak."""
    read, leaks = 0, []
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            try:
                data = path.read_bytes()
            except OSError:
                continue  # a file removed while we walk (a process's temp file)
            read += 1
            leaks += [f"{path}: {name}" for name in secrets.found_in(data)]
    return read, leaks


def tables(stack: AirflowStack) -> list[str]:
    """Every table of the metadata database."""
    rows = stack.postgres.query(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    return [str(row[0]) for row in rows]


def scan_tables(stack: AirflowStack, names: list[str], secrets: Secrets) -> dict[str, Any]:
    """Rows per table, and ``"table: secret"`` for each row that holds one."""
    counts: dict[str, int] = {}
    leaks: list[str] = []
    for table in names:
        rows = stack.postgres.query(f'SELECT t::text FROM "{table}" t')
        counts[table] = len(rows)
        for (text,) in rows:
            leaks += [f"{table}: {name}" for name in secrets.found_in(str(text))]
    return {"rows": counts, "leaks": leaks}


def trigger_rows(stack: AirflowStack) -> list[tuple[str, str]]:
    """Each of our triggers' rows as text, and its kwargs as JSON text (Airflow may keep
    them Fernet-encrypted; those are decrypted)."""
    fernet = Fernet(stack.env["AIRFLOW__CORE__FERNET_KEY"].encode())
    rows = stack.postgres.query(
        "SELECT t::text, kwargs FROM trigger t WHERE classpath LIKE 'armada_hooks.%%'"
    )
    found = []
    for row, kwargs in rows:
        text = str(kwargs)
        if not text.startswith("{"):
            text = fernet.decrypt(text.encode()).decode()
        found.append((str(row), text))
    return found


def _get(stack: AirflowStack, path: str, **params: Any) -> tuple[str, Any]:
    """One REST answer, as its text and its decoded body (an error's text is an answer too)."""
    try:
        body = stack.rest.get(path, **params)
    except AirflowRestError as exc:
        return str(exc), None
    return (body if isinstance(body, str) else json.dumps(body)), body


def rest_answers(stack: AirflowStack) -> dict[str, str]:
    """The text of every REST answer about the stack's DAGs, runs, tasks, XComs, logs and
    connections (path -> text)."""
    answers: dict[str, str] = {}

    def get(path: str, **params: Any) -> Any:
        text, body = _get(stack, path, **params)
        answers[path + (f"?{params}" if params else "")] = text
        return body

    def every(path: str, key: str) -> list[Any]:
        """Every entry of a list endpoint, page by page (each page an answer)."""
        found: list[Any] = []
        while True:
            page = get(path, limit=PAGE, offset=len(found)) or {}
            found.extend(page.get(key, []))
            if not page.get(key) or len(found) >= page.get("total_entries", 0):
                return found

    for path in REST_PATHS:
        get(path)
    for path, key in REST_LIST_PATHS.items():
        every(path, key)
    for conn in every("/connections", "connections"):
        get(f"/connections/{conn['connection_id']}")
    later: list[tuple[str, dict[str, Any]]] = []  # logs and XCom values: many, fetched at once
    for dag in every("/dags", "dags"):
        dag_id = dag["dag_id"]
        for suffix in ("", "/details", "/tasks"):
            get(f"/dags/{dag_id}{suffix}")
        get(f"/dagSources/{dag_id}")
        for run in every(f"/dags/{dag_id}/dagRuns", "dag_runs"):
            run_path = f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
            get(run_path)
            for ti in every(f"{run_path}/taskInstances", "task_instances"):  # rendered fields
                for try_number in range(1, int(ti["try_number"]) + 1):
                    later.append(
                        (
                            f"{run_path}/taskInstances/{ti['task_id']}/logs/{try_number}",
                            {"map_index": ti["map_index"], "full_content": True},
                        )
                    )
            for entry in every(f"{run_path}/taskInstances/~/xcomEntries", "xcom_entries"):
                later.append(
                    (
                        f"{run_path}/taskInstances/{entry['task_id']}/xcomEntries/{entry['key']}",
                        {"map_index": entry["map_index"], "deserialize": True},
                    )
                )
    with ThreadPoolExecutor(4) as pool:
        texts = pool.map(lambda call: _get(stack, call[0], **call[1])[0], later)
        for (path, params), text in zip(later, texts, strict=True):
            answers[f"{path}?{params}"] = text
    return answers


def leaks_in(answers: dict[str, str], secrets: Secrets) -> list[str]:
    """``"path: secret"`` for each answer that holds a secret."""
    return [f"{path}: {name}" for path, text in answers.items() for name in secrets.found_in(text)]


# -- a task on a connection stored in the database -------------------------------------


@pytest.fixture(scope="module")
def stored_connection(stack: AirflowStack) -> str:
    """``armada_stored``: the ``armada_default`` connection, created over the REST API."""
    conn = json.loads(stack.connection_json())
    body = {
        "connection_id": STORED_CONN,
        "conn_type": conn["conn_type"],
        "host": conn["host"],
        "port": conn["port"],
        "password": conn["password"],
        "extra": json.dumps(conn["extra"]),
    }
    try:
        stack.rest.request("POST", "/connections", json=body)
    except AirflowRestError as exc:
        if "409" not in str(exc):
            raise
    return STORED_CONN


PROBE: dict[str, Any] = {}  # the probe runs once, for every test of the module


@pytest.fixture
def probe_run(stack, stored_connection, run_dag, wait_for, wait_deferred, tmp_path_factory):
    """The finished probe run, and what was seen while its task was deferred."""
    if "failed" in PROBE:
        pytest.fail(f"the probe run failed: {PROBE['failed']!r}")
    if PROBE:
        return PROBE["run"], PROBE["seen"]
    release = tmp_path_factory.mktemp("secrets") / "release"
    seen: dict[str, Any] = {}

    def while_deferred(run_id: str) -> None:
        try:
            wait_deferred("stack_secrets", run_id)
            seen["triggers"] = wait_for(
                lambda: [row for row in trigger_rows(stack) if STORED_CONN in row[1]],
                60,
                "the probe's trigger row",
            )
            seen["deferred ti"] = json.dumps(stack.rest.task_instances("stack_secrets", run_id))
            # The job loops until the release: let its log stream first (two fetches by the
            # trigger, a second apart, come after the container's first line).
            (job,) = jobs_of_run(stack.armada, "stack_secrets", run_id)
            wait_for(
                lambda: stack.armada.rpc_counts_by_job("Logs").get(job.job_id, 0) >= 2,
                60,
                "the probe's log to stream",
            )
        finally:
            release.touch()  # never leave the job held

    try:
        run = run_dag(
            "stack_secrets",
            conf={"release_file": str(release)},
            meanwhile=while_deferred,
            timing="secrets probe (deferred task on a stored connection)",
        )
    except BaseException as exc:
        PROBE["failed"] = exc  # the other tests fail at once instead of probing again
        raise
    PROBE.update(run=run, seen=seen)
    return run, seen


def test_a_deferred_task_on_a_stored_connection_keeps_its_token_out_of_the_trigger_row(
    probe_run, secrets_
):
    run, seen = probe_run
    assert run.state == "success"
    assert run.ti("stored_connection")["try_number"] == 1
    assert "secrets probe line 1" in run.log("stored_connection", 1)
    run.ledger().assert_clean()
    ((row, kwargs),) = seen["triggers"]
    assert STORED_CONN in kwargs  # the trigger names the connection, not its secret
    assert secrets_.found_in(row) == []
    assert secrets_.found_in(kwargs) == []
    assert secrets_.found_in(seen["deferred ti"]) == []


def test_the_stored_password_is_fernet_encrypted(stack, probe_run, secrets_):
    ((password, is_encrypted, extra),) = stack.postgres.query(
        "SELECT password, is_encrypted, extra FROM connection WHERE conn_id = %s", (STORED_CONN,)
    )
    assert is_encrypted is True
    assert secrets_.found_in(str(password)) == []
    assert secrets_.found_in(str(extra)) == []
    fernet = Fernet(stack.env["AIRFLOW__CORE__FERNET_KEY"].encode())
    assert fernet.decrypt(str(password).encode()).decode() == stack.armada.token


def test_no_table_of_the_metadata_database_holds_a_secret(stack, probe_run, secrets_):
    names = tables(stack)
    assert set(NAMED_TABLES) <= set(names)
    found = scan_tables(stack, names, secrets_)
    for table in ("xcom", "rendered_task_instance_fields", "serialized_dag", "connection"):
        assert found["rows"][table] > 0, table  # the scan saw what the scenarios left
    assert found["leaks"] == []


def test_no_log_file_of_the_stack_holds_a_secret(stack, probe_run, secrets_):
    assert stack.home is not None
    task_logs = list((stack.artifacts_dir / "task-logs").rglob("*.log"))
    assert any("stack_secrets" in str(p) for p in task_logs)
    process_logs = [p.log_path for p in stack.processes.values()]
    assert all(p.stat().st_size > 0 for p in process_logs)
    read, leaks = scan_files([stack.artifacts_dir, stack.home], secrets_)
    assert read >= len(task_logs) + len(process_logs)
    assert leaks == []


def test_no_rest_answer_holds_a_secret(stack, probe_run, secrets_):
    answers = rest_answers(stack)
    assert f"/connections/{STORED_CONN}" in answers
    assert any("/logs/" in path and "stack_secrets" in path for path in answers)
    assert any("/xcomEntries/return_value" in path for path in answers)
    assert leaks_in(answers, secrets_) == []


def test_the_scanners_find_a_planted_secret(stack, probe_run, secrets_, tmp_path):
    """The negative control: a secret put where each scanner looks is found there.

    It is a fresh value: Airflow's API server masks the tokens it has handed to workers
    wherever it redacts an answer, so a planted real token would come back as ``***``.
    """
    planted = token_urlsafe(24)
    with_planted = Secrets({**secrets_.values, "planted": planted})
    log = tmp_path / "planted.log"
    log.write_text(f"INFO the token is {planted}\n")
    assert scan_files([tmp_path], with_planted)[1] == [f"{log}: planted"]
    key = "planted_by_the_leak_scan"  # no "secret" in it: Airflow would mask its value
    with stack.postgres.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO variable (key, val, is_encrypted) VALUES (%s, %s, false)",
            (key, f"Bearer {planted}"),
        )
        conn.commit()
    try:
        assert scan_tables(stack, ["variable"], with_planted)["leaks"] == ["variable: planted"]
        text, _ = _get(stack, "/variables", limit=PAGE)
        assert leaks_in({"/variables": text}, with_planted) == ["/variables: planted"]
    finally:
        with stack.postgres.connect() as conn, conn.cursor() as cur:
            cur.execute("DELETE FROM variable WHERE key = %s", (key,))
            conn.commit()
    assert scan_tables(stack, ["variable"], with_planted)["leaks"] == []
