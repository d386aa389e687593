"""What does waiting on N Armada jobs cost? Ours against per-job polling and Armada's operator.

This process hosts the local Armada (time-scaled) and counts its RPCs. For each
implementation and N it starts a separate *waiting process* (``bench/waiters/``) that
submits N jobs (job sets of ``--job-set-size``, runtimes drawn uniformly from
``--runtime`` job-seconds), then waits for all of them the way a triggerer does, and
reports when it saw each job end, its CPU seconds (all threads) and its peak RSS.

Implementations:
  shared          ArmadaJobTrigger: one batched GetJobStatus per tick for every wait
  events          ArmadaJobTrigger(event_mode=True): one event stream per job set
  naive           a trigger polling its own job every interval (one RPC per job per interval)
  armada-airflow  Armada's own operator 1.1.3, deferrable: a sleeping trigger and a worker
                  wake-up per job per interval (its own environment, .bench/armada-airflow)

Figures per run (printed, and written to bench/results/waiting.json and waiting.png):
  status RPCs per job-minute of waiting (job time; GetJobStatus + GetJobSetEvents opens),
  the most GetJobStatus calls in any one poll interval, all query RPCs per job-minute,
  detection latency p50/p99/max (job terminal on the server -> the waiter saw it, wall s),
  waiting-process CPU s per job-minute and as % of one core, peak RSS, wake-ups, errors.

Logs mode (``--logs``): every trigger also streams its job's log into the task log,
half the jobs chatty (a line per job-second), half quiet (one line); the run then adds
Binoculars ``Logs`` calls per second (chatty and quiet, against the targets), the delay
from a line's timestamp to the trigger logging it (p50/p99), and checks every line was
logged once (see ``bench/waiting_logs.py``). Its defaults: N = 1,000, ``shared``, real
time (``--time-scale 1``), runtimes 120-360 s, ``--log-interval 5``, results in
bench/results/waiting-logs.json (no plot).

    python bench/waiting.py                      # the full run (about 15 minutes)
    python bench/waiting.py --n 10 100 --impl shared naive
    python bench/waiting.py --logs               # logs on at N = 1,000 (about 7 minutes)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from waiting_logs import job_sets as log_job_sets
from waiting_logs import log_figures, percentile, print_log_figures

from armada_hooks.defaults import DEFAULT_LOG_INTERVAL
from armada_hooks.states import TERMINAL_STATES, JobState
from armada_hooks.testing import LocalArmada

ROOT = Path(__file__).resolve().parent.parent
WAITERS = ROOT / "bench" / "waiters"
RESULTS = ROOT / "bench" / "results"
THEIR_PYTHON = ROOT / ".bench" / "armada-airflow" / "bin" / "python"
IMPLS = ("shared", "events", "naive", "armada-airflow")
LOG_IMPLS = ("shared", "events")  # the ones that stream logs: ArmadaJobTrigger
DEFAULTS = {  # per mode: plain waiting, and --logs
    False: {
        "n": [10, 100, 1000, 5000],
        "impl": list(IMPLS),
        "time_scale": 10.0,
        "runtime": [30.0, 240.0],
        "out": str(RESULTS / "waiting"),
    },
    True: {
        "n": [1000],
        "impl": ["shared"],
        "time_scale": 1.0,
        "runtime": [120.0, 360.0],
        "out": str(RESULTS / "waiting-logs"),
    },
}
STATUS_METHODS = ("GetJobStatus", "GetJobSetEvents")
QUERY_METHODS = ("GetJobStatus", "GetJobSetEvents", "GetJobDetails", "GetJobErrors")


class RpcSampler(threading.Thread):
    """Samples a server counter (``read()``) with the wall time, e.g. for the most calls in
    one interval."""

    def __init__(self, read: Callable[[], Any], period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.read, self.period = read, period
        self.samples: list[tuple[float, Any]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append((time.time(), self.read()))
            time.sleep(self.period)

    def most_in_window(self, window: float) -> int:
        most, start = 0, 0
        for t, count in self.samples:
            while self.samples[start][0] < t - window:
                start += 1
            most = max(most, count - self.samples[start][1])
        return most


def run_once(armada: LocalArmada, impl: str, n: int, args: argparse.Namespace) -> dict:
    rng = random.Random(n)
    low, high = args.runtime
    stamp = f"{impl}-{n}-{int(time.time())}"
    if args.logs:
        job_sets = log_job_sets(rng, n, args.job_set_size, args.runtime, f"bench-{stamp}")
    else:
        sizes = [min(args.job_set_size, n - s) for s in range(0, n, args.job_set_size)]
        job_sets = [
            {"id": f"bench-{stamp}-{k}", "runtimes": [rng.uniform(low, high) for _ in range(size)]}
            for k, size in enumerate(sizes)
        ]
    with tempfile.TemporaryDirectory() as tmp:
        config = {
            "target": armada.target,
            "queue": "default",
            "job_sets": job_sets,
            "interval": args.interval,
            "mode": impl,
            "log_interval": args.log_interval if args.logs else None,
            "out": str(Path(tmp) / "result.json"),
        }
        (Path(tmp) / "config.json").write_text(json.dumps(config))
        if impl == "armada-airflow":
            command = [str(THEIR_PYTHON), str(WAITERS / "armada_airflow.py")]
            env = {**os.environ, "AIRFLOW_HOME": str(Path(tmp) / "airflow")}
        else:
            command = [sys.executable, str(WAITERS / "ours.py")]
            env = dict(os.environ)
        armada.reset_rpc_counts()
        sampler = RpcSampler(lambda: armada.rpc_count("GetJobStatus"))
        log_sampler = RpcSampler(lambda: armada.rpc_counts_by_job("Logs"), period=1.0)
        for thread in (sampler, log_sampler) if args.logs else (sampler,):
            thread.start()
        timeout = high / args.time_scale + 30 * args.interval + 120
        with open(Path(tmp) / "stderr.log", "w") as stderr:
            try:
                done = subprocess.run(
                    [*command, "--config", str(Path(tmp) / "config.json")],
                    env=env,
                    stdout=stderr,
                    stderr=stderr,
                    timeout=timeout,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                done = None
        for thread in (sampler, log_sampler):
            thread.stopping.set()
            if thread.is_alive():
                thread.join()
        counts = armada.rpc_counts()
        if done is None:  # its design did not cope with this N in the time: say so, go on
            return {"impl": impl, "n": n, "timed_out_after_s": round(timeout)}
        if done.returncode != 0:  # the waiting process itself fell over: say so, go on
            tail = (Path(tmp) / "stderr.log").read_text()[-2000:]
            return {"impl": impl, "n": n, "crashed": tail}
        result = json.loads(Path(config["out"]).read_text())
    row = summarise(armada, impl, n, args, result, counts, sampler)
    if args.logs:
        with armada.store.lock:
            jobs = {j: armada.store.jobs[j] for j in result["detected"]}
        row["logs"] = log_figures(
            jobs,
            armada.rpc_counts_by_job("Logs"),
            log_sampler.samples,
            result,
            wall_clock(armada, args.time_scale),
            args.log_interval,
            args.interval,
        )
    return row


def wall_clock(armada: LocalArmada, scale: float) -> Callable[[float], float]:
    """Job time on the server (epoch s) -> wall epoch seconds."""
    wall_now, job_now = time.time(), armada.now()
    return lambda ts: wall_now - (job_now - ts) / scale


def terminal_wall_times(armada: LocalArmada, job_ids: list[str], scale: float) -> dict[str, float]:
    """When each job's terminal transition was due on the server, in wall epoch seconds."""
    to_wall = wall_clock(armada, scale)
    with armada.store.lock:
        return {j: to_wall(armada.store.jobs[j].last_transition_ts) for j in job_ids}


def summarise(armada, impl, n, args, result, counts, sampler) -> dict:
    detected = result["detected"]
    ids = list(detected)
    ended = terminal_wall_times(armada, ids, args.time_scale)
    # A job that ended before the wait began (none should) counts from the wait's start.
    latencies = [detected[j][0] - max(ended[j], result["t0"]) for j in ids]
    server_states = {j: armada.job(j).state for j in ids}
    errors = [
        j
        for j in ids
        if detected[j][2] is not None
        or server_states[j] not in TERMINAL_STATES
        or detected[j][1] != JobState(server_states[j]).name
    ]
    job_minutes = sum(detected[j][0] - result["t0"] for j in ids) * args.time_scale / 60
    status = sum(counts.get(m, 0) for m in STATUS_METHODS)
    query = sum(counts.get(m, 0) for m in QUERY_METHODS)
    return {
        "impl": impl,
        "n": n,
        "detected": len(ids),
        "missed": n - len(ids),
        "errors": len(errors),
        "job_minutes": round(job_minutes, 2),
        "rpcs": {m: counts.get(m, 0) for m in QUERY_METHODS},
        "status_rpcs_per_job_minute": status / job_minutes,
        "query_rpcs_per_job_minute": query / job_minutes,
        "max_status_rpcs_per_interval": sampler.most_in_window(args.interval),
        "latency_p50_s": statistics.median(latencies),
        "latency_p99_s": percentile(latencies, 0.99),
        "latency_max_s": max(latencies),
        "cpu_s": result["cpu_s"],
        "cpu_s_per_job_minute": result["cpu_s"] / job_minutes,
        "cpu_percent_of_core": 100 * result["cpu_s"] / result["wall_s"],
        "wall_s": result["wall_s"],
        "peak_rss_mb": result["peak_rss_mb"],
        "wakeups": result["wakeups"],
        "wakeups_per_job_minute": result["wakeups"] / job_minutes,
    }


def print_row(row: dict) -> None:
    print(
        f"{row['impl']:>15} N={row['n']:>5}  "
        f"status RPC/job-min {row['status_rpcs_per_job_minute']:9.4f}  "
        f"max GetJobStatus/interval {row['max_status_rpcs_per_interval']:5d}  "
        f"latency p50 {row['latency_p50_s']:6.2f}s p99 {row['latency_p99_s']:6.2f}s  "
        f"CPU {row['cpu_percent_of_core']:5.1f}% ({row['cpu_s_per_job_minute']:.5f} s/job-min)  "
        f"RSS {row['peak_rss_mb']:6.1f} MB  wake-ups {row['wakeups']:6d}  "
        f"missed {row['missed']} errors {row['errors']}",
        flush=True,
    )


def ratios(rows: list[dict]) -> list[dict]:
    """Ours (shared, events) over theirs (naive, armada-airflow), figure by figure."""
    by = {(r["impl"], r["n"]): r for r in rows}
    keys = ("status_rpcs_per_job_minute", "latency_p99_s", "cpu_s_per_job_minute", "peak_rss_mb")
    out = []
    for ours in ("shared", "events"):
        for theirs in ("naive", "armada-airflow"):
            for n in sorted({r["n"] for r in rows}):
                a, b = by.get((ours, n)), by.get((theirs, n))
                if a and b:
                    out.append(
                        {
                            "ours": ours,
                            "theirs": theirs,
                            "n": n,
                            **{k: (a[k] / b[k] if b[k] else math.nan) for k in keys},
                        }
                    )
    return out


def plot(rows: list[dict], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("status_rpcs_per_job_minute", "status RPCs per job-minute (GetJobStatus + streams)"),
        ("latency_p99_s", "p99 detection latency (s)"),
        ("cpu_s_per_job_minute", "CPU s per job-minute (waiting process)"),
        ("peak_rss_mb", "peak RSS (MB)"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for impl in IMPLS:
            points = sorted((r["n"], r[key]) for r in rows if r["impl"] == impl)
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, [max(y, 1e-6) for y in ys], marker="o", label=impl)
            for r in rows:  # say where a design broke down, on the figure itself
                if r["impl"] == impl and (r["errors"] or r["missed"]):
                    ax.annotate(
                        f"{r['errors']} errors, {r['missed']} missed",
                        (r["n"], max(r[key], 1e-6)),
                        fontsize=7,
                        textcoords="offset points",
                        xytext=(-60, 6),
                    )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N waiting jobs")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend()
    fig.suptitle(
        f"Waiting on N Armada jobs: poll interval {args.interval:g} s wall "
        f"({args.interval * args.time_scale:g} s job time), time scale {args.time_scale:g}x"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+")
    parser.add_argument("--impl", nargs="+", choices=IMPLS)
    parser.add_argument("--their-max-n", type=int, default=1000, help="armada-airflow up to N")
    parser.add_argument("--interval", type=float, default=3.0, help="poll interval, wall s")
    parser.add_argument("--time-scale", type=float, help="job s per wall s")
    parser.add_argument("--runtime", type=float, nargs=2)
    parser.add_argument("--job-set-size", type=int, default=100)
    parser.add_argument("--out")
    parser.add_argument("--no-plot", action="store_true", help="JSON only (no matplotlib)")
    parser.add_argument("--replot", action="store_true", help="redraw the PNG from the JSON")
    parser.add_argument("--logs", action="store_true", help="every trigger streams its log")
    parser.add_argument(
        "--log-interval", type=float, default=DEFAULT_LOG_INTERVAL, help="wall s, with --logs"
    )
    args = parser.parse_args()
    for name, value in DEFAULTS[args.logs].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.logs and not set(args.impl) <= set(LOG_IMPLS):
        parser.error(f"--logs runs {' and '.join(LOG_IMPLS)} only (they stream logs)")
    if args.logs:
        args.no_plot = True
    if args.replot:
        report = json.loads(Path(args.out).with_suffix(".json").read_text())
        plot(
            report["runs"],
            argparse.Namespace(**report["settings"]),
            Path(args.out).with_suffix(".png"),
        )
        return
    if "armada-airflow" in args.impl and not THEIR_PYTHON.exists():
        raise SystemExit(f"{THEIR_PYTHON} is missing: run `make bench` (it builds that env)")
    print(
        f"poll interval {args.interval:g} s wall = {args.interval * args.time_scale:g} s job "
        f"time; runtimes {args.runtime[0]:g}-{args.runtime[1]:g} job-s; job sets of "
        f"{args.job_set_size}; {os.cpu_count()} cores",
        flush=True,
    )
    rows: list[dict] = []
    fell_over: list[dict] = []
    with LocalArmada(queues=["default"], time_scale=args.time_scale, max_workers=256) as armada:
        for n in args.n:
            for impl in args.impl:
                if impl == "armada-airflow" and n > args.their_max_n:
                    continue
                row = run_once(armada, impl, n, args)
                if "timed_out_after_s" in row or "crashed" in row:
                    how = row.get("crashed", "").strip().splitlines()[-1:] or ["timed out"]
                    print(f"{impl:>15} N={n:>5}  did not finish: {how[0]}", flush=True)
                    fell_over.append(row)
                    continue
                rows.append(row)
                print_row(row)
                if args.logs:
                    print_log_figures(row)
        engine = armada.engine_stats()
    table = ratios(rows)
    for r in table:
        print(
            f"{r['ours']:>6} / {r['theirs']:<14} N={r['n']:>5}: status RPCs "
            f"{r['status_rpcs_per_job_minute']:.4f}x  p99 latency {r['latency_p99_s']:.2f}x  "
            f"CPU {r['cpu_s_per_job_minute']:.3f}x  RSS {r['peak_rss_mb']:.2f}x"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "settings": vars(args),
        "engine": engine,
        "runs": rows,
        "fell_over": fell_over,
        "ratios": table,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    if args.no_plot:
        print(f"wrote {out.with_suffix('.json')}")
        return
    plot(rows, args, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
