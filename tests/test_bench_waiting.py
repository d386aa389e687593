"""The waiting benchmark runs end to end (tiny N): its figures exist and say what they should.

Correctness only: no timing is asserted. The full runs are ``make bench``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_waiting(out: Path, *args: str, timeout: float) -> tuple[dict, str]:
    """``bench/waiting.py *args --out out``: its JSON report and what it printed."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "waiting.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.with_suffix(".json").read_text()), done.stdout


def test_the_waiting_benchmark_measures_ours_against_per_job_polling(tmp_path):
    report, stdout = run_waiting(
        tmp_path / "waiting",
        *("--n", "20", "--impl", "shared", "events", "naive"),
        *("--runtime", "10", "40", "--interval", "1", "--job-set-size", "10", "--no-plot"),
        timeout=240,
    )
    runs = {r["impl"]: r for r in report["runs"]}
    assert set(runs) == {"shared", "events", "naive"}
    for run in runs.values():
        assert (run["n"], run["detected"], run["missed"], run["errors"]) == (20, 20, 0, 0)
        assert run["peak_rss_mb"] > 0
        assert run["cpu_s"] > 0
    # What the figures are for: batching and streams cost fewer status RPCs than per-job
    # polling, and event mode sends no GetJobStatus at all.
    assert runs["naive"]["rpcs"]["GetJobStatus"] >= 20
    assert runs["shared"]["rpcs"]["GetJobStatus"] < runs["naive"]["rpcs"]["GetJobStatus"] / 5
    assert runs["events"]["rpcs"]["GetJobStatus"] == 0
    assert runs["events"]["rpcs"]["GetJobSetEvents"] == 2  # two job sets of 10
    assert {r["ours"] for r in report["ratios"]} == {"shared", "events"}
    assert "shared / naive" in stdout


def test_the_logs_mode_counts_binoculars_calls_and_line_delays(tmp_path):
    report, stdout = run_waiting(
        tmp_path / "waiting-logs",
        *("--logs", "--n", "10", "--runtime", "12", "18", "--job-set-size", "5"),
        *("--interval", "0.5", "--log-interval", "0.5"),
        timeout=120,
    )
    (run,) = report["runs"]
    assert (run["impl"], run["n"], run["detected"], run["missed"], run["errors"]) == (
        "shared",
        10,
        10,
        0,
        0,
    )
    logs = run["logs"]
    assert (logs["chatty_jobs"], logs["quiet_jobs"]) == (5, 5)
    # Every line reached the task log once; nothing went wrong on the way.
    assert logs["lines_expected"] > 5 * 12
    assert logs["lines_logged"] == logs["lines_expected"]
    assert (logs["lines_missing"], logs["lines_duplicated"], logs["warnings"]) == (0, 0, 0)
    # Binoculars load follows log activity: quiet jobs are asked far less than chatty ones.
    calls = logs["logs_calls"]
    assert calls["chatty"] >= 5 * 12 / 0.5 / 2  # at least half the cadence got through
    assert 0 < calls["quiet"] < calls["chatty"] / 2
    assert 0 < logs["quiet_calls_per_s"] < logs["chatty_calls_per_s"]
    assert logs["chatty_target_per_s"] == 5 / 0.5
    # A quiet job's one line waits for its backed-off fetch; a chatty line does not.
    assert 0 <= logs["chatty_delay_p50_s"] <= logs["chatty_delay_p99_s"]
    assert logs["chatty_delay_p99_s"] < logs["quiet_delay_p99_s"]
    assert set(logs["checks"]) >= {"every line logged exactly once"}
    assert "Binoculars Logs/s: chatty" in stdout
    assert "PASS  every line logged exactly once" in stdout
