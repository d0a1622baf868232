"""The equations for activations with trainable parameters and for maps that mix units, in
networks that mix every kind, each property with its negative control."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from manual import PARAMETRIC, SOFTMAX, VECTOR_ACTIVATIONS
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import compare, profiles, properties
from property_tests.library import tolerances as tol
from property_tests.library.strategies import mixed_cases

GLU_FAMILY = [VECTOR_ACTIVATIONS[name] for name in ("glu", "reglu", "geglu", "swiglu")]
MAXOUT = [VECTOR_ACTIVATIONS["maxout2"], VECTOR_ACTIVATIONS["maxout3"]]


@given(mixed_cases())
def test_equation_1_with_every_kind(case):
    properties.equation_1_holds(case)


@given(mixed_cases(max_depth=4))
def test_equation_2_general_form_with_every_kind(case):
    properties.equation_2_holds(case)


@given(mixed_cases())
def test_parameter_gradients(case):
    properties.parameter_gradients_hold(case)


@given(mixed_cases(max_depth=3))
def test_equation_3_end_to_end_with_every_kind(case):
    properties.equation_3_holds(case)


@given(mixed_cases(max_depth=3, ties=True, kinds=MAXOUT, elementwise=["tanh"]))
def test_maxout_ties_split_the_gradient(case):
    properties.equation_2_holds(case)
    properties.equation_1_holds(case)


@pytest.mark.parametrize("name", sorted(PARAMETRIC))
def test_parameter_partial_off_by_1e_6_is_rejected(name):
    g = PARAMETRIC[name]
    off = broken.parameter_partial_off_by(g, g.parameters[-1].name, 1e-6)
    assert rejects(properties.parameter_gradients_hold, mixed_cases(kinds=[off], elementwise=None, max_depth=2))


def test_per_unit_parameter_summed_over_the_wrong_axis_is_rejected():
    per_unit = [PARAMETRIC[name] for name in ("prelu", "snake", "acon_c")]
    assert rejects(
        properties.parameter_gradients_hold,
        mixed_cases(kinds=per_unit, elementwise=None),
        equations=broken.PARAMETERS_WRONG_AXIS,
    )
    assert rejects(
        properties.parameter_gradients_hold,
        mixed_cases(kinds=per_unit, elementwise=None),
        equations=broken.PER_UNIT_AS_SHARED,
    )


@pytest.mark.parametrize("g", GLU_FAMILY, ids=lambda g: g.name)
def test_glu_halves_swapped_is_rejected(g):
    assert rejects(properties.equation_2_holds, mixed_cases(kinds=[broken.halves_swapped(g)], elementwise=["tanh"]))


@pytest.mark.parametrize("g", MAXOUT, ids=lambda g: g.name)
def test_maxout_one_hot_at_ties_is_rejected(g):
    wrong = broken.one_hot_at_ties(g)
    assert rejects(properties.equation_2_holds, mixed_cases(kinds=[wrong], elementwise=["tanh"], ties=True))


def test_hidden_softmax_with_its_jacobian_diagonal_only_is_rejected():
    assert rejects(
        properties.equation_2_holds,
        mixed_cases(kinds=[SOFTMAX], elementwise=["tanh"]),
        equations=broken.HIDDEN_JACOBIAN_DIAGONAL,
    )


@profiles.fewer(2 / 5, 4)  # the plain oracle compiles a program per architecture (test_reference)
@given(mixed_cases())
def test_fast_reference_equals_plain_with_every_kind(case):
    properties.fast_reference_equals_plain(case)


def test_fast_reference_with_a_misplaced_glu_half_is_rejected():
    from reference import fast

    def misplaced(network, x, y):  # a GLU's halves laid out contiguously: the gate reads padding
        saved = fast.placement
        fast.placement = lambda g, units, width: __import__("numpy").arange(units)
        try:
            return fast.autodiff(network, x, y)
        finally:
            fast.placement = saved

    glu = [VECTOR_ACTIVATIONS["glu"], VECTOR_ACTIVATIONS["swiglu"]]
    assert rejects(
        properties.fast_reference_equals_plain, mixed_cases(kinds=glu, elementwise=["tanh"]), fast_autodiff=misplaced
    )


SMOOTH_MAPS = [g for g in VECTOR_ACTIVATIONS.values() if g.mixes != "groups"]
"""The maps whose Jacobian moves smoothly with z (maxout's jumps at ties are ``in_doubt``'s)."""


@st.composite
def jacobian_moves(draw):
    """A map, rows z away from its kinks (the first half of each row scaled down to as little as 1e-12, where a
    GLU's ∂a/∂s = u·h′(s) is tiny but moves with u at h′'s size), a cotangent v and a small
    move of z."""
    g = draw(st.sampled_from(SMOOTH_MAPS))
    units = g.group * draw(st.integers(1, 3))
    elements = st.floats(-8, 8, allow_subnormal=False)
    z = draw(arrays(np.float64, (2, units), elements=elements))
    z[:, : units // 2] *= 10.0 ** draw(st.integers(-12, 0))
    v = draw(arrays(np.float64, (2, g.width(units)), elements=st.floats(-2, 2, allow_subnormal=False)))
    dz = draw(arrays(np.float64, (2, units), elements=st.floats(-1, 1, allow_subnormal=False))) * 1e-9
    kinked = z[:, units // 2 :] if g.mixes == "halves" else z  # a GLU's kink is in its gate half
    assume(not any(np.any(np.abs(kinked - kink) <= 2e-9) for kink in g.kinks))  # a jump: ``in_doubt``'s
    return g, z, v, dz


def assert_sensitivity_bounds_the_move(move, sizing=compare.mixed_sensitivity) -> None:
    """An error dz in z moves J_g(z)ᵀv by at most SECOND_DERIVATIVE_RATIO · sizing · max|dz|
    of the row (what ``error_bounds`` allows for z's forward error at a map that mixes units),
    plus both evaluations' own rounding."""
    g, z, v, dz = move
    moved = np.abs(g.vjp(z + dz, v, np) - g.vjp(z, v, np))
    terms = compare.mixed_terms(g, z, np.abs(v)) + compare.mixed_terms(g, z + dz, np.abs(v))
    allowed = tol.SECOND_DERIVATIVE_RATIO * sizing(g, z, np.abs(v)) * np.max(np.abs(dz), axis=-1, keepdims=True)
    allowed = allowed + 2 * compare.mixed_rounding(z, z.shape[-1]) * np.finfo(np.float64).eps * terms
    assert np.all(moved <= allowed), f"{g.name}: z moved by {np.max(np.abs(dz)):.1e} moves Jᵀv by {np.max(moved):.2e}"


@given(jacobian_moves())
def test_the_bound_of_a_mixing_map_covers_an_error_in_z(move):
    assert_sensitivity_bounds_the_move(move)


def test_sizing_the_move_by_the_maps_own_terms_is_rejected():
    """Negative control: the terms of J_g(z)ᵀv alone, which vanish with a GLU's value half."""
    assert rejects(assert_sensitivity_bounds_the_move, jacobian_moves(), sizing=compare.mixed_terms)
