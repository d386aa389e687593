"""``ArmadaProtocol`` and ``AsyncArmadaProtocol``: Armada's job API as the hook uses it.

Names and argument shapes are ``armada_client``'s. Two return types are unions because
``armada_client`` 0.5.1 mis-annotates them (``get_job_status_by_external_job_uri``
returns a ``JobStatusResponse`` but is annotated ``JobDetailsResponse``; the async
``submit_jobs`` returns a ``JobSubmitResponse`` but is annotated ``AsyncIterator``): the
union lets the real clients conform under mypy, and callers narrow at run time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from armada_client.armada import event_pb2, health_pb2, job_pb2, submit_pb2
    from armada_client.typings import JobState
    from google.protobuf import empty_pb2

    ExternalUriResponse = job_pb2.JobStatusResponse | job_pb2.JobDetailsResponse


@runtime_checkable
class ArmadaProtocol(Protocol):
    """A synchronous Armada client: submit, cancel, query, watch, health."""

    def submit_jobs(
        self, queue: str, job_set_id: str, job_request_items: list[submit_pb2.JobSubmitRequestItem]
    ) -> submit_pb2.JobSubmitResponse:
        """Submit items to (queue, job set) in one request."""
        ...

    def cancel_jobs(
        self, queue: str, job_set_id: str, job_id: str | None = None
    ) -> submit_pb2.CancellationResult:
        """Cancel one job of a job set."""
        ...

    def cancel_jobset(
        self, queue: str, job_set_id: str, filter_states: list[JobState]
    ) -> empty_pb2.Empty:
        """Cancel a job set's jobs (those in ``filter_states`` when given)."""
        ...

    def get_job_status(self, job_ids: list[str]) -> job_pb2.JobStatusResponse:
        """States of up to 500 jobs; every id is answered."""
        ...

    def get_job_status_by_external_job_uri(
        self, queue: str, job_set_id: str, external_job_uri: str
    ) -> ExternalUriResponse:
        """States of the jobs of (queue, job set) submitted with ``external_job_uri``."""
        ...

    def get_job_details(self, job_ids: list[str]) -> job_pb2.JobDetailsResponse:
        """Details (with runs) of up to 500 jobs; unknown ids are left out."""
        ...

    def get_job_run_details(self, run_ids: list[str]) -> job_pb2.JobRunDetailsResponse:
        """Details of up to 500 runs."""
        ...

    def get_job_errors(self, job_ids: list[str]) -> job_pb2.JobErrorsResponse:
        """Failure reasons of up to 500 jobs."""
        ...

    def get_job_events_stream(
        self, queue: str, job_set_id: str, from_message_id: str | None = None
    ) -> Iterator[event_pb2.EventStreamMessage]:
        """The job set's events after ``from_message_id``, watched."""
        ...

    def submit_health(self) -> health_pb2.HealthCheckResponse:
        """Health of the submit API."""
        ...

    def event_health(self) -> health_pb2.HealthCheckResponse:
        """Health of the event API."""
        ...


@runtime_checkable
class AsyncArmadaProtocol(Protocol):
    """The asyncio twin of :class:`ArmadaProtocol` (``ArmadaAsyncIOClient``'s shape)."""

    async def submit_jobs(
        self, queue: str, job_set_id: str, job_request_items: list[submit_pb2.JobSubmitRequestItem]
    ) -> submit_pb2.JobSubmitResponse | AsyncIterator[submit_pb2.JobSubmitResponse]:
        """Submit items to (queue, job set) in one request."""
        ...

    async def cancel_jobs(
        self, queue: str, job_set_id: str, job_id: str | None = None
    ) -> submit_pb2.CancellationResult:
        """Cancel one job of a job set."""
        ...

    async def cancel_jobset(
        self, queue: str, job_set_id: str, filter_states: list[JobState]
    ) -> empty_pb2.Empty:
        """Cancel a job set's jobs (those in ``filter_states`` when given)."""
        ...

    async def get_job_status(self, job_ids: list[str]) -> job_pb2.JobStatusResponse:
        """States of up to 500 jobs; every id is answered."""
        ...

    async def get_job_status_by_external_job_uri(
        self, queue: str, job_set_id: str, external_job_uri: str
    ) -> ExternalUriResponse:
        """States of the jobs of (queue, job set) submitted with ``external_job_uri``."""
        ...

    async def get_job_details(self, job_ids: list[str]) -> job_pb2.JobDetailsResponse:
        """Details (with runs) of up to 500 jobs; unknown ids are left out."""
        ...

    async def get_job_run_details(self, run_ids: list[str]) -> job_pb2.JobRunDetailsResponse:
        """Details of up to 500 runs."""
        ...

    async def get_job_errors(self, job_ids: list[str]) -> job_pb2.JobErrorsResponse:
        """Failure reasons of up to 500 jobs."""
        ...

    async def get_job_events_stream(
        self, queue: str, job_set_id: str, from_message_id: str | None = None
    ) -> AsyncIterator[event_pb2.EventStreamMessage]:
        """The job set's events after ``from_message_id``, watched."""
        ...

    async def submit_health(self) -> health_pb2.HealthCheckResponse:
        """Health of the submit API."""
        ...

    async def event_health(self) -> health_pb2.HealthCheckResponse:
        """Health of the event API."""
        ...
