"""ArmadaHook's job operations, one suite run against three backends.

- ``grpc-connection``: a LocalArmada and a hook built from ``AIRFLOW_CONN_ARMADA_DEFAULT``
  (the real ``ArmadaClient``/``ArmadaAsyncIOClient`` over loopback gRPC).
- ``grpc-client``: the same server, the hook given ``client=local_armada.client()``.
- ``memory``: the hook given the clients of an :class:`InMemoryArmada` (the same servicers
  and engine, called in-process: no server, no socket).

The in-memory Armada must pass the same hook tests as the gRPC server. It counts calls by
RPC name (``InMemoryArmada.calls``) as the server does, so the RPC counting tests run on
all three backends; nothing here needs a server-only control.

Jobs are scripted with ``armada-hooks/*`` annotations and submitted through the backend's
own raw client, so the hook under test is not also the tool that sets up its fixtures
(except where a test is about jobs the hook itself submitted).
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pytest

from armada_hooks._compat import AirflowException, AirflowFailException
from armada_hooks.errors import (
    ArmadaAuthError,
    ArmadaJobError,
    ArmadaJobFailedError,
    ArmadaJobLostError,
    ArmadaJobNotFinishedError,
    ArmadaJobRejectedError,
    ArmadaJobSpecError,
    ArmadaWaitTimeoutError,
)
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.job_description import JobDescription
from armada_hooks.states import TERMINAL_STATES, JobState
from armada_hooks.testing.behaviour import (
    CLUSTER,
    FAILURE_REASON,
    LEASE_RETURNS,
    LOST,
    OUTCOME,
    RUNTIME,
)
from armada_hooks.testing.memory import InMemoryArmada
from armada_hooks.testing.server import LocalArmada
from armada_hooks.testing.specs import job_request_item

QUEUE = "default"
TIME_SCALE = 50  # a job-minute per 1.2 real seconds
FAST = {"retry_wait_min": 0.01, "retry_wait_max": 0.05}
POLL = 0.02  # seconds between the hook's polls
LONG = {RUNTIME: "10m"}  # 12 real seconds of RUNNING: longer than any test here
EXTERNAL_URI_ANNOTATION = "armadaproject.io/externalJobUri"


class Backend:
    """An Armada (gRPC or in-memory), a hook on it, and ways to script and inspect jobs."""

    def __init__(
        self,
        name: str,
        *,
        local: LocalArmada | None = None,
        memory: InMemoryArmada | None = None,
    ) -> None:
        self.name = name
        self.local = local
        self.memory = memory
        self.job_set_id = f"js-{uuid.uuid4().hex[:10]}"
        # a client of our own for scripting jobs, independent of the hook under test
        self.raw = local.client() if local is not None else memory.client()  # type: ignore[union-attr]
        self._hook_client = local.client() if name == "grpc-client" else None  # type: ignore[union-attr]
        self.hook = self.make_hook()

    @property
    def grpc(self) -> bool:
        return self.local is not None

    def make_hook(self, **options: Any) -> ArmadaHook:
        """A hook on this backend with fast RPC retries (and ``options``)."""
        kwargs = {**FAST, **options}
        if self.name == "grpc-connection":
            return ArmadaHook(**kwargs)
        if self.name == "grpc-client":
            return ArmadaHook(client=self._hook_client, **kwargs)
        assert self.memory is not None
        return ArmadaHook(
            client=self.memory.client(), async_client=self.memory.async_client(), **kwargs
        )

    @contextlib.asynccontextmanager
    async def async_hook(self, **options: Any) -> AsyncIterator[ArmadaHook]:
        """A hook whose async client works on the running event loop."""
        if self.name == "grpc-client":
            # The hook was handed a sync client only; hand it an async one too, on this loop.
            from armada_client.asyncio_client import ArmadaAsyncIOClient

            assert self.local is not None
            channel = self.local.aio_channel()
            try:
                yield ArmadaHook(
                    client=self._hook_client,
                    async_client=ArmadaAsyncIOClient(channel),
                    **{**FAST, **options},
                )
            finally:
                await channel.close()
        else:
            yield self.make_hook(**options) if options else self.hook

    # -- scripting jobs ------------------------------------------------------------

    def submit(
        self,
        annotations: Mapping[str, str] | None = None,
        *,
        job_set_id: str | None = None,
        count: int = 1,
        **item_options: Any,
    ) -> list[str]:
        """Submit ``count`` jobs with the raw client; their ids."""
        items = [job_request_item(annotations=annotations, **item_options) for _ in range(count)]
        response = self.raw.submit_jobs(QUEUE, job_set_id or self.job_set_id, items)
        return [item.job_id for item in response.job_response_items]

    def submit_one(self, annotations: Mapping[str, str] | None = None, **options: Any) -> str:
        return self.submit(annotations, **options)[0]

    def server_state(self, job_id: str) -> JobState:
        """The server's own view of the job (not subject to ingestion)."""
        if self.local is not None:
            return self.local.job(job_id).state
        assert self.memory is not None
        return self.memory.job_state(job_id)

    def wait_state(
        self, job_id: str, states: Iterable[JobState] = TERMINAL_STATES, timeout: float = 20.0
    ) -> JobState:
        """Block (server side, no RPC counted) until the job is in one of ``states``."""
        wanted = set(states)
        deadline = time.monotonic() + timeout
        while True:
            state = self.server_state(job_id)
            if state in wanted:
                return state
            if time.monotonic() >= deadline:
                raise TimeoutError(f"job {job_id} is {state.name}, not in {wanted}")
            time.sleep(0.01)

    def set_ingestion_delay(self, seconds: float) -> None:
        """Job-time seconds before new jobs show in the query API."""
        if self.local is not None:
            self.local.set_ingestion_delay(seconds)
        else:
            assert self.memory is not None
            self.memory.settings.ingestion_delay = seconds

    # -- counting calls --------------------------------------------------------------

    def rpc_count(self, method: str) -> int:
        if self.local is not None:
            return self.local.rpc_count(method)
        assert self.memory is not None
        return self.memory.calls[method]

    def reset_rpc_counts(self) -> None:
        if self.local is not None:
            self.local.reset_rpc_counts()
        else:
            assert self.memory is not None
            self.memory.calls.clear()


@pytest.fixture(params=["grpc-connection", "grpc-client", "memory"])
def backend(
    request: pytest.FixtureRequest, local_armada_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    if request.param == "memory":
        return Backend("memory", memory=InMemoryArmada(queues=[QUEUE], time_scale=TIME_SCALE))
    armada = local_armada_factory(queues=[QUEUE], time_scale=TIME_SCALE)
    if request.param == "grpc-connection":
        monkeypatch.setenv(
            "AIRFLOW_CONN_ARMADA_DEFAULT", f"armada://127.0.0.1:{armada.port}?rpc_timeout=5"
        )
    return Backend(request.param, local=armada)


def json_item(**extra: Any) -> dict[str, Any]:
    """A job request in Armada's JSON form (``json_format`` camelCase names)."""
    quantities = {"cpu": {"string": "100m"}, "memory": {"string": "64Mi"}}
    return {
        "namespace": "default",
        "podSpec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": "busybox:latest",
                    "command": ["sleep", "1"],
                    "resources": {"requests": quantities, "limits": quantities},
                }
            ],
        },
        **extra,
    }


def utc(value: datetime | None) -> datetime:
    assert value is not None
    assert value.utcoffset() == timedelta(0), f"{value!r} is not timezone-aware UTC"
    return value


# -- submitting -------------------------------------------------------------------------


def test_submit_job_accepts_a_proto_and_a_json_dict(backend: Backend) -> None:
    hook = backend.hook
    proto_id = hook.submit_job(QUEUE, backend.job_set_id, job_request_item())
    # the dict's annotations must reach Armada: this job is scripted to fail
    dict_id = hook.submit_job(
        QUEUE,
        backend.job_set_id,
        json_item(annotations={OUTCOME: "failed", FAILURE_REASON: "from the dict"}),
    )
    assert proto_id != dict_id
    assert backend.wait_state(proto_id) is JobState.SUCCEEDED
    assert backend.wait_state(dict_id) is JobState.FAILED
    assert hook.get_job_description(dict_id).reason == "from the dict"


def test_submit_jobs_returns_ids_in_order(backend: Backend) -> None:
    items = [
        job_request_item(annotations={OUTCOME: "failed"}),
        json_item(),
        job_request_item(annotations={OUTCOME: "rejected"}),
    ]
    ids = backend.hook.submit_jobs(QUEUE, backend.job_set_id, items)
    assert len(ids) == 3
    assert len(set(ids)) == 3
    finals = [backend.wait_state(i) for i in ids]
    assert finals == [JobState.FAILED, JobState.SUCCEEDED, JobState.REJECTED]


def test_dict_with_an_unknown_field_names_it_and_sends_nothing(backend: Backend) -> None:
    backend.reset_rpc_counts()
    with pytest.raises(ArmadaJobSpecError, match="bogusField") as info:
        backend.hook.submit_job(QUEUE, backend.job_set_id, json_item(bogusField=1))
    assert isinstance(info.value, AirflowFailException)
    assert backend.rpc_count("SubmitJobs") == 0


@pytest.mark.parametrize("item", ["namespace: default", ["default"], 42, None])
def test_item_neither_dict_nor_proto_is_a_spec_error(backend: Backend, item: Any) -> None:
    with pytest.raises(ArmadaJobSpecError, match=type(item).__name__) as info:
        backend.hook.submit_job(QUEUE, backend.job_set_id, item)
    assert isinstance(info.value, AirflowFailException)


@pytest.mark.parametrize(
    ("queue", "job_set_id", "field"),
    [("", "js", "queue"), ("   ", "js", "queue"), (QUEUE, "", "job_set_id")],
)
def test_empty_queue_or_job_set_is_a_spec_error(
    backend: Backend, queue: str, job_set_id: str, field: str
) -> None:
    backend.reset_rpc_counts()
    with pytest.raises(ArmadaJobSpecError, match=field):
        backend.hook.submit_job(queue, job_set_id, job_request_item())
    assert backend.rpc_count("SubmitJobs") == 0


def test_empty_items_list_is_an_error(backend: Backend) -> None:
    backend.reset_rpc_counts()
    with pytest.raises(ArmadaJobSpecError, match="at least one"):
        backend.hook.submit_jobs(QUEUE, backend.job_set_id, [])
    assert backend.rpc_count("SubmitJobs") == 0


def test_callers_items_are_not_mutated_by_client_ids(backend: Backend) -> None:
    proto = job_request_item()
    as_dict = json_item()
    before = copy.deepcopy(as_dict)
    backend.hook.submit_job(QUEUE, backend.job_set_id, proto, client_id="proto-client-id")
    backend.hook.submit_jobs(QUEUE, backend.job_set_id, [as_dict], client_ids=["dict-client-id"])
    assert proto.client_id == ""
    assert proto == job_request_item()
    assert as_dict == before


def test_client_ids_must_match_items(backend: Backend) -> None:
    with pytest.raises(ValueError, match="one entry per item"):
        backend.hook.submit_jobs(
            QUEUE, backend.job_set_id, [job_request_item()], client_ids=["a", "b"]
        )


def test_submit_with_client_id_is_idempotent(backend: Backend) -> None:
    uri = f"uri-{uuid.uuid4().hex}"
    item = job_request_item(external_job_uri=uri)
    first = backend.hook.submit_job(QUEUE, backend.job_set_id, item, client_id="x")
    second = backend.hook.submit_job(QUEUE, backend.job_set_id, item, client_id="x")
    assert first == second
    # exactly one job in the job set carries the URI: the repeat made no twin
    jobs = backend.raw.get_job_status_by_external_job_uri(QUEUE, backend.job_set_id, uri)
    assert list(jobs.job_states) == [first]
    # and a different client id is a different job
    third = backend.hook.submit_job(QUEUE, backend.job_set_id, item, client_id="y")
    assert third != first


def test_submit_jobs_with_client_ids_is_idempotent(backend: Backend) -> None:
    items = [job_request_item(), job_request_item()]
    first = backend.hook.submit_jobs(QUEUE, backend.job_set_id, items, client_ids=["a", "b"])
    again = backend.hook.submit_jobs(QUEUE, backend.job_set_id, items, client_ids=["a", "b"])
    assert first == again
    assert len(set(first)) == 2


def test_invalid_spec_is_fatal_with_the_servers_text(backend: Backend) -> None:
    with pytest.raises(ArmadaJobSpecError, match="namespace is a required field") as info:
        backend.hook.submit_job(QUEUE, backend.job_set_id, job_request_item(namespace=""))
    assert isinstance(info.value, AirflowFailException)
    assert info.value.code == "INVALID_ARGUMENT"
    assert info.value.method == "SubmitJobs"


def test_unknown_queue_is_an_auth_error_naming_queue_and_connection(backend: Backend) -> None:
    with pytest.raises(ArmadaAuthError) as info:
        backend.hook.submit_job("no-such-queue", backend.job_set_id, job_request_item())
    message = str(info.value)
    assert "'no-such-queue'" in message
    assert "'armada_default'" in message  # the connection whose permissions to check
    assert "could not find queue" in message  # the server's own text
    assert isinstance(info.value, AirflowFailException)


# -- statuses ---------------------------------------------------------------------------


def test_get_job_statuses_chunks_1200_ids(backend: Backend) -> None:
    real = backend.submit({RUNTIME: "10m"}, count=1000)
    unknown = [f"unknown-{i:04d}" for i in range(200)]
    ids = real[:600] + unknown + real[600:]
    backend.reset_rpc_counts()
    states = backend.hook.get_job_statuses(ids)
    assert set(states) == set(ids)
    assert all(states[i] is JobState.UNKNOWN for i in unknown)
    assert not any(states[i] is JobState.UNKNOWN for i in real)
    assert backend.rpc_count("GetJobStatus") == 3  # 500 + 500 + 200


def test_get_job_status(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    backend.wait_state(job_id, {JobState.RUNNING})
    assert backend.hook.get_job_status(job_id) is JobState.RUNNING
    assert backend.hook.get_job_status("no-such-job") is JobState.UNKNOWN


# -- descriptions -----------------------------------------------------------------------


def test_description_of_a_failed_job(backend: Backend) -> None:
    job_id = backend.submit_one(
        {
            OUTCOME: "failed",
            FAILURE_REASON: "custom: the widget broke",
            LEASE_RETURNS: "1",
            CLUSTER: "cluster-b",
        }
    )
    backend.wait_state(job_id)
    d = backend.hook.get_job_description(job_id)
    assert d.job_id == job_id
    assert d.state is JobState.FAILED
    assert (d.queue, d.job_set_id, d.namespace) == (QUEUE, backend.job_set_id, "default")
    assert d.cluster == "cluster-b"
    assert d.node
    assert len(d.run_ids) == 2  # one lease returned, then the run that failed
    assert len(set(d.run_ids)) == 2
    assert d.latest_run_id == d.run_ids[-1]
    assert utc(d.submitted_at) <= utc(d.started_at) <= utc(d.finished_at)
    assert utc(d.finished_at) <= utc(d.last_transition_at)
    assert d.reason == "custom: the widget broke"
    assert d.failed
    assert d.is_terminal
    assert not d.succeeded


def test_description_of_a_succeeded_and_a_running_job(backend: Backend) -> None:
    done, running = backend.submit_one(), backend.submit_one(LONG)
    backend.wait_state(done)
    backend.wait_state(running, {JobState.RUNNING})
    d = backend.hook.get_job_description(done)
    assert d.state is JobState.SUCCEEDED
    assert d.reason == ""
    assert d.succeeded
    r = backend.hook.get_job_description(running)
    assert r.state is JobState.RUNNING
    assert utc(r.started_at) >= utc(r.submitted_at)
    assert r.finished_at is None
    assert not r.is_terminal


def test_description_of_an_unknown_job(backend: Backend) -> None:
    d = backend.hook.get_job_description("no-such-job")
    assert d == JobDescription(job_id="no-such-job", state=JobState.UNKNOWN)


def test_description_to_dict_is_json(backend: Backend) -> None:
    job_id = backend.submit_one({OUTCOME: "preempted", FAILURE_REASON: "made room"})
    backend.wait_state(job_id)
    d = backend.hook.get_job_description(job_id)
    loaded = json.loads(json.dumps(d.to_dict()))
    assert loaded["job_id"] == job_id
    assert loaded["state"] == "PREEMPTED"
    assert loaded["reason"] == "made room"
    assert loaded["run_ids"] == list(d.run_ids)
    assert datetime.fromisoformat(loaded["submitted_at"]) == d.submitted_at
    assert datetime.fromisoformat(loaded["finished_at"]) == d.finished_at


def test_parse_job_description_of_a_job_details_message(backend: Backend) -> None:
    job_id = backend.submit_one({OUTCOME: "failed", FAILURE_REASON: "r"})
    backend.wait_state(job_id)
    details = backend.raw.get_job_details([job_id]).job_details[job_id]
    parsed = ArmadaHook.parse_job_description(details, "r")
    assert parsed == backend.hook.get_job_description(job_id)
    assert ArmadaHook.parse_job_description(details).reason == ""


# -- external URIs ----------------------------------------------------------------------


def test_find_job_by_external_uri(backend: Backend) -> None:
    uri = "https://airflow.example.com/dags/d/runs/r/tasks/t"
    job_id = backend.submit_one(external_job_uri=uri)
    backend.submit_one(external_job_uri="https://elsewhere.example.com")
    assert backend.hook.find_job_by_external_uri(QUEUE, backend.job_set_id, uri) == job_id


def test_find_job_by_external_uri_returns_the_newest(backend: Backend) -> None:
    uri = f"uri-{uuid.uuid4().hex}"
    older = backend.submit_one(external_job_uri=uri)
    newer = backend.submit_one({EXTERNAL_URI_ANNOTATION: uri})  # the annotation form
    # a job with the same URI in another job set is not a candidate
    backend.submit_one(external_job_uri=uri, job_set_id=backend.job_set_id + "-other")
    found = backend.hook.find_job_by_external_uri(QUEUE, backend.job_set_id, uri)
    assert found == newer
    assert found != older


def test_find_job_by_external_uri_none(backend: Backend) -> None:
    backend.submit_one(external_job_uri="some-uri")
    assert backend.hook.find_job_by_external_uri(QUEUE, backend.job_set_id, "other-uri") is None
    assert backend.hook.find_job_by_external_uri(QUEUE, "empty-job-set", "some-uri") is None


# -- cancelling -------------------------------------------------------------------------


def test_cancel_a_running_job(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    backend.wait_state(job_id, {JobState.RUNNING})
    assert backend.hook.cancel_job(QUEUE, backend.job_set_id, job_id) is JobState.CANCELLED
    assert backend.server_state(job_id) is JobState.CANCELLED


def test_cancel_a_finished_job_sends_no_cancel(backend: Backend) -> None:
    job_id = backend.submit_one({OUTCOME: "failed"})
    backend.wait_state(job_id)
    backend.reset_rpc_counts()
    assert backend.hook.cancel_job(QUEUE, backend.job_set_id, job_id) is JobState.FAILED
    assert backend.rpc_count("CancelJobs") == 0
    assert backend.server_state(job_id) is JobState.FAILED


# -- check_job_success ------------------------------------------------------------------


def test_check_job_success_succeeded(backend: Backend) -> None:
    job_id = backend.submit_one()
    backend.wait_state(job_id)
    assert backend.hook.check_job_success(job_id) is True


def test_check_job_success_rejected_is_fatal(backend: Backend) -> None:
    job_id = backend.submit_one({OUTCOME: "rejected", FAILURE_REASON: "asks for 1000 GPUs"})
    backend.wait_state(job_id)
    with pytest.raises(ArmadaJobRejectedError, match="asks for 1000 GPUs") as info:
        backend.hook.check_job_success(job_id)
    assert isinstance(info.value, AirflowFailException)
    assert (info.value.job_id, info.value.state) == (job_id, JobState.REJECTED)
    assert info.value.reason == "asks for 1000 GPUs"


@pytest.mark.parametrize(
    ("outcome", "state"), [("failed", JobState.FAILED), ("preempted", JobState.PREEMPTED)]
)
def test_check_job_success_failure_is_retryable(
    backend: Backend, outcome: str, state: JobState
) -> None:
    job_id = backend.submit_one({OUTCOME: outcome, FAILURE_REASON: f"reason for {outcome}"})
    backend.wait_state(job_id)
    with pytest.raises(ArmadaJobFailedError) as info:
        backend.hook.check_job_success(job_id)
    error = info.value
    assert not isinstance(error, AirflowFailException)
    assert isinstance(error, AirflowException)
    assert (error.job_id, error.state, error.reason) == (job_id, state, f"reason for {outcome}")
    assert job_id in str(error)
    assert state.name in str(error)
    assert f"reason for {outcome}" in str(error)


def test_check_job_success_cancelled_is_retryable(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    backend.wait_state(job_id, {JobState.RUNNING})
    backend.raw.cancel_jobs(QUEUE, backend.job_set_id, job_id)
    backend.wait_state(job_id, {JobState.CANCELLED})
    with pytest.raises(ArmadaJobFailedError, match="CANCELLED") as info:
        backend.hook.check_job_success(job_id)
    assert not isinstance(info.value, AirflowFailException)
    assert (info.value.job_id, info.value.state) == (job_id, JobState.CANCELLED)


def test_check_job_success_not_finished(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    backend.wait_state(job_id, {JobState.RUNNING})
    with pytest.raises(ArmadaJobNotFinishedError, match="RUNNING") as info:
        backend.hook.check_job_success(job_id)
    assert (info.value.job_id, info.value.state) == (job_id, JobState.RUNNING)
    with pytest.raises(ArmadaJobNotFinishedError, match="UNKNOWN"):
        backend.hook.check_job_success("no-such-job")


# -- polling and waiting ----------------------------------------------------------------


def test_poll_for_job_running(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    assert backend.hook.poll_for_job_running(job_id, delay=POLL) is JobState.RUNNING


def test_poll_for_job_complete(backend: Backend) -> None:
    job_id = backend.submit_one({RUNTIME: "5s"})
    assert backend.hook.poll_for_job_complete(job_id, delay=POLL) is JobState.SUCCEEDED


def test_poll_job_status_returns_the_state_matched(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    wanted = {JobState.PENDING, JobState.RUNNING}
    state = backend.hook.poll_job_status(job_id, wanted, poll_interval=POLL)
    assert state in wanted


def test_wait_for_job_returns_the_final_state(backend: Backend) -> None:
    ok, failed = backend.submit_one(), backend.submit_one({OUTCOME: "failed"})
    assert backend.hook.wait_for_job(ok, delay=POLL) is JobState.SUCCEEDED
    assert backend.hook.wait_for_job(failed, delay=POLL) is JobState.FAILED  # no raise


def test_poll_for_job_running_accepts_a_job_that_already_ended(backend: Backend) -> None:
    ok, rejected = backend.submit_one(), backend.submit_one({OUTCOME: "rejected"})
    backend.wait_state(ok)
    backend.wait_state(rejected)
    assert backend.hook.poll_for_job_running(ok, delay=POLL) is JobState.SUCCEEDED
    assert backend.hook.poll_for_job_running(rejected, delay=POLL) is JobState.REJECTED


def test_poll_for_a_state_the_job_can_never_reach(backend: Backend) -> None:
    job_id = backend.submit_one({OUTCOME: "failed"})
    backend.wait_state(job_id)
    backend.reset_rpc_counts()
    with pytest.raises(ArmadaJobError, match="can never reach") as info:
        backend.hook.poll_job_status(job_id, {JobState.RUNNING}, poll_interval=POLL)
    assert (info.value.job_id, info.value.state) == (job_id, JobState.FAILED)
    assert "RUNNING" in str(info.value)
    assert backend.rpc_count("GetJobStatus") == 1  # it gives up at once


def test_max_retries_gives_up_after_max_retries_plus_one_polls(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    hook = backend.make_hook(max_retries=2)
    backend.reset_rpc_counts()
    with pytest.raises(ArmadaWaitTimeoutError, match="after 3 polls") as info:
        hook.poll_for_job_complete(job_id, delay=POLL)
    assert not isinstance(info.value, AirflowFailException)
    assert backend.rpc_count("GetJobStatus") == 3


# -- acknowledgement timeout ------------------------------------------------------------


def test_lost_job_submitted_by_the_hook_is_cancelled(backend: Backend) -> None:
    hook = backend.make_hook(acknowledgement_timeout=0.5)
    started = time.monotonic()
    job_id = hook.submit_job(
        QUEUE, backend.job_set_id, job_request_item(annotations={LOST: "true"})
    )
    with pytest.raises(ArmadaJobLostError, match="has been cancelled") as info:
        hook.wait_for_job(job_id, delay=POLL)
    assert time.monotonic() - started >= 0.5  # not declared lost before the timeout
    error = info.value
    assert not isinstance(error, AirflowFailException)  # retryable
    assert (error.job_id, error.state) == (job_id, JobState.UNKNOWN)
    assert backend.rpc_count("CancelJobs") == 1
    # the server really cancelled it (the query API still does not know it)
    assert backend.server_state(job_id) is JobState.CANCELLED
    assert hook.get_job_status(job_id) is JobState.UNKNOWN


def test_lost_job_the_hook_did_not_submit(backend: Backend) -> None:
    job_id = backend.submit_one({LOST: "true"})
    before = backend.server_state(job_id)
    hook = backend.make_hook(acknowledgement_timeout=0.5)
    backend.reset_rpc_counts()
    with pytest.raises(ArmadaJobLostError, match="pass queue and job_set_id") as info:
        hook.wait_for_job(job_id, delay=POLL)
    assert info.value.job_id == job_id
    assert backend.rpc_count("CancelJobs") == 0
    assert backend.server_state(job_id) is before


def test_lost_job_the_hook_did_not_submit_cancelled_with_queue_and_job_set(
    backend: Backend,
) -> None:
    job_id = backend.submit_one({LOST: "true"})
    hook = backend.make_hook(acknowledgement_timeout=0.5)
    backend.reset_rpc_counts()
    with pytest.raises(ArmadaJobLostError, match="has been cancelled"):
        hook.wait_for_job(job_id, delay=POLL, queue=QUEUE, job_set_id=backend.job_set_id)
    assert backend.rpc_count("CancelJobs") == 1
    assert backend.server_state(job_id) is JobState.CANCELLED


def test_briefly_unknown_job_is_not_lost(backend: Backend) -> None:
    backend.set_ingestion_delay(75)  # 1.5 real seconds before the query API has the job
    hook = backend.make_hook(acknowledgement_timeout=6)
    job_id = hook.submit_job(QUEUE, backend.job_set_id, job_request_item())
    assert hook.get_job_status(job_id) is JobState.UNKNOWN
    backend.reset_rpc_counts()
    assert hook.wait_for_job(job_id, delay=POLL) is JobState.SUCCEEDED
    assert backend.rpc_count("CancelJobs") == 0
    assert backend.server_state(job_id) is JobState.SUCCEEDED


# -- async twins ------------------------------------------------------------------------


async def test_aget_job_status(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    backend.wait_state(job_id, {JobState.RUNNING})
    async with backend.async_hook() as hook:
        assert await hook.aget_job_status(job_id) is JobState.RUNNING
        assert await hook.aget_job_status("no-such-job") is JobState.UNKNOWN


async def test_aget_job_statuses_chunks_1200_ids(backend: Backend) -> None:
    real = backend.submit({RUNTIME: "10m"}, count=1000)
    unknown = [f"unknown-{i:04d}" for i in range(200)]
    ids = unknown + real
    async with backend.async_hook() as hook:
        backend.reset_rpc_counts()
        states = await hook.aget_job_statuses(ids)
    assert set(states) == set(ids)
    assert all(states[i] is JobState.UNKNOWN for i in unknown)
    assert not any(states[i] is JobState.UNKNOWN for i in real)
    assert backend.rpc_count("GetJobStatus") == 3


async def test_aget_job_description(backend: Backend) -> None:
    job_id = backend.submit_one({OUTCOME: "failed", FAILURE_REASON: "async reason"})
    backend.wait_state(job_id)
    async with backend.async_hook() as hook:
        d = await hook.aget_job_description(job_id)
        unknown = await hook.aget_job_description("no-such-job")
    assert d == backend.hook.get_job_description(job_id)
    assert (d.state, d.reason, d.job_set_id) == (
        JobState.FAILED,
        "async reason",
        backend.job_set_id,
    )
    assert utc(d.submitted_at) <= utc(d.started_at) <= utc(d.finished_at)
    assert unknown == JobDescription(job_id="no-such-job", state=JobState.UNKNOWN)


async def test_aget_job_descriptions_batches_details_and_errors_per_500(
    backend: Backend,
) -> None:
    ok = backend.submit({RUNTIME: "1s"}, count=400)
    failed = backend.submit({OUTCOME: "failed", FAILURE_REASON: "batched reason"}, count=200)
    for job_id in ok + failed:
        backend.wait_state(job_id)
    ids = ["no-such-job", *ok, *failed]
    async with backend.async_hook() as hook:
        backend.reset_rpc_counts()
        described = await hook.aget_job_descriptions(ids)
    assert list(described) == ids
    assert described["no-such-job"] == JobDescription(job_id="no-such-job", state=JobState.UNKNOWN)
    assert {described[j].state for j in ok} == {JobState.SUCCEEDED}
    assert {(described[j].state, described[j].reason) for j in failed} == {
        (JobState.FAILED, "batched reason")
    }
    assert backend.rpc_count("GetJobDetails") == 2  # 601 ids: two chunks
    assert backend.rpc_count("GetJobErrors") == 1  # only the 200 failed jobs, in one call
    assert described[failed[0]] == backend.hook.get_job_description(failed[0])


async def test_acheck_job_success(backend: Backend) -> None:
    ok = backend.submit_one()
    failed = backend.submit_one({OUTCOME: "failed", FAILURE_REASON: "boom"})
    rejected = backend.submit_one({OUTCOME: "rejected"})
    running = backend.submit_one(LONG)
    for job_id in (ok, failed, rejected):
        backend.wait_state(job_id)
    backend.wait_state(running, {JobState.RUNNING})
    async with backend.async_hook() as hook:
        assert await hook.acheck_job_success(ok) is True
        with pytest.raises(ArmadaJobFailedError, match="boom") as info:
            await hook.acheck_job_success(failed)
        assert not isinstance(info.value, AirflowFailException)
        assert (info.value.state, info.value.reason) == (JobState.FAILED, "boom")
        with pytest.raises(ArmadaJobRejectedError) as rejection:
            await hook.acheck_job_success(rejected)
        assert isinstance(rejection.value, AirflowFailException)
        with pytest.raises(ArmadaJobNotFinishedError):
            await hook.acheck_job_success(running)


async def test_acancel_job(backend: Backend) -> None:
    running = backend.submit_one(LONG)
    done = backend.submit_one()
    backend.wait_state(running, {JobState.RUNNING})
    backend.wait_state(done)
    async with backend.async_hook() as hook:
        assert await hook.acancel_job(QUEUE, backend.job_set_id, running) is JobState.CANCELLED
        assert backend.server_state(running) is JobState.CANCELLED
        backend.reset_rpc_counts()
        assert await hook.acancel_job(QUEUE, backend.job_set_id, done) is JobState.SUCCEEDED
    assert backend.rpc_count("CancelJobs") == 0


async def test_apoll_for_job_running_and_complete(backend: Backend) -> None:
    running = backend.submit_one(LONG)
    failing = backend.submit_one({RUNTIME: "5s", OUTCOME: "failed"})
    async with backend.async_hook() as hook:
        assert await hook.apoll_for_job_running(running, delay=POLL) is JobState.RUNNING
        assert await hook.apoll_for_job_complete(failing, delay=POLL) is JobState.FAILED


async def test_apoll_job_status_can_never_reach(backend: Backend) -> None:
    job_id = backend.submit_one({OUTCOME: "failed"})
    backend.wait_state(job_id)
    async with backend.async_hook() as hook:
        with pytest.raises(ArmadaJobError, match="can never reach"):
            await hook.apoll_job_status(job_id, {JobState.RUNNING}, poll_interval=POLL)


async def test_apoll_max_retries(backend: Backend) -> None:
    job_id = backend.submit_one(LONG)
    async with backend.async_hook(max_retries=2) as hook:
        backend.reset_rpc_counts()
        with pytest.raises(ArmadaWaitTimeoutError, match="after 3 polls"):
            await hook.apoll_for_job_complete(job_id, delay=POLL)
    assert backend.rpc_count("GetJobStatus") == 3


async def test_async_lost_job_is_cancelled(backend: Backend) -> None:
    async with backend.async_hook(acknowledgement_timeout=0.5) as hook:
        job_id = hook.submit_job(
            QUEUE, backend.job_set_id, job_request_item(annotations={LOST: "true"})
        )
        backend.reset_rpc_counts()
        with pytest.raises(ArmadaJobLostError, match="has been cancelled") as info:
            await hook.apoll_for_job_complete(job_id, delay=POLL)
    assert not isinstance(info.value, AirflowFailException)
    assert info.value.job_id == job_id
    assert backend.rpc_count("CancelJobs") == 1
    assert backend.server_state(job_id) is JobState.CANCELLED
