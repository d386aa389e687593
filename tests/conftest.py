"""Shared test set-up: an Airflow home inside the checkout, and quick job builders.

The ``local_armada`` fixtures come from armada-hooks' own pytest plugin (entry point
``pytest11``), exactly as our users get them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "example_dags"))
os.environ.setdefault(
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{ROOT / '.airflow' / 'airflow.db'}"
)

pytest_plugins = ("pytester",)


# The tests whose behaviour depends on Airflow: `make test` runs them in the default
# environment and again in .venv-airflow2 (Airflow 2.11, Flyte's connector), where only
# they are collected. The local Armada's own suite does not touch Airflow.
AIRFLOW_DEPENDENT = (
    "test_compat.py",
    "test_example_dag.py",
    "test_provider.py",
    "test_google_protos.py",
    "hooks/test_hook_connection.py",
    "operators/",
    "sensors/",
    "triggers/",
    "links/",
    "flyte/",
)
_TESTS = Path(__file__).resolve().parent


def _airflow_dependent(path: Path) -> bool:
    relative = path.resolve().relative_to(_TESTS).as_posix()
    return any(
        relative == entry or relative.startswith(entry) or entry.startswith(relative + "/")
        for entry in AIRFLOW_DEPENDENT
    )


def pytest_ignore_collect(collection_path: Path, config: object) -> bool | None:
    """On Airflow 2 collect only the Airflow-dependent tests; elsewhere, everything."""
    from armada_hooks._compat import AIRFLOW_V3

    if AIRFLOW_V3 or collection_path == _TESTS or _TESTS not in collection_path.parents:
        return None
    return None if _airflow_dependent(collection_path) else True


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "airflow: depends on Airflow (AIRFLOW_DEPENDENT)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _airflow_dependent(item.path):
            item.add_marker(pytest.mark.airflow)
