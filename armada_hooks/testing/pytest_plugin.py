"""pytest plugin (entry point ``pytest11``): a fresh local Armada per test.

Fixtures:

- ``local_armada``: a started :class:`~armada_hooks.testing.LocalArmada` with the queue
  ``default``; configure it with ``@pytest.mark.local_armada(time_scale=10, ...)``
  (any ``LocalArmada`` keyword argument).
- ``local_armada_factory``: ``factory(**options)`` starts more servers; all are stopped
  after the test.
- ``local_armada_client``: a real ``armada_client.ArmadaClient`` for ``local_armada``.
- ``local_armada_connection``: points ``AIRFLOW_CONN_ARMADA_DEFAULT`` at ``local_armada``
  (token and Binoculars target included) for the test; returns the connection id, so
  ``ArmadaHook()`` and the operators reach the local Armada unchanged.
- ``airflow_stack``: one real Airflow deployment per test session
  (:class:`~armada_hooks.testing.stack.AirflowStack`: PostgreSQL, API server, scheduler,
  DAG processor, two triggerers, a local Armada), serving the DAG folder named by the
  ``airflow_stack_dags`` ini option; override the session fixture
  ``airflow_stack_options`` to pass any other ``AirflowStack`` argument. Process logs are
  kept under ``airflow_stack_artifacts`` (default ``.stack-logs/``), one folder a session.

Imports of grpc and the server are deferred until a fixture is used.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from armada_hooks.defaults import DEFAULT_CONN_ENV, DEFAULT_CONN_ID

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from armada_client.client import ArmadaClient

    from armada_hooks.testing.server import LocalArmada
    from armada_hooks.testing.stack import AirflowStack

DEFAULT_OPTIONS: dict[str, Any] = {"queues": ("default",)}
STACK_ARTIFACTS = ".stack-logs"
KEEP_STACK_RUNS = 3  # artifact folders of earlier sessions kept besides this one


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``airflow_stack`` fixture's ini options."""
    parser.addini("airflow_stack_dags", "DAG folder the airflow_stack fixture serves", default="")
    parser.addini(
        "airflow_stack_artifacts",
        "folder for the airflow_stack fixture's process logs (one subfolder a session)",
        default=STACK_ARTIFACTS,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``local_armada`` marker."""
    config.addinivalue_line(
        "markers",
        "local_armada(**options): LocalArmada keyword arguments for the local_armada fixture",
    )


@pytest.fixture
def local_armada_factory() -> Iterator[Callable[..., LocalArmada]]:
    """Start local Armadas on demand (``factory(**options)``); stops them all afterwards."""
    from armada_hooks.testing.server import LocalArmada

    started: list[LocalArmada] = []

    def factory(**options: Any) -> LocalArmada:
        armada = LocalArmada(**{**DEFAULT_OPTIONS, **options}).start()
        started.append(armada)
        return armada

    yield factory
    for armada in started:
        armada.stop()


@pytest.fixture
def local_armada(
    request: pytest.FixtureRequest, local_armada_factory: Callable[..., LocalArmada]
) -> LocalArmada:
    """A running local Armada, configured by the test's ``local_armada`` marker."""
    marker = request.node.get_closest_marker("local_armada")
    return local_armada_factory(**(marker.kwargs if marker else {}))


@pytest.fixture
def local_armada_client(local_armada: LocalArmada) -> ArmadaClient:
    """The real ``ArmadaClient`` connected to ``local_armada``."""
    return local_armada.client()


@pytest.fixture
def local_armada_connection(local_armada: LocalArmada, monkeypatch: pytest.MonkeyPatch) -> str:
    """``armada_default`` pointed at ``local_armada`` for this test; returns the conn id."""
    monkeypatch.setenv(DEFAULT_CONN_ENV, local_armada.airflow_connection())
    return DEFAULT_CONN_ID


@pytest.fixture(scope="session")
def airflow_stack_options(pytestconfig: pytest.Config) -> dict[str, Any]:
    """Keyword arguments of the session's ``AirflowStack``; override it in a conftest.py.

    By default: ``dags_folder`` from the ``airflow_stack_dags`` ini option.
    """
    dags = str(pytestconfig.getini("airflow_stack_dags"))
    if not dags:
        from armada_hooks.testing.stack import StackError

        raise StackError(
            "airflow_stack needs a DAG folder: set the ini option airflow_stack_dags, or "
            "override the session fixture airflow_stack_options to return {'dags_folder': ...}"
        )
    return {"dags_folder": pytestconfig.rootpath / dags}


def _artifacts_dir(config: pytest.Config) -> Path:
    """A new folder for this session's logs; older sessions' beyond the last few removed."""
    base = config.rootpath / str(config.getini("airflow_stack_artifacts"))
    base.mkdir(parents=True, exist_ok=True)
    earlier = sorted(p for p in base.iterdir() if p.is_dir())
    for old in earlier[: max(0, len(earlier) - KEEP_STACK_RUNS)]:
        shutil.rmtree(old, ignore_errors=True)
    folder = base / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def airflow_stack(
    pytestconfig: pytest.Config, airflow_stack_options: dict[str, Any]
) -> Iterator[AirflowStack]:
    """A started :class:`~armada_hooks.testing.stack.AirflowStack`, stopped after the session."""
    from armada_hooks.testing.stack import AirflowStack

    options = dict(airflow_stack_options)
    options.setdefault("artifacts_dir", _artifacts_dir(pytestconfig))
    stack = AirflowStack(**options).start()
    try:
        yield stack
    finally:
        stack.stop()
