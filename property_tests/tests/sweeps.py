"""The two tiers of the suite.

``pytest`` with the ``default`` Hypothesis profile is the quick run: every property with its
negative control, every unit test, and the first entry of every bank. The rest is marked
``sweep`` (every other bank entry, the fuzzing of generated activations and losses, the
two-process and sharded runs of ``verify``) and runs under the ``ci`` and ``thorough``
profiles, or whenever ``-m`` selects markers (``pytest -m sweep`` runs only the sweeps). A module
whose every test is a sweep (``pytestmark = SWEEP``) is not imported by the quick run at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

SWEEP = pytest.mark.sweep


def first_then_sweep(entries: Sequence[Any], quick: int = 1) -> list[Any]:
    """A bank as parameters: the first ``quick`` entries in every run, the rest marked sweep."""
    return [*entries[:quick], *(pytest.param(entry, marks=SWEEP) for entry in entries[quick:])]


def selected(profile: str, markexpr: str) -> bool:
    """Do sweeps run? Under every profile but ``default``, and whenever ``-m`` is given."""
    return profile != "default" or bool(markexpr)


def sweep_only(path: Path) -> bool:
    """Is every test of this module a sweep (a top-level line ``pytestmark = SWEEP``)? The quick
    tier does not import such a module at all (``conftest.pytest_ignore_collect``): the fuzzing
    alone imports sympy, some 0.5 s in each of pytest's workers."""
    try:
        return re.search(r"^pytestmark = SWEEP\b", path.read_text(encoding="utf-8"), re.MULTILINE) is not None
    except (OSError, ValueError):  # pytest reports what it cannot read
        return False
