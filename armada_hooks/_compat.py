"""Every difference between Airflow versions, and nothing else.

Airflow 3.x: the public Task SDK (``airflow.sdk``). Airflow 2 support lands here later.
"""

from __future__ import annotations

from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowException, AirflowFailException

__all__ = ["AirflowException", "AirflowFailException", "BaseHook", "Connection"]
