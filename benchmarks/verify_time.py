"""The default ``backprop-check verify`` (5,000 dense networks and the networks of layers), end to
end as a user runs it: wall time and peak memory, with one process and with two (``--jobs``),
with JAX's compilation cache empty (a first run) and filled (every later run).

    python benchmarks/verify_time.py [--runs 3] [--jobs 1 2] [--json]

Each setting is run ``--runs`` times, alternating between settings so that a slow spell of a
shared machine falls on all of them; the figures are medians. A "cold" run gets a new, empty
cache folder (``BACKPROP_CHECK_CACHE``); a "warm" run reuses one filled by an untimed run first.
Peak memory is the largest sum of the resident memory of the command and its worker, sampled
every 20 ms from ``/proc``, in MB. Prints, with ``--json``,
``{"jobs_2": {"cold": {"seconds": …, "peak_mb": …, "verified": …}, "warm": {…}}, "jobs_1": {…}}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

COMMAND = ["backprop-check", "verify", "--json"]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants, in MB (0 for a process gone)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
        todo += _children(p)
    return total


def run_once(jobs: int, cache: Path) -> dict:
    """One timed run of the command with ``jobs`` processes and ``cache`` as the cache folder."""
    env = dict(os.environ, BACKPROP_CHECK_CACHE=str(cache))
    start = time.perf_counter()
    process = subprocess.Popen([*COMMAND, "--jobs", str(jobs)], env=env, stdout=subprocess.PIPE, text=True)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _rss_mb(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    out = process.stdout.read() if process.stdout else ""
    return {"seconds": seconds, "peak_mb": peak, "verified": json.loads(out)["verified"] if out else False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="verify-time-"))
    warm = root / "warm"
    run_once(1, warm)  # fills the warm cache (untimed)
    results: dict[str, dict[str, list[dict]]] = {f"jobs_{j}": {"cold": [], "warm": []} for j in args.jobs}
    try:
        for i in range(args.runs):
            for jobs in args.jobs:
                cold = root / f"cold-{jobs}-{i}"
                results[f"jobs_{jobs}"]["cold"].append(run_once(jobs, cold))
                results[f"jobs_{jobs}"]["warm"].append(run_once(jobs, warm))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {
        setting: {
            cache: {
                "seconds": round(statistics.median(r["seconds"] for r in runs), 2),
                "peak_mb": round(statistics.median(r["peak_mb"] for r in runs)),
                "verified": all(r["verified"] for r in runs),
                "runs": [round(r["seconds"], 2) for r in runs],
            }
            for cache, runs in by_cache.items()
        }
        for setting, by_cache in results.items()
    }
    if args.json:
        print(json.dumps(summary))
        return
    for setting, by_cache in summary.items():
        for cache, s in by_cache.items():
            print(f"{setting:7} {cache:5} {s['seconds']:6.2f} s (runs {s['runs']})  peak {s['peak_mb']} MB")


if __name__ == "__main__":
    main()
