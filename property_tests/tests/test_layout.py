"""The modules' old names (directly under ``property_tests``) still import, as the same objects,
so users' imports and ``module:NAME`` targets written before the layout by role keep working."""

from __future__ import annotations

import importlib

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
    from property_tests.activation_check import assert_activation_correct, check_activation
    from property_tests.checkers import activation_check
    from property_tests.layer_check import assert_layer_correct
    from property_tests.loss_check import assert_loss_correct

    assert check_activation is activation_check.check_activation
    assert callable(assert_activation_correct) and callable(assert_layer_correct)
    assert callable(assert_loss_correct)
