"""Where a deferred task's container-log position lives: an XCom of its task instance.

The triggerer keeps nothing of a trigger when it dies, and a trigger cannot change the
kwargs it is rebuilt from; but through the triggerer a trigger may write and read the
XComs of its task instance (Airflow 3: the supervisor's SetXCom/GetXCom; Airflow 2.11: the
metadata DB), and XComs outlive any triggerer and are cleared only when a new try starts.
So a streaming trigger stores its fetcher's position there, at most every
``LOG_POSITION_INTERVAL`` seconds while the log grows, and its rebuilt self reads it back.
A trigger with no task instance (``dag.test()``, Flyte) stores nothing: nothing rebuilds it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from armada_hooks._compat import aget_task_xcom, aset_task_xcom
from armada_hooks.defaults import LOG_POSITION_INTERVAL, LOG_POSITION_XCOM_KEY
from armada_hooks.hooks.logs import LogPosition

if TYPE_CHECKING:
    from armada_hooks.hooks.logs import LineLogger


class LogPositions:
    """Loads and stores one job's log position; failures are logged, never raised.

    :param load: ``() -> stored value | None``; :param store: ``value -> None`` (async).
    :param interval: least seconds between two stores (the first after the start is
        stored at once, so that a rebuilt trigger resumes past the first lines).
    """

    def __init__(
        self,
        job_id: str,
        logger: LineLogger,
        load: Callable[[], Awaitable[Any]],
        store: Callable[[Any], Awaitable[None]],
        interval: float = LOG_POSITION_INTERVAL,
    ) -> None:
        self.job_id = job_id
        self.logger = logger
        self._load, self._store = load, store
        self.interval = interval
        self.stored: LogPosition | None = None
        self.stores = 0
        self._stored_at = 0.0
        self._warned = False

    @classmethod
    def of_task(cls, task_instance: Any, job_id: str, logger: LineLogger) -> LogPositions:
        """The positions kept in the ``LOG_POSITION_XCOM_KEY`` XCom of ``task_instance``."""

        async def load() -> Any:
            return await aget_task_xcom(task_instance, LOG_POSITION_XCOM_KEY)

        async def store(value: Any) -> None:
            await aset_task_xcom(task_instance, LOG_POSITION_XCOM_KEY, value)

        return cls(job_id, logger, load, store)

    async def start(self) -> LogPosition | None:
        """The position an earlier trigger of this job stored, or None (then store a start).

        The operator leaves ``{"job_id": ...}`` there before it defers (so this read finds
        a value: Airflow's client logs an ERROR for a missing XCom); a value that is not a
        position of this job (another job's, or unreadable) is not resumed from either.
        """
        try:
            value = await self._load()
        except Exception as exc:
            self.logger.warning(
                "Could not read the stored log position of Armada job %s (%s: %s); if a "
                "triggerer restarted, lines logged before it may repeat",
                self.job_id,
                type(exc).__name__,
                exc,
            )
            return None
        if isinstance(value, dict) and value.get("job_id") == self.job_id and "lines" in value:
            try:
                position = LogPosition.from_dict(value)
            except ValueError as exc:
                self.logger.warning(
                    "Ignoring the stored log position of Armada job %s: %s", self.job_id, exc
                )
            else:
                self.stored, self._stored_at = position, time.monotonic()
                return position
        await self._put(LogPosition())  # so that a rebuilt trigger knows it is one
        return None

    async def save(self, position: LogPosition) -> None:
        """Store ``position`` if it moved and the last store is ``interval`` old (or was 0)."""
        if position == self.stored or position.lines == 0:
            return
        first = self.stored is None or self.stored.lines == 0
        if first or time.monotonic() - self._stored_at >= self.interval:
            await self._put(position)

    async def _put(self, position: LogPosition) -> None:
        try:
            await self._store({"job_id": self.job_id, **position.to_dict()})
        except Exception as exc:
            if not self._warned:
                self._warned = True
                self.logger.warning(
                    "Could not store the log position of Armada job %s (%s: %s); if the "
                    "triggerer restarts, lines may repeat from the last stored position",
                    self.job_id,
                    type(exc).__name__,
                    exc,
                )
            return
        self.stored, self._stored_at = position, time.monotonic()
        self.stores += 1
