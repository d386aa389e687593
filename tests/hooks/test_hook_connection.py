"""ArmadaHook's connection handling and transport, against a real local Armada over gRPC.

Connections are real Airflow connections from ``AIRFLOW_CONN_*`` (URI and JSON forms);
every client call crosses loopback to a ``LocalArmada`` (plaintext, bearer token, TLS,
mutual TLS, TLS + token).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from urllib.parse import quote, urlencode

import grpc
import pytest
from armada_client.asyncio_client import ArmadaAsyncIOClient

import armada_hooks.hooks.armada as armada_hook_module
from armada_hooks._compat import AirflowException, AirflowFailException, capture_log_events
from armada_hooks.defaults import DEFAULT_RPC_TIMEOUT
from armada_hooks.errors import (
    ArmadaAuthError,
    ArmadaConnectionError,
    ArmadaError,
    ArmadaFatalError,
    ArmadaRpcError,
)
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.hooks.connection import ArmadaConnectionConfig
from armada_hooks.states import JobState
from armada_hooks.testing import LocalArmada, ServerTls, TestPki, job_request_item, make_test_pki

QUICK_JOB = {"armada-hooks/runtime": "1s"}
FAST = {"retry_wait_min": 0.01, "retry_wait_max": 0.05}


# -- helpers ---------------------------------------------------------------------------


def _secret() -> str:
    return f"tok-{uuid.uuid4().hex}"


def _env(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def set_uri(
    monkeypatch: pytest.MonkeyPatch,
    conn_id: str,
    host: str,
    port: int | None = None,
    token: str | None = None,
    **extras: str,
) -> None:
    """``AIRFLOW_CONN_<ID>`` as an ``armada://`` URI (extras in the query string)."""
    auth = f":{quote(token, safe='')}@" if token else ""
    netloc = f"{host}:{port}" if port else host
    query = f"?{urlencode(extras)}" if extras else ""
    monkeypatch.setenv(_env(conn_id), f"armada://{auth}{netloc}{query}")


def set_json(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: object) -> None:
    """``AIRFLOW_CONN_<ID>`` as JSON (``extra`` a dict)."""
    monkeypatch.setenv(_env(conn_id), json.dumps({"conn_type": "armada", **fields}))


def config_of(conn_id: str) -> ArmadaConnectionConfig:
    """Parse the real Airflow connection ``conn_id`` (as the hook loads it)."""
    return ArmadaConnectionConfig.from_connection(ArmadaHook.get_connection(conn_id))


def submit(hook: ArmadaHook, queue: str = "default") -> str:
    return hook.submit_job(queue, "conn-set", job_request_item(annotations=QUICK_JOB))


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def assert_secret_free(exc: BaseException, *secrets: str) -> None:
    """No secret in the message, str, repr or args of ``exc`` or anything it chains to."""
    for link in _chain(exc):
        texts = [str(link), repr(link), repr(link.args), getattr(link, "message", "")]
        for secret in secrets:
            for text in texts:
                assert secret not in text, f"secret leaked in {type(link).__name__}: {text}"


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return make_test_pki()


@pytest.fixture(autouse=True)
def _no_default_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_env("armada_default"), raising=False)


# -- class attributes ------------------------------------------------------------------


def test_class_attributes_describe_the_armada_connection_type():
    assert ArmadaHook.conn_name_attr == "armada_conn_id"
    assert ArmadaHook.default_conn_name == "armada_default"
    assert ArmadaHook.conn_type == "armada"
    assert ArmadaHook.hook_name == "Armada"


def test_default_hook_uses_armada_default(monkeypatch, local_armada):
    assert ArmadaHook().armada_conn_id == "armada_default"
    set_uri(monkeypatch, "armada_default", "127.0.0.1", local_armada.port)
    hook = ArmadaHook(**FAST)
    assert hook.config.conn_id == "armada_default"
    assert hook.config.target == local_armada.target
    job_id = submit(hook)
    assert local_armada.job(job_id).queue == "default"


def test_default_hook_without_a_connection_says_how_to_define_it():
    with pytest.raises(ArmadaConnectionError) as excinfo:
        ArmadaHook().client  # noqa: B018 - building the client loads the connection
    message = str(excinfo.value)
    assert "'armada_default'" in message
    assert "AIRFLOW_CONN_ARMADA_DEFAULT=" in message
    assert isinstance(excinfo.value, AirflowFailException)


# -- parsing real connections ----------------------------------------------------------


def test_uri_connection_fields(monkeypatch):
    token = _secret()
    set_uri(
        monkeypatch,
        "armada_uri",
        "armada.example.com",
        50051,
        token,
        rpc_timeout="7.5",
        lookout_url="https://lookout.example.com/",
        binoculars_target="binoculars-{cluster}.example.com:50051",
        default_queue="team-a",
        tls="false",
    )
    config = config_of("armada_uri")
    assert config.conn_id == "armada_uri"
    assert config.host == "armada.example.com"
    assert config.port == 50051
    assert config.target == "armada.example.com:50051"
    assert config.token == token
    assert config.tls is False
    assert config.rpc_timeout == 7.5
    assert config.lookout_url == "https://lookout.example.com"
    assert config.binoculars_target == "binoculars-{cluster}.example.com:50051"
    assert config.binoculars_for("c1") == "binoculars-c1.example.com:50051"
    assert config.default_queue == "team-a"
    spec = config.channel_spec()
    assert spec.target == "armada.example.com:50051"
    assert spec.deadline == 7.5
    assert spec.token == token
    assert config.channel_spec("other:1").target == "other:1"


def test_json_connection_fields(monkeypatch):
    token = _secret()
    set_json(
        monkeypatch,
        "armada_json",
        host="armada.internal",
        port=443,
        password=token,
        extra={
            "tls": True,
            "rpc_timeout": 3,
            "lookout_url": "http://lookout:8089///",
            "binoculars_target": "binoculars.internal:50051",
            "default_queue": "q1",
        },
    )
    config = config_of("armada_json")
    assert config.target == "armada.internal:443"
    assert config.token == token
    assert config.tls is True
    assert config.ca_cert is None  # TLS with the system roots
    assert config.rpc_timeout == 3.0
    assert config.lookout_url == "http://lookout:8089"
    # without {cluster} every cluster shares the one Binoculars
    assert config.binoculars_for("c1") == "binoculars.internal:50051"
    assert config.binoculars_for("c2") == "binoculars.internal:50051"
    assert config.default_queue == "q1"


def test_minimal_connection_defaults(monkeypatch):
    set_json(monkeypatch, "armada_min", host="armada")
    config = config_of("armada_min")
    assert config.target == "armada"
    assert config.port is None
    assert config.token is None
    assert config.tls is False
    assert config.rpc_timeout == DEFAULT_RPC_TIMEOUT
    assert config.lookout_url is None
    assert config.binoculars_for("c1") is None
    assert config.default_queue is None
    assert config.channel_spec().metadata() == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
    ],
)
def test_tls_strings_in_a_uri(monkeypatch, value, expected):
    set_uri(monkeypatch, "armada_tls_str", "armada", 1, tls=value)
    assert config_of("armada_tls_str").tls is expected


@pytest.mark.parametrize("value", [True, False])
def test_tls_booleans_in_json(monkeypatch, value):
    set_json(monkeypatch, "armada_tls_bool", host="armada", extra={"tls": value})
    assert config_of("armada_tls_bool").tls is value


def test_certificates_as_pem_text(monkeypatch, pki):
    set_json(
        monkeypatch,
        "armada_pem",
        host="armada",
        extra={
            "tls": "true",
            "ca_cert": pki.ca_cert.decode(),
            "client_cert": pki.client_cert.decode(),
            "client_key": pki.client_key.decode(),
        },
    )
    config = config_of("armada_pem")
    assert config.ca_cert == pki.ca_cert
    assert config.client_cert == pki.client_cert
    assert config.client_key == pki.client_key
    # PEM material (the key above all) stays out of repr
    assert pki.client_key.decode().splitlines()[1] not in repr(config)


def test_certificates_as_file_paths_in_a_uri(monkeypatch, pki, tmp_path):
    paths = pki.write(tmp_path)
    set_uri(
        monkeypatch,
        "armada_paths",
        "armada",
        50051,
        tls="true",
        ca_cert=str(paths["ca_cert"]),
        client_cert=str(paths["client_cert"]),
        client_key=str(paths["client_key"]),
    )
    config = config_of("armada_paths")
    assert config.ca_cert == pki.ca_cert
    assert config.client_cert == pki.client_cert
    assert config.client_key == pki.client_key


def test_prefixed_extra_spelling(monkeypatch, pki, tmp_path):
    paths = pki.write(tmp_path)
    set_json(
        monkeypatch,
        "armada_prefixed",
        host="armada",
        extra={
            "extra__armada__tls": "true",
            "extra__armada__ca_cert": str(paths["ca_cert"]),
            "extra__armada__rpc_timeout": "4",
            "extra__armada__lookout_url": "https://lookout/",
            "extra__armada__binoculars_target": "b-{cluster}:1",
            "extra__armada__default_queue": "qq",
        },
    )
    config = config_of("armada_prefixed")
    assert config.tls is True
    assert config.ca_cert == pki.ca_cert
    assert config.rpc_timeout == 4.0
    assert config.lookout_url == "https://lookout"
    assert config.binoculars_for("c1") == "b-c1:1"
    assert config.default_queue == "qq"


def test_hook_config_is_the_parsed_connection(monkeypatch):
    set_uri(monkeypatch, "armada_hookcfg", "armada.example.com", 50051, rpc_timeout="9")
    hook = ArmadaHook("armada_hookcfg")
    assert hook.config == config_of("armada_hookcfg")
    assert hook.config.rpc_timeout == 9.0


async def test_concurrent_async_loads_share_one_connection_lookup(monkeypatch):
    set_uri(monkeypatch, "armada_shared", "armada.example.com", 50051, event_mode="true")
    hook = ArmadaHook("armada_shared")
    lookups = 0
    real = armada_hook_module.aget_connection

    async def counting(owner, conn_id):
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0.01)  # a slow secrets backend: the others arrive meanwhile
        return await real(owner, conn_id)

    monkeypatch.setattr(armada_hook_module, "aget_connection", counting)
    configs = await asyncio.gather(*(hook.aload_config() for _ in range(200)))
    assert lookups == 1
    assert all(c is configs[0] for c in configs)
    assert configs[0].event_mode is True


async def test_a_failed_async_load_is_tried_again_by_the_next_call(monkeypatch):
    hook = ArmadaHook("armada_later")
    with pytest.raises(ArmadaConnectionError, match="AIRFLOW_CONN_ARMADA_LATER"):
        await hook.aload_config()
    set_uri(monkeypatch, "armada_later", "armada.example.com", 50051)
    assert (await hook.aload_config()).host == "armada.example.com"


def test_event_mode_extra(monkeypatch):
    set_uri(monkeypatch, "armada_events_on", "armada.example.com", 50051, event_mode="yes")
    assert config_of("armada_events_on").event_mode is True
    set_uri(monkeypatch, "armada_events_default", "armada.example.com", 50051)
    assert config_of("armada_events_default").event_mode is False
    set_uri(monkeypatch, "armada_events_bad", "armada.example.com", 50051, event_mode="maybe")
    assert "event_mode must be true or false" in str(_bad("armada_events_bad"))


# -- bad connections -------------------------------------------------------------------


def _bad(conn_id: str) -> ArmadaConnectionError:
    with pytest.raises(ArmadaConnectionError) as excinfo:
        ArmadaHook(conn_id).config  # noqa: B018
    exc = excinfo.value
    assert isinstance(exc, AirflowFailException)  # fatal: no Airflow retry can fix it
    assert f"'{conn_id}'" in str(exc)
    return exc


def test_empty_host(monkeypatch):
    set_json(monkeypatch, "armada_nohost", port=50051)
    assert "host is empty" in str(_bad("armada_nohost"))


def test_host_with_a_scheme(monkeypatch):
    set_json(monkeypatch, "armada_scheme", host="https://armada.example.com", port=443)
    message = str(_bad("armada_scheme"))
    assert "host" in message
    assert "without a scheme" in message


@pytest.mark.parametrize("value", ["maybe", "tru", "2"])
def test_bad_tls_value(monkeypatch, value):
    set_uri(monkeypatch, "armada_badtls", "armada", 1, tls=value)
    assert "tls must be true or false" in str(_bad("armada_badtls"))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("soon", "must be a number of seconds"),
        ("0", "must be > 0 and at most"),
        ("-1.5", "must be > 0 and at most"),
        ("inf", "must be > 0 and at most 86400 seconds"),  # found by tests/test_fuzz_inputs.py
        ("1e300", "must be > 0 and at most 86400 seconds"),  # gRPC: DEADLINE_EXCEEDED at once
        ("nan", "must be > 0 and at most 86400 seconds"),
    ],
)
def test_bad_rpc_timeout(monkeypatch, value, problem):
    set_uri(monkeypatch, "armada_badtimeout", "armada", 1, rpc_timeout=value)
    message = str(_bad("armada_badtimeout"))
    assert "rpc_timeout" in message
    assert problem in message


def test_client_cert_without_client_key(monkeypatch, pki):
    set_json(
        monkeypatch,
        "armada_halfmtls",
        host="armada",
        extra={"tls": True, "client_cert": pki.client_cert.decode()},
    )
    message = str(_bad("armada_halfmtls"))
    assert "client_cert/client_key" in message
    assert "together" in message


def test_certificates_with_tls_false(monkeypatch, pki):
    set_json(
        monkeypatch,
        "armada_certnotls",
        host="armada",
        extra={"tls": "false", "ca_cert": pki.ca_cert.decode()},
    )
    message = str(_bad("armada_certnotls"))
    assert "tls must be true" in message


def test_unreadable_ca_cert_path(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere" / "ca.pem"
    set_json(
        monkeypatch, "armada_noca", host="armada", extra={"tls": True, "ca_cert": str(missing)}
    )
    message = str(_bad("armada_noca"))
    assert "ca_cert cannot be read" in message
    assert str(missing) in message


def test_missing_connection_says_how_to_define_it():
    conn_id = f"armada_missing_{uuid.uuid4().hex[:8]}"
    assert _env(conn_id) not in os.environ
    message = str(_bad(conn_id))
    assert f"AIRFLOW_CONN_{conn_id.upper()}=" in message
    assert "armada://" in message


def test_bad_connection_messages_do_not_carry_the_token(monkeypatch):
    token = _secret()
    set_uri(monkeypatch, "armada_badtok", "armada", 1, token, tls="perhaps")
    assert_secret_free(_bad("armada_badtok"), token)
    set_uri(monkeypatch, "armada_badtok", "armada", 1, token, rpc_timeout="never")
    assert_secret_free(_bad("armada_badtok"), token)


# -- the token stays secret ------------------------------------------------------------


def test_token_not_in_config_repr(monkeypatch):
    token = _secret()
    set_uri(monkeypatch, "armada_repr", "armada", 50051, token)
    hook = ArmadaHook("armada_repr")
    assert hook.config.token == token  # it is there...
    assert token not in repr(hook.config)  # ...but not shown
    assert token not in str(hook.config)
    assert token not in repr(hook.config.channel_spec())


def test_token_never_logged_or_raised(monkeypatch, local_armada_factory, caplog, capsys):
    # Two log paths: stdlib records (grpc, Airflow) reach caplog at DEBUG on the root
    # logger; the hook itself logs through Airflow's structlog, whose raw events
    # capture_logs sees (before any redaction) and whose rendering lands on stdout.
    caplog.set_level(logging.DEBUG)
    token, wrong = _secret(), _secret()
    armada = local_armada_factory(token=token, time_scale=50)
    set_uri(monkeypatch, "armada_ok", "127.0.0.1", armada.port, token, rpc_timeout="5")
    set_uri(monkeypatch, "armada_wrong", "127.0.0.1", armada.port, wrong, rpc_timeout="5")
    with capture_log_events() as events:
        hook = ArmadaHook("armada_ok", **FAST)
        job_id = submit(hook)
        armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE)  # a logged retry
        assert hook.wait_for_job(job_id, delay=0.05) is JobState.SUCCEEDED
        assert hook.check_job_success(job_id) is True

        bad = ArmadaHook("armada_wrong", **FAST)
        with pytest.raises(ArmadaAuthError) as submit_error:
            submit(bad)
        with pytest.raises(ArmadaAuthError) as status_error:
            bad.get_job_status(job_id)
        ok, message = bad.test_connection()
    assert ok is False

    for exc in (submit_error.value, status_error.value):
        assert_secret_free(exc, token, wrong)
    for secret in (token, wrong):
        assert secret not in message

    # the hook did log during the run (state changes and the retry): the checks bite
    rendered = [repr(event) for event in events]
    assert any(job_id in text and "SUCCEEDED" in text for text in rendered), rendered
    assert any("retrying" in text for text in rendered), rendered
    for record in caplog.records:
        rendered += [record.getMessage(), str(record.msg), repr(record.args)]
        if record.exc_info and record.exc_info[1] is not None:
            rendered.append(repr(record.exc_info[1]))
    captured = capsys.readouterr()
    rendered += [caplog.text, captured.out, captured.err]
    for secret in (token, wrong):
        leaks = [text for text in rendered if secret in text]
        assert not leaks, f"secret logged: {leaks}"


def test_auth_error_str_has_no_token(monkeypatch, local_armada_factory):
    token, wrong = _secret(), _secret()
    armada = local_armada_factory(token=token)
    set_uri(monkeypatch, "armada_autherr", "127.0.0.1", armada.port, wrong)
    with pytest.raises(ArmadaAuthError) as excinfo:
        ArmadaHook("armada_autherr", **FAST).get_job_status("no-such-job")
    assert wrong not in str(excinfo.value)
    assert token not in str(excinfo.value)
    assert "armada_autherr" in str(excinfo.value)


# -- transports ------------------------------------------------------------------------


def _roundtrip(hook: ArmadaHook, armada: LocalArmada) -> None:
    """Submit, see the job through the query API, wait for it to end, and check it."""
    job_id = submit(hook)
    assert armada.job(job_id).queue == "default"  # the server really has it
    assert hook.wait_for_job(job_id, delay=0.05) is JobState.SUCCEEDED
    assert hook.check_job_success(job_id) is True
    assert hook.get_job_status(job_id) is JobState.SUCCEEDED


def test_plaintext(monkeypatch, local_armada_factory):
    armada = local_armada_factory(time_scale=50)
    set_uri(monkeypatch, "armada_plain", "127.0.0.1", armada.port, rpc_timeout="5")
    _roundtrip(ArmadaHook("armada_plain", **FAST), armada)


def test_bearer_token(monkeypatch, local_armada_factory):
    token = _secret()
    armada = local_armada_factory(token=token, time_scale=50)
    set_uri(monkeypatch, "armada_token", "127.0.0.1", armada.port, token, rpc_timeout="5")
    _roundtrip(ArmadaHook("armada_token", **FAST), armada)


def test_tls_with_the_ca(monkeypatch, local_armada_factory, pki):
    tls = ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key)
    armada = local_armada_factory(tls=tls, time_scale=50)
    set_json(
        monkeypatch,
        "armada_tls",
        host="127.0.0.1",
        port=armada.port,
        extra={"tls": True, "ca_cert": pki.ca_cert.decode(), "rpc_timeout": 5},
    )
    _roundtrip(ArmadaHook("armada_tls", **FAST), armada)


def test_plaintext_client_cannot_talk_to_a_tls_server(monkeypatch, local_armada_factory, pki):
    tls = ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key)
    armada = local_armada_factory(tls=tls)
    set_uri(monkeypatch, "armada_tlsmismatch", "127.0.0.1", armada.port, rpc_timeout="5")
    hook = ArmadaHook("armada_tlsmismatch", status_retries=0)
    with pytest.raises(ArmadaRpcError) as excinfo:
        hook.get_job_status("any")
    assert excinfo.value.code == "UNAVAILABLE"
    assert not isinstance(excinfo.value, AirflowFailException)  # retryable


def test_mutual_tls_with_client_cert_from_the_connection(
    monkeypatch, local_armada_factory, pki, tmp_path
):
    tls = ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key, client_ca=pki.ca_cert)
    armada = local_armada_factory(tls=tls, time_scale=50)
    paths = pki.write(tmp_path)
    set_uri(
        monkeypatch,
        "armada_mtls",
        "127.0.0.1",
        armada.port,
        tls="true",
        ca_cert=str(paths["ca_cert"]),
        client_cert=str(paths["client_cert"]),
        client_key=str(paths["client_key"]),
        rpc_timeout="5",
    )
    _roundtrip(ArmadaHook("armada_mtls", **FAST), armada)

    # the same server refuses a client without a certificate: the cert did the work
    set_json(
        monkeypatch,
        "armada_mtls_nocert",
        host="127.0.0.1",
        port=armada.port,
        extra={"tls": True, "ca_cert": pki.ca_cert.decode(), "rpc_timeout": 5},
    )
    with pytest.raises(ArmadaRpcError) as excinfo:
        ArmadaHook("armada_mtls_nocert", status_retries=0).get_job_status("any")
    assert excinfo.value.code == "UNAVAILABLE"


def test_tls_and_token(monkeypatch, local_armada_factory, pki):
    token = _secret()
    tls = ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key)
    armada = local_armada_factory(tls=tls, token=token, time_scale=50)
    set_json(
        monkeypatch,
        "armada_tls_token",
        host="127.0.0.1",
        port=armada.port,
        password=token,
        extra={"tls": "true", "ca_cert": pki.ca_cert.decode(), "rpc_timeout": "5"},
    )
    hook = ArmadaHook("armada_tls_token", **FAST)
    _roundtrip(hook, armada)
    ok, message = hook.test_connection()
    assert ok is True, message


def test_wrong_token_is_a_fatal_auth_error_naming_connection_and_queue(
    monkeypatch, local_armada_factory
):
    armada = local_armada_factory(token=_secret())
    set_uri(monkeypatch, "armada_badtoken", "127.0.0.1", armada.port, _secret())
    hook = ArmadaHook("armada_badtoken", **FAST)
    armada.reset_rpc_counts()
    with pytest.raises(ArmadaAuthError) as excinfo:
        submit(hook)
    exc = excinfo.value
    assert isinstance(exc, AirflowFailException)
    assert isinstance(exc, ArmadaFatalError)
    assert exc.method == "SubmitJobs"
    assert exc.code == "PERMISSION_DENIED"
    assert "'armada_badtoken'" in str(exc)
    assert "queue 'default'" in str(exc)
    assert "not valid for this Armada server" in str(exc)  # the server's own words
    assert armada.rpc_count("SubmitJobs") == 1  # an auth failure is not retried
    assert armada.jobs() == []


def test_wrong_token_on_status_names_the_connection(monkeypatch, local_armada_factory):
    armada = local_armada_factory(token=_secret())
    set_uri(monkeypatch, "armada_badtoken2", "127.0.0.1", armada.port, _secret())
    with pytest.raises(ArmadaAuthError) as excinfo:
        ArmadaHook("armada_badtoken2", **FAST).get_job_status("j1")
    assert excinfo.value.method == "GetJobStatus"
    assert "'armada_badtoken2'" in str(excinfo.value)
    assert armada.rpc_count("GetJobStatus") == 1


def test_missing_token_is_an_auth_error(monkeypatch, local_armada_factory):
    armada = local_armada_factory(token=_secret())
    set_uri(monkeypatch, "armada_notoken", "127.0.0.1", armada.port)
    hook = ArmadaHook("armada_notoken", **FAST)
    with pytest.raises(ArmadaAuthError) as excinfo:
        submit(hook)
    exc = excinfo.value
    assert exc.code == "UNAUTHENTICATED"
    assert isinstance(exc, AirflowFailException)
    assert "'armada_notoken'" in str(exc)
    assert "queue 'default'" in str(exc)
    assert armada.rpc_count("SubmitJobs") == 1


# -- test_connection -------------------------------------------------------------------


def test_test_connection_healthy(monkeypatch, local_armada):
    set_uri(monkeypatch, "armada_health", "127.0.0.1", local_armada.port, rpc_timeout="5")
    local_armada.reset_rpc_counts()
    ok, message = ArmadaHook("armada_health").test_connection()
    assert ok is True
    assert local_armada.target in message
    assert "healthy" in message
    counts = local_armada.rpc_counts()
    assert counts.get("Health", 0) == 2  # api.Submit/Health and api.Event/Health


def test_test_connection_wrong_token(monkeypatch, local_armada_factory):
    token = _secret()
    armada = local_armada_factory(token=_secret())
    set_uri(monkeypatch, "armada_health_bad", "127.0.0.1", armada.port, token, rpc_timeout="5")
    ok, message = ArmadaHook("armada_health_bad").test_connection()
    assert ok is False
    assert "Submit health" in message
    assert "Event health" in message
    assert "PERMISSION_DENIED" in message
    assert token not in message


def test_test_connection_server_stopped(monkeypatch, local_armada_factory):
    armada = local_armada_factory()
    set_uri(monkeypatch, "armada_health_down", "127.0.0.1", armada.port, rpc_timeout="5")
    hook = ArmadaHook("armada_health_down")
    assert hook.test_connection()[0] is True
    armada.stop()
    ok, message = hook.test_connection()
    assert ok is False
    assert "Submit health" in message
    assert "UNAVAILABLE" in message


# -- deadlines -------------------------------------------------------------------------


def _slow_status_hook(monkeypatch, armada: LocalArmada, conn_id: str, **kwargs) -> ArmadaHook:
    set_uri(monkeypatch, conn_id, "127.0.0.1", armada.port, rpc_timeout="0.2")
    armada.faults.delay("GetJobStatus", 1.0)
    armada.reset_rpc_counts()
    return ArmadaHook(conn_id, **FAST, **kwargs)


def test_deadline_without_retries(monkeypatch, local_armada):
    hook = _slow_status_hook(monkeypatch, local_armada, "armada_dl0", status_retries=0)
    with pytest.raises(ArmadaRpcError) as excinfo:
        hook.get_job_status("j1")
    exc = excinfo.value
    assert exc.code == "DEADLINE_EXCEEDED"
    assert exc.method == "GetJobStatus"
    assert isinstance(exc, AirflowException)
    assert not isinstance(exc, AirflowFailException)  # retryable by Airflow
    assert "gave up after 1 try" in str(exc)
    assert local_armada.rpc_count("GetJobStatus") == 1


def test_deadline_with_two_retries(monkeypatch, local_armada):
    hook = _slow_status_hook(monkeypatch, local_armada, "armada_dl2", status_retries=2)
    with pytest.raises(ArmadaRpcError) as excinfo:
        hook.get_job_status("j1")
    assert excinfo.value.code == "DEADLINE_EXCEEDED"
    assert "gave up after 3 tries" in str(excinfo.value)
    assert local_armada.rpc_count("GetJobStatus") == 3


async def test_async_deadline(monkeypatch, local_armada):
    hook = _slow_status_hook(monkeypatch, local_armada, "armada_adl", status_retries=0)
    with pytest.raises(ArmadaRpcError) as excinfo:
        await hook.aget_job_status("j1")
    assert excinfo.value.code == "DEADLINE_EXCEEDED"
    assert excinfo.value.method == "GetJobStatus"
    assert local_armada.rpc_count("GetJobStatus") == 1


def test_call_under_the_deadline_succeeds(monkeypatch, local_armada):
    job_id = submit(ArmadaHook(client=local_armada.client()))
    set_uri(monkeypatch, "armada_dl_ok", "127.0.0.1", local_armada.port, rpc_timeout="2")
    local_armada.faults.delay("GetJobStatus", 0.2)
    local_armada.reset_rpc_counts()
    hook = ArmadaHook("armada_dl_ok", status_retries=0)
    assert hook.get_job_status(job_id) is not JobState.UNKNOWN  # answered, not timed out
    assert local_armada.rpc_count("GetJobStatus") == 1


# -- the async client ------------------------------------------------------------------


def test_async_client_is_built_per_event_loop(monkeypatch, local_armada):
    set_uri(monkeypatch, "armada_aloops", "127.0.0.1", local_armada.port, rpc_timeout="5")
    hook = ArmadaHook("armada_aloops", **FAST)
    job_id = submit(hook)
    first = asyncio.run(hook.aget_job_status(job_id))
    second = asyncio.run(hook.aget_job_status(job_id))  # a new loop: a new channel
    assert first is not JobState.UNKNOWN
    assert second is not JobState.UNKNOWN
    assert local_armada.job(job_id).job_id == job_id


def test_async_client_with_token_and_tls(monkeypatch, local_armada_factory, pki):
    token = _secret()
    tls = ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key)
    armada = local_armada_factory(tls=tls, token=token, time_scale=50)
    set_json(
        monkeypatch,
        "armada_atls",
        host="127.0.0.1",
        port=armada.port,
        password=token,
        extra={"tls": True, "ca_cert": pki.ca_cert.decode(), "rpc_timeout": 5},
    )
    hook = ArmadaHook("armada_atls", **FAST)
    job_id = submit(hook)

    async def finish() -> JobState:
        return await hook.apoll_for_job_complete(job_id, delay=0.05)

    assert asyncio.run(finish()) is JobState.SUCCEEDED
    assert asyncio.run(hook.acheck_job_success(job_id)) is True
    assert armada.job(job_id).state is JobState.SUCCEEDED


async def test_async_wrong_token_is_an_auth_error(monkeypatch, local_armada_factory):
    armada = local_armada_factory(token=_secret())
    wrong = _secret()
    set_uri(monkeypatch, "armada_abad", "127.0.0.1", armada.port, wrong, rpc_timeout="5")
    with pytest.raises(ArmadaAuthError) as excinfo:
        await ArmadaHook("armada_abad", **FAST).aget_job_status("j1")
    assert "'armada_abad'" in str(excinfo.value)
    assert wrong not in str(excinfo.value)


# -- injected clients ------------------------------------------------------------------


def test_injected_client_needs_no_connection(local_armada):
    assert not any(k.startswith("AIRFLOW_CONN_ARMADA") for k in os.environ)
    hook = ArmadaHook(client=local_armada.client(), **FAST)
    job_id = submit(hook)
    assert local_armada.job(job_id).queue == "default"
    assert hook.get_job_status(job_id) is not JobState.UNKNOWN
    ok, message = hook.test_connection()
    assert ok is True, message
    # nothing above needed the (undefined) connection; asking for it still fails clearly
    with pytest.raises(ArmadaConnectionError):
        hook.config  # noqa: B018


async def test_injected_async_client_needs_no_connection(local_armada):
    assert not any(k.startswith("AIRFLOW_CONN_ARMADA") for k in os.environ)
    job_id = submit(ArmadaHook(client=local_armada.client()))
    channel = local_armada.aio_channel()
    try:
        hook = ArmadaHook(async_client=ArmadaAsyncIOClient(channel), **FAST)
        assert await hook.aget_job_status(job_id) is not JobState.UNKNOWN
        description = await hook.aget_job_description(job_id)
        assert description.job_id == job_id
    finally:
        await channel.close()


def test_injected_client_errors_still_typed(local_armada):
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=5)
    hook = ArmadaHook(client=local_armada.client(), status_retries=1, **FAST)
    with pytest.raises(ArmadaRpcError) as excinfo:
        hook.get_job_status("j1")
    assert excinfo.value.code == "UNAVAILABLE"
    assert isinstance(excinfo.value, ArmadaError)
    assert local_armada.rpc_count("GetJobStatus") == 2


# -- channels: what the hook opened, it closes -------------------------------------------


def test_with_closes_the_channels_the_hook_opened(monkeypatch, local_armada):
    set_uri(
        monkeypatch,
        "armada_close",
        "127.0.0.1",
        local_armada.port,
        binoculars_target=local_armada.target,
    )
    with ArmadaHook("armada_close", **FAST) as hook:
        client = hook.client
        logs = hook.log_client("cluster-a")
        assert logs is not None
        with pytest.raises(grpc.RpcError):  # used once: (grpc crashes on a stub whose
            logs.logs("01nosuchjob")  # first call comes after its channel closed)
        assert hook.get_job_status("01nosuchjob") is JobState.UNKNOWN
    with pytest.raises(ValueError, match="closed channel"):
        client.get_job_status(["01nosuchjob"])  # the old channel is closed
    with pytest.raises(ValueError, match="closed channel"):
        logs.logs("01nosuchjob")
    assert hook.get_job_status("01nosuchjob") is JobState.UNKNOWN  # a new channel, on demand
    assert hook.client is not client
    hook.close()


def test_close_leaves_a_client_passed_in_to_its_owner(local_armada):
    client = local_armada.client()
    with ArmadaHook("unused", client=client, **FAST) as hook:
        assert hook.get_job_status("01nosuchjob") is JobState.UNKNOWN
    assert hook.client is client
    answer = client.get_job_status(["01nosuchjob"])  # still open
    assert JobState(answer.job_states["01nosuchjob"]) is JobState.UNKNOWN


async def test_async_with_closes_the_running_loops_channel(monkeypatch, local_armada):
    set_uri(monkeypatch, "armada_aclose", "127.0.0.1", local_armada.port)
    async with ArmadaHook("armada_aclose", **FAST) as hook:
        await hook.aload_config()
        client = hook.async_client
        assert await hook.aget_job_status("01nosuchjob") is JobState.UNKNOWN
    with pytest.raises(grpc.aio.UsageError):
        await client.get_job_status(["01nosuchjob"])
    assert await hook.aget_job_status("01nosuchjob") is JobState.UNKNOWN
    assert hook.async_client is not client
    await hook.aclose()


def test_a_new_event_loop_gets_a_new_channel(monkeypatch, local_armada):
    set_uri(monkeypatch, "armada_loops", "127.0.0.1", local_armada.port)
    hook = ArmadaHook("armada_loops", **FAST)
    first = asyncio.run(_async_client_of(hook))
    second = asyncio.run(_async_client_of(hook))  # another loop: another channel
    assert second is not first
    hook.close()


def test_close_closes_an_idle_loops_channel(monkeypatch, local_armada):
    set_uri(monkeypatch, "armada_idle", "127.0.0.1", local_armada.port)
    hook = ArmadaHook("armada_idle", **FAST)
    loop = asyncio.new_event_loop()
    try:
        client = loop.run_until_complete(_async_client_of(hook))
        hook.close()  # from outside the (idle) loop: closed on it
        with pytest.raises(grpc.aio.UsageError):
            loop.run_until_complete(client.get_job_status(["01nosuchjob"]))
    finally:
        loop.close()


async def _async_client_of(hook: ArmadaHook):
    client = hook.async_client
    assert await hook.aget_job_status("01nosuchjob") is JobState.UNKNOWN
    return client


# -- a connection Airflow cannot parse -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (
            "armada://:s3cret-tok@h:50051?lookout_url=https://lookout.example.com",
            "contains '://' unescaped; URL-encode the extras' values",
        ),
        ("armada://:s3cret-tok@h:port50051", "its port is not a number"),
        ('{"conn_type": "armada", "password": "s3cret-tok", "host": ', "it is not valid JSON"),
    ],
    ids=["unescaped-url-in-extra", "bad-port", "broken-json"],
)
def test_an_unparsable_connection_says_why_without_echoing_it(monkeypatch, value, why):
    monkeypatch.setenv("AIRFLOW_CONN_ARMADA_UNPARSABLE", value)
    with pytest.raises(ArmadaConnectionError) as caught:
        _ = ArmadaHook("armada_unparsable").config
    message = str(caught.value)
    assert "AIRFLOW_CONN_ARMADA_UNPARSABLE is set, but Airflow cannot parse it" in message
    assert why in message
    assert "isn't defined" not in message
    assert "s3cret-tok" not in message


def test_an_undefined_connection_still_says_how_to_define_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_ARMADA_NOWHERE", raising=False)
    with pytest.raises(
        ArmadaConnectionError, match=r"define it, e\.g\. AIRFLOW_CONN_ARMADA_NOWHERE="
    ):
        _ = ArmadaHook("armada_nowhere").config
