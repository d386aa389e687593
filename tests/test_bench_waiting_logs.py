"""The waiting benchmark's logs mode runs end to end (tiny N): its figures say what they should.

Direction and shape only: no timing is asserted. The full run is
``python bench/waiting.py --logs``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_logs_benchmark_counts_binoculars_calls_and_line_delays(tmp_path):
    out = tmp_path / "waiting-logs"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "waiting.py"),
            *("--logs", "--n", "10", "--runtime", "12", "18", "--job-set-size", "5"),
            *("--interval", "0.5", "--log-interval", "0.5", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
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
    assert "Binoculars Logs/s: chatty" in done.stdout
    assert "PASS  every line logged exactly once" in done.stdout
