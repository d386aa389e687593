"""armada_hooks.errors: every exception pickles intact, and is fatal or retryable as documented."""

from __future__ import annotations

import copy
import inspect
import pickle
from typing import Any

import pytest

from armada_hooks import errors
from armada_hooks._compat import AirflowException, AirflowFailException
from armada_hooks.errors import (
    ArmadaAuthError,
    ArmadaConnectionError,
    ArmadaError,
    ArmadaFatalError,
    ArmadaFatalRpcError,
    ArmadaJobError,
    ArmadaJobFailedError,
    ArmadaJobLostError,
    ArmadaJobNotFinishedError,
    ArmadaJobRejectedError,
    ArmadaJobServiceConfigError,
    ArmadaJobSpecError,
    ArmadaNotFoundError,
    ArmadaRpcError,
    ArmadaWaitTimeoutError,
)
from armada_hooks.states import JobState

FATAL = [
    ArmadaFatalError,
    ArmadaConnectionError,
    ArmadaJobServiceConfigError,
    ArmadaFatalRpcError,
    ArmadaJobSpecError,
    ArmadaAuthError,
    ArmadaNotFoundError,
    ArmadaJobRejectedError,
]
RETRYABLE = [
    ArmadaError,
    ArmadaRpcError,
    ArmadaJobError,
    ArmadaJobFailedError,
    ArmadaJobLostError,
    ArmadaJobNotFinishedError,
    ArmadaWaitTimeoutError,
]
RPC_ERRORS = {ArmadaRpcError, ArmadaFatalRpcError, ArmadaJobSpecError, ArmadaAuthError}
RPC_ERRORS |= {ArmadaNotFoundError}
JOB_ERRORS = {
    ArmadaJobError,
    ArmadaJobFailedError,
    ArmadaJobRejectedError,
    ArmadaJobLostError,
    ArmadaJobNotFinishedError,
}
MESSAGE = "Armada job 01abc ended FAILED: OOMKilled; raise the memory limit"


def _name(cls: type) -> str:
    return cls.__name__


def _module_exceptions() -> set[type[BaseException]]:
    return {
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    }


def _build(cls: type[ArmadaError]) -> tuple[ArmadaError, dict[str, Any]]:
    """An instance of ``cls`` with every field set to a distinctive value, and those values."""
    fields: dict[str, Any]
    if cls in RPC_ERRORS:
        fields = {"message": MESSAGE, "method": "SubmitJobs", "code": "INVALID_ARGUMENT"}
    elif cls in JOB_ERRORS:
        fields = {
            "message": MESSAGE,
            "job_id": "01abc",
            "state": JobState.FAILED,
            "reason": "OOMKilled",
        }
    else:
        fields = {"message": MESSAGE}
    return cls(**fields), fields


def test_every_exception_in_the_module_is_classified() -> None:
    assert _module_exceptions() == set(FATAL) | set(RETRYABLE)
    assert not set(FATAL) & set(RETRYABLE)


@pytest.mark.parametrize("cls", FATAL + RETRYABLE, ids=_name)
def test_every_exception_derives_from_armada_error(cls: type[ArmadaError]) -> None:
    assert issubclass(cls, ArmadaError)
    assert issubclass(cls, AirflowException)


@pytest.mark.parametrize("cls", FATAL, ids=_name)
def test_fatal_errors_fail_the_task_without_retry(cls: type[ArmadaError]) -> None:
    exc, _ = _build(cls)
    assert isinstance(exc, AirflowFailException)
    assert isinstance(exc, ArmadaFatalError)
    with pytest.raises(AirflowFailException):
        raise exc


@pytest.mark.parametrize("cls", RETRYABLE, ids=_name)
def test_retryable_errors_are_plain_airflow_exceptions(cls: type[ArmadaError]) -> None:
    exc, _ = _build(cls)
    assert isinstance(exc, AirflowException)
    assert not isinstance(exc, AirflowFailException)
    assert not isinstance(exc, ArmadaFatalError)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("cls", FATAL + RETRYABLE, ids=_name)
def test_every_exception_pickles_with_its_fields(cls: type[ArmadaError], protocol: int) -> None:
    exc, fields = _build(cls)
    clone = pickle.loads(pickle.dumps(exc, protocol=protocol))
    assert type(clone) is cls
    assert str(clone) == str(exc) == MESSAGE
    assert clone.args == exc.args
    for name, value in fields.items():
        assert getattr(clone, name) == value, name
    if cls in JOB_ERRORS:
        assert type(clone.state) is JobState  # type: ignore[attr-defined]
        assert clone.state is JobState.FAILED  # type: ignore[attr-defined]
    assert isinstance(clone, AirflowFailException) == (cls in FATAL)


@pytest.mark.parametrize("cls", FATAL + RETRYABLE, ids=_name)
def test_every_exception_deep_copies_with_its_fields(cls: type[ArmadaError]) -> None:
    exc, fields = _build(cls)
    clone = copy.deepcopy(exc)
    assert type(clone) is cls
    assert clone is not exc
    assert {name: getattr(clone, name) for name in fields} == fields


@pytest.mark.parametrize("cls", sorted(JOB_ERRORS, key=_name), ids=_name)
def test_job_error_state_given_as_int_becomes_a_job_state(cls: type[ArmadaJobError]) -> None:
    exc = cls("m", job_id="01x", state=JobState.PREEMPTED.value, reason="")
    assert exc.state is JobState.PREEMPTED
    clone = pickle.loads(pickle.dumps(exc))
    assert clone.state is JobState.PREEMPTED
    assert (clone.job_id, clone.reason, clone.message) == ("01x", "", "m")


def test_optional_fields_default_and_survive_pickling() -> None:
    rpc = pickle.loads(pickle.dumps(ArmadaRpcError("plain")))
    assert (rpc.message, rpc.method, rpc.code) == ("plain", "", "")
    job = pickle.loads(pickle.dumps(ArmadaJobLostError("lost", job_id="01y", state=0)))
    assert job.state is JobState(0)
    assert job.reason == ""


def test_an_exception_raised_in_a_chain_still_pickles() -> None:
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ArmadaAuthError(
                "denied", method="GetJobStatus", code="UNAUTHENTICATED"
            ) from inner
    except ArmadaAuthError as exc:
        clone = pickle.loads(pickle.dumps(exc))
    assert type(clone) is ArmadaAuthError
    assert (clone.message, clone.method, clone.code) == (
        "denied",
        "GetJobStatus",
        "UNAUTHENTICATED",
    )
