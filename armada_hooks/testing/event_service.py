"""Armada's event API (``api.Event``): a job set's events, replayed and optionally watched.

Message ids are opaque; a stream resumed with ``from_message_id`` starts strictly after
that message. With ``watch`` the stream stays open and new events arrive as they happen
(real Armada polls its store every few seconds; here they are pushed at once).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import grpc
from armada_client.armada import event_pb2, event_pb2_grpc

from armada_hooks.testing.store import message_seq
from armada_hooks.testing.submit_service import SERVING

if TYPE_CHECKING:
    from collections.abc import Iterator

    from google.protobuf import empty_pb2

    from armada_hooks.testing.core import Core

# A quiet watching stream is woken by a new event, by its caller leaving (the RPC's
# termination callback) or by the server stopping; this is only a safety net, so a
# thousand idle streams cost next to nothing.
_IDLE_CHECK = 5.0


class EventService(event_pb2_grpc.EventServicer):
    """``api.Event``: GetJobSetEvents, Watch and Health."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.stopping = False

    def Health(self, request: empty_pb2.Empty, context: grpc.ServicerContext) -> object:
        """Always SERVING while the server runs."""
        return SERVING

    def GetJobSetEvents(
        self, request: event_pb2.JobSetRequest, context: grpc.ServicerContext
    ) -> Iterator[event_pb2.EventStreamMessage]:
        """Stream the job set's events after ``from_message_id``; keep going if ``watch``."""
        store = self.core.store
        try:
            position = message_seq(request.from_message_id) if request.from_message_id else 0
        except ValueError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"[GetJobSetEvents] {exc}")
        with store.lock:
            if request.queue not in store.queues:
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"[GetJobSetEvents] Queue {request.queue} does not exist",
                )
            key = (request.queue, request.id)
            existing = store.job_sets.get(key)
            if request.errorIfMissing and (existing is None or not existing.events):
                context.abort(
                    grpc.StatusCode.NOT_FOUND,
                    f"[GetJobSetEvents] Jobset {request.id} for queue {request.queue} "
                    "does not exist",
                )
            if existing is None and not request.watch:
                return  # nothing to replay; reading a job set never creates it
            log = existing if existing is not None else store.job_set(key)
            end = len(log.events)
        if request.watch:
            context.add_callback(lambda: _wake(store.lock, log.cond))
        drop_after = self.core.faults.stream_drop_after()
        sent = 0
        while True:
            with store.lock:
                while (
                    request.watch
                    and position >= len(log.events)
                    and not self.stopping
                    and context.is_active()
                ):
                    log.cond.wait(_IDLE_CHECK)
                limit = len(log.events) if request.watch else end
                batch = log.events[position:limit]
            if not context.is_active():
                return
            if self.stopping:
                context.abort(grpc.StatusCode.UNAVAILABLE, "the local Armada is shutting down")
            for message in batch:
                if drop_after is not None and sent >= drop_after:
                    context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        "event stream dropped by the local Armada's fault injection",
                    )
                yield message
                sent += 1
                position += 1
            if not request.watch:
                return

    def Watch(
        self, request: event_pb2.WatchRequest, context: grpc.ServicerContext
    ) -> Iterator[event_pb2.EventStreamMessage]:
        """GetJobSetEvents watching, erroring if the job set is missing (server/event/event.go)."""
        return self.GetJobSetEvents(
            event_pb2.JobSetRequest(
                id=request.job_set_id,
                queue=request.queue,
                from_message_id=request.from_id,
                watch=True,
                errorIfMissing=True,
            ),
            context,
        )

    def wake_all(self) -> None:
        """Release every waiting stream (server stop)."""
        self.stopping = True
        with self.core.store.lock:
            for log in self.core.store.job_sets.values():
                log.cond.notify_all()


def _wake(lock: threading.Lock | threading.RLock, cond: threading.Condition) -> None:
    """Wake the streams waiting on ``cond`` (one of them has just ended)."""
    with lock:
        cond.notify_all()
