import os
from pathlib import Path

import pytest

from property_tests.library import profiles, runtime
from property_tests.tests.sweeps import selected, sweep_only

profiles.load()

# JAX's compilation cache, as the command uses it (``runtime``: the programs that take 0.05 s or
# more to compile, in BACKPROP_CHECK_CACHE's folder, or none with ``off``), from the first test
# on: each worker reads what the other compiled, and a run reads what earlier runs and
# ``verify`` compiled.
runtime.use_compilation_cache()

# pytest's workers (-n auto) have the cores already: `verify` run by a test judges in its own
# process unless the test asks for a second one (test_judges.py).
os.environ.setdefault("BACKPROP_CHECK_JOBS", "1")


def _profile(config: pytest.Config) -> str:
    """The Hypothesis profile of this run: ``--hypothesis-profile``, else HYPOTHESIS_PROFILE."""
    return config.getoption("hypothesis_profile", default=None) or profiles.PROFILE


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under the quick default profile, a module whose every test is a sweep is not imported."""
    if collection_path.suffix != ".py" or selected(_profile(config), config.getoption("markexpr", default="")):
        return None
    return True if sweep_only(collection_path) else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under the quick default profile, leave out the tests marked sweep (``sweeps``)."""
    if selected(_profile(config), config.getoption("markexpr", default="")):
        return
    sweeps = [item for item in items if item.get_closest_marker("sweep")]
    if sweeps:
        config.hook.pytest_deselected(items=sweeps)
        items[:] = [item for item in items if not item.get_closest_marker("sweep")]


def pytest_report_header(config: pytest.Config) -> str:
    profile = _profile(config)
    if selected(profile, config.getoption("markexpr", default="")):
        return f"Hypothesis profile {profile!r}: every test, sweeps included"
    return (
        f"Hypothesis profile {profile!r}: the quick tier; HYPOTHESIS_PROFILE=ci also runs the tests marked sweep "
        "(and imports the modules of sweeps only)"
    )
