"""``backprop-check activation`` and ``check_activation``: the bank's right activations are all
verified (kinks included), its wrong ones are all caught with a counterexample, and every kind
of unusable input is one sentence with exit code 2."""

import json
import shutil
import subprocess
import sys
import textwrap
import warnings
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from manual import CATALOGUE
from property_tests.banks import activation_bank as bank
from property_tests.checkers.activation_check import assert_activation_correct, check_activation
from property_tests.checkers.loading import UsageError
from property_tests.command.cli import main
from property_tests.tests.sweeps import first_then_sweep

QUICK = dict(examples=10)


def finite_figures(report: dict, where: str = "report") -> None:
    """Every error, tolerance and difference anywhere in a report is a finite number or null: not
    NaN or ∞, nor the string "nan" or "inf" that ``json_safe`` writes for a hand value."""
    if isinstance(report, dict):
        for key, value in report.items():
            finite_figures(value, f"{where}.{key}")
    elif isinstance(report, (list, tuple)):
        for i, value in enumerate(report):
            finite_figures(value, f"{where}[{i}]")
    elif where.endswith(("error", "tolerance", "difference")) and report is not None:
        assert isinstance(report, (int, float)) and np.isfinite(report), f"{where} is {report!r}"


def without_a_warning(check, *args, **kwargs):
    """``check(*args, **kwargs)`` with every warning an error, its report's message and JSON
    (``allow_nan=False``) too: a derivation however far off leaves the checker no warning to give."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = check(*args, **kwargs)
        report.message()
        json.dumps(report.as_dict(), allow_nan=False)
    return report


def _constant(name: str) -> None:
    raise AssertionError(f"{name} in a JSON report")


def cli_without_a_warning(capsys, *argv: str) -> tuple[int, dict]:
    """``backprop-check *argv --json`` in this process with every warning an error: the exit code
    and the JSON object (no NaN or Infinity in it), with nothing on standard error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert err == "", err
    return code, json.loads(out, parse_constant=_constant)


def target(module: ModuleType, entry: Any) -> str:
    """``module:NAME`` of a bank entry, for the command line."""
    (name,) = [name for name, value in vars(module).items() if value is entry and name.isupper()]
    return f"{module.__name__}:{name}"


def self_consistent(report) -> None:
    """A reported counterexample's hand and autodiff values differ by more than its finite tolerance."""
    ce = report.counterexample
    if ce is not None:
        assert np.isfinite(ce.tolerance)
        assert ce.relative_error is None and not np.isfinite(ce.hand) or ce.relative_error > ce.tolerance


@pytest.mark.parametrize("g", first_then_sweep(bank.RIGHT), ids=lambda g: g.name)
def test_right_activations_are_verified(g):
    report = check_activation(g, **QUICK)
    assert report.verdict == "verified", report.message()
    assert report.max_error <= report.tolerance
    finite_figures(report.as_dict())
    json.dumps(report.as_dict(), allow_nan=False)


@pytest.mark.parametrize("g", first_then_sweep(bank.HOSTILE_RIGHT), ids=lambda g: g.name)
def test_hostile_right_activations_are_verified_in_float32(g):
    report = check_activation(g, examples=5, dtype="float32")
    assert report.verdict == "verified", report.message()
    finite_figures(report.as_dict())


@pytest.mark.parametrize("g", first_then_sweep(bank.WRONG), ids=lambda g: g.name)
def test_wrong_activations_are_caught(g):
    report = check_activation(g, **QUICK)
    assert report.verdict == "wrong", report.message()
    self_consistent(report)
    finite_figures(report.as_dict())
    json.dumps(report.as_dict(), allow_nan=False)


FAR_OFF = first_then_sweep([(g, dtype) for dtype in ("float64", "float32") for g in bank.FAR_OFF])


def far_off_is_wrong(g, dtype: str, examples: int) -> None:
    """``check_activation`` of a derivative far off: WRONG with a consistent counterexample,
    finite figures, and no warning (``without_a_warning``)."""
    report = without_a_warning(check_activation, g, examples=examples, dtype=dtype)
    assert report.verdict == "wrong" and report.counterexample is not None, report.message()
    self_consistent(report)
    finite_figures(report.as_dict())


@pytest.mark.parametrize("case", FAR_OFF, ids=lambda case: f"{case[0].name}-{case[1]}")
def test_a_derivative_off_beyond_any_tolerance_is_wrong_without_a_warning(case):
    far_off_is_wrong(*case, examples=5)


@pytest.mark.parametrize("g", first_then_sweep(bank.FAR_OFF), ids=lambda g: g.name)
def test_cli_a_derivative_off_beyond_any_tolerance_is_exit_1_without_a_warning(capsys, g):
    code, report = cli_without_a_warning(capsys, "activation", target(bank, g), "--examples", "5")
    assert code == 1 and report["verdict"] == "wrong" and report["counterexample"] is not None
    finite_figures(report)


def test_the_counterexample_check_can_fail():
    # Negative control of self_consistent: a counterexample within its tolerance is rejected.
    from property_tests.checkers.activation_check import PointCounterexample

    class Fake:
        counterexample = PointCounterexample(
            z=1.0, hand=1.0, autodiff=1.0, finite_difference=1.0, relative_error=1e-16, tolerance=1e-14
        )

    with pytest.raises(AssertionError):
        self_consistent(Fake())
    with pytest.raises(AssertionError):
        finite_figures({"max_error": float("nan")})
    with pytest.raises(AssertionError):  # a figure json_safe made a string
        finite_figures({"counterexample": {"tolerance": "inf"}})


def test_the_second_look_is_what_clears_a_cancelling_formula(monkeypatch):
    # Negative control of the no-false-alarm property: without the second look (every first-look
    # failure taken as wrong), the right quotient-rule derivative of sin z / z is called WRONG.
    from property_tests.checkers import second_look

    real = second_look.reexamine

    def first_look_only(*args, **kwargs):
        verdicts = real(*args, **kwargs)
        verdicts.wrong[:] = True
        return verdicts

    monkeypatch.setattr(second_look, "reexamine", first_look_only)
    report = check_activation(bank.RIGHT_QUOTIENT_RULE, examples=5, networks=0)
    assert report.verdict == "wrong" and abs(report.counterexample.z) < 1


def test_a_right_formula_that_loses_digits_is_a_warning_or_with_strict_a_failure():
    lenient = check_activation(bank.RIGHT_QUOTIENT_RULE, examples=5, networks=0)
    assert lenient.verdict == "verified" and lenient.imprecise is not None
    assert lenient.imprecise.hand_digits < 8 and "loses digits" in lenient.message()
    strict = check_activation(bank.RIGHT_QUOTIENT_RULE, examples=5, networks=0, strict=True)
    assert strict.verdict == "imprecise" and "IMPRECISE" in strict.message()
    # Negative control: a precise formula stays verified under strict.
    assert check_activation(bank.RIGHT_SMOOTH, examples=5, networks=0, strict=True).verdict == "verified"


def test_points_where_the_forward_is_not_finite_are_skipped_and_reported():
    report = check_activation(bank.RIGHT_NAIVE_SIGMOID, examples=5, networks=0)
    assert report.verdict == "verified" and report.skipped is not None
    assert (
        report.skipped.high < -700
        and "skipped where the forward, autodiff or the bound is not finite" in report.message()
    )


def test_networks_that_would_overflow_are_held_finite():
    report = check_activation(bank.RIGHT_CUBIC, examples=20)
    assert report.verdict == "verified" and report.network_report["equations"]["(1)"]["comparisons"] > 0
    assert report.network_report["skipped_overflow"] < 10


def test_too_little_evidence_is_inconclusive_exit_3(capsys):
    report = check_activation(bank.INCONCLUSIVE_MOSTLY_NAN, examples=5)
    assert report.verdict == "inconclusive" and "too few to judge" in report.message()
    assert main(["activation", "property_tests.banks.activation_bank:INCONCLUSIVE_MOSTLY_NAN", "--examples", "5"]) == 3
    # Negative control: an activation finite almost everywhere is not inconclusive.
    assert check_activation(bank.RIGHT_NAIVE_SIGMOID, examples=5, networks=0).verdict == "verified"


def test_a_nan_tolerance_is_an_internal_error_exit_4(monkeypatch, capsys):
    from property_tests.library import tolerances

    monkeypatch.setattr(tolerances, "derivative_bound", lambda f, z: np.full(np.shape(z), np.nan))
    assert main(["activation", "property_tests.banks.activation_bank:RIGHT_SMOOTH", "--examples", "5"]) == 4
    err = capsys.readouterr().err
    assert "internal error" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "g, low, high",
    [
        (bank.WRONG_INTERVAL_NEGATIVE, -9.7, -9.2),
        (bank.WRONG_INTERVAL_MIDDLE, 2.13, 2.63),
        (bank.WRONG_INTERVAL_EDGE, 9.45, 9.95),
    ],
    ids=lambda v: getattr(v, "name", str(v)),
)
def test_counterexample_lies_where_the_derivative_is_wrong(g, low, high):
    ce = check_activation(g, **QUICK).counterexample
    assert ce is not None and low < ce.z < high
    assert abs(ce.hand - ce.autodiff) > 1e-3 * abs(ce.autodiff)
    assert ce.finite_difference == pytest.approx(ce.autodiff, rel=1e-7)


def test_wrong_only_for_negative_z_is_caught_at_negative_z():
    ce = check_activation(bank.WRONG_NEGATIVE_ONLY, **QUICK).counterexample
    assert ce.z < 0


def test_wrong_only_for_large_z_is_caught_beyond_5():
    ce = check_activation(bank.WRONG_LARGE_ONLY, **QUICK).counterexample
    assert abs(ce.z) > 5


def test_nan_where_the_forward_is_finite_is_wrong():
    ce = check_activation(bank.WRONG_NAN_AT_ZERO, **QUICK).counterexample
    assert ce.z == 0.0 and np.isnan(ce.hand)


def test_right_pointwise_but_wrong_on_arrays_shows_in_networks():
    report = check_activation(bank.WRONG_ON_ARRAYS, **QUICK)
    assert report.counterexample is None, "pointwise (1-D) it is right"
    assert report.network_failure is not None and report.network_failure["equation"] == "(1)"


def test_kinks_are_reported_with_both_slopes_never_failed():
    report = check_activation(bank.RIGHT_CLIP, **QUICK)
    assert report.verdict == "verified"
    assert [k.z for k in report.kinks] == [-2.0, 3.0]
    low, high = report.kinks
    assert (low.left, low.right, low.autodiff) == (0.0, 1.0, 0.5)
    assert (high.left, high.right, high.autodiff) == (1.0, 0.0, 0.5)


def test_a_hand_value_outside_the_slopes_at_a_kink_is_a_warning_but_nan_there_is_wrong():
    odd = bank.RIGHT_ABS.__class__("abs_odd", bank.RIGHT_ABS.forward, lambda z, xp: xp.where(z == 0, 3.0, xp.sign(z)))
    report = check_activation(odd, **QUICK)
    assert report.verdict == "verified" and "outside both one-sided slopes" in report.message()
    nan = bank.RIGHT_ABS.__class__(
        "abs_nan", bank.RIGHT_ABS.forward, lambda z, xp: xp.where(z == 0, np.nan, xp.sign(z))
    )
    report = check_activation(nan, **QUICK)  # negative control: not finite at the kink
    assert report.verdict == "wrong" and report.counterexample.z == 0.0
    # and a value outside the slopes just beside the kink is a mistake, not a convention
    beside = bank.RIGHT_ABS.__class__(
        "abs_beside", bank.RIGHT_ABS.forward, lambda z, xp: xp.where((z > 0) & (z < 1e-3), 3.0, xp.sign(z))
    )
    assert check_activation(beside, **QUICK).verdict == "wrong"


def test_same_seed_same_verdict_and_counterexample():
    first = check_activation(bank.WRONG_RELATIVE_1E6, examples=20, seed=7)
    again = check_activation(bank.WRONG_RELATIVE_1E6, examples=20, seed=7)
    assert first.counterexample == again.counterexample


def test_float32_check_of_a_catalogue_entry():
    assert check_activation(CATALOGUE["gelu"], examples=10, dtype="float32").verdict == "verified"


def test_pytest_helper_fails_with_the_report():
    assert_activation_correct(bank.RIGHT_SMOOTH, **QUICK)
    with pytest.raises(pytest.fail.Exception, match="WRONG DERIVATIVE"):
        assert_activation_correct(bank.WRONG_MISSING_CHAIN_FACTOR, **QUICK)


# --- the command line ---------------------------------------------------------------------


def run_cli(*args):
    script = shutil.which("backprop-check")
    command = [script] if script else [sys.executable, "-m", "property_tests.command.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600)


def test_cli_exit_0_for_a_right_activation_from_a_file(tmp_path, capsys):
    path = tmp_path / "mine.py"
    path.write_text(
        textwrap.dedent("""
        from manual import Activation
        MINE = Activation("cube_root_ish", lambda z, xp: z / (1 + z * z) ** 0.5,
                          lambda z, xp: (1 + z * z) ** -1.5)
    """)
    )
    assert main(["activation", f"{path}:MINE", "--examples", "20", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "verified" and report["points"] > 6000 and report["networks"] == 20


def test_cli_exit_1_with_counterexample_for_a_wrong_one(capsys):
    assert (
        main(["activation", "property_tests.banks.activation_bank:WRONG_MISSING_CHAIN_FACTOR", "--examples", "20"]) == 1
    )
    out = capsys.readouterr().out
    assert "WRONG DERIVATIVE at z = " in out and "central finite difference" in out
    assert "IN A NETWORK the hand result first leaves autodiff's at equation (1)" in out


BROKEN_FILES = {
    "syntax.py": ("def f(:\n", "does not import: a syntax error"),
    "imports.py": ("import no_such_package_anywhere\n", "does not import: ModuleNotFoundError"),
    "empty.py": ("X = 1\n", "has no attribute 'MINE'"),
    "wrongtype.py": ("MINE = 42\n", "is a int, not an Activation"),
}


@pytest.mark.parametrize("filename", sorted(BROKEN_FILES))
def test_unusable_files_exit_2_with_one_sentence(tmp_path, capsys, filename):
    source, phrase = BROKEN_FILES[filename]
    path = tmp_path / filename
    path.write_text(source)
    assert main(["activation", f"{path}:MINE"]) == 2
    err = capsys.readouterr().err
    assert phrase in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["activation", "no/such/file.py:MINE"], "does not exist"),
        (["activation", "no_such_module_xyz:MINE"], "no module named"),
        (["activation", "just_a_name"], "TARGET must look like"),
        (["activation", "property_tests.banks.activation_bank:NOT_AN_ACTIVATION"], "not an Activation"),
        (
            ["activation", "property_tests.banks.activation_bank:UNUSABLE_RAISES"],
            "the derivative raises AttributeError",
        ),
        (["activation", "property_tests.banks.activation_bank:UNUSABLE_SHAPE"], "returns shape ()"),
        (["activation", "property_tests.banks.activation_bank:RIGHT_ABS", "--examples", "-5"], "must be at least 1"),
        (["activation", "property_tests.banks.activation_bank:RIGHT_ABS", "--dtype", "float16"], "invalid choice"),
    ],
)
def test_unusable_input_exits_2_with_one_sentence(capsys, args, phrase):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert phrase in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_unusable_input_through_the_real_script():
    done = run_cli("activation", "property_tests.banks.activation_bank:UNUSABLE_SHAPE")
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr


def test_api_refuses_what_is_not_an_activation():
    with pytest.raises(UsageError):
        check_activation(bank.NOT_AN_ACTIVATION)


def test_an_undeclared_kink_does_not_widen_the_tolerance():
    # A jump of g′ that nobody declared is a step, not rounding noise: were it counted as noise,
    # every tolerance would be as wide as the jump and this 1e-3 mistake would pass pointwise.
    from manual import Activation

    wrong = Activation(
        "shifted_relu_wrong", lambda z, xp: xp.where(z > 1, z - 1, 0), lambda z, xp: (z > 1).astype(z.dtype) * 1.001
    )
    ce = check_activation(wrong, **QUICK).counterexample
    assert ce is not None and ce.z > 1 and ce.tolerance < 1e-12


def test_steps_are_told_from_noise():
    from property_tests.library.tolerances import is_step

    ulp = np.spacing(1.0)
    rows = np.array(
        [
            [1, 1, 1, 1, 2, 2, 2, 2, 2],  # a jump
            [0, 0, 0, 0, 0.25, 0.5, 0.5, 0.5, 0.5],  # a jump with the mean at the kink
            [1, 1, 1, 1, 1, 1, 1, 1, 1.001],  # a jump next to the row's end
            [1, 2, 1, 2, 1, 2, 1, 2, 1],  # scatter
            [0, 1, 0, 0, 0, 0, 0, 0, 0],  # an outlier in a flat row
            [1, 1, 1, 1, 1 + ulp, 1 + ulp, 1 + ulp, 1 + ulp, 1 + ulp],  # a one-ulp staircase
            [1 + 300 * ulp, 1, 1, 1, 1, 1, 1, 1, 1],  # rounding noise at the row's end
            [3, 3, 3, 3, 3, 3, 3, 3, 3],
        ],
        float,
    )  # flat
    assert is_step(rows).tolist() == [True, True, True, False, False, False, False, False]


def test_rounding_in_a_network_is_not_called_wrong_but_strict_fails_it():
    lenient = check_activation(bank.RIGHT_REMOVABLE_SINGULARITY, examples=20)
    assert lenient.verdict == "verified" and lenient.networks_imprecise > 0, lenient.message()
    assert "rounding, not a wrong derivative" in lenient.message()
    strict = check_activation(bank.RIGHT_REMOVABLE_SINGULARITY, examples=20, strict=True)
    assert strict.verdict == "imprecise"


def test_rounding_excuse_is_refused_to_a_wrong_or_batch_dependent_derivative():
    from manual import init_network
    from property_tests.checkers.activation_check import rounding_explains
    from property_tests.library.strategies import Case
    from reference import autodiff

    rng = np.random.default_rng(3)

    def case_of(g):
        net = init_network((3, 4, 2), [g, g], rng, scale=2.0)
        x = rng.standard_normal((5, 3))
        return Case(net, x, rng.standard_normal((5, 2)))

    right = bank.RIGHT_REMOVABLE_SINGULARITY
    case = case_of(right)
    assert rounding_explains(right, np.dtype(np.float64))(case, autodiff(case.network, case.x, case.y))
    for wrong in (bank.WRONG_RELATIVE_1E6, bank.WRONG_ON_ARRAYS):  # negative controls
        case = case_of(wrong)
        explain = rounding_explains(wrong, np.dtype(np.float64))
        assert explain(case, autodiff(case.network, case.x, case.y)) is None, wrong.name


def test_richardson_steps_past_a_kink_near_the_point_but_not_one_at_it():
    from property_tests.checkers import second_look

    def clip(z, xp):
        return xp.clip(z, -1.0, 2**0.5)

    near = second_look.richardson(clip, np.array([2**0.5 - 1.4e-5]))
    assert np.isfinite(near.error[0]) and abs(near.value[0] - 1) <= near.error[0] + 1e-9
    at = second_look.richardson(clip, np.array([-1.0]))  # negative control: a kink at z stays one
    assert not np.isfinite(at.error[0])


@pytest.mark.parametrize(
    "g", [bank.RIGHT_TRIPLE_EXPONENTIAL, bank.RIGHT_DOUBLE_EXPONENTIAL_QUOTIENT], ids=lambda g: g.name
)
def test_networks_retried_for_their_bounds_still_catch_a_1e_6_mistake(g):
    # The networks whose bounds overflow are tried again with smaller weights, not excused:
    # the same activations off by a relative 1e-6 are WRONG.
    from property_tests.banks.broken import off_by

    report = check_activation(off_by(g, 1e-6), **QUICK)
    assert report.verdict == "wrong", report.message()
    self_consistent(report)
