"""The equations for activations with trainable parameters and for maps that mix units, in
networks that mix every kind, each property with its negative control."""

import pytest
from hypothesis import given

from manual import PARAMETRIC, SOFTMAX, VECTOR_ACTIVATIONS
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import properties
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
