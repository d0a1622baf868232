"""Time ``backprop-check activation`` end to end (a fresh process each run, JAX start-up and
compilation included) on right and wrong activations from the banks (elementwise, with
parameters, gated), with the default options. Prints the median and the spread of several runs,
and the median of the verdict's own time (``seconds`` of its ``--json`` report: the check,
without Python and JAX starting).

    python benchmarks/activation_verdict.py [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time

TARGETS = {
    "right": "property_tests.banks.activation_bank:RIGHT_SMOOTH",
    "wrong": "property_tests.banks.activation_bank:WRONG_RELATIVE_1E6",
    "right parametric": "property_tests.banks.kinds_bank:RIGHT_PRELU",
    "right gated": "property_tests.banks.kinds_bank:RIGHT_FIRST_HALF_GLU",
    "wrong parametric": "property_tests.banks.kinds_bank:WRONG_SWISH_1E6",
}
GOALS = {"right": 3.0, "wrong": 5.0, "right parametric": 10.0, "right gated": 10.0, "wrong parametric": 10.0}


def command() -> list[str]:
    script = shutil.which("backprop-check")
    return [script] if script else [sys.executable, "-m", "property_tests.command.cli"]


def time_once(target: str, expected: int) -> tuple[float, float]:
    """(seconds end to end, the verdict's own seconds as its report gives them)."""
    start = time.perf_counter()
    done = subprocess.run([*command(), "activation", target, "--json"], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != expected:
        raise SystemExit(f"{target}: exit {done.returncode}, expected {expected}\n{done.stdout}{done.stderr}")
    return seconds, float(json.loads(done.stdout)["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for verdict, target in TARGETS.items():
        pairs = [time_once(target, 0 if verdict.startswith("right") else 1) for _ in range(args.runs)]
        times, own = [p[0] for p in pairs], [p[1] for p in pairs]
        results[verdict] = {
            "median_seconds": statistics.median(times),
            "min_seconds": min(times),
            "max_seconds": max(times),
            "median_verdict_seconds": statistics.median(own),
            "runs": args.runs,
            "goal_seconds": GOALS[verdict],
        }
    if args.json:
        print(json.dumps(results))
        return
    for verdict, r in results.items():
        print(
            f"{verdict:16s} activation: median {r['median_seconds']:.2f} s over {r['runs']} runs "
            f"(min {r['min_seconds']:.2f}, max {r['max_seconds']:.2f}; the verdict itself "
            f"{r['median_verdict_seconds']:.2f} s); goal ≤ {r['goal_seconds']:.0f} s"
        )


if __name__ == "__main__":
    main()
