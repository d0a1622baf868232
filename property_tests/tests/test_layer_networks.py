"""Whole convolutional networks (convolution, pooling, flatten, dense) by hand against
``jax.grad`` (``reference.layers``), equation by equation and end to end, in float64 and
float32; each property beside the classic mistakes it must reject (``layer_controls``).

Tolerances: the dense suite's running rounding-error analysis carried through each layer
(``layer_compare``). The oracle is ``layer_compare.autodiff``: ``reference.conv_fast``'s one
program for every network its template holds (``test_conv_fast`` proves it equal to
``reference.layers``), else ``reference.layers``, which compiles a program for each
architecture (about 0.5 s): the properties whose networks may fall outside the template (tied
inputs with any activation) take a third of the profile's examples.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from manual.layers import delta_through
from property_tests.banks.controls import rejects
from property_tests.banks.layer_controls import CONTROLS, scaled, unchanged, with_mistake
from property_tests.library import layer_compare as lc
from property_tests.library import profiles
from property_tests.library.layer_strategies import LayerCase, describe_kinds, layer_cases
from property_tests.tests.sweeps import SWEEP, first_then_sweep

BUDGET = profiles.fewer(1 / 3, 3)
"""A third of the profile's examples, where each may compile the reference for its architecture."""


def _reference(case: LayerCase):
    return lc.autodiff(case)


def _fail_on(comparisons, case: LayerCase) -> None:
    bad = lc.failures(comparisons)
    assert not bad, "; ".join(c.describe() for c in bad[:3]) + f"; {case.describe()}"


def each_equation_matches_autodiff(case: LayerCase, backward=delta_through) -> None:
    """(1), (2) at every layer and (3) at every layer with parameters, each on autodiff's own
    inputs, against autodiff's outputs."""
    _fail_on(lc.equation_by_equation(case, _reference(case), backward), case)


def whole_network_matches_autodiff(case: LayerCase) -> None:
    """Forward, (1), (2), (3) by hand in the case's dtype against ``jax.grad`` in float64:
    every δ⁽ᵏ⁾ and every parameter's gradient."""
    ref = _reference(case)
    z, a, grads = lc.manual_pass(case)
    assume(lc.in_doubt(case, ref, z, a) is None)
    _fail_on(lc.end_to_end(case, ref, lc.layer_bounds(case, ref), grads), case)


@given(layer_cases())
def test_each_equation_matches_autodiff(case):
    each_equation_matches_autodiff(case)


@BUDGET
@given(layer_cases(ties=True, activations=None))
def test_each_equation_matches_autodiff_with_tied_pooling_inputs(case):
    each_equation_matches_autodiff(case)


@pytest.mark.parametrize("dtype", [np.float64, pytest.param(np.float32, marks=SWEEP)], ids=["float64", "float32"])
@given(data=layer_cases(dtype=np.float64))
def test_whole_network_matches_autodiff(dtype, data):
    whole_network_matches_autodiff(data.astype(dtype))


def _without_g_prime(layer, delta_next, a_k, params_next, z_k, g_k):
    return layer.input_delta(delta_next, a_k, params_next)


def test_each_equation_rejects_a_forgotten_g_prime():
    assert rejects(each_equation_matches_autodiff, layer_cases(), backward=_without_g_prime)


@pytest.mark.parametrize("mistake", list(CONTROLS))
def test_each_equation_rejects_the_classic_mistakes(mistake):
    kind, wrong = CONTROLS[mistake]
    assert rejects(each_equation_matches_autodiff, with_mistake(layer_cases(ties=kind == "max_pool"), kind, wrong))


@pytest.mark.parametrize(
    "kind",
    first_then_sweep(list(dict.fromkeys(kind for kind, _ in CONTROLS.values())), quick=0),
    ids=lambda kind: getattr(kind, "__name__", kind),
)
@BUDGET
@given(data=st.data())
def test_a_control_is_rejected_for_its_mistake_not_for_being_a_subclass(kind, data):
    # Each control above is a subclass of the kind it replaces; one that changes nothing passes
    # (sweeps: test_norm_layers runs BatchNorm's, the kind whose subclasses once met another's oracle).
    case = data.draw(with_mistake(layer_cases(ties=kind == "max_pool"), kind, unchanged(kind)))
    each_equation_matches_autodiff(case)


@pytest.mark.parametrize("factor", [np.nan, 1e300], ids=["nan", "1e300"])
@pytest.mark.parametrize("kind", first_then_sweep(["conv2d", "dense", "max_pool", "avg_pool", "flatten"], quick=1))
def test_a_derivation_broken_beyond_any_tolerance_is_a_mismatch(kind, factor):
    # Not an error of the checker: the linear kinds' bounds are their registered class's
    # operations on sizes (were they the layer's own, a NaN here raised InternalError, "a bug of
    # backprop-check"); and not a warning: an error 1e300 times its bound ranks as ∞.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cases = with_mistake(layer_cases(ties=kind == "max_pool"), kind, scaled(kind, factor))
        assert rejects(each_equation_matches_autodiff, cases)


@pytest.mark.parametrize(
    "mistake",
    [
        "kernel not rotated",
        "max pooling to every tied maximum",
        "average pooling off by 1e-6",
        "convolution's (2) off by 1e-6",
    ],
)
def test_whole_network_rejects_the_classic_mistakes(mistake):
    kind, wrong = CONTROLS[mistake]
    assert rejects(whole_network_matches_autodiff, with_mistake(layer_cases(ties=kind == "max_pool"), kind, wrong))


@settings(max_examples=60)
@given(layer_cases())
def test_the_strategy_draws_every_layer_kind(case):
    """Every network has a convolution, a flatten and a dense output, in that order."""
    kinds = describe_kinds(case.network)
    assert kinds[0] == "conv2d" and kinds[-1] == "dense" and "flatten" in kinds
    assert kinds.index("flatten") > max(i for i, k in enumerate(kinds) if k == "conv2d")


def _scaled_input(cases, scale: float, dtype):
    """The cases with every input multiplied by ``scale`` (the first layer's z follows it), in ``dtype``."""
    return cases.map(lambda case: LayerCase(case.network, case.x * scale, case.y, case.loss).astype(dtype))


@pytest.mark.parametrize("scale", [1e-8, 1e6], ids=["tiny", "huge"])
@pytest.mark.parametrize("dtype", [np.float64, pytest.param(np.float32, marks=SWEEP)], ids=["float64", "float32"])
@profiles.fewer(1 / 6, 2)
@given(data=st.data())
def test_inputs_of_extreme_scale_raise_no_false_alarm(scale, dtype, data):
    case = data.draw(_scaled_input(layer_cases(), scale, dtype))
    each_equation_matches_autodiff(case)
    whole_network_matches_autodiff(case)


def test_inputs_of_tiny_scale_still_reject_a_kernel_not_rotated():
    kind, wrong = CONTROLS["kernel not rotated"]
    assert rejects(
        whole_network_matches_autodiff, _scaled_input(with_mistake(layer_cases(), kind, wrong), 1e-8, np.float64)
    )
