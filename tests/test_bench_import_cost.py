"""The import-cost benchmark runs end to end (one repetition) and reports what it says.

Correctness only: no timing is asserted. The full run is ``make bench``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_benchmark_reports_both_figures_and_their_ratio(tmp_path):
    out = tmp_path / "import_cost.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "import_cost.py"), "--repeat", "1", "--json", out],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "import airflow.sdk:" in done.stdout
    assert "ratio (ours / airflow.sdk):" in done.stdout
    report = json.loads(out.read_text())
    for mode in ("bytecode_cached", "no_bytecode_cache"):
        figures = report[mode]
        assert figures["import_airflow_sdk_ms"] > 0
        assert figures["extra_ms"] > 0
        ratio = figures["extra_ms"] / figures["import_airflow_sdk_ms"]
        assert abs(figures["extra_over_sdk"] - ratio) < 0.001
        assert figures["extra_modules"] > 0  # ours, at least, were imported after the SDK


def test_the_import_benchmark_refuses_a_repeat_below_one():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "import_cost.py"), "--repeat", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "--repeat must be at least 1, got 0" in done.stderr
