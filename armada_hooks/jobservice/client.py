"""Clients of the job service, with the names and calls Armada's old operator documented.

``JobServiceClient(channel)`` and ``JobServiceAsyncIOClient(channel)`` answer
``get_job_status(queue, job_set_id, job_id)`` (a ``JobServiceResponse``: historic state
and ``error``) and ``health()``; ``get_job_states(jobs)`` asks our batched ``JobStates``
RPC for Armada's own states. Open the channel with :func:`armada_hooks.channels.open_channel`
(TLS, token) or ``grpc.insecure_channel``; the caller owns and closes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.protobuf import empty_pb2

from armada_hooks.jobservice.protos import (
    job_states_pb2,
    job_states_pb2_grpc,
    jobservice_pb2,
    jobservice_pb2_grpc,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    import grpc
    import grpc.aio


def job_states_request(jobs: Iterable[tuple[str, str, str]]) -> job_states_pb2.JobStatesRequest:
    """A ``JobStatesRequest`` for (queue, job set id, job id) triples."""
    return job_states_pb2.JobStatesRequest(
        jobs=[job_states_pb2.JobRef(queue=q, job_set_id=s, job_id=j) for q, s, j in jobs]
    )


class JobServiceClient:
    """A synchronous client of the job service on ``channel``."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.job_stub = jobservice_pb2_grpc.JobServiceStub(channel)
        self.states_stub = job_states_pb2_grpc.JobStatesStub(channel)

    def get_job_status(
        self, queue: str, job_set_id: str, job_id: str
    ) -> jobservice_pb2.JobServiceResponse:
        """The job's state (``.state``, a historic ``JobServiceResponse.State``) and ``.error``."""
        return self.job_stub.GetJobStatus(
            jobservice_pb2.JobServiceRequest(job_id=job_id, job_set_id=job_set_id, queue=queue)
        )

    def health(self) -> jobservice_pb2.HealthCheckResponse:
        """SERVING while the job service can reach Armada, NOT_SERVING otherwise."""
        return self.job_stub.Health(empty_pb2.Empty())

    def get_job_states(
        self, jobs: Iterable[tuple[str, str, str]]
    ) -> job_states_pb2.JobStatesResponse:
        """Armada's state, reason and certainty of each (queue, job set id, job id)."""
        return self.states_stub.GetJobStates(job_states_request(jobs))


class JobServiceAsyncIOClient:
    """:class:`JobServiceClient` over an asyncio channel (create it in the loop using it)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.job_stub = jobservice_pb2_grpc.JobServiceStub(channel)
        self.states_stub = job_states_pb2_grpc.JobStatesStub(channel)

    async def get_job_status(
        self, queue: str, job_set_id: str, job_id: str
    ) -> jobservice_pb2.JobServiceResponse:
        """The job's state and ``error`` (see :meth:`JobServiceClient.get_job_status`)."""
        return await self.job_stub.GetJobStatus(
            jobservice_pb2.JobServiceRequest(job_id=job_id, job_set_id=job_set_id, queue=queue)
        )

    async def health(self) -> jobservice_pb2.HealthCheckResponse:
        """SERVING while the job service can reach Armada, NOT_SERVING otherwise."""
        return await self.job_stub.Health(empty_pb2.Empty())

    async def get_job_states(
        self, jobs: Iterable[tuple[str, str, str]]
    ) -> job_states_pb2.JobStatesResponse:
        """Armada's state, reason and certainty of each (queue, job set id, job id)."""
        return await self.states_stub.GetJobStates(job_states_request(jobs))
