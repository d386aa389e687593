"""Batched questions to Armada's query API for ids that no event stream has shown.

Ids asked within one short window go out together in one ``GetJobStatus`` call
(``MAX_QUERY_IDS`` ids a call), retried by the project's :class:`~armada_hooks.rpc.RetryPolicy`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from armada_hooks.rpc import chunks, gather_all
from armada_hooks.states import JobState, states_from_answers

if TYPE_CHECKING:
    from armada_hooks.rpc import RetryPolicy


class StatusQueries:
    """Gathers ids for ``window`` seconds, then asks Armada about all of them at once.

    ``stub`` is an asyncio ``api.Jobs`` stub; ``calls`` counts the GetJobStatus calls sent.
    """

    def __init__(self, stub: Any, policy: RetryPolicy, window: float, timeout: float) -> None:
        self._stub = stub
        self._policy = policy
        self._window = window
        self._timeout = timeout
        self._waiting: dict[str, asyncio.Future[JobState]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.calls = 0

    async def states(self, job_ids: list[str]) -> dict[str, JobState]:
        """Armada's state of each id (UNKNOWN where Armada does not know it).

        :raises ArmadaError: the query failed after its retries.
        """
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

    async def _ask(self, batch: dict[str, asyncio.Future[JobState]]) -> None:
        from armada_client.armada import job_pb2

        async def one(ids: list[str]) -> Any:
            self.calls += 1
            return await self._stub.GetJobStatus(
                job_pb2.JobStatusRequest(job_ids=ids), timeout=self._timeout
            )

        ids = list(batch)
        try:
            answers = await gather_all(
                self._policy.acall("GetJobStatus", one, part) for part in chunks(ids)
            )
        except Exception as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for job_id, state in states_from_answers(ids, answers).items():
            if not batch[job_id].done():
                batch[job_id].set_result(state)
