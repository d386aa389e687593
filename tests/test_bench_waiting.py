"""The waiting benchmark runs end to end (tiny N): its figures exist and say what they should.

Correctness only: no timing is asserted. The full run is ``make bench``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_waiting_benchmark_measures_ours_against_per_job_polling(tmp_path):
    out = tmp_path / "waiting"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "waiting.py"),
            *("--n", "20", "--impl", "shared", "events", "naive"),
            *("--runtime", "10", "40", "--interval", "1", "--job-set-size", "10"),
            *("--out", str(out), "--no-plot"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
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
    assert "shared / naive" in done.stdout
