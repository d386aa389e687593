"""armada-hooks: the Apache Airflow provider for Armada."""

from __future__ import annotations

__version__ = "0.1.0"
