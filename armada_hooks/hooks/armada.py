"""``ArmadaHook``: Armada's job API for Airflow — submit, poll with backoff, wait, check, cancel.

The surface follows the AWS Batch hook (``client``, ``poll_job_status``,
``poll_for_job_running``/``_complete``, ``get_job_description``, ``wait_for_job`` with a
log fetcher, ``check_job_success``, ``add_jitter``, ``delay``, ``exponential_delay``) with
Armada's semantics and without that hook's flaws: no sleep before the first poll, no
jitter on top of jitter, every bound configurable, a deadline on every RPC, retries only
on retryable gRPC codes, FAILED kept apart from REJECTED, and a job that never reaches
Armada's query API cancelled after an acknowledgement timeout instead of polled forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import grpc
import tenacity
from google.protobuf import json_format

from armada_hooks import backoff
from armada_hooks._compat import BaseHook
from armada_hooks.errors import (
    ArmadaAuthError,
    ArmadaConnectionError,
    ArmadaError,
    ArmadaFatalRpcError,
    ArmadaJobError,
    ArmadaJobFailedError,
    ArmadaJobLostError,
    ArmadaJobNotFinishedError,
    ArmadaJobRejectedError,
    ArmadaJobSpecError,
    ArmadaNotFoundError,
    ArmadaRpcError,
    ArmadaWaitTimeoutError,
)
from armada_hooks.hooks.connection import ArmadaConnectionConfig
from armada_hooks.job_description import JobDescription, parse_job_details
from armada_hooks.states import (
    FAILURE_STATES,
    SUCCESS_STATES,
    TERMINAL_STATES,
    JobState,
)

if TYPE_CHECKING:
    from armada_client.armada import submit_pb2

    from armada_hooks.hooks.logs import ArmadaLogFetcher, LineLogger
    from armada_hooks.protocols import ArmadaProtocol, AsyncArmadaProtocol, LogProtocol

T = TypeVar("T")

MAX_QUERY_IDS = 500  # Armada's query API refuses more ids per request
DEFAULT_ACKNOWLEDGEMENT_TIMEOUT = 300.0
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
RUNNING_STATES = frozenset({JobState.RUNNING}) | TERMINAL_STATES
INTERMEDIATE_STATES = frozenset(JobState) - TERMINAL_STATES - {JobState.RUNNING}


def _code(exc: BaseException) -> grpc.StatusCode | None:
    code = getattr(exc, "code", None)
    if callable(code):
        try:
            value = code()
        except Exception:  # a half-built RpcError: not a status we can act on
            return None
        return value if isinstance(value, grpc.StatusCode) else None
    return None


def _details(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            return str(details() or "")
        except Exception:
            return ""
    return str(exc)


def _chunks(ids: list[str]) -> list[list[str]]:
    """``ids`` in runs of at most ``MAX_QUERY_IDS``, the most one query may ask about."""
    return [ids[i : i + MAX_QUERY_IDS] for i in range(0, len(ids), MAX_QUERY_IDS)]


def _failed(task: asyncio.Future[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


class ArmadaHook(BaseHook):
    """Talks to Armada over an ``armada`` Airflow connection (or any client you pass in).

    :param armada_conn_id: the Airflow connection (see :mod:`.connection` for its fields).
    :param client: an :class:`~armada_hooks.protocols.ArmadaProtocol` to use instead of
        building ``armada_client.ArmadaClient`` from the connection.
    :param async_client: likewise, an :class:`~armada_hooks.protocols.AsyncArmadaProtocol`.
    :param log_client_factory: ``cluster -> LogProtocol | None``, instead of Binoculars
        targets from the connection.
    :param max_retries: pauses before :meth:`poll_job_status` gives up (it polls
        ``max_retries + 1`` times).
    :param status_retries: retries of one RPC on a retryable gRPC code.
    :param retry_wait_min: least seconds between RPC retries (jittered exponential).
    :param retry_wait_max: most seconds between RPC retries.
    :param backoff_cap: longest pause between polls.
    :param acknowledgement_timeout: seconds a job may stay UNKNOWN before it is taken as
        lost, cancelled and reported with :class:`~armada_hooks.errors.ArmadaJobLostError`.

    With the defaults, :meth:`poll_job_status` waits at most
    ``backoff.total_wait_bounds(MAX_RETRIES)[1]`` ≈ 604,000 s (7.0 days) and at least
    ≈ 201,000 s (2.3 days) before giving up: 10,080 pauses between 10,081 polls, each pause
    drawn once from ``[d/3, d]`` with ``d = min(60, 1 + (0.6·tries)²)`` — 1 s at first,
    60 s from the 14th pause on. One RPC is tried ``STATUS_RETRIES + 1`` = 11 times at most, pausing
    0.5 to 10 s between tries, before an :class:`~armada_hooks.errors.ArmadaRpcError`.
    """

    conn_name_attr = "armada_conn_id"
    default_conn_name = "armada_default"
    conn_type = "armada"
    hook_name = "Armada"

    MAX_RETRIES: ClassVar[int] = 10_080
    STATUS_RETRIES: ClassVar[int] = 10
    DEFAULT_DELAY_MIN: ClassVar[float] = backoff.DEFAULT_DELAY_MIN
    DEFAULT_DELAY_MAX: ClassVar[float] = backoff.DEFAULT_DELAY_MAX
    BACKOFF_CAP: ClassVar[float] = backoff.DEFAULT_BACKOFF_CAP
    RETRY_WAIT_MIN: ClassVar[float] = 0.5
    RETRY_WAIT_MAX: ClassVar[float] = 10.0
    SUCCESS_STATES: ClassVar[frozenset[JobState]] = SUCCESS_STATES
    FAILURE_STATES: ClassVar[frozenset[JobState]] = FAILURE_STATES
    INTERMEDIATE_STATES: ClassVar[frozenset[JobState]] = INTERMEDIATE_STATES
    TERMINAL_STATES: ClassVar[frozenset[JobState]] = TERMINAL_STATES
    RUNNING_STATES: ClassVar[frozenset[JobState]] = RUNNING_STATES

    def __init__(
        self,
        armada_conn_id: str = default_conn_name,
        *,
        client: ArmadaProtocol | None = None,
        async_client: AsyncArmadaProtocol | None = None,
        log_client_factory: Callable[[str], LogProtocol | None] | None = None,
        max_retries: int | None = None,
        status_retries: int | None = None,
        retry_wait_min: float | None = None,
        retry_wait_max: float | None = None,
        backoff_cap: float | None = None,
        acknowledgement_timeout: float = DEFAULT_ACKNOWLEDGEMENT_TIMEOUT,
    ) -> None:
        super().__init__()
        self.armada_conn_id = armada_conn_id
        self._client = client
        self._async_client = async_client
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._log_client_factory = log_client_factory
        self.max_retries = self.MAX_RETRIES if max_retries is None else max_retries
        self.status_retries = self.STATUS_RETRIES if status_retries is None else status_retries
        self.retry_wait_min = self.RETRY_WAIT_MIN if retry_wait_min is None else retry_wait_min
        self.retry_wait_max = self.RETRY_WAIT_MAX if retry_wait_max is None else retry_wait_max
        self.backoff_cap = self.BACKOFF_CAP if backoff_cap is None else backoff_cap
        self.acknowledgement_timeout = acknowledgement_timeout
        for name in ("max_retries", "status_retries"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("retry_wait_min", "retry_wait_max", "backoff_cap", "acknowledgement_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)}")
        if self.retry_wait_min > self.retry_wait_max:
            raise ValueError("retry_wait_min must not exceed retry_wait_max")
        self._submitted: dict[str, tuple[str, str, float]] = {}
        self._seen: dict[str, JobState] = {}  # last state logged per job
        self._log_clients: dict[str, LogProtocol | None] = {}
        self._config_loading: asyncio.Task[ArmadaConnectionConfig] | None = None

    # -- connection and clients ------------------------------------------------------

    @cached_property
    def config(self) -> ArmadaConnectionConfig:
        """The connection's settings, parsed and checked once."""
        try:
            conn = self.get_connection(self.armada_conn_id)
        except ArmadaError:
            raise
        except Exception as exc:
            raise self._unloadable(exc) from exc
        return ArmadaConnectionConfig.from_connection(conn)

    async def aload_config(self) -> ArmadaConnectionConfig:
        """Load the connection without blocking the event loop (triggers call this first).

        Concurrent callers share one lookup; a failed lookup is tried again by the next call.
        """
        if "config" not in self.__dict__:
            loading = self._config_loading
            loop = asyncio.get_running_loop()
            if loading is None or loading.get_loop() is not loop or _failed(loading):
                loading = self._config_loading = loop.create_task(self._fetch_config())
            self.__dict__.setdefault("config", await asyncio.shield(loading))
        return self.config

    async def _fetch_config(self) -> ArmadaConnectionConfig:
        try:
            conn = await self.aget_connection(self.armada_conn_id)
        except Exception as exc:
            raise self._unloadable(exc) from exc
        return ArmadaConnectionConfig.from_connection(conn)

    def _unloadable(self, exc: Exception) -> ArmadaConnectionError:
        env = f"AIRFLOW_CONN_{self.armada_conn_id.upper()}"
        return ArmadaConnectionError(
            f"Airflow connection {self.armada_conn_id!r} could not be loaded ({exc}); "
            f"define it, e.g. {env}='armada://armada.example.com:50051'"
        )

    @property
    def client(self) -> ArmadaProtocol:
        """The synchronous client: the one passed in, or ``ArmadaClient`` on the connection."""
        if self._client is None:
            from armada_client.client import ArmadaClient

            from armada_hooks.channels import open_channel

            self._client = ArmadaClient(open_channel(self.config.channel_spec()))
        return self._client

    @property
    def async_client(self) -> AsyncArmadaProtocol:
        """The asyncio client: the one passed in, or ``ArmadaAsyncIOClient`` on the connection.

        A built client belongs to the running event loop; a new loop gets a new channel.
        """
        if self._async_client is not None and self._async_loop is None:
            return self._async_client  # passed in: the caller owns its loop
        loop = asyncio.get_running_loop()
        if self._async_client is None or self._async_loop is not loop:
            from armada_client.asyncio_client import ArmadaAsyncIOClient

            from armada_hooks.channels import open_aio_channel

            channel = open_aio_channel(self.config.channel_spec())
            self._async_client = cast("AsyncArmadaProtocol", ArmadaAsyncIOClient(channel))
            self._async_loop = loop
        return self._async_client

    def get_conn(self) -> ArmadaProtocol:
        """The synchronous client (Airflow's hook API)."""
        return self.client

    def log_client(self, cluster: str) -> LogProtocol | None:
        """The log client for ``cluster``; None when no Binoculars target is configured."""
        if cluster not in self._log_clients:
            if self._log_client_factory is not None:
                self._log_clients[cluster] = self._log_client_factory(cluster)
            else:
                target = self.config.binoculars_for(cluster)
                if target is None:
                    self._log_clients[cluster] = None
                else:
                    from armada_hooks.channels import open_channel
                    from armada_hooks.hooks.logs import BinocularsLogClient

                    channel = open_channel(self.config.channel_spec(target))
                    self._log_clients[cluster] = BinocularsLogClient(channel)
        return self._log_clients[cluster]

    def test_connection(self) -> tuple[bool, str]:
        """Call both Health RPCs once; report which failed and why (Airflow's UI button)."""
        injected = self._client is not None
        problems = []
        for name, call in (
            ("Submit", self.client.submit_health),
            ("Event", self.client.event_health),
        ):
            try:
                call()
            except Exception as exc:
                code = _code(exc)
                problems.append(
                    f"{name} health: {code.name if code else type(exc).__name__}: {_details(exc)}"
                )
        if problems:
            return False, "; ".join(problems)
        where = "the Armada client passed in" if injected else f"Armada at {self.config.target}"
        return True, f"{where} is healthy (Submit and Event services answer)"

    # -- backoff (the AWS Batch hook's surface) ---------------------------------------

    @staticmethod
    def add_jitter(delay: float, width: float = 1.0, minima: float = 0.0) -> float:
        """``delay`` ± ``width`` uniformly, never below ``minima``."""
        return backoff.add_jitter(delay, width, minima)

    def exponential_delay(self, tries: int) -> float:
        """Pause before poll ``tries + 1``: [d/3, d] with d = min(cap, 1 + (0.6·tries)²)."""
        return backoff.exponential_delay(tries, self.backoff_cap)

    def delay(self, delay: float | None = None) -> None:
        """Sleep ``delay`` ± 1 s, or between ``DEFAULT_DELAY_MIN`` and ``_MAX`` when None."""
        if delay is None:
            pause = backoff.add_jitter(
                (self.DEFAULT_DELAY_MIN + self.DEFAULT_DELAY_MAX) / 2,
                (self.DEFAULT_DELAY_MAX - self.DEFAULT_DELAY_MIN) / 2,
                self.DEFAULT_DELAY_MIN,
            )
        else:
            pause = backoff.add_jitter(delay)
        time.sleep(pause)

    # -- RPCs with retries and typed errors -------------------------------------------

    def _retrying_kwargs(self, method: str, codes: frozenset[grpc.StatusCode]) -> dict[str, Any]:
        def retryable(exc: BaseException) -> bool:
            return _code(exc) in codes

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            code = _code(exc) if exc else None
            self.log.warning(
                "Armada %s failed with %s (try %d of %d); retrying",
                method,
                code.name if code else type(exc).__name__,
                state.attempt_number,
                self.status_retries + 1,
            )

        return {
            "retry": tenacity.retry_if_exception(retryable),
            "stop": tenacity.stop_after_attempt(self.status_retries + 1),
            "wait": tenacity.wait_random_exponential(
                multiplier=max(self.retry_wait_min, 0.1),  # a zero multiplier never backs off
                min=self.retry_wait_min,
                max=self.retry_wait_max,
            ),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def _translate(
        self,
        exc: BaseException,
        method: str,
        queue: str | None,
        tries: int = 1,
        retried: frozenset[grpc.StatusCode] = RETRYABLE_CODES,
    ) -> ArmadaError:
        code = _code(exc)
        details = _details(exc)
        where = f"Armada {method} failed"
        if code is None:
            return ArmadaRpcError(f"{where}: {type(exc).__name__}: {exc}", method=method)
        text = f"{where} with {code.name}: {details}"
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            return ArmadaJobSpecError(
                f"{text}. Fix the job request; retrying cannot help.", method=method, code=code.name
            )
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            scope = f" for queue {queue!r}" if queue else ""
            return ArmadaAuthError(
                f"{text}. Check the credentials of Airflow connection {self.armada_conn_id!r} "
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

    def _call(
        self,
        method: str,
        fn: Callable[..., T],
        *args: Any,
        queue: str | None = None,
        codes: frozenset[grpc.StatusCode] = RETRYABLE_CODES,
    ) -> T:
        tries = 0
        try:
            for attempt in tenacity.Retrying(**self._retrying_kwargs(method, codes)):
                with attempt:
                    tries += 1
                    return fn(*args)
        except ArmadaError:
            raise
        except Exception as exc:
            if isinstance(exc, grpc.RpcError) or _code(exc) is not None:
                raise self._translate(exc, method, queue, tries, codes) from exc
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acall(
        self,
        method: str,
        fn: Callable[..., Awaitable[T]],
        *args: Any,
        queue: str | None = None,
        codes: frozenset[grpc.StatusCode] = RETRYABLE_CODES,
    ) -> T:
        tries = 0
        try:
            async for attempt in tenacity.AsyncRetrying(**self._retrying_kwargs(method, codes)):
                with attempt:
                    tries += 1
                    return await fn(*args)
        except ArmadaError:
            raise
        except Exception as exc:
            if isinstance(exc, grpc.RpcError) or _code(exc) is not None:
                raise self._translate(exc, method, queue, tries, codes) from exc
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- submit and cancel ------------------------------------------------------------

    @staticmethod
    def build_job_request_item(
        item: submit_pb2.JobSubmitRequestItem | Mapping[str, Any],
    ) -> submit_pb2.JobSubmitRequestItem:
        """A copy of ``item``; a dict in Armada's JSON form is parsed, naming any bad field."""
        from armada_client.armada import submit_pb2

        if isinstance(item, submit_pb2.JobSubmitRequestItem):
            copy = submit_pb2.JobSubmitRequestItem()
            copy.CopyFrom(item)
            return copy
        if isinstance(item, Mapping):
            try:
                return json_format.ParseDict(dict(item), submit_pb2.JobSubmitRequestItem())
            except json_format.ParseError as exc:
                raise ArmadaJobSpecError(
                    f"job request is not a valid JobSubmitRequestItem: {exc}"
                ) from None
        raise ArmadaJobSpecError(
            f"job request must be a JobSubmitRequestItem or a dict in its JSON form, "
            f"not {type(item).__name__}"
        )

    def submit_jobs(
        self,
        queue: str,
        job_set_id: str,
        items: Sequence[submit_pb2.JobSubmitRequestItem | Mapping[str, Any]],
        client_ids: Sequence[str | None] | None = None,
    ) -> list[str]:
        """Submit ``items`` in one request; their job ids, in order.

        A ``client_id`` (on the item or in ``client_ids``) makes a submission idempotent:
        Armada returns the original job id for a repeat. Without client ids a submit is
        retried only on codes where Armada cannot have accepted it.
        """
        _check_name("queue", queue)
        _check_name("job_set_id", job_set_id)
        requests = [self.build_job_request_item(item) for item in items]
        if not requests:
            raise ArmadaJobSpecError("submit_jobs needs at least one job request item")
        if client_ids is not None:
            if len(client_ids) != len(requests):
                raise ValueError("client_ids must have one entry per item")
            for request, client_id in zip(requests, client_ids, strict=True):
                if client_id:
                    request.client_id = client_id
        idempotent = all(r.client_id for r in requests)
        response = self._call(
            "SubmitJobs",
            self.client.submit_jobs,
            queue,
            job_set_id,
            requests,
            queue=queue,
            codes=RETRYABLE_CODES if idempotent else UNSENT_CODES,
        )
        return self._job_ids(response, queue, job_set_id, len(requests))

    def _job_ids(
        self, response: submit_pb2.JobSubmitResponse, queue: str, job_set_id: str, expected: int
    ) -> list[str]:
        items = list(response.job_response_items)
        errors = [f"item {i}: {item.error}" for i, item in enumerate(items) if item.error]
        if errors:
            raise ArmadaJobSpecError(
                f"Armada refused job request items in queue {queue!r}: {'; '.join(errors)}",
                method="SubmitJobs",
                code="INVALID_ARGUMENT",
            )
        if len(items) != expected or not all(item.job_id for item in items):
            raise ArmadaRpcError(
                f"Armada answered SubmitJobs with {len(items)} job ids for {expected} items",
                method="SubmitJobs",
            )
        now = time.monotonic()
        for item in items:
            self._submitted.setdefault(item.job_id, (queue, job_set_id, now))
        return [item.job_id for item in items]

    def submit_job(
        self,
        queue: str,
        job_set_id: str,
        item: submit_pb2.JobSubmitRequestItem | Mapping[str, Any],
        client_id: str | None = None,
    ) -> str:
        """Submit one job; its id. With ``client_id``, a repeat returns the same job."""
        return self.submit_jobs(queue, job_set_id, [item], [client_id])[0]

    def cancel_job(self, queue: str, job_set_id: str, job_id: str) -> JobState:
        """Ask Armada to cancel ``job_id``; the state Armada reports right after.

        An already-ended job is left alone and its final state returned (no cancel is
        sent). Armada cancels asynchronously: the answer may still be an active state.
        """
        state = self.get_job_status(job_id)
        if state in TERMINAL_STATES:
            self.log.info("Armada job %s already ended %s; not cancelling it", job_id, state.name)
            return state
        self._call("CancelJobs", self.client.cancel_jobs, queue, job_set_id, job_id, queue=queue)
        after = self.get_job_status(job_id)
        self.log.info(
            "Asked Armada to cancel job %s (was %s, now %s)", job_id, state.name, after.name
        )
        return after

    # -- status and descriptions ------------------------------------------------------

    def get_job_statuses(self, job_ids: Iterable[str]) -> dict[str, JobState]:
        """States of any number of jobs, asked in chunks of 500; missing ids read UNKNOWN."""
        ids = list(dict.fromkeys(job_ids))
        states: dict[str, JobState] = {}
        for chunk in _chunks(ids):
            response = self._call("GetJobStatus", self.client.get_job_status, chunk)
            states.update(_states(chunk, response.job_states))
        return states

    def get_job_status(self, job_id: str) -> JobState:
        """The state of one job (UNKNOWN until Armada's query API has it)."""
        return self.get_job_statuses([job_id])[job_id]

    @staticmethod
    def parse_job_description(details: Any, reason: str = "") -> JobDescription:
        """A :class:`~armada_hooks.job_description.JobDescription` from ``JobDetails``."""
        return parse_job_details(details, reason)

    def get_job_description(self, job_id: str) -> JobDescription:
        """State, placement, times, and (for a failed job) Armada's reason."""
        response = self._call("GetJobDetails", self.client.get_job_details, [job_id])
        if job_id not in response.job_details:
            return JobDescription(job_id=job_id, state=JobState.UNKNOWN)
        details = response.job_details[job_id]
        reason = ""
        if JobState(details.state) in FAILURE_STATES:
            errors = self._call("GetJobErrors", self.client.get_job_errors, [job_id])
            reason = errors.job_errors.get(job_id, "")
        return parse_job_details(details, reason)

    def find_jobs_by_external_uri(self, queue: str, job_set_id: str, uri: str) -> list[str]:
        """Every job of (queue, job set) submitted with ``uri``, oldest first."""
        response = self._call(
            "GetJobStatusUsingExternalJobUri",
            self.client.get_job_status_by_external_job_uri,
            queue,
            job_set_id,
            uri,
            queue=queue,
        )
        ids = list(getattr(response, "job_states", {}))
        if len(ids) > 1:
            details = self._call("GetJobDetails", self.client.get_job_details, ids).job_details
            stamps = {i: d.submitted_ts.ToNanoseconds() for i, d in details.items()}
            ids.sort(key=lambda i: (stamps.get(i, -1), i))
        return ids

    def find_job_by_external_uri(self, queue: str, job_set_id: str, uri: str) -> str | None:
        """The newest job of (queue, job set) submitted with ``uri``, or None."""
        ids = self.find_jobs_by_external_uri(queue, job_set_id, uri)
        return ids[-1] if ids else None

    # -- polling and waiting ----------------------------------------------------------

    def _note(self, job_id: str, state: JobState) -> JobState:
        """Log a job's state when it changes (once across the running and complete polls)."""
        if self._seen.get(job_id) is not state:
            self._seen[job_id] = state
            self.log.info("Armada job %s is %s", job_id, state.name)
        return state

    def _ack_deadline(
        self, job_id: str, state: JobState, unknown_since: float | None
    ) -> float | None:
        """When the job started being UNKNOWN; raises _AckTimeout once that is too long ago."""
        if state is not JobState.UNKNOWN:
            return None
        now = time.monotonic()
        submitted = self._submitted.get(job_id)
        since = unknown_since if unknown_since is not None else (submitted[2] if submitted else now)
        if now - since >= self.acknowledgement_timeout:
            raise _AckTimeout
        return since

    def _lost_target(
        self, job_id: str, queue: str | None, job_set_id: str | None
    ) -> tuple[str, str] | None:
        submitted = self._submitted.get(job_id)
        queue = queue or (submitted[0] if submitted else None)
        job_set_id = job_set_id or (submitted[1] if submitted else None)
        return (queue, job_set_id) if queue and job_set_id else None

    def _lost_error(
        self, job_id: str, *, cancelled: bool, timeout: float | None = None
    ) -> ArmadaJobLostError:
        action = (
            "it has been cancelled so that a retry cannot leave a twin behind"
            if cancelled
            else "pass queue and job_set_id so that the hook can cancel it"
        )
        return ArmadaJobLostError(
            f"Armada job {job_id} is still UNKNOWN after "
            f"{self.acknowledgement_timeout if timeout is None else timeout:g}s: "
            f"Armada never acknowledged it (lost); {action}",
            job_id=job_id,
            state=JobState.UNKNOWN,
        )

    def poll_job_status(
        self,
        job_id: str,
        match_states: Iterable[JobState],
        *,
        poll_interval: float | None = None,
        queue: str | None = None,
        job_set_id: str | None = None,
    ) -> JobState:
        """Poll until the job is in one of ``match_states``; the state reached.

        The first poll is immediate; pauses follow :meth:`exponential_delay` (or a fixed
        ``poll_interval``). A job that ends in a state outside ``match_states`` raises
        (it can never match); so do ``max_retries`` polls without a match, and a job
        UNKNOWN for longer than ``acknowledgement_timeout``.
        """
        poll = _Poll(job_id, frozenset(JobState(s) for s in match_states))
        for tries in range(self.max_retries + 1):
            state = self.get_job_status(job_id)
            try:
                if self._poll_step(poll, state):
                    return state
            except _AckTimeout:
                target = self._lost_target(job_id, queue, job_set_id)
                if target:
                    self._call(
                        "CancelJobs", self.client.cancel_jobs, *target, job_id, queue=target[0]
                    )
                raise self._lost_error(job_id, cancelled=target is not None) from None
            if tries < self.max_retries:
                time.sleep(self._pause(tries, poll_interval))
        raise self._gave_up(poll)

    def _poll_step(self, poll: _Poll, state: JobState) -> bool:
        """One poll's verdict: True on a match; raises if the job can never match."""
        poll.last = self._note(poll.job_id, state)
        if state in poll.wanted:
            return True
        if state in TERMINAL_STATES:
            raise self._ended_elsewhere(poll.job_id, state, poll.wanted)
        poll.unknown_since = self._ack_deadline(poll.job_id, state, poll.unknown_since)
        return False

    def _pause(self, tries: int, poll_interval: float | None) -> float:
        return poll_interval if poll_interval is not None else self.exponential_delay(tries)

    def _gave_up(self, poll: _Poll) -> ArmadaWaitTimeoutError:
        return ArmadaWaitTimeoutError(
            f"Armada job {poll.job_id} is still {poll.last.name if poll.last else 'unknown'} "
            f"after {self.max_retries + 1} polls; waited for {sorted(s.name for s in poll.wanted)}"
        )

    def _ended_elsewhere(
        self, job_id: str, state: JobState, wanted: frozenset[JobState]
    ) -> ArmadaJobError:
        return ArmadaJobError(
            f"Armada job {job_id} ended {state.name}, so it can never reach "
            f"{sorted(s.name for s in wanted)}",
            job_id=job_id,
            state=state,
        )

    def poll_for_job_running(
        self, job_id: str, delay: float | None = None, **kwargs: Any
    ) -> JobState:
        """Poll until the job runs or ends (``RUNNING_STATES``)."""
        return self.poll_job_status(job_id, RUNNING_STATES, poll_interval=delay, **kwargs)

    def poll_for_job_complete(
        self, job_id: str, delay: float | None = None, **kwargs: Any
    ) -> JobState:
        """Poll until the job ends (``TERMINAL_STATES``)."""
        return self.poll_job_status(job_id, TERMINAL_STATES, poll_interval=delay, **kwargs)

    def wait_for_job(
        self,
        job_id: str,
        delay: float | None = None,
        log_fetcher: ArmadaLogFetcher | None = None,
        *,
        queue: str | None = None,
        job_set_id: str | None = None,
    ) -> JobState:
        """Wait until the job ends, streaming its log through ``log_fetcher`` once it runs.

        ``delay`` is a fixed poll interval (default: exponential backoff). Returns the
        final state; call :meth:`check_job_success` to turn failure into an exception.
        """
        kwargs = {"queue": queue, "job_set_id": job_set_id}
        self.poll_for_job_running(job_id, delay, **kwargs)
        if log_fetcher is not None:
            log_fetcher.start()
        try:
            return self.poll_for_job_complete(job_id, delay, **kwargs)
        finally:
            if log_fetcher is not None:
                log_fetcher.stop()

    def log_fetcher(
        self, job_id: str, logger: LineLogger | None = None, interval: float = 2.0
    ) -> ArmadaLogFetcher:
        """A fetcher that streams the job's container log into ``logger`` while it runs."""
        from armada_hooks.hooks.logs import ArmadaLogFetcher

        return ArmadaLogFetcher(self, job_id, logger or self.log, interval=interval)

    def check_job_success(self, job_id: str) -> bool:
        """True if the job SUCCEEDED.

        :raises ArmadaJobRejectedError: REJECTED — fatal, no retry can schedule it.
        :raises ArmadaJobFailedError: FAILED, PREEMPTED or CANCELLED — retryable; carries
            the state and Armada's reason.
        :raises ArmadaJobNotFinishedError: the job has not ended yet (or is UNKNOWN).
        """
        return self._judge(self.get_job_description(job_id))

    @staticmethod
    def _judge(description: JobDescription) -> bool:
        job_id, state, reason = description.job_id, description.state, description.reason
        if state in SUCCESS_STATES:
            return True
        why = f": {reason}" if reason else ""
        if state is JobState.REJECTED:
            raise ArmadaJobRejectedError(
                f"Armada rejected job {job_id}{why}", job_id=job_id, state=state, reason=reason
            )
        if state in FAILURE_STATES:
            raise ArmadaJobFailedError(
                f"Armada job {job_id} ended {state.name}{why}",
                job_id=job_id,
                state=state,
                reason=reason,
            )
        raise ArmadaJobNotFinishedError(
            f"Armada job {job_id} has not finished: it is {state.name}", job_id=job_id, state=state
        )

    # -- async twins ------------------------------------------------------------------

    async def aget_job_statuses(self, job_ids: Iterable[str]) -> dict[str, JobState]:
        """Async :meth:`get_job_statuses`; chunks of 500 are asked concurrently."""
        chunks = _chunks(list(dict.fromkeys(job_ids)))
        client = self.async_client
        responses = await asyncio.gather(
            *(self._acall("GetJobStatus", client.get_job_status, chunk) for chunk in chunks)
        )
        states: dict[str, JobState] = {}
        for chunk, response in zip(chunks, responses, strict=True):
            states.update(_states(chunk, response.job_states))
        return states

    async def aget_job_status(self, job_id: str) -> JobState:
        """Async :meth:`get_job_status`."""
        return (await self.aget_job_statuses([job_id]))[job_id]

    async def aget_job_description(self, job_id: str) -> JobDescription:
        """Async :meth:`get_job_description`."""
        return (await self.aget_job_descriptions([job_id]))[job_id]

    async def aget_job_descriptions(self, job_ids: Iterable[str]) -> dict[str, JobDescription]:
        """Descriptions of many jobs; unknown ids read UNKNOWN.

        One GetJobDetails per 500 ids (chunks asked concurrently), and one GetJobErrors
        per 500 failed jobs for their reasons.
        """
        ids = list(dict.fromkeys(job_ids))
        client = self.async_client
        responses = await asyncio.gather(
            *(self._acall("GetJobDetails", client.get_job_details, c) for c in _chunks(ids))
        )
        details = {k: v for response in responses for k, v in response.job_details.items()}
        failed = [j for j in ids if j in details and JobState(details[j].state) in FAILURE_STATES]
        reasons: dict[str, str] = {}
        if failed:
            errors = await asyncio.gather(
                *(self._acall("GetJobErrors", client.get_job_errors, c) for c in _chunks(failed))
            )
            reasons = {k: v for response in errors for k, v in response.job_errors.items()}
        return {
            j: parse_job_details(details[j], reasons.get(j, ""))
            if j in details
            else JobDescription(job_id=j, state=JobState.UNKNOWN)
            for j in ids
        }

    async def acheck_job_success(self, job_id: str) -> bool:
        """Async :meth:`check_job_success`."""
        return self._judge(await self.aget_job_description(job_id))

    async def acancel_job(self, queue: str, job_set_id: str, job_id: str) -> JobState:
        """Async :meth:`cancel_job`."""
        state = await self.aget_job_status(job_id)
        if state in TERMINAL_STATES:
            return state
        await self._acall(
            "CancelJobs", self.async_client.cancel_jobs, queue, job_set_id, job_id, queue=queue
        )
        return await self.aget_job_status(job_id)

    async def apoll_job_status(
        self,
        job_id: str,
        match_states: Iterable[JobState],
        *,
        poll_interval: float | None = None,
        queue: str | None = None,
        job_set_id: str | None = None,
    ) -> JobState:
        """Async :meth:`poll_job_status` (the ack timeout's cancel runs on the async client)."""
        poll = _Poll(job_id, frozenset(JobState(s) for s in match_states))
        for tries in range(self.max_retries + 1):
            state = await self.aget_job_status(job_id)
            try:
                if self._poll_step(poll, state):
                    return state
            except _AckTimeout:
                target = self._lost_target(job_id, queue, job_set_id)
                if target:
                    cancel = self.async_client.cancel_jobs
                    await self._acall("CancelJobs", cancel, *target, job_id, queue=target[0])
                raise self._lost_error(job_id, cancelled=target is not None) from None
            if tries < self.max_retries:
                await asyncio.sleep(self._pause(tries, poll_interval))
        raise self._gave_up(poll)

    async def apoll_for_job_running(
        self, job_id: str, delay: float | None = None, **kwargs: Any
    ) -> JobState:
        """Async :meth:`poll_for_job_running`."""
        return await self.apoll_job_status(job_id, RUNNING_STATES, poll_interval=delay, **kwargs)

    async def apoll_for_job_complete(
        self, job_id: str, delay: float | None = None, **kwargs: Any
    ) -> JobState:
        """Async :meth:`poll_for_job_complete`."""
        return await self.apoll_job_status(job_id, TERMINAL_STATES, poll_interval=delay, **kwargs)


@dataclass
class _Poll:
    """What one polling loop has seen so far."""

    job_id: str
    wanted: frozenset[JobState]
    last: JobState | None = None
    unknown_since: float | None = None


class _AckTimeout(Exception):
    """Internal: a job has been UNKNOWN for longer than the acknowledgement timeout."""


def _states(ids: Sequence[str], job_states: Mapping[str, int]) -> dict[str, JobState]:
    # JobState's zero value is QUEUED: an id missing from the map was not answered.
    return {i: JobState(job_states[i]) if i in job_states else JobState.UNKNOWN for i in ids}


def _check_name(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ArmadaJobSpecError(f"{field} must be a non-empty string, got {value!r}")
