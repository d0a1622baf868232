"""The two tiers (``sweeps.py``): a module whose every test is a sweep is not even imported by
the quick tier, and the text check that finds such a module agrees with the module's code."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import cast

import pytest

from property_tests.tests import conftest
from property_tests.tests.sweeps import sweep_only

HERE = Path(__file__).parent


def _marked_sweep_only(path: Path) -> bool:
    """``pytestmark = SWEEP`` as a top-level statement of the module, read by Python's parser."""
    return any(
        isinstance(node, ast.Assign)
        and [getattr(target, "id", None) for target in node.targets] == ["pytestmark"]
        and getattr(node.value, "id", None) == "SWEEP"
        for node in ast.parse(path.read_text(encoding="utf-8")).body
    )


@pytest.mark.parametrize("path", sorted(HERE.glob("test_*.py")), ids=lambda path: path.name)
def test_the_text_check_agrees_with_the_parser(path: Path) -> None:
    assert sweep_only(path) == _marked_sweep_only(path)


def test_the_fuzzing_is_sweep_only_and_a_module_with_some_sweeps_is_not() -> None:
    assert sweep_only(HERE / "test_fuzz.py")
    assert not sweep_only(HERE / "test_cli.py")  # negative control: sweeps among quick tests


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pytestmark = SWEEP\n", True),
        ("pytestmark = SWEEP  # the fuzzing\n", True),
        ("@SWEEP\ndef test_one():\n    pass\n", False),
        ("# pytestmark = SWEEP\n", False),
        ("def helper():\n    pytestmark = SWEEP\n", False),
        ("pytestmark = SWEEPING\n", False),
    ],
)
def test_sweep_only_reads_a_top_level_mark(tmp_path: Path, text: str, expected: bool) -> None:
    path = tmp_path / "test_module.py"
    path.write_text(text)
    assert sweep_only(path) is expected
    assert _marked_sweep_only(path) is expected


class _Config:
    def __init__(self, profile: str, markexpr: str = "") -> None:
        self.profile, self.markexpr = profile, markexpr

    def getoption(self, name: str, default=None):
        return {"hypothesis_profile": self.profile, "markexpr": self.markexpr}.get(name, default)


def _ignored(path: Path, profile: str, markexpr: str = "") -> bool | None:
    return conftest.pytest_ignore_collect(path, cast(pytest.Config, _Config(profile, markexpr)))


def test_only_the_quick_tier_leaves_a_sweep_only_module_unimported() -> None:
    fuzz, cli = HERE / "test_fuzz.py", HERE / "test_cli.py"
    assert _ignored(fuzz, "default") is True
    assert _ignored(cli, "default") is None
    assert _ignored(fuzz, "ci") is None
    assert _ignored(fuzz, "default", markexpr="sweep") is None
