"""The lifecycle engine: walks every job through Armada's states on one timer thread.

SUBMITTED → QUEUED → LEASED → PENDING → RUNNING → SUCCEEDED | FAILED | PREEMPTED, with
REJECTED (from QUEUED), lease returns (LEASED → QUEUED), pods that cannot start (FAILED
after the lease) and user cancel / preempt / reprioritize. A cordoned queue's jobs wait
unleased until it is uncordoned. Each transition emits the events real Armada emits, in
the same order.
Transitions sit in one heap keyed by due job-time, so 10,000 jobs cost one thread.
"""

from __future__ import annotations

import heapq
import threading
import time
import uuid
from typing import TYPE_CHECKING

from armada_client.armada import event_pb2, job_pb2, submit_pb2

from armada_hooks.states import is_terminal
from armada_hooks.testing import events
from armada_hooks.testing.executor import ProcessRunner
from armada_hooks.testing.records import (
    ACTIVE_RUN_STATES,
    LEASED_STATES,
    JobRecord,
    RunRecord,
)

if TYPE_CHECKING:
    from armada_hooks.testing.clock import SimClock
    from armada_hooks.testing.store import Store

FLUSH_INTERVAL = 0.25  # real seconds between SQLite flushes
_BATCH = 200  # transitions applied per lock hold, so RPCs are not starved


class Lifecycle:
    """Schedules and applies job transitions; call with ``store.lock`` held unless noted."""

    def __init__(self, store: Store, clock: SimClock, node: str = "local-node-1") -> None:
        self.store = store
        self.clock = clock
        self.node = node
        self.runner = ProcessRunner(self._process_line, self._process_exit)
        self._heap: list[tuple[float, int, str, int]] = []
        self._parked: dict[str, list[str]] = {}  # queue -> jobs waiting for it to uncordon
        self._counter = 0
        self._wake = threading.Condition(store.lock)
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.transitions = 0
        self.max_lag = 0.0  # worst real seconds a transition was applied after it was due

    # -- thread -----------------------------------------------------------

    def start(self) -> None:
        """Resume persisted jobs and start the timer thread."""
        with self.store.lock:
            self._stopping = False
            now = self.clock.now()
            for job in self.store.jobs.values():
                if job.next_step is not None and job.next_due is not None:
                    self._push(job, job.next_due)
                elif job.state == submit_pb2.RUNNING and job.behaviour.execution == "subprocess":
                    job.exit_code = None
                    job.reason = "the job's process was lost when the local Armada stopped"
                    self._finish(job, "failed", now)
        self._thread = threading.Thread(
            target=self._loop, name="local-armada-lifecycle", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread, kill real processes and flush state (call without the lock)."""
        with self.store.lock:
            self._stopping = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.runner.kill_all()
        self.store.flush(self.clock.now())

    def _loop(self) -> None:
        last_flush = time.monotonic()
        while True:
            with self.store.lock:
                wait = self._apply_due()
                if self._stopping:
                    return
                if wait > 0:
                    self._wake.wait(min(wait, FLUSH_INTERVAL))
                if self._stopping:
                    return
            if time.monotonic() - last_flush >= FLUSH_INTERVAL:
                self.store.flush(self.clock.now())
                last_flush = time.monotonic()

    def catch_up(self) -> None:
        """Apply every transition due by now (for an owner that runs no timer thread)."""
        with self.store.lock:
            while self._apply_due() == 0.0:
                pass

    def _apply_due(self) -> float:
        """Apply due transitions; real seconds until the next one (0: more are due)."""
        now = self.clock.now()
        for _ in range(_BATCH):
            if not self._heap:
                return FLUSH_INTERVAL
            due, _, job_id, generation = self._heap[0]
            if due > now:
                return self.clock.real_seconds_until(due)
            heapq.heappop(self._heap)
            job = self.store.jobs.get(job_id)
            if job is not None and job.generation == generation:
                self.transitions += 1
                self.max_lag = max(self.max_lag, (now - due) / self.clock.time_scale)
                self._advance(job, max(due, job.last_transition_ts))
        return 0.0

    # -- scheduling -------------------------------------------------------

    def _push(self, job: JobRecord, due: float) -> None:
        self._counter += 1
        heapq.heappush(self._heap, (due, self._counter, job.job_id, job.generation))
        if self._heap[0][2] == job.job_id:
            self._wake.notify_all()

    def _schedule(self, job: JobRecord, step: str, due: float) -> None:
        job.generation += 1
        job.next_step, job.next_due = step, due
        self._push(job, due)

    def _unschedule(self, job: JobRecord) -> None:
        job.generation += 1
        job.next_step = job.next_due = None

    def _set_state(self, job: JobRecord, state: int, now: float) -> None:
        job.state = state
        job.last_transition_ts = now
        self.store.mark(job)

    # -- transitions ------------------------------------------------------

    def submit(self, job: JobRecord) -> None:
        """Record a new job: Submitted and Queued events, then the walk begins."""
        now = job.submitted_ts
        job.last_transition_ts = now
        job.lease_returns_left = job.behaviour.lease_returns
        self.store.add_job(job)
        if job.behaviour.lost:
            return  # accepted, then never heard of again: the query API answers UNKNOWN
        self.store.emit(job, events.submitted(job, now), now)
        self._set_state(job, submit_pb2.QUEUED, now)
        self.store.emit(job, events.queued(job, now), now)
        self._schedule(job, "lease", now + job.behaviour.queue_time)

    def _advance(self, job: JobRecord, now: float) -> None:
        step = job.next_step
        job.next_step = job.next_due = None
        b = job.behaviour
        if step == "lease":
            queue = self.store.queues.get(job.queue)
            if queue is not None and queue.cordoned:  # Armada leases nothing from it
                job.next_step, job.next_due = "lease", now
                self._parked.setdefault(job.queue, []).append(job.job_id)
                self.store.mark(job)
                return
            if b.outcome == "rejected":
                job.reason = b.reason()
                self._set_state(job, submit_pb2.REJECTED, now)
                self.store.emit(job, events.failed(job, None, now, cause=event_pb2.Rejected), now)
                return
            run = RunRecord(
                run_id=str(uuid.uuid4()),
                job_id=job.job_id,
                cluster=b.cluster,
                node=job.node or self.node,
                leased_ts=now,
            )
            job.runs.append(run)
            self.store.runs[run.run_id] = job
            self._set_state(job, submit_pb2.LEASED, now)
            self.store.emit(job, events.leased(job, run, now), now)
            self._schedule(job, "pend", now + b.lease_time)
        elif step == "pend":
            run = job.runs[-1]
            if job.lease_returns_left > 0:
                job.lease_returns_left -= 1
                run.state, run.finished_ts = job_pb2.RUNS_STATE_LEASE_RETURNED, now
                self._set_state(job, submit_pb2.QUEUED, now)
                self.store.emit(job, events.lease_returned(job, run, now), now)
                self._schedule(job, "lease", now + b.queue_time)
                return
            if job.pod_created:
                run.state, run.pending_ts = job_pb2.RUN_STATE_PENDING, now
                self._set_state(job, submit_pb2.PENDING, now)
                self.store.emit(job, events.pending(job, run, now), now)
            if job.start_failure:  # the executor fails it at once (images.py)
                job.reason = job.start_failure
                self._finish(job, "failed", now)
                return
            self._schedule(job, "run", now + b.pending_time)
        elif step == "run":
            run = job.runs[-1]
            run.state, run.started_ts = job_pb2.RUN_STATE_RUNNING, now
            self._set_state(job, submit_pb2.RUNNING, now)
            self.store.emit(job, events.running(job, run, now), now)
            if b.execution == "subprocess":
                self.runner.start(job)
                return
            lines = b.log_text(job.job_id)
            step_s = b.runtime / (len(lines) + 1)
            job.logs = [(now + step_s * (i + 1), line) for i, line in enumerate(lines)]
            self._schedule(job, "finish", now + b.runtime)
        elif step == "finish":
            if b.outcome in ("failed", "preempted"):
                job.exit_code = b.exit_code if b.outcome == "failed" else None
                job.reason = b.reason()
            self._finish(job, b.outcome, now)

    def _finish(self, job: JobRecord, outcome: str, now: float, requestor: str = "") -> None:
        run = job.latest_run
        if run is not None and run.state in ACTIVE_RUN_STATES:
            run.finished_ts = now
        if outcome == "succeeded":
            if run is not None:
                run.state = job_pb2.RUN_STATE_SUCCEEDED
            self._set_state(job, submit_pb2.SUCCEEDED, now)
            assert run is not None
            self.store.emit(job, events.succeeded(job, run, now), now)
        elif outcome == "preempted":
            if run is not None:
                run.state = job_pb2.RUN_STATE_PREEMPTED
            self._set_state(job, submit_pb2.PREEMPTED, now)
            self.store.emit(job, events.preempted(job, run, now, requestor), now)
            self.store.emit(job, events.failed(job, run, now), now)
        else:
            if run is not None:
                run.state = job_pb2.RUN_STATE_FAILED
            self._set_state(job, submit_pb2.FAILED, now)
            self.store.emit(job, events.failed(job, run, now), now)

    # -- user actions -----------------------------------------------------

    def cancel(self, job: JobRecord, requestor: str, reason: str, *, announce: bool = True) -> bool:
        """Cancel an active job; False if it had already ended.

        ``announce`` False leaves out the cancelling event (a cancel the scheduler decides,
        such as CancelOnQueue, has no user request in the job set to announce it).
        """
        if is_terminal(job.state):
            return False
        now = self.clock.now()
        self._unschedule(job)
        self.runner.kill(job.job_id)
        job.cancel_reason, job.cancel_user, job.cancel_ts = reason, requestor, now
        job.logs = [(ts, line) for ts, line in job.logs if ts <= now]
        run = job.latest_run
        if run is not None and run.state in ACTIVE_RUN_STATES:
            run.state, run.finished_ts = job_pb2.RUN_STATE_CANCELLED, now
        if announce:
            self.store.emit(job, events.cancelling(job, now, requestor), now)
        self._set_state(job, submit_pb2.CANCELLED, now)
        self.store.emit(job, events.cancelled(job, now, requestor), now)
        return True

    def preempt(self, job: JobRecord, requestor: str, reason: str) -> None:
        """Preempt a leased, pending or running job with ``reason`` (others are left alone)."""
        if job.state not in LEASED_STATES:
            return
        now = self.clock.now()
        self._unschedule(job)
        self.runner.kill(job.job_id)
        job.logs = [(ts, line) for ts, line in job.logs if ts <= now]
        job.reason = reason
        self._finish(job, "preempted", now, requestor)

    def release(self, queue: str) -> None:
        """Lease again the jobs a cordoned ``queue`` held back (it was uncordoned)."""
        now = self.clock.now()
        for job_id in self._parked.pop(queue, []):
            job = self.store.jobs.get(job_id)
            if job is not None and job.state == submit_pb2.QUEUED and job.next_step == "lease":
                self._schedule(job, "lease", now)

    def reprioritize(self, job: JobRecord, priority: float, requestor: str) -> None:
        """Change an active job's priority (an ended job is left alone, as in Armada)."""
        if is_terminal(job.state):
            return
        now = self.clock.now()
        job.priority = priority
        self.store.mark(job)
        self.store.emit(job, events.reprioritizing(job, now, requestor), now)
        self.store.emit(job, events.reprioritized(job, now, requestor), now)

    # -- real execution callbacks (called from runner threads) -----------

    def _process_line(self, job_id: str, line: str) -> None:
        with self.store.lock:
            job = self.store.jobs[job_id]
            if job.state == submit_pb2.RUNNING:
                job.logs.append((self.clock.now(), line))
                self.store.mark(job)

    def _process_exit(self, job_id: str, code: int, reason: str) -> None:
        with self.store.lock:
            job = self.store.jobs[job_id]
            if self._stopping or job.state != submit_pb2.RUNNING:
                return  # cancelled, preempted or shutting down: the kill is not the outcome
            job.exit_code = code
            job.reason = reason
            self._finish(job, "succeeded" if code == 0 else "failed", self.clock.now())
