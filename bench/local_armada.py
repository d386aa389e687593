"""Is the local Armada fast enough to never be the bottleneck of later benchmarks?

Prints, for a real ArmadaClient over loopback:
  1. GetJobStatus round trip for 500 ids (p50 / p99 / max), on an idle server;
  2. 10,000 simulated jobs submitted in 10 requests and walked to completion on this
     machine: how far the lifecycle engine ever fell behind schedule, and the same
     500-id GetJobStatus round trip measured while those jobs progress.
Targets (issue 2): 500-id GetJobStatus well under 20 ms; 10,000 jobs without falling behind.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time

from armada_hooks.states import TERMINAL_STATES
from armada_hooks.testing import JobBehaviour, LocalArmada, job_request_item
from armada_hooks.testing.behaviour import parse_duration


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def time_status_calls(client, ids: list[str], calls: int, stop: threading.Event | None = None):
    samples = []
    for _ in range(calls):
        if stop is not None and stop.is_set():
            break
        start = time.perf_counter()
        response = client.get_job_status(ids)
        samples.append(time.perf_counter() - start)
        assert len(response.job_states) == len(ids)
    return samples


def submit(client, n: int, runtime: str, job_set: str) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 1000):
        batch = [
            job_request_item(
                annotations={"armada-hooks/runtime": runtime, "armada-hooks/log-lines": "2"}
            )
            for _ in range(min(1000, n - start))
        ]
        response = client.submit_jobs("bench", job_set, batch)
        ids.extend(item.job_id for item in response.job_response_items)
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runtime", default="20s", help="job runtime (job time)")
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()

    results: dict[str, object] = {"cpus": os.cpu_count()}
    with LocalArmada(queues=["bench"]) as armada:
        client = armada.client()
        idle_ids = submit(client, 500, "1s", "idle")
        armada.wait_for_state(idle_ids[-1], timeout=60)
        time_status_calls(client, idle_ids, 20)  # warm up
        idle = percentiles(time_status_calls(client, idle_ids, args.calls))
        results["get_job_status_500_ids_idle"] = idle
        print(f"GetJobStatus, 500 ids, idle server:      {idle}")

        armada.reset_rpc_counts()
        started = time.monotonic()
        ids = submit(client, args.jobs, args.runtime, "load")
        submit_s = time.monotonic() - started
        print(f"submitted {len(ids)} jobs in {submit_s:.2f}s ({len(ids) / submit_s:.0f} jobs/s)")

        stop = threading.Event()
        loaded: list[float] = []

        def measure() -> None:
            while not stop.is_set():
                loaded.extend(time_status_calls(client, ids[:500], 10, stop))
                time.sleep(0.05)

        prober = threading.Thread(target=measure)
        prober.start()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with armada.store.lock:
                done = sum(
                    1
                    for i in ids
                    if armada.store.jobs[i].state in {s.value for s in TERMINAL_STATES}
                )
            if done == len(ids):
                break
            time.sleep(0.25)
        stop.set()
        prober.join()
        total_s = time.monotonic() - started
        walk = JobBehaviour()
        ideal_s = submit_s + walk.queue_time + walk.lease_time + walk.pending_time
        ideal_s += parse_duration(args.runtime, key="--runtime")
        stats = armada.engine_stats()
        under_load = percentiles(loaded)
        results.update(
            {
                "jobs": len(ids),
                "submit_seconds": round(submit_s, 3),
                "all_terminal_seconds": round(total_s, 3),
                "ideal_all_terminal_seconds": round(ideal_s, 3),
                "transitions": int(stats["transitions"]),
                "engine_max_lag_seconds": round(stats["max_lag_seconds"], 4),
                "get_job_status_500_ids_under_load": under_load,
            }
        )
        print(
            f"all {len(ids)} jobs terminal after {total_s:.2f}s; on schedule would be "
            f"{ideal_s:.2f}s (job runtime {args.runtime}, checked every 0.25s)"
        )
        print(
            f"lifecycle engine: {int(stats['transitions'])} transitions, "
            f"worst lag behind schedule {stats['max_lag_seconds'] * 1000:.1f} ms"
        )
        print(f"GetJobStatus, 500 ids, under that load: {under_load}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
