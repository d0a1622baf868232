"""Fuzz ``check_activation`` with generated activations (``property_tests.banks.fuzz``): N right ones
and N wrong variants, drawn deterministically from a seed, each through the checker. Counts
false alarms (a right activation called wrong), misses (a wrong one not called wrong) and
inconclusive verdicts, and shows the first few false alarms and misses with their formulas
and the checker's counterexample, so that they can be debugged.

    python benchmarks/fuzz_checker.py [--activations 100] [--seed 0] [--dtype float64|float32]
                                      [--examples 10] [--workers K] [--log FILE.jsonl]
                                      [--json] [--report FILE.md]

``--report`` writes every false alarm, miss and error with the checker's whole message.
``--workers K`` shares the checks among K processes (each draws the same activations from the
seed and takes every K-th). ``--log`` appends each outcome as one JSON line as soon as it is
known and, run again with the same options, checks only what the file does not hold yet, so a
long run can be stopped and resumed (the figures are then those of the whole file).
The exit code is 0 whatever the checker says (2 for bad usage).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import inspect
import json
import multiprocessing
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st  # noqa: E402

from property_tests.banks import fuzz
from property_tests.checkers.activation_check import check_activation  # noqa: E402

SHOWN = 5
"""False alarms and misses shown in the summary (all of them go to ``--report``)."""

CLEAR_MISTAKE = 1e-4
"""A miss of a mistake at least this large (relative) is clear in float32 too; smaller ones may
lie below float32's resolution, and are counted apart."""


def draw(strategy: st.SearchStrategy, n: int, seed: int) -> list:
    """n examples of ``strategy``, the same for the same seed (Hypothesis's generate phase,
    seeded, without the example database)."""
    found: list = []

    @hypothesis_seed(seed)
    @settings(
        max_examples=n,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example):
        found.append(example)

    collect()
    return found[:n]


@dataclass
class Outcome:
    """One activation through the checker."""

    expected: str  # "verified" (a right activation) or "wrong" (a wrong variant)
    name: str
    kind: str
    formula: str
    verdict: str
    seconds: float
    message: str
    mistake_size: float = 0.0
    index: int = -1

    @property
    def false_alarm(self) -> bool:
        return self.expected == "verified" and self.verdict == "wrong"

    @property
    def missed(self) -> bool:
        return self.expected == "wrong" and self.verdict not in ("wrong", "error")

    def key_line(self) -> str:
        """The line of the checker's message that says why: its counterexample, or for a
        verified one, the largest error against the tolerance."""
        lines = [line.strip() for line in self.message.splitlines()]
        if self.verdict == "error" or len(lines) < 2:
            return lines[0] if lines else ""
        for line in lines[1:]:
            if any(marker in line for marker in ("WRONG", "IN A NETWORK", "INCONCLUSIVE", "inconclusive")):
                return line
        return lines[1]

    # One outcome's JSON object, field by field, like verify's Tally.as_dict: the same dict shape
    # but other fields, so nothing to share.
    def as_dict(self) -> dict:
        return {
            "expected": self.expected,
            "name": self.name,
            "kind": self.kind,
            "formula": self.formula,
            "verdict": self.verdict,
            "seconds": round(self.seconds, 3),
            "line": self.key_line(),
            **({"mistake_size": self.mistake_size} if self.expected == "wrong" else {}),
        }

    def as_log_line(self, run: str) -> str:
        """Everything, the whole message included, as one JSON line of ``--log``; ``run`` names
        the options it was checked under."""
        return json.dumps({"run": run, **vars(self), "seconds": round(self.seconds, 3)})

    @classmethod
    def from_log_line(cls, line: str, run: str) -> Outcome | None:
        """The outcome on one line of ``--log``, or None if it was checked under other options."""
        fields = json.loads(line)
        return cls(**fields) if fields.pop("run", None) == run else None


def check(act, expected: str, kind: str, options: dict, mistake_size: float = 0.0) -> Outcome:
    start = time.perf_counter()
    try:
        report = check_activation(act, **options)
        verdict, message = report.verdict, report.message()
    except Exception as error:  # a generated activation the checker cannot take at all
        verdict, message = "error", f"{type(error).__name__}: {error}"
    finally:
        forget(act)
    return Outcome(expected, act.name, kind, act.formula, verdict, time.perf_counter() - start, message, mistake_size)


def forget(act) -> None:
    """Drop what was compiled and measured for one generated activation: each compiles programs
    of its own (its derivative, its networks' reference) that no later check reuses, and a run
    of a few hundred would otherwise hold them all (the process grew past 20 GB at about 500
    checks). The time to compile them again is the check's own in any case."""
    import jax

    from property_tests.checkers import verify
    from property_tests.library import tolerances
    from reference import fast

    jax.clear_caches()
    fast._compiled.cache_clear()
    verify.needs_holding.cache_clear()
    tolerances._PROFILES.pop(act, None)


def mistake_size(variant: fuzz.WrongVariant) -> float:
    """The largest relative difference of the wrong g′ from the right one, where g′ is not
    negligible on [−10, 10]."""
    g, right = variant.correct.on_grid
    wrong = variant.activation.derivative(fuzz.GRID, np)
    finite = np.isfinite(g) & np.isfinite(right) & np.isfinite(wrong)
    size = np.abs(right)
    keep = finite & (size > 0) & (size >= fuzz.NOT_NEGLIGIBLE * np.max(size[finite], initial=0))
    return float(np.max(np.abs(wrong[keep] - right[keep]) / size[keep], initial=0.0))


def run_name(n: int, seed: int, dtype: str, examples: int) -> str:
    """The options that decide a check's outcome, as written on each line of ``--log`` (n too:
    what Hypothesis draws for a seed may depend on how many examples it is asked for)."""
    return f"activations={n} seed={seed} dtype={dtype} examples={examples}"


def run(
    n: int,
    seed: int,
    dtype: str,
    examples: int,
    progress: bool,
    *,
    worker: int = 0,
    workers: int = 1,
    done: frozenset = frozenset(),
    log: str | None = None,
) -> list[Outcome]:
    """The checks of one worker: the i-th right activation and the i-th wrong variant for every
    i ≡ worker (mod workers) that ``done`` (pairs of expected verdict and i) does not hold."""
    options = dict(examples=examples, seed=0, dtype=np.dtype(dtype))
    if "networks" in inspect.signature(check_activation).parameters:
        options["networks"] = examples
    right = draw(fuzz.symbolic_activations(), n, seed)
    wrong = draw(fuzz.wrong_activations(), n, seed)
    outcomes = []

    def keep(outcome: Outcome, i: int, total: int) -> None:
        outcome.index = i
        outcomes.append(outcome)
        if log:
            with open(log, "a") as file:
                file.write(outcome.as_log_line(run_name(n, seed, dtype, examples)) + "\n")
        if progress:
            print(f"  {outcome.expected} {i + 1}/{total}: {outcome.verdict}", file=sys.stderr, flush=True)

    mine = [i for i in range(n) if i % workers == worker]
    for i in (i for i in mine if i < len(right) and ("verified", i) not in done):
        keep(check(right[i].activation, "verified", right[i].kind, options), i, len(right))
    for i in (i for i in mine if i < len(wrong) and ("wrong", i) not in done):
        variant = wrong[i]
        keep(
            check(
                variant.activation, "wrong", f"{variant.correct.kind} / {variant.label}", options, mistake_size(variant)
            ),
            i,
            len(wrong),
        )
    return outcomes


def read_log(path: str, n: int, run: str) -> list[Outcome]:
    """The outcomes a ``--log`` file holds for indices below n under the options ``run`` (lines
    of other options, and a line cut short when a run was stopped, are left out)."""
    if not Path(path).exists():
        return []
    found = {}
    for line in Path(path).read_text().splitlines():
        try:
            outcome = Outcome.from_log_line(line, run)
        except (ValueError, TypeError):
            continue
        if outcome is not None and 0 <= outcome.index < n:
            found[outcome.expected, outcome.index] = outcome
    return list(found.values())


def run_all(
    n: int, seed: int, dtype: str, examples: int, progress: bool, workers: int, log: str | None
) -> list[Outcome]:
    """Every check, shared among ``workers`` processes, with what ``log`` holds already."""
    earlier = read_log(log, n, run_name(n, seed, dtype, examples)) if log else []
    done = frozenset((o.expected, o.index) for o in earlier)
    if workers == 1:
        return earlier + run(n, seed, dtype, examples, progress, done=done, log=log)
    context = multiprocessing.get_context("spawn")  # JAX's threads do not survive a fork
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        parts = [
            pool.submit(run, n, seed, dtype, examples, progress, worker=w, workers=workers, done=done, log=log)
            for w in range(workers)
        ]
        return earlier + [o for part in parts for o in part.result()]


def summary(outcomes: list[Outcome], dtype: str) -> dict:
    right = [o for o in outcomes if o.expected == "verified"]
    wrong = [o for o in outcomes if o.expected == "wrong"]
    missed = [o for o in wrong if o.missed]
    return {
        "correct": len(right),
        "false_alarms": sum(o.false_alarm for o in right),
        "wrong": len(wrong),
        "missed": len(missed),
        "missed_clear": sum(o.mistake_size >= CLEAR_MISTAKE for o in missed) if dtype == "float32" else len(missed),
        "inconclusive": sum(o.verdict == "inconclusive" for o in outcomes),
        "errors": sum(o.verdict == "error" for o in outcomes),
        "median_seconds": round(statistics.median(o.seconds for o in outcomes), 3) if outcomes else 0.0,
        "dtype": dtype,
    }


def print_table(result: dict, outcomes: list[Outcome]) -> None:
    print(f"check_activation on generated activations ({result['dtype']}):")
    print(f"  {'right activations':24s} {result['correct']:5d}   false alarms {result['false_alarms']}")
    print(
        f"  {'wrong variants':24s} {result['wrong']:5d}   missed {result['missed']}"
        + (
            f" ({result['missed_clear']} of a mistake ≥ {CLEAR_MISTAKE:g} relative)"
            if result["dtype"] == "float32"
            else ""
        )
    )
    print(
        f"  inconclusive {result['inconclusive']}, errors {result['errors']}, "
        f"median {result['median_seconds']:.2f} s per check"
    )
    for title, chosen in (
        ("false alarms", [o for o in outcomes if o.false_alarm]),
        ("misses", [o for o in outcomes if o.missed]),
        ("errors", [o for o in outcomes if o.verdict == "error"]),
    ):
        if chosen:
            print(f"\nfirst {min(SHOWN, len(chosen))} of {len(chosen)} {title}:")
            for o in chosen[:SHOWN]:
                size = f", mistake {o.mistake_size:.3g} relative" if o.expected == "wrong" else ""
                print(f"- [{o.kind}{size}] {o.formula}\n    {o.key_line()}")


def write_report(path: str, result: dict, outcomes: list[Outcome], argv: list[str]) -> None:
    lines = [f"# fuzz_checker: {' '.join(argv)}", "", "```", json.dumps(result), "```", ""]
    for title, chosen in (
        ("False alarms", [o for o in outcomes if o.false_alarm]),
        ("Misses", [o for o in outcomes if o.missed]),
        ("Inconclusive", [o for o in outcomes if o.verdict == "inconclusive"]),
        ("Errors", [o for o in outcomes if o.verdict == "error"]),
    ):
        lines += [f"## {title} ({len(chosen)})", ""]
        for o in chosen:
            size = f", mistake {o.mistake_size:.3g} relative" if o.expected == "wrong" else ""
            lines += [f"### [{o.kind}{size}] {o.name}", "", f"`{o.formula}`", "", "```", o.message, "```", ""]
    Path(path).write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activations", type=int, default=20, help="right ones, and as many wrong ones")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    parser.add_argument("--examples", type=int, default=10, help="examples= of each check_activation")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--report", metavar="FILE", help="write every false alarm and miss, in full")
    parser.add_argument("--progress", action="store_true", help="one line per check on stderr")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the checks")
    parser.add_argument("--log", metavar="FILE", help="append each outcome; resume from what it holds")
    args = parser.parse_args(argv)
    if args.activations < 1 or args.examples < 1 or args.workers < 1:
        parser.error("--activations, --examples and --workers must be at least 1")
    outcomes = run_all(args.activations, args.seed, args.dtype, args.examples, args.progress, args.workers, args.log)
    outcomes.sort(key=lambda o: (o.expected != "verified", o.index))
    result = summary(outcomes, args.dtype)
    if args.report:
        write_report(args.report, result, outcomes, ["fuzz_checker.py", *(argv or sys.argv[1:])])
    if args.json:
        cases = {
            "false_alarm_cases": [o.as_dict() for o in outcomes if o.false_alarm][:SHOWN],
            "missed_cases": [o.as_dict() for o in outcomes if o.missed][:SHOWN],
        }
        print(json.dumps({**result, **cases}))
    else:
        print_table(result, outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
