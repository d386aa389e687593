"""Provider registration: the provider info and what Airflow's ProvidersManager makes of it.

That the modules a DAG file imports stay free of gRPC is ``test_import_cost.py``'s.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
from pathlib import Path

import airflow
import jsonschema
import pytest
from airflow.providers_manager import ProvidersManager

import armada_hooks
from armada_hooks._compat import AIRFLOW_V3, BaseHook, BaseOperatorLink
from armada_hooks.hooks.armada import ArmadaHook
from armada_hooks.links.lookout import LookoutLink

INFO = armada_hooks.get_provider_info()
EXTRA_FIELDS = (
    "tls",
    "ca_cert",
    "client_cert",
    "client_key",
    "rpc_timeout",
    "lookout_url",
    "binoculars_target",
    "default_queue",
    "event_mode",
    "log_interval",
    "job_service_target",
)


def import_string(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def provider_entry_point() -> importlib.metadata.EntryPoint:
    (entry_point,) = [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.value == "armada_hooks:get_provider_info"
    ]
    return entry_point


# -- the provider info ------------------------------------------------------------------


def test_provider_info_validates_against_airflows_schema() -> None:
    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(INFO), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    # The schema does catch a broken info (the check above can fail).
    broken = {**INFO, "connection-types": [{"hook-class-name": 42}]}
    assert list(validator_class(schema).iter_errors(broken))


def test_package_name_and_version_are_the_installed_distributions() -> None:
    entry_point = provider_entry_point()
    assert entry_point.dist is not None
    distribution = importlib.metadata.distribution(INFO["package-name"])
    assert INFO["package-name"] == distribution.metadata["Name"] == entry_point.dist.name
    assert INFO["versions"][0] == distribution.version == armada_hooks.__version__
    assert entry_point.load()() == INFO


def test_every_listed_module_imports_and_every_class_path_resolves() -> None:
    modules = [
        module
        for kind in ("hooks", "operators", "sensors", "triggers")
        for entry in INFO[kind]
        for module in entry["python-modules"]
    ]
    assert modules == [
        "armada_hooks.hooks.armada",
        "armada_hooks.operators.armada",
        "armada_hooks.sensors.armada",
        "armada_hooks.triggers.armada",
    ]
    for module in modules:
        importlib.import_module(module)

    (connection_type,) = INFO["connection-types"]
    hook_class = import_string(connection_type["hook-class-name"])
    assert hook_class is ArmadaHook
    assert issubclass(hook_class, BaseHook)
    assert hook_class.conn_type == connection_type["connection-type"] == "armada"
    assert hook_class.hook_name == connection_type["hook-name"]

    assert INFO["extra-links"] == ["armada_hooks.links.lookout.LookoutLink"]
    for path in INFO["extra-links"]:
        link_class = import_string(path)
        assert issubclass(link_class, BaseOperatorLink)
        assert link_class is LookoutLink


# -- what Airflow discovers -------------------------------------------------------------


@pytest.fixture(scope="module")
def providers_manager() -> ProvidersManager:
    return ProvidersManager()


def test_providers_manager_discovers_the_provider_through_its_entry_point(
    providers_manager,
) -> None:
    provider = providers_manager.providers["armada-hooks"]
    assert provider.version == armada_hooks.__version__
    assert provider.data["package-name"] == "armada-hooks"
    assert provider.data["name"] == "Armada"


def test_the_task_runtime_providers_manager_knows_the_armada_hook() -> None:
    # ProvidersManager.hooks is deprecated in Airflow 3.3 in favour of the task SDK's
    # ProvidersManagerTaskRuntime.hooks, which resolves connection types at run time.
    if AIRFLOW_V3:
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        runtime = ProvidersManagerTaskRuntime()
    else:  # Airflow 2.11 has only the one manager
        runtime = ProvidersManager()
    assert runtime.providers["armada-hooks"].version == armada_hooks.__version__
    hook = runtime.hooks["armada"]
    assert hook is not None
    assert hook.hook_class_name == "armada_hooks.hooks.armada.ArmadaHook"
    assert hook.connection_id_attribute_name == "armada_conn_id"
    assert hook.hook_name == "Armada"
    assert hook.package_name == "armada-hooks"
    assert hook.connection_type == "armada"


def test_connection_form_shows_the_armada_extras_and_hides_the_client_key(
    providers_manager,
) -> None:
    widgets = {
        name: widget
        for name, widget in providers_manager.connection_form_widgets.items()
        if name.startswith("extra__armada__")
    }
    assert set(widgets) == {f"extra__armada__{field}" for field in EXTRA_FIELDS}
    for name, widget in widgets.items():
        # Airflow 2.11 records the class's bare name
        assert widget.hook_class_name == ("armada_hooks.hooks.armada." if AIRFLOW_V3 else "") + (
            "ArmadaHook"
        )
        assert widget.package_name == "armada-hooks"
        assert widget.is_sensitive is (name == "extra__armada__client_key"), name
    if AIRFLOW_V3:  # from conn-fields: JSON schemas
        assert widgets["extra__armada__lookout_url"].field["schema"]["title"] == "Lookout URL"
        assert widgets["extra__armada__tls"].field["schema"]["type"] == ["boolean", "null"]
    else:  # Airflow 2.11 reads the hook's wtforms fields
        assert widgets["extra__armada__lookout_url"].field.args == ("Lookout URL",)
        assert widgets["extra__armada__tls"].field.field_class.__name__ == "BooleanField"
        assert widgets["extra__armada__rpc_timeout"].field.kwargs["default"] == "30"


def test_connection_form_relabels_the_password_as_the_bearer_token(providers_manager) -> None:
    behaviour = providers_manager.field_behaviours["armada"]
    assert behaviour["relabeling"] == {"password": "Bearer token"}
    assert set(behaviour["hidden_fields"]) == {"schema", "login", "extra"}
    assert behaviour["placeholders"]["host"] == "armada.example.com"
    assert behaviour["placeholders"]["extra__armada__lookout_url"] == "https://lookout.example.com"


def test_providers_manager_registers_the_lookout_link(providers_manager) -> None:
    assert "armada_hooks.links.lookout.LookoutLink" in providers_manager.extra_links_class_names
