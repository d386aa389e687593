"""Every difference between Airflow versions, and nothing else.

Airflow 3.x: the public Task SDK (``airflow.sdk``). Airflow 2 support lands here later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import (
    BaseHook,
    BaseOperator,
    BaseOperatorLink,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSkipException,
)

if TYPE_CHECKING:  # for annotations only: loading Connection would cost DAG parsing ~3 ms
    from airflow.sdk import Connection as Connection
    from airflow.sdk import Context as Context

__all__ = [
    "AirflowException",
    "AirflowFailException",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "PokeReturnValue",
    "default_deferrable",
    "get_xcom",
    "preload_dag_test",
    "register_dag_for_test",
    "task_state_store",
]


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read now (not at import)."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


def get_xcom(ti_key: Any, key: str) -> Any:
    """The XCom value ``key`` of the task instance ``ti_key`` (None when absent)."""
    from airflow.sdk.execution_time.xcom import XCom

    return XCom.get_value(ti_key=ti_key, key=key)


def task_state_store(context: Context) -> Any | None:
    """The retry-surviving key-value store of the task (Airflow 3.3+), or None."""
    return context.get("task_state_store")


def preload_dag_test() -> None:
    """Import what ``dag.test()`` and :func:`register_dag_for_test` need, on this thread."""
    import airflow.dag_processing.bundles.manager
    import airflow.dag_processing.collection
    import airflow.models.taskinstance
    import airflow.serialization.serialized_objects  # noqa: F401


def register_dag_for_test(dag: Any) -> None:
    """Write ``dag`` to the metadata DB as the DAG processor would.

    ``dag.test()`` on Airflow 3 runs only serialized DAGs; this lets it run a DAG defined
    anywhere (a test file), not only in the DAGs folder.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()  # type: ignore[no-untyped-call]
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session
        )
