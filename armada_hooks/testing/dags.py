"""Running a DAG with ``dag.test()`` from a test file, against the local Armada."""

from __future__ import annotations

from typing import Any

from armada_hooks._compat import dag_test_kwargs, register_dag_for_test, stored_xcoms


def run_dag(dag: Any, **test_kwargs: Any) -> Any:
    """Register ``dag`` and run it with ``dag.test()``; the finished ``DagRun``.

    Triggers of deferrable tasks run inline and retries are honoured. ``test_kwargs`` take
    Airflow 3's names (``logical_date``, ``run_after``) on Airflow 2.11 too. Read task outcomes
    with ``dag_run.get_task_instances()`` (``state``, ``try_number``).
    """
    register_dag_for_test(dag)
    return dag.test(**dag_test_kwargs(test_kwargs))


def xcom_values(dag_run: Any) -> dict[tuple[str, str], Any]:
    """Every XCom the run stored, as ``{(task_id, key): value}`` (any Airflow version)."""
    return stored_xcoms(dag_run.dag_id, dag_run.run_id)
