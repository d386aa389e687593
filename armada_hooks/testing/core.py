"""What the local Armada's services share: state, lifecycle, settings and query rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc

from armada_hooks.defaults import MAX_QUERY_IDS  # Armada's queryapi.maxQueryItems
from armada_hooks.testing.behaviour import JobBehaviour
from armada_hooks.testing.cluster import DEFAULT_NODES, Node, preemptible
from armada_hooks.testing.gofmt import go_quote
from armada_hooks.testing.validation import single_pod_spec

if TYPE_CHECKING:
    from armada_hooks.testing.faults import Faults
    from armada_hooks.testing.lifecycle import Lifecycle
    from armada_hooks.testing.records import JobRecord
    from armada_hooks.testing.store import Store


@dataclass
class Settings:
    """Server-wide behaviour; mutable while the server runs (tests adjust it)."""

    auto_create_queues: bool = False
    ingestion_delay: float = 0.0
    defaults: JobBehaviour = field(default_factory=JobBehaviour)
    user: str = "anonymous"
    nodes: tuple[Node, ...] = DEFAULT_NODES


@dataclass
class Core:
    """The parts every servicer uses."""

    store: Store
    lifecycle: Lifecycle
    settings: Settings
    faults: Faults

    def ingested(self, job_id: str, now: float) -> JobRecord | None:
        """The job as the query API sees it: absent until its ingestion delay has passed."""
        job = self.store.jobs.get(job_id)
        if job is None or now < job.ingested_ts:
            return None
        return job

    def check_queue(self, name: str, context: grpc.ServicerContext) -> None:
        """PERMISSION_DENIED for an unknown queue, as Armada's queue cache answers."""
        if name not in self.store.queues:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, not_found(name) + queue_hint(name))

    def preempt(self, job: JobRecord, reason: str) -> None:
        """Armada's scheduler on a preemption request: it ends a preemptible job's run only.

        ``scheduler.go`` preempts a run marked for preemption only if the job's priority
        class is preemptible; any other job carries on (lock held).
        """
        if preemptible(single_pod_spec(job.item)):
            self.lifecycle.preempt(job, self.settings.user, reason)


def not_found(queue: str) -> str:
    """The text of Armada's ErrQueueNotFound (``internal/server/queue/queue_repository.go``)."""
    return f"could not find queue {go_quote(queue)}"


def queue_hint(queue: str) -> str:
    """What a local-Armada user can do about an unknown queue (after Armada's own text)."""
    return (
        f" (the local Armada has no queue {go_quote(queue)}: create it with "
        f"LocalArmada(queues=[{queue!r}]), local_armada.create_queue({queue!r}) or "
        f"`armada-hooks local-armada --queue {queue}`, or let it create queues on submit "
        "with auto_create_queues=True / --auto-create-queues)"
    )


def check_query_size(ids: object, what: str, context: grpc.ServicerContext) -> None:
    """Armada's query API refuses more than 500 ids per request (a plain error: UNKNOWN)."""
    n = len(ids)  # type: ignore[arg-type]
    if n > MAX_QUERY_IDS:
        context.abort(
            grpc.StatusCode.UNKNOWN, f"request contained more than {MAX_QUERY_IDS} {what}"
        )
