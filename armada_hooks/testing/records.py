"""The local Armada's record of jobs and runs (server-side state, not the client view)."""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

from armada_client.armada import job_pb2, submit_pb2

from armada_hooks.testing.behaviour import JobBehaviour

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
LEASED_STATES = frozenset({submit_pb2.LEASED, submit_pb2.PENDING, submit_pb2.RUNNING})
"""Job states of a job that holds a lease (wire values)."""
ACTIVE_RUN_STATES = frozenset(
    {job_pb2.RUN_STATE_LEASED, job_pb2.RUN_STATE_PENDING, job_pb2.RUN_STATE_RUNNING}
)
"""Run states of a run that has not ended."""


def new_job_id() -> str:
    """A ULID in lower case, the shape of Armada's job ids (time-ordered, 26 chars)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@dataclass
class RunRecord:
    """One attempt of a job on a (simulated) cluster node."""

    run_id: str
    job_id: str
    cluster: str
    node: str
    state: int = job_pb2.RUN_STATE_LEASED
    leased_ts: float | None = None
    pending_ts: float | None = None
    started_ts: float | None = None
    finished_ts: float | None = None


@dataclass
class JobRecord:
    """Everything the local Armada knows about one job."""

    job_id: str
    queue: str
    job_set_id: str
    namespace: str
    owner: str
    client_id: str
    external_job_uri: str
    priority: float
    item: submit_pb2.JobSubmitRequestItem
    behaviour: JobBehaviour
    submitted_ts: float
    ingested_ts: float
    state: int = submit_pb2.SUBMITTED
    last_transition_ts: float = 0.0
    runs: list[RunRecord] = field(default_factory=list)
    lease_returns_left: int = 0
    reason: str = ""
    exit_code: int | None = None
    cancel_reason: str = ""
    cancel_user: str = ""
    cancel_ts: float | None = None
    logs: list[tuple[float, str]] = field(default_factory=list)
    next_step: str | None = None
    next_due: float | None = None
    generation: int = 0
    node: str = ""  # the simulated node its runs land on ('' before placement)
    start_failure: str = ""  # why its pod cannot start ('' when it can)
    pod_created: bool = True  # False: the API server refused the pod (no pending event)

    @property
    def latest_run(self) -> RunRecord | None:
        """The most recent run, if the job was ever leased."""
        return self.runs[-1] if self.runs else None

    def to_json(self) -> dict[str, Any]:
        """Plain values for persistence (the request item is stored separately)."""
        data = dataclasses.asdict(self)
        del data["item"]
        data["ingested_ts"] = None if self.ingested_ts == float("inf") else self.ingested_ts
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], item: bytes) -> JobRecord:
        """Rebuild a record saved by :meth:`to_json`."""
        data = dict(data)
        behaviour = data.pop("behaviour")
        if behaviour.get("logs") is not None:
            behaviour["logs"] = tuple(behaviour["logs"])
        data["behaviour"] = JobBehaviour(**behaviour)
        data["runs"] = [RunRecord(**run) for run in data["runs"]]
        data["logs"] = [(float(ts), str(line)) for ts, line in data["logs"]]
        if data["ingested_ts"] is None:
            data["ingested_ts"] = float("inf")
        return cls(item=submit_pb2.JobSubmitRequestItem.FromString(item), **data)
