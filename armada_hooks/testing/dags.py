"""Running a DAG with ``dag.test()`` from a test file, against the local Armada."""

from __future__ import annotations

from typing import Any

from armada_hooks._compat import register_dag_for_test


def run_dag(dag: Any, **test_kwargs: Any) -> Any:
    """Register ``dag`` and run it with ``dag.test()``; the finished ``DagRun``.

    Triggers of deferrable tasks run inline and retries are honoured. Read task outcomes
    with ``dag_run.get_task_instances()`` (``state``, ``try_number``).
    """
    register_dag_for_test(dag)
    return dag.test(**test_kwargs)
