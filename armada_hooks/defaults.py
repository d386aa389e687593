"""Defaults and Armada's limits, each named once (light: imported while DAG files parse)."""

from __future__ import annotations

DEFAULT_CONN_ID = "armada_default"
DEFAULT_CONN_ENV = f"AIRFLOW_CONN_{DEFAULT_CONN_ID.upper()}"  # its environment variable
DEFAULT_POLL_INTERVAL = 30.0  # seconds between status polls of a waiting task
DEFAULT_ACKNOWLEDGEMENT_TIMEOUT = 300.0  # seconds a job may stay UNKNOWN before it is lost
DEFAULT_RPC_TIMEOUT = 30.0  # deadline of one RPC, seconds
DEFAULT_LOG_INTERVAL = 5.0  # seconds between log fetches of a job that is writing
MAX_LOG_INTERVAL = 60.0  # a quiet log is fetched at least this often (seconds)
LOG_POSITION_INTERVAL = 30.0  # a deferred task stores its log position at most this often (s)
LOG_POSITION_XCOM_KEY = "armada_log_position"  # ...in this XCom of its task instance
MAX_QUERY_IDS = 500  # Armada's query API refuses more ids per request (maxQueryItems)
JOB_FILE_EXTENSIONS = (".yaml", ".yml", ".json")  # a job_request naming a job file (template_ext)
