"""What the benchmarks share: a median timing, the command line of the two step benchmarks
(``lenet_step``, ``mlp_step``) with the child process that times the hand step alone, and the
command line of the two throughput benchmarks (``throughput``, ``conv_throughput``).

Each benchmark runs as a script (``python benchmarks/X.py``), so this folder is first on
``sys.path`` and they import this module as ``_common``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

DTYPES = (("float32", np.float32), ("float64", np.float64))
"""The dtypes a step benchmark measures, by the name its results are reported under."""


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """The median of ``repeats`` timed calls of ``fn``, in milliseconds, after one untimed call."""
    fn()  # warm-up (and compilation, for JAX)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def manual_only_in_child(script: str, dtype, repeats: int, env: Mapping[str, str]) -> Any:
    """What ``script --manual-only DTYPE --repeats N`` prints (JSON), run in a child process whose
    environment is this one's with ``env`` added."""
    done = subprocess.run(
        [sys.executable, script, "--manual-only", np.dtype(dtype).name, "--repeats", str(repeats)],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def step_results(
    description: str, manual_only: Callable[[Any, int], object], measure: Callable[[Any, int], dict]
) -> tuple[dict[str, dict], int] | None:
    """A step benchmark's command line: ``--repeats``, ``--json`` and the hidden ``--manual-only
    DTYPE`` of ``manual_only_in_child``. Prints what ``--manual-only`` or ``--json`` asks for and
    returns ``None``; otherwise returns ``measure``'s results by dtype name and the repeats, for
    the script to print."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--manual-only", metavar="DTYPE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.manual_only:
        print(json.dumps(manual_only(np.dtype(args.manual_only), args.repeats)))
        return None
    results = {name: measure(dtype, args.repeats) for name, dtype in DTYPES}
    if args.json:
        print(json.dumps(results))
        return None
    return results, args.repeats


def throughput_arguments(description: str, networks_help: str, jobs: int | None = None) -> argparse.Namespace:
    """A throughput benchmark's command line: ``--runs``, ``--networks``, ``--plain-networks``,
    ``--json``, and ``--jobs`` (processes judging) when ``jobs`` gives its default."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--networks", type=int, default=1000, help=networks_help)
    parser.add_argument("--plain-networks", type=int, default=10, help="networks per plain run")
    parser.add_argument("--json", action="store_true")
    if jobs is not None:
        parser.add_argument(
            "--jobs", type=int, default=jobs, help=f"processes judging the fast path's networks (default {jobs})"
        )
    args = parser.parse_args()
    if jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args
