"""The local Armada's one call beyond Armada's API: which job sets a queue has.

Armada itself has no call that lists a queue's job sets (nor its jobs): a client must
know the job set it reads. The local Armada also serves
``/armadahooks.LocalArmada/ListJobSets``, with JSON bodies so that no ``.proto`` is
needed: ``{"queue": "q"}`` in, ``{"job_sets": [{"id": ..., "jobs": 3, "states":
{"RUNNING": 1, "SUCCEEDED": 2}}]}`` out, in the order the sets got their first job. Any
other server answers it UNIMPLEMENTED. Like every other call it passes the server's gate
(token, counters, faults).
"""

from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import grpc

from armada_hooks.states import state_name

if TYPE_CHECKING:
    from armada_hooks.testing.core import Core

SERVICE = "armadahooks.LocalArmada"
METHOD = "ListJobSets"
PATH = f"/{SERVICE}/{METHOD}"


@dataclass(frozen=True)
class JobSetSummary:
    """One job set of a queue: how many jobs it has, and how many are in each state."""

    job_set_id: str
    jobs: int
    states: dict[str, int] = field(default_factory=dict)


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def _decode(data: bytes) -> dict[str, Any]:
    body = json.loads(data or b"{}")
    if not isinstance(body, dict):
        raise ValueError(f"a {METHOD} body must be a JSON object, got {type(body).__name__}")
    return body


class JobSetsService:
    """Answers ListJobSets from the store, under its lock."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def ListJobSets(self, request: dict[str, Any], context: grpc.ServicerContext) -> dict[str, Any]:
        """The queue's job sets; an unknown queue is refused as Armada refuses it."""
        queue = str(request.get("queue", ""))
        store = self.core.store
        with store.lock:
            self.core.check_queue(queue, context)
            counts: dict[str, collections.Counter[str]] = {}
            for job in store.jobs.values():
                if job.queue == queue:
                    counts.setdefault(job.job_set_id, collections.Counter())[
                        state_name(job.state)
                    ] += 1
        return {
            "job_sets": [
                {"id": name, "jobs": sum(states.values()), "states": dict(states)}
                for name, states in counts.items()
            ]
        }


class _Registry(Protocol):
    def add_generic_rpc_handlers(self, handlers: Any) -> None: ...

    def add_registered_method_handlers(self, service: str, handlers: Any) -> None: ...


def add_to_server(service: JobSetsService, server: _Registry) -> None:
    """Register ListJobSets on ``server``, as the generated ``add_*_to_server`` functions do."""
    handlers = {
        METHOD: grpc.unary_unary_rpc_method_handler(
            service.ListJobSets, request_deserializer=_decode, response_serializer=_encode
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)


def list_job_sets(channel: grpc.Channel, queue: str) -> list[JobSetSummary]:
    """Ask the server on ``channel`` for ``queue``'s job sets (raises ``grpc.RpcError``)."""
    call = channel.unary_unary(PATH, request_serializer=_encode, response_deserializer=_decode)
    answer = call({"queue": queue})
    return [
        JobSetSummary(
            str(s["id"]), int(s["jobs"]), {str(k): int(v) for k, v in s["states"].items()}
        )
        for s in answer.get("job_sets", [])
    ]
