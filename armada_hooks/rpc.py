"""RPC plumbing: which gRPC codes are retried, how, and what each failure becomes.

The hook, the log fetcher and the event watch all call Armada through these pieces, so
one status code means one thing everywhere: :func:`call` / :func:`acall` retry the
retryable codes with jittered exponential waits (tenacity) and turn what is left into
the typed errors of :mod:`armada_hooks.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import grpc
import tenacity

from armada_hooks.defaults import MAX_QUERY_IDS

if TYPE_CHECKING:
    from armada_hooks.errors import ArmadaError

T = TypeVar("T")

RETRYABLE_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)
# A submit without client ids is not idempotent: retry it only where Armada cannot have
# accepted it (overloaded, or the connection never carried the request).
UNSENT_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
MIN_RETRY_MULTIPLIER = 0.1  # seconds; a zero multiplier would never back off


def status_code(exc: BaseException) -> grpc.StatusCode | None:
    """The gRPC status code ``exc`` carries, or None if it is not (fully) an RPC error."""
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            value = code()
        except Exception:  # a half-built RpcError: not a status we can act on
            return None
        return value if isinstance(value, grpc.StatusCode) else None
    return None


def status_details(exc: BaseException) -> str:
    """The server's message of an RPC error (``str(exc)`` for anything else)."""
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            return str(details() or "")
        except Exception:
            return ""
    return str(exc)


def describe_failure(exc: BaseException) -> str:
    """``CODE: details`` for an RPC error, ``Type: message`` for anything else."""
    code = status_code(exc)
    return f"{code.name if code else type(exc).__name__}: {status_details(exc)}"


def chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` in runs of at most ``MAX_QUERY_IDS``, the most one query may ask about."""
    return [ids[i : i + MAX_QUERY_IDS] for i in range(0, len(ids), MAX_QUERY_IDS)]


class _Warns(Protocol):
    def warning(self, msg: str, /, *args: Any) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How one RPC is retried, and what its failures become.

    ``retries`` more tries on a retryable code, waiting a jittered exponential
    ``wait_min`` .. ``wait_max`` seconds between them. ``conn_id`` names the Airflow
    connection in error messages. With ``typed`` False a failure left over is raised as
    gRPC raised it: the job service, a process without Airflow, uses that, since the
    typed errors (:mod:`armada_hooks.errors`) are Airflow exceptions and importing them
    loads Airflow.
    """

    retries: int
    wait_min: float
    wait_max: float
    conn_id: str
    log: _Warns
    typed: bool = True

    def pause(self, tries: int) -> float:
        """Seconds before try ``tries + 1`` of something retried by hand (no jitter).

        ``wait_min`` (at least ``MIN_RETRY_MULTIPLIER``), doubling, at most ``wait_max``.
        """
        first = max(self.wait_min, MIN_RETRY_MULTIPLIER)
        return float(min(self.wait_max, first * 2 ** max(tries - 1, 0)))

    def _tenacity(self, method: str, codes: frozenset[grpc.StatusCode]) -> dict[str, Any]:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            code = status_code(exc) if exc else None
            self.log.warning(
                "Armada %s failed with %s (try %d of %d); retrying",
                method,
                code.name if code else type(exc).__name__,
                state.attempt_number,
                self.retries + 1,
            )

        return {
            "retry": tenacity.retry_if_exception(lambda exc: status_code(exc) in codes),
            "stop": tenacity.stop_after_attempt(self.retries + 1),
            "wait": tenacity.wait_random_exponential(
                multiplier=max(self.wait_min, MIN_RETRY_MULTIPLIER),
                min=self.wait_min,
                max=self.wait_max,
            ),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def translate(
        self,
        exc: BaseException,
        method: str,
        queue: str | None = None,
        tries: int = 1,
        retried: frozenset[grpc.StatusCode] = RETRYABLE_CODES,
    ) -> ArmadaError:
        """The typed error for a failed RPC; its message says what to fix."""
        from armada_hooks.errors import (
            ArmadaAuthError,
            ArmadaFatalRpcError,
            ArmadaJobSpecError,
            ArmadaNotFoundError,
            ArmadaRpcError,
        )

        code = status_code(exc)
        where = f"Armada {method} failed"
        if code is None:
            return ArmadaRpcError(f"{where}: {type(exc).__name__}: {exc}", method=method)
        text = f"{where} with {code.name}: {status_details(exc)}"
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            return ArmadaJobSpecError(
                f"{text}. Fix the job request; retrying cannot help.", method=method, code=code.name
            )
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            scope = f" for queue {queue!r}" if queue else ""
            return ArmadaAuthError(
                f"{text}. Check the credentials of Airflow connection {self.conn_id!r} "
                f"and its permissions{scope}.",
                method=method,
                code=code.name,
            )
        if code is grpc.StatusCode.NOT_FOUND:
            return ArmadaNotFoundError(text, method=method, code=code.name)
        if code in RETRYABLE_CODES:
            if code in retried:
                why = f"gave up after {tries} {'try' if tries == 1 else 'tries'}"
            else:
                why = "not retried: a submit without client ids is not idempotent"
            return ArmadaRpcError(f"{text} ({why})", method=method, code=code.name)
        return ArmadaFatalRpcError(text, method=method, code=code.name)

    @contextlib.contextmanager
    def _typed_errors(
        self,
        retrying: tenacity.BaseRetrying,
        method: str,
        queue: str | None,
        codes: frozenset[grpc.StatusCode],
    ) -> Iterator[None]:
        """Turn an RPC error that is left after the retries into a typed error."""
        try:
            yield
        except Exception as exc:
            if not self.typed:
                raise
            from armada_hooks.errors import ArmadaError

            if isinstance(exc, ArmadaError) or not (
                isinstance(exc, grpc.RpcError) or status_code(exc) is not None
            ):
                raise
            tries = int(retrying.statistics.get("attempt_number", 1))
            # The typed error names the call, the code and Armada's words: gRPC's own
            # traceback under it would only be noise in a task's log.
            raise self.translate(exc, method, queue, tries, codes) from None

    def call(
        self,
        method: str,
        fn: Callable[..., T],
        *args: Any,
        queue: str | None = None,
        codes: frozenset[grpc.StatusCode] = RETRYABLE_CODES,
    ) -> T:
        """``fn(*args)``, retried on ``codes``; a failure left over raises a typed error."""
        retrying = tenacity.Retrying(**self._tenacity(method, codes))
        with self._typed_errors(retrying, method, queue, codes):
            return retrying(fn, *args)
        raise AssertionError("unreachable")  # pragma: no cover

    async def acall(
        self,
        method: str,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        queue: str | None = None,
        codes: frozenset[grpc.StatusCode] = RETRYABLE_CODES,
    ) -> T:
        """Async :meth:`call`: the same retries and errors, awaiting ``fn(*args)``."""
        retrying = tenacity.AsyncRetrying(**self._tenacity(method, codes))
        with self._typed_errors(retrying, method, queue, codes):
            return await retrying(fn, *args)
        raise AssertionError("unreachable")  # pragma: no cover


async def gather_all(calls: Iterable[Awaitable[T]]) -> list[T]:
    """Await ``calls`` concurrently; the first failure is raised once all have settled.

    (So that no second failure goes unobserved.)
    """
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast("list[T]", results)
