"""Typed exceptions: what went wrong, whether a retry can help, and what to fix.

Everything derives from :class:`ArmadaError` (an ``AirflowException``: Airflow retries
the task). :class:`ArmadaFatalError` subclasses also derive from ``AirflowFailException``:
the task fails at once, because retrying an invalid spec, a rejected job or a refused
credential cannot succeed. Every exception pickles with its fields intact.
"""

from __future__ import annotations

from typing import Any

from armada_hooks._compat import AirflowException, AirflowFailException
from armada_hooks.states import JobState


def _rebuild(cls: type[ArmadaError], fields: dict[str, Any]) -> ArmadaError:
    return cls(**fields)


class ArmadaError(AirflowException):
    """Base of every armada-hooks error; retryable unless it is an :class:`ArmadaFatalError`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._fields()))


class ArmadaFatalError(ArmadaError, AirflowFailException):
    """An error no retry can fix: the task fails without retrying."""


class ArmadaConnectionError(ArmadaFatalError):
    """The Airflow connection is missing or has a field the hook cannot use."""


class ArmadaJobServiceConfigError(ArmadaFatalError):
    """A job-service client helper was given what it cannot use; the message says what.

    (``search_for_job_complete`` without a client, a malformed timeout.)

    (The service's own settings and store addresses raise
    :class:`armada_hooks.jobservice.settings.JobServiceConfigError`, which needs no Airflow.)
    """


class ArmadaRpcError(ArmadaError):
    """An Armada RPC failed; ``code`` is the gRPC status code name (``"UNAVAILABLE"``)."""

    def __init__(self, message: str, *, method: str = "", code: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.code = code

    def _fields(self) -> dict[str, Any]:
        return {"message": self.message, "method": self.method, "code": self.code}


class ArmadaFatalRpcError(ArmadaRpcError, ArmadaFatalError):
    """An RPC failed in a way a retry cannot fix."""


class ArmadaJobSpecError(ArmadaFatalRpcError):
    """Armada refused the job request as invalid (INVALID_ARGUMENT); the message says why."""


class ArmadaAuthError(ArmadaFatalRpcError):
    """Armada refused the credentials (UNAUTHENTICATED) or the permission (PERMISSION_DENIED)."""


class ArmadaNotFoundError(ArmadaFatalRpcError):
    """Armada has no such object (NOT_FOUND)."""


class ArmadaJobError(ArmadaError):
    """A job ended badly; carries its id, final state and Armada's reason."""

    def __init__(
        self, message: str, *, job_id: str, state: JobState | int, reason: str = ""
    ) -> None:
        super().__init__(message)
        self.job_id = job_id
        self.state = JobState(state)
        self.reason = reason

    def _fields(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "job_id": self.job_id,
            "state": self.state.value,
            "reason": self.reason,
        }


class ArmadaJobFailedError(ArmadaJobError):
    """The job FAILED, was PREEMPTED or CANCELLED: a retry may succeed."""


class ArmadaJobRejectedError(ArmadaJobError, ArmadaFatalError):
    """Armada REJECTED the job (it can never be scheduled as specified): no retry."""


class ArmadaJobLostError(ArmadaJobError):
    """The job never reached Armada's query API within the acknowledgement timeout.

    The hook has asked Armada to cancel it, so a retry does not leave a twin behind.
    """


class ArmadaJobNotFinishedError(ArmadaJobError):
    """The job was asked about as if it had ended, but it is still active."""


class ArmadaWaitTimeoutError(ArmadaError):
    """Polling gave up before the job reached the states waited for."""


def from_event(error: dict[str, Any], job_id: str) -> ArmadaError:
    """Rebuild the error a trigger reported (its ``error`` payload) for the resuming task."""
    cls: Any = globals().get(str(error.get("type")))
    message = str(error.get("message", "Armada wait failed"))
    if not (isinstance(cls, type) and issubclass(cls, ArmadaError)):
        cls = ArmadaFatalError if error.get("fatal") else ArmadaError
    built: ArmadaError = (
        cls(message, job_id=job_id, state=JobState.UNKNOWN)
        if issubclass(cls, ArmadaJobError)
        else cls(message)
    )
    return built
