"""Waiting for a job through the job service, as Armada's old operator did.

:func:`search_for_job_complete` polls ``GetJobStatus`` until the job SUCCEEDED, FAILED or
was CANCELLED, and returns ``(JobState, message)``. CONNECTION_ERR is logged and polled
again; JOB_ID_NOT_FOUND is tolerated for ``time_out_for_failure`` seconds (counted from
the first of an unbroken run of them; ``ARMADA_AIRFLOW_TIME_OUT_JOB_ID`` overrides it, as
before), then returned. :func:`search_for_job_complete_async` is the same over an asyncio
client. Both take the historic keyword names.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from armada_hooks.errors import ArmadaJobServiceConfigError
from armada_hooks.jobservice.historic import JobState, job_state_from_pb

if TYPE_CHECKING:
    from collections.abc import Callable

    from armada_hooks.jobservice.client import JobServiceAsyncIOClient, JobServiceClient

log = logging.getLogger("airflow.task")

TIME_OUT_ENV = "ARMADA_AIRFLOW_TIME_OUT_JOB_ID"
DEFAULT_TIME_OUT_FOR_FAILURE = 7200  # seconds JOB_ID_NOT_FOUND is tolerated
DEFAULT_SEARCH_INTERVAL = 3.0  # seconds between polls (the old operator's fixed pause)


def _time_out(given: float) -> float:
    raw = os.environ.get(TIME_OUT_ENV)
    if not raw:
        return given
    try:
        return float(raw)
    except ValueError:
        raise ArmadaJobServiceConfigError(
            f"{TIME_OUT_ENV}={raw!r} is not a number of seconds"
        ) from None


class _Search:
    """The decisions of one search, shared by the sync and async loops (no I/O)."""

    def __init__(self, task: str, job_id: str, time_out: float) -> None:
        self.task, self.job_id, self.time_out = task, job_id, _time_out(time_out)
        self.not_found_since: float | None = None

    def judge(self, response: Any) -> tuple[JobState, str] | None:
        """The search's result for one answer, or None to poll again."""
        state = job_state_from_pb(response.state)
        name = f"Armada {self.task}:{self.job_id}"
        log.debug("job service says %s for job %s", state.name, self.job_id)
        if state is not JobState.JOB_ID_NOT_FOUND:
            self.not_found_since = None
        if state is JobState.SUCCEEDED:
            return state, f"{name} succeeded"
        if state is JobState.FAILED:
            return state, f"{name} failed\nfailed with reason {response.error}"
        if state is JobState.CANCELLED:
            return state, f"{name} cancelled"
        if state is JobState.CONNECTION_ERR:
            log.warning("%s: job service connection error (will retry): %s", name, response.error)
        if state is JobState.JOB_ID_NOT_FOUND:
            now = time.monotonic()
            if self.not_found_since is None:
                self.not_found_since = now
            if now - self.not_found_since >= self.time_out:
                return state, f"{name} could not find a job id and\nhit a timeout"
        return None


def search_for_job_complete(
    armada_queue: str,
    job_set_id: str,
    airflow_task_name: str,
    job_id: str,
    job_service_client: JobServiceClient | None = None,
    job_status_callable: Callable[..., Any] | None = None,
    time_out_for_failure: float = DEFAULT_TIME_OUT_FOR_FAILURE,
    poll_interval: float = DEFAULT_SEARCH_INTERVAL,
) -> tuple[JobState, str]:
    """Poll the job service until the job ends; ``(state, message)``.

    ``job_status_callable(armada_queue=, job_id=, job_set_id=[, job_service_client=])``
    replaces the client's ``get_job_status`` (the old operator's test hook).
    """
    search = _Search(airflow_task_name, job_id, time_out_for_failure)
    while True:
        if job_status_callable is not None:
            extra = {"job_service_client": job_service_client} if job_service_client else {}
            response = job_status_callable(
                armada_queue=armada_queue, job_id=job_id, job_set_id=job_set_id, **extra
            )
        elif job_service_client is not None:
            response = job_service_client.get_job_status(armada_queue, job_set_id, job_id)
        else:
            raise ArmadaJobServiceConfigError(
                "search_for_job_complete needs job_service_client (or job_status_callable)"
            )
        result = search.judge(response)
        if result is not None:
            return result
        time.sleep(poll_interval)


async def search_for_job_complete_async(
    armada_queue: str,
    job_set_id: str,
    airflow_task_name: str,
    job_id: str,
    job_service_client: JobServiceAsyncIOClient,
    time_out_for_failure: float = DEFAULT_TIME_OUT_FOR_FAILURE,
    poll_interval: float = DEFAULT_SEARCH_INTERVAL,
) -> tuple[JobState, str]:
    """:func:`search_for_job_complete` over an asyncio client."""
    search = _Search(airflow_task_name, job_id, time_out_for_failure)
    while True:
        response = await job_service_client.get_job_status(armada_queue, job_set_id, job_id)
        result = search.judge(response)
        if result is not None:
            return result
        await asyncio.sleep(poll_interval)
