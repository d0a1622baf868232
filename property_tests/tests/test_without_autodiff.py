"""The hand derivation checked without autodiff: central differences, the textbook definitions,
the recorded kink conventions and the derivation's own structure.

This module never imports JAX (nor ``reference``, nor ``compare``), so mutation testing of
``manual/`` can run it in forked workers, quickly (``docs/mutation.md``). The autodiff
properties in the other modules are the proof; this is the second, independent opinion that
every line of ``manual/`` matters.

Central differences use ``tolerances.finite_difference_step`` and are trusted to within
``tolerances.finite_difference_tolerance``: the truncation error estimated from D(h) and D(2h)
(Richardson) plus the rounding of the function values divided by h, times a safety of 4.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import scipy.special
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import manual
from manual import (
    ALIASES,
    CATALOGUE,
    CROSS_ENTROPY,
    LOSSES,
    MSE,
    OUTPUT_MAPS,
    SOFTMAX,
    Activation,
    Network,
    ParametricActivation,
    VectorActivation,
)
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import tolerances as tol
from property_tests.library.conventions import ACTIVATION_KINK_SLOPES, LOSS_KINK_SLOPES
from property_tests.library.strategies import Case, make_targets, output_layers_for, targets

U = tol.unit_roundoff(np.float64)
NAMES = sorted(CATALOGUE)

# --- central differences ------------------------------------------------------------------------


def central_differences(f, x: np.ndarray, columns: bool = False):
    """D(h) and D(2h), (f(x + h) − f(x − h)) / 2h, for every element of x, with h relative to
    max(1, |x|). ``f`` is elementwise (``columns=False``) or maps rows to one value per row
    (``columns=True``: column j of the result differentiates in x[:, j])."""
    h = tol.finite_difference_step() * np.maximum(1.0, np.abs(x))
    quotients = []
    for step in (1, 2):
        if not columns:
            quotients.append((f(x + step * h) - f(x - step * h)) / (2 * step * h))
            continue
        d = np.empty_like(x)
        for j in range(x.shape[1]):
            e = np.zeros_like(x)
            e[:, j] = step * h[:, j]
            d[:, j] = (f(x + e) - f(x - e)) / (2 * step * h[:, j])
        quotients.append(d)
    return quotients[0], quotients[1], h


def agrees_with_differences(
    mine: np.ndarray, d_h: np.ndarray, d_2h: np.ndarray, h: np.ndarray, size: np.ndarray, what: str
) -> None:
    """Assert |mine − D(h)| within the central difference's own error bound; ``size`` is the size
    of the terms the function values are computed from (their rounding is ELEMENTARY_ULPS of it).
    Below the smallest normal number nothing is resolved (``tolerances.floor``)."""
    allowed = tol.finite_difference_tolerance(d_h, d_2h, tol.ELEMENTARY_ULPS * size, h) + tol.floor(np.float64, 1)
    bad = ~(np.abs(mine - d_h) <= allowed)
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} disagree with central differences, "
        f"first at index {np.argwhere(bad)[0].tolist()}: "
        f"{mine[bad][0]!r} against {d_h[bad][0]!r} ± {allowed[bad][0]:.2e}"
    )


# --- activations: g′ against central differences of g -----------------------------------------

GRID = np.concatenate([np.linspace(-50, 50, 10_001), np.geomspace(50, 1e3, 60), -np.geomspace(50, 1e3, 60)])


def away_from_kinks(g: Activation, z: np.ndarray) -> np.ndarray:
    """The points of z whose difference stencil [z − 2h, z + 2h] crosses none of g's kinks."""
    h = tol.finite_difference_step() * np.maximum(1.0, np.abs(z))
    keep = np.ones(z.shape, bool)
    for kink in g.kinks:
        keep &= np.abs(z - kink) > 2.5 * h
    return z[keep]


def derivative_agrees_with_differences(g: Activation, z: np.ndarray) -> None:
    """g′ against central differences of g. Each g(z) is computed from terms as large as
    |g(z)| + f_g·|z| (tolerances' model), with f_g = max |D| over the points: ½z(1 + tanh u)
    is 0 once tanh u rounds to −1, while its terms are not."""
    z = away_from_kinks(g, z)
    d_h, d_2h, h = central_differences(lambda s: g.forward(s, np), z)
    size = np.abs(g.forward(z, np)) + np.max(np.abs(d_h)) * np.abs(z)
    agrees_with_differences(g.derivative(z, np), d_h, d_2h, h, size, f"{g.name}′")


@pytest.mark.parametrize("name", NAMES)
def test_derivative_equals_central_differences(name):
    derivative_agrees_with_differences(CATALOGUE[name], GRID)


@pytest.mark.parametrize("name", ["tanh", "gelu", "relu6", "hard_silu"])
def test_central_differences_reject_a_derivative_off_by_1e_6(name):
    with pytest.raises(AssertionError, match="disagree with central differences"):
        derivative_agrees_with_differences(broken.off_by(CATALOGUE[name], 1e-6), GRID)


def follows_recorded_convention(g: Activation, dtype) -> bool:
    """g′ at each recorded kink, in ``dtype``, is exactly the value ``jax.grad`` gives there."""
    slopes = ACTIVATION_KINK_SLOPES[g.name]
    mine = g.derivative(np.asarray(list(slopes), dtype), np)
    return (
        sorted(slopes) == sorted(g.kinks)
        and mine.dtype == dtype
        and mine.tolist() == [float(dtype(v)) for v in slopes.values()]
    )


@pytest.mark.parametrize("name", sorted(ACTIVATION_KINK_SLOPES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_derivative_at_kinks_follows_the_recorded_convention(name, dtype):
    assert follows_recorded_convention(CATALOGUE[name], dtype), f"{name}′ at {ACTIVATION_KINK_SLOPES[name]}"


def test_recorded_kinks_cover_every_kinked_activation():
    assert set(ACTIVATION_KINK_SLOPES) == {name for name in NAMES if CATALOGUE[name].kinks}


def test_kink_convention_check_rejects_the_other_slope():
    relu = CATALOGUE["relu"]
    other = Activation("relu", relu.forward, lambda z, xp: (z >= 0).astype(z.dtype), kinks=(0.0,))
    assert not follows_recorded_convention(other, np.float64)


# --- activations: g against the textbook definition ---------------------------------------------


def _relu6(z):
    return np.minimum(np.maximum(z, 0), 6)


_C = math.sqrt(2 / math.pi)

TEXTBOOK = {
    "identity": lambda z: z,
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": lambda z: (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z)),
    "relu": lambda z: np.maximum(z, 0),
    "leaky_relu": lambda z: np.where(z >= 0, z, 0.01 * z),
    "elu": lambda z: np.where(z > 0, z, np.exp(z) - 1),
    "celu": lambda z: np.maximum(z, 0) + np.minimum(np.exp(z) - 1, 0),
    "selu": lambda z: 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * (np.exp(z) - 1)),
    "softplus": lambda z: np.log(1 + np.exp(z)),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "gelu": lambda z: 0.5 * z * (1 + scipy.special.erf(z / math.sqrt(2))),
    "gelu_tanh": lambda z: 0.5 * z * (1 + np.tanh(_C * (z + 0.044715 * z**3))),
    "mish": lambda z: z * np.tanh(np.log(1 + np.exp(z))),
    "soft_sign": lambda z: z / (1 + np.abs(z)),
    "log_sigmoid": lambda z: np.log(1 / (1 + np.exp(-z))),
    "relu6": _relu6,
    "hard_tanh": lambda z: np.clip(z, -1, 1),
    "hard_sigmoid": lambda z: _relu6(z + 3) / 6,
    "hard_silu": lambda z: z * _relu6(z + 3) / 6,
    "squareplus": lambda z: (z + np.sqrt(z * z + 4)) / 2,
    "sparse_plus": lambda z: np.where(z <= -1, 0, np.where(z >= 1, z, (z + 1) ** 2 / 4)),
    "sparse_sigmoid": lambda z: np.clip(z + 1, 0, 2) / 2,
}
"""The definitions as the jax.nn documentation writes them, with no care for overflow: valid
for the moderate z they are compared on."""

MODERATE = np.concatenate([np.linspace(-20, 20, 4001), np.arange(-6.0, 7.0)])


def forward_matches_textbook(g: Activation, textbook) -> None:
    expected = textbook(MODERATE)
    mine = g.forward(MODERATE, np)
    allowed = 2 * tol.ELEMENTARY_ULPS * U * (1 + np.abs(MODERATE) + np.abs(expected))
    bad = ~(np.abs(mine - expected) <= allowed)
    assert not bad.any(), f"{g.name}: g({MODERATE[bad][0]!r}) = {mine[bad][0]!r}, textbook {expected[bad][0]!r}"


def test_textbook_covers_the_catalogue():
    assert set(TEXTBOOK) == set(CATALOGUE)


@pytest.mark.parametrize("name", NAMES)
def test_forward_equals_the_textbook_definition(name):
    forward_matches_textbook(CATALOGUE[name], TEXTBOOK[name])


def test_textbook_check_rejects_a_forward_off_by_1e_9():
    with pytest.raises(AssertionError):
        forward_matches_textbook(CATALOGUE["gelu"], lambda z: TEXTBOOK["gelu"](z) * (1 + 1e-9))


def finite_and_quiet(g: Activation, dtype) -> None:
    """g and g′ finite, in ``dtype``, with no overflow, division by zero or invalid operation
    anywhere on [−1e3, 1e3]."""
    z = np.concatenate([np.linspace(-1e3, 1e3, 20_001), [-1e3, -700.0, -100.0, 100.0, 700.0, 1e3]]).astype(dtype)
    # Underflow to zero is the right answer in a saturated tail (NumPy ignores it by default).
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        warnings.simplefilter("error")
        a, g_prime = g.forward(z, np), g.derivative(z, np)
    assert a.dtype == dtype and g_prime.dtype == dtype
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(g_prime))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_finite_and_quiet_up_to_1e3(name, dtype):
    finite_and_quiet(CATALOGUE[name], dtype)


def test_finite_and_quiet_rejects_the_overflowing_sigmoid():
    naive = Activation("sigmoid", lambda z, xp: 1 / (1 + xp.exp(-z)), lambda z, xp: xp.exp(-z) / (1 + xp.exp(-z)) ** 2)
    with pytest.raises(FloatingPointError):
        finite_and_quiet(naive, np.float64)


def test_catalogue_lookup_and_aliases():
    assert manual.activation("swish") is CATALOGUE["silu"] and manual.activation("hard_swish") is CATALOGUE["hard_silu"]
    assert all(manual.activation(name) is CATALOGUE[name] for name in NAMES)
    with pytest.raises(KeyError) as excinfo:
        manual.activation("nope")
    known = ", ".join(sorted(CATALOGUE) + sorted(ALIASES))
    assert excinfo.value.args[0] == f"unknown activation 'nope'; known: {known}"
    assert manual.special(np) is scipy.special


# --- losses and output maps -------------------------------------------------------------------

LOSS_NAMES = sorted(LOSSES)


@st.composite
def loss_inputs(draw, loss):
    """(output layer, z⁽ᴸ⁾, a = g_L(z), y) for ``loss``, with moderate logits."""
    g_L = draw(st.sampled_from(output_layers_for(loss)))
    n, m = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    z = draw(hnp.arrays(np.float64, (n, m), elements=st.floats(-4, 4, allow_subnormal=False)))
    y = draw(targets(loss, (n, m)))
    return g_L, z, g_L.forward(z, np), y


def _kink_free(loss, a, y, h):
    keep = np.ones(a.shape, bool)
    for kink in loss.kinks:
        keep &= np.abs(a - y - kink) > 2.5 * h
    return keep


@pytest.mark.parametrize("name", LOSS_NAMES)
@given(data=st.data())
def test_loss_gradient_equals_central_differences(name, data):
    loss = LOSSES[name]
    _, _, a, y = data.draw(loss_inputs(loss))
    d_h, d_2h, h = central_differences(lambda s: loss.error(s, y, np), a, columns=True)
    keep = _kink_free(loss, a, y, h)
    size = np.abs(loss.error(a, y, np))[:, None] + np.sum(np.abs(a) + np.abs(y) + 1, axis=1, keepdims=True) ** 2
    mine = loss.gradient(a, y, np)
    agrees_with_differences(mine[keep], d_h[keep], d_2h[keep], h[keep], size.repeat(a.shape[1], 1)[keep], f"∇ₐ{name}")


def test_loss_gradient_check_rejects_1_over_n_twice():
    a, y = np.array([[0.3, -1.0], [2.0, 0.5]]), np.array([[0.0, 1.0], [1.0, 1.0]])
    d_h, d_2h, h = central_differences(lambda s: MSE.error(s, y, np), a, columns=True)
    with pytest.raises(AssertionError):
        agrees_with_differences(MSE.gradient(a, y, np) / 2, d_h, d_2h, h, np.ones_like(a), "∇ₐmse / n")


def loss_follows_recorded_convention(loss, slopes: dict[float, float]) -> bool:
    """∂Eₜ/∂a, with every residual on a kink, is exactly the value ``jax.grad`` gives there."""
    y = np.array([[0.5, -2.0, 0.0]])
    return sorted(slopes) == sorted(loss.kinks) and all(
        loss.gradient(y + kink, y, np).tolist() == [[slope] * 3] for kink, slope in slopes.items()
    )


@pytest.mark.parametrize("name", sorted(LOSS_KINK_SLOPES))
def test_loss_gradient_at_kinks_follows_the_recorded_convention(name):
    assert loss_follows_recorded_convention(LOSSES[name], LOSS_KINK_SLOPES[name])


def test_loss_kink_check_rejects_sign_zero_at_the_kink():
    mae = LOSSES["mae"]
    other = dataclasses.replace(mae, gradient=lambda a, y, xp: xp.sign(a - y))
    assert not loss_follows_recorded_convention(other, LOSS_KINK_SLOPES["mae"])


def test_recorded_loss_kinks_cover_every_kinked_loss():
    assert set(LOSS_KINK_SLOPES) == {name for name in LOSS_NAMES if LOSSES[name].kinks}


TEXTBOOK_LOSSES = {
    "mse": lambda a, y: 0.5 * np.sum((a - y) ** 2, axis=1),
    "mae": lambda a, y: np.sum(np.abs(a - y), axis=1),
    "huber": lambda a, y: np.sum(np.where(np.abs(a - y) <= 1, 0.5 * (a - y) ** 2, np.abs(a - y) - 0.5), axis=1),
    "binary_cross_entropy": lambda a, y: -np.sum(y * np.log(a) + (1 - y) * np.log(1 - a), axis=1),
    "cross_entropy": lambda a, y: -np.sum(y * np.log(a), axis=1),
    "negative_log_likelihood": lambda a, y: -np.sum(y * a, axis=1),
}


def loss_matches_textbook(loss, z, a, y) -> None:
    """Eₜ against the textbook definition, the mean of them, and the fused form from the logits."""
    expected = TEXTBOOK_LOSSES[loss.name](a, y)
    size = np.sum((np.abs(a) + np.abs(y) + np.abs(np.log(np.abs(a) + 1e-300)) + 1) ** 2, axis=1)
    mine = loss.error(a, y, np)
    assert mine.shape == (a.shape[0],)
    assert np.all(np.abs(mine - expected) <= 4 * tol.ELEMENTARY_ULPS * U * size), loss.name
    assert manual.mean_error(loss, a, y) == float(np.mean(mine))
    if loss.fused_error is not None:
        fused = loss.fused_error(z, y, np)
        assert np.all(np.abs(fused - expected) <= 4 * tol.ELEMENTARY_ULPS * U * (size + np.sum(np.abs(z), axis=1))), (
            loss.name
        )


@pytest.mark.parametrize("name", LOSS_NAMES)
@given(data=st.data())
def test_loss_equals_the_textbook_definition_and_averages(name, data):
    loss = LOSSES[name]
    loss_matches_textbook(loss, *data.draw(loss_inputs(loss))[1:])


def test_textbook_check_rejects_the_squared_error_without_its_half():
    a, y = np.array([[0.3, -1.0]]), np.array([[0.0, 1.0]])
    without_half = dataclasses.replace(MSE, error=lambda a, y, xp: xp.sum((a - y) ** 2, axis=-1))
    with pytest.raises(AssertionError):
        loss_matches_textbook(without_half, a, a, y)


FUSED = [(name, loss.fused_with) for name, loss in sorted(LOSSES.items()) if loss.fused_with]


def fused_delta_agrees_with_differences(loss, z: np.ndarray, y: np.ndarray) -> None:
    d_h, d_2h, h = central_differences(lambda s: loss.fused_error(s, y, np), z, columns=True)
    size = np.sum(np.abs(z) + np.abs(y) + 1, axis=1, keepdims=True) ** 2
    agrees_with_differences(
        loss.fused_delta(z, y, np), d_h, d_2h, h, size.repeat(z.shape[1], 1), f"fused δ of {loss.name}"
    )


@pytest.mark.parametrize("name, output", FUSED)
@given(data=st.data())
def test_fused_delta_equals_central_differences_of_the_fused_error(name, output, data):
    loss = LOSSES[name]
    _, z, _, y = data.draw(loss_inputs(loss))
    fused_delta_agrees_with_differences(loss, z, y)


# Targets that do not sum to 1 (label weights, several labels): δ⁽ᴸ⁾ = a·Σy − y keeps the Σy.
UNNORMALISED = (np.array([[0.5, -1.0, 2.0], [0.0, 0.25, -0.5]]), np.array([[0.0, 2.0, 0.0], [0.5, 0.0, 1.0]]))


def test_cross_entropy_delta_keeps_the_sum_of_the_targets():
    fused_delta_agrees_with_differences(CROSS_ENTROPY, *UNNORMALISED)


def test_fused_delta_check_rejects_a_minus_y_alone():
    a_minus_y = dataclasses.replace(CROSS_ENTROPY, fused_delta=lambda z, y, xp: SOFTMAX.forward(z, xp) - y)
    with pytest.raises(AssertionError, match="disagree with central differences"):
        fused_delta_agrees_with_differences(a_minus_y, *UNNORMALISED)


def fused_forms_finite_at_huge_logits(loss) -> None:
    z = np.array([[1e3, -1e3, 0.0], [-1e3, -1e3, 1e3]])
    y = (
        np.array([[0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
        if loss.targets == "distribution"
        else np.array([[0.0, 1.0, 0.5]] * 2)
    )
    with np.errstate(all="raise", under="ignore"):
        e, delta = loss.fused_error(z, y, np), loss.fused_delta(z, y, np)
    assert np.all(np.isfinite(e)) and np.all(np.isfinite(delta))
    assert np.all(np.abs(delta) <= np.sum(np.abs(y), axis=1, keepdims=True) + 1)


@pytest.mark.parametrize("name, output", FUSED)
def test_fused_forms_are_finite_at_huge_logits(name, output):
    fused_forms_finite_at_huge_logits(LOSSES[name])


def test_finite_logits_check_rejects_logsumexp_without_its_shift():
    def unshifted(z, y, xp):
        return xp.sum(y, axis=-1) * xp.log(xp.sum(xp.exp(z), axis=-1)) - xp.sum(y * z, axis=-1)

    with pytest.raises(FloatingPointError):
        fused_forms_finite_at_huge_logits(dataclasses.replace(CROSS_ENTROPY, fused_error=unshifted))


def test_which_losses_fuse_with_which_output_layers():
    assert CROSS_ENTROPY.fuses(SOFTMAX) and LOSSES["binary_cross_entropy"].fuses(CATALOGUE["sigmoid"])
    assert not CROSS_ENTROPY.fuses(CATALOGUE["sigmoid"]) and not MSE.fuses(SOFTMAX)
    assert not LOSSES["binary_cross_entropy"].fuses(SOFTMAX) and not CROSS_ENTROPY.fuses(None)


TEXTBOOK_MAPS = {
    "softmax": lambda z: np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True),
    "log_softmax": lambda z: np.log(np.exp(z) / np.sum(np.exp(z), axis=1, keepdims=True)),
}

logits = hnp.arrays(
    np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.floats(-4, 4, allow_subnormal=False)
)


def vjp_agrees_with_differences(g, z: np.ndarray, v: np.ndarray) -> None:
    d_h, d_2h, h = central_differences(lambda s: np.sum(v * g.forward(s, np), axis=1), z, columns=True)
    size = np.sum(np.abs(v) * (np.abs(g.forward(z, np)) + np.abs(z) + 1), axis=1, keepdims=True)
    agrees_with_differences(g.vjp(z, v, np), d_h, d_2h, h, size.repeat(z.shape[1], 1), f"J_{g.name}ᵀv")


@pytest.mark.parametrize("name", sorted(OUTPUT_MAPS))
@given(z=logits, data=st.data())
def test_output_map_vjp_and_forward_without_autodiff(name, z, data):
    g = OUTPUT_MAPS[name]
    v = data.draw(hnp.arrays(np.float64, z.shape, elements=st.floats(-2, 2, allow_subnormal=False)))
    vjp_agrees_with_differences(g, z, v)
    expected = TEXTBOOK_MAPS[name](z)
    assert np.all(
        np.abs(g.forward(z, np) - expected) <= 4 * tol.ELEMENTARY_ULPS * U * (np.abs(expected) + np.abs(z) + 1)
    )
    with np.errstate(over="raise", invalid="raise"):
        assert np.all(np.isfinite(g.forward(z + 1e3, np))) and np.all(np.isfinite(g.vjp(z + 1e3, v, np)))


def row_by_row(piece) -> None:
    """``piece(z, v, y)`` on a batch whose rows lie far apart equals it on each row alone: each
    row is an example of its own and is shifted by its own maximum (one shift for the whole
    batch would underflow every exp of a row far below the others, 0/0)."""
    z = np.array([[1000.0, 999.0, 997.5], [-1000.0, -1001.0, -999.0], [0.5, -0.25, 0.0]])
    v = np.array([[1.0, -0.5, 0.25], [0.5, 0.5, -2.0], [-1.0, 0.0, 1.0]])
    y = np.array([[0.0, 1.0, 0.0], [0.25, 0.25, 0.5], [1.0, 0.0, 0.0]])
    with np.errstate(all="raise", under="ignore"):
        batch = piece(z, v, y)
        rows = [piece(z[t : t + 1], v[t : t + 1], y[t : t + 1]) for t in range(3)]
    np.testing.assert_array_equal(batch, np.concatenate(rows))


def fused_cross_entropy_error(z: np.ndarray, v: np.ndarray, y: np.ndarray) -> np.ndarray:
    assert CROSS_ENTROPY.fused_error is not None, "cross-entropy has its fused form after softmax"
    return CROSS_ENTROPY.fused_error(z, y, np)


def fused_cross_entropy_delta(z: np.ndarray, v: np.ndarray, y: np.ndarray) -> np.ndarray:
    assert CROSS_ENTROPY.fused_delta is not None, "cross-entropy has its fused form after softmax"
    return CROSS_ENTROPY.fused_delta(z, y, np)


RowPiece = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""A row-wise piece of the output layer's computation, of (z, v, y)."""

ROW_PIECES: list[RowPiece] = (
    [lambda z, v, y, g=g: g.forward(z, np) for g in OUTPUT_MAPS.values()]
    + [lambda z, v, y, g=g: g.vjp(z, v, np) for g in OUTPUT_MAPS.values()]
    + [fused_cross_entropy_error, fused_cross_entropy_delta]
)


@pytest.mark.parametrize(
    "piece",
    ROW_PIECES,
    ids=[
        "softmax",
        "log_softmax",
        "softmax_vjp",
        "log_softmax_vjp",
        "cross_entropy_from_logits",
        "cross_entropy_delta",
    ],
)
def test_rows_far_apart_are_normalised_row_by_row(piece):
    row_by_row(piece)


def test_row_check_rejects_one_shift_for_the_whole_batch():
    def batch_shifted_softmax(z, v, y):
        e = np.exp(z - np.max(z))
        return e / np.sum(e, axis=-1, keepdims=True)

    with pytest.raises(FloatingPointError):
        row_by_row(batch_shifted_softmax)


def _decimal_squareplus(z: float):
    from decimal import Decimal, localcontext

    with localcontext() as context:
        context.prec = 40
        z_ = Decimal(z)
        s = (z_ * z_ + 4).sqrt()
        return float((z_ + s) / 2), float((1 + z_ / s) / 2)


SQUAREPLUS_Z = np.concatenate([np.linspace(-3, 3, 6001), -np.geomspace(1e-3, 1e3, 2000), np.geomspace(1e-3, 1e3, 2000)])


def squareplus_keeps_every_digit(g: Activation) -> None:
    """squareplus and its g′ switch formula at 0 so that neither ever subtracts nearly equal
    numbers. Then, with s = √(z² + 4) off by at most 2u (u = 2⁻⁵³): (z + s)/2 and 4/(2(s − z))
    add or divide positive terms, off by at most 4u relative; (1 + z/s)/2 by 4u, and
    4/(2s(s − z)) by 7u. A form that cancels loses half its digits or more at |z| = 1e3."""
    z = SQUAREPLUS_Z
    exact = np.array([_decimal_squareplus(float(t)) for t in z])
    for mine, truth, bound in (
        (g.forward(z, np), exact[:, 0], np.full(z.shape, 4)),
        (g.derivative(z, np), exact[:, 1], np.where(z >= 0, 4, 7)),
    ):
        bad = np.abs(mine - truth) > bound * U * np.abs(truth)
        assert not bad.any(), f"squareplus at z = {z[bad][:3]}: {mine[bad][:3]} against {truth[bad][:3]}"


def test_squareplus_keeps_every_digit_on_both_sides():
    squareplus_keeps_every_digit(CATALOGUE["squareplus"])


def test_digit_check_rejects_the_cancelling_forms():
    def s(z):
        return np.sqrt(z * z + 4)

    cancelling = Activation("squareplus", lambda z, xp: (z + s(z)) / 2, lambda z, xp: (1 + z / s(z)) / 2)
    with pytest.raises(AssertionError, match="squareplus at z"):
        squareplus_keeps_every_digit(cancelling)


def test_vjp_check_rejects_softmax_without_off_diagonal_terms():
    z, v = np.array([[0.5, -1.0, 2.0]]), np.array([[1.0, 0.5, -1.0]])
    diagonal_only = manual.OutputMap("softmax", SOFTMAX.forward, lambda z, v, xp: SOFTMAX.forward(z, xp) * v)
    with pytest.raises(AssertionError):
        vjp_agrees_with_differences(diagonal_only, z, v)


# --- the network and the three equations, against central differences of E --------------------

SMOOTH = ["tanh", "sigmoid", "softplus", "gelu", "silu", "elu", "soft_sign", "identity"]
LOSS_AND_OUTPUTS = [
    ("mse", SMOOTH + ["softmax", "log_softmax"]),
    ("huber", SMOOTH),
    ("cross_entropy", ["softmax"]),
    ("binary_cross_entropy", ["sigmoid"]),
    ("negative_log_likelihood", ["log_softmax"]),
]


@st.composite
def small_cases(draw, pairs=LOSS_AND_OUTPUTS) -> Case:
    """Hypothesis draws the structure (loss, depth, widths, activations, batch size) and a seed;
    the numbers come from NumPy's generator with that seed, so no case is degenerate (zero
    weights would make g′(z) = g′(0) everywhere and hide a misplaced g′)."""
    loss_name, outputs = draw(st.sampled_from(pairs))
    depth = draw(st.integers(1, 3))
    widths = draw(st.lists(st.integers(1, 4), min_size=depth + 1, max_size=depth + 1))
    g: list[Activation | VectorActivation] = [CATALOGUE[draw(st.sampled_from(SMOOTH))] for _ in range(depth - 1)]
    g_L = draw(st.sampled_from(outputs))
    g.append(OUTPUT_MAPS.get(g_L) or CATALOGUE[g_L])
    if g_L in OUTPUT_MAPS or g_L == "sigmoid" and loss_name == "binary_cross_entropy":
        widths[-1] = max(widths[-1], 2)
    n, seed = draw(st.integers(2, 4)), draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    network = manual.init_network(widths, g, rng, scale=1.5)
    x = rng.normal(size=(n, widths[0]))
    return Case(network, x, make_targets(LOSSES[loss_name], (n, widths[-1]), rng), LOSSES[loss_name])


def mean_error(theta, b, g, x, y, loss, offsets=None) -> float:
    """E, written out from the definitions (independent of ``manual.forward``): an ``offset``
    added to z⁽ᵏ⁾ makes n·∂E/∂offset equal δ⁽ᵏ⁾, row by row. After the output layer it fuses
    with, the loss is taken from the logits: log(1 − σ(z)) has no digits left once σ(z) rounds
    to 1 (z ≳ 37), and central differences of it would be flat."""
    a = x
    for k in range(1, len(theta)):
        z = a @ theta[k].T + b[k] + (0 if offsets is None else offsets[k])
        a = g[k].forward(z, np)
    if loss.fused_with is not None and getattr(g[-1], "name", None) == loss.fused_with:
        return float(np.mean(loss.fused_error(z, y, np)))
    return float(np.mean(loss.error(a, y, np)))


def size_of_error(case: Case) -> float:
    """Rounding of E in units of u: sums over the widest layer through every layer (γ_m), times
    the size of the terms E is made of."""
    fwd = manual.forward(case.network, case.x)
    z_L = fwd.z[-1]
    assert z_L is not None, "the forward pass has no z⁽ᴸ⁾"
    terms = np.mean(np.sum((np.abs(z_L) + np.abs(fwd.a[-1]) + np.abs(case.y) + 1) ** 2, axis=1))
    return float(4 * (case.network.depth + 1) * (max(case.network.widths) + 1 + tol.ELEMENTARY_ULPS) * terms)


def differences_of_error(case: Case, k: int, what: str):
    """D(h), D(2h) and h of E in every element of Θ⁽ᵏ⁾, b⁽ᵏ⁾ or the offset on z⁽ᵏ⁾."""
    net = case.network
    theta, b = list(net.theta), list(net.b)
    offsets: list[np.ndarray | None] = [np.zeros((case.n, w)) for w in net.widths]
    parts = {"theta": theta, "b": b, "offset": offsets}[what]
    x0 = parts[k]
    assert x0 is not None, f"layer {k} has no {what}"
    h = tol.finite_difference_step() * np.maximum(1.0, np.abs(x0))
    quotients = []
    for step in (1, 2):
        d = np.empty_like(x0)
        for index in np.ndindex(x0.shape):
            e = []
            for sign in (1, -1):
                moved = x0.copy()
                moved[index] += sign * step * h[index]
                parts[k] = moved
                e.append(mean_error(theta, b, net.g, case.x, case.y, case.loss, offsets))
                parts[k] = x0
            d[index] = (e[0] - e[1]) / (2 * step * h[index])
        quotients.append(d)
    return quotients[0], quotients[1], h


def equations_agree_with_differences(case: Case, equations=manual.EQUATIONS) -> None:
    net, n = case.network, case.n
    grads = manual.gradients(net, case.x, case.y, loss=case.loss, equations=equations)
    size = np.array(size_of_error(case))
    for k in range(net.depth, 0, -1):
        equation = "(1)" if k == net.depth else "(2)"
        d_h, d_2h, h = differences_of_error(case, k, "offset")
        delta = grads.delta[k]
        assert delta is not None, f"no δ⁽{k}⁾"
        agrees_with_differences(delta / n, d_h, d_2h, h, size, f"{equation} δ⁽{k}⁾ / n")
    for k in range(1, net.depth + 1):
        for part, mine in (("theta", grads.theta[k]), ("b", grads.b[k])):
            assert mine is not None, f"no ∂E/∂{part}⁽{k}⁾"
            d_h, d_2h, h = differences_of_error(case, k, part)
            agrees_with_differences(mine, d_h, d_2h, h, size, f"(3) ∂E/∂{part}⁽{k}⁾")


@given(small_cases())
def test_every_equation_equals_central_differences_of_E(case):
    equations_agree_with_differences(case)


@pytest.mark.parametrize("mistake", ["G_PRIME_AT_A", "BIAS_SUMMED", "MISALIGNED_EXAMPLES"])
def test_central_differences_of_E_reject_classic_mistakes(mistake):
    elementwise = [("mse", SMOOTH)]  # the g′-at-a mistake needs a g′ to misplace
    assert rejects(equations_agree_with_differences, small_cases(elementwise), equations=getattr(broken, mistake))


def forward_is_the_definition(case: Case, forward=manual.forward) -> None:
    net, x = case.network, case.x
    fwd = forward(net, x)
    assert len(fwd.z) == len(fwd.a) == net.depth + 1 and fwd.z[0] is None and fwd.a[0] is x
    a = x
    for k in range(1, net.depth + 1):
        theta, b, g = net.theta[k], net.b[k], net.g[k]
        assert theta is not None and b is not None and g is not None, f"layer {k} is incomplete"
        assert not isinstance(g, ParametricActivation), "small_cases draws no activation parameters"
        z = a @ theta.T + b
        a = g.forward(z, np)
        np.testing.assert_array_equal(fwd.z[k], z)
        np.testing.assert_array_equal(fwd.a[k], a)


@given(small_cases())
def test_forward_pass_is_the_definition(case):
    forward_is_the_definition(case)
    net = case.network
    grads = manual.gradients(net, case.x, case.y, loss=case.loss)
    for part in (grads.delta, grads.theta, grads.b):
        assert len(part) == net.depth + 1 and part[0] is None
    assert all(
        grads.theta[k].shape == net.theta[k].shape and grads.b[k].shape == net.b[k].shape
        for k in range(1, net.depth + 1)
    )


def test_forward_check_rejects_a_forward_without_the_bias():
    def without_bias(net, x):
        z, a = [None], [x]
        for k in range(1, net.depth + 1):
            z.append(a[-1] @ net.theta[k].T)
            a.append(net.g[k].forward(z[-1], np))
        return manual.ForwardPass(tuple(z), tuple(a))

    assert rejects(forward_is_the_definition, small_cases(), forward=without_bias)


def test_fused_output_delta_stays_finite_where_the_unfused_one_cannot():
    rng = np.random.default_rng(1)
    net = manual.init_network([2, 3], [SOFTMAX], rng)
    net = Network(net.theta[:1] + (net.theta[1] * 1e3,), net.b, net.g)
    x, y = np.array([[1.0, -1.0]]), np.array([[0.0, 1.0, 0.0]])
    with np.errstate(all="raise", under="ignore"):
        grads = manual.gradients(net, x, y, loss=CROSS_ENTROPY)
        a = manual.forward(net, x).a[-1]
    np.testing.assert_allclose(grads.delta[1], a - y, rtol=0, atol=4 * U)


# --- the network's own bookkeeping, and one sentence for each bad input --------------------------


def test_network_shape_and_dtype():
    rng = np.random.default_rng(0)
    net = manual.init_network([3, 4, 2], [CATALOGUE["tanh"], CATALOGUE["relu"]], rng)
    assert net.depth == 2 and net.widths == (3, 4, 2) and net.dtype == np.float64
    net32 = net.astype(np.float32)
    assert net32.dtype == np.float32 and net32.g == net.g and net32.widths == net.widths
    assert all(net32.b[k].dtype == np.float32 for k in (1, 2))
    np.testing.assert_array_equal(net32.theta[2], net.theta[2].astype(np.float32))
    np.testing.assert_array_equal(net32.b[2], net.b[2].astype(np.float32))
    assert manual.init_network([3, 2], [CATALOGUE["tanh"]], rng, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("scale", [None, 3.0])
def test_initial_weights_have_the_stated_scale(scale):
    # Θ, b ~ N(0, scale²/n_in), scale 1 by default: with 160,000 draws the sample deviation of Θ
    # is within 1% of it (its standard error is 0.18%), and b's 400 draws within 10% (3.5%).
    kwargs = {} if scale is None else {"scale": scale}
    std = (scale or 1.0) / 20
    net = manual.init_network([400, 400], [CATALOGUE["tanh"]], np.random.default_rng(0), **kwargs)
    assert abs(np.std(net.theta[1]) / std - 1) < 0.01
    assert abs(np.std(net.b[1]) / std - 1) < 0.1
    assert abs(np.mean(net.theta[1])) < 4 * std / 400


def _raises_exactly(sentence, build):
    with pytest.raises(ValueError) as excinfo:
        build()
    assert str(excinfo.value) == sentence


def test_networks_that_do_not_fit_are_refused_in_one_sentence():
    tanh, relu = CATALOGUE["tanh"], CATALOGUE["relu"]
    net = manual.init_network([3, 2, 2], [tanh, relu], np.random.default_rng(0))
    t, b = net.theta, net.b
    cases_ = [
        ("a network needs at least one layer and one Θ, b and g per layer", lambda: Network((None,), (None,), (None,))),
        ("a network needs at least one layer and one Θ, b and g per layer", lambda: Network(t, b[:2], net.g)),
        (
            "index 0 of theta, b and g (and p) must be None: layer 0 is the input",
            lambda: Network((t[1],) + t[1:], b, net.g),
        ),
        (
            "index 0 of theta, b and g (and p) must be None: layer 0 is the input",
            lambda: Network(t, (b[1],) + b[1:], net.g),
        ),
        (
            "index 0 of theta, b and g (and p) must be None: layer 0 is the input",
            lambda: Network(t, b, (tanh,) + net.g[1:]),
        ),
        (
            "layer 2: Θ must be 2-D and b must have one entry per row of Θ",
            lambda: Network(t, b[:2] + (np.ones(3),), net.g),
        ),
        (
            "layer 1: Θ must be 2-D and b must have one entry per row of Θ",
            lambda: Network((None, t[1][0]) + t[2:], b, net.g),
        ),
        ("layer 2: Θ has 3 columns but layer 1 has 2 units", lambda: Network(t[:2] + (np.ones((2, 3)),), b, net.g)),
        (
            "layer 2: every Θ and b must share one dtype, float32 or float64",
            lambda: Network(t[:2] + (t[2].astype(np.float32),), b[:2] + (b[2].astype(np.float32),), net.g),
        ),
        (
            "layer 1: every Θ and b must share one dtype, float32 or float64",
            lambda: Network((None, t[1].astype(np.int64)) + t[2:], (None, b[1].astype(np.int64)) + b[2:], net.g),
        ),
        (
            "layer 2: every Θ and b must share one dtype, float32 or float64",
            lambda: Network(t, b[:2] + (b[2].astype(np.float32),), net.g),
        ),
        (
            "layer 2: Θ has 2 columns but layer 1 has 1 units (glu turns its 2 units of z into 1)",
            lambda: Network(t, b, (None, manual.vector_activation("glu"), relu)),
        ),
        (
            "p needs one entry per layer (None where the activation has no parameters)",
            lambda: Network(t, b, net.g, (None, None)),
        ),
        (
            "layer 2: the activation must be an Activation, ParametricActivation or VectorActivation, not str",
            lambda: Network(t, b, (None, tanh, "relu")),
        ),
        (
            "2 layers need 2 activations, got 1",
            lambda: manual.init_network([3, 2, 2], [tanh], np.random.default_rng(0)),
        ),
    ]
    for sentence, build in cases_:
        _raises_exactly(sentence, build)
    assert Network(t, b, (None, tanh, SOFTMAX)).g[2] is SOFTMAX
    assert Network(t, b, (None, SOFTMAX, relu)).g[1] is SOFTMAX  # softmax may sit in a hidden layer


def test_bad_batches_are_refused_in_one_sentence():
    net = manual.init_network([3, 5, 2], [CATALOGUE["tanh"]] * 2, np.random.default_rng(0))
    y = np.ones((2, 2))
    for sentence, x, y_ in [
        ("x must be a 2-D NumPy array with one example per row", np.ones(3), y),
        ("x must be a 2-D NumPy array with one example per row", [[1.0, 2.0, 3.0]], y),
        ("x has 4 columns but the network takes 3 inputs", np.ones((2, 4)), y),
        ("x is float32 but the network is float64", np.ones((2, 3), np.float32), y),
        ("x contains NaN or infinity", np.full((2, 3), np.inf), y),
        ("y must be an array of shape (2, 2), got (2, 3)", np.ones((2, 3)), np.ones((2, 3))),
        ("y must be an array of shape (2, 2), got (2, 2)", np.ones((2, 3)), [[1.0, 1.0], [1.0, 1.0]]),
        ("y contains NaN or infinity", np.ones((2, 3)), np.full((2, 2), np.nan)),
    ]:
        _raises_exactly(sentence, lambda x=x, y_=y_: manual.gradients(net, x, y_))
    _raises_exactly("x contains NaN or infinity", lambda: manual.forward(net, np.full((1, 3), np.nan)))


def test_this_module_never_imports_jax():
    import subprocess
    import sys

    code = (
        "import sys, property_tests.tests.test_without_autodiff, property_tests.tests.test_manual_api; "
        "leaked = [m for m in ('jax', 'jaxlib', 'reference') if m in sys.modules]; "
        "assert not leaked, leaked"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_reprs_name_the_entry():
    assert repr(CATALOGUE["relu"]) == "Activation('relu')" and repr(MSE) == "Loss('mse')"
    assert repr(SOFTMAX) == "VectorActivation('softmax')"  # OutputMap is its older name
    assert re.fullmatch(r"[a-z_0-9]+", CATALOGUE["gelu_tanh"].name)
