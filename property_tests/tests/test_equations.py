"""The three equations against autodiff, each with its negative control."""

from typing import TypedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manual import CATALOGUE
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import properties
from property_tests.library.strategies import cases

SMOOTH = ["tanh", "sigmoid", "softplus", "gelu"]
"""Activations for which g′(a) differs from g′(z), so the g′-at-a mistake shows."""


@given(cases())
def test_equation_1_output_delta(case):
    properties.equation_1_holds(case)


def test_equation_1_rejects_g_prime_at_a():
    assert rejects(properties.equation_1_holds, cases(activations=SMOOTH), equations=broken.G_PRIME_AT_A)


@given(cases(min_depth=2))
def test_equation_2_hidden_deltas(case):
    properties.equation_2_holds(case)


def test_equation_2_rejects_g_prime_at_a():
    assert rejects(properties.equation_2_holds, cases(min_depth=2, activations=SMOOTH), equations=broken.G_PRIME_AT_A)


@pytest.mark.parametrize("width", [3, 5])
def test_equation_2_rejects_missing_transpose(width):
    # Square layers, so Θ and Θᵀ both fit and only the values can tell them apart.
    square = cases(min_depth=2, min_width=width, max_width=width)
    assert rejects(properties.equation_2_holds, square, equations=broken.MISSING_TRANSPOSE)


@given(cases())
def test_equation_3_parameter_gradients(case):
    properties.equation_3_holds(case)


def test_equation_3_rejects_bias_summed():
    assert rejects(properties.equation_3_holds, cases(min_examples=2), equations=broken.BIAS_SUMMED)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "gelu_tanh", "elu"])
def test_equation_3_rejects_derivative_off_by_1e_6(name):
    off = broken.off_by(CATALOGUE[name], 1e-6)
    assert rejects(properties.equation_3_holds, cases(activations=[off], max_depth=3))


@given(cases(max_depth=4))
def test_float32_manual_matches_float64_reference(case):
    properties.float32_matches_float64_reference(case)


def test_float32_rejects_g_prime_at_a():
    assert rejects(
        properties.float32_matches_float64_reference, cases(activations=SMOOTH), equations=broken.G_PRIME_AT_A
    )


@given(cases(max_examples=8))
def test_averaging_constraint(case):
    properties.averaging_constraint_holds(case)


def test_averaging_constraint_rejects_bias_summed():
    assert rejects(
        properties.averaging_constraint_holds, cases(min_examples=2, max_examples=8), equations=broken.BIAS_SUMMED
    )


@st.composite
def case_and_permutation(draw, **kwargs):
    case = draw(cases(**kwargs))
    return case, np.asarray(draw(st.permutations(range(case.n))))


def _permutation_property(pair, **kwargs):
    case, permutation = pair
    properties.permutation_changes_nothing(case, permutation, **kwargs)


@given(case_and_permutation())
def test_permuting_the_batch_changes_nothing(pair):
    _permutation_property(pair)


def test_permutation_rejects_misaligned_examples():
    assert rejects(_permutation_property, case_and_permutation(min_examples=3), equations=broken.MISALIGNED_EXAMPLES)


class Sizes(TypedDict):
    """The size limits of ``cases`` that the properties below fix."""

    max_depth: int
    max_width: int
    max_examples: int


SMALL = Sizes(max_depth=3, max_width=4, max_examples=4)


@given(cases(**SMALL))
def test_finite_differences_agree(case):
    properties.finite_differences_agree(case)


def test_finite_differences_reject_g_prime_at_a():
    assert rejects(
        properties.finite_differences_agree, cases(activations=SMOOTH, **SMALL), equations=broken.G_PRIME_AT_A
    )
