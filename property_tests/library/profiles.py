"""Hypothesis profiles, chosen with ``HYPOTHESIS_PROFILE=NAME`` (or pytest's
``--hypothesis-profile NAME``):

- ``default``: quick, 10 examples a property, and the tests marked ``sweep`` left out
  (``property_tests/tests/sweeps.py``): the run to make while editing, 70 to 95 s on two cores
  once JAX's compilation cache is filled.
- ``ci``: 30 examples a property and every test, sweeps included; derandomized (the same
  examples every run) and without the example database, so a CI run is reproducible and never
  depends on an earlier run's files.
- ``thorough``: at least 10,000 examples a property, no deadline; for a long soak.

Deadlines are off everywhere: the first example of a run pays for JAX's one-time compilation,
and a deadline would turn that into a flaky failure.
"""

from __future__ import annotations

import os
from fractions import Fraction

from hypothesis import HealthCheck, settings

SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("default", max_examples=10, deadline=None, suppress_health_check=SUPPRESSED)
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=SUPPRESSED,
    print_blob=True,
)
settings.register_profile("thorough", max_examples=10_000, deadline=None, suppress_health_check=SUPPRESSED)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "default")


def load() -> None:
    """Load the profile named by HYPOTHESIS_PROFILE (``default`` when unset)."""
    if PROFILE not in ("default", "ci", "thorough"):
        raise ValueError(f"HYPOTHESIS_PROFILE must be default, ci or thorough, not {PROFILE!r}")
    settings.load_profile(PROFILE)


def fewer(fraction: float, at_least: int) -> settings:
    """Settings for a property whose examples cost more than most (each compiles a plain,
    per-architecture oracle, say): ``fraction`` of the loaded profile's examples, rounded down,
    at least ``at_least``. Called after ``load`` (in a test module), so that it reads the run's
    profile."""
    exact = Fraction(fraction).limit_denominator(1000)  # 1 / 3 is a third, not 0.333…
    return settings(max_examples=max(at_least, int(settings().max_examples * exact)))
