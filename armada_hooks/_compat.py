"""Every difference between Airflow versions, and nothing else.

Airflow 3.x: the public Task SDK (``airflow.sdk``). Airflow 2.11: the same names from
their Airflow 2 homes, connections fetched in a thread, the trigger's ``task_instance``
attribute, connection form fields from hook methods, ``dag.test()`` on any DAG object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.triggers.base import BaseTrigger

AIRFLOW_V3 = int(AIRFLOW_VERSION.split(".", 1)[0]) >= 3

if AIRFLOW_V3:
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
else:  # Airflow 2.11
    from airflow.configuration import conf
    from airflow.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowSkipException,
    )
    from airflow.hooks.base import BaseHook
    from airflow.models.baseoperator import BaseOperator
    from airflow.models.baseoperatorlink import (
        BaseOperatorLink,
    )
    from airflow.sensors.base import (
        BaseSensorOperator,
        PokeReturnValue,
    )

if TYPE_CHECKING:  # for annotations only: loading Connection would cost DAG parsing ~3 ms
    from airflow.sdk import Connection as Connection
    from airflow.sdk import Context as Context

# Names only tests and DAG files need, loaded on first use (PEP 562), each with its
# Airflow 3 and Airflow 2.11 home.
_LAZY = {
    "DAG": ("airflow.sdk", "airflow.models.dag"),
    "TaskDeferred": ("airflow.sdk.exceptions", "airflow.exceptions"),
    "AirflowSensorTimeout": ("airflow.sdk.exceptions", "airflow.exceptions"),
    "AirflowTaskTimeout": ("airflow.sdk.exceptions", "airflow.exceptions"),
    "XComModel": ("airflow.models.xcom", "airflow.models.xcom"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module = importlib.import_module(_LAZY[name][0 if AIRFLOW_V3 else 1])
    return getattr(module, name if AIRFLOW_V3 or name != "XComModel" else "XCom")


__all__ = [
    "AIRFLOW_V3",
    "AirflowException",
    "AirflowFailException",
    "AirflowSkipException",
    "BaseHook",
    "BaseOperator",
    "BaseOperatorLink",
    "BaseSensorOperator",
    "PlainTrigger",
    "PokeReturnValue",
    "aget_connection",
    "aget_task_xcom",
    "aset_task_xcom",
    "capture_log_events",
    "connection_form_widgets",
    "dag_test_kwargs",
    "default_deferrable",
    "get_xcom",
    "preload_dag_test",
    "register_dag_for_test",
    "stored_xcoms",
    "task_state_store",
    "ui_field_behaviour",
]

# What BaseTrigger.__init__ sets on each instance (the triggerer fills them in later).
_TRIGGER_RUNTIME_FIELDS = (
    ("_task_instance", "trigger_id", "template_fields", "template_ext", "task_id")
    if AIRFLOW_V3
    else ("task_instance", "trigger_id")
)


class PlainTrigger(BaseTrigger):
    """A ``BaseTrigger`` whose ``__dict__`` holds only what its subclass's ``__init__`` sets.

    Flyte's Airflow connector rebuilds a trigger from its ``__dict__``, so the runtime
    fields Airflow's ``__init__`` puts there move to class-level defaults.
    """

    trigger_id = None
    task_id = None
    template_fields: tuple[str, ...] = ()
    template_ext: tuple[str, ...] = ()
    if AIRFLOW_V3:
        _task_instance = None
    else:
        task_instance = None

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        for name in _TRIGGER_RUNTIME_FIELDS:
            self.__dict__.pop(name, None)


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, read now (not at import)."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


async def aget_connection(hook: Any, conn_id: str) -> Connection:
    """The Airflow connection ``conn_id``, fetched without blocking the event loop."""
    if AIRFLOW_V3:
        conn: Connection = await hook.aget_connection(conn_id)
        return conn
    return await asyncio.to_thread(hook.get_connection, conn_id)


def get_xcom(ti_key: Any, key: str) -> Any:
    """The XCom value ``key`` of the task instance ``ti_key`` (None when absent)."""
    if AIRFLOW_V3:
        from airflow.sdk.execution_time.xcom import XCom
    else:
        from airflow.models.xcom import XCom

    return XCom.get_value(ti_key=ti_key, key=key)


async def aget_task_xcom(ti: Any, key: str) -> Any:
    """XCom ``key`` of task instance ``ti`` (a trigger's), read from the triggerer.

    Airflow 3 asks the triggerer's supervisor (GetXCom); Airflow 2.11 reads the DB in a thread.
    """
    where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id}
    if AIRFLOW_V3:
        from airflow.sdk.execution_time.xcom import XCom

        return await XCom.aget_one(key=key, map_index=ti.map_index, **where)
    from airflow.models.xcom import XCom as XCom2

    return await asyncio.to_thread(XCom2.get_one, key=key, map_index=ti.map_index, **where)


async def aset_task_xcom(ti: Any, key: str, value: Any) -> None:
    """Set XCom ``key`` of task instance ``ti`` (a trigger's) from the triggerer."""
    where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id}
    if AIRFLOW_V3:
        from airflow.sdk.execution_time.xcom import XCom

        await XCom.aset(key, value, map_index=ti.map_index, **where)
        return
    from airflow.models.xcom import XCom as XCom2

    await asyncio.to_thread(XCom2.set, key, value, map_index=ti.map_index, **where)


def task_state_store(context: Context) -> Any | None:
    """The retry-surviving key-value store of the task (Airflow 3.3+), or None."""
    return context.get("task_state_store")


def connection_form_widgets(conn_fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Airflow 2's connection form fields for the declarative ``conn-fields``.

    Airflow 3.2+ reads ``conn-fields`` from the provider info and never calls this.
    """
    widgets: dict[str, Any] = {}
    if not AIRFLOW_V3:
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from wtforms import BooleanField, PasswordField, StringField

        for name, field in conn_fields.items():
            schema = field["schema"]
            kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            text = {"description": field.get("description", "")}
            if "boolean" in kinds:
                widgets[name] = BooleanField(field["label"], default=schema.get("default"), **text)
            elif schema.get("format") == "password":
                widgets[name] = PasswordField(
                    field["label"], widget=BS3PasswordFieldWidget(), **text
                )
            else:
                default = schema.get("default")
                widgets[name] = StringField(
                    field["label"],
                    widget=BS3TextFieldWidget(),
                    default=None if default is None else str(default),
                    **text,
                )
    return widgets


def ui_field_behaviour(behaviour: dict[str, Any]) -> dict[str, Any]:
    """Airflow 2's ``get_ui_field_behaviour`` form of the declarative ``ui-field-behaviour``."""
    return {key.replace("-", "_"): value for key, value in behaviour.items()}


@contextlib.contextmanager
def capture_log_events() -> Iterator[list[MutableMapping[str, Any]]]:
    """Every log event while the block runs, as ``{"event", "log_level", ...}`` dicts.

    Airflow 3 logs through structlog (its raw events, before rendering or redaction);
    Airflow 2 through the standard library (its records, message formatted).
    """
    if AIRFLOW_V3:
        import structlog.testing

        with structlog.testing.capture_logs() as captured:
            yield captured
        return
    events: list[MutableMapping[str, Any]] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            level = record.levelname.lower()
            events.append({"event": record.getMessage(), "log_level": level, "record": record})

    handler, root = _Collect(logging.DEBUG), logging.getLogger()
    root.addHandler(handler)
    try:
        yield events
    finally:
        root.removeHandler(handler)


def preload_dag_test() -> None:
    """Import what ``dag.test()`` and :func:`register_dag_for_test` need, on this thread."""
    import airflow.models.taskinstance

    if AIRFLOW_V3:
        import airflow.dag_processing.bundles.manager
        import airflow.dag_processing.collection
        import airflow.serialization.serialized_objects  # noqa: F401


def stored_xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    """Every XCom of one DAG run as the metadata DB holds it: ``{(task_id, key): value}``."""
    from airflow.utils.session import create_session

    model: Any = __getattr__("XComModel")
    with create_session() as session:
        rows = session.query(model).filter(model.dag_id == dag_id, model.run_id == run_id)
        # Airflow 2 deserializes each row as the ORM loads it; Airflow 3 stores JSON
        read = model.deserialize_value if AIRFLOW_V3 else (lambda row: row.value)
        return {(row.task_id, row.key): read(row) for row in rows}


def dag_test_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``dag.test()``'s keywords in this Airflow's names, given Airflow 3's.

    Airflow 2.11 calls ``logical_date`` ``execution_date`` and has no ``run_after``.
    """
    if AIRFLOW_V3:
        return kwargs
    renamed = {k: v for k, v in kwargs.items() if k not in ("logical_date", "run_after")}
    if "logical_date" in kwargs:
        renamed["execution_date"] = kwargs["logical_date"]
    return renamed


def register_dag_for_test(dag: Any) -> None:
    """Write ``dag`` to the metadata DB as the DAG processor would.

    ``dag.test()`` on Airflow 3 runs only serialized DAGs; this lets it run a DAG defined
    anywhere (a test file), not only in the DAGs folder. Airflow 2 runs any DAG object,
    but its session cannot flush a DAG run until FAB's user table (which ``dag_run_note``
    references) is mapped: a process that never loaded the web UI's models fails there.
    """
    if not AIRFLOW_V3:
        import airflow.providers.fab.auth_manager.models  # noqa: F401

        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()  # type: ignore[no-untyped-call]
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session
        )
