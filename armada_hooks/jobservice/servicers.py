"""The job service's gRPC faces: the historic ``jobservice.JobService`` and our batched RPC.

Both answer from :class:`~.core.JobServiceCore`; the historic one folds Armada's state
into the old vocabulary (:func:`~.historic.historic_state`). A request that names no
queue, job set or job id is refused with INVALID_ARGUMENT, saying which field is empty.
Before answering about a queue, each checks with Armada that the caller (its bearer
token, or none) may watch it (:mod:`.permissions`): PERMISSION_DENIED if not, UNAVAILABLE
if Armada cannot be asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc

from armada_hooks.jobservice.historic import historic_state, to_pb
from armada_hooks.jobservice.permissions import AccessDenied, bearer_token
from armada_hooks.jobservice.protos import (
    job_states_pb2,
    job_states_pb2_grpc,
    jobservice_pb2,
    jobservice_pb2_grpc,
)
from armada_hooks.rpc import describe_failure

if TYPE_CHECKING:
    from typing import Any

    from google.protobuf import empty_pb2

    from armada_hooks.jobservice.core import JobServiceCore

    _Context = grpc.aio.ServicerContext[Any, Any]

MAX_BATCH = 10_000  # jobs one GetJobStates call may name


def missing_fields(queue: str, job_set_id: str, job_id: str) -> list[str]:
    """The names of the empty fields of a job reference."""
    named = {"queue": queue, "job_set_id": job_set_id, "job_id": job_id}
    return [name for name, value in named.items() if not value]


async def admit(core: JobServiceCore, context: _Context, queues: set[str]) -> None:
    """Abort the call unless its caller may watch every queue in ``queues``."""
    token = bearer_token(context.invocation_metadata())
    for queue in sorted(queues):
        try:
            await core.access.check(token, queue)
        except AccessDenied as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
        except Exception as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))


class HistoricJobService(jobservice_pb2_grpc.JobServiceServicer):
    """``jobservice.JobService``: GetJobStatus and Health, as the old clients call them."""

    def __init__(self, core: JobServiceCore) -> None:
        self.core = core

    async def GetJobStatus(
        self, request: jobservice_pb2.JobServiceRequest, context: _Context
    ) -> jobservice_pb2.JobServiceResponse:
        """The job's state in the historic vocabulary, with the reason in ``error``."""
        missing = missing_fields(request.queue, request.job_set_id, request.job_id)
        if missing:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"GetJobStatus needs {', '.join(missing)}: name the job, its job set and queue",
            )
        await admit(self.core, context, {request.queue})
        [answer] = await self.core.answer([(request.queue, request.job_set_id, request.job_id)])
        known = answer.known
        state, error = historic_state(known.state, known.reason, known.certainty)
        return jobservice_pb2.JobServiceResponse(state=to_pb(state), error=error)  # type: ignore[arg-type]

    async def Health(
        self, request: empty_pb2.Empty, context: _Context
    ) -> jobservice_pb2.HealthCheckResponse:
        """SERVING while Armada answers its own Health; NOT_SERVING when it cannot be reached."""
        reachable = await self.core.reachable()
        status = (
            jobservice_pb2.HealthCheckResponse.SERVING
            if reachable
            else jobservice_pb2.HealthCheckResponse.NOT_SERVING
        )
        return jobservice_pb2.HealthCheckResponse(status=status)


class JobStatesService(job_states_pb2_grpc.JobStatesServicer):
    """``armada_hooks.jobservice.JobStates``: many jobs, of any job sets, in one call."""

    def __init__(self, core: JobServiceCore) -> None:
        self.core = core

    async def GetJobStates(
        self, request: job_states_pb2.JobStatesRequest, context: _Context
    ) -> job_states_pb2.JobStatesResponse:
        """Armada's state, the reason and the certainty of every job named, in order."""
        if len(request.jobs) > MAX_BATCH:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"GetJobStates names {len(request.jobs)} jobs; ask for at most {MAX_BATCH}",
            )
        refs = [(j.queue, j.job_set_id, j.job_id) for j in request.jobs]
        for i, ref in enumerate(refs):
            missing = missing_fields(*ref)
            if missing and missing != ["queue", "job_set_id"]:  # an id alone is looked up
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"GetJobStates: jobs[{i}] has no {', '.join(missing)} (name a job by "
                    "queue, job set and id, or by its id alone)",
                )
        located = await self._locate(refs, context)
        await admit(self.core, context, {ref[0] for ref in located if ref is not None})
        found = [ref for ref in located if ref is not None]
        answered = iter(await self.core.answer(found))
        answers = []
        for job, where in zip(request.jobs, located, strict=True):
            if where is None:  # Armada's query API does not know this id (yet)
                answers.append(
                    job_states_pb2.JobStateAnswer(
                        job=job, state=job_states_pb2.UNKNOWN, certainty=job_states_pb2.NOT_FOUND
                    )
                )
                continue
            a = next(answered)
            answers.append(
                job_states_pb2.JobStateAnswer(
                    job=job_states_pb2.JobRef(
                        queue=a.queue, job_set_id=a.job_set_id, job_id=a.job_id
                    ),
                    state=a.known.state.value,  # type: ignore[arg-type]
                    reason=a.known.reason,
                    certainty=a.known.certainty,  # type: ignore[arg-type]
                )
            )
        return job_states_pb2.JobStatesResponse(answers=answers)

    async def _locate(
        self, refs: list[tuple[str, str, str]], context: _Context
    ) -> list[tuple[str, str, str] | None]:
        """Each ref with its queue and job set (looked up for an id alone; None: unknown)."""
        alone = [job_id for queue, _, job_id in refs if not queue]
        if not alone:
            return list(refs)
        try:
            found = await self.core.lookups.job_sets(alone)
        except Exception as exc:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                f"the job sets of {len(alone)} ids: {describe_failure(exc)}",
            )
        located: list[tuple[str, str, str] | None] = []
        for queue, job_set_id, job_id in refs:
            key = (queue, job_set_id) if queue else found.get(job_id)
            located.append(None if key is None else (key[0], key[1], job_id))
        return located
