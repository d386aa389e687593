"""Hypothesis fuzzes what users hand us (issue 12, §3): job requests in every form the
operator takes, and Airflow connections as JSON, as URIs and with any extras.

Every invalid input must raise our typed error with a message that says what to fix, and
nothing from protobuf or gRPC may escape unwrapped (it would reach the task log as a raw
traceback). What builds or loads must also work: a built request serializes and a local
Armada answers its submission; a loaded connection makes a real RPC to a local Armada.
Each problem the fuzzer found is pinned by an example (``@example``) or a regression test
below. In-process only, against a local Armada over loopback; ~30 s in all.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from armada_hooks.errors import (
    ArmadaAuthError,
    ArmadaConnectionError,
    ArmadaError,
    ArmadaJobSpecError,
)
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.hooks.connection import EXTRA_FIELDS
from armada_hooks.job_requests import build_from_job_file, build_job_request_item
from armada_hooks.job_specs.fields import show_path
from armada_hooks.operators.armada import ArmadaOperator
from armada_hooks.testing import LocalArmada, make_test_pki

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MORE = settings(FUZZ, max_examples=100)  # the cheap and the central ones
FEWER = settings(FUZZ, max_examples=30)  # each example makes a real RPC
TOKEN = "fuzz-token-0123456789"
# A message that names what to fix starts with where (a field path of the user's own
# request) or says what the request as a whole must be; protobuf's own wording never
# reaches the user.
WHOLE_REQUEST = ("job request must be", "a Pod manifest needs a spec")
PROTOBUF_FALLBACK = "is not a valid JobSubmitRequestItem"

CONTAINER: dict[str, Any] = {
    "name": "main",
    "image": "busybox:latest",
    "command": ["sh", "-c", "true"],
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "100m"}},
}
VALID_FORMS: list[dict[str, Any]] = [
    {"namespace": "default", "priority": 1, "podSpec": {"containers": [CONTAINER]}},
    {"namespace": "default", "pod_spec": {"containers": [CONTAINER], "restart_policy": "Never"}},
    {"containers": [CONTAINER], "restartPolicy": "Never"},
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x", "namespace": "default", "labels": {"a": "b"}},
        "spec": {"containers": [CONTAINER]},
    },
]
# Keys users write (and misspell), so that mutations reach deep into the messages.
FIELD_NAMES = [
    "namespace", "priority", "podSpec", "podSpecs", "pod_spec", "labels", "annotations",
    "clientId", "scheduler", "containers", "initContainers", "name", "image", "command",
    "args", "env", "value", "valueFrom", "ports", "containerPort", "resources", "requests",
    "limits", "cpu", "memory", "nvidia.com/gpu", "restartPolicy", "volumes", "emptyDir",
    "sizeLimit", "livenessProbe", "httpGet", "port", "tolerations", "nodeSelector",
    "securityContext", "runAsUser", "kind", "apiVersion", "metadata", "spec",
    "terminationGracePeriodSeconds", "priorityClassName", "ingress", "services", "type",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([10**400, -(10**400)])  # YAML reads any integer; a double cannot hold it
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["100m", "1Gi", "1e3", "0.5", "-1", "Never", "Always", "v1", "Pod"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


@st.composite
def job_requests(draw: st.DrawFn) -> Any:
    """A valid request in one of the forms, mutated in one to three places."""
    request: Any = copy.deepcopy(draw(st.sampled_from(VALID_FORMS)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(request))))
        if not path:
            if draw(st.integers(0, 9)) == 0:
                request = draw(json_values)  # the request as a whole is not a mapping
            continue
        parent = request
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(FIELD_NAMES) | st.text(max_size=8))] = draw(json_values)
        else:
            parent.append(draw(json_values))
    return request


def attempt(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, ArmadaError | None]:
    """``call``'s result, or the typed error it raised; any other exception fails the test."""
    try:
        return call(*args, **kwargs), None
    except ArmadaError as exc:
        return None, exc


def assert_names_what_to_fix(exc: ArmadaError, request: Any) -> None:
    """A typed error, not chained to a library's exception, whose message says where: it
    starts with the path of a field of ``request``."""
    message = exc.message
    assert exc.__cause__ is None, f"chained to {exc.__cause__!r}"
    assert PROTOBUF_FALLBACK not in message, message  # protobuf's words, not the field's
    where = [show_path(p) for p in _paths(request) if p]
    located = any(message.startswith(f"{w}: ") and len(message) > len(w) + 2 for w in where)
    assert located or message.startswith(WHOLE_REQUEST), message


@functools.cache
def armada_test_pki() -> Any:
    return make_test_pki()


@pytest.fixture(scope="module")
def armada() -> Iterator[LocalArmada]:
    server = LocalArmada(queues=["default"], token=TOKEN, time_scale=100).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hook(armada: LocalArmada) -> Iterator[ArmadaHook]:
    conn_id = "armada_fuzz_requests"
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = armada.airflow_connection()
    with ArmadaHook(conn_id, max_retries=0, status_retries=0) as hook:
        yield hook
    del os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]


# -- job requests ------------------------------------------------------------------------


@MORE
@given(request=job_requests())
@example(request={"containers": [{**CONTAINER, "name": "\ud800"}]})  # a lone surrogate
@example(request={**VALID_FORMS[0], "priority": math.nan})
@example(request={**VALID_FORMS[0], "priority": math.inf})
@example(request={"containers": [{**CONTAINER, "resources": {"requests": {"cpu": math.inf}}}]})
def test_a_job_request_builds_and_submits_or_raises_a_spec_error_saying_where(hook, request):
    item, error = attempt(build_job_request_item, request)
    if error is not None:
        assert isinstance(error, ArmadaJobSpecError), error
        assert_names_what_to_fix(error, request)
        return
    item.SerializeToString()  # protobuf takes what we built
    job_ids, error = attempt(hook.submit_jobs, "default", "fuzz", [item])
    if error is not None:  # the local Armada's validation: a typed, fatal spec error
        assert isinstance(error, ArmadaJobSpecError), error
        assert error.__cause__ is None
        return
    assert len(job_ids) == 1


@FUZZ
@given(request=job_requests(), armadactl=st.booleans())
def test_a_job_file_builds_or_raises_a_spec_error_naming_the_file(request, armadactl):
    document = {"queue": "default", "jobSetId": "s", "jobs": [request]} if armadactl else request
    text = yaml.safe_dump(document, allow_unicode=True)
    built, error = attempt(build_from_job_file, text, "job.yaml")
    if error is not None:
        assert isinstance(error, ArmadaJobSpecError), error
        assert error.message.startswith("job.yaml: "), error.message
        assert PROTOBUF_FALLBACK not in error.message, error.message
        assert error.__cause__ is None
        return
    built.item.SerializeToString()


@MORE
@given(text=st.text(max_size=80) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
@example(text="jobs: [{}, {}]")
@example(text="a: b: c")
@example(text="- 1\n- 2")
def test_any_job_file_text_builds_or_raises_a_spec_error_naming_the_file(text):
    _, error = attempt(build_from_job_file, text, "job.yaml")
    if error is not None:
        assert isinstance(error, ArmadaJobSpecError), error
        assert error.message.startswith("job.yaml: "), error.message
        assert error.__cause__ is None


@FUZZ
@given(request=json_values | st.sampled_from(["job", "job.txt", "", "/no/such/job.yaml"]))
def test_the_operator_takes_a_job_request_or_raises_a_spec_error(request):
    _, error = attempt(ArmadaOperator, task_id="fuzz", armada_queue="default", job_request=request)
    if error is not None:
        assert isinstance(error, ArmadaJobSpecError), error
        assert error.message.startswith(("job_request", "job file")), error.message
        assert error.__cause__ is None


# -- connections -------------------------------------------------------------------------

extras_values = json_values | st.sampled_from(
    ["true", "false", "maybe", "1e400", "inf", "nan", "-1", "0", "30", "1e300", "-----BEGIN x"]
)
extras = st.dictionaries(
    st.sampled_from(EXTRA_FIELDS) | st.sampled_from(EXTRA_FIELDS).map("extra__armada__{}".format),
    extras_values,
    max_size=4,
)
# The password is distinctive, so that a message quoting it is caught.
passwords = st.none() | st.text(min_size=1, max_size=12).map(lambda t: f"pw-{t}-x")


def _load(conn_id: str, value: str, *, retries: int = 0) -> Any:
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
    try:
        return ArmadaHook(conn_id, max_retries=retries, status_retries=retries).config
    finally:
        del os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]


def assert_connection_error(exc: BaseException, conn_id: str, password: str | None) -> None:
    assert isinstance(exc, ArmadaConnectionError), exc
    assert f"Airflow connection {conn_id!r}" in exc.message, exc.message
    # The variable is set: "could not be loaded ... define it" would send the user astray.
    assert "could not be loaded" not in exc.message, exc.message
    assert exc.__cause__ is None or not _is_library_error(exc.__cause__), repr(exc.__cause__)
    if password:
        assert password not in exc.message, "the message quotes the password"


def _is_library_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("grpc", "google")


@FUZZ
@given(
    host=st.sampled_from(["127.0.0.1", "armada.example.com", "", " ", "dns://x", "a b"])
    | st.text(max_size=10),
    port=st.none() | st.integers(-5, 70000) | st.sampled_from(["50051", "abc", "", 1.5]),
    password=passwords,
    extra=extras | json_values.map(json.dumps) | st.text(max_size=10),
)
@example(host="h", port=None, password=None, extra=[1])  # extra is JSON but not an object
@example(host="h", port=None, password=None, extra="{not json")
@example(host="h", port="abc", password=None, extra={})
@example(host="h", port=None, password=None, extra={"tls": True, "ca_cert": "a\x00b"})
@example(host="h", port=None, password=None, extra={"rpc_timeout": "inf"})
@example(host="h", port=None, password=None, extra={"log_interval": 1e300})
@example(host="h", port=None, password=None, extra={"tls": True, "ca_cert": "-----BEGIN x"})
@example(host="h", port=None, password="pw-a\nb-x", extra={})
def test_a_json_connection_loads_or_raises_a_connection_error_saying_what_to_fix(
    host, port, password, extra
):
    conn_id = "armada_fuzz_json"
    conn: dict[str, Any] = {"conn_type": "armada", "host": host, "port": port, "extra": extra}
    if password is not None:
        conn["password"] = password
    config, error = attempt(_load, conn_id, json.dumps(conn))
    if error is not None:
        assert_connection_error(error, conn_id, password)
        return
    assert config.host
    assert math.isfinite(config.rpc_timeout)
    assert math.isfinite(config.log_interval)
    assert password is None or password not in repr(config)


uri_parts = st.text(max_size=8) | st.sampled_from(["", ":", "/", "?", "%", "%zz", "@", "://"])


@FUZZ
@given(
    password=passwords,
    host=st.sampled_from(["127.0.0.1", "armada.example.com"]) | uri_parts,
    port=st.sampled_from(["", ":50051", ":0", ":99999", ":x"]),
    query=st.dictionaries(st.sampled_from(EXTRA_FIELDS), extras_values.map(str), max_size=3).map(
        lambda d: "&".join(f"{k}={quote(v)}" for k, v in d.items())
    )
    | uri_parts,
    escape=st.booleans(),
)
@example(password=None, host="h", port=":99999", query="", escape=True)
@example(password=None, host="h", port="", query="lookout_url=https://x", escape=True)
@example(password=None, host="h", port="", query="rpc_timeout=1e400", escape=True)
def test_a_connection_uri_loads_or_raises_a_connection_error_saying_what_to_fix(
    password, host, port, query, escape
):
    conn_id = "armada_fuzz_uri"
    auth = f":{quote(password, safe='') if escape else password}@" if password else ""
    uri = f"armada://{auth}{host}{port}" + (f"?{query}" if query else "")
    assume("\x00" not in uri)  # no environment variable can hold a NUL
    config, error = attempt(_load, conn_id, uri)
    if error is not None:
        assert_connection_error(error, conn_id, password)
        return
    assert math.isfinite(config.rpc_timeout)
    assert math.isfinite(config.log_interval)


@FEWER
@given(
    token=st.text(max_size=16) | st.just(TOKEN) | st.just(f" {TOKEN}\n"),
    rpc_timeout=st.none()
    | st.floats(min_value=1, allow_infinity=True)
    | st.sampled_from(["1e300", "1e18", "86400", 1e10]),
    tls=st.sampled_from([None, False, "false", "no"]),
)
@example(token="tök\u00e9n", rpc_timeout=None, tls=None)  # not a gRPC header value
@example(token="a\nb", rpc_timeout=None, tls=None)
@example(token=TOKEN, rpc_timeout=1e300, tls=None)  # a deadline past what gRPC can hold
def test_a_loaded_connection_makes_a_real_rpc_or_raises_a_typed_error(
    armada, token, rpc_timeout, tls
):
    conn_id = "armada_fuzz_rpc"
    extra: dict[str, Any] = {"tls": tls}
    if rpc_timeout is not None:
        extra["rpc_timeout"] = rpc_timeout
    value = json.dumps(
        {"conn_type": "armada", "host": armada.host, "port": armada.port, "password": token,
         "extra": extra}
    )  # fmt: skip
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = value
    try:
        with ArmadaHook(conn_id, max_retries=0, status_retries=0) as hook:
            state, error = attempt(hook.get_job_status, "no-such-job")
            if isinstance(error, ArmadaConnectionError):
                assert_connection_error(error, conn_id, token if len(token) > 3 else None)
                return
            if error is not None:
                assert error.__cause__ is None
                # A loaded connection's call fails only for the credential itself.
                assert isinstance(error, ArmadaAuthError), error
                assert hook.config.token != TOKEN
                return
            assert hook.config.token == TOKEN
            assert state.name == "UNKNOWN"
    finally:
        del os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"]


# -- what the fuzzer found, each pinned with the message it now gets --------------------

FOUND: list[tuple[dict[str, Any], str]] = [
    # extra that is JSON but not an object: AttributeError ('list' object has no 'get')
    ({"host": "h", "extra": [1]}, "extra must be a JSON object of settings, not a list"),
    # extra that is not JSON: Airflow logged its traceback and dropped every setting
    ({"host": "h", "extra": "{tls: true"}, "extra is not valid JSON (Expecting property name"),
    # a port that is no number: ValueError from int()
    # (Airflow cannot parse the JSON: the message said the connection "isn't defined")
    ({"host": "h", "port": "abc"}, "cannot parse it: its port is not a whole number"),
    # a NUL in a certificate path: ValueError (embedded null byte)
    ({"host": "h", "extra": {"tls": True, "ca_cert": "a\x00b"}}, "ca_cert cannot be read"),
    # PEM text that holds no certificate: every call's handshake failed, retried as
    # UNAVAILABLE as if the server were down
    (
        {"host": "h", "extra": {"tls": True, "ca_cert": "-----BEGIN CERTIFICATE-----\nx"}},
        "ca_cert is not usable: the PEM text does not hold PEM certificates",
    ),
    (
        {"host": "h", "extra": {"tls": True, "client_cert": "CERT", "client_key": "CERT"}},
        "client_key is not usable: the PEM text does not hold an unencrypted PEM private key",
    ),
    # an endless log interval: time.sleep(inf) raises OverflowError
    ({"host": "h", "extra": {"log_interval": "inf"}}, "log_interval must be > 0 and at most"),
    # a token with a line break or non-ASCII: gRPC's INTERNAL "Invalid metadata"
    ({"host": "h", "password": "pw-a\nb-x"}, "password (the bearer token) holds characters"),
    ({"host": "h", "password": "pw-tök-x"}, "password (the bearer token) holds characters"),
]


@pytest.mark.parametrize(("fields", "problem"), FOUND)
def test_each_connection_the_fuzzer_found_gets_a_message_saying_what_to_fix(
    fields, problem, armada
):
    conn_id = "armada_fuzz_found"
    conn = {"conn_type": "armada", **fields}
    pki = armada_test_pki()
    text = json.dumps(conn).replace("CERT", json.dumps(pki.client_cert.decode())[1:-1])
    with pytest.raises(ArmadaConnectionError) as raised:
        _load(conn_id, text)
    assert problem in raised.value.message
    assert_connection_error(raised.value, conn_id, fields.get("password"))


def test_a_pasted_token_loses_its_line_end(armada):
    value = json.loads(armada.airflow_connection())
    value["password"] = f"{TOKEN}\n"
    assert _load("armada_fuzz_pasted", json.dumps(value)).token == TOKEN


FOUND_REQUESTS: list[tuple[Any, str]] = [
    # protobuf's words ("Unpaired surrogate at JobSubmitRequestItem.podSpec...")
    ({"containers": [{**CONTAINER, "name": "\ud800"}]}, 'containers[0].name: "\\ud800" is'),
    ({"namespace": "d", "labels": {"\udc00": "x"}}, 'labels: key "\\udc00" is not text'),
    # protobuf's 'Couldn't parse NaN, use quoted "NaN" instead'
    ({**VALID_FORMS[0], "priority": math.nan}, "priority: NaN is not a number"),
    ({**VALID_FORMS[0], "priority": "Infinity"}, 'priority: "Infinity" is not a number'),
    # an integer past a double's range: OverflowError from protobuf's JSON parser
    ({**VALID_FORMS[0], "priority": 10**400}, "priority: 1000000"),
    # an empty key: the message began ": is not a field of ..."
    ({**VALID_FORMS[0], "": 1}, '[""]: is not a field of JobSubmitRequestItem'),
    ({"containers": [{**CONTAINER, "my key": 1}]}, 'containers[0]["my key"]: is not a field'),
]


@pytest.mark.parametrize(("request_", "problem"), FOUND_REQUESTS)
def test_each_job_request_the_fuzzer_found_gets_a_message_saying_where(request_, problem):
    with pytest.raises(ArmadaJobSpecError) as raised:
        build_job_request_item(request_)
    assert raised.value.message.startswith(problem), raised.value.message
    assert_names_what_to_fix(raised.value, request_)
