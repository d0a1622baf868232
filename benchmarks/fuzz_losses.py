"""Fuzz the loss checker with generated losses (``property_tests.banks.fuzz``): N right losses
s·Σⱼ φ(aⱼ − yⱼ) (familiar penalties and expression trees, s from 1e-10 to 1e6) and N wrong
variants of them, drawn deterministically from a seed, each through ``check_pointwise`` (or
``check_loss``, networks included, with ``--networks``). Counts false alarms (a right loss
called wrong), misses (a wrong one not called wrong) and inconclusive verdicts, and shows the
first few false alarms and misses in full.

    python benchmarks/fuzz_losses.py [--losses 100] [--seed 0] [--examples 20] [--networks] [--json]

Prints ``{"correct": N, "false_alarms": k, "wrong": N, "missed": k, "inconclusive": k,
"median_seconds": t}``. The exit code is 0 whatever the checker says (2 for bad usage).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fuzz_checker import draw  # noqa: E402

from property_tests.banks import fuzz  # noqa: E402
from property_tests.checkers.loss_check import check_loss, check_pointwise  # noqa: E402

SHOWN = 5
"""False alarms and misses shown in full."""


def run(n: int, seed: int, examples: int, networks: bool) -> dict:
    """Every drawn right loss and wrong variant through the checker: the counts, the median
    seconds per check, and the messages of the false alarms and misses."""
    checker = check_loss if networks else check_pointwise
    result: dict = {"correct": n, "false_alarms": 0, "wrong": n, "missed": 0, "inconclusive": 0}
    shown: list[str] = []
    seconds = []
    for loss in draw(fuzz.losses(), n, seed):
        report = checker(loss, examples=examples, seed=0)
        seconds.append(report.seconds)
        result["inconclusive"] += report.verdict == "inconclusive"
        if report.verdict == "wrong":
            result["false_alarms"] += 1
            shown.append("FALSE ALARM\n" + report.message())
    for variant in draw(fuzz.wrong_losses(), n, seed):
        report = checker(variant.loss, examples=examples, seed=0)
        seconds.append(report.seconds)
        result["inconclusive"] += report.verdict == "inconclusive"
        if report.verdict != "wrong":
            result["missed"] += 1
            shown.append(f"MISSED ({variant.label})\n" + report.message())
    result["median_seconds"] = round(statistics.median(seconds), 3) if seconds else 0.0
    result["shown"] = shown[:SHOWN]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", type=int, default=20, help="right ones, and as many wrong ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", type=int, default=20, help="examples= of each check")
    parser.add_argument("--networks", action="store_true", help="check_loss, networks included")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.losses < 1 or args.examples < 1:
        parser.error("--losses and --examples must be at least 1")
    start = time.perf_counter()
    result = run(args.losses, args.seed, args.examples, args.networks)
    shown = result.pop("shown")
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
        print(f"{time.perf_counter() - start:.0f} s in all")
    for message in shown:
        print(message, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
