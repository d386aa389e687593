"""Armada clients whose job statuses come from the job service.

:class:`JobServiceStatusClient` (and its asyncio twin) satisfy
:class:`~armada_hooks.protocols.ArmadaProtocol`: ``get_job_status(job_ids)`` asks the job
service's batched ``GetJobStates`` RPC, every other call (submit, cancel, details, errors,
events, health) goes to the Armada client it wraps. An ``armada`` connection with the
``job_service_target`` extra gives the hook these (:mod:`armada_hooks.hooks.clients`), so
``ArmadaHook``, the shared poller and the synchronous wait all use the job service.

``get_job_status`` names only ids; the client names a job it submitted by its queue, job
set and id (remembered from ``submit_jobs``, up to ``REMEMBERED`` jobs), any other by its
id alone, which the job service looks up once. An answer the job service cannot vouch for
(its event stream of the job set has been down longer than its grace, the job had not
ended) raises :class:`StaleStatusError`, an UNAVAILABLE RPC error, so that the hook
retries it like an unreachable Armada instead of reading a stale state.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import grpc
import grpc.aio

from armada_hooks.jobservice.client import job_states_request
from armada_hooks.jobservice.protos import job_states_pb2, job_states_pb2_grpc

if TYPE_CHECKING:
    from armada_client.armada import event_pb2, health_pb2, job_pb2, submit_pb2
    from armada_client.typings import JobState
    from google.protobuf import empty_pb2

    from armada_hooks.protocols import ArmadaProtocol, AsyncArmadaProtocol
    from armada_hooks.protocols.armada import ExternalUriResponse

REMEMBERED = 100_000  # submitted jobs whose queue and job set the client remembers


class StaleStatusError(grpc.RpcError):
    """The job service cannot vouch for a job's state now (UNAVAILABLE: retry later)."""

    def __init__(self, details: str) -> None:
        super().__init__(details)
        self._details = details

    def code(self) -> grpc.StatusCode:
        """UNAVAILABLE, which the hook's retry policy retries."""
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        """Which job, and what the job service said failed."""
        return self._details


class _Refs:
    """The (queue, job set) of the jobs a client submitted or was told about."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._size = size
        self._known: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def learn(self, job_id: str, queue: str, job_set_id: str) -> None:
        if job_id and queue and job_set_id:
            self._known[job_id] = (queue, job_set_id)
            self._known.move_to_end(job_id)
            while len(self._known) > self._size:
                self._known.popitem(last=False)

    def learn_submitted(
        self, queue: str, job_set_id: str, response: submit_pb2.JobSubmitResponse
    ) -> None:
        for item in response.job_response_items:
            if not item.error:
                self.learn(item.job_id, queue, job_set_id)

    def request(self, job_ids: list[str]) -> job_states_pb2.JobStatesRequest:
        refs = []
        for job_id in job_ids:
            queue, job_set_id = self._known.get(job_id, ("", ""))
            refs.append((queue, job_set_id, job_id))
        return job_states_request(refs)

    def response(self, answers: job_states_pb2.JobStatesResponse) -> job_pb2.JobStatusResponse:
        from armada_client.armada import job_pb2

        states = {}
        for answer in answers.answers:
            job = answer.job
            if answer.certainty == job_states_pb2.STALE:
                raise StaleStatusError(
                    f"the job service cannot vouch for job {job.job_id} (job set "
                    f"{job.job_set_id!r}, queue {job.queue!r}) now: {answer.reason}"
                )
            self.learn(job.job_id, job.queue, job.job_set_id)
            states[job.job_id] = int(answer.state)
        return job_pb2.JobStatusResponse(job_states=states)


class JobServiceStatusClient:
    """:class:`~armada_hooks.protocols.ArmadaProtocol`: statuses from the job service.

    :param armada: the Armada client every other call goes to (its owner closes it).
    :param channel: a channel to the job service (its owner closes it).
    """

    def __init__(self, armada: ArmadaProtocol, channel: grpc.Channel) -> None:
        self.armada = armada
        self._states = job_states_pb2_grpc.JobStatesStub(channel)
        self._refs = _Refs()

    def get_job_status(self, job_ids: list[str]) -> job_pb2.JobStatusResponse:
        """States of the jobs, from the job service; every id is answered."""
        ids = list(job_ids)
        return self._refs.response(self._states.GetJobStates(self._refs.request(ids)))

    def submit_jobs(
        self, queue: str, job_set_id: str, job_request_items: list[submit_pb2.JobSubmitRequestItem]
    ) -> submit_pb2.JobSubmitResponse:
        """Submit to Armada; the new jobs' queue and job set are remembered."""
        response = self.armada.submit_jobs(queue, job_set_id, job_request_items)
        self._refs.learn_submitted(queue, job_set_id, response)
        return response

    def cancel_jobs(
        self, queue: str, job_set_id: str, job_id: str | None = None
    ) -> submit_pb2.CancellationResult:
        """Cancel one job (Armada)."""
        return self.armada.cancel_jobs(queue, job_set_id, job_id)

    def cancel_jobset(
        self, queue: str, job_set_id: str, filter_states: list[JobState]
    ) -> empty_pb2.Empty:
        """Cancel a job set's jobs (Armada)."""
        return self.armada.cancel_jobset(queue, job_set_id, filter_states)

    def get_job_status_by_external_job_uri(
        self, queue: str, job_set_id: str, external_job_uri: str
    ) -> ExternalUriResponse:
        """The jobs submitted with ``external_job_uri`` (Armada)."""
        return self.armada.get_job_status_by_external_job_uri(queue, job_set_id, external_job_uri)

    def get_job_details(self, job_ids: list[str]) -> job_pb2.JobDetailsResponse:
        """Details of the jobs (Armada)."""
        return self.armada.get_job_details(job_ids)

    def get_job_run_details(self, run_ids: list[str]) -> job_pb2.JobRunDetailsResponse:
        """Details of the runs (Armada)."""
        return self.armada.get_job_run_details(run_ids)

    def get_job_errors(self, job_ids: list[str]) -> job_pb2.JobErrorsResponse:
        """Failure reasons of the jobs (Armada)."""
        return self.armada.get_job_errors(job_ids)

    def get_job_events_stream(
        self, queue: str, job_set_id: str, from_message_id: str | None = None
    ) -> Iterator[event_pb2.EventStreamMessage]:
        """The job set's events (Armada)."""
        return self.armada.get_job_events_stream(queue, job_set_id, from_message_id)

    def submit_health(self) -> health_pb2.HealthCheckResponse:
        """Health of Armada's submit API."""
        return self.armada.submit_health()

    def event_health(self) -> health_pb2.HealthCheckResponse:
        """Health of Armada's event API."""
        return self.armada.event_health()


class AsyncJobServiceStatusClient:
    """:class:`~armada_hooks.protocols.AsyncArmadaProtocol`: statuses from the job service.

    :param armada: the asyncio Armada client every other call goes to.
    :param channel: an asyncio channel to the job service, of the same event loop.
    """

    def __init__(self, armada: AsyncArmadaProtocol, channel: grpc.aio.Channel) -> None:
        self.armada = armada
        self._states = job_states_pb2_grpc.JobStatesStub(channel)
        self._refs = _Refs()

    async def get_job_status(self, job_ids: list[str]) -> job_pb2.JobStatusResponse:
        """States of the jobs, from the job service; every id is answered."""
        ids = list(job_ids)
        answers = await self._states.GetJobStates(self._refs.request(ids))
        return self._refs.response(answers)

    async def submit_jobs(
        self, queue: str, job_set_id: str, job_request_items: list[submit_pb2.JobSubmitRequestItem]
    ) -> submit_pb2.JobSubmitResponse | AsyncIterator[submit_pb2.JobSubmitResponse]:
        """Submit to Armada; the new jobs' queue and job set are remembered."""
        response = await self.armada.submit_jobs(queue, job_set_id, job_request_items)
        if not isinstance(response, AsyncIterator):
            self._refs.learn_submitted(queue, job_set_id, response)
        return response

    async def cancel_jobs(
        self, queue: str, job_set_id: str, job_id: str | None = None
    ) -> submit_pb2.CancellationResult:
        """Cancel one job (Armada)."""
        return await self.armada.cancel_jobs(queue, job_set_id, job_id)

    async def cancel_jobset(
        self, queue: str, job_set_id: str, filter_states: list[JobState]
    ) -> empty_pb2.Empty:
        """Cancel a job set's jobs (Armada)."""
        return await self.armada.cancel_jobset(queue, job_set_id, filter_states)

    async def get_job_status_by_external_job_uri(
        self, queue: str, job_set_id: str, external_job_uri: str
    ) -> ExternalUriResponse:
        """The jobs submitted with ``external_job_uri`` (Armada)."""
        return await self.armada.get_job_status_by_external_job_uri(
            queue, job_set_id, external_job_uri
        )

    async def get_job_details(self, job_ids: list[str]) -> job_pb2.JobDetailsResponse:
        """Details of the jobs (Armada)."""
        return await self.armada.get_job_details(job_ids)

    async def get_job_run_details(self, run_ids: list[str]) -> job_pb2.JobRunDetailsResponse:
        """Details of the runs (Armada)."""
        return await self.armada.get_job_run_details(run_ids)

    async def get_job_errors(self, job_ids: list[str]) -> job_pb2.JobErrorsResponse:
        """Failure reasons of the jobs (Armada)."""
        return await self.armada.get_job_errors(job_ids)

    async def get_job_events_stream(
        self, queue: str, job_set_id: str, from_message_id: str | None = None
    ) -> AsyncIterator[event_pb2.EventStreamMessage]:
        """The job set's events (Armada)."""
        return await self.armada.get_job_events_stream(queue, job_set_id, from_message_id)

    async def submit_health(self) -> health_pb2.HealthCheckResponse:
        """Health of Armada's submit API."""
        return await self.armada.submit_health()

    async def event_health(self) -> health_pb2.HealthCheckResponse:
        """Health of Armada's event API."""
        return await self.armada.event_health()
