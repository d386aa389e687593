"""What a job's state means for a task: pure rules, one per outcome, no I/O.

The hook, operator, sensor, trigger, poller and event watch all decide through these
functions, so that they cannot drift apart:

- :func:`completion_error`: SUCCEEDED is success; REJECTED is fatal (no retry can
  schedule the job); FAILED, PREEMPTED and CANCELLED are retryable and carry Armada's
  reason; anything else has not finished.
- :func:`target_error`: for a wait on chosen states (a sensor), a job that ended
  anywhere else can never get there.
- :func:`is_lost` / :func:`lost_error`: the one rule for a lost job — UNKNOWN for longer
  than the acknowledgement timeout, counted on the wall clock from the submission, so
  that a trigger rebuilt after a triggerer restart keeps counting from the same moment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict, cast

from armada_hooks.errors import (
    ArmadaJobError,
    ArmadaJobFailedError,
    ArmadaJobLostError,
    ArmadaJobNotFinishedError,
    ArmadaJobRejectedError,
    ArmadaWaitTimeoutError,
)
from armada_hooks.states import FAILURE_STATES, SUCCESS_STATES, TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from armada_hooks.job_description import JobDescription


def _names(states: Iterable[JobState]) -> list[str]:
    return sorted(s.name for s in states)


def completion_error(description: JobDescription) -> ArmadaJobError | None:
    """None if the job SUCCEEDED; otherwise the typed error its state deserves."""
    job_id, state, reason = description.job_id, description.state, description.reason
    if state in SUCCESS_STATES:
        return None
    why = f": {reason}" if reason else ""
    if state is JobState.REJECTED:
        return ArmadaJobRejectedError(
            f"Armada rejected job {job_id}{why}", job_id=job_id, state=state, reason=reason
        )
    if state in FAILURE_STATES:
        return ArmadaJobFailedError(
            f"Armada job {job_id} ended {state.name}{why}",
            job_id=job_id,
            state=state,
            reason=reason,
        )
    return ArmadaJobNotFinishedError(
        f"Armada job {job_id} has not finished: it is {state.name}", job_id=job_id, state=state
    )


def check_success(description: JobDescription) -> bool:
    """True if the job SUCCEEDED; raises :func:`completion_error`'s error otherwise."""
    error = completion_error(description)
    if error is not None:
        raise error
    return True


def target_error(job_id: str, state: JobState, wanted: Iterable[JobState]) -> ArmadaJobError | None:
    """The error for a job that ended in ``state``, outside ``wanted``.

    None while the job may still get there, or is there.
    """
    wanted = frozenset(wanted)
    if state in wanted or state not in TERMINAL_STATES:
        return None
    return _ended_elsewhere(job_id, state, wanted)


def _ended_elsewhere(job_id: str, state: JobState, wanted: frozenset[JobState]) -> ArmadaJobError:
    return ArmadaJobError(
        f"Armada job {job_id} ended {state.name}, so it can never reach {_names(wanted)}",
        job_id=job_id,
        state=state,
    )


def sensor_verdict(description: JobDescription, wanted: Iterable[JobState]) -> bool:
    """True once the job is in ``wanted``, False while it may still get there.

    A job that ended elsewhere raises: its failure's own error (REJECTED, FAILED, ...),
    or, if it succeeded while the sensor wanted another state, :func:`target_error`'s.
    """
    wanted = frozenset(wanted)
    if description.state in wanted:
        return True
    if description.state not in TERMINAL_STATES:
        return False
    raise completion_error(description) or _ended_elsewhere(
        description.job_id, description.state, wanted
    )


def ack_deadline(submitted_at: float, timeout: float) -> float:
    """Epoch seconds after which a job still UNKNOWN is lost."""
    return submitted_at + timeout


def is_lost(state: JobState, submitted_at: float, timeout: float, now: float) -> bool:
    """Whether a job in ``state`` is lost at epoch second ``now``.

    Lost: still UNKNOWN (never acknowledged by Armada's query API) ``timeout`` seconds
    after it was submitted.
    """
    return state is JobState.UNKNOWN and now >= ack_deadline(submitted_at, timeout)


def lost_error(job_id: str, timeout: float, *, cancelled: bool) -> ArmadaJobLostError:
    """The error for a lost job; ``cancelled`` says whether it could be cancelled."""
    action = (
        "it has been cancelled so that a retry cannot leave a twin behind"
        if cancelled
        else "pass queue and job_set_id so that it can be cancelled"
    )
    return ArmadaJobLostError(
        f"Armada job {job_id} is still UNKNOWN after {timeout:g}s: "
        f"Armada never acknowledged it (lost); {action}",
        job_id=job_id,
        state=JobState.UNKNOWN,
    )


class JobLost(Exception):
    """A polled job is lost: cancel it at ``target`` (queue, job set), then raise ``error``.

    ``target`` is None when the job's queue and job set are not known.
    """

    def __init__(self, target: tuple[str, str] | None, error: ArmadaJobLostError) -> None:
        super().__init__(error.message)
        self.target = target
        self.error = error


class WaitWhere(TypedDict, total=False):
    """Where a waited-for job lives, so that a lost one can be cancelled."""

    queue: str | None
    job_set_id: str | None


class PollOptions(WaitWhere, total=False):
    """The keyword options of a hook's ``poll_job_status`` and its async twin."""

    poll_interval: float | None  # seconds between polls; None: exponential backoff


@dataclass
class PolledWait:
    """The verdicts on one wait's successive polls of a job (the caller polls and sleeps).

    ``submitted_at`` (epoch seconds) starts the acknowledgement clock; when unknown, it
    starts at the first UNKNOWN answer. ``queue`` and ``job_set_id`` say where a lost job
    can be cancelled.
    """

    job_id: str
    wanted: frozenset[JobState]
    timeout: float
    submitted_at: float | None = None
    queue: str | None = None
    job_set_id: str | None = None
    last: JobState | None = None

    def judge(self, state: JobState, now: float) -> bool:
        """True when ``state`` is wanted, False to poll again.

        :raises ArmadaJobError: the job ended elsewhere (:func:`target_error`).
        :raises JobLost: the job is lost (:func:`is_lost`).
        """
        self.last = state
        if state in self.wanted:
            return True
        ended = target_error(self.job_id, state, self.wanted)
        if ended is not None:
            raise ended
        if state is JobState.UNKNOWN:
            if self.submitted_at is None:
                self.submitted_at = now
            if is_lost(state, self.submitted_at, self.timeout, now):
                where = (self.queue, self.job_set_id)
                target = (self.queue, self.job_set_id) if all(where) else None
                lost = lost_error(self.job_id, self.timeout, cancelled=target is not None)
                raise JobLost(cast("tuple[str, str] | None", target), lost)
        return False

    def gave_up(self, polls: int) -> ArmadaWaitTimeoutError:
        """The error for ``polls`` polls that never saw a wanted state."""
        return ArmadaWaitTimeoutError(
            f"Armada job {self.job_id} is still {self.last.name if self.last else 'unknown'} "
            f"after {polls} polls; waited for {_names(self.wanted)}"
        )
