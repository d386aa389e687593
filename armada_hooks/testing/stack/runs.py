"""DAG runs on the real stack: trigger over the REST API, wait, and account for the jobs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from armada_hooks.testing.stack.ledger import JobLedger, job_ledger, jobs_of_run

if TYPE_CHECKING:
    from collections.abc import Callable

    from armada_hooks.testing.server import JobSnapshot
    from armada_hooks.testing.stack.airflow_stack import AirflowStack


@dataclass
class StackRun:
    """A finished DAG run: its state, task instances (by task id and map index), wall time."""

    stack: AirflowStack
    dag_id: str
    run_id: str
    state: str
    tis: dict[tuple[str, int], dict[str, Any]]
    seconds: float

    def ti(self, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance as the REST API returns it."""
        return self.tis[task_id, map_index]

    def log(self, task_id: str, try_number: int = 1, map_index: int = -1) -> str:
        """One try's task log."""
        return self.stack.rest.task_log(self.dag_id, self.run_id, task_id, try_number, map_index)

    def jobs(self) -> list[JobSnapshot]:
        """The local Armada's jobs of this run."""
        return jobs_of_run(self.stack.armada, self.dag_id, self.run_id)

    def ledger(self) -> JobLedger:
        """The Armada-side account of the run (:func:`~.ledger.job_ledger`)."""
        return job_ledger(self.stack.rest, self.stack.armada, self.dag_id, self.run_id)


def run_dag(
    stack: AirflowStack,
    dag_id: str,
    *,
    conf: dict[str, Any] | None = None,
    timeout: float = 300.0,
    meanwhile: Callable[[str], None] | None = None,
) -> StackRun:
    """Trigger ``dag_id``, call ``meanwhile(run_id)`` (faults, user actions), wait for the end."""
    begun = time.monotonic()
    run_id = stack.rest.trigger(dag_id, conf)
    if meanwhile is not None:
        meanwhile(run_id)
    state = stack.rest.wait_for_run(dag_id, run_id, timeout=timeout)
    seconds = time.monotonic() - begun
    tis = {
        (str(ti["task_id"]), int(ti["map_index"])): ti
        for ti in stack.rest.task_instances(dag_id, run_id)
    }
    return StackRun(stack, dag_id, run_id, state, tis, seconds)
