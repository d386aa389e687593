"""What does the job service hold up to, and what does it save Armada?

This process hosts the local Armada (time-scaled) and counts its RPCs; the job service
runs as ``armada-hooks job-service`` in a process of its own (SQLite store), so that its
peak RSS is its own.

Part 1, the cache: ``--jobs`` jobs in ``--job-sets`` job sets pass through (runtimes drawn
from ``--runtime`` job-seconds). A watcher in a process of its own follows each job set
from its submission on, as an operator follows the job it has just submitted: its first
question goes out as the job set is submitted, and from its answer on all unfinished jobs
are asked about every ``--watch-every`` seconds with the batched ``JobStates`` RPC. It
notes when it first reads each job's end. Visibility is counted from the later of the
moment the local Armada appended the job's terminal event to its job set's log (a probe on
its store) and the first question about the job set; p50/p99 include up to one watch
period. The cold start is the same, for a fresh service asked at once about as many job
sets already running: each stream replays its job set from the start. A load generator
in its own process (one asyncio loop) then sends ``GetJobStatus`` for random jobs at
``--rate`` requests/s for ``--seconds`` (open loop: calls are due at fixed times, latency
counted from when each was due), and the batched RPC (``--batch`` jobs a call) at
``--rate / --batch`` calls/s, and, for the floor of what gRPC costs on the machine at
that moment, the service's Health (which does no work) at ``--rate``. Figures: the
service's peak RSS and CPU share, the jobs in flight once all were submitted, the
latencies, the machine's load average (other processes share the CPUs), the calls Armada
received (GetJobStatus, GetJobDetails, event streams; the cold start's aside).

Part 2, cross-process waiting: ``--wait-jobs`` jobs (job sets of ``--job-set-size``) are
waited on synchronously (``ArmadaHook.wait_for_job``, the operator's sync path, one
thread per job) from ``--workers`` worker processes, once against Armada directly and once
through the job service (``job_service_target``). Figures: GetJobStatus at Armada per
poll interval, event streams opened, GetJobDetails, and the ratio.

Part 3, the soak: ``--soak-jobs`` jobs (default 50,000) pass through in waves of
``--soak-wave`` (job sets of 50), each asked about until all ended, with the service
closing idle job sets and purging ended ones after seconds. Figures: the service's RSS
after each wave, its growth over the second half, what is left in the store.

Each part's figures replace that part's in ``--out``; the others are kept.

    python bench/job_service.py                   # 10,000 jobs / 1,000 job sets; 1,000 waits
    python bench/job_service.py --jobs 1000 --job-sets 50 --wait-jobs 200 --seconds 5 \
        --soak-jobs 5000 --soak-wave 1000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc.aio

from armada_hooks.channels import ChannelSpec, open_aio_channel, open_channel
from armada_hooks.job_events import event_state
from armada_hooks.jobservice.client import JobServiceAsyncIOClient, JobServiceClient
from armada_hooks.rpc import describe_failure
from armada_hooks.states import TERMINAL_STATES, JobState
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


def tally(failures: dict[str, int], exc: BaseException) -> None:
    """Count a failed call in ``failures``, by what failed."""
    what = describe_failure(exc)[:120]
    failures[what] = failures.get(what, 0) + 1


def submit_sets(
    armada: LocalArmada,
    jobs: int,
    sets: int,
    runtime: tuple[float, float],
    prefix: str = "",
    on_set: Any = None,
):
    """Submit ``jobs`` jobs spread over ``sets`` job sets; [(job set, job id)].

    ``on_set(refs)``, if given, is called with each job set's refs once it is submitted.
    """
    client, refs = armada.client(), []
    per_set = [jobs // sets + (1 if i < jobs % sets else 0) for i in range(sets)]
    for i, count in enumerate(per_set):
        job_set = f"bench-set-{prefix}{i}"
        start_of_set = len(refs)
        for start in range(0, count, 500):
            items = [
                job_request_item(
                    annotations={"armada-hooks/runtime": f"{random.uniform(*runtime):.1f}"}
                )
                for _ in range(min(500, count - start))
            ]
            response = client.submit_jobs("default", job_set, items)
            refs += [(job_set, r.job_id) for r in response.job_response_items]
        if on_set is not None:
            on_set(refs[start_of_set:])
    return refs


def start_service(
    armada: LocalArmada, folder: str, *options: str, store: str = "js.db"
) -> tuple[subprocess.Popen[str], str]:
    """``armada-hooks job-service`` on a free port with a SQLite store; (process, target)."""
    proc = subprocess.Popen(
        [str(SCRIPT), "job-service", "--armada-target", armada.target,
         "--store", f"sqlite:{folder}/{store}", *options],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    match = SERVING.match(line)
    if not match:
        proc.kill()
        raise SystemExit(f"the job service did not start: {line!r}")
    return proc, match.group(1)


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """VmHWM (peak RSS) of a process, or another /proc status field in kB, as MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- part 1 ---------------------------------------------------------------------------


def watch(target: str, every: float) -> None:
    """(Its own process.) Follow jobs as they are handed over and note when each is first
    seen ended; print, as JSON, those times and when each job set was first asked about.

    Jobs arrive on stdin, a JSON list of [job set, job id] per line (an empty line: no
    more). A job set's first question goes out at once, in a call of its own (the service
    may wait up to ``first_answer_wait`` for its stream's replay, and no other job waits
    with it); from its answer on, its jobs are asked about every ``every`` s with every
    other unfinished job (calls of at most 5,000 jobs, sent together). A call that fails
    is counted, by what failed, and its jobs are asked about again in the next round.
    """
    seen: dict[str, float] = {}
    asked: dict[str, float] = {}
    failed: dict[str, int] = {}  # calls that failed, by what failed
    followed: list[tuple[str, str, str]] = []  # asked once, asked about every round

    def note(answers: Any) -> None:
        now = time.time()
        for answer in answers:
            if answer.state in TERMINAL and answer.job.job_id not in seen:
                seen[answer.job.job_id] = now

    async def main() -> None:
        client = JobServiceAsyncIOClient(open_aio_channel(ChannelSpec(target)))
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 24)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        firsts: set[asyncio.Task[None]] = set()
        total = 0

        async def first(refs: list[tuple[str, str, str]]) -> None:
            try:
                note((await client.get_job_states(refs)).answers)
            except grpc.aio.AioRpcError as exc:  # counted; the rounds ask again
                tally(failed, exc)
            followed.extend(r for r in refs if r[2] not in seen)

        async def feed() -> None:
            nonlocal total
            while line := (await reader.readline()).strip():
                refs = [("default", s, j) for s, j in json.loads(line)]
                total += len(refs)
                sent = time.time()
                for _, job_set, _ in refs:
                    asked.setdefault(job_set, sent)
                task = asyncio.ensure_future(first(refs))
                firsts.add(task)
                task.add_done_callback(firsts.discard)

        feeding = asyncio.ensure_future(feed())
        deadline = time.monotonic() + 600
        while (not feeding.done() or firsts or len(seen) < total) and (
            time.monotonic() < deadline
        ):
            started = time.monotonic()
            followed[:] = [r for r in followed if r[2] not in seen]
            chunks = [followed[i : i + 5000] for i in range(0, len(followed), 5000)]
            calls = (client.get_job_states(c) for c in chunks)
            for response in await asyncio.gather(*calls, return_exceptions=True):
                if isinstance(response, grpc.aio.AioRpcError):  # counted; asked again next
                    tally(failed, response)
                elif isinstance(response, BaseException):
                    raise response
                else:
                    note(response.answers)
            await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))
        feeding.cancel()

    asyncio.run(main())
    print(json.dumps({"seen": seen, "asked": asked, "failed": failed}))


def start_watcher(target: str, every: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--watcher", target, str(every)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def hand_over(watcher: subprocess.Popen[str], refs: list[tuple[str, str]]) -> None:
    """Give the watcher jobs to follow."""
    assert watcher.stdin is not None
    watcher.stdin.write(json.dumps(refs) + "\n")
    watcher.stdin.flush()


def watcher_result(watcher: subprocess.Popen[str]) -> dict[str, Any]:
    """Tell the watcher there are no more jobs; what it saw."""
    out, _ = watcher.communicate("\n", timeout=900)
    if watcher.returncode:
        raise SystemExit(f"the watcher failed ({watcher.returncode})")
    return dict(json.loads(out.strip().splitlines()[-1]))


def terminal_emits(armada: LocalArmada) -> dict[str, float]:
    """A probe on the local Armada's store: the wall time at which each job's terminal
    event was appended to its job set's log (the moment a stream can deliver it)."""
    emitted: dict[str, float] = {}
    emit = armada.store.emit

    def probe(job: Any, message: Any, now: float) -> None:
        emit(job, message, now)
        job_id, state = event_state(message)
        if state in TERMINAL_STATES and job_id:
            emitted.setdefault(job_id, time.time())

    armada.store.emit = probe  # type: ignore[method-assign]
    return emitted


def load_generator(target: str, ids_file: str, rate: float, seconds: float, batch: int) -> None:
    """(Its own process.) Calls at ``rate``/s for ``seconds``, open loop: each call is sent
    when due from one asyncio loop (no client threads contending for the GIL), its latency
    counted from when it was due. ``batch`` 1: GetJobStatus; more: GetJobStates of that
    many jobs; 0: the service's Health. Prints latencies (ms) as JSON."""
    refs = [tuple(r) for r in json.loads(Path(ids_file).read_text())]
    latencies: list[float] = []
    errors = 0
    failures: dict[str, int] = {}

    async def main() -> float:
        nonlocal errors
        # the generator's own collections would add their pauses to the service's latency
        # (it makes no cycles; what it allocates is freed as it goes, or kept to the end)
        gc.disable()
        client = JobServiceAsyncIOClient(open_aio_channel(ChannelSpec(target)))
        await client.health()  # the channel is connected before the clock starts

        async def one(due: float) -> None:
            nonlocal errors
            try:
                if batch == 0:  # the floor: the service's Health, which does no work
                    await client.health()
                elif batch > 1:
                    picks = random.sample(refs, batch)
                    await client.get_job_states([("default", s, j) for s, j in picks])
                else:
                    s, j = random.choice(refs)
                    await client.get_job_status("default", s, j)
            except Exception as exc:
                errors += 1
                tally(failures, exc)
            latencies.append((time.monotonic() - due) * 1000)

        total, t0, calls = int(rate * seconds), time.monotonic() + 0.2, []
        for i in range(total):
            due = t0 + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            calls.append(asyncio.ensure_future(one(due)))
        await asyncio.gather(*calls)
        return time.monotonic() - t0

    elapsed = asyncio.run(main())
    print(json.dumps({
        "calls": len(latencies), "errors": errors,
        "rate": len(latencies) / elapsed, "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99), "max_ms": max(latencies, default=0.0),
        "failures": failures,
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def visibility(
    refs: list[tuple[str, str]], watched: dict[str, Any], emitted: dict[str, float]
) -> list[float]:
    """Seconds from the later of a job's terminal event at Armada and the first question
    about its job set, to the watcher's first answer saying the job had ended."""
    seen, asked = watched["seen"], watched["asked"]
    return [seen[j] - max(emitted[j], asked[s]) for s, j in refs if j in seen and j in emitted]


def in_flight(armada: LocalArmada) -> int:
    """Jobs the local Armada holds that have not ended."""
    with armada.store.lock:
        return sum(JobState(j.state) not in TERMINAL_STATES for j in armada.store.jobs.values())


def part_cache(args: argparse.Namespace) -> dict[str, Any]:
    with LocalArmada(queues=["default"], time_scale=args.time_scale) as armada, \
            tempfile.TemporaryDirectory() as folder:  # fmt: skip
        proc, target = start_service(armada, folder)
        try:
            emitted = terminal_emits(armada)
            runtime = tuple(args.runtime)
            # followed from submission: each job set is handed to the watcher as soon as
            # it is submitted, as an operator asks about the job it has just submitted
            armada.reset_rpc_counts()
            cpu0, watched = cpu_seconds(proc.pid), time.monotonic()
            watcher = start_watcher(target, args.watch_every)
            refs = submit_sets(
                armada, args.jobs, args.job_sets, runtime,
                on_set=lambda batch: hand_over(watcher, batch),
            )  # fmt: skip
            flying = in_flight(armada)
            followed = watcher_result(watcher)
            watch_cpu, watch_wall = cpu_seconds(proc.pid) - cpu0, time.monotonic() - watched
            visible = visibility(refs, followed, emitted)
            watcher_failures = followed["failed"]
            load = os.getloadavg()[0]
            cpu0 = cpu_seconds(proc.pid)
            single = generate(target, refs, args.rate, args.seconds, 1)
            single_cpu = cpu_seconds(proc.pid) - cpu0
            # the same calls' floor on this machine at this moment: gRPC's own path
            floor = generate(target, refs, args.rate, args.seconds, 0)
            batched = generate(target, refs, args.rate / args.batch, args.seconds, args.batch)
            counts = armada.rpc_counts()
            rss = peak_rss_mb(proc.pid)
            # last (its streams' end would load the machine the calls above share): a cold
            # start, a fresh service asked at once about as many running job sets, replays
            # each from its start
            cold_proc, cold_target = start_service(armada, folder, store="cold.db")
            try:
                cold_refs = submit_sets(armada, args.jobs, args.job_sets, runtime, "cold-")
                watcher = start_watcher(cold_target, args.watch_every)
                hand_over(watcher, cold_refs)
                cold_watched = watcher_result(watcher)
                cold = visibility(cold_refs, cold_watched, emitted)
            finally:
                cold_proc.terminate()
                cold_proc.wait(timeout=30)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "jobs": args.jobs, "job_sets": args.job_sets, "seen_ended": len(visible),
        "in_flight_after_submission": flying,
        "peak_rss_mb": rss, "visible_p50_s": percentile(visible, 0.5),
        "visible_p99_s": percentile(visible, 0.99),
        "cold_start_visible_p50_s": percentile(cold, 0.5),
        "cold_start_visible_p99_s": percentile(cold, 0.99), "cold_start_seen_ended": len(cold),
        "watcher_failed_calls": watcher_failures,
        "cold_start_watcher_failed_calls": cold_watched["failed"],
        "get_job_status": single, "get_job_states": {**batched, "batch": args.batch},
        "health_floor": floor,
        "service_cpu_share_while_watched": watch_cpu / max(watch_wall, 1e-9),
        "service_cpu_ms_per_get_job_status": single_cpu * 1000 / max(single["calls"], 1),
        "load_average_1m": load,
        "armada_get_job_status": counts.get("GetJobStatus", 0),
        "armada_get_job_details": counts.get("GetJobDetails", 0),
        "armada_streams": counts.get("GetJobSetEvents", 0),
    }  # fmt: skip


# -- part 3 ---------------------------------------------------------------------------


def part_soak(args: argparse.Namespace) -> dict[str, Any]:
    """``--soak-jobs`` jobs pass through in waves of ``--soak-wave`` (each wave in job sets
    of its own, asked about until all ended); the service closes idle job sets and purges
    ended ones (``--idle-timeout 2 --retention 4``). Its RSS after each wave should stay
    flat: memory is bounded by what is in flight, not by history."""
    with LocalArmada(queues=["default"], time_scale=args.time_scale) as armada, \
            tempfile.TemporaryDirectory() as folder:  # fmt: skip
        proc, target = start_service(armada, folder, "--idle-timeout", "2", "--retention", "4")
        client = JobServiceClient(open_channel(ChannelSpec(target)))
        rss: list[float] = []
        started = time.monotonic()
        try:
            waves = max(1, args.soak_jobs // args.soak_wave)
            sets = max(1, args.soak_wave // 50)
            for wave in range(waves):
                refs = submit_sets(armada, args.soak_wave, sets, (1.0, 5.0), f"soak-{wave}-")
                todo = [("default", s, j) for s, j in refs]
                deadline = time.monotonic() + 300
                while todo and time.monotonic() < deadline:
                    left = []
                    for i in range(0, len(todo), 5000):
                        answers = client.get_job_states(todo[i : i + 5000]).answers
                        left += [
                            ("default", a.job.job_set_id, a.job.job_id)
                            for a in answers
                            if a.state not in TERMINAL
                        ]
                    todo = left
                    time.sleep(0.2 if todo else 0)
                rss.append(peak_rss_mb(proc.pid, "VmRSS"))
            time.sleep(8)  # idle (2 s), retention (4 s), the next sweep (5 s)
            settled = peak_rss_mb(proc.pid, "VmRSS")
            peak = peak_rss_mb(proc.pid)
            with sqlite3.connect(f"{folder}/js.db") as db:
                kept = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    later = rss[len(rss) // 2 :] if len(rss) > 1 else rss
    return {
        "jobs": waves * args.soak_wave, "waves": waves, "wave_jobs": args.soak_wave,
        "rss_after_each_wave_mb": [round(r, 1) for r in rss],
        "rss_growth_second_half_mb": max(later) - min(later) if later else 0.0,
        "rss_settled_mb": settled, "peak_rss_mb": peak, "jobs_left_in_store": kept,
        "wall_s": time.monotonic() - started,
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
    if sys.argv[1:2] == ["--watcher"]:
        watch(sys.argv[2], float(sys.argv[3]))
        return
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], float(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--job-sets", type=int, default=1_000)
    parser.add_argument("--runtime", type=float, nargs=2, default=(100.0, 300.0))
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
    parser.add_argument("--soak-jobs", type=int, default=50_000)
    parser.add_argument("--soak-wave", type=int, default=5_000)
    parser.add_argument("--part", choices=["cache", "waiting", "soak", "all"], default="all")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "job-service.json")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    if args.part in ("cache", "all"):
        report["cache"] = cache = part_cache(args)
        save(args.out, report)  # each part as soon as it is measured
        print(f"cache: {cache['jobs']} jobs in {cache['job_sets']} job sets, "
              f"{cache['seen_ended']} seen ended")
        print(f"  job service peak RSS: {cache['peak_rss_mb']:.0f} MB; its CPU share while "
              f"watched {cache['service_cpu_share_while_watched']:.0%}; machine load "
              f"average {cache['load_average_1m']:.1f} on {os.cpu_count()} CPUs")
        print(f"  terminal state visible: p50 {cache['visible_p50_s']:.2f} s, "
              f"p99 {cache['visible_p99_s']:.2f} s (watch period {args.watch_every} s; "
              f"{cache['in_flight_after_submission']} jobs in flight once all submitted)")
        print(f"  cold start (a fresh service asked about {cache['job_sets']} running job "
              f"sets at once): visible p50 {cache['cold_start_visible_p50_s']:.2f} s, "
              f"p99 {cache['cold_start_visible_p99_s']:.2f} s")
        print(f"  the watcher's failed calls (asked again): "
              f"{cache['watcher_failed_calls'] or 0}; cold start "
              f"{cache['cold_start_watcher_failed_calls'] or 0}")
        for name in ("get_job_status", "get_job_states"):
            g = cache[name]
            print(f"  {name}: {g['rate']:.0f} calls/s, p50 {g['p50_ms']:.2f} ms, "
                  f"p99 {g['p99_ms']:.2f} ms, errors {g['errors']} {g['failures'] or ''}")
        h = cache["health_floor"]
        print(f"  the floor, the service's Health (no work) at the same rate: p50 "
              f"{h['p50_ms']:.2f} ms, p99 {h['p99_ms']:.2f} ms, errors {h['errors']}")
        print(f"  service CPU per GetJobStatus: "
              f"{cache['service_cpu_ms_per_get_job_status']:.3f} ms")
        print(f"  at Armada (the cold start aside): GetJobStatus "
              f"{cache['armada_get_job_status']}, GetJobDetails "
              f"{cache['armada_get_job_details']}, event streams {cache['armada_streams']}")
    if args.part in ("soak", "all"):
        report["soak"] = soak = part_soak(args)
        save(args.out, report)
        print(f"soak: {soak['jobs']} jobs in {soak['waves']} waves of {soak['wave_jobs']} "
              f"in {soak['wall_s']:.0f} s; service RSS after each wave (MB): "
              f"{soak['rss_after_each_wave_mb']}")
        print(f"  growth over the second half {soak['rss_growth_second_half_mb']:.1f} MB; "
              f"settled {soak['rss_settled_mb']:.0f} MB, peak {soak['peak_rss_mb']:.0f} MB; "
              f"jobs left in the store after retention: {soak['jobs_left_in_store']}")
    if args.part in ("waiting", "all"):
        report["waiting"] = waiting = part_waiting(args)
        for name in ("direct", "job_service"):
            w = waiting[name]
            print(f"waiting {name}: {w['jobs']} jobs ({w['job_sets']} job sets) from "
                  f"{w['workers']} workers, {w['succeeded']} succeeded in {w['wall_s']:.0f} s; "
                  f"GetJobStatus at Armada {w['get_job_status']} "
                  f"({w['get_job_status_per_interval']:.1f} per interval), event streams "
                  f"{w['streams']}, GetJobDetails {w['get_job_details']}")
        print(f"  ratio direct / job service GetJobStatus: {waiting['ratio']:.0f}x")
    save(args.out, report)


def save(out: Path, report: dict[str, Any]) -> None:
    """Write ``report``'s parts into ``out``, keeping the parts it does not have."""
    out.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**kept, **report}, indent=2))


if __name__ == "__main__":
    main()
