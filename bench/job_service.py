"""What does the job service hold up to, and what does it save Armada?

This process hosts the local Armada (time-scaled) and counts its RPCs; the job service
runs as ``armada-hooks job-service`` in a process of its own (SQLite store), so that its
peak RSS is its own.

Part 1, the cache: ``--jobs`` jobs in ``--job-sets`` job sets pass through (runtimes drawn
from ``--runtime`` job-seconds). A watcher asks the batched ``JobStates`` RPC for every
job every ``--watch-every`` seconds and notes when it first reads each job's end (the
latency from the job's terminal transition on the server, p50/p99, includes up to one
watch period). A load generator in its own process then sends ``GetJobStatus`` for random
jobs at ``--rate`` requests/s for ``--seconds`` (open loop: calls are due at fixed times,
latency counted from when each was due), and the batched RPC (``--batch`` jobs a call) at
``--rate / --batch`` calls/s. Figures: the service's peak RSS, the latencies, the calls
Armada received (GetJobStatus, GetJobDetails, event streams).

Part 2, cross-process waiting: ``--wait-jobs`` jobs (job sets of ``--job-set-size``) are
waited on synchronously (``ArmadaHook.wait_for_job``, the operator's sync path, one
thread per job) from ``--workers`` worker processes, once against Armada directly and once
through the job service (``job_service_target``). Figures: GetJobStatus at Armada per
poll interval, event streams opened, GetJobDetails, and the ratio.

    python bench/job_service.py                   # 10,000 jobs / 1,000 job sets; 1,000 waits
    python bench/job_service.py --jobs 1000 --job-sets 50 --wait-jobs 200 --seconds 5
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from armada_hooks.channels import ChannelSpec, open_channel
from armada_hooks.jobservice.client import JobServiceClient
from armada_hooks.states import TERMINAL_STATES
from armada_hooks.testing import LocalArmada, job_request_item

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "armada-hooks"
SERVING = re.compile(r"^job service serving on (127\.0\.0\.1:\d+)$")
TERMINAL = {s.value for s in TERMINAL_STATES}


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def submit_sets(armada: LocalArmada, jobs: int, sets: int, runtime: tuple[float, float]):
    """Submit ``jobs`` jobs spread over ``sets`` job sets; [(job set, job id)]."""
    client, refs = armada.client(), []
    per_set = [jobs // sets + (1 if i < jobs % sets else 0) for i in range(sets)]
    for i, count in enumerate(per_set):
        job_set = f"bench-set-{i}"
        for start in range(0, count, 500):
            items = [
                job_request_item(
                    annotations={"armada-hooks/runtime": f"{random.uniform(*runtime):.1f}"}
                )
                for _ in range(min(500, count - start))
            ]
            response = client.submit_jobs("default", job_set, items)
            refs += [(job_set, r.job_id) for r in response.job_response_items]
    return refs


def terminal_wall(armada: LocalArmada, ids: list[str], scale: float) -> dict[str, float]:
    """Wall epoch second of each job's terminal transition on the server."""
    wall_now, job_now = time.time(), armada.now()
    with armada.store.lock:
        ended = {j: armada.store.jobs[j].last_transition_ts for j in ids}
    return {j: wall_now - (job_now - ts) / scale for j, ts in ended.items()}


def start_service(armada: LocalArmada, folder: str) -> tuple[subprocess.Popen[str], str]:
    """``armada-hooks job-service`` on a free port with a SQLite store; (process, target)."""
    proc = subprocess.Popen(
        [str(SCRIPT), "job-service", "--armada-target", armada.target,
         "--store", f"sqlite:{folder}/js.db"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    match = SERVING.match(line)
    if not match:
        proc.kill()
        raise SystemExit(f"the job service did not start: {line!r}")
    return proc, match.group(1)


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- part 1 ---------------------------------------------------------------------------


def watch(target: str, refs: list[tuple[str, str]], every: float) -> dict[str, float]:
    """Ask for every job every ``every`` s until all ended; when each was first seen ended."""
    client = JobServiceClient(open_channel(ChannelSpec(target)))
    seen: dict[str, float] = {}
    deadline = time.monotonic() + 600
    while len(seen) < len(refs) and time.monotonic() < deadline:
        started = time.monotonic()
        todo = [("default", s, j) for s, j in refs if j not in seen]
        for i in range(0, len(todo), 5000):
            answers = client.get_job_states(todo[i : i + 5000]).answers
            now = time.time()
            for answer in answers:
                if answer.state in TERMINAL and answer.job.job_id not in seen:
                    seen[answer.job.job_id] = now
        time.sleep(max(0.0, every - (time.monotonic() - started)))
    return seen


def load_generator(target: str, ids_file: str, rate: float, seconds: float, batch: int) -> None:
    """(Its own process.) Calls at ``rate``/s for ``seconds``; prints latencies (ms) as JSON."""
    refs = [tuple(r) for r in json.loads(Path(ids_file).read_text())]
    threads, results = 8, []
    t0 = time.monotonic() + 0.2

    def run(k: int) -> None:
        client = JobServiceClient(open_channel(ChannelSpec(target)))
        latencies, errors, i = [], 0, k
        total = int(rate * seconds)
        while i < total:
            due = t0 + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                if batch > 1:
                    picks = random.sample(refs, batch)
                    client.get_job_states([("default", s, j) for s, j in picks])
                else:
                    s, j = random.choice(refs)
                    client.get_job_status("default", s, j)
            except Exception:
                errors += 1
            latencies.append((time.monotonic() - due) * 1000)
            i += threads
        results.append((latencies, errors))

    workers = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - t0
    latencies = [x for lat, _ in results for x in lat]
    print(json.dumps({
        "calls": len(latencies), "errors": sum(e for _, e in results),
        "rate": len(latencies) / elapsed, "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies, default=0.0),
    }))  # fmt: skip


def generate(target: str, refs, rate: float, seconds: float, batch: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(refs, f)
    done = subprocess.run(
        [sys.executable, __file__, "--load-generator", target, f.name,
         str(rate), str(seconds), str(batch)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    os.unlink(f.name)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def part_cache(args: argparse.Namespace) -> dict[str, Any]:
    with LocalArmada(queues=["default"], time_scale=args.time_scale) as armada, \
            tempfile.TemporaryDirectory() as folder:  # fmt: skip
        proc, target = start_service(armada, folder)
        try:
            refs = submit_sets(armada, args.jobs, args.job_sets, tuple(args.runtime))
            armada.reset_rpc_counts()
            seen = watch(target, refs, args.watch_every)
            ids = [j for _, j in refs]
            ended = terminal_wall(armada, ids, args.time_scale)
            visible = [seen[j] - ended[j] for j in ids if j in seen]
            single = generate(target, refs, args.rate, args.seconds, 1)
            batched = generate(target, refs, args.rate / args.batch, args.seconds, args.batch)
            counts = armada.rpc_counts()
            rss = peak_rss_mb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "jobs": args.jobs, "job_sets": args.job_sets, "seen_ended": len(visible),
        "peak_rss_mb": rss, "visible_p50_s": percentile(visible, 0.5),
        "visible_p99_s": percentile(visible, 0.99), "get_job_status": single,
        "get_job_states": {**batched, "batch": args.batch},
        "armada_get_job_status": counts.get("GetJobStatus", 0),
        "armada_get_job_details": counts.get("GetJobDetails", 0),
        "armada_streams": counts.get("GetJobSetEvents", 0),
    }  # fmt: skip


# -- part 2 ---------------------------------------------------------------------------


def worker(conn_env: str, interval: float) -> None:
    """(Its own process.) Say ready, read job ids from stdin, wait for each on its own
    thread synchronously; print the states."""
    os.environ["AIRFLOW_CONN_ARMADA_BENCH"] = conn_env
    from armada_hooks.hooks.armada import ArmadaHook

    hook = ArmadaHook("armada_bench")
    hook.config  # noqa: B018  (the connection is parsed before the clock starts)
    print("ready", flush=True)
    ids = json.loads(sys.stdin.readline())
    states: dict[str, str] = {}

    def wait(job_id: str) -> None:
        try:
            states[job_id] = hook.wait_for_job(job_id, delay=interval).name
        except Exception as exc:
            states[job_id] = f"error: {exc}"

    threads = [threading.Thread(target=wait, args=(j,)) for j in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(states))


def wait_from_workers(armada: LocalArmada, conn: str, args: argparse.Namespace) -> dict[str, Any]:
    sets = max(1, args.wait_jobs // args.job_set_size)
    procs = [  # started (Airflow imported) before the jobs are submitted
        subprocess.Popen(
            [sys.executable, __file__, "--worker", conn, str(args.interval)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        for _ in range(args.workers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("a worker process did not start")
    refs = submit_sets(armada, args.wait_jobs, sets, tuple(args.wait_runtime))
    ids = [j for _, j in refs]
    armada.reset_rpc_counts()
    started = time.monotonic()
    for k, proc in enumerate(procs):
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(ids[k :: args.workers]) + "\n")
        proc.stdin.flush()
    states: dict[str, str] = {}
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        states.update(json.loads(out.strip().splitlines()[-1]))
    elapsed = time.monotonic() - started
    counts = armada.rpc_counts()
    statuses = counts.get("GetJobStatus", 0)
    return {
        "jobs": len(ids), "job_sets": sets, "workers": args.workers,
        "succeeded": sum(s == "SUCCEEDED" for s in states.values()),
        "wall_s": elapsed, "get_job_status": statuses,
        "get_job_status_per_interval": statuses / max(elapsed / args.interval, 1.0),
        "streams": counts.get("GetJobSetEvents", 0),
        "get_job_details": counts.get("GetJobDetails", 0),
    }  # fmt: skip


def part_waiting(args: argparse.Namespace) -> dict[str, Any]:
    with LocalArmada(queues=["default"], time_scale=args.time_scale) as armada:
        direct = wait_from_workers(armada, armada.airflow_connection(), args)
        with tempfile.TemporaryDirectory() as folder:
            proc, target = start_service(armada, folder)
            try:
                conn = armada.airflow_connection(job_service_target=target)
                through = wait_from_workers(armada, conn, args)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    ratio = direct["get_job_status"] / max(through["get_job_status"], 1)
    return {"direct": direct, "job_service": through, "ratio": ratio}


def main() -> None:
    if sys.argv[1:2] == ["--load-generator"]:
        target, ids_file, rate, seconds, batch = sys.argv[2:7]
        load_generator(target, ids_file, float(rate), float(seconds), int(batch))
        return
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], float(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--job-sets", type=int, default=1_000)
    parser.add_argument("--runtime", type=float, nargs=2, default=(10.0, 120.0))
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--watch-every", type=float, default=0.25)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--wait-jobs", type=int, default=1_000)
    parser.add_argument("--job-set-size", type=int, default=10)
    parser.add_argument("--wait-runtime", type=float, nargs=2, default=(60.0, 180.0))
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--part", choices=["cache", "waiting", "both"], default="both")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "job-service.json")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    if args.part in ("cache", "both"):
        report["cache"] = cache = part_cache(args)
        print(f"cache: {cache['jobs']} jobs in {cache['job_sets']} job sets, "
              f"{cache['seen_ended']} seen ended")
        print(f"  job service peak RSS: {cache['peak_rss_mb']:.0f} MB")
        print(f"  terminal state visible: p50 {cache['visible_p50_s']:.2f} s, "
              f"p99 {cache['visible_p99_s']:.2f} s (watch period {args.watch_every} s)")
        for name in ("get_job_status", "get_job_states"):
            g = cache[name]
            print(f"  {name}: {g['rate']:.0f} calls/s, p50 {g['p50_ms']:.2f} ms, "
                  f"p99 {g['p99_ms']:.2f} ms, errors {g['errors']}")
        print(f"  at Armada: GetJobStatus {cache['armada_get_job_status']}, GetJobDetails "
              f"{cache['armada_get_job_details']}, event streams {cache['armada_streams']}")
    if args.part in ("waiting", "both"):
        report["waiting"] = waiting = part_waiting(args)
        for name in ("direct", "job_service"):
            w = waiting[name]
            print(f"waiting {name}: {w['jobs']} jobs ({w['job_sets']} job sets) from "
                  f"{w['workers']} workers, {w['succeeded']} succeeded in {w['wall_s']:.0f} s; "
                  f"GetJobStatus at Armada {w['get_job_status']} "
                  f"({w['get_job_status_per_interval']:.1f} per interval), event streams "
                  f"{w['streams']}, GetJobDetails {w['get_job_details']}")
        print(f"  ratio direct / job service GetJobStatus: {waiting['ratio']:.0f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
