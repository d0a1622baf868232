"""Max pooling, average pooling and flatten against ``jax.vjp`` of ``reference.pooling``, in
float64, with deliberate ties; each property beside a negative control that it rejects.

- Max pooling only routes values: z and ∂Eₜ/∂a must equal autodiff's EXACTLY (δ lies on a
  grid of 2⁻¹⁰, so sums of overlapping windows are exact in any order), in float64 and float32.
  At a tie, the whole δ of a window goes to its first maximum in row-major order.
- Average pooling adds and divides, and rounds differently from autodiff: within
  (1 + u₆₄/u)·u times the number of roundings times the same sums on absolute values.
- Flatten only moves values: exact.

Strategies, the wrong layers of the controls, the hand-made ties, and the checks that need no
autodiff (central differences, loops against vectorized, shapes and refusals):
``test_pooling_without_autodiff``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from manual.pooling import AvgPool2D, Flatten, MaxPool2D
from property_tests.banks.controls import rejects
from property_tests.library import profiles
from property_tests.library import tolerances as tol
from property_tests.tests.test_pooling_without_autodiff import (
    DTYPES,
    HAND_MADE_IDS,
    HAND_MADE_TIES,
    AvgOffByOnePerMillion,
    AvgWithoutDivisor,
    EveryTiedMaximum,
    FortranFlatten,
    LastMaximum,
    PoolCase,
    SplitAmongTied,
    hand_made_tie,
    pool_cases,
    within,
)
from reference import pooling as reference

AUTODIFF = profiles.fewer(1 / 3, 3)
"""A third of the profile's examples against autodiff (10 under ci, 3 by default): ``jax.vjp`` of
``reduce_window`` compiles anew for every shape and configuration (0.3–0.6 s on the CPU), and
nearly every example brings a new one. The JAX-free checks take the full count."""

# --- properties ---------------------------------------------------------------------------------


def max_pool_matches_autodiff(case: PoolCase, kind=MaxPool2D) -> None:
    """z and ∂Eₜ/∂a equal autodiff's exactly, computed in float64 and in float32 (inputs are small
    integers or multiples of 1/N, δ multiples of 2⁻¹⁰: all exact in float32 too)."""
    z_ref, grad_ref = reference.pool_vjp(reference.max_pool, case.a_prev, case.delta, *case.config)
    layer = case.layer(kind)
    for dtype in DTYPES:
        a_prev, delta = case.a_prev.astype(dtype), case.delta.astype(dtype)
        z, grad = layer.forward(a_prev), layer.input_delta(delta, a_prev)
        assert z.shape == (a_prev.shape[0],) + layer.out_shape(a_prev.shape[1:]) == z_ref.shape, case.describe()
        assert z.dtype == grad.dtype == dtype, (z.dtype, grad.dtype, dtype)
        assert np.array_equal(z, z_ref), f"forward differs, {dtype}, {case.describe()}"
        wrong = np.argwhere(grad != grad_ref)
        assert wrong.size == 0, (
            f"∂Eₜ/∂a differs from jax.vjp at {wrong[:3].tolist()}, {dtype}, {case.describe()}: "
            f"{grad[tuple(wrong[0])]} vs {grad_ref[tuple(wrong[0])]}"
        )


def avg_pool_matches_autodiff(case: PoolCase, kind=AvgPool2D) -> None:
    """z and ∂Eₜ/∂a equal autodiff's to rounding. With m = wh·ww and K = ⌈wh/sh⌉·⌈ww/sw⌉:

        |z − z_ref| ≤ (1 + u₆₄/u)·u · (m + 1) · avg_pool(|a|)      (a sum of m terms, then ÷ m)
        |∂ − ∂_ref| ≤ (1 + u₆₄/u)·u · (K + 1) · (∂Eₜ/∂a of |δ|)   (each δ ÷ m, then up to K summed)

    the magnitudes taken from the reference. The + 1: XLA on the CPU divides by the constant m
    as a product with 1/m, two roundings where NumPy's division has one (measured: the hand
    form's δ/3 and autodiff's differ in the last bit)."""
    z_ref, grad_ref = reference.pool_vjp(reference.avg_pool, case.a_prev, case.delta, *case.config)
    z_size, grad_size = reference.pool_vjp(reference.avg_pool, np.abs(case.a_prev), np.abs(case.delta), *case.config)
    layer = case.layer(kind)
    m = case.window[0] * case.window[1]
    for dtype in DTYPES:
        a_prev, delta = case.a_prev.astype(dtype), case.delta.astype(dtype)
        z, grad = layer.forward(a_prev), layer.input_delta(delta, a_prev)
        assert z.dtype == grad.dtype == dtype, (z.dtype, grad.dtype, dtype)
        assert z.shape == (a_prev.shape[0],) + layer.out_shape(a_prev.shape[1:]) == z_ref.shape, case.describe()
        within(z, z_ref, tol.scale(dtype) * (m + 1) * z_size, f"forward, {dtype}, {case.describe()}")
        within(grad, grad_ref, tol.scale(dtype) * (case.reach + 1) * grad_size, f"∂Eₜ/∂a, {dtype}, {case.describe()}")


def flatten_matches_autodiff(case: PoolCase, kind=Flatten) -> None:
    """z and ∂Eₜ/∂a equal autodiff's exactly: flatten only moves values."""
    z_ref, grad_ref = reference.pool_vjp(reference.flatten, case.a_prev, case.delta)
    layer = kind()
    z, grad = layer.forward(case.a_prev), layer.input_delta(case.delta, case.a_prev)
    assert z.shape == (case.a_prev.shape[0],) + layer.out_shape(case.a_prev.shape[1:]) == z_ref.shape
    assert np.array_equal(z, z_ref), f"forward differs, {case.describe()}"
    assert np.array_equal(grad, grad_ref), f"∂Eₜ/∂a differs, {case.describe()}"


# --- against autodiff ---------------------------------------------------------------------------


@AUTODIFF
@given(case=pool_cases(ties=None))
def test_max_pool_matches_autodiff_with_and_without_ties(case):
    max_pool_matches_autodiff(case)


@pytest.mark.parametrize("wrong", [EveryTiedMaximum, LastMaximum, SplitAmongTied], ids=lambda k: k.__name__)
def test_max_pool_property_rejects_other_tie_conventions(wrong):
    assert rejects(max_pool_matches_autodiff, pool_cases(ties=True), kind=wrong)


@AUTODIFF
@given(case=pool_cases(ties=None))
def test_avg_pool_matches_autodiff(case):
    avg_pool_matches_autodiff(case)


@pytest.mark.parametrize("wrong", [AvgWithoutDivisor, AvgOffByOnePerMillion], ids=lambda k: k.__name__)
def test_avg_pool_property_rejects(wrong):
    assert rejects(avg_pool_matches_autodiff, pool_cases(ties=False), kind=wrong)


@AUTODIFF
@given(case=pool_cases(ties=None, flat=True))
def test_flatten_matches_autodiff(case):
    flatten_matches_autodiff(case)


def test_flatten_property_rejects_fortran_order():
    assert rejects(flatten_matches_autodiff, pool_cases(ties=False, flat=True), kind=FortranFlatten)


# --- the tie convention, on ties made by hand ---------------------------------------------------


@pytest.mark.parametrize("row", HAND_MADE_TIES, ids=HAND_MADE_IDS)
def test_jax_tie_convention_on_hand_made_ties(row):
    """``jax.vjp`` puts δ where the recorded convention says (the hand derivation is held to the
    same table in ``test_pooling_without_autodiff``)."""
    what, a_prev, delta, expected, config = hand_made_tie(row)
    _, grad_ref = reference.pool_vjp(reference.max_pool, a_prev, delta, *config)
    assert np.array_equal(grad_ref, expected), (what, grad_ref[0, 0])
