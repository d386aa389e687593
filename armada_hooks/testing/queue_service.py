"""Armada's queue API: ``api.QueueService`` and the queue RPCs ``api.Submit`` still serves.

Follows ``internal/server/queue/queue_service.go`` over its Postgres repository
(``queue_repository.go``): creating and updating both write the queue whether or not it
exists, deleting a missing queue succeeds, and a queue reads back as
``pkg/client/queue/queue.go`` stores it — owners turned into a permission for every
verb, the deprecated ``resource_limits`` and ``labels_deprecated`` dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from armada_client.armada import submit_pb2, submit_pb2_grpc
from google.protobuf import empty_pb2

from armada_hooks.testing.cluster import POOL, priority_class
from armada_hooks.testing.core import not_found
from armada_hooks.testing.gofmt import go_quote, rpc_error_text
from armada_hooks.testing.records import LEASED_STATES
from armada_hooks.testing.validation import single_pod_spec

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Iterator

    from armada_hooks.testing.core import Core
    from armada_hooks.testing.records import JobRecord

PERMISSION_VERBS = ("submit", "cancel", "preempt", "reprioritize", "watch")
SUBJECT_KINDS = ("User", "Group")
# The job states CancelOnQueue accepts, and the local states each one selects.
_CANCEL_STATES = {
    submit_pb2.QUEUED: frozenset({submit_pb2.SUBMITTED, submit_pb2.QUEUED}),
    submit_pb2.LEASED: frozenset({submit_pb2.LEASED}),
    submit_pb2.PENDING: frozenset({submit_pb2.PENDING}),
    submit_pb2.RUNNING: frozenset({submit_pb2.RUNNING}),
}
API_PREEMPTION_REASON = "Preempted - preemption requested via API"  # scheduler.go
CANCEL_ON_QUEUE_REASON = "cancelled by CancelOnQueue"  # scheduleringester/instructions.go


class QueueError(ValueError):
    """A queue definition Armada refuses; the message is Armada's."""


def stored_queue(request: submit_pb2.Queue, *, owner: str | None = None) -> submit_pb2.Queue:
    """The queue as Armada stores and returns it (``queue.NewQueue`` then ``ToAPI``).

    ``owner`` is the user made owner of a queue created without user owners.
    """
    if request.priority_factor < 1.0:
        raise QueueError(
            "failed to map priority factor. priority factor cannot be lower than 1.0. "
            f"Value: {request.priority_factor:f}"
        )
    users = list(request.user_owners) or ([owner] if owner else [])
    queue = submit_pb2.Queue(
        name=request.name,
        priority_factor=request.priority_factor,
        cordoned=request.cordoned,
        labels=dict(request.labels),
        retry_policies=list(request.retry_policies),
    )
    for pc, limits in request.resource_limits_by_priority_class_name.items():
        queue.resource_limits_by_priority_class_name[pc].CopyFrom(limits)
    if users or request.group_owners:
        subjects = [("User", u) for u in users] + [("Group", g) for g in request.group_owners]
        queue.permissions.add(
            subjects=[submit_pb2.Queue.Permissions.Subject(kind=k, name=n) for k, n in subjects],
            verbs=PERMISSION_VERBS,
        )
    for index, permission in enumerate(request.permissions):
        for subject_index, subject in enumerate(permission.subjects):
            if subject.kind not in SUBJECT_KINDS:
                raise QueueError(
                    f"failed to map permission with index: {index}. failed to map subjects. "
                    f"failed to map kind with index: {subject_index}. "
                    f"invalid kind value: {subject.kind}"
                )
        queue.permissions.append(permission)
    for key, value in sorted(request.labels.items()):
        if not key or not value:
            raise QueueError(
                f"queue labels must not have an empty key or value, key: {key}, value: {value}"
            )
    return queue


@dataclass(frozen=True)
class _Write:
    """How CreateQueue or UpdateQueue words its errors."""

    invalid: str  # before a definition NewQueue refuses
    refused: str  # before a definition the repository refuses
    default_owner: bool  # the caller owns a queue given no user owners


_CREATE = _Write("error validating queue", "error creating queue", default_owner=True)
_UPDATE = _Write("error", "error updating queue", default_owner=False)


class QueueOperations:
    """Queue CRUD, served by both ``api.Submit`` (legacy) and ``api.QueueService``."""

    core: Core

    def _write(self, request: submit_pb2.Queue, how: _Write) -> str:
        """Store the queue; Armada's error text if it refuses it ('' when stored)."""
        owner = self.core.settings.user if how.default_owner else None
        try:
            queue = stored_queue(request, owner=owner)
        except QueueError as exc:
            return f"{how.invalid}: {exc}"
        if queue.retry_policies:  # the local Armada has no retry policies to refer to
            missing = ", ".join(go_quote(name) for name in queue.retry_policies)
            return f"{how.refused}: retry policies do not exist: {missing}"
        with self.core.store.lock:
            self._put(queue)
        return ""

    def _put(self, queue: submit_pb2.Queue) -> None:
        """Store ``queue`` (lock held); its held-back jobs go on once it is not cordoned."""
        self.core.store.put_queue(queue)
        if not queue.cordoned:
            self.core.lifecycle.release(queue.name)

    def _write_one(
        self, request: submit_pb2.Queue, how: _Write, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        error = self._write(request, how)
        if error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, error)
        return empty_pb2.Empty()

    def _write_all(
        self, queues: Iterable[submit_pb2.Queue], how: _Write
    ) -> Iterator[tuple[submit_pb2.Queue, str]]:
        """Each queue Armada refused, with its error as a batch reply spells it."""
        for queue in queues:
            error = self._write(queue, how)
            if error:
                yield queue, rpc_error_text(grpc.StatusCode.INVALID_ARGUMENT, error)

    def CreateQueue(
        self, request: submit_pb2.Queue, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Create (or overwrite) a queue; INVALID_ARGUMENT for a definition Armada refuses."""
        return self._write_one(request, _CREATE, context)

    def CreateQueues(
        self, request: submit_pb2.QueueList, context: grpc.ServicerContext
    ) -> submit_pb2.BatchQueueCreateResponse:
        """Create several queues; the ones that fail are listed with their error."""
        failed = [
            submit_pb2.QueueCreateResponse(queue=queue, error=error)
            for queue, error in self._write_all(request.queues, _CREATE)
        ]
        return submit_pb2.BatchQueueCreateResponse(failed_queues=failed)

    def UpdateQueue(
        self, request: submit_pb2.Queue, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Replace (or create) a queue; INVALID_ARGUMENT for a definition Armada refuses."""
        return self._write_one(request, _UPDATE, context)

    def UpdateQueues(
        self, request: submit_pb2.QueueList, context: grpc.ServicerContext
    ) -> submit_pb2.BatchQueueUpdateResponse:
        """Replace several queues; the ones that fail are listed with their error."""
        failed = [
            submit_pb2.QueueUpdateResponse(queue=queue, error=error)
            for queue, error in self._write_all(request.queues, _UPDATE)
        ]
        return submit_pb2.BatchQueueUpdateResponse(failed_queues=failed)

    def DeleteQueue(
        self, request: submit_pb2.QueueDeleteRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Delete a queue (its jobs stay); deleting one that does not exist succeeds."""
        with self.core.store.lock:
            self.core.store.delete_queue(request.name)
            self.core.lifecycle.release(request.name)
        return empty_pb2.Empty()

    def GetQueue(
        self, request: submit_pb2.QueueGetRequest, context: grpc.ServicerContext
    ) -> submit_pb2.Queue:
        """One queue; NOT_FOUND if it does not exist."""
        with self.core.store.lock:
            queue = self.core.store.queues.get(request.name)
        if queue is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"error: {not_found(request.name)}")
        return queue

    def GetQueues(
        self, request: submit_pb2.StreamingQueueGetRequest, context: grpc.ServicerContext
    ) -> Iterator[submit_pb2.StreamingQueueMessage]:
        """Every queue in name order (at most ``num`` if set), then an end marker."""
        with self.core.store.lock:
            queues = sorted(self.core.store.queues.values(), key=lambda q: q.name)
        if request.num:
            queues = queues[: request.num]
        for queue in queues:
            yield submit_pb2.StreamingQueueMessage(queue=queue)
        yield submit_pb2.StreamingQueueMessage(end=submit_pb2.EndMarker())


class QueueService(QueueOperations, submit_pb2_grpc.QueueServiceServicer):
    """``api.QueueService``, the queue API the current ``ArmadaClient`` calls."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def CordonQueue(
        self, request: submit_pb2.QueueCordonRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Stop leasing the queue's jobs; submissions are still accepted and wait."""
        return self._set_cordoned(request.name, True, "cordon", context)

    def UncordonQueue(
        self, request: submit_pb2.QueueUncordonRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Lease the queue's jobs again."""
        return self._set_cordoned(request.name, False, "uncordon", context)

    def _set_cordoned(
        self, name: str, cordoned: bool, verb: str, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        # Armada returns these errors unwrapped, so they reach the caller as UNKNOWN.
        if not name:
            context.abort(grpc.StatusCode.UNKNOWN, f"cannot {verb} queue with empty name")
        with self.core.store.lock:
            queue = self.core.store.queues.get(name)
            if queue is None:
                context.abort(grpc.StatusCode.UNKNOWN, not_found(name))
            updated = submit_pb2.Queue()
            updated.CopyFrom(queue)
            updated.cordoned = cordoned
            self._put(updated)
        return empty_pb2.Empty()

    def PreemptOnQueue(
        self, request: submit_pb2.QueuePreemptRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Preempt the queue's leased, pending and running jobs (preemptible ones only)."""
        if not request.name:
            context.abort(grpc.StatusCode.UNKNOWN, "cannot preempt jobs on queue with empty name")
        core = self.core
        with core.store.lock:
            for job in self._select(request.name, LEASED_STATES, request):
                core.preempt(job, API_PREEMPTION_REASON)
        return empty_pb2.Empty()

    def CancelOnQueue(
        self, request: submit_pb2.QueueCancelRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Cancel the queue's jobs in the given active states (none given: none cancelled)."""
        if not request.name:
            context.abort(grpc.StatusCode.UNKNOWN, "cannot cancel jobs on queue with empty name")
        if any(state not in _CANCEL_STATES for state in request.jobStates):
            context.abort(grpc.StatusCode.UNKNOWN, "provided job states must be non-terminal")
        states = frozenset().union(*(_CANCEL_STATES[s] for s in request.jobStates))
        core = self.core
        with core.store.lock:
            for job in self._select(request.name, states, request):
                core.lifecycle.cancel(
                    job, core.settings.user, CANCEL_ON_QUEUE_REASON, announce=False
                )
        return empty_pb2.Empty()

    def _select(
        self,
        queue: str,
        states: Collection[int],
        request: submit_pb2.QueuePreemptRequest | submit_pb2.QueueCancelRequest,
    ) -> list[JobRecord]:
        """The queue's jobs in ``states``, narrowed to the request's priority classes and pools."""
        if request.pools and POOL not in request.pools:
            return []
        classes = set(request.priorityClasses)
        return [
            job
            for job in self.core.store.jobs.values()
            if job.queue == queue
            and job.state in states
            and (not classes or priority_class(single_pod_spec(job.item)) in classes)
        ]
