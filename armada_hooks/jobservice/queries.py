"""Batched questions to Armada's query API: unseen ids' states, lone ids' job sets.

States are asked for ids no event stream has shown; job sets for ids a caller named alone.

Ids asked within one short window go out together (``MAX_QUERY_IDS`` ids a call),
retried by the project's :class:`~armada_hooks.rpc.RetryPolicy`: states in one
``GetJobStatus``, job sets in one ``GetJobDetails``. :class:`JobSetLookups` remembers
what it found (a job never changes job set), up to ``LOOKUP_CACHE`` ids.
"""

from __future__ import annotations

import abc
import asyncio
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from armada_hooks.rpc import chunks, gather_all
from armada_hooks.states import JobState, states_from_answers

if TYPE_CHECKING:
    from armada_hooks.jobservice.store import JobSetKey
    from armada_hooks.rpc import RetryPolicy

T = TypeVar("T")
LOOKUP_CACHE = 200_000  # ids whose (queue, job set) is remembered; the oldest go first


class _Batcher(abc.ABC, Generic[T]):
    """Gathers ids for ``window`` seconds, then asks Armada about all of them at once.

    A subclass names its ``method`` and says how to ask (:meth:`_rpc`) and how to read
    the answers (:meth:`_results`).
    """

    method = ""

    def __init__(self, stub: Any, policy: RetryPolicy, window: float, timeout: float) -> None:
        self._stub = stub
        self._policy = policy
        self._window = window
        self._timeout = timeout
        self._waiting: dict[str, asyncio.Future[T]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.calls = 0  # RPCs sent

    async def _gather(self, job_ids: list[str]) -> dict[str, T]:
        loop = asyncio.get_running_loop()
        futures = []
        for job_id in job_ids:
            future = self._waiting.get(job_id)
            if future is None:
                future = self._waiting[job_id] = loop.create_future()
            futures.append(future)
        if self._timer is None:
            self._timer = loop.call_later(self._window, self._send)
        results = await gather_all(asyncio.shield(f) for f in futures)
        return dict(zip(job_ids, results, strict=True))

    def _send(self) -> None:
        self._timer = None
        batch, self._waiting = self._waiting, {}
        asyncio.get_running_loop().create_task(self._ask(batch), name="job-service-query")

    @abc.abstractmethod
    async def _rpc(self, ids: list[str]) -> Any:
        """One call to Armada about ``ids`` (at most ``MAX_QUERY_IDS``); its answer."""

    @abc.abstractmethod
    def _results(self, ids: list[str], answers: list[Any]) -> dict[str, T]:
        """The result for each of ``ids``, read from the answers of their calls."""

    async def _ask(self, batch: dict[str, asyncio.Future[T]]) -> None:
        async def one(ids: list[str]) -> Any:
            self.calls += 1
            return await self._rpc(ids)

        ids = list(batch)
        try:
            answers = await gather_all(
                self._policy.acall(self.method, one, part) for part in chunks(ids)
            )
        except Exception as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for job_id, result in self._results(ids, answers).items():
            if not batch[job_id].done():
                batch[job_id].set_result(result)


class StatusQueries(_Batcher[JobState]):
    """Armada's states of ids, asked in one ``GetJobStatus`` per window.

    ``stub`` is an asyncio ``api.Jobs`` stub; ``calls`` counts the GetJobStatus calls sent.
    """

    method = "GetJobStatus"

    async def states(self, job_ids: list[str]) -> dict[str, JobState]:
        """Armada's state of each id (UNKNOWN where Armada does not know it).

        :raises ArmadaError: the query failed after its retries.
        """
        return await self._gather(job_ids)

    async def _rpc(self, ids: list[str]) -> Any:
        from armada_client.armada import job_pb2

        return await self._stub.GetJobStatus(
            job_pb2.JobStatusRequest(job_ids=ids), timeout=self._timeout
        )

    def _results(self, ids: list[str], answers: list[Any]) -> dict[str, JobState]:
        return states_from_answers(ids, answers)


class JobSetLookups(_Batcher["JobSetKey | None"]):
    """The (queue, job set) of ids, asked in one ``GetJobDetails`` per window, remembered.

    ``calls`` counts the GetJobDetails calls sent.
    """

    method = "GetJobDetails"

    def __init__(self, stub: Any, policy: RetryPolicy, window: float, timeout: float) -> None:
        super().__init__(stub, policy, window, timeout)
        self._found: OrderedDict[str, JobSetKey] = OrderedDict()

    async def job_sets(self, job_ids: list[str]) -> dict[str, JobSetKey | None]:
        """Each id's (queue, job set); None where Armada's query API does not know the id.

        :raises ArmadaError: the query failed after its retries.
        """
        found: dict[str, JobSetKey | None] = {j: self._found.get(j) for j in job_ids}
        missing = [j for j, key in found.items() if key is None]
        if missing:
            for job_id, key in (await self._gather(missing)).items():
                found[job_id] = key
                if key is not None:
                    self._found[job_id] = key
            while len(self._found) > LOOKUP_CACHE:
                self._found.popitem(last=False)
        return found

    async def _rpc(self, ids: list[str]) -> Any:
        from armada_client.armada import job_pb2

        return await self._stub.GetJobDetails(
            job_pb2.JobDetailsRequest(job_ids=ids, expand_job_spec=False, expand_job_run=False),
            timeout=self._timeout,
        )

    def _results(self, ids: list[str], answers: list[Any]) -> dict[str, JobSetKey | None]:
        found: dict[str, JobSetKey | None] = dict.fromkeys(ids)
        for answer in answers:
            for job_id, details in answer.job_details.items():
                if job_id in found:
                    found[job_id] = (details.queue, details.jobset)
        return found
