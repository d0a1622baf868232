"""``backprop-check activation`` for activations with parameters and maps that mix units:
right ones verified, wrong ones called wrong with a self-consistent counterexample."""

import json

import pytest

from manual import PARAMETRIC, VECTOR_ACTIVATIONS
from property_tests.banks import kinds_bank as bank
from property_tests.checkers.activation_check import check_activation
from property_tests.command.cli import main
from property_tests.tests.sweeps import first_then_sweep
from property_tests.tests.test_activation_check import (
    cli_without_a_warning,
    far_off_is_wrong,
    finite_figures,
    self_consistent,
    target,
)

QUICK = dict(examples=10)


# Same shape as test_activation_check's tests of its banks: one test per list of the kinds bank,
# each stating the verdict its entries must get.
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("g", first_then_sweep(bank.RIGHT), ids=lambda g: g.name)
def test_right_user_kinds_are_verified(g, dtype):
    report = check_activation(g, dtype=dtype, **QUICK)
    assert report.verdict == "verified", report.message()
    finite_figures(report.as_dict())


@pytest.mark.parametrize("g", first_then_sweep(bank.WRONG), ids=lambda g: g.name)
def test_wrong_user_kinds_are_wrong_with_a_consistent_counterexample(g):
    report = check_activation(g, **QUICK)
    assert report.verdict == "wrong", report.message()
    assert report.counterexample is not None
    self_consistent(report)
    assert report.networks == 0  # a pointwise mistake stops before the networks


@pytest.mark.parametrize(
    "case",
    first_then_sweep([(g, dtype) for dtype in ("float64", "float32") for g in bank.FAR_OFF]),
    ids=lambda case: f"{case[0].name}-{case[1]}",
)
def test_a_partial_or_vjp_off_beyond_any_tolerance_is_wrong_without_a_warning(case):
    # Jᵀv of softmax_t2 times ±∞ or NaN is NaN on rows of one unit, where the right Jᵀv is 0
    # and the size of its terms too: such a counterexample divided by a zero scale
    # (ZeroDivisionError), and eight of them hid every other point from the second look.
    far_off_is_wrong(*case, examples=10)


@pytest.mark.parametrize("g", first_then_sweep(bank.FAR_OFF), ids=lambda g: g.name)
def test_cli_a_partial_or_vjp_off_beyond_any_tolerance_is_exit_1_without_a_warning(capsys, g):
    code, report = cli_without_a_warning(capsys, "activation", target(bank, g), "--examples", "10")
    assert code == 1 and report["verdict"] == "wrong" and report["counterexample"] is not None
    finite_figures(report)


@pytest.mark.parametrize(
    "g", first_then_sweep([*PARAMETRIC.values(), *VECTOR_ACTIVATIONS.values()]), ids=lambda g: g.name
)
def test_catalogue_kinds_pass_the_checker(g):
    report = check_activation(g, examples=5)
    assert report.verdict == "verified", report.message()


def test_the_command_takes_either_kind(capsys):
    assert main(["activation", "property_tests.banks.kinds_bank:RIGHT_PRELU", "--examples", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "verified"
    assert main(["activation", "property_tests.banks.kinds_bank:WRONG_GLU_SWAPPED", "--examples", "5"]) == 1
    assert "WRONG DERIVATIVE (J_gᵀv)" in capsys.readouterr().out
    assert main(["activation", "property_tests.banks.kinds_bank:RIGHT", "--examples", "5"]) == 2
    assert "not an Activation, a ParametricActivation or a VectorActivation" in capsys.readouterr().err


def _scaled(g, c):
    """g times c, its partials (or Jᵀv) too: the same activation at another scale."""
    import dataclasses

    from manual import ParametricActivation

    if isinstance(g, ParametricActivation):
        f, d, pd = g.forward, g.derivative, g.parameter_derivatives
        return dataclasses.replace(
            g,
            name=f"{g.name}*{c:g}",
            forward=lambda z, p, xp: c * f(z, p, xp),
            derivative=lambda z, p, xp: c * d(z, p, xp),
            parameter_derivatives=lambda z, p, xp: {k: c * v for k, v in pd(z, p, xp).items()},
        )
    f, v = g.forward, g.vjp
    return dataclasses.replace(
        g, name=f"{g.name}*{c:g}", forward=lambda z, xp: c * f(z, xp), vjp=lambda z, w, xp: c * v(z, w, xp)
    )


@pytest.mark.parametrize("scale", [1e-8, 1e6])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_scale_is_judged_at_its_own(scale, dtype):
    for g in (bank.RIGHT_PRELU, bank.RIGHT_SOFTMAX_T2):
        report = check_activation(_scaled(g, scale), examples=5, dtype=dtype, networks=0)
        assert report.verdict == "verified", report.message()
    for g in (bank.WRONG_SWISH_1E6, bank.WRONG_MAXOUT_EVERY_TIE):  # negative controls
        if dtype == "float32" and g is bank.WRONG_SWISH_1E6:
            continue  # a 1e-6 mistake is below float32's resolution
        assert check_activation(_scaled(g, scale), examples=5, dtype=dtype, networks=0).verdict == "wrong"
