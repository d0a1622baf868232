"""Verified convolutional networks per second, end to end: draw a random convolutional network
(a random architecture of ``layer_strategies.layer_architectures``, random activations of the
catalogue), compute its gradients by hand (``manual.layers``), get autodiff's, and judge every
equation at every layer as ``verify_layers`` does (``layer_compare``: each equation on
autodiff's inputs, then end to end unless rounding leaves a derivative in doubt). Side by side
in one run:

- plain: ``reference.layers`` (``jax.grad``, one compilation per architecture) + the judgement;
- fast: ``reference.conv_fast`` (one compilation per canvas side for the whole run, 32 networks
  a call) + the same judgement, shared with a second process as ``verify`` shares its networks
  (``--jobs``, default 2 on two cores or more; ``--jobs 1`` judges everything in one process);
- the fast run's time split per network: the oracle, the hand pass, the judging, so that the
  bottleneck is visible (``split_ms_per_network``); and the hand pass alone, for scale.

Each rate is the median over ``--runs`` runs of fresh random networks; the fast path's
compilations (and the tolerance tables of every activation) happen before the first run and
are reported apart (``warm_up_seconds``).

    python benchmarks/conv_throughput.py [--runs 5] [--networks 1000] [--plain-networks 10] [--jobs J] [--json]
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import multiprocessing
import os
import statistics
import time
from collections import Counter

import numpy as np
from _common import throughput_arguments

from manual import CATALOGUE, CROSS_ENTROPY, MSE, SOFTMAX, AnyActivation
from manual.conv import Conv2D
from manual.layers import Dense, Layer, LayerNetwork
from manual.pooling import AvgPool2D, Flatten, MaxPool2D
from property_tests.checkers import judges
from property_tests.library import layer_compare as lc
from property_tests.library import runtime
from property_tests.library import tolerances as tol
from property_tests.library.layer_strategies import LayerCase
from reference import conv_fast
from reference.layers import layer_autodiff

ACTIVATIONS = list(CATALOGUE.values())


def _fits(size: int, span: int, padding: int) -> bool:
    return size + 2 * padding >= span


def _pair(rng: np.random.Generator, low: int, high: int) -> tuple[int, int]:
    return int(rng.integers(low, high + 1)), int(rng.integers(low, high + 1))


def draw_architecture(
    rng: np.random.Generator,
) -> tuple[tuple[int, int, int], list[tuple[Layer, AnyActivation | None]]]:
    """(in_shape, [(layer, activation or None), …]) with the ranges and choices of
    ``layer_strategies.layer_architectures()``: images 1–12 a side and 1–3 channels, one or two
    blocks of a convolution (1–4 channels, kernels 1–5, strides 1–3, padding 0–2, dilation 1–2)
    maybe followed by max or average pooling (windows 1–3, strides 1–3, padding below the
    window), flatten, maybe a hidden dense layer of 1–5 units, a dense output of 1–3 units."""
    in_shape = (int(rng.integers(1, 4)), *_pair(rng, 1, 12))
    stack: list[tuple[Layer, AnyActivation | None]] = []
    shape = in_shape
    for _ in range(int(rng.integers(1, 3))):
        (_, h, w), stride, padding, dilation = shape, _pair(rng, 1, 3), _pair(rng, 0, 2), _pair(rng, 1, 2)
        kh, kw = (
            int(rng.choice([k for k in range(1, 6) if _fits(size, d * (k - 1) + 1, p)]))
            for size, p, d in zip((h, w), padding, dilation, strict=True)
        )
        conv = Conv2D(shape[0], int(rng.integers(1, 5)), (kh, kw), stride, padding, dilation)
        stack.append((conv, ACTIVATIONS[rng.integers(len(ACTIVATIONS))]))
        shape = conv.out_shape(shape)
        if rng.integers(2):
            window = (int(rng.integers(1, min(3, shape[1] + 2) + 1)), int(rng.integers(1, min(3, shape[2] + 2) + 1)))
            ph, pw = (int(rng.integers(0, min(2, k - 1) + 1)) for k in window)
            if all(_fits(size, k, p) for size, k, p in zip(shape[1:], window, (ph, pw), strict=True)):
                pool = (MaxPool2D, AvgPool2D)[rng.integers(2)](window, _pair(rng, 1, 3), (ph, pw))
                stack.append((pool, None))
                shape = pool.out_shape(shape)
    stack.append((Flatten(), None))
    if rng.integers(2):
        stack.append((Dense(int(rng.integers(1, 6))), ACTIVATIONS[rng.integers(len(ACTIVATIONS))]))
    outputs = [None, SOFTMAX, *ACTIVATIONS]
    output = outputs[rng.integers(len(outputs))]
    stack.append((Dense(int(rng.integers(2 if output is SOFTMAX else 1, 4))), output))
    return in_shape, stack


def draw_case(rng: np.random.Generator) -> LayerCase:
    """A network of ``draw_architecture`` with the parameters and batch of
    ``layer_strategies.layer_cases()``: weights and biases uniform in ±scale/√fan_in (scale
    0.5, 1 or 2), 1–4 images uniform in ±1, one-hot targets and cross-entropy after softmax,
    targets uniform in ±1 and the mean squared error otherwise."""
    in_shape, stack = draw_architecture(rng)
    scale = (0.5, 1.0, 2.0)[rng.integers(3)]
    params: list[dict[str, np.ndarray] | None] = [None]
    shape: tuple[int, ...] = in_shape
    for layer, _ in stack:
        template = layer.init(rng, shape)
        fan_in = int(np.prod(next(iter(template.values())).shape[1:])) if template else 1
        params.append({name: rng.uniform(-1, 1, v.shape) * scale / np.sqrt(fan_in) for name, v in template.items()})
        shape = layer.out_shape(shape)
    network = LayerNetwork(
        in_shape, (None,) + tuple(layer for layer, _ in stack), tuple(params), (None,) + tuple(g for _, g in stack)
    )
    n = int(rng.integers(1, 5))
    x = rng.uniform(-1, 1, (n, *in_shape))
    if stack[-1][1] is SOFTMAX:
        return LayerCase(network, x, np.eye(shape[0])[rng.integers(0, shape[0], n)], CROSS_ENTROPY)
    return LayerCase(network, x, rng.uniform(-1, 1, (n, shape[0])), MSE)


def draw_cases(count: int, seed: int) -> list[LayerCase]:
    rng = np.random.default_rng(seed)
    return [draw_case(rng) for _ in range(count)]


class Tally:
    """Seconds spent in each part of a run, and what the judgement found."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(("oracle", "manual", "judging"), 0.0)
        self.networks = self.failures = self.in_doubt = 0

    def judge(self, case: LayerCase, ref) -> None:
        """``verify_layers._judge``'s steps on a given reference: the hand pass, each equation
        on autodiff's inputs, and end to end unless rounding leaves a derivative in doubt."""
        start = time.perf_counter()
        z, a, grads = lc.manual_pass(case)
        middle = time.perf_counter()
        comparisons = lc.equation_by_equation(case, ref)
        if lc.in_doubt(case, ref, z, a) is None:
            comparisons += lc.end_to_end(case, ref, lc.layer_bounds(case, ref), grads)
        else:
            self.in_doubt += 1
        self.failures += bool(lc.failures(comparisons))
        self.networks += 1
        self.seconds["manual"] += middle - start
        self.seconds["judging"] += time.perf_counter() - middle

    def add(self, other: Tally) -> None:
        """Count another run's seconds, networks and findings in this tally."""
        for part, seconds in other.seconds.items():
            self.seconds[part] += seconds
        self.networks += other.networks
        self.failures += other.failures
        self.in_doubt += other.in_doubt


PIECE = 32
"""Networks per call of the fast oracle, and per piece handed to the second process."""


def judge_piece(payload: bytes) -> bytes:
    """In the second process: ``Tally.judge`` for every (case, autodiff) pair of a piece."""
    tally = Tally()
    for case, ref in judges.loads(payload):
        tally.judge(case, ref)
    return judges.dumps(vars(tally))  # plain values: this module is __main__ only in the first process


def run_fast(cases: list[LayerCase], tally: Tally, pool: concurrent.futures.Executor | None = None) -> float:
    """Verified networks per second with ``reference.conv_fast``, PIECE networks a call. With a
    ``pool`` (one more process, as ``verify`` uses both cores) a piece is judged there while
    this process runs the oracle on the next one, and here whenever the other process still has
    ``judges.WAITING`` pieces to do, or has not started a piece by the end (taken back from the
    last one on, so that neither process waits for the other while both have pieces left); its
    seconds are added to the tally's split all the same."""
    start = time.perf_counter()
    waiting: list[tuple[concurrent.futures.Future, list]] = []
    for begin in range(0, len(cases), PIECE):
        piece = cases[begin : begin + PIECE]
        before = time.perf_counter()
        refs = conv_fast.layer_autodiff_many([(c.network, c.x, c.y, c.loss) for c in piece])
        tally.seconds["oracle"] += time.perf_counter() - before
        if pool is not None and sum(not f.done() for f, _ in waiting) < judges.WAITING:
            pairs = list(zip(piece, refs, strict=True))
            waiting.append((pool.submit(judge_piece, judges.dumps(pairs)), pairs))
            continue
        for case, ref in zip(piece, refs, strict=True):
            tally.judge(case, ref)
    started = []
    for future, sent in reversed(waiting):  # the last pieces first, while the other process goes on from the first
        if future.cancel():  # not started there: judged here rather than waited for (judges.reclaim)
            for case, ref in sent:
                tally.judge(case, ref)
        else:
            started.append(future)
    for future in started:
        there = Tally()
        vars(there).update(judges.loads(future.result()))
        tally.add(there)
    return len(cases) / (time.perf_counter() - start)


def judging_pool(jobs: int) -> concurrent.futures.Executor | None:
    """A second process for ``run_fast`` (spawned: JAX's threads do not survive a fork), set up
    as ``verify``'s (``judges._start``: one BLAS thread, every catalogue profile), or ``None``."""
    if jobs < 2:
        return None
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context, initializer=judges._start)
    pool.submit(int).result()  # started and set up before anything is timed
    return pool


def run_plain(cases: list[LayerCase], tally: Tally) -> float:
    """Verified networks per second with ``reference.layers`` (a compilation per network)."""
    start = time.perf_counter()
    for case in cases:
        begin = time.perf_counter()
        ref = layer_autodiff(case.network, case.x, case.y, loss=case.loss)
        tally.seconds["oracle"] += time.perf_counter() - begin
        tally.judge(case, ref)
    return len(cases) / (time.perf_counter() - start)


def warm_up() -> dict:
    """Compile every standard template's program (a small network fits them all) and measure
    every activation's tolerance tables, as ``verify`` would before its first network."""
    rng, seconds = np.random.default_rng(10_000), {}
    case = draw_case(rng)
    while conv_fast.template_for(case.network, case.n, case.loss) is not conv_fast.STANDARD[0]:
        case = draw_case(rng)
    for template in conv_fast.STANDARD:
        start = time.perf_counter()
        conv_fast.layer_autodiff(case.network, case.x, case.y, loss=case.loss, template=template)
        seconds[f"compile_side_{template.side}"] = time.perf_counter() - start
    start = time.perf_counter()
    for g in ACTIVATIONS:
        tol.profile(g)
    seconds["tolerance_tables"] = time.perf_counter() - start
    return seconds


def main() -> None:
    args = throughput_arguments(
        __doc__.splitlines()[0], networks_help="networks per fast run", jobs=min(2, judges.cpus())
    )

    load_before = os.getloadavg()[0]
    pool = judging_pool(args.jobs)
    with contextlib.ExitStack() as stack:
        if pool is not None:  # two processes: one BLAS thread each, as in verify
            stack.enter_context(runtime.one_blas_thread())
            stack.callback(pool.shutdown)
        result = measure(args, pool, load_before)
    if args.json:
        print(json.dumps(result))
        return
    report(result)


def measure(args, pool: concurrent.futures.Executor | None, load_before: float) -> dict:
    """Warm up, then ``args.runs`` runs of both paths; every figure of the report."""
    warm = warm_up()
    rates: dict[str, list[float]] = {"plain": [], "fast": [], "manual": [], "judging": [], "oracle": []}
    splits: list[dict] = []
    fast_tally, plain_tally = Tally(), Tally()
    sides: Counter[int] = Counter()
    for run in range(args.runs):
        cases = draw_cases(args.networks, run)
        sides.update(conv_fast.template_for(c.network, c.n, c.loss).side for c in cases)
        tally = Tally()
        rates["fast"].append(run_fast(cases, tally, pool))
        split = {part: 1e3 * tally.seconds[part] / len(cases) for part in ("oracle", "manual", "judging")}
        splits.append(split)
        for part in ("oracle", "manual", "judging"):
            rates[part].append(1e3 / split[part])
        rates["plain"].append(run_plain(draw_cases(args.plain_networks, 1000 + run), plain_tally))
        fast_tally.add(tally)
    median = {k: statistics.median(v) for k, v in rates.items()}
    split = {part: statistics.median(s[part] for s in splits) for part in ("oracle", "manual", "judging")}
    plain_oracle_ms = 1e3 * plain_tally.seconds["oracle"] / max(plain_tally.networks, 1)
    result = {
        "fast_networks_per_second": median["fast"],
        "plain_networks_per_second": median["plain"],
        "fast_over_plain": median["fast"] / median["plain"],
        "fast_oracle_networks_per_second": median["oracle"],
        "manual_networks_per_second": median["manual"],
        "judging_networks_per_second": median["judging"],
        "split_ms_per_network": split,
        "plain_oracle_ms_per_network": plain_oracle_ms,
        "warm_up_seconds": warm,
        "runs": args.runs,
        "networks_per_run": {"fast": args.networks, "plain": args.plain_networks},
        "fast_rates": rates["fast"],
        "plain_rates": rates["plain"],
        "canvas_sides": {str(side): sides[side] for side in sorted(sides)},
        "not_verified": fast_tally.failures + plain_tally.failures,
        "end_to_end_in_doubt": fast_tally.in_doubt + plain_tally.in_doubt,
        "load_average": [load_before, os.getloadavg()[0]],
        "jobs": args.jobs,
    }
    return result


def report(result: dict) -> None:
    """The figures for people. The first lines match throughput.py's; the rest are this
    benchmark's own figures, so each prints its whole report itself."""
    split, plain_oracle_ms = result["split_ms_per_network"], result["plain_oracle_ms_per_network"]
    print(f"verified convolutional networks per second, median of {result['runs']} runs:")
    print(f"  plain reference + judgement: {result['plain_networks_per_second']:10.1f}")
    print(
        f"  fast reference + judgement:  {result['fast_networks_per_second']:10.1f}   "
        f"({result['fast_over_plain']:.0f}× plain; {result['jobs']} process(es) judging)"
    )
    print(
        f"  per network (ms): fast oracle {split['oracle']:.2f}, hand pass {split['manual']:.2f}, "
        f"judging {split['judging']:.2f}; plain oracle {plain_oracle_ms:.0f}"
    )
    print(f"  networks not verified: {result['not_verified']} (must be 0)")
    print(f"  one-time warm-up: {', '.join(f'{k} {v:.1f} s' for k, v in result['warm_up_seconds'].items())}")


if __name__ == "__main__":
    main()
