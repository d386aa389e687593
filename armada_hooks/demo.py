"""The demo: real ``armada_client`` calls against an embedded local Armada.

Submits a handful of jobs whose annotations script their fate (one runs a real
process, one fails, one is rejected, one has its lease returned), shows a bad spec
and a duplicate submission being handled, streams the job set's events as they
happen, and exits 0 only if every job ended as its annotations said.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from armada_client.client import ArmadaClient
from armada_client.log_client import JobLogClient

from armada_hooks.states import JobState
from armada_hooks.testing import LocalArmada, job_request_item

if TYPE_CHECKING:
    from armada_client.armada import submit_pb2

QUEUE = "demo"
JOB_SET = "armada-hooks-demo"
TERMINAL_EVENTS = {"succeeded", "failed", "cancelled"}  # preempted and rejected end in failed


@dataclass(frozen=True)
class DemoJob:
    """One demo job: a name, the annotations that script it, and the state it must reach."""

    name: str
    annotations: dict[str, str]
    expect: JobState
    command: tuple[str, ...] = ("sleep", "1")


JOBS = (
    DemoJob(
        "real-process",
        {"armada-hooks/execution": "subprocess"},
        JobState.SUCCEEDED,
        (sys.executable, "-c", "print('hello from a real process'); print('exiting 0')"),
    ),
    DemoJob(
        "simulated",
        {"armada-hooks/runtime": "3s", "armada-hooks/log-lines": "3"},
        JobState.SUCCEEDED,
    ),
    DemoJob(
        "fails",
        {
            "armada-hooks/outcome": "failed",
            "armada-hooks/exit-code": "2",
            "armada-hooks/failure-reason": "OOMKilled: container main used too much memory",
        },
        JobState.FAILED,
    ),
    DemoJob("lease-returned", {"armada-hooks/lease-returns": "1"}, JobState.SUCCEEDED),
    DemoJob("rejected", {"armada-hooks/outcome": "rejected"}, JobState.REJECTED),
)


def job_item(job: DemoJob, *, client_id: str = "") -> submit_pb2.JobSubmitRequestItem:
    """The demo job's request: one container, requests == limits, as Armada requires."""
    return job_request_item(
        job.command,
        annotations=job.annotations,
        labels={"app": "armada-hooks-demo", "job": job.name},
        client_id=client_id,
    )


def _say(start: float, text: str) -> None:
    print(f"[{time.monotonic() - start:6.2f}s] {text}", flush=True)


def run_demo(time_scale: float = 1.0) -> int:
    """Run the demo; 0 when every job ended as expected."""
    start = time.monotonic()
    with LocalArmada(queues=[QUEUE], time_scale=time_scale) as armada:
        _say(start, f"local Armada serving on {armada.target} (time scale x{time_scale:g})")
        client = ArmadaClient(armada.channel())

        bad = job_item(JOBS[1])
        bad.pod_spec.containers[0].resources.limits["cpu"].string = "2"  # requests stay 100m
        try:
            client.submit_jobs(QUEUE, JOB_SET, [bad])
            _say(start, "UNEXPECTED: a spec with requests != limits was accepted")
            return 1
        except grpc.RpcError as exc:
            _say(start, f"bad spec refused: {exc.code().name}: {exc.details()}")

        items = [job_item(job, client_id=f"demo-{job.name}") for job in JOBS]
        response = client.submit_jobs(QUEUE, JOB_SET, items)
        ids = [item.job_id for item in response.job_response_items]
        names = dict(zip(ids, (job.name for job in JOBS), strict=True))
        _say(start, f"submitted {len(ids)} jobs in one request to queue {QUEUE!r}")

        again = client.submit_jobs(QUEUE, JOB_SET, [items[1]]).job_response_items[0].job_id
        _say(start, f"resubmitted client id demo-{JOBS[1].name}: same job id = {again == ids[1]}")

        ended: set[str] = set()
        stream = client.get_job_events_stream(QUEUE, JOB_SET)
        for message in stream:
            event = client.unmarshal_event_response(message)
            job_id = event.message.job_id
            _say(start, f"{names.get(job_id, job_id):>15}  {event.type.value}")
            if event.type.value in TERMINAL_EVENTS:
                ended.add(job_id)
            if len(ended) == len(ids):
                client.unwatch_events(stream)
                break
        states = client.get_job_status(ids).job_states
        final = {job_id: JobState(states[job_id]) for job_id in ids}

        errors = client.get_job_errors(ids).job_errors
        print("\njob              job id                      expected   final      reason")
        ok = True
        for job, job_id in zip(JOBS, ids, strict=True):
            state = final[job_id]
            ok &= state == job.expect
            mark = "ok" if state == job.expect else "MISMATCH"
            print(
                f"{job.name:<16} {job_id}  {job.expect.name:<10} {state.name:<10} "
                f"{errors[job_id] or '-'}  [{mark}]"
            )
        logs = JobLogClient(armada.target, ids[0], disable_ssl=True).logs()
        print(f"\nlog of {JOBS[0].name} via Binoculars:")
        for line in logs:
            print(f"  {line.timestamp}  {line.line}")
        counts = armada.rpc_counts()
        print(f"RPCs served: {dict(sorted(counts.items()))}")
    print("demo passed" if ok else "demo FAILED: some jobs did not end as their annotations said")
    return 0 if ok else 1
