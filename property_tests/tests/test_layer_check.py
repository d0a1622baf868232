"""``backprop-check layer`` and ``check_layer``: the bank's right layers are all verified, its
wrong ones are all caught with a self-consistent counterexample in the smallest failing case,
and every verdict and every kind of unusable input has its exit code (2: one sentence, no
traceback)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from property_tests.banks import layer_bank as bank
from property_tests.checkers import layer_check
from property_tests.checkers.layer_check import assert_layer_correct, check_layer
from property_tests.checkers.loading import UsageError
from property_tests.command.cli import main
from property_tests.tests.sweeps import first_then_sweep
from property_tests.tests.test_activation_check import cli_without_a_warning, finite_figures, target, without_a_warning

QUICK = dict(examples=10)


def self_consistent(ce) -> None:
    """A counterexample's hand and autodiff values differ by more than its finite tolerance."""
    assert ce is not None
    assert np.isfinite(ce.tolerance) and ce.tolerance >= 0
    if ce.difference is None:
        assert not np.isfinite(ce.hand)
    else:
        assert ce.difference == abs(ce.hand - ce.autodiff)
        assert ce.difference > ce.tolerance
        assert ce.relative_error > ce.relative_tolerance


@pytest.mark.parametrize("layer", first_then_sweep(bank.RIGHT), ids=lambda layer: type(layer).__name__)
def test_right_layers_are_verified(layer):
    report = check_layer(layer, **QUICK)
    assert report.verdict == "verified", report.message()
    assert report.max_error <= report.tolerance
    assert report.counterexample is None and report.imprecise is None
    finite_figures(report.as_dict())
    json.dumps(report.as_dict(), allow_nan=False)


@pytest.mark.parametrize("layer", [bank.FusedLayerNorm(), bank.TemperedLogSoftmax()], ids=lambda g: type(g).__name__)
def test_right_layers_are_verified_in_float32(layer):
    report = check_layer(layer, examples=6, dtype="float32")
    assert report.verdict == "verified", report.message()
    assert report.tolerance < 1e-4  # float32's bound, not a blanket one


@pytest.mark.parametrize("layer", first_then_sweep(bank.WRONG), ids=lambda layer: type(layer).__name__)
def test_wrong_layers_are_caught(layer):
    report = check_layer(layer, **QUICK)
    assert report.verdict == "wrong", report.message()
    self_consistent(report.counterexample)
    assert "WRONG" in report.message()
    finite_figures(report.as_dict())
    json.dumps(report.as_dict(), allow_nan=False)


@pytest.mark.parametrize(
    "case",
    first_then_sweep([(layer, dtype) for dtype in ("float64", "float32") for layer in bank.FAR_OFF]),
    ids=lambda case: f"{type(case[0]).__name__}-{case[1]}",
)
def test_a_backward_pass_off_beyond_any_tolerance_is_wrong_without_a_warning(case):
    # An error of 1e300 over a bound of 1e-15 ranks as ∞; it once overflowed in the ratio that
    # ranks the suspects, a RuntimeWarning of the checker's own (layer_check._Judged.ratio).
    layer, dtype = case
    report = without_a_warning(check_layer, layer, examples=6, dtype=dtype)
    assert report.verdict == "wrong", report.message()
    self_consistent(report.counterexample)
    finite_figures(report.as_dict())


@pytest.mark.parametrize("layer", first_then_sweep(bank.FAR_OFF), ids=lambda layer: type(layer).__name__)
def test_cli_a_backward_pass_off_beyond_any_tolerance_is_exit_1_without_a_warning(capsys, layer):
    code, report = cli_without_a_warning(capsys, "layer", target(bank, layer), "--examples", "6")
    assert code == 1 and report["verdict"] == "wrong" and report["counterexample"] is not None
    finite_figures(report)


def test_the_consistency_check_can_fail():
    # Negative control of self_consistent: a counterexample within its tolerance is rejected.
    report = check_layer(bank.ScaledTanhNotAveraged(), examples=4)
    ce = report.counterexample
    from dataclasses import replace

    with pytest.raises(AssertionError):
        self_consistent(replace(ce, tolerance=2 * ce.difference, relative_tolerance=2 * ce.relative_error))
    with pytest.raises(AssertionError):
        finite_figures({"max_error": float("nan")})


def test_the_counterexample_is_the_smallest_failing_case():
    # Not averaging over the batch is right for one example: the smallest failing batch is 2.
    ce = check_layer(bank.ScaledTanhNotAveraged(), **QUICK).counterexample
    assert (ce.batch, ce.what) == (2, "parameter_gradients['scale']")
    assert ce.hand == pytest.approx(2 * ce.autodiff)
    # A batch statistic ignored in the backward pass is wrong already for one example (z = 0 there).
    ce = check_layer(bank.BatchCentreNoBatchPath(), **QUICK).counterexample
    assert (ce.batch, ce.in_shape, ce.what, ce.autodiff) == (1, (4,), "input_delta", 0.0)
    # Wrong only for negative inputs: the element named has a negative input.
    ce = check_layer(bank.ScaledTanhWrongForNegative(), **QUICK).counterexample
    assert np.asarray(ce.a_prev)[ce.index] < 0
    assert ce.finite_difference == pytest.approx(ce.autodiff, rel=1e-9)


def test_off_by_a_millionth_is_caught_in_float64_with_room_to_spare():
    ce = check_layer(bank.LogSoftmaxOffByMillionth(), **QUICK).counterexample
    assert ce.relative_error == pytest.approx(1e-6, rel=0.7)
    assert ce.relative_tolerance < 1e-10


def test_same_seed_same_verdict():
    first = check_layer(bank.GatedLayerSignFlipped(), examples=6, seed=3).as_dict()
    again = check_layer(bank.GatedLayerSignFlipped(), examples=6, seed=3).as_dict()
    for report in (first, again):
        report.pop("seconds")
    assert first == again


def test_imprecise_is_a_warning_unless_strict():
    report = check_layer(bank.IMPRECISE, examples=6, dtype="float32")
    assert report.verdict == "verified" and report.imprecise is not None, report.message()
    assert "warning" in report.message() and "--strict" in report.message()
    ip = report.imprecise
    assert ip.difference > ip.tolerance and abs(ip.high_precision - ip.autodiff) <= ip.tolerance
    strict = check_layer(bank.IMPRECISE, examples=6, dtype="float32", strict=True)
    assert strict.verdict == "imprecise"


def test_inconclusive_when_the_forward_is_rarely_finite():
    report = check_layer(bank.INCONCLUSIVE, **QUICK)
    assert report.verdict == "inconclusive", report.message()
    assert report.skipped > report.cases / 2 and report.skipped_example
    finite_figures(report.as_dict())


def test_layers_of_the_project_are_verified():
    from manual.layers import Dense
    from manual.norms import BatchNorm, RMSNorm

    for layer in (Dense(3), RMSNorm(), BatchNorm()):  # no xp in their forward: differentiated via reference.layers
        assert check_layer(layer, examples=5).verdict == "verified"


def test_a_users_subclass_of_a_project_layer_meets_its_own_kinds_forward():
    # BatchNorm derives from LayerNorm: a subclass of it once met LayerNorm's forward (per
    # example, not per unit), and a right backward pass was called wrong.
    from dataclasses import dataclass

    from manual.norms import BatchNorm

    @dataclass(frozen=True)
    class GraphBatchNorm(BatchNorm):
        """The step-by-step graph form as the layer's own backward pass."""

        def input_delta(self, delta, a_prev, params):
            return self.input_delta_graph(delta, a_prev, params)

    import jax

    from property_tests.checkers.layer_check import _Layer

    layer = GraphBatchNorm()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    params = {name: v + rng.standard_normal(v.shape) for name, v in layer.init(rng, (4,)).items()}
    with jax.enable_x64(True):
        assert np.allclose(np.asarray(_Layer(layer).jax_forward(a, params)), layer.forward(a, params), rtol=1e-12)
    assert check_layer(layer, examples=5).verdict == "verified"


def test_assert_layer_correct():
    report = assert_layer_correct(bank.RowMix(), examples=5)
    assert report.verdict == "verified"
    with pytest.raises(AssertionError, match="WRONG"):
        assert_layer_correct(bank.RowMixTransposedGradient(), examples=5)


# --- the command ---------------------------------------------------------------------------------

EXAMPLE = "examples/my_layer.py:ScaledTanh"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(["layer", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_exit_codes_of_the_verdicts(capsys, monkeypatch):
    import os
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    assert os.path.exists(EXAMPLE.split(":")[0])
    code, out, _ = run(capsys, EXAMPLE, "--examples", "6")
    assert code == 0 and "VERIFIED" in out
    code, out, _ = run(capsys, "property_tests.banks.layer_bank:LogSoftmaxOffByMillionth", "--examples", "4")
    assert code == 1 and "WRONG input_delta" in out
    code, out, _ = run(capsys, "property_tests.banks.layer_bank:IMPRECISE", "--examples", "4", "--dtype", "float32")
    assert code == 0 and "warning" in out
    code, out, _ = run(
        capsys, "property_tests.banks.layer_bank:IMPRECISE", "--examples", "4", "--dtype", "float32", "--strict"
    )
    assert code == 1 and "IMPRECISE" in out
    code, out, _ = run(capsys, "property_tests.banks.layer_bank:INCONCLUSIVE", "--examples", "6")
    assert code == 3 and "INCONCLUSIVE" in out


def test_json_report(capsys):
    code, out, _ = run(capsys, "property_tests.banks.layer_bank:ScaledTanhNotAveraged", "--examples", "4", "--json")
    report = json.loads(out)
    assert code == 1 and report["verdict"] == "wrong"
    assert {
        "name",
        "dtype",
        "seed",
        "verdict",
        "shapes",
        "batch_sizes",
        "cases",
        "skipped",
        "max_error",
        "tolerance",
        "counterexample",
        "imprecise",
        "networks",
        "network_max_error",
        "network_tolerance",
        "inconclusive",
        "strict",
        "seconds",
    } <= set(report)
    ce = report["counterexample"]
    assert {
        "what",
        "batch",
        "in_shape",
        "index",
        "hand",
        "autodiff",
        "difference",
        "tolerance",
        "relative_error",
        "relative_tolerance",
        "a_prev",
        "delta",
        "params",
    } <= set(ce)
    assert ce["difference"] > ce["tolerance"]


def test_internal_error_is_exit_4(capsys, monkeypatch):
    # A NaN reaching a reported tolerance is the checker's bug, never a verdict.
    monkeypatch.setattr(layer_check, "_unit", lambda *args: float("nan"))
    code, _, err = run(capsys, "property_tests.banks.layer_bank:ScaledTanhWrongForNegative", "--examples", "2")
    assert code == 4 and "internal error" in err


BODY = """
import numpy as np

class Layer:
    def out_shape(self, in_shape):
        return tuple(in_shape)
    def init(self, rng, in_shape, dtype=np.float64):
        return {{"w": np.ones(in_shape, dtype)}}
    def forward(self, a_prev, params, xp=np):
        return {forward}
    def input_delta(self, delta, a_prev, params):
        return {input_delta}
    def parameter_gradients(self, delta, a_prev, params):
        return {{"w": (delta * a_prev).mean(axis=0)}}
"""

BAD = {
    "wrong output shape": dict(forward="params['w'] * a_prev[:, :-1]"),
    "NaN at ordinary inputs": dict(forward="params['w'] * xp.log(a_prev)"),
    "input_delta shape": dict(input_delta="delta[:, :2]"),
    "not traceable": dict(forward="params['w'] * np.asarray(a_prev)"),
    "raises": dict(input_delta="delta @ params['missing']"),
    "changes delta in place": dict(input_delta="delta.__imul__(params['w'])"),
}


@pytest.mark.parametrize("name", BAD)
def test_unusable_layers_are_one_sentence(tmp_path, capsys, name):
    parts = dict(forward="params['w'] * a_prev", input_delta="delta * params['w']") | BAD[name]
    path = tmp_path / "user_layer.py"
    path.write_text(BODY.format(**parts))
    code, out, err = run(capsys, f"{path}:Layer", "--examples", "2")
    assert code == 2, out
    assert err.startswith("backprop-check: ") and err.count("\n") == 1 and "Traceback" not in err, err


def test_unusable_targets_are_one_sentence(tmp_path, capsys):
    missing = tmp_path / "nowhere.py"
    code, _, err = run(capsys, f"{missing}:Layer")
    assert code == 2 and err == f"backprop-check: {missing} does not exist\n"
    path = tmp_path / "not_a_layer.py"
    path.write_text(
        textwrap.dedent("""
        def layer(a):
            return a

        class NeedsArguments:
            def __init__(self, units):
                self.units = units
    """)
    )
    for name, words in (("layer", "not a layer"), ("NeedsArguments", "without arguments"), ("absent", "no attribute")):
        code, _, err = run(capsys, f"{path}:{name}")
        assert code == 2 and words in err and err.count("\n") == 1, err
    no_xp = tmp_path / "no_xp.py"
    no_xp.write_text(BODY.format(forward="params['w'] * a_prev", input_delta="delta").replace(", xp=np)", ")"))
    code, _, err = run(capsys, f"{no_xp}:Layer")
    assert code == 2 and "xp=np" in err


def test_declared_shapes_and_batch_sizes_are_checked():
    class Declared(bank.ScaledTanh):
        example_shapes = ((3,),)
        batch_sizes = (2, 3)

    report = check_layer(Declared(), examples=4)
    assert report.shapes == [(3,)] and report.batch_sizes == [2, 3] and report.verdict == "verified"

    class BadShapes(bank.ScaledTanh):
        example_shapes = ((0,),)

    with pytest.raises(UsageError, match="positive whole numbers"):
        check_layer(BadShapes(), examples=2)
