"""The demo's view of Airflow's own log: a failure the DAG intends as one line, noise not at all.

A failure the DAG's ``EXPECTED`` intends (a task expected to end failed, or a try before
the expected last one) prints ``task <name> failed as intended: <type>: <message>``
instead of Airflow's ``[error]`` line and traceback; any other failure keeps both, so
the demo still shows a real problem in full. ``dag.test()``'s "No tasks to run" while
it waits out a retry delay, and Starlette's deprecation of the test client Airflow uses,
are dropped. Everything is undone on exit: nothing here changes logging outside the demo.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

FAILED_EVENT = "Task failed with exception"  # Airflow's task runner, on any task failure
WAITING_EVENT = "No tasks to run"  # dag.test() between a failed try and its retry


def intended_failure(
    expected: Mapping[str, tuple[str, int]], task_id: str, try_number: int
) -> bool:
    """Whether ``EXPECTED`` says the task's try ``try_number`` fails."""
    want_state, want_tries = expected.get(task_id, ("success", 1))
    return want_state == "failed" or try_number < want_tries


def _running_task() -> Any | None:
    """The task instance ``dag.test()`` runs on this thread now (its in-process supervisor's)."""
    from airflow.sdk.execution_time import task_runner

    supervisor = getattr(getattr(task_runner, "SUPERVISOR_COMMS", None), "supervisor", None)
    return getattr(supervisor, "ti", None)


def _exception(event_dict: Mapping[str, Any]) -> BaseException | None:
    exc_info = event_dict.get("exc_info")
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if isinstance(exc_info[1], BaseException) else None
    return sys.exc_info()[1] if exc_info else None


class IntendedFailures:
    """A structlog processor: an intended failure's record becomes one ``say`` line."""

    def __init__(self, expected: Mapping[str, tuple[str, int]], say: Callable[[str], None]):
        self.expected, self.say = expected, say
        self.seen: list[str] = []

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """Drop (after one line) the failure record of a task that fails as intended."""
        if event_dict.get("event") != FAILED_EVENT:
            return event_dict
        ti, error = _running_task(), _exception(event_dict)
        if ti is None or error is None:
            return event_dict
        if not intended_failure(self.expected, ti.task_id, ti.try_number):
            return event_dict
        name = ti.task_id if ti.map_index in (None, -1) else f"{ti.task_id}[{ti.map_index}]"
        self.seen.append(name)
        self.say(f"task {name} failed as intended: {type(error).__name__}: {error}")
        raise structlog.DropEvent


class _DropWaiting(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(WAITING_EVENT)


@contextmanager
def quiet_intended_failures(
    expected: Mapping[str, tuple[str, int]], say: Callable[[str], None]
) -> Iterator[IntendedFailures]:
    """Within: intended failures print one line each; the demo's known noise is dropped."""
    processors = structlog.get_config()["processors"]
    failures = IntendedFailures(expected, say)
    # In place: loggers structlog already built share this very list.
    processors.insert(0, failures)
    waiting, dag_log = _DropWaiting(), logging.getLogger("airflow.sdk.definitions.dag")
    dag_log.addFilter(waiting)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
            yield failures
    finally:
        dag_log.removeFilter(waiting)
        processors.remove(failures)
