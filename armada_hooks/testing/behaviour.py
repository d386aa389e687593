r"""How a simulated job behaves, chosen per job by annotations with server-wide defaults.

A job submitted to the local Armada walks SUBMITTED → QUEUED → LEASED → PENDING →
RUNNING → SUCCEEDED/FAILED. These annotations on the ``JobSubmitRequestItem`` change
that walk (durations are job-time seconds: ``"30"``, ``"30s"``, ``"2m"``, ``"1.5h"``):

======================================  =================================================
annotation                              effect
======================================  =================================================
``armada-hooks/runtime``                time spent RUNNING
``armada-hooks/queue-time``             time spent QUEUED before each lease
``armada-hooks/outcome``                ``succeeded`` | ``failed`` | ``preempted`` |
                                        ``rejected`` (rejected while queued, never runs)
``armada-hooks/exit-code``              exit code reported by a failed job (default 1)
``armada-hooks/failure-reason``         reason returned by GetJobErrors and events
``armada-hooks/log-lines``              number of generated log lines, spread over runtime
``armada-hooks/logs``                   literal log text (one line per ``\\n``)
``armada-hooks/lease-returns``          times the lease is returned (job requeued) first
``armada-hooks/lost``                   ``true``: never reaches the query API (UNKNOWN)
``armada-hooks/execution``              ``simulate`` | ``subprocess`` (run the first
                                        container's command as a local process)
``armada-hooks/cluster``                cluster name recorded on the job's runs
======================================  =================================================

A malformed annotation makes SubmitJobs fail with INVALID_ARGUMENT naming it.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

PREFIX = "armada-hooks/"
RUNTIME = PREFIX + "runtime"
QUEUE_TIME = PREFIX + "queue-time"
OUTCOME = PREFIX + "outcome"
EXIT_CODE = PREFIX + "exit-code"
FAILURE_REASON = PREFIX + "failure-reason"
LOG_LINES = PREFIX + "log-lines"
LOGS = PREFIX + "logs"
LEASE_RETURNS = PREFIX + "lease-returns"
LOST = PREFIX + "lost"
EXECUTION = PREFIX + "execution"
CLUSTER = PREFIX + "cluster"

Outcome = Literal["succeeded", "failed", "preempted", "rejected"]
Execution = Literal["simulate", "subprocess"]
OUTCOMES: tuple[Outcome, ...] = ("succeeded", "failed", "preempted", "rejected")
EXECUTIONS: tuple[Execution, ...] = ("simulate", "subprocess")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class BehaviourError(ValueError):
    """An ``armada-hooks/*`` annotation has a value the local Armada cannot use."""


@dataclass(frozen=True)
class JobBehaviour:
    """The simulated life of one job. Server-wide defaults are one of these too."""

    runtime: float = 1.0
    queue_time: float = 0.2
    lease_time: float = 0.05
    pending_time: float = 0.2
    outcome: Outcome = "succeeded"
    exit_code: int = 1
    failure_reason: str = ""
    log_lines: int = 3
    logs: tuple[str, ...] | None = None
    lease_returns: int = 0
    lost: bool = False
    execution: Execution = "simulate"
    cluster: str = "local-cluster"

    def __post_init__(self) -> None:
        for name in ("runtime", "queue_time", "lease_time", "pending_time"):
            if getattr(self, name) < 0:
                raise BehaviourError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.outcome not in OUTCOMES:
            raise BehaviourError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if self.execution not in EXECUTIONS:
            raise BehaviourError(f"execution must be one of {EXECUTIONS}, got {self.execution!r}")
        if self.log_lines < 0 or self.lease_returns < 0:
            raise BehaviourError("log_lines and lease_returns must be >= 0")

    def reason(self) -> str:
        """The failure reason reported for a job that ends badly."""
        if self.failure_reason:
            return self.failure_reason
        if self.outcome == "failed":
            return f"Container main exited with code {self.exit_code}"
        if self.outcome == "preempted":
            return "Preempted by the local Armada (armada-hooks/outcome=preempted)"
        if self.outcome == "rejected":
            return "Rejected by the local Armada (armada-hooks/outcome=rejected)"
        return ""

    def log_text(self, job_id: str) -> tuple[str, ...]:
        """The simulated log lines of this job."""
        if self.logs is not None:
            return self.logs
        return tuple(f"[{job_id}] line {i + 1} of {self.log_lines}" for i in range(self.log_lines))


def parse_duration(value: str, *, key: str) -> float:
    """Seconds in ``value`` (``"90"``, ``"90s"``, ``"1.5m"``, ``"250ms"``, ``"2h"``)."""
    match = _DURATION.match(value)
    if not match:
        raise BehaviourError(
            f"annotation {key}={value!r} is not a duration; use e.g. '30', '30s', '2m' or '1h'"
        )
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _parse_int(value: str, *, key: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise BehaviourError(f"annotation {key}={value!r} is not an integer") from None


def _parse_bool(value: str, *, key: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BehaviourError(f"annotation {key}={value!r} is not a boolean; use 'true' or 'false'")


def _parse_choice(value: str, *, key: str, choices: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in choices:
        raise BehaviourError(f"annotation {key}={value!r} must be one of {', '.join(choices)}")
    return lowered


def _parse_cluster(value: str, *, key: str) -> str:
    if not value.strip():
        raise BehaviourError(f"annotation {key} must not be empty")
    return value.strip()


# annotation -> (JobBehaviour field, how its value is read)
_FIELDS: dict[str, tuple[str, Callable[..., object]]] = {
    RUNTIME: ("runtime", parse_duration),
    QUEUE_TIME: ("queue_time", parse_duration),
    OUTCOME: ("outcome", functools.partial(_parse_choice, choices=OUTCOMES)),
    EXIT_CODE: ("exit_code", _parse_int),
    FAILURE_REASON: ("failure_reason", lambda value, key: value),
    LOG_LINES: ("log_lines", _parse_int),
    LOGS: ("logs", lambda value, key: tuple(value.splitlines())),
    LEASE_RETURNS: ("lease_returns", _parse_int),
    LOST: ("lost", _parse_bool),
    EXECUTION: ("execution", functools.partial(_parse_choice, choices=EXECUTIONS)),
    CLUSTER: ("cluster", _parse_cluster),
}
KNOWN_ANNOTATIONS = frozenset(_FIELDS)


def behaviour_from_annotations(
    annotations: Mapping[str, str], defaults: JobBehaviour
) -> JobBehaviour:
    """The behaviour ``annotations`` ask for, falling back to ``defaults``."""
    changes: dict[str, object] = {}
    for key, value in annotations.items():
        if not key.startswith(PREFIX):
            continue
        if key not in _FIELDS:
            raise BehaviourError(
                f"unknown annotation {key!r}; the local Armada understands "
                f"{', '.join(sorted(KNOWN_ANNOTATIONS))}"
            )
        name, parse = _FIELDS[key]
        changes[name] = parse(value, key=key)
    if not changes:
        return defaults
    try:
        return dataclasses.replace(defaults, **changes)  # type: ignore[arg-type]
    except BehaviourError as exc:
        raise BehaviourError(f"job annotations: {exc}") from None
