"""The last fetch of a job's log (the drain) retries what the next fetch would otherwise
catch up: once the job has ended there is no next fetch."""

from __future__ import annotations

import json
import logging
import uuid

import grpc
import pytest

from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.states import JobState
from armada_hooks.testing import job_request_item

pytestmark = pytest.mark.local_armada(time_scale=60)

LINES = 4


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def logged():
    logger = logging.getLogger(f"tests.hooks.test_log_drain.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = Collected()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


@pytest.fixture
def hook(local_armada, monkeypatch):
    conn = json.loads(local_armada.airflow_connection())
    monkeypatch.setenv("AIRFLOW_CONN_ARMADA_DRAIN", json.dumps(conn))
    with ArmadaHook("armada_drain", retry_wait_min=0.01, retry_wait_max=0.05) as hook:
        yield hook


@pytest.fixture
def ended_job(local_armada, hook):
    """A job that ran and wrote its lines, none of them fetched yet."""
    item = job_request_item(
        annotations={"armada-hooks/log-lines": str(LINES), "armada-hooks/runtime": "2"}
    )
    job_id = hook.submit_job("default", "drain", item)
    assert local_armada.wait_for_state(job_id, timeout=20).state is JobState.SUCCEEDED
    return job_id


@pytest.mark.parametrize(
    "code",
    [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED],
)
def test_the_drain_retries_a_retryable_failure_so_the_last_lines_arrive(
    local_armada, hook, ended_job, logged, code
):
    logger, handler = logged
    local_armada.faults.fail("Logs", code, times=3)

    assert hook.log_fetcher(ended_job, logger).drain() == LINES

    assert handler.at(logging.INFO) == [
        f"[{ended_job}] line {i} of {LINES}" for i in range(1, LINES + 1)
    ]
    assert local_armada.rpc_count("Logs") == 4  # three failures, then the lines
    # The hook's retry policy logs to the hook's own logger; nothing is missing here.
    assert handler.at(logging.WARNING) == []


def test_a_fetch_while_the_job_runs_is_not_retried_the_next_one_catches_up(
    local_armada, hook, ended_job, logged
):
    logger, handler = logged
    local_armada.faults.fail("Logs", grpc.StatusCode.UNAVAILABLE, times=1)
    fetcher = hook.log_fetcher(ended_job, logger)

    assert fetcher.fetch_once() == 0
    assert fetcher.fetch_once() == LINES

    assert local_armada.rpc_count("Logs") == 2
    (warning,) = handler.at(logging.WARNING)
    assert "will keep trying" in warning


def test_a_drain_that_still_fails_says_the_end_of_the_log_is_missing(
    local_armada, ended_job, logged, monkeypatch
):
    logger, handler = logged
    conn = json.loads(local_armada.airflow_connection())
    monkeypatch.setenv("AIRFLOW_CONN_ARMADA_DRAIN_ONCE", json.dumps(conn))
    local_armada.faults.fail("Logs", grpc.StatusCode.UNAVAILABLE, times=5)

    with ArmadaHook("armada_drain_once", status_retries=2, retry_wait_min=0.01) as hook:
        assert hook.log_fetcher(ended_job, logger).drain() == 0

    assert local_armada.rpc_count("Logs") == 3
    warning = handler.at(logging.WARNING)[-1]
    assert f"Could not fetch the end of the log of Armada job {ended_job}" in warning
    assert "UNAVAILABLE" in warning
    assert "gave up after 3 tries" in warning
    assert "missing" in warning
    assert handler.at(logging.INFO) == []
