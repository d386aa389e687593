"""The log figures of ``bench/waiting.py --logs``: Binoculars load and line delay.

Half the jobs are *chatty* (one log line per job-second of runtime), half *quiet* (one
line, halfway through); the two halves have the same runtimes, pairwise. Every trigger
streams its job's log (``fetch_logs=True``) every ``--log-interval`` wall seconds.

Binoculars ``Logs`` calls are counted by the local Armada per job id. Line timestamps and
run times are the server's, in job time; ``to_wall`` turns them into wall epoch seconds
with the server clock's scale (at ``--time-scale 1``, the default here, job time is wall
time). A line's delay is the wall time the trigger logged it (the waiter's log capture)
minus its timestamp: when Binoculars could first have returned it.

Targets (issue #9): while the jobs run, chatty jobs cost at most one ``Logs`` call each
per ``log_interval``; quiet jobs together cost at most 25 % of what the chatty ones do;
a chatty job's line is in the task log within ``log_interval`` + 1 s (p99).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable
from typing import Any

QUIET_SHARE = 0.25  # quiet jobs together: at most this share of the chatty jobs' calls
DELAY_SLACK = 1.0  # a chatty line's p99 delay: at most log_interval + this many seconds


def job_sets(rng: random.Random, n: int, size: int, runtime: list[float], prefix: str) -> list:
    """``n`` jobs in job sets of ``size``: chatty and quiet alternate, pairwise alike."""
    runtimes, lines = [], []
    for _ in range((n + 1) // 2):
        r = rng.uniform(*runtime)
        runtimes += [r, r]
        lines += [max(2, round(r)), 1]  # chatty: a line per job-second; quiet: one
    sets = []
    for k, i in enumerate(range(0, n, size)):
        end = min(i + size, n)
        sets.append({"id": f"{prefix}-{k}", "runtimes": runtimes[i:end], "log_lines": lines[i:end]})
    return sets


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank); NaN for no values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] if ordered else math.nan


def window_rates(
    samples: list[tuple[float, dict[str, int]]], kinds: dict[str, str], start: float, end: float
) -> dict[str, float]:
    """``Logs`` calls per second of each kind in the window: the least-squares slope of the
    sampled running totals (fetches come in bursts; a slope does not hinge on the ends)."""
    inside = [(t, counts) for t, counts in samples if start <= t <= end]
    rates = {"chatty": math.nan, "quiet": math.nan}
    if len(inside) < 3:
        return rates
    times = [t for t, _ in inside]
    for kind in rates:
        ids = [j for j, k in kinds.items() if k == kind]
        totals = [sum(counts.get(j, 0) for j in ids) for _, counts in inside]
        rates[kind] = statistics.linear_regression(times, totals).slope
    return rates


def log_figures(
    jobs: dict[str, Any],
    calls: dict[str, int],
    samples: list[tuple[float, dict[str, int]]],
    result: dict[str, Any],
    to_wall: Callable[[float], float],
    log_interval: float,
    poll_interval: float,
) -> dict[str, Any]:
    """The log figures of one run.

    :param jobs: the server's job records by id (``item.annotations``, ``runs``, ``logs``).
    :param calls: ``Logs`` calls per job id over the run.
    :param samples: ``(wall s, calls per job id)`` taken during the run.
    :param result: the waiter's result (``detected``, ``lines``).
    """
    kinds = {
        j: "chatty" if int(r.item.annotations["armada-hooks/log-lines"]) > 1 else "quiet"
        for j, r in jobs.items()
    }
    started = {j: to_wall(r.runs[-1].started_ts) for j, r in jobs.items()}
    finished = {j: to_wall(r.runs[-1].finished_ts) for j, r in jobs.items()}
    detected = {j: d[0] for j, d in result["detected"].items()}
    # Every trigger streams once it has seen RUNNING: from the last start plus a poll
    # interval and a log interval, until the first job ends, all of them are at it.
    start = max(started.values()) + poll_interval + log_interval
    end = min(finished.values())
    rates = window_rates(samples, kinds, start, end)
    n_chatty = sum(k == "chatty" for k in kinds.values())
    totals = {kind: sum(calls.get(j, 0) for j in kinds if kinds[j] == kind) for kind in rates}
    streaming = {  # wall seconds each kind's triggers streamed: RUNNING until seen ended
        kind: sum(detected.get(j, finished[j]) - started[j] for j in kinds if kinds[j] == kind)
        for kind in rates
    }
    delays: dict[str, list[float]] = {"chatty": [], "quiet": []}
    worst = (-math.inf, 0.0, "")  # the chatty line that waited longest: delay, when, which
    expected = logged = duplicated = 0
    for j, record in jobs.items():
        stamps = {text: to_wall(ts) for ts, text in record.logs}
        expected += len(stamps)
        seen = result["lines"].get(j, [])
        logged += len(seen)
        duplicated += len(seen) - len({text for text, _ in seen})
        for text, wall in seen:
            if text in stamps:
                delays[kinds[j]].append(wall - stamps[text])
                if kinds[j] == "chatty":
                    worst = max(worst, (wall - stamps[text], stamps[text] - result["t0"], text))
    per_interval = {  # calls per job per log_interval of streaming, start and drain included
        kind: totals[kind] * log_interval / streaming[kind] if streaming[kind] > 0 else math.nan
        for kind in rates
    }
    quiet_share = totals["quiet"] / totals["chatty"] if totals["chatty"] else math.nan
    figures: dict[str, Any] = {
        "log_interval_s": log_interval,
        "chatty_jobs": n_chatty,
        "quiet_jobs": len(kinds) - n_chatty,
        "logs_calls": totals,
        "window_s": [round(start - result["t0"], 1), round(end - result["t0"], 1)],
        "chatty_calls_per_s": rates["chatty"],
        "chatty_target_per_s": n_chatty / log_interval,
        "quiet_calls_per_s": rates["quiet"],
        "quiet_target_per_s": QUIET_SHARE * rates["chatty"],
        **{f"{kind}_calls_per_job_per_interval": per_interval[kind] for kind in rates},
        "quiet_share_of_chatty_calls": quiet_share,
        "lines_expected": expected,
        "lines_logged": logged,
        "lines_duplicated": duplicated,
        "lines_missing": expected - (logged - duplicated),
        "worst_chatty_line": {"delay_s": worst[0], "written_at_s": worst[1], "line": worst[2]},
        "warnings": len(result["warnings"]),
        "first_warnings": result["warnings"][:5],
    }
    for kind, values in delays.items():
        figures[f"{kind}_delay_p50_s"] = percentile(values, 0.5)
        figures[f"{kind}_delay_p99_s"] = percentile(values, 0.99)
        figures[f"{kind}_delay_max_s"] = max(values, default=math.nan)
    figures["checks"] = {
        "chatty calls/s <= chatty jobs / log_interval (all running)": (
            rates["chatty"] <= figures["chatty_target_per_s"]
        ),
        "quiet calls/s <= 25 % of chatty (all running)": (
            rates["quiet"] <= figures["quiet_target_per_s"]
        ),
        "quiet calls <= 25 % of chatty (whole run)": quiet_share <= QUIET_SHARE,
        "chatty line delay p99 <= log_interval + 1 s": (
            figures["chatty_delay_p99_s"] <= log_interval + DELAY_SLACK
        ),
        "every line logged exactly once": figures["lines_missing"] == duplicated == 0,
    }
    return figures


def print_log_figures(row: dict[str, Any]) -> None:
    """The log figures of one run, targets and verdicts included."""
    f = row["logs"]
    print(
        f"{'':>15} logs every {f['log_interval_s']:g} s, {f['chatty_jobs']} chatty + "
        f"{f['quiet_jobs']} quiet jobs; all running from {f['window_s'][0]:g} s to "
        f"{f['window_s'][1]:g} s:\n"
        f"{'':>17}Binoculars Logs/s: chatty {f['chatty_calls_per_s']:.1f} (target <= "
        f"{f['chatty_target_per_s']:.1f}), quiet {f['quiet_calls_per_s']:.1f} (target <= "
        f"{f['quiet_target_per_s']:.1f})\n"
        f"{'':>17}whole run: Logs per job per log_interval chatty "
        f"{f['chatty_calls_per_job_per_interval']:.3f}, quiet "
        f"{f['quiet_calls_per_job_per_interval']:.3f}; quiet calls = "
        f"{100 * f['quiet_share_of_chatty_calls']:.1f} % of chatty (target <= 25 %)\n"
        f"{'':>17}line delay: chatty p50 {f['chatty_delay_p50_s']:.2f} s p99 "
        f"{f['chatty_delay_p99_s']:.2f} s max {f['chatty_delay_max_s']:.2f} s (target p99 <= "
        f"{f['log_interval_s'] + DELAY_SLACK:g} s); quiet p99 {f['quiet_delay_p99_s']:.2f} s\n"
        f"{'':>17}lines {f['lines_logged']} of {f['lines_expected']} "
        f"({f['lines_missing']} missing, {f['lines_duplicated']} twice), "
        f"{f['warnings']} warnings",
        flush=True,
    )
    for check, ok in f["checks"].items():
        print(f"{'':>17}{'PASS' if ok else 'FAIL'}  {check}", flush=True)
