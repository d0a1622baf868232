"""``backprop-check activation`` for activations with parameters and maps that mix units:
right ones verified, wrong ones called wrong with a self-consistent counterexample."""

import json

import pytest

from manual import PARAMETRIC, VECTOR_ACTIVATIONS

from . import kinds_bank as bank
from .activation_check import check_activation
from .cli import main
from .test_activation_check import finite_figures

QUICK = dict(examples=10)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("g", bank.RIGHT, ids=lambda g: g.name)
def test_right_user_kinds_are_verified(g, dtype):
    report = check_activation(g, dtype=dtype, **QUICK)
    assert report.verdict == "verified", report.message()
    finite_figures(report.as_dict())


@pytest.mark.parametrize("g", bank.WRONG, ids=lambda g: g.name)
def test_wrong_user_kinds_are_wrong_with_a_consistent_counterexample(g):
    report = check_activation(g, **QUICK)
    assert report.verdict == "wrong", report.message()
    ce = report.counterexample
    assert ce is not None and (ce.relative_error is None or ce.relative_error > ce.tolerance)
    assert report.networks == 0  # a pointwise mistake stops before the networks


@pytest.mark.parametrize("g", [*PARAMETRIC.values(), *VECTOR_ACTIVATIONS.values()], ids=lambda g: g.name)
def test_catalogue_kinds_pass_the_checker(g):
    report = check_activation(g, examples=5)
    assert report.verdict == "verified", report.message()


def test_the_command_takes_either_kind(capsys):
    assert main(["activation", "property_tests.kinds_bank:RIGHT_PRELU", "--examples", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "verified"
    assert main(["activation", "property_tests.kinds_bank:WRONG_GLU_SWAPPED", "--examples", "5"]) == 1
    assert "WRONG DERIVATIVE (J_gᵀv)" in capsys.readouterr().out
    assert main(["activation", "property_tests.kinds_bank:RIGHT", "--examples", "5"]) == 2
    assert "not an Activation, a ParametricActivation or a VectorActivation" in capsys.readouterr().err
