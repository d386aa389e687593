"""``ArmadaHook``: Armada's job API for Airflow — submit, poll with backoff, wait, check, cancel.

The surface follows the AWS Batch hook (``client``, ``poll_job_status``,
``poll_for_job_running``/``_complete``, ``get_job_description``, ``wait_for_job`` with a
log fetcher, ``check_job_success``, ``add_jitter``, ``delay``, ``exponential_delay``) with
Armada's semantics and without that hook's flaws: no sleep before the first poll, no
jitter on top of jitter, every bound configurable, a deadline on every RPC, retries only
on retryable gRPC codes (:mod:`armada_hooks.rpc`), FAILED kept apart from REJECTED
(:mod:`armada_hooks.verdicts`), and a job that never reaches Armada's query API
cancelled after an acknowledgement timeout instead of polled forever. The hook owns
the channels it opens: ``with ArmadaHook() as hook:`` (or ``async with``) closes them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Unpack

from armada_hooks import backoff, verdicts
from armada_hooks._compat import BaseHook, aget_connection
from armada_hooks.defaults import (
    DEFAULT_ACKNOWLEDGEMENT_TIMEOUT,
    DEFAULT_CONN_ID,
    DEFAULT_LOG_INTERVAL,
)
from armada_hooks.errors import ArmadaConnectionError
from armada_hooks.hooks.clients import ConnectionClients
from armada_hooks.hooks.connection import (
    ArmadaConnectionConfig,
    ConfigLoader,
    form_behaviour,
    form_widgets,
)
from armada_hooks.job_description import (
    JobDescription,
    describe_jobs,
    failed_job_ids,
    oldest_first,
    parse_job_details,
)
from armada_hooks.job_requests import (
    apply_client_ids,
    build_job_request_item,
    check_name,
    submitted_job_ids,
)
from armada_hooks.rpc import (
    RETRYABLE_CODES,
    UNSENT_CODES,
    RetryPolicy,
    chunks,
    describe_failure,
    gather_all,
)
from armada_hooks.states import (
    FAILURE_STATES,
    INTERMEDIATE_STATES,
    RUNNING_STATES,
    SUCCESS_STATES,
    TERMINAL_STATES,
    JobState,
    states_from_answers,
)
from armada_hooks.verdicts import JobLost, PolledWait, PollOptions, WaitWhere

if TYPE_CHECKING:
    from armada_client.armada import submit_pb2

    from armada_hooks.hooks.logs import ArmadaLogFetcher, LineLogger
    from armada_hooks.protocols import ArmadaProtocol, AsyncArmadaProtocol, LogProtocol


_NON_NEGATIVE = ["max_retries", "status_retries", "retry_wait_min", "retry_wait_max"]
_NON_NEGATIVE += ["backoff_cap", "acknowledgement_timeout"]


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
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "armada"
    hook_name = "Armada"
    # Airflow 2's connection form (3.2+ reads conn-fields from the provider info instead)
    get_connection_form_widgets: ClassVar[classmethod[Any, [], dict[str, Any]]]
    get_connection_form_widgets = classmethod(form_widgets)
    get_ui_field_behaviour: ClassVar[classmethod[Any, [], dict[str, Any]]]
    get_ui_field_behaviour = classmethod(form_behaviour)

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
        self._clients = ConnectionClients(
            lambda: self.config, client, async_client, log_client_factory
        )
        self.max_retries = self.MAX_RETRIES if max_retries is None else max_retries
        self.status_retries = self.STATUS_RETRIES if status_retries is None else status_retries
        self.retry_wait_min = self.RETRY_WAIT_MIN if retry_wait_min is None else retry_wait_min
        self.retry_wait_max = self.RETRY_WAIT_MAX if retry_wait_max is None else retry_wait_max
        self.backoff_cap = self.BACKOFF_CAP if backoff_cap is None else backoff_cap
        self.acknowledgement_timeout = acknowledgement_timeout
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.retry_wait_min > self.retry_wait_max:
            raise ValueError("retry_wait_min must not exceed retry_wait_max")
        self.retry_policy = RetryPolicy(  # how this hook retries one RPC
            self.status_retries, self.retry_wait_min, self.retry_wait_max, armada_conn_id, self.log
        )
        self._submitted: dict[str, tuple[str, str, float]] = {}  # queue, job set, epoch s
        self._seen: dict[str, JobState] = {}  # last state logged per job
        self._config_loader = ConfigLoader(
            armada_conn_id,
            lambda conn_id: self.get_connection(conn_id),
            lambda conn_id: aget_connection(self, conn_id),
        )

    # -- connection and clients ------------------------------------------------------

    @property
    def config(self) -> ArmadaConnectionConfig:
        """The connection's settings, parsed and checked once."""
        return self._config_loader.load()

    async def aload_config(self) -> ArmadaConnectionConfig:
        """Load the connection without blocking the event loop (triggers call this first).

        Concurrent callers share one lookup; a failed lookup is tried again by the next call.
        """
        return await self._config_loader.aload()

    @property
    def client(self) -> ArmadaProtocol:
        """The synchronous client: the one passed in, or ``ArmadaClient`` on the connection."""
        return self._clients.sync

    @property
    def async_client(self) -> AsyncArmadaProtocol:
        """The asyncio client: the one passed in, or ``ArmadaAsyncIOClient`` on the connection.

        A built client belongs to the running event loop; a new loop gets a new channel.
        """
        return self._clients.aio

    def get_conn(self) -> ArmadaProtocol:
        """The synchronous client (Airflow's hook API)."""
        return self.client

    def log_client(self, cluster: str) -> LogProtocol | None:
        """The log client for ``cluster``; None when no Binoculars target is configured."""
        return self._clients.logs(cluster)

    def close(self) -> None:
        """Close the channels this hook opened (clients passed in are left to their owner)."""
        self._clients.close()

    async def aclose(self) -> None:
        """:meth:`close`, awaiting the running loop's asyncio channel."""
        await self._clients.aclose()

    def __enter__(self) -> ArmadaHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> ArmadaHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def test_connection(self) -> tuple[bool, str]:
        """Call both Health RPCs once; report which failed and why (Airflow's UI button)."""
        injected = self._clients.injected
        problems = []
        for name, call in (
            ("Submit", self.client.submit_health),
            ("Event", self.client.event_health),
        ):
            try:
                call()
            except Exception as exc:
                problems.append(f"{name} health: {describe_failure(exc)}")
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
        low, high = self.DEFAULT_DELAY_MIN, self.DEFAULT_DELAY_MAX
        pause = backoff.add_jitter(delay) if delay is not None else backoff.uniform(low, high)
        time.sleep(pause)

    # -- submit and cancel ------------------------------------------------------------

    @staticmethod
    def build_job_request_item(
        item: submit_pb2.JobSubmitRequestItem | Mapping[str, Any],
    ) -> submit_pb2.JobSubmitRequestItem:
        """A copy of ``item``; a job item, pod spec or Pod manifest dict is read (job_specs)."""
        return build_job_request_item(item)

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
        check_name("queue", queue)
        check_name("job_set_id", job_set_id)
        requests = [self.build_job_request_item(item) for item in items]
        idempotent = apply_client_ids(requests, client_ids)
        response = self.retry_policy.call(
            "SubmitJobs",
            self.client.submit_jobs,
            queue,
            job_set_id,
            requests,
            queue=queue,
            codes=RETRYABLE_CODES if idempotent else UNSENT_CODES,
        )
        job_ids = submitted_job_ids(response, queue, len(requests))
        now = time.time()
        for job_id in job_ids:
            self._submitted.setdefault(job_id, (queue, job_set_id, now))
        return job_ids

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
        if self._ended_before_cancel(job_id, state):
            return state
        self.retry_policy.call(
            "CancelJobs", self.client.cancel_jobs, queue, job_set_id, job_id, queue=queue
        )
        return self._cancel_asked(job_id, state, self.get_job_status(job_id))

    async def acancel_job(self, queue: str, job_set_id: str, job_id: str) -> JobState:
        """Async :meth:`cancel_job`."""
        state = await self.aget_job_status(job_id)
        if self._ended_before_cancel(job_id, state):
            return state
        await self.retry_policy.acall(
            "CancelJobs", self.async_client.cancel_jobs, queue, job_set_id, job_id, queue=queue
        )
        return self._cancel_asked(job_id, state, await self.aget_job_status(job_id))

    def _ended_before_cancel(self, job_id: str, state: JobState) -> bool:
        ended = state in TERMINAL_STATES
        if ended:
            self.log.info("Armada job %s already ended %s; not cancelling it", job_id, state.name)
        return ended

    def _cancel_asked(self, job_id: str, before: JobState, after: JobState) -> JobState:
        self.log.info(
            "Asked Armada to cancel job %s (was %s, now %s)", job_id, before.name, after.name
        )
        return after

    # -- status and descriptions ------------------------------------------------------

    def get_job_statuses(self, job_ids: Iterable[str]) -> dict[str, JobState]:
        """States of any number of jobs, asked in chunks of 500; missing ids read UNKNOWN."""
        ids = list(dict.fromkeys(job_ids))
        call, get = self.retry_policy.call, self.client.get_job_status
        return states_from_answers(ids, [call("GetJobStatus", get, c) for c in chunks(ids)])

    def get_job_status(self, job_id: str) -> JobState:
        """The state of one job (UNKNOWN until Armada's query API has it)."""
        return self.get_job_statuses([job_id])[job_id]

    @staticmethod
    def parse_job_description(details: Any, reason: str = "") -> JobDescription:
        """A :class:`~armada_hooks.job_description.JobDescription` from ``JobDetails``."""
        return parse_job_details(details, reason)

    def get_job_descriptions(self, job_ids: Iterable[str]) -> dict[str, JobDescription]:
        """Descriptions of many jobs; unknown ids read UNKNOWN.

        One GetJobDetails per 500 ids, and one GetJobErrors per 500 failed jobs for their
        reasons.
        """
        ids = list(dict.fromkeys(job_ids))
        call, client = self.retry_policy.call, self.client
        details = [call("GetJobDetails", client.get_job_details, c) for c in chunks(ids)]
        failed = chunks(failed_job_ids(ids, details))
        errors = [call("GetJobErrors", client.get_job_errors, c) for c in failed]
        return describe_jobs(ids, details, errors)

    def get_job_description(self, job_id: str) -> JobDescription:
        """State, placement, times, and (for a failed job) Armada's reason."""
        return self.get_job_descriptions([job_id])[job_id]

    def find_jobs_by_external_uri(self, queue: str, job_set_id: str, uri: str) -> list[str]:
        """Every job of (queue, job set) submitted with ``uri``, oldest first."""
        response = self.retry_policy.call(
            "GetJobStatusUsingExternalJobUri",
            self.client.get_job_status_by_external_job_uri,
            queue,
            job_set_id,
            uri,
            queue=queue,
        )
        ids = list(getattr(response, "job_states", {}))
        if len(ids) > 1:
            call, get = self.retry_policy.call, self.client.get_job_details
            ids = oldest_first(ids, [call("GetJobDetails", get, c) for c in chunks(ids)])
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

    def _pauses(self, poll_interval: float | None) -> Iterator[float]:
        """The pause after each of the ``max_retries + 1`` polls (none after the last)."""
        for tries in range(self.max_retries):
            yield poll_interval if poll_interval is not None else self.exponential_delay(tries)
        yield 0.0

    def _poll(self, job_id: str, wanted: Iterable[JobState], **options: Any) -> PolledWait:
        """The verdicts of a wait; a job this hook submitted is timed from its submission."""
        queue, job_set_id, submitted_at = self._submitted.get(job_id, (None, None, None))
        return PolledWait(
            job_id,
            frozenset(map(JobState, wanted)),
            self.acknowledgement_timeout,
            submitted_at,
            options.get("queue") or queue,
            options.get("job_set_id") or job_set_id,
        )

    def poll_job_status(
        self, job_id: str, match_states: Iterable[JobState], **options: Unpack[PollOptions]
    ) -> JobState:
        """Poll until the job is in one of ``match_states``; the state reached.

        The first poll is immediate; pauses follow :meth:`exponential_delay` (or a fixed
        ``poll_interval``). A job that ends in a state outside ``match_states`` raises
        (it can never match); so do ``max_retries`` polls without a match, and a job
        UNKNOWN for longer than ``acknowledgement_timeout`` (cancelled first, when its
        ``queue`` and ``job_set_id`` are known).
        """
        poll = self._poll(job_id, match_states, **options)
        return self._waited(poll, options.get("poll_interval"))

    def _waited(self, poll: PolledWait, interval: float | None, quiet: bool = False) -> JobState:
        """:meth:`_wait`, cancelling a lost job (``quiet``: the caller logs the end)."""
        try:
            return self._wait(poll, interval, quiet)
        except JobLost as lost:
            if lost.target:
                self.cancel_job(*lost.target, poll.job_id)
            raise lost.error from None

    def _wait(self, poll: PolledWait, poll_interval: float | None, quiet: bool = False) -> JobState:
        for pause in self._pauses(poll_interval):
            state = self.get_job_status(poll.job_id)
            if not (quiet and state in TERMINAL_STATES):  # a waiter logs the end itself
                self._note(poll.job_id, state)
            if poll.judge(state, time.time()):
                return state
            time.sleep(pause)
        raise poll.gave_up(self.max_retries + 1)

    def poll_for_job_running(
        self, job_id: str, delay: float | None = None, **kwargs: Unpack[WaitWhere]
    ) -> JobState:
        """Poll until the job runs or ends (``RUNNING_STATES``)."""
        return self.poll_job_status(job_id, RUNNING_STATES, poll_interval=delay, **kwargs)

    def poll_for_job_complete(
        self, job_id: str, delay: float | None = None, **kwargs: Unpack[WaitWhere]
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

        ``delay`` is a fixed poll interval (default: exponential backoff). The log's last
        lines are written before the line saying how the job ended. Returns the final
        state; call :meth:`check_job_success` to turn failure into an exception.
        """
        where = {"queue": queue, "job_set_id": job_set_id}
        state = self._waited(self._poll(job_id, RUNNING_STATES, **where), delay, quiet=True)
        if log_fetcher is not None:
            log_fetcher.start()
        try:
            if state not in TERMINAL_STATES:
                end = self._poll(job_id, TERMINAL_STATES, **where)
                state = self._waited(end, delay, quiet=True)
        finally:
            if log_fetcher is not None:
                log_fetcher.stop()  # drains the last lines
        return self._note(job_id, state)

    def log_fetcher(
        self, job_id: str, logger: LineLogger | None = None, interval: float | None = None
    ) -> ArmadaLogFetcher:
        """A fetcher that streams the job's container log into ``logger`` while it runs.

        ``interval``: seconds between fetches while the log grows (default: the
        connection's ``log_interval``); a quiet log is fetched less often.
        """
        from armada_hooks.hooks.logs import ArmadaLogFetcher

        return ArmadaLogFetcher(
            job_id,
            logger or self.log,
            describe=self.get_job_description,
            log_client=self.log_client,
            source=f"Airflow connection {self.armada_conn_id!r}",
            retry_policy=self.retry_policy,
            interval=interval if interval is not None else self._log_interval(),
        )

    def _log_interval(self) -> float:
        try:
            return self.config.log_interval
        except ArmadaConnectionError:  # a client passed in and no connection
            return DEFAULT_LOG_INTERVAL

    def check_job_success(self, job_id: str) -> bool:
        """True if the job SUCCEEDED.

        :raises ArmadaJobRejectedError: REJECTED — fatal, no retry can schedule it.
        :raises ArmadaJobFailedError: FAILED, PREEMPTED or CANCELLED — retryable; carries
            the state and Armada's reason.
        :raises ArmadaJobNotFinishedError: the job has not ended yet (or is UNKNOWN).
        """
        return verdicts.check_success(self.get_job_description(job_id))

    # -- async twins (the same decisions; only the I/O lines differ) -------------------

    async def aget_job_statuses(self, job_ids: Iterable[str]) -> dict[str, JobState]:
        """Async :meth:`get_job_statuses`; chunks of 500 are asked concurrently."""
        ids = list(dict.fromkeys(job_ids))
        acall, get = self.retry_policy.acall, self.async_client.get_job_status
        answers = await gather_all(acall("GetJobStatus", get, c) for c in chunks(ids))
        return states_from_answers(ids, answers)

    async def aget_job_status(self, job_id: str) -> JobState:
        """Async :meth:`get_job_status`."""
        return (await self.aget_job_statuses([job_id]))[job_id]

    async def aget_job_descriptions(self, job_ids: Iterable[str]) -> dict[str, JobDescription]:
        """Async :meth:`get_job_descriptions`; chunks are asked concurrently."""
        ids = list(dict.fromkeys(job_ids))
        acall, client = self.retry_policy.acall, self.async_client
        details = await gather_all(
            acall("GetJobDetails", client.get_job_details, c) for c in chunks(ids)
        )
        failed = chunks(failed_job_ids(ids, details))
        errors = await gather_all(acall("GetJobErrors", client.get_job_errors, c) for c in failed)
        return describe_jobs(ids, details, errors)

    async def aget_job_description(self, job_id: str) -> JobDescription:
        """Async :meth:`get_job_description`."""
        return (await self.aget_job_descriptions([job_id]))[job_id]

    async def acheck_job_success(self, job_id: str) -> bool:
        """Async :meth:`check_job_success`."""
        return verdicts.check_success(await self.aget_job_description(job_id))

    async def apoll_job_status(
        self, job_id: str, match_states: Iterable[JobState], **options: Unpack[PollOptions]
    ) -> JobState:
        """Async :meth:`poll_job_status` (the ack timeout's cancel runs on the async client)."""
        poll = self._poll(job_id, match_states, **options)
        interval = options.get("poll_interval")
        try:
            for pause in self._pauses(interval):
                state = self._note(job_id, await self.aget_job_status(job_id))
                if poll.judge(state, time.time()):
                    return state
                await asyncio.sleep(pause)
        except JobLost as lost:
            if lost.target:
                await self.acancel_job(*lost.target, job_id)
            raise lost.error from None
        raise poll.gave_up(self.max_retries + 1)

    async def apoll_for_job_running(
        self, job_id: str, delay: float | None = None, **kwargs: Unpack[WaitWhere]
    ) -> JobState:
        """Async :meth:`poll_for_job_running`."""
        return await self.apoll_job_status(job_id, RUNNING_STATES, poll_interval=delay, **kwargs)

    async def apoll_for_job_complete(
        self, job_id: str, delay: float | None = None, **kwargs: Unpack[WaitWhere]
    ) -> JobState:
        """Async :meth:`poll_for_job_complete`."""
        return await self.apoll_job_status(job_id, TERMINAL_STATES, poll_interval=delay, **kwargs)
