"""A small client of Airflow 3's REST API (``/api/v2``), logged in by the simple auth manager."""

from __future__ import annotations

import time
from typing import Any

import httpx

FINISHED_RUN_STATES = frozenset({"success", "failed"})
PAGE = 100  # Airflow's default [api] maximum_page_limit
LOG_FIELDS = frozenset({"event", "error_detail"})  # what a structured log entry says


class AirflowRestError(RuntimeError):
    """The API server answered an error; the message carries the method, path and body."""


class AirflowRest:
    """``GET``/``POST``/``PATCH`` on ``/api/v2`` with a JWT from ``/auth/token``.

    >>> rest = AirflowRest("http://127.0.0.1:8080", "admin", password)
    >>> run_id = rest.trigger("my_dag")
    >>> rest.wait_for_run("my_dag", run_id)
    'success'
    """

    def __init__(
        self, base_url: str, username: str, password: str, *, timeout: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._username = username
        self._password = password
        self._token: str | None = None

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def login(self) -> str:
        """A fresh JWT for the user (the simple auth manager's ``POST /auth/token``)."""
        response = self._http.post(
            "/auth/token", json={"username": self._username, "password": self._password}
        )
        if response.status_code not in (200, 201):
            raise AirflowRestError(
                f"POST /auth/token answered {response.status_code}: {response.text[:500]}"
            )
        token = str(response.json()["access_token"])
        self._token = token
        return token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One call on ``/api/v2`` + ``path``; the decoded JSON (or text) of a 2xx answer."""
        if self._token is None:
            self.login()
        url = f"/api/v2{path}"
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        response = self._http.request(method, url, headers=headers, **kwargs)
        if response.status_code == 401:  # expired: log in again once
            self.login()
            headers["Authorization"] = f"Bearer {self._token}"
            response = self._http.request(method, url, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise AirflowRestError(
                f"{method} {url} answered {response.status_code}: {response.text[:1000]}"
            )
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        """``GET /api/v2{path}?params``."""
        return self.request("GET", path, params=params)

    # -- health and DAGs ---------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health`` (needs no login)."""
        response = self._http.get("/api/v2/monitor/health")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def dag(self, dag_id: str) -> dict[str, Any]:
        """The DAG as the API sees it (raises until the DAG processor has parsed it)."""
        result: dict[str, Any] = self.get(f"/dags/{dag_id}")
        return result

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files that failed to parse."""
        return list(self.get("/importErrors", limit=PAGE)["import_errors"])

    # -- runs and task instances -------------------------------------------------------

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Start a DAG run now; its run id."""
        body = {"logical_date": None, "conf": conf or {}}
        return str(self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """The DAG run."""
        result: dict[str, Any] = self.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of the run (mapped ones too), page by page."""
        found: list[dict[str, Any]] = []
        while True:
            page = self.get(
                f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=PAGE, offset=len(found)
            )
            found.extend(page["task_instances"])
            if len(found) >= page["total_entries"] or not page["task_instances"]:
                return found

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> str:
        """Block until the run finishes; its final state (``success`` or ``failed``)."""
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.dag_run(dag_id, run_id)["state"])
            if state in FINISHED_RUN_STATES:
                return state
            if time.monotonic() >= deadline:
                states = {
                    (ti["task_id"], ti["map_index"]): ti["state"]
                    for ti in self.task_instances(dag_id, run_id)
                }
                raise TimeoutError(
                    f"DAG run {dag_id}/{run_id} is {state} after {timeout:g}s; tasks: {states}"
                )
            time.sleep(0.5)

    def set_task_state(
        self, dag_id: str, run_id: str, task_id: str, state: str, map_index: int = -1
    ) -> Any:
        """Set a task instance's state as a user does in the UI ("Mark as failed/success")."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return self.request("PATCH", path, json={"new_state": state})

    def clear_tasks(self, dag_id: str, run_id: str, *task_ids: str) -> Any:
        """Clear task instances of a run whatever their state, as the UI's "Clear" does."""
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": list(task_ids)}
        body["only_failed"] = False
        return self.request("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> str:
        """The text of one try's task log (the worker's and the triggerer's lines)."""
        content = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            map_index=map_index,
            full_content=True,
        )
        if isinstance(content, str):
            return content
        lines = []
        for entry in content.get("content", []):
            if isinstance(entry, dict):
                lines.append(" ".join(str(v) for k, v in entry.items() if k in LOG_FIELDS))
            else:
                lines.append(str(entry))
        return "\n".join(lines)

    def xcom(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str = "return_value",
        map_index: int = -1,
    ) -> Any:
        """One XCom value of a task instance."""
        entry = self.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            map_index=map_index,
            deserialize=True,
        )
        return entry["value"]
