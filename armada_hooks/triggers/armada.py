"""``ArmadaJobTrigger``: waits in the triggerer for an Armada job to end, polling Armada.

It polls at once, then every ``poll_interval`` seconds, and fires one event when the
job ends (or is lost, or polling fails for good). The event carries plain values; the
operator or sensor resuming on it raises the typed error. It serializes to plain values
only (connection id, ids, intervals, a submit time), never a channel, client or secret,
and its ``__dict__`` equals its constructor kwargs, so it can be rebuilt from either.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import TriggerEvent

from armada_hooks import verdicts
from armada_hooks._compat import PlainTrigger
from armada_hooks.defaults import (
    DEFAULT_ACKNOWLEDGEMENT_TIMEOUT,
    DEFAULT_CONN_ID,
    DEFAULT_POLL_INTERVAL,
)
from armada_hooks.errors import ArmadaError, ArmadaFatalError
from armada_hooks.states import TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from armada_hooks.hooks.armada import ArmadaHook
    from armada_hooks.hooks.logs import ArmadaLogFetcher
    from armada_hooks.triggers.log_positions import LogPositions
    from armada_hooks.triggers.poller import StatusPoller


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]  # Airflow's is untyped


def error_payload(job_id: str, exc: BaseException, state: str = "UNKNOWN") -> dict[str, Any]:
    """The event for a wait that ended in an error (the resuming task re-raises it)."""
    return {
        "job_id": job_id,
        "state": state,
        "reason": str(exc),
        "description": None,
        "error": {
            "type": type(exc).__name__,
            "message": str(exc),
            "fatal": isinstance(exc, ArmadaFatalError),
        },
    }


class ArmadaJobTrigger(PlainTrigger):
    """Fires when Armada job ``job_id`` ends.

    :param job_id: the Armada job to wait for.
    :param armada_conn_id: the ``armada`` connection (resolved by the triggerer).
    :param queue: the job's queue; with ``job_set_id`` it lets the trigger cancel the job.
    :param job_set_id: the job's job set.
    :param poll_interval: seconds between polls (the first poll is immediate).
    :param acknowledgement_timeout: seconds after ``submitted_at`` that the job may stay
        UNKNOWN before it is cancelled and reported lost.
    :param submitted_at: epoch seconds of the submission (default: when the trigger was
        built), so a rebuilt trigger keeps counting from the same moment.
    :param fetch_logs: stream the job's container log into the task log while deferred.
    :param log_interval: seconds between log fetches while the log grows (default: the
        connection's ``log_interval``); a quiet log is fetched less often.
    :param target_states: state names that also end the wait (a sensor waiting for
        RUNNING); the job ending always does.
    :param event_mode: follow the job set's event stream instead of polling (needs
        ``queue`` and ``job_set_id``); ``None`` takes the connection's ``event_mode``.
        A stream that fails for good, or a job with no event by its acknowledgement
        deadline, falls back to polling.
    """

    def __init__(
        self,
        job_id: str,
        armada_conn_id: str = DEFAULT_CONN_ID,
        queue: str | None = None,
        job_set_id: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        acknowledgement_timeout: float = DEFAULT_ACKNOWLEDGEMENT_TIMEOUT,
        submitted_at: float | None = None,
        fetch_logs: bool = False,
        target_states: list[str] | None = None,
        event_mode: bool | None = None,
        log_interval: float | None = None,
    ) -> None:
        super().__init__()
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval}")
        if acknowledgement_timeout < 0:
            raise ValueError("acknowledgement_timeout must be >= 0 seconds")
        if log_interval is not None and log_interval <= 0:
            raise ValueError(f"log_interval must be > 0 seconds, got {log_interval}")
        self.job_id = job_id
        self.armada_conn_id = armada_conn_id
        self.queue = queue
        self.job_set_id = job_set_id
        self.poll_interval = float(poll_interval)
        self.acknowledgement_timeout = float(acknowledgement_timeout)
        self.submitted_at = float(submitted_at) if submitted_at is not None else time.time()
        self.fetch_logs = fetch_logs
        self.target_states = [JobState[name].name for name in target_states or []]
        self.event_mode = None if event_mode is None else bool(event_mode)
        self.log_interval = None if log_interval is None else float(log_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and plain kwargs: everything needed to rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "armada_conn_id": self.armada_conn_id,
                "queue": self.queue,
                "job_set_id": self.job_set_id,
                "poll_interval": self.poll_interval,
                "acknowledgement_timeout": self.acknowledgement_timeout,
                "submitted_at": self.submitted_at,
                "fetch_logs": self.fetch_logs,
                "target_states": self.target_states,
                "event_mode": self.event_mode,
                "log_interval": self.log_interval,
            },
        )

    def _hook(self) -> ArmadaHook:
        """A hook of this trigger's own (the caller closes it)."""
        from armada_hooks.hooks.armada import ArmadaHook

        return ArmadaHook(self.armada_conn_id, acknowledgement_timeout=self.acknowledgement_timeout)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait until the job ends (or reaches a target state); yield one event saying how.

        Without log streaming the wait joins the loop's shared :class:`StatusPoller`: one
        GetJobStatus per tick for every waiting trigger on the same connection. In event
        mode it joins the loop's :class:`EventWatch` instead: one event stream per job set.
        """
        try:
            from armada_hooks.triggers.poller import StatusPoller

            # The loop's shared hook: the connection is loaded once for all triggers.
            poller = StatusPoller.for_connection(self.armada_conn_id)
            if self.fetch_logs:
                state = await self._wait_streaming_logs(poller)
            else:
                state = await self._wait_for(poller, self._wait_over)
            if state is JobState.UNKNOWN:  # only a lost job ends the wait while UNKNOWN
                yield _event(await self._give_up_lost(poller.hook))
                return
            description = await poller.describe(self.job_id)  # batched with others
            if description.state is JobState.UNKNOWN or not self._wait_over(description.state):
                # Armada's query API can lag its event stream: the event is the news.
                description = dataclasses.replace(description, state=state)
            yield _event(
                {
                    "job_id": self.job_id,
                    "state": description.state.name,
                    "reason": description.reason,
                    "description": description.to_dict(),
                    "error": None,
                }
            )
        except ArmadaError as exc:
            yield _event(error_payload(self.job_id, exc))

    async def _wait_for(self, poller: StatusPoller, done: Callable[[JobState], bool]) -> JobState:
        """The first state where ``done``: from the job set's events, or else polled."""
        state = await self._follow_events(poller.hook, done)
        if state is None:
            state = await poller.wait(self.job_id, self.poll_interval, done)
        return state

    async def _wait_streaming_logs(self, poller: StatusPoller) -> JobState:
        """Wait as usual; from the first RUNNING state on, copy the job's log meanwhile.

        One wait, so one place in the poller or one event stream: the log pump starts
        from within the wait's check. Logs use the loop's shared hook, as the poller does:
        one connection lookup and one Binoculars channel per cluster for every trigger, not
        one each (its synchronous clients are thread-safe; the fetches run in worker
        threads). Nobody closes that hook: it goes with the loop.

        With a task instance the log position is stored in its XCom as lines are logged,
        and a rebuilt trigger resumes from it (:mod:`~armada_hooks.triggers.log_positions`).
        """
        log_hook = poller.hook
        config = await log_hook.aload_config()
        fetcher = log_hook.log_fetcher(self.job_id, self.log, self.log_interval)
        positions = self._log_positions()
        stop = asyncio.Event()
        pump: asyncio.Task[None] | None = None
        # ``done`` runs in the poller's (or event watch's) task, whose context is that of
        # whichever trigger started it; the triggerer routes a log record to a task's log
        # by context, so the pump must run in this trigger's own.
        own_context = contextvars.copy_context()

        def done(state: JobState) -> bool:
            nonlocal pump
            if pump is None and state is JobState.RUNNING:
                loop = asyncio.get_running_loop()
                pump = loop.create_task(
                    self._pump_logs(fetcher, stop, positions), context=own_context
                )
            return self._wait_over(state)

        try:
            state = await self._wait_for(poller, done)
        finally:
            stop.set()  # the fetch in flight ends before the last starts: no line twice
            if pump is not None:
                await asyncio.wait({pump}, timeout=config.rpc_timeout)
        if state in TERMINAL_STATES:
            if pump is None:  # ended before we saw it run: an earlier trigger may have
                await self._resume(fetcher, positions)
            await asyncio.to_thread(fetcher.drain)
        return state

    def _log_positions(self) -> LogPositions | None:
        """Where this trigger's log position is stored: None without a task instance."""
        task_instance = getattr(self, "task_instance", None)
        if task_instance is None:  # dag.test() or Flyte: no triggerer, nothing rebuilds us
            return None
        from armada_hooks.triggers.log_positions import LogPositions

        return LogPositions.of_task(task_instance, self.job_id, self.log)

    @staticmethod
    async def _resume(fetcher: ArmadaLogFetcher, positions: LogPositions | None) -> None:
        if positions is not None and (position := await positions.start()) is not None:
            fetcher.resume(position)

    @classmethod
    async def _pump_logs(
        cls, fetcher: ArmadaLogFetcher, stop: asyncio.Event, positions: LogPositions | None
    ) -> None:
        """Fetch at the fetcher's own pace (it backs off while the log is quiet).

        After each fetch the position before it is stored (when due): its lines went to
        the log a fetch ago, so a stored position never runs ahead of the task log.
        """
        await cls._resume(fetcher, positions)
        while not stop.is_set():
            await asyncio.to_thread(fetcher.fetch_once)
            if positions is not None:
                await positions.save(fetcher.settled)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=fetcher.next_delay)

    async def _follow_events(
        self, hook: ArmadaHook, done: Callable[[JobState], bool]
    ) -> JobState | None:
        """In event mode, the state an event ended the wait with; None means poll instead."""
        if self.event_mode is False or not (self.queue and self.job_set_id):
            return None
        config = await hook.aload_config()  # never a blocking connection lookup in the loop
        if self.event_mode is None and not config.event_mode:
            return None
        from armada_hooks.triggers.events import EventStreamLost, EventWatch

        watch = EventWatch.for_connection(self.armada_conn_id)
        deadline = verdicts.ack_deadline(self.submitted_at, self.acknowledgement_timeout)
        try:
            return await watch.wait(self.queue, self.job_set_id, self.job_id, done, deadline)
        except EventStreamLost as exc:
            self.log.warning("%s; polling Armada job %s instead", exc, self.job_id)
            return None

    def _wait_over(self, state: JobState) -> bool:
        if state in TERMINAL_STATES or state.name in self.target_states:
            return True
        return verdicts.is_lost(state, self.submitted_at, self.acknowledgement_timeout, time.time())

    async def _give_up_lost(self, hook: ArmadaHook) -> dict[str, Any]:
        cancelled = False
        if self.queue and self.job_set_id:
            await hook.acancel_job(self.queue, self.job_set_id, self.job_id)
            cancelled = True
        lost = verdicts.lost_error(self.job_id, self.acknowledgement_timeout, cancelled=cancelled)
        return error_payload(self.job_id, lost)

    async def on_kill(self) -> None:
        """A user marked the deferred task failed or cleared it: cancel the Armada job."""
        if not (self.queue and self.job_set_id):
            self.log.warning(
                "Cannot cancel Armada job %s: the trigger was not given its queue and job set",
                self.job_id,
            )
            return
        async with self._hook() as hook:
            await hook.aload_config()
            state = await hook.acancel_job(self.queue, self.job_set_id, self.job_id)
        self.log.info("Asked Armada to cancel job %s (now %s)", self.job_id, state.name)
