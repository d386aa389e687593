"""Bearer-token auth and TLS of the local Armada, seen through real gRPC clients."""

from __future__ import annotations

import logging
import stat
import uuid

import grpc
import grpc.aio
import pytest
from armada_client.armada import (
    binoculars_pb2,
    binoculars_pb2_grpc,
    event_pb2,
    health_pb2,
    job_pb2,
    submit_pb2,
)
from armada_client.asyncio_client import ArmadaAsyncIOClient
from armada_client.client import ArmadaClient
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from google.protobuf import empty_pb2

from armada_hooks.states import JobState
from armada_hooks.testing import LocalArmada, ServerTls, TestPki, job_request_item, make_test_pki

SERVING = health_pb2.HealthCheckResponse.SERVING
QUICK_JOB = {"armada-hooks/runtime": "1s", "armada-hooks/log-lines": "2"}
PEM_NAMES = ("ca_cert", "server_cert", "server_key", "client_cert", "client_key")


def _secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def _submit(client: ArmadaClient, job_set: str = "auth-set") -> str:
    response = client.submit_jobs("default", job_set, [job_request_item(annotations=QUICK_JOB)])
    return response.job_response_items[0].job_id


def _logs(channel: grpc.Channel, job_id: str) -> binoculars_pb2.LogResponse:
    stub = binoculars_pb2_grpc.BinocularsStub(channel)
    return stub.Logs(binoculars_pb2.LogRequest(job_id=job_id, pod_namespace="default"), timeout=10)


def _events(client: ArmadaClient, job_set: str) -> list[event_pb2.EventStreamMessage]:
    request = event_pb2.JobSetRequest(queue="default", id=job_set, watch=False)
    return list(client.event_stub.GetJobSetEvents(request, timeout=10))


# -- bearer token -----------------------------------------------------------


@pytest.fixture
def secret() -> str:
    return _secret()


@pytest.fixture
def armada(local_armada_factory, secret) -> LocalArmada:
    return local_armada_factory(token=secret, time_scale=20)


@pytest.fixture
def started_job(armada) -> str:
    """A job (submitted with the right token) whose pod has started and logged."""
    with armada.channel() as channel:
        job_id = _submit(ArmadaClient(channel))
    armada.wait_for_state(job_id, [JobState.SUCCEEDED])
    return job_id


def test_a_call_without_a_token_is_unauthenticated_and_says_how_to_authenticate(armada, secret):
    with (
        grpc.insecure_channel(armada.target) as channel,
        pytest.raises(grpc.RpcError) as excinfo,
    ):
        ArmadaClient(channel).get_job_status(["01anyjob"])
    assert excinfo.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer <token>" in excinfo.value.details()
    assert secret not in str(excinfo.value)


@pytest.mark.parametrize(
    "header",
    ["Basic {secret}", "Token {secret}", "{secret}", "Bearer ", "Bearer"],
    ids=["basic-scheme", "other-scheme", "no-scheme", "empty-bearer", "bare-bearer"],
)
def test_an_authorization_header_that_is_not_a_bearer_token_is_unauthenticated(
    armada, secret, header
):
    metadata = (("authorization", header.format(secret=secret)),)
    with grpc.insecure_channel(armada.target) as channel:
        stub = ArmadaClient(channel).job_stub
        with pytest.raises(grpc.RpcError) as excinfo:
            stub.GetJobStatus(job_pb2.JobStatusRequest(job_ids=["x"]), metadata=metadata)
    assert excinfo.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "could not be authenticated" in excinfo.value.details()
    assert secret not in str(excinfo.value)


def test_a_wrong_token_is_permission_denied(armada, secret):
    wrong = secret + "-but-not-quite"
    with armada.channel(token=wrong) as channel, pytest.raises(grpc.RpcError) as excinfo:
        ArmadaClient(channel).get_job_status(["01anyjob"])
    assert excinfo.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "bearer token" in excinfo.value.details()
    assert "not valid" in excinfo.value.details()
    assert secret not in str(excinfo.value)
    assert wrong not in str(excinfo.value)


def test_the_right_token_works_for_unary_calls(armada):
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        job_id = _submit(client)
        armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        status = client.get_job_status([job_id])
        client.create_queue(submit_pb2.Queue(name="team-secure", priority_factor=1))
        queue = client.get_queue("team-secure")
    assert status.job_states[job_id] == submit_pb2.SUCCEEDED
    assert queue.name == "team-secure"


def test_the_right_token_works_for_the_event_stream(armada):
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        job_id = _submit(client, job_set="secure-events")
        armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        events = _events(client, "secure-events")
    kinds = [m.message.WhichOneof("events") for m in events]
    assert kinds[0] == "submitted"
    assert kinds[-1] == "succeeded"
    assert events[0].message.submitted.job_id == job_id


@pytest.mark.parametrize(
    ("token", "code"),
    [("", grpc.StatusCode.UNAUTHENTICATED), ("wrong", grpc.StatusCode.PERMISSION_DENIED)],
    ids=["no-token", "wrong-token"],
)
def test_the_event_stream_requires_the_token(armada, started_job, token, code):
    with armada.channel(token=token) as channel, pytest.raises(grpc.RpcError) as excinfo:
        _events(ArmadaClient(channel), "auth-set")
    assert excinfo.value.code() is code


def test_the_right_token_works_for_binoculars_logs(armada, started_job):
    with armada.channel() as channel:
        response = _logs(channel, started_job)
    assert [line.line for line in response.log] == list(armada.job(started_job).log_lines)
    assert len(response.log) == 2


@pytest.mark.parametrize(
    ("token", "code"),
    [("", grpc.StatusCode.UNAUTHENTICATED), ("wrong", grpc.StatusCode.PERMISSION_DENIED)],
    ids=["no-token", "wrong-token"],
)
def test_binoculars_logs_require_the_token(armada, started_job, token, code):
    with armada.channel(token=token) as channel, pytest.raises(grpc.RpcError) as excinfo:
        _logs(channel, started_job)
    assert excinfo.value.code() is code


@pytest.mark.parametrize("service", ["submit", "event"])
def test_health_requires_the_token(armada, service):
    def health(client: ArmadaClient) -> health_pb2.HealthCheckResponse:
        return client.submit_health() if service == "submit" else client.event_health()

    with (
        grpc.insecure_channel(armada.target) as channel,
        pytest.raises(grpc.RpcError) as excinfo,
    ):
        health(ArmadaClient(channel))
    assert excinfo.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in excinfo.value.details()
    with armada.channel(token="wrong") as channel, pytest.raises(grpc.RpcError) as excinfo:
        health(ArmadaClient(channel))
    assert excinfo.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with armada.channel() as channel:
        assert health(ArmadaClient(channel)).status == SERVING


async def test_the_async_client_works_with_the_token(armada):
    async with armada.aio_channel() as channel:
        client = ArmadaAsyncIOClient(channel)
        assert (await client.submit_health()).status == SERVING
        response = await client.submit_jobs(
            "default", "async-set", [job_request_item(annotations=QUICK_JOB)]
        )
        job_id = response.job_response_items[0].job_id
        armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        status = await client.get_job_status([job_id])
        logs = await binoculars_pb2_grpc.BinocularsStub(channel).Logs(
            binoculars_pb2.LogRequest(job_id=job_id, pod_namespace="default"), timeout=10
        )
    assert status.job_states[job_id] == submit_pb2.SUCCEEDED
    assert [line.line for line in logs.log] == list(armada.job(job_id).log_lines)


async def test_the_async_event_stream_works_with_the_token(armada, started_job):
    async with armada.aio_channel() as channel:
        client = ArmadaAsyncIOClient(channel)
        request = event_pb2.JobSetRequest(queue="default", id="auth-set", watch=False)
        messages = [m async for m in client.event_stub.GetJobSetEvents(request, timeout=10)]
    assert messages[0].message.submitted.job_id == started_job
    assert messages[-1].message.WhichOneof("events") == "succeeded"


async def test_the_async_queue_listing_works_with_the_token(armada):
    async with armada.aio_channel() as channel:
        queues = await ArmadaAsyncIOClient(channel).get_queues()
    assert [q.name for q in queues] == ["default"]


async def test_the_async_client_without_a_token_is_unauthenticated(armada):
    async with grpc.aio.insecure_channel(armada.target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await ArmadaAsyncIOClient(channel).get_job_status(["01anyjob"])
    assert excinfo.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "authorization: Bearer <token>" in excinfo.value.details()


async def test_the_async_client_with_a_wrong_token_is_permission_denied(armada, secret):
    async with armada.aio_channel(token="wrong") as channel:
        client = ArmadaAsyncIOClient(channel)
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await client.submit_jobs("default", "async-set", [job_request_item()])
    assert excinfo.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert "not valid" in excinfo.value.details()
    assert secret not in str(excinfo.value)
    assert armada.jobs() == []


def test_a_rejected_call_never_reaches_the_service(armada):
    with armada.channel(token="wrong") as channel, pytest.raises(grpc.RpcError):
        _submit(ArmadaClient(channel))
    assert armada.jobs() == []


# -- the token stays secret -------------------------------------------------


def test_the_token_is_not_in_the_repr_of_the_channel_spec(armada, secret):
    spec = armada.channel_spec()
    assert spec.token == secret  # the spec does carry it...
    assert secret not in repr(spec)  # ...but never prints it
    assert secret not in str(spec)
    other = "another-" + secret
    assert other not in repr(armada.channel_spec(token=other))


def test_server_error_messages_never_contain_the_token(armada, secret):
    failures: list[grpc.RpcError] = []
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        calls = [
            lambda: client.submit_jobs("no-such-queue", "s", [job_request_item()]),
            lambda: client.submit_jobs("default", "", [job_request_item()]),
            lambda: client.get_queue("no-such-queue"),
            lambda: _logs(channel, "no-such-job"),
            lambda: _events_missing(client),
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as excinfo:
                call()
            failures.append(excinfo.value)
    for token in ("", "wrong", secret + "x"):
        with armada.channel(token=token) as channel:
            with pytest.raises(grpc.RpcError) as excinfo:
                ArmadaClient(channel).submit_health()
            failures.append(excinfo.value)
    assert [f.code() for f in failures] == [
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.PERMISSION_DENIED,
    ]
    for failure in failures:
        assert failure.details()
        assert secret not in failure.details()
        assert secret not in str(failure)
        assert secret not in (failure.debug_error_string() or "")


def _events_missing(client: ArmadaClient) -> list[event_pb2.EventStreamMessage]:
    request = event_pb2.JobSetRequest(queue="default", id="nope", watch=False, errorIfMissing=True)
    return list(client.event_stub.GetJobSetEvents(request, timeout=10))


def test_the_token_never_appears_in_any_log_record(local_armada_factory, caplog, capfd):
    secret = _secret()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="grpc")
    caplog.set_level(logging.DEBUG, logger="armada_hooks")
    armada = local_armada_factory(token=secret, time_scale=20)
    with armada.channel() as channel:
        client = ArmadaClient(channel)
        job_id = _submit(client, job_set="logged")
        armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        assert client.get_job_status([job_id]).job_states[job_id] == submit_pb2.SUCCEEDED
        assert _events(client, "logged")
        assert _logs(channel, job_id).log
        with pytest.raises(grpc.RpcError):
            client.submit_jobs("no-such-queue", "s", [job_request_item()])
        # the resilient stream logs and reconnects on its own threads
        stream = client.get_job_events_stream("default", "logged")
        assert next(stream).message.WhichOneof("events") == "submitted"
        stream.cancel()
    for token in ("", "wrong"):
        with armada.channel(token=token) as channel, pytest.raises(grpc.RpcError):
            ArmadaClient(channel).get_job_status([job_id])
    armada.stop()
    captured = capfd.readouterr()
    assert secret not in caplog.text
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in repr(record.args)
    assert secret not in captured.out
    assert secret not in captured.err


# -- TLS --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return make_test_pki()


@pytest.fixture(scope="module")
def other_pki() -> TestPki:
    return make_test_pki()


@pytest.fixture
def tls_armada(local_armada_factory, pki) -> LocalArmada:
    return local_armada_factory(
        tls=ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key), time_scale=20
    )


@pytest.fixture
def mtls_armada(local_armada_factory, pki) -> LocalArmada:
    return local_armada_factory(
        tls=ServerTls(
            cert_chain=pki.server_cert, private_key=pki.server_key, client_ca=pki.ca_cert
        ),
        time_scale=20,
    )


def _health_error(channel: grpc.Channel) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as excinfo:
        ArmadaClient(channel).submit_stub.Health(empty_pb2.Empty(), timeout=10)
    return excinfo.value


def test_a_client_trusting_the_test_ca_reaches_the_tls_server(tls_armada, pki):
    with tls_armada.channel(ca_cert=pki.ca_cert) as channel:
        client = ArmadaClient(channel)
        assert client.submit_health().status == SERVING
        job_id = _submit(client, job_set="tls-set")
        tls_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        assert client.get_job_status([job_id]).job_states[job_id] == submit_pb2.SUCCEEDED
        assert [m.message.WhichOneof("events") for m in _events(client, "tls-set")][-1] == (
            "succeeded"
        )
        assert len(_logs(channel, job_id).log) == 2


def test_a_plaintext_client_cannot_reach_the_tls_server(tls_armada):
    with grpc.insecure_channel(tls_armada.target) as channel:
        error = _health_error(channel)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "failed to connect" in error.details()


def test_a_client_trusting_another_ca_cannot_reach_the_tls_server(tls_armada, other_pki):
    with tls_armada.channel(ca_cert=other_pki.ca_cert) as channel:
        error = _health_error(channel)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "handshake failed" in error.details().lower()


def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_armada, pki):
    with mtls_armada.channel(ca_cert=pki.ca_cert) as channel:
        error = _health_error(channel)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "failed to connect" in error.details()


def test_mutual_tls_refuses_a_client_certificate_from_another_ca(mtls_armada, pki, other_pki):
    with mtls_armada.channel(
        ca_cert=pki.ca_cert, client_cert=other_pki.client_cert, client_key=other_pki.client_key
    ) as channel:
        error = _health_error(channel)
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    assert "failed to connect" in error.details()


def test_mutual_tls_accepts_the_client_certificate(mtls_armada, pki):
    with mtls_armada.channel(
        ca_cert=pki.ca_cert, client_cert=pki.client_cert, client_key=pki.client_key
    ) as channel:
        client = ArmadaClient(channel)
        assert client.submit_health().status == SERVING
        job_id = _submit(client, job_set="mtls-set")
        mtls_armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        assert client.get_job_status([job_id]).job_states[job_id] == submit_pb2.SUCCEEDED


def test_tls_and_token_together(local_armada_factory, pki, secret):
    armada = local_armada_factory(
        tls=ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key),
        token=secret,
        time_scale=20,
    )
    assert secret not in repr(armada.channel_spec(ca_cert=pki.ca_cert))
    with armada.channel(ca_cert=pki.ca_cert) as channel:
        client = ArmadaClient(channel)
        job_id = _submit(client, job_set="tls-token")
        armada.wait_for_state(job_id, [JobState.SUCCEEDED])
        assert client.get_job_status([job_id]).job_states[job_id] == submit_pb2.SUCCEEDED
        assert len(_logs(channel, job_id).log) == 2
    for token, code in (
        ("", grpc.StatusCode.UNAUTHENTICATED),
        ("wrong", grpc.StatusCode.PERMISSION_DENIED),
    ):
        with (
            armada.channel(ca_cert=pki.ca_cert, token=token) as channel,
            pytest.raises(grpc.RpcError) as excinfo,
        ):
            ArmadaClient(channel).get_job_status([job_id])
        assert excinfo.value.code() is code
        assert secret not in str(excinfo.value)


async def test_the_async_client_works_over_mutual_tls_with_a_token(local_armada_factory, pki):
    secret = _secret()
    armada = local_armada_factory(
        tls=ServerTls(
            cert_chain=pki.server_cert, private_key=pki.server_key, client_ca=pki.ca_cert
        ),
        token=secret,
    )
    certs = {"ca_cert": pki.ca_cert, "client_cert": pki.client_cert, "client_key": pki.client_key}
    async with armada.aio_channel(**certs) as channel:
        assert (await ArmadaAsyncIOClient(channel).event_health()).status == SERVING
    async with armada.aio_channel(**certs, token="wrong") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as excinfo:
            await ArmadaAsyncIOClient(channel).event_health()
    assert excinfo.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_server_tls_repr_hides_the_private_key(pki):
    tls = ServerTls(cert_chain=pki.server_cert, private_key=pki.server_key)
    assert pki.server_key.decode() not in repr(tls)
    assert "PRIVATE KEY" not in repr(tls)


# -- the test PKI -----------------------------------------------------------


def test_make_test_pki_writes_five_pem_files_readable_only_by_the_owner(tmp_path):
    pki = make_test_pki()
    directory = tmp_path / "nested" / "pki"
    paths = pki.write(directory)
    assert set(paths) == set(PEM_NAMES)
    assert sorted(p.name for p in directory.iterdir()) == sorted(f"{n}.pem" for n in PEM_NAMES)
    for name, path in paths.items():
        assert path == directory / f"{name}.pem"
        assert path.read_bytes() == getattr(pki, name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


def test_make_test_pki_certificates_chain_to_the_ca(pki):
    ca = x509.load_pem_x509_certificate(pki.ca_cert)
    server = x509.load_pem_x509_certificate(pki.server_cert)
    client = x509.load_pem_x509_certificate(pki.client_cert)
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)][:1] == ["127.0.0.1"]
    for key_pem, cert in ((pki.server_key, server), (pki.client_key, client)):
        key = serialization.load_pem_private_key(key_pem, password=None)
        assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    other = x509.load_pem_x509_certificate(make_test_pki().ca_cert)
    with pytest.raises(InvalidSignature):
        server.verify_directly_issued_by(other)
