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

Imports of grpc and the server are deferred until a fixture is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from armada_hooks.defaults import DEFAULT_CONN_ENV, DEFAULT_CONN_ID

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from armada_client.client import ArmadaClient

    from armada_hooks.testing.server import LocalArmada

DEFAULT_OPTIONS: dict[str, Any] = {"queues": ("default",)}


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
