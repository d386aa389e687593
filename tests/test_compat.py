"""``_compat``: each Airflow-version difference behaves the same from both sides.

Runs in the default environment (Airflow 3) and in ``.venv-airflow2`` (Airflow 2.11).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import pytest

import armada_hooks
from armada_hooks import _compat
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.triggers.armada import ArmadaJobTrigger

CONNECTION = armada_hooks.get_provider_info()["connection-types"][0]


def test_the_version_flag_matches_the_installed_airflow() -> None:
    import airflow

    assert _compat.AIRFLOW_V3 is (int(airflow.__version__.split(".")[0]) >= 3)


def test_a_triggers_dict_is_its_constructor_kwargs_and_it_still_has_the_runtime_fields() -> None:
    kwargs = {"job_id": "j1", "armada_conn_id": "c", "queue": "q", "job_set_id": "s"}
    trigger = ArmadaJobTrigger(**kwargs)
    assert set(trigger.__dict__) == set(ArmadaJobTrigger(job_id="x").__dict__)
    assert {k: trigger.__dict__[k] for k in kwargs} == kwargs
    assert trigger.trigger_id is None  # the triggerer's fields read as unset until it sets them
    runtime = "_task_instance" if _compat.AIRFLOW_V3 else "task_instance"
    assert getattr(trigger, runtime) is None
    assert ArmadaJobTrigger(**trigger.serialize()[1]).__dict__ == trigger.__dict__


def test_the_hooks_form_methods_say_what_the_provider_info_says() -> None:
    behaviour = ArmadaHook.get_ui_field_behaviour()
    declared = CONNECTION["ui-field-behaviour"]
    assert behaviour == {
        "hidden_fields": declared["hidden-fields"],
        "relabeling": declared["relabeling"],
        "placeholders": declared["placeholders"],
    }
    widgets = ArmadaHook.get_connection_form_widgets()
    if _compat.AIRFLOW_V3:  # 3.2+ reads conn-fields; the hook offers Airflow 2's form only
        assert widgets == {}
        return
    assert set(widgets) == set(CONNECTION["conn-fields"])
    for name, field in CONNECTION["conn-fields"].items():
        assert widgets[name].args == (field["label"],), name
    kinds = {name: widget.field_class.__name__ for name, widget in widgets.items()}
    assert kinds["tls"] == kinds["event_mode"] == "BooleanField"
    assert kinds["client_key"] == "PasswordField"
    assert kinds["lookout_url"] == kinds["rpc_timeout"] == "StringField"


def test_dag_test_takes_airflow_3s_keywords_on_every_version() -> None:
    when = datetime(2024, 1, 1)
    converted = _compat.dag_test_kwargs({"logical_date": when, "run_after": when, "conf": 1})
    if _compat.AIRFLOW_V3:
        assert converted == {"logical_date": when, "run_after": when, "conf": 1}
    else:
        assert converted == {"execution_date": when, "conf": 1}


def test_connections_load_off_the_event_loop(monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_ARMADA_COMPAT", "armada://armada.example.com:50051")
    hook = ArmadaHook("armada_compat")

    async def load():
        return await _compat.aget_connection(hook, "armada_compat")

    conn = asyncio.run(load())
    assert (conn.host, conn.port) == ("armada.example.com", 50051)


def test_log_events_are_captured_with_their_level() -> None:
    with _compat.capture_log_events() as events:
        ArmadaHook("armada_compat").log.warning("compat %s", "line")
        logging.getLogger("armada_hooks.test").info("plain %s", "record")
    texts = {(str(e["event"]), e["log_level"]) for e in events}
    assert ("compat line", "warning") in texts


def test_an_unknown_lazy_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchName"):
        _compat.NoSuchName  # noqa: B018
    assert _compat.DAG.__name__ == "DAG"
