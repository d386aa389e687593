"""What does importing our operator and sensor add to a DAG file's parse?

Each repetition is a fresh Python that times ``import airflow.sdk``, then the import of
``armada_hooks.operators.armada`` and ``armada_hooks.sensors.armada`` after it. Prints
the median of both, their ratio, and how many modules our import added, twice: with
bytecode caches (a DAG processor that has parsed before) and without (every module
compiled from source, as under ``PYTHONDONTWRITEBYTECODE=1`` or on a fresh install).
Target (issue 9): at most 50 ms on top of ``airflow.sdk``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

TARGET_EXTRA_MS = 50.0
OURS = ("armada_hooks.operators.armada", "armada_hooks.sensors.armada")

CHILD = f"""
import importlib, json, sys, time
start = time.perf_counter()
import airflow.sdk
sdk_done = time.perf_counter()
before = len(sys.modules)
for name in {list(OURS)!r}:
    importlib.import_module(name)
done = time.perf_counter()
print(json.dumps({{
    "sdk_ms": (sdk_done - start) * 1000,
    "extra_ms": (done - sdk_done) * 1000,
    "extra_modules": len(sys.modules) - before,
}}))
"""


def one_run(env: dict[str, str]) -> dict[str, float]:
    """The figures of one fresh interpreter."""
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure(repeat: int, *, bytecode_cache: bool) -> dict[str, float]:
    """Medians over ``repeat`` interpreters sharing a private, initially empty pycache."""
    with tempfile.TemporaryDirectory() as pycache:
        env = {**os.environ, "PYTHONPYCACHEPREFIX": pycache}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        if bytecode_cache:
            one_run(env)  # fills the cache; not counted
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        runs = [one_run(env) for _ in range(repeat)]
    sdk_ms = statistics.median(r["sdk_ms"] for r in runs)
    extra_ms = statistics.median(r["extra_ms"] for r in runs)
    return {
        "import_airflow_sdk_ms": round(sdk_ms, 1),
        "extra_ms": round(extra_ms, 1),
        "extra_min_ms": round(min(r["extra_ms"] for r in runs), 1),
        "extra_max_ms": round(max(r["extra_ms"] for r in runs), 1),
        "extra_over_sdk": round(extra_ms / sdk_ms, 4),
        "extra_modules": int(statistics.median(r["extra_modules"] for r in runs)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=11, help="fresh interpreters per mode")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")

    results: dict[str, object] = {
        "cpus": os.cpu_count(),
        "repeat": args.repeat,
        "target_extra_ms": TARGET_EXTRA_MS,
    }
    for mode, cached in (("bytecode_cached", True), ("no_bytecode_cache", False)):
        figures = measure(args.repeat, bytecode_cache=cached)
        results[mode] = figures
        sdk_ms, extra_ms = figures["import_airflow_sdk_ms"], figures["extra_ms"]
        verdict = "within" if extra_ms <= TARGET_EXTRA_MS else "OVER"
        print(f"{mode.replace('_', ' ')} (median of {args.repeat} fresh interpreters):")
        print(f"  import airflow.sdk:                 {sdk_ms:7.1f} ms")
        print(
            f"  then our operator + sensor modules: {extra_ms:7.1f} ms "
            f"(min {figures['extra_min_ms']}, max {figures['extra_max_ms']}; "
            f"{figures['extra_modules']} modules)"
        )
        print(
            f"  ratio (ours / airflow.sdk):         {figures['extra_over_sdk']:7.1%} "
            f"({verdict} the {TARGET_EXTRA_MS:.0f} ms target)"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
