"""What every waiter process does around its waiting: submit, then time and measure itself.

Imports only ``armada_client`` (no ``armada_hooks``), so the waiter for Armada's own
operator can use it from its separate environment. A waiter is started by
``bench/waiting.py`` with ``--config FILE`` (JSON written by the driver) and writes its
result to the config's ``out`` path:

    {"t0": epoch s when waiting began, "detected": {job_id: [epoch s, state, error]},
     "cpu_s": CPU seconds (all threads) from t0 to the last detection, "wall_s": ...,
     "peak_rss_mb": the process's peak resident set, "wakeups": worker wake-ups}
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import grpc
from armada_client.armada import submit_pb2
from armada_client.client import ArmadaClient
from armada_client.k8s.io.api.core.v1 import generated_pb2 as core_v1
from armada_client.k8s.io.apimachinery.pkg.api.resource import generated_pb2 as quantity

MAX_ITEMS_PER_SUBMIT = 500


def load_config() -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True)
    with open(parser.parse_args().config) as f:
        return json.load(f)


def item(runtime_s: float, log_lines: int | None = None) -> submit_pb2.JobSubmitRequestItem:
    """A valid one-container job that the local Armada runs for ``runtime_s`` job-seconds.

    ``log_lines``: how many lines its log gets, evenly spread over the runtime.
    """
    amounts = {"cpu": quantity.Quantity(string="100m"), "memory": quantity.Quantity(string="64Mi")}
    container = core_v1.Container(
        name="main",
        image="busybox:latest",
        command=["true"],
        resources=core_v1.ResourceRequirements(requests=amounts, limits=amounts),
    )
    return submit_pb2.JobSubmitRequestItem(
        namespace="default",
        priority=1.0,
        annotations={
            "armada-hooks/runtime": f"{runtime_s:.3f}s",
            **({} if log_lines is None else {"armada-hooks/log-lines": str(log_lines)}),
        },
        pod_spec=core_v1.PodSpec(containers=[container], restartPolicy="Never"),
    )


def submit_all(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Submit the config's jobs, job set by job set; ``[(job_id, job_set_id)]`` in order.

    A job set is ``{"id", "runtimes"}``, with ``"log_lines"`` (one count per job) in logs mode.
    """
    client = ArmadaClient(grpc.insecure_channel(config["target"]))
    jobs: list[tuple[str, str]] = []
    for job_set in config["job_sets"]:
        runtimes = job_set["runtimes"]
        lines = job_set.get("log_lines") or [None] * len(runtimes)
        jobs_spec = list(zip(runtimes, lines, strict=True))
        for start in range(0, len(jobs_spec), MAX_ITEMS_PER_SUBMIT):
            items = [item(*job) for job in jobs_spec[start : start + MAX_ITEMS_PER_SUBMIT]]
            response = client.submit_jobs(config["queue"], job_set["id"], items)
            jobs += [(r.job_id, job_set["id"]) for r in response.job_response_items]
    return jobs


class Meter:
    """CPU (every thread of the process), wall time and peak RSS from ``start()`` on."""

    def start(self) -> None:
        self.t0 = time.time()
        self.cpu0 = time.process_time()

    def result(self, detected: dict[str, list[Any]], wakeups: int = 0) -> dict[str, Any]:
        last = max((d[0] for d in detected.values()), default=time.time())
        return {
            "t0": self.t0,
            "detected": detected,
            "cpu_s": time.process_time() - self.cpu0,
            "wall_s": last - self.t0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "wakeups": wakeups,
        }


def write_result(config: dict[str, Any], result: dict[str, Any]) -> None:
    with open(config["out"], "w") as f:
        json.dump(result, f)
