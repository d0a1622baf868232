"""The two tiers of the suite.

``pytest`` with the ``default`` Hypothesis profile is the quick run: every property with its
negative control, every unit test, and the first entry of every bank. The rest is marked
``sweep`` (every other bank entry, the fuzzing of generated activations and losses, the
two-process and sharded runs of ``verify``) and runs under the ``ci`` and ``thorough``
profiles, or whenever ``-m`` selects markers (``pytest -m sweep`` runs only the sweeps).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

SWEEP = pytest.mark.sweep


def first_then_sweep(entries: Sequence[Any], quick: int = 1) -> list[Any]:
    """A bank as parameters: the first ``quick`` entries in every run, the rest marked sweep."""
    return [*entries[:quick], *(pytest.param(entry, marks=SWEEP) for entry in entries[quick:])]


def selected(profile: str, markexpr: str) -> bool:
    """Do sweeps run? Under every profile but ``default``, and whenever ``-m`` is given."""
    return profile != "default" or bool(markexpr)
