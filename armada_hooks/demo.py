"""The demo: the example DAG run by Airflow's ``dag.test()`` against an embedded local Armada.

It starts a local Armada, points ``armada_default`` at it, submits the job that the
DAG's sensor watches (as somebody else would), and runs ``example_dags/armada_example.py``.
While it runs it prints task and job transitions and container log lines; it ends with
a summary table and exits 0 only if every task ended as the DAG's ``EXPECTED`` says.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from armada_hooks.defaults import DEFAULT_CONN_ENV
from armada_hooks.demo_logs import quiet_intended_failures
from armada_hooks.links.lookout import lookout_job_url
from armada_hooks.testing import JobSnapshot, LocalArmada, job_request_item

DEFAULT_DAG_FILE = Path("example_dags/armada_example.py")
LOOKOUT_URL = "http://localhost:8089"
TASK_KEY = "armadaproject.io/taskId"
MAP_KEY = "armadaproject.io/mapIndex"


def _load(dag_file: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("armada_example_dag", dag_file)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load a DAG from {dag_file}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _task_name(annotations: dict[str, str]) -> str:
    task = annotations.get(TASK_KEY, "(outside Airflow)")
    index = annotations.get(MAP_KEY, "-1")
    return task if index == "-1" else f"{task}[{index}]"


class Progress(threading.Thread):
    """Prints job transitions, new container log lines and task states as they happen."""

    def __init__(self, armada: LocalArmada, dag_id: str, start: float) -> None:
        # Import on the calling thread: two threads importing Airflow's models at once
        # deadlock on the import locks.
        from airflow.models.dagrun import DagRun
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        super().__init__(daemon=True)
        self._ti, self._run, self._session = TaskInstance, DagRun, create_session
        self._since = datetime.now(UTC)  # earlier runs of the DAG stay in the database
        self.armada, self.dag_id, self.start_time = armada, dag_id, start
        self.done = threading.Event()
        self._jobs: dict[str, str] = {}
        self._lines: dict[str, int] = {}
        self._tasks: dict[tuple[str, int], str] = {}

    def say(self, text: str) -> None:
        """Print one timestamped progress line."""
        print(f"[{time.monotonic() - self.start_time:6.1f}s] {text}", flush=True)

    def run(self) -> None:
        """Look four times a second until the run is over, then once more."""
        while not self.done.wait(0.25):
            self.tick()
        self.tick()

    def tick(self) -> None:
        """Print what changed since the last look."""
        for job in self.armada.jobs():
            name = _task_name(job.annotations)
            if self._jobs.get(job.job_id) != job.state.name:
                self._jobs[job.job_id] = job.state.name
                self.say(f"job  {job.job_id[-8:]}  {name:<18} {job.state.name}")
            seen = self._lines.get(job.job_id, 0)
            for line in job.log_lines[seen:]:
                self.say(f"log  {job.job_id[-8:]}  {name:<18} | {line}")
            self._lines[job.job_id] = len(job.log_lines)
        ti, run = self._ti, self._run
        try:
            with self._session() as session:
                ours = session.query(run.run_id).filter(
                    run.dag_id == self.dag_id, run.start_date >= self._since
                )
                rows = (
                    session.query(ti.task_id, ti.map_index, ti.state)
                    .filter(ti.dag_id == self.dag_id, ti.run_id.in_(ours.scalar_subquery()))
                    .all()
                )
        except Exception:  # the run holds the SQLite database right now; look next tick
            return
        changed: dict[str, list[str]] = {}  # tasks that reached a state since the last look
        for task_id, map_index, state in rows:
            key, value = (task_id, map_index), str(state or "none")
            if self._tasks.get(key) != value:
                self._tasks[key] = value
                name = task_id if map_index == -1 else f"{task_id}[{map_index}]"
                changed.setdefault(value, []).append(name)
        for value, names in changed.items():
            self.say(f"task {', '.join(names):<28} {value}")


def run_demo(dag_file: Path = DEFAULT_DAG_FILE, time_scale: float = 10.0) -> int:
    """Run the example DAG; 0 when every task ended as intended."""
    if not dag_file.exists():
        print(f"error: {dag_file} not found; run `make demo` from the repository root")
        return 2
    start = time.monotonic()
    with LocalArmada(queues=["demo"], time_scale=time_scale) as armada:
        os.environ[DEFAULT_CONN_ENV] = armada.airflow_connection(lookout_url=LOOKOUT_URL)
        module = _load(dag_file)
        external = job_request_item(
            ["sh", "-c", "make-report"],
            external_job_uri=module.EXTERNAL_JOB_URI,
            annotations={"armada-hooks/runtime": "150s", "armada-hooks/log-lines": "1"},
        )
        armada.client().submit_jobs(module.QUEUE, module.EXTERNAL_JOB_SET, [external])
        print(
            f"local Armada on {armada.target} (x{time_scale:g} job time); running "
            f"{module.dag.dag_id} with dag.test()",
            flush=True,
        )
        from armada_hooks._compat import preload_dag_test
        from armada_hooks.testing.dags import run_dag

        preload_dag_test()  # every Airflow import done here, before the progress thread
        progress = Progress(armada, module.dag.dag_id, start)
        progress.start()

        try:
            with quiet_intended_failures(module.EXPECTED, progress.say) as failures:
                dag_run = run_dag(module.dag)
        finally:
            progress.done.set()
            progress.join()
        as_intended, total = _summary(armada, dag_run, module.EXPECTED)
    took = time.monotonic() - start
    ok = as_intended == total
    print(
        f"\n{'demo passed' if ok else 'demo FAILED'} in {took:.1f}s: {as_intended} of {total} "
        f"tasks ended as intended; failures intended: {', '.join(failures.seen) or 'none'}",
        flush=True,
    )
    return 0 if ok else 1


def _summary(
    armada: LocalArmada, dag_run: Any, expected: dict[str, tuple[str, int]]
) -> tuple[int, int]:
    """Print the table; how many tasks ended as ``expected`` says, and of how many."""
    jobs: dict[str, list[JobSnapshot]] = {}
    for snapshot in sorted(armada.jobs(), key=lambda j: j.submitted_ts):
        jobs.setdefault(_task_name(snapshot.annotations), []).append(snapshot)
    header = (
        f"{'task':<16} {'state':<17} {'tries':>5} {'secs':>6}  {'job id':<26} "
        f"{'job state':<10} lookout"
    )
    print("\n" + header + "\n" + "-" * len(header))
    as_intended, tis = 0, dag_run.get_task_instances()
    for ti in sorted(tis, key=lambda t: (t.task_id, t.map_index)):
        name = ti.task_id if ti.map_index == -1 else f"{ti.task_id}[{ti.map_index}]"
        want_state, want_tries = expected.get(ti.task_id, ("success", 1))
        state = str(ti.state)
        good = state == want_state and ti.try_number == want_tries
        as_intended += good
        if good and state != "success":
            state += " (intended)"
        mine = jobs.get(name, [])
        if ti.task_id == "watch_external":
            mine = jobs.get("(outside Airflow)", [])
        job: JobSnapshot | None = mine[-1] if mine else None
        print(
            f"{name:<16} {state:<17} {ti.try_number:>5} {float(ti.duration or 0):>6.1f}  "
            f"{job.job_id if job else '-':<26} {job.state.name if job else '-':<10} "
            f"{lookout_job_url(LOOKOUT_URL, job.job_id) if job else '-'}"
            f"{'' if good else f'   <-- expected {want_state} after {want_tries} tries'}"
        )
    return as_intended, len(tis)
