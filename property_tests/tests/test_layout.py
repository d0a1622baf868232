"""The modules' old names (directly under ``property_tests``) still import, as the same objects,
so users' imports and ``module:NAME`` targets written before the layout by role keep working."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import property_tests
from manual import Activation
from property_tests.checkers.loading import load_object


@pytest.mark.parametrize("old", sorted(property_tests.MOVED))
def test_an_old_name_is_the_moved_module_itself(old: str) -> None:
    moved = importlib.import_module(f"property_tests.{property_tests.MOVED[old]}")
    assert importlib.import_module(f"property_tests.{old}") is moved


def test_a_name_that_never_existed_still_fails_to_import() -> None:
    """Negative control: the finder answers for the moved names only."""
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("property_tests.no_such_module")


def test_an_old_target_loads_the_same_activation() -> None:
    old = load_object("property_tests.activation_bank:RIGHT_SMOOTH", Activation, "an Activation")
    assert old is load_object("property_tests.banks.activation_bank:RIGHT_SMOOTH", Activation, "an Activation")


def test_documented_imports() -> None:
    """The imports the README shows, under their old and their new names."""
    # The old names exist only at run time (property_tests' finder maps them), so mypy cannot see them.
    from property_tests.activation_check import (  # type: ignore[import-not-found]  # old name
        assert_activation_correct,
        check_activation,
    )
    from property_tests.checkers import activation_check
    from property_tests.layer_check import assert_layer_correct  # type: ignore[import-not-found]  # old name
    from property_tests.loss_check import assert_loss_correct  # type: ignore[import-not-found]  # old name

    assert check_activation is activation_check.check_activation
    assert callable(assert_activation_correct) and callable(assert_layer_correct)
    assert callable(assert_loss_correct)


LAYERS = {
    "command": {"teaching", "banks", "checkers", "library"},
    "teaching": {"banks", "checkers", "library"},
    "banks": {"checkers", "library"},
    "checkers": {"library"},
    "library": set(),
}
"""Which subpackages each may import (docs/architecture.md draws the same)."""


def imported_subpackages(source: str) -> set[str]:
    """The ``property_tests`` subpackages a module's source imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        found |= {name.split(".")[1] for name in names if name.startswith("property_tests.")}
    return found


def forbidden_imports(subpackage: str, source: str) -> set[str]:
    return imported_subpackages(source) - LAYERS[subpackage] - {subpackage}


@pytest.mark.parametrize("subpackage", sorted(LAYERS))
def test_each_subpackage_imports_only_the_ones_below_it(subpackage: str) -> None:
    root = Path(property_tests.__file__).parent / subpackage
    for module in sorted(root.glob("*.py")):
        assert not forbidden_imports(subpackage, module.read_text()), f"{module.name} imports upwards"


def test_an_upward_import_is_caught() -> None:
    """Negative control: the same check flags a library module importing a checker, even
    inside a function."""
    source = "def f():\n    from property_tests.checkers.verify import run_verify\n"
    assert forbidden_imports("library", source) == {"checkers"}
    assert forbidden_imports("library", "import property_tests.tests.test_cli\n") == {"tests"}
