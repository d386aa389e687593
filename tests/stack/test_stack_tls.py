"""TLS and mutual TLS through the real stack (issue 12, §3): a deferrable task on a local
Armada that serves only TLS, and one on a local Armada that also wants the client
certificate, submit, defer, stream the container log and succeed.

The connections (tests/stack/conftest.py) name the CA as PEM text in one and every
certificate as a file path in the other; each server has its own bearer token. Neither
server answers a plaintext client, nor (mTLS) one without the client certificate, so a
task that succeeds went over (mutual) TLS for its submit, its trigger's polls and its
Binoculars log fetches. The two runs go at once.
"""

from __future__ import annotations

import grpc
import pytest
from armada_client.armada import submit_pb2_grpc
from google.protobuf import empty_pb2

from armada_hooks.states import JobState
from armada_hooks.testing.stack.ledger import job_ledger, jobs_of_run
from armada_hooks.testing.stack.runs import StackRun

LOG_LINES = ("hello over TLS", "goodbye")


def _health(channel: grpc.Channel, token: str) -> None:
    submit_pb2_grpc.SubmitStub(channel).Health(
        empty_pb2.Empty(), metadata=[("authorization", f"Bearer {token}")], timeout=5
    )


def test_the_servers_refuse_plaintext_and_mtls_refuses_a_client_without_a_certificate(
    tls_armadas,
):
    for armada in (tls_armadas.tls, tls_armadas.mtls):
        with (
            grpc.insecure_channel(armada.target) as channel,
            pytest.raises(grpc.RpcError) as refused,
        ):
            _health(channel, armada.token)
        assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
    server_only = grpc.ssl_channel_credentials(root_certificates=tls_armadas.pki.ca_cert)
    with grpc.secure_channel(tls_armadas.tls.target, server_only) as channel:
        _health(channel, tls_armadas.tls.token)  # TLS alone suffices there
    with (
        grpc.secure_channel(tls_armadas.mtls.target, server_only) as channel,
        pytest.raises(grpc.RpcError) as refused,
    ):
        _health(channel, tls_armadas.mtls.token)
    assert refused.value.code() is grpc.StatusCode.UNAVAILABLE


@pytest.mark.timeout(600)  # the first test to use the stack also waits for its start-up
def test_deferred_tasks_over_tls_and_mutual_tls_submit_defer_and_succeed(
    stack, run_dag, wait_deferred, wait_for, tls_armadas, release_file
):
    before = {name: a.counter.snapshot() for name, a in tls_armadas.by_conn_id().items()}
    conf = {"release_file": str(release_file)}
    started: dict[str, str] = {}

    def both_deferred(tls_run_id: str) -> None:
        started["mtls"] = stack.rest.trigger("stack_mtls", conf)
        wait_deferred("stack_tls", tls_run_id)
        wait_deferred("stack_mtls", started["mtls"])
        armadas = tls_armadas.by_conn_id()
        polls = {name: a.counter.count("GetJobStatus") for name, a in armadas.items()}
        for name, armada in armadas.items():  # the triggers poll over (m)TLS
            wait_for(
                lambda a=armada, n=polls[name]: a.counter.count("GetJobStatus") > n,
                60,
                f"{name}'s trigger to poll",
            )
        release_file.touch()  # on a failure the fixture's teardown releases the jobs

    tls_run = run_dag(
        "stack_tls",
        conf=conf,
        meanwhile=both_deferred,
        timing="TLS and mutual TLS (two runs at once)",
    )
    mtls_run_id = started["mtls"]
    mtls_state = stack.rest.wait_for_run("stack_mtls", mtls_run_id)
    tis = stack.rest.task_instances("stack_mtls", mtls_run_id)
    by_key = {(ti["task_id"], ti["map_index"]): ti for ti in tis}
    mtls_run = StackRun(stack, "stack_mtls", mtls_run_id, mtls_state, by_key, tls_run.seconds)
    mismatches = stack.postgres.query(  # as run_dag checks for the stack_tls run
        "SELECT extra FROM log WHERE event = 'state mismatch' AND run_id = %s", (mtls_run_id,)
    )
    assert mismatches == [], mismatches
    for run, conn_id in ((tls_run, "armada_tls"), (mtls_run, "armada_mtls")):
        armada = tls_armadas.by_conn_id()[conn_id]
        assert run.state == "success", (run.dag_id, run.tis)
        ti = run.ti("over_tls")
        assert (ti["state"], ti["try_number"]) == ("success", 1)
        ledger = job_ledger(stack.rest, armada, run.dag_id, run.run_id)
        (job,) = ledger.task("over_tls").jobs
        assert job.state is JobState.SUCCEEDED
        ledger.assert_clean()
        assert jobs_of_run(stack.armada, run.dag_id, run.run_id) == []  # not the plain one
        log = run.log("over_tls", 1)
        for line in LOG_LINES:
            assert f"{run.dag_id}: {line}" in log, log[-3000:]
        assert armada.token not in log
        calls = armada.counter.snapshot()
        for method in ("SubmitJobs", "Logs"):
            assert calls.get(method, 0) > before[conn_id].get(method, 0), (method, calls)
