"""Verified networks per second, end to end: draw a random network, compute its gradients by
hand, get autodiff's, and judge every equation at every layer, as ``backprop-check verify``
does. Three ways, side by side in one run:

- plain: ``reference.plain`` (``jax.grad``, one compilation per architecture) + the judgement;
- fast: ``reference.fast`` (padded, one compilation for the run, many networks per call) + the
  judgement, the path ``verify`` takes;
- manual: NumPy's hand-derived pass alone (forward and backward), for scale.

Each rate is the median over ``--runs`` runs of fresh random networks (the fast path's one
compilation happens before the first run and is reported apart).

    python benchmarks/throughput.py [--runs 5] [--networks 1000] [--plain-networks 10] [--json]
"""

from __future__ import annotations

import json
import statistics
import time

import numpy as np
from _common import throughput_arguments

import manual
from manual import CATALOGUE
from property_tests.checkers.verify import design, make_case
from property_tests.library import tolerances as tol
from property_tests.library.compare import compare_case
from reference import fast, plain


def draw_cases(count: int, seed: int):
    rng = np.random.default_rng(seed)
    return [make_case(plan, rng) for plan in design(count, rng, list(CATALOGUE.values()))]


def rate(count: int, seconds: float) -> float:
    return count / seconds


def run_fast(cases) -> float:
    start = time.perf_counter()
    refs = fast.autodiff_many([(c.network, c.x, c.y) for c in cases])
    for case, ref in zip(cases, refs, strict=True):
        compare_case(case, ref)
    return rate(len(cases), time.perf_counter() - start)


def run_plain(cases) -> float:
    start = time.perf_counter()
    for case in cases:
        compare_case(case, plain.autodiff(case.network, case.x, case.y))
    return rate(len(cases), time.perf_counter() - start)


def run_manual(cases) -> float:
    start = time.perf_counter()
    for case in cases:
        manual.gradients(case.network, case.x, case.y)
    return rate(len(cases), time.perf_counter() - start)


def main() -> None:
    args = throughput_arguments(__doc__.splitlines()[0], networks_help="networks per fast and manual run")

    start = time.perf_counter()
    run_fast(draw_cases(8, 10_000))  # compilation
    for g in CATALOGUE.values():  # the tolerance tables (slope scale, autodiff's noise) of every activation
        tol.profile(g)
    warm_up = time.perf_counter() - start
    rates: dict[str, list[float]] = {"plain": [], "fast": [], "manual": []}
    for run in range(args.runs):
        cases = draw_cases(args.networks, run)
        rates["fast"].append(run_fast(cases))
        rates["manual"].append(run_manual(cases))
        rates["plain"].append(run_plain(draw_cases(args.plain_networks, 1000 + run)))
    median = {k: statistics.median(v) for k, v in rates.items()}
    result = {
        "plain_examples_per_second": median["plain"],
        "fast_examples_per_second": median["fast"],
        "manual_examples_per_second": median["manual"],
        "fast_over_plain": median["fast"] / median["plain"],
        "warm_up_seconds": warm_up,
        "runs": args.runs,
        "networks_per_run": {"fast": args.networks, "manual": args.networks, "plain": args.plain_networks},
    }
    # The first report lines match conv_throughput.py's; the rest are this benchmark's own figures, so
    # each prints its whole report itself.
    if args.json:
        print(json.dumps(result))
        return
    print(f"verified networks per second, median of {args.runs} runs (depth 1–6, widths 1–16, batch 1–32):")
    print(f"  plain reference + judgement: {median['plain']:10.1f}")
    print(f"  fast reference + judgement:  {median['fast']:10.1f}   ({result['fast_over_plain']:.0f}× plain)")
    print(f"  manual pass alone:           {median['manual']:10.1f}")
    print(f"  one-time warm-up (compilation, tolerance tables): {warm_up:.1f} s")


if __name__ == "__main__":
    main()
