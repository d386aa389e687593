"""The Armada-side account of a finished DAG run: no job lost, none twice, none left behind.

For each task instance of the run, its jobs are those whose ``external_job_uri`` names it
(the operator sets one per task instance). Against what Airflow recorded (the job ids its
task logs name, and the XCom of a task that succeeded):

- **lost**: a job Airflow submitted or reattached to that Armada does not have, or a task
  that succeeded without a SUCCEEDED job;
- **duplicate**: a task instance with more than one SUCCEEDED job, two jobs of one client
  id, or more jobs than tries;
- **orphaned**: a job of the run still active once the run has finished (nobody waits for
  it), or a job naming a task instance the run does not have.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from armada_hooks.operators.armada import external_job_uri
from armada_hooks.states import TERMINAL_STATES, JobState

if TYPE_CHECKING:
    from armada_hooks.testing.server import JobSnapshot, LocalArmada
    from armada_hooks.testing.stack.rest import AirflowRest

# The operator's log lines that name a job it submitted or reattached to.
JOB_IN_LOG = re.compile(r"(?:Submitted|Reattaching to) Armada job ([A-Za-z0-9-]+)")


@dataclass
class TaskJobs:
    """One task instance as Airflow and Armada see it."""

    task_id: str
    map_index: int
    state: str
    try_number: int
    jobs: list[JobSnapshot]
    recorded: list[str]

    @property
    def job_states(self) -> list[JobState]:
        """Its jobs' states, in submission order."""
        return [job.state for job in self.jobs]


@dataclass
class JobLedger:
    """What :func:`job_ledger` found; :meth:`assert_clean` fails with every problem."""

    tasks: dict[tuple[str, int], TaskJobs]
    lost: list[str] = field(default_factory=list)
    duplicate: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)

    def task(self, task_id: str, map_index: int = -1) -> TaskJobs:
        """One task instance's entry."""
        return self.tasks[task_id, map_index]

    def assert_clean(self) -> None:
        """Raise ``AssertionError`` naming every lost, duplicate and orphaned job."""
        problems = [
            f"{kind}: {item}"
            for kind, items in (
                ("lost", self.lost),
                ("duplicate", self.duplicate),
                ("orphaned", self.orphaned),
            )
            for item in items
        ]
        if problems:
            raise AssertionError("Armada jobs out of step with Airflow:\n" + "\n".join(problems))


def _recorded_ids(rest: AirflowRest, dag_id: str, run_id: str, ti: dict[str, Any]) -> list[str]:
    """The job ids a task instance's tries recorded, oldest first.

    A try that succeeded returned its job id (XCom); any other try's is read from its log.
    """
    ids: list[str] = []
    tries = int(ti["try_number"])
    succeeded = ti["state"] == "success"
    for try_number in range(1, tries + (0 if succeeded else 1)):
        text = rest.task_log(dag_id, run_id, ti["task_id"], try_number, ti["map_index"])
        for job_id in JOB_IN_LOG.findall(text):
            if job_id not in ids:
                ids.append(job_id)
    if succeeded:
        returned = rest.xcom(dag_id, run_id, ti["task_id"], map_index=ti["map_index"])
        if returned and str(returned) not in ids:
            ids.append(str(returned))
    return ids


def run_uri_prefix(dag_id: str) -> str:
    """The start of the ``external_job_uri`` of every job of ``dag_id``'s tasks."""
    return external_job_uri(dag_id, "", "", 0).split("//", 1)[0] + f"//{dag_id}/"


def names_run(uri: str, dag_id: str, run_id: str) -> bool:
    """Whether an ``external_job_uri`` names a task instance of this run."""
    return uri.startswith(run_uri_prefix(dag_id)) and f"/{run_id}/" in uri


def jobs_of_run(armada: LocalArmada, dag_id: str, run_id: str) -> list[JobSnapshot]:
    """The local Armada's jobs whose ``external_job_uri`` names this run (server side)."""
    return [j for j in armada.jobs() if names_run(j.external_job_uri, dag_id, run_id)]


def job_ledger(rest: AirflowRest, armada: LocalArmada, dag_id: str, run_id: str) -> JobLedger:
    """Account for every Armada job of the finished run ``dag_id``/``run_id``."""
    tis = rest.task_instances(dag_id, run_id)
    jobs = armada.jobs()
    known = {job.job_id: job for job in jobs}
    by_uri: dict[str, list[JobSnapshot]] = collections.defaultdict(list)
    for job in jobs:
        by_uri[job.external_job_uri].append(job)
    ledger = JobLedger(tasks={})
    claimed: set[str] = set()
    for ti in tis:
        key = (str(ti["task_id"]), int(ti["map_index"]))
        uri = external_job_uri(dag_id, key[0], run_id, key[1])
        its_jobs = sorted(by_uri.get(uri, []), key=lambda j: j.submitted_ts)
        claimed.add(uri)
        entry = TaskJobs(
            task_id=key[0],
            map_index=key[1],
            state=str(ti["state"]),
            try_number=int(ti["try_number"]),
            jobs=its_jobs,
            recorded=_recorded_ids(rest, dag_id, run_id, ti),
        )
        ledger.tasks[key] = entry
        name = f"{key[0]}[{key[1]}]" if key[1] >= 0 else key[0]
        for job_id in entry.recorded:
            if job_id not in known:
                ledger.lost.append(f"{name}: Airflow recorded job {job_id}, Armada has none")
        succeeded = [j.job_id for j in its_jobs if j.state is JobState.SUCCEEDED]
        if entry.state == "success" and not succeeded:
            ledger.lost.append(f"{name} succeeded but none of its jobs did: {entry.job_states}")
        if len(succeeded) > 1:
            ledger.duplicate.append(f"{name} has {len(succeeded)} SUCCEEDED jobs: {succeeded}")
        client_ids = collections.Counter(j.client_id for j in its_jobs if j.client_id)
        for client_id, n in client_ids.items():
            if n > 1:
                ledger.duplicate.append(f"{name}: {n} jobs of client id {client_id}")
        if len(its_jobs) > entry.try_number:
            ledger.duplicate.append(f"{name}: {len(its_jobs)} jobs for {entry.try_number} tries")
        for job in its_jobs:
            if job.state not in TERMINAL_STATES:
                ledger.orphaned.append(f"{name}: job {job.job_id} is still {job.state.name}")
    for uri, its_jobs in by_uri.items():
        if names_run(uri, dag_id, run_id) and uri not in claimed:
            ids = [j.job_id for j in its_jobs]
            ledger.orphaned.append(f"jobs {ids} name {uri}, which the run has no task for")
    return ledger
