"""The job-service benchmark runs end to end (tiny sizes): its figures exist and say what
they should. Correctness only: no timing is asserted. The full run is ``make bench``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_job_service_benchmark_reports_its_figures(tmp_path):
    out = tmp_path / "js.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "job_service.py"),
            *("--jobs", "40", "--job-sets", "4", "--runtime", "5", "10"),
            *("--rate", "50", "--seconds", "1", "--batch", "10"),
            *("--wait-jobs", "16", "--job-set-size", "8", "--workers", "2"),
            *("--wait-runtime", "20", "40", "--soak-jobs", "60", "--soak-wave", "20"),
            *("--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=480,  # a loaded machine; no timing is asserted
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    cache, waiting, soak = report["cache"], report["waiting"], report["soak"]
    assert (soak["jobs"], soak["waves"]) == (60, 3)
    assert len(soak["rss_after_each_wave_mb"]) == 3
    assert soak["jobs_left_in_store"] == 0  # every ended, untouched job set was purged
    assert cache["seen_ended"] == cache["cold_start_seen_ended"] == 40
    assert 0 <= cache["in_flight_after_submission"] <= 40
    assert 0 < cache["visible_p50_s"] <= cache["visible_p99_s"]
    assert cache["peak_rss_mb"] > 0
    assert cache["get_job_status"]["calls"] == cache["health_floor"]["calls"] == 50
    assert cache["health_floor"]["errors"] == 0
    assert cache["get_job_status"]["errors"] == cache["get_job_states"]["errors"] == 0
    assert cache["armada_get_job_status"] == 0  # the streams covered every job
    assert cache["armada_streams"] >= 4
    direct, through = waiting["direct"], waiting["job_service"]
    assert direct["succeeded"] == through["succeeded"] == 16
    assert direct["get_job_status"] >= 16  # every job polled at least once
    assert direct["streams"] == 0
    assert through["get_job_status"] == 0
    assert through["streams"] >= 2  # one per job set (and the callers' permission checks)
    assert "ratio direct / job service GetJobStatus" in done.stdout
