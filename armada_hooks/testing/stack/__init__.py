"""A real Airflow deployment for tests, all on 127.0.0.1 (see :class:`AirflowStack`).

PostgreSQL, the API server, scheduler, DAG processor, triggerers and a local Armada.

The pytest plugin's ``airflow_stack`` fixture starts one per test session.
"""

from __future__ import annotations

from armada_hooks.testing.stack.airflow_stack import AirflowStack
from armada_hooks.testing.stack.postgres import LocalPostgres
from armada_hooks.testing.stack.processes import ManagedProcess, StackError
from armada_hooks.testing.stack.rest import AirflowRest, AirflowRestError

__all__ = [
    "AirflowRest",
    "AirflowRestError",
    "AirflowStack",
    "LocalPostgres",
    "ManagedProcess",
    "StackError",
]
