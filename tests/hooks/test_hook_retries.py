"""ArmadaHook's pacing and retries: backoff bounds, the documented totals, and RPC retries.

RPC retries run against a real local Armada over loopback gRPC, with faults injected by
the server (``armada.faults``) and calls counted by the server (``armada.rpc_count``).
"""

from __future__ import annotations

import re
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import structlog.testing

from armada_hooks import backoff
from armada_hooks._compat import AirflowException, AirflowFailException
from armada_hooks.errors import (
    ArmadaFatalRpcError,
    ArmadaJobSpecError,
    ArmadaRpcError,
    ArmadaWaitTimeoutError,
)
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.states import JobState
from armada_hooks.testing.faults import INJECTED
from armada_hooks.testing.specs import job_request_item

if TYPE_CHECKING:
    from collections.abc import Callable

    from armada_hooks.testing.server import LocalArmada

CONN_ID = "armada_retries"
FAST = {"retry_wait_min": 0.01, "retry_wait_max": 0.05}
RETRYABLE = [
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED,
]
DRAWS = 2000


@pytest.fixture
def make_hook(
    local_armada: LocalArmada, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., ArmadaHook]:
    """``make_hook(rpc_timeout=5, **kwargs)``: a hook on an Airflow connection to the server."""

    def make(*, rpc_timeout: float = 5.0, **kwargs: Any) -> ArmadaHook:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{CONN_ID.upper()}",
            f"armada://{local_armada.target}?rpc_timeout={rpc_timeout}",
        )
        return ArmadaHook(CONN_ID, **{**FAST, **kwargs})

    return make


def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.01)


def _retry_warnings(logs: list[dict[str, Any]]) -> list[str]:
    return [
        str(entry["event"])
        for entry in logs
        if entry.get("log_level") == "warning" and "retrying" in str(entry["event"])
    ]


def _assert_retryable(exc: BaseException) -> None:
    assert isinstance(exc, AirflowException)
    assert not isinstance(exc, AirflowFailException)


# -- backoff: jitter ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delay", "width", "minima", "low", "high"),
    [
        (5.0, 1.0, 0.0, 4.0, 6.0),
        (0.5, 1.0, 0.0, 0.0, 1.5),  # the lower end is clamped at 0
        (5.0, 2.0, 4.0, 4.0, 7.0),  # ... and at minima
        (30.0, 10.0, 1.0, 20.0, 40.0),
    ],
)
@pytest.mark.parametrize("add_jitter", [backoff.add_jitter, ArmadaHook.add_jitter])
def test_add_jitter_stays_within_bounds_and_varies(
    add_jitter: Callable[[float, float, float], float],
    delay: float,
    width: float,
    minima: float,
    low: float,
    high: float,
) -> None:
    assert (low, high) == (max(minima, delay - width), max(minima, delay + width))
    draws = [add_jitter(delay, width, minima) for _ in range(DRAWS)]
    assert all(low <= d <= high for d in draws)
    # Uniform over the interval: with 2000 draws both tenths of it are hit (p(miss) ~ 1e-90).
    span = high - low
    assert min(draws) < low + span / 10
    assert max(draws) > high - span / 10
    assert len(set(draws)) > DRAWS // 2


def test_add_jitter_collapses_when_minima_exceeds_the_interval() -> None:
    # [max(3, 1 - 1), max(3, 1 + 1)] == [3, 3]
    assert {backoff.add_jitter(1.0, 1.0, 3.0) for _ in range(100)} == {3.0}


@pytest.mark.parametrize("add_jitter", [backoff.add_jitter, ArmadaHook.add_jitter])
def test_add_jitter_takes_negative_inputs_as_absolute(
    add_jitter: Callable[[float, float, float], float],
) -> None:
    draws = [add_jitter(-5.0, -1.0, -0.0) for _ in range(DRAWS)]
    assert all(4.0 <= d <= 6.0 for d in draws)
    assert min(draws) < 4.2
    assert max(draws) > 5.8
    clamped = [add_jitter(-5.0, -2.0, -4.5) for _ in range(DRAWS)]
    assert all(4.5 <= d <= 7.0 for d in clamped)
    assert min(clamped) < 4.75
    assert max(clamped) > 6.75
    assert {add_jitter(-1.0, -1.0, -3.0) for _ in range(100)} == {3.0}


def test_add_jitter_default_width_is_one_second() -> None:
    draws = [backoff.add_jitter(10.0) for _ in range(DRAWS)]
    assert all(9.0 <= d <= 11.0 for d in draws)
    assert min(draws) < 9.2
    assert max(draws) > 10.8


# -- backoff: the exponential schedule --------------------------------------------------


@pytest.mark.parametrize("cap", [60.0, 5.0])
def test_exponential_bounds_follow_the_documented_curve(cap: float) -> None:
    # The documented schedule: [d/3, d] with d = min(cap, 1 + (0.6 * tries)**2).
    for tries in range(31):
        d = min(cap, 1 + (0.6 * tries) ** 2)
        low, high = backoff.exponential_bounds(tries, cap)
        assert high == pytest.approx(d)
        assert low == pytest.approx(d / 3)
    uppers = [backoff.exponential_bounds(t, cap)[1] for t in range(31)]
    assert uppers == sorted(uppers)
    assert backoff.exponential_bounds(0, cap) == pytest.approx((1 / 3, 1.0))


def test_exponential_bounds_reach_the_default_cap_from_the_13th_try() -> None:
    assert backoff.DEFAULT_BACKOFF_CAP == 60.0
    for tries in range(13):
        assert backoff.exponential_bounds(tries, 60.0)[1] < 60.0
    for tries in range(13, 31):
        assert backoff.exponential_bounds(tries, 60.0) == pytest.approx((20.0, 60.0))
    assert backoff.exponential_bounds(-5, 60.0) == backoff.exponential_bounds(0, 60.0)


def test_exponential_delay_draws_within_its_bounds() -> None:
    for tries in range(31):
        low, high = backoff.exponential_bounds(tries, 60.0)
        draws = [backoff.exponential_delay(tries, 60.0) for _ in range(300)]
        assert all(low <= d <= high for d in draws), tries
        assert min(draws) < low + (high - low) / 4
        assert max(draws) > high - (high - low) / 4
    assert all(backoff.exponential_delay(20) <= 60.0 for _ in range(DRAWS))
    assert any(backoff.exponential_delay(20) > 45.0 for _ in range(DRAWS))


def test_hook_exponential_delay_honours_backoff_cap() -> None:
    capped = ArmadaHook(CONN_ID, backoff_cap=5.0)
    default = ArmadaHook(CONN_ID)
    assert default.backoff_cap == ArmadaHook.BACKOFF_CAP == backoff.DEFAULT_BACKOFF_CAP
    for tries in range(31):
        low, high = backoff.exponential_bounds(tries, 5.0)
        assert high <= 5.0
        draws = [capped.exponential_delay(tries) for _ in range(200)]
        assert all(low <= d <= high for d in draws), tries
    late = [capped.exponential_delay(30) for _ in range(DRAWS)]
    assert all(5.0 / 3 <= d <= 5.0 for d in late)
    default_late = [default.exponential_delay(30) for _ in range(DRAWS)]
    assert all(20.0 <= d <= 60.0 for d in default_late)
    assert max(default_late) > 5.0  # the cap belongs to the hook, not to the module


def test_total_wait_bounds_add_up_the_pauses() -> None:
    assert backoff.total_wait_bounds(0) == (0.0, 0.0)
    assert backoff.total_wait_bounds(1, 60.0) == pytest.approx((1 / 3, 1.0))
    low, high = backoff.total_wait_bounds(20, 60.0)
    parts = [backoff.exponential_bounds(t, 60.0) for t in range(20)]
    assert low == pytest.approx(sum(p[0] for p in parts))
    assert high == pytest.approx(sum(p[1] for p in parts))


def test_hook_delay_sleeps_within_the_jitter_bounds() -> None:
    hook = ArmadaHook(CONN_ID)
    start = time.monotonic()
    hook.delay(0.05)  # 0.05 ± 1 s, clamped at 0
    elapsed = time.monotonic() - start
    assert 0.0 <= elapsed <= 1.05 + 0.5  # + scheduling slack


# -- the class docstring's arithmetic ---------------------------------------------------


def _doc() -> str:
    assert ArmadaHook.__doc__
    return " ".join(ArmadaHook.__doc__.split())


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _round_like(value: float, stated: str) -> float:
    """``value`` rounded to the precision ``stated`` is written with ("604,000", "7.0")."""
    digits = stated.replace(",", "")
    if "." in digits:
        return round(value, len(digits.split(".")[1]))
    zeros = len(digits) - len(digits.rstrip("0"))
    return round(value, -zeros)


def test_docstring_total_wait_matches_the_code() -> None:
    doc = _doc()
    upper = re.search(r"at most .*?≈ ([\d,]+) s \((\d+\.\d+) days\)", doc)
    assert upper, doc
    lower = re.search(r"at least ≈ ([\d,]+) s \((\d+\.\d+) days\)", doc)
    assert lower, doc
    low, high = backoff.total_wait_bounds(ArmadaHook.MAX_RETRIES, ArmadaHook.BACKOFF_CAP)
    assert _number(upper.group(1)) == _round_like(high, upper.group(1))
    assert _number(upper.group(2)) == _round_like(high / 86400, upper.group(2))
    assert _number(lower.group(1)) == _round_like(low, lower.group(1))
    assert _number(lower.group(2)) == _round_like(low / 86400, lower.group(2))
    assert low < high


def test_docstring_retry_figures_match_the_code() -> None:
    doc = _doc()
    tries = re.search(r"``STATUS_RETRIES \+ 1`` = (\d+) times", doc)
    assert tries, doc
    assert int(tries.group(1)) == ArmadaHook.STATUS_RETRIES + 1
    waits = re.search(r"pausing ([\d.]+) to ([\d.]+) s between tries", doc)
    assert waits, doc
    assert float(waits.group(1)) == ArmadaHook.RETRY_WAIT_MIN
    assert float(waits.group(2)) == ArmadaHook.RETRY_WAIT_MAX
    curve = re.search(r"d = min\((\d+), 1 \+ \(0\.6·tries\)²\)", doc)
    assert curve, doc
    assert float(curve.group(1)) == ArmadaHook.BACKOFF_CAP


def test_docstring_poll_count_matches_the_polls_made(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    """The documented number of polls is the number ``poll_job_status`` makes by default.

    Measured on the server with a small ``max_retries``: polls = max_retries + 1 (the first
    poll, then one after each of ``max_retries`` pauses).
    """
    stated = re.search(r"([\d,]+) polls, each pause drawn once", _doc())
    assert stated, _doc()
    hook = make_hook(max_retries=3, acknowledgement_timeout=3600)
    with pytest.raises(ArmadaWaitTimeoutError, match=r"after 4 polls"):
        hook.poll_job_status("01unknownjob", {JobState.SUCCEEDED}, poll_interval=0.01)
    assert local_armada.rpc_count("GetJobStatus") == 3 + 1  # max_retries + 1 polls
    assert _number(stated.group(1)) == ArmadaHook.MAX_RETRIES + 1, (
        f"the docstring says {stated.group(1)} polls, but with max_retries=MAX_RETRIES "
        f"poll_job_status makes {ArmadaHook.MAX_RETRIES + 1} polls "
        f"({ArmadaHook.MAX_RETRIES} pauses)"
    )


# -- retries against the local Armada ---------------------------------------------------


def test_unavailable_three_times_then_success_is_one_logical_call(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=10)
    job_id = hook.submit_job("default", "retries", job_request_item())
    local_armada.reset_rpc_counts()
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=3)
    with structlog.testing.capture_logs() as logs:
        state = hook.get_job_status(job_id)
    assert state is not JobState.UNKNOWN  # the server's answer, not the missing-id default
    assert local_armada.rpc_count("GetJobStatus") == 4
    warnings = _retry_warnings(logs)
    assert len(warnings) == 3
    for number, message in enumerate(warnings, start=1):
        assert "GetJobStatus" in message
        assert "UNAVAILABLE" in message
        assert f"try {number} of 11" in message


@pytest.mark.parametrize("code", RETRYABLE, ids=lambda c: c.name)
def test_each_retryable_code_is_retried(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook], code: grpc.StatusCode
) -> None:
    hook = make_hook(status_retries=3)
    job_id = hook.submit_job("default", "retries", job_request_item())
    local_armada.reset_rpc_counts()
    local_armada.faults.fail("GetJobStatus", code, times=2)
    with structlog.testing.capture_logs() as logs:
        assert hook.get_job_status(job_id) is not JobState.UNKNOWN
    assert local_armada.rpc_count("GetJobStatus") == 3
    warnings = _retry_warnings(logs)
    assert len(warnings) == 2
    assert all("GetJobStatus" in w and code.name in w for w in warnings)


def test_non_retryable_internal_fails_after_one_call(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=5)
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.INTERNAL, times=100)
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises(ArmadaFatalRpcError) as info,
    ):
        hook.get_job_status("01somejob")
    assert local_armada.rpc_count("GetJobStatus") == 1
    assert _retry_warnings(logs) == []
    exc = info.value
    assert isinstance(exc, AirflowFailException)
    assert (exc.method, exc.code) == ("GetJobStatus", "INTERNAL")
    assert "GetJobStatus" in str(exc)
    assert "INTERNAL" in str(exc)
    assert INJECTED in str(exc)  # the server's own text reaches the user


def test_invalid_argument_on_submit_is_a_spec_error_at_once(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=5)
    local_armada.faults.fail("SubmitJobs", grpc.StatusCode.INVALID_ARGUMENT, times=100)
    with pytest.raises(ArmadaJobSpecError) as info:
        hook.submit_job("default", "retries", job_request_item(), client_id="spec-1")
    assert local_armada.rpc_count("SubmitJobs") == 1
    exc = info.value
    assert isinstance(exc, AirflowFailException)
    assert (exc.method, exc.code) == ("SubmitJobs", "INVALID_ARGUMENT")
    assert f"INVALID_ARGUMENT {INJECTED}" in str(exc)
    assert local_armada.jobs() == []


def test_server_validation_text_reaches_the_spec_error(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=5)
    with pytest.raises(ArmadaJobSpecError) as info:
        hook.submit_job("default", "retries", job_request_item(namespace=""))
    assert local_armada.rpc_count("SubmitJobs") == 1
    assert "namespace is a required field" in str(info.value)  # Armada's own words
    assert "Fix the job request" in str(info.value)
    assert isinstance(info.value, AirflowFailException)
    # the message says it all: no gRPC traceback is chained under it into the task log
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ is True
    assert "_InactiveRpcError" not in "".join(traceback.format_exception(info.value))


def test_unavailable_forever_gives_a_retryable_rpc_error_after_all_tries(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=3)
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=100)
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises(ArmadaRpcError) as info,
    ):
        hook.get_job_status("01somejob")
    assert local_armada.rpc_count("GetJobStatus") == 4
    exc = info.value
    assert type(exc) is ArmadaRpcError
    _assert_retryable(exc)
    assert (exc.method, exc.code) == ("GetJobStatus", "UNAVAILABLE")
    assert "4 tries" in str(exc)
    warnings = _retry_warnings(logs)
    assert len(warnings) == 3  # a warning before each retry, none after the last try
    assert all("GetJobStatus" in w and "UNAVAILABLE" in w for w in warnings)


async def test_async_calls_retry_like_sync_ones(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=3)
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=3)
    assert await hook.aget_job_status("01somejob") is JobState.UNKNOWN
    assert local_armada.rpc_count("GetJobStatus") == 4
    local_armada.reset_rpc_counts()
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.INTERNAL, times=100)
    with pytest.raises(ArmadaFatalRpcError):
        await hook.aget_job_status("01somejob")
    assert local_armada.rpc_count("GetJobStatus") == 1


# -- submit idempotency -----------------------------------------------------------------


def test_submit_without_client_id_is_not_retried_on_deadline_exceeded(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=3)
    local_armada.faults.fail("SubmitJobs", grpc.StatusCode.DEADLINE_EXCEEDED, times=1)
    with pytest.raises(ArmadaRpcError) as info:
        hook.submit_job("default", "retries", job_request_item())
    assert local_armada.rpc_count("SubmitJobs") == 1
    exc = info.value
    _assert_retryable(exc)
    assert (exc.method, exc.code) == ("SubmitJobs", "DEADLINE_EXCEEDED")


def test_submit_error_message_counts_the_tries_actually_made(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    """A submit that was not retried must not claim it gave up after several tries."""
    hook = make_hook(status_retries=3)
    local_armada.faults.fail("SubmitJobs", grpc.StatusCode.DEADLINE_EXCEEDED, times=1)
    with pytest.raises(ArmadaRpcError) as info:
        hook.submit_job("default", "retries", job_request_item())
    made = local_armada.rpc_count("SubmitJobs")
    assert made == 1
    claimed = [int(n) for n in re.findall(r"after (\d+) tries", str(info.value))]
    assert all(n == made for n in claimed), str(info.value)


def test_submit_without_client_id_is_retried_on_unavailable(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=3)
    local_armada.faults.fail("SubmitJobs", grpc.StatusCode.UNAVAILABLE, times=2)
    job_id = hook.submit_job("default", "retries", job_request_item())
    assert local_armada.rpc_count("SubmitJobs") == 3
    assert [j.job_id for j in local_armada.jobs()] == [job_id]


def test_submit_with_client_id_is_retried_on_deadline_exceeded(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=3)
    local_armada.faults.fail("SubmitJobs", grpc.StatusCode.DEADLINE_EXCEEDED, times=2)
    job_id = hook.submit_job("default", "retries", job_request_item(), client_id="idem-1")
    assert local_armada.rpc_count("SubmitJobs") == 3
    jobs = local_armada.jobs()
    assert len(jobs) == 1
    assert (jobs[0].job_id, jobs[0].client_id) == (job_id, "idem-1")


def test_submit_with_client_id_survives_a_real_deadline_without_a_twin(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    """The first try's deadline expires while Armada is still accepting the job.

    Armada does create that job; the retry carries the same client id, so it gets the
    same job back instead of a twin.
    """
    hook = make_hook(rpc_timeout=0.5, status_retries=3, retry_wait_min=1.5, retry_wait_max=1.5)
    hook.client  # noqa: B018 - open the channel before the clock starts
    local_armada.faults.delay("SubmitJobs", 1.0)

    def clear_once_accepted() -> None:  # the first call was admitted with its 1 s latency
        _wait_until(lambda: bool(local_armada.jobs()))
        local_armada.faults.clear()

    clearer = threading.Thread(target=clear_once_accepted, daemon=True)
    clearer.start()
    with structlog.testing.capture_logs() as logs:
        job_id = hook.submit_job("default", "retries", job_request_item(), client_id="idem-2")
    clearer.join(timeout=10)
    assert local_armada.rpc_count("SubmitJobs") == 2
    assert any("DEADLINE_EXCEEDED" in w for w in _retry_warnings(logs))
    jobs = local_armada.jobs()
    assert [(j.job_id, j.client_id) for j in jobs] == [(job_id, "idem-2")]


def test_submit_without_client_id_is_not_retried_after_a_real_deadline(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    """Why the rule exists: Armada accepted the timed-out request, so a retry would twin it."""
    hook = make_hook(rpc_timeout=0.3, status_retries=3)
    hook.client  # noqa: B018
    local_armada.faults.delay("SubmitJobs", 0.8)
    with pytest.raises(ArmadaRpcError) as info:
        hook.submit_job("default", "retries", job_request_item())
    assert info.value.code == "DEADLINE_EXCEEDED"
    _wait_until(lambda: bool(local_armada.jobs()))
    assert local_armada.rpc_count("SubmitJobs") == 1
    assert len(local_armada.jobs()) == 1


# -- retry waits and constructor validation ---------------------------------------------


def test_retry_waits_respect_retry_wait_min(
    local_armada: LocalArmada, make_hook: Callable[..., ArmadaHook]
) -> None:
    hook = make_hook(status_retries=3, retry_wait_min=0.2, retry_wait_max=0.2)
    hook.get_job_status("01warmup")  # channel set up outside the measurement
    local_armada.reset_rpc_counts()
    local_armada.faults.fail("GetJobStatus", grpc.StatusCode.UNAVAILABLE, times=2)
    start = time.monotonic()
    hook.get_job_status("01somejob")
    elapsed = time.monotonic() - start
    assert local_armada.rpc_count("GetJobStatus") == 3
    assert elapsed >= 0.39  # two pauses of exactly 0.2 s
    assert elapsed < 10.0  # loose: the pauses are bounded by retry_wait_max


@pytest.mark.parametrize(
    "name",
    [
        "max_retries",
        "status_retries",
        "retry_wait_min",
        "retry_wait_max",
        "backoff_cap",
        "acknowledgement_timeout",
    ],
)
def test_constructor_rejects_negative_settings(name: str) -> None:
    kwargs: dict[str, Any] = {name: -1}
    if name == "retry_wait_min":
        kwargs["retry_wait_max"] = 1.0
    with pytest.raises(ValueError, match=name):
        ArmadaHook(CONN_ID, **kwargs)
    zero: dict[str, Any] = {name: 0}
    if name == "retry_wait_max":
        zero["retry_wait_min"] = 0
    ArmadaHook(CONN_ID, **zero)  # zero is allowed


def test_constructor_rejects_min_wait_above_max_wait() -> None:
    with pytest.raises(ValueError, match="retry_wait_min"):
        ArmadaHook(CONN_ID, retry_wait_min=2.0, retry_wait_max=1.0)
    hook = ArmadaHook(CONN_ID, retry_wait_min=1.0, retry_wait_max=1.0)
    assert (hook.retry_wait_min, hook.retry_wait_max) == (1.0, 1.0)


def test_constructor_defaults_come_from_the_class() -> None:
    hook = ArmadaHook(CONN_ID)
    assert hook.max_retries == ArmadaHook.MAX_RETRIES
    assert hook.status_retries == ArmadaHook.STATUS_RETRIES
    assert hook.retry_wait_min == ArmadaHook.RETRY_WAIT_MIN
    assert hook.retry_wait_max == ArmadaHook.RETRY_WAIT_MAX
    assert hook.backoff_cap == ArmadaHook.BACKOFF_CAP
