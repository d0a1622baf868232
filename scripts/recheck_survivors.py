"""Run every mutant that survived ``mutmut run`` against the autodiff tests as well.

``mutmut run`` uses only the tests that never import JAX (``docs/mutation.md`` says why). Some
changes show only under JAX: ``where(z > 0, z, 0)`` and ``where(z >= 0, z, 0)`` give the same
values in NumPy, but ``jax.grad`` of the forward, which the reference differentiates, takes a
different side of the kink. This script runs each survivor, in a fresh process of its own (no
fork), against the autodiff tests of its module, and prints what they make of it.

    mutmut run && python scripts/recheck_survivors.py [--jobs 2] [--json]

Exit status 0 when every survivor is either killed here or listed under "Equivalent mutants"
in ``docs/mutation.md``; 1 otherwise. Every mutant ``mutmut run`` did not kill counts as a
survivor (timed out, suspicious and untested ones too). An unmutated run of the same tests
must pass first, and a pytest error (exit 2 and above) stops the script: it is not a kill.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = {
    "activations": ["property_tests/tests/test_catalogue.py"],
    "losses": ["property_tests/tests/test_losses.py"],
    "output_maps": ["property_tests/tests/test_losses.py"],
    "backprop": ["property_tests/tests/test_equations.py", "property_tests/tests/test_losses.py"],
    "network": ["property_tests/tests/test_equations.py", "property_tests/tests/test_manual_api.py"],
}


def survivors() -> list[str]:
    """Every mutant ``mutmut run`` did not kill: survived, timed out, suspicious, untested."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    found = [line.rsplit(":", 1) for line in out.splitlines() if ":" in line]
    return [name.strip() for name, status in found if status.strip() != "killed"]


def _pytest(mutant: str | None, select: list[str], files: list[str]) -> int:
    env = dict(os.environ, MUTANT_UNDER_TEST=mutant or "")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-n",
            "0",
            "-p",
            "no:cacheprovider",
            "--hypothesis-profile=ci",
            *select,
            *files,
        ],
        cwd=ROOT / "mutants",
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    return done.returncode


TIMEOUT = 600
"""Seconds one mutant's autodiff tests may take; the unmutated run takes well under a minute."""


def killed_by_autodiff(mutant: str) -> bool:
    """Do the autodiff tests fail (pytest exit 1) with this mutant? Exit 5, no test selected,
    runs the module's whole files instead; any other exit is an error, never a kill."""
    module, function = mutant.split(".")[1], mutant.split(".")[2].split("__mutmut_")[0][2:]
    # The catalogue's tests are parametrized by activation name: run those of this one only.
    select = ["-k", function.removesuffix("_prime")] if module == "activations" else []
    code = _pytest(mutant, select, TESTS[module])
    if code == 5:
        code = _pytest(mutant, [], TESTS[module])
    if code not in (0, 1):
        raise RuntimeError(f"{mutant}: pytest exited {code} (an error, not a verdict)")
    return code == 1


def listed_as_equivalent(mutant: str) -> bool:
    """Is the mutant named, in full and in backquotes, under ``docs/mutation.md``'s heading
    "Equivalent mutants"?"""
    text = (ROOT / "docs" / "mutation.md").read_text()
    equivalents = text.split("## Equivalent mutants", 1)[-1] if "## Equivalent mutants" in text else ""
    return f"`{mutant.removeprefix('manual.')}`" in equivalents


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    names = survivors()
    files = sorted({f for fs in TESTS.values() for f in fs})
    if _pytest(None, [], files) != 0:
        raise SystemExit("the autodiff tests fail without any mutant: fix that first")
    with ThreadPoolExecutor(args.jobs) as pool:
        killed = dict(zip(names, pool.map(killed_by_autodiff, names), strict=True))
    unexplained = [m for m in names if not killed[m] and not listed_as_equivalent(m)]
    killed_names = sorted(m for m in names if killed[m])
    result = {
        "survivors": len(names),
        "killed_by_autodiff": sum(killed.values()),
        "equivalent": len(names) - sum(killed.values()) - len(unexplained),
        "unexplained": unexplained,
        "killed": killed_names,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"{result['survivors']} survivors of mutmut run: {result['killed_by_autodiff']} killed by the "
            f"autodiff tests, {result['equivalent']} listed as equivalent, {len(unexplained)} unexplained"
        )
        for m in killed_names:
            print(f"  killed by autodiff: {m}")
        for m in unexplained:
            print(f"  UNEXPLAINED: {m}")
    return 0 if not unexplained else 1


if __name__ == "__main__":
    sys.exit(main())
