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
            if missing:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"GetJobStates: jobs[{i}] has no {', '.join(missing)}",
                )
        await admit(self.core, context, {queue for queue, _, _ in refs})
        answers = await self.core.answer(refs)
        return job_states_pb2.JobStatesResponse(
            answers=[
                job_states_pb2.JobStateAnswer(
                    job=job,
                    state=a.known.state.value,  # type: ignore[arg-type]
                    reason=a.known.reason,
                    certainty=a.known.certainty,  # type: ignore[arg-type]
                )
                for job, a in zip(request.jobs, answers, strict=True)
            ]
        )
