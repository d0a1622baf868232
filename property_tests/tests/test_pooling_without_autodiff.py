"""Pooling and flatten checked without autodiff; and the strategies, the wrong layers and the
hand-made ties that ``test_pooling.py`` shares.

This module never imports JAX (nor ``reference``), so mutation testing of ``manual/`` can run
it quickly (``docs/mutation.md``). Its properties, each beside a negative control it rejects:

- central differences of Σ z·δ agree with ``input_delta`` (on inputs without ties, more than
  1/N apart, so that no step of the difference crosses a tie of max pooling);
- max pooling conserves δ: every window hands on its δ exactly once, ties or not;
- at hand-made ties, δ lands where the recorded convention says (``HAND_MADE_TIES``: the first
  maximum in row-major order within each window, what ``jax.grad`` does);
- the loop forms equal the vectorized forms, in float64 and float32, and keep the dtype;
- ``out_shape`` counts the windows, and every refusal is a ``ValueError`` saying why.

Strategies. A configuration draws window, stride and padding per axis (window 1–4, stride 1–3,
padding 0–2 and smaller than the window, so that every window holds at least one input), then
the sizes: image height and width 1–12, channels 1–4, batch 1–4, all different from each other
(and the output's height from its width) where the ranges allow, and half the time chosen so
that the stride does not divide H + 2ph − wh (or W + 2pw − ww): the last rows or columns then
fall in no window. Inputs come with deliberate ties (``tied_inputs``) or without
(``untied_inputs``); δ lies on a grid of 2⁻¹⁰ (``deltas``).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import TypedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from manual.pooling import AvgPool2D, Flatten, MaxPool2D, output_size
from property_tests.banks.controls import rejects
from property_tests.banks.layer_controls import (  # noqa: F401
    AvgOffByOnePerMillion,
    AvgWithoutDivisor,
    EveryTiedMaximum,
    FortranFlatten,
    FortranFlattenBack,
    LastMaximum,
    SplitAmongTied,
)
from property_tests.library import tolerances as tol

Pair = tuple[int, int]

DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

# --- strategies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolCase:
    """One pooling configuration, a batch a⁽ᵏ⁻¹⁾ (n, C, H, W) and a δ⁽ᵏ⁾ of the output's shape."""

    window: Pair
    stride: Pair
    padding: Pair
    a_prev: np.ndarray
    delta: np.ndarray

    @property
    def config(self) -> tuple[Pair, Pair, Pair]:
        return self.window, self.stride, self.padding

    def layer(self, kind=MaxPool2D):
        """This configuration's layer of ``kind`` (``Flatten`` takes none)."""
        return kind() if issubclass(kind, Flatten) else kind(*self.config)

    @property
    def reach(self) -> int:
        """K = ⌈wh/sh⌉·⌈ww/sw⌉: the most windows that can hold one input."""
        return ceil(self.window[0] / self.stride[0]) * ceil(self.window[1] / self.stride[1])

    def describe(self) -> str:
        return (
            f"window {self.window}, stride {self.stride}, padding {self.padding}, "
            f"a_prev {self.a_prev.shape}, delta {self.delta.shape}"
        )


def _prefer(options: list[int], *wishes) -> list[int]:
    """``options`` narrowed by each wish in turn, skipping a wish that would leave none."""
    for wish in wishes:
        options = [v for v in options if wish(v)] or options
    return options


# Same shape as conv_strategies.conv_cases' signature: each strategy's bounds are keywords of its
# own, with their defaults, so a test asks for exactly the cases it needs.
@st.composite
def pool_configs(
    draw,
    *,
    max_size: int = 12,
    max_channels: int = 4,
    max_batch: int = 4,
    max_window: int = 4,
    max_stride: int = 3,
    max_padding: int = 2,
):
    """(window, stride, padding, (n, C, H, W)) as the module docstring describes."""
    window = (draw(st.integers(1, max_window)), draw(st.integers(1, max_window)))
    stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
    padding = tuple(draw(st.integers(0, min(max_padding, w - 1))) for w in window)  # padding < window
    ragged = draw(st.booleans())

    def sizes(axis: int, *wishes) -> list[int]:
        w, s, p = window[axis], stride[axis], padding[axis]
        fits = [v for v in range(1, max_size + 1) if v + 2 * p >= w]
        leftover = (lambda v: (v + 2 * p - w) % s != 0) if ragged else (lambda v: True)
        return _prefer(fits, *wishes, leftover)

    H = draw(st.sampled_from(sizes(0)))
    H_out = output_size(H, window[0], stride[0], padding[0])
    W = draw(
        st.sampled_from(sizes(1, lambda v: v != H, lambda v: output_size(v, window[1], stride[1], padding[1]) != H_out))
    )
    used = {H, W, H_out, output_size(W, window[1], stride[1], padding[1])}
    C = draw(st.sampled_from(_prefer(list(range(1, max_channels + 1)), lambda v: v not in used)))
    n = draw(st.sampled_from(_prefer(list(range(1, max_batch + 1)), lambda v: v not in used | {C})))
    return window, stride, padding, (n, C, H, W)


def tied_inputs(shape: tuple[int, ...], window: Pair) -> st.SearchStrategy[np.ndarray]:
    """Integers from a few consecutive values (one to four of them, all negative at times, so
    that a padding of 0 instead of −∞ would win), and half the time a block of the window's size
    filled with the largest value: many windows hold several equal maxima, some nothing else."""

    @st.composite
    def draw(draw_) -> np.ndarray:
        low, levels = draw_(st.integers(-4, 0)), draw_(st.integers(0, 3))
        plateau, seed = draw_(st.booleans()), draw_(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        x = rng.integers(low, low + levels + 1, shape).astype(np.float64)
        if plateau:
            (H, W), (wh, ww) = shape[-2:], (min(window[0], shape[-2]), min(window[1], shape[-1]))
            y, x0 = rng.integers(0, H - wh + 1), rng.integers(0, W - ww + 1)
            x[..., y : y + wh, x0 : x0 + ww] = x.max()
        return x

    return draw()


def untied_inputs(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """The N = ∏shape values (2k − N + 1)/2ᵇ, k = 0 … N − 1, 2ᵇ the power of two with N ≤ 2ᵇ < 2N,
    in an order drawn from a seed: all in (−1, 1), exact in float32 (b ≤ 12), and every two more
    than 1/N apart (1/2304 at the largest shapes), far more than a central difference's step, so
    no step crosses a tie."""

    def spread(seed: int) -> np.ndarray:
        N = int(np.prod(shape))
        k = np.random.default_rng(seed).permutation(N)
        return ((2 * k - N + 1) / 2.0 ** (N - 1).bit_length()).reshape(shape)

    return st.integers(0, 2**32 - 1).map(spread)


DELTA_GRID = 2.0**-10
"""δ is a multiple of 2⁻¹⁰ in [−1, 1]: a sum of up to 2¹³ of them needs at most 24 bits, so
every sum of δ is exact in float32 and float64, in any order. Max pooling only routes δ, so its
result can then be compared exactly, whatever order autodiff adds overlapping windows in."""


def deltas(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """δ on the grid ``DELTA_GRID``, drawn from a seed."""
    return st.integers(0, 2**32 - 1).map(
        lambda seed: np.random.default_rng(seed).integers(-1024, 1025, shape) * DELTA_GRID
    )


def pool_cases(*, ties: bool | None = True, flat: bool = False, **limits) -> st.SearchStrategy[PoolCase]:
    """A ``PoolCase``: inputs with ties (``ties=True``), without (``False``) or either (``None``);
    δ of the pooled shape, or of the flattened one (n, C·H·W) with ``flat``."""

    @st.composite
    def draw(draw_) -> PoolCase:
        window, stride, padding, shape = draw_(pool_configs(**limits))
        tied = draw_(st.booleans()) if ties is None else ties
        a_prev = draw_(tied_inputs(shape, window) if tied else untied_inputs(shape))
        n, C, H, W = shape
        out = (
            (n, C * H * W)
            if flat
            else (n, C, *(output_size(*axis) for axis in zip((H, W), window, stride, padding, strict=True)))
        )
        return PoolCase(window, stride, padding, a_prev, draw_(deltas(out)))

    return draw()


class LastMaximumLoops(MaxPool2D):
    """Wrong in the loop form only: ``≥`` in the search for the maximum."""

    _first_maximum = LastMaximum._first_maximum


# --- the tie convention, recorded on ties made by hand ------------------------------------------

HAND_MADE_TIES = [
    # (what, a_prev (H, W), window, stride, padding, δ (H_out, W_out), where δ must land)
    # The entries share one shape: each tie is written out whole, so it can be checked by hand.
    (
        "a window of equal values: the first element",
        [[1.0, 1.0], [1.0, 1.0]],
        (2, 2),
        (2, 2),
        (0, 0),
        [[5.0]],
        [[5.0, 0.0], [0.0, 0.0]],
    ),
    (
        "ties at (0, 1) and (1, 0): (0, 1) comes first in row-major order",
        [[0.0, 1.0], [1.0, 0.0]],
        (2, 2),
        (2, 2),
        (0, 0),
        [[5.0]],
        [[0.0, 5.0], [0.0, 0.0]],
    ),
    (
        "ties at (0, 2) and (2, 0) of a 3 × 3 window: row-major, not column-major",
        [[0.0, 0.0, 7.0], [0.0, 0.0, 0.0], [7.0, 0.0, 0.0]],
        (3, 3),
        (1, 1),
        (0, 0),
        [[5.0]],
        [[0.0, 0.0, 5.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    ),
    (
        "overlapping windows over one plateau: the first maximum of each window, not of the image",
        [[1.0, 1.0, 1.0]],
        (1, 2),
        (1, 1),
        (0, 0),
        [[10.0, 100.0]],
        [[10.0, 100.0, 0.0]],
    ),
    (
        "all −1 with padding 1: −∞ padding never wins, and windows overlapping at (0, 0) add up",
        [[-1.0, -1.0], [-1.0, -1.0]],
        (2, 2),
        (1, 1),
        (1, 1),
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]],
        [[1.0 + 2 + 4 + 5, 3.0 + 6], [7.0 + 8, 9.0]],
    ),
]
"""Where ``jax.grad`` of ``reduce_window(max)`` sends δ at ties (``test_pooling.py`` checks each
row against ``jax.vjp``); arrays are one example, one channel."""

HAND_MADE_IDS = [row[0].split(":")[0] for row in HAND_MADE_TIES]


def hand_made_tie(row) -> tuple:
    """(what, a_prev, δ, expected) as (1, 1, H, W) arrays, and the layer's configuration."""
    what, a_prev, window, stride, padding, delta, expected = row
    a_prev, delta, expected = (np.array(v)[None, None] for v in (a_prev, delta, expected))
    return what, a_prev, delta, expected, (window, stride, padding)


@pytest.mark.parametrize("row", HAND_MADE_TIES, ids=HAND_MADE_IDS)
def test_tie_convention_on_hand_made_ties(row):
    what, a_prev, delta, expected, config = hand_made_tie(row)
    layer = MaxPool2D(*config)
    assert np.array_equal(layer.input_delta(delta, a_prev), expected), what
    assert np.array_equal(layer.input_delta_loops(delta, a_prev), expected), what


# --- central differences and conservation -------------------------------------------------------

H_STEP = tol.finite_difference_step()


def central_differences(layer, a_prev: np.ndarray, delta: np.ndarray, *, per_channel: bool):
    """D(h) and D(2h) of S(a) = Σ z(a)·δ in every element of a, h = u^(1/3)·max(1, |a|), and a bound
    (in units of u) on the rounding of each S, which sums z.size products of z's that are
    themselves sums of up to wh·ww terms.

    With ``per_channel`` (pooling: each channel of each example is pooled on its own, so z[t, c]
    depends on a[t, c] alone) one position (y, x) moves in every example and channel at once,
    and S is read per (t, c): H·W moves instead of n·C·H·W."""
    h = H_STEP * np.maximum(1.0, np.abs(a_prev))
    quotients = [np.empty_like(a_prev), np.empty_like(a_prev)]
    terms = a_prev.size + np.prod(getattr(layer, "window", (1, 1))) + 2
    axes = (2, 3) if per_channel else None
    positions = np.ndindex(a_prev.shape[2:] if per_channel else a_prev.shape)
    bound = 0.0
    for position in positions:
        index = (slice(None), slice(None), *position) if per_channel else position
        for k, step in enumerate((1, 2)):
            up, down = a_prev.copy(), a_prev.copy()
            up[index] += step * h[index]
            down[index] -= step * h[index]
            z_up, z_down = layer.forward(up), layer.forward(down)
            quotients[k][index] = np.sum((z_up - z_down) * delta, axis=axes) / (2 * step * h[index])
            bound = max(bound, terms * np.sum((np.abs(z_up) + np.abs(z_down)) * np.abs(delta)))
    return quotients[0], quotients[1], h, bound


def input_delta_matches_central_differences(case: PoolCase, kind=MaxPool2D) -> None:
    """∂S/∂a by central differences equals ``input_delta``, within the differences' own error
    (``tolerances.finite_difference_tolerance``)."""
    layer = case.layer(kind)
    hand = layer.input_delta(case.delta, case.a_prev)
    d_h, d_2h, h, bound = central_differences(layer, case.a_prev, case.delta, per_channel=not issubclass(kind, Flatten))
    allowed = tol.finite_difference_tolerance(d_h, d_2h, bound, h)
    bad = np.abs(hand - d_h) > allowed
    assert not bad.any(), (
        f"{kind.__name__}, {case.describe()}: input_delta differs from central differences "
        f"at {np.argwhere(bad)[:3].tolist()}: {hand[bad][:3]} vs {d_h[bad][:3]}"
    )


def max_pool_conserves_delta(case: PoolCase, kind=MaxPool2D) -> None:
    """Σ of ∂Eₜ/∂a over each example and channel is Σ δ: every window's δ reaches exactly one input
    (padding is never a maximum). Exact, since δ lies on a grid of 2⁻¹⁰."""
    grad = case.layer(kind).input_delta(case.delta, case.a_prev)
    assert np.array_equal(grad.sum(axis=(2, 3)), case.delta.sum(axis=(2, 3))), case.describe()


class Untied(TypedDict):
    """``pool_cases`` without ties, and the limits of ``pool_configs``."""

    ties: bool
    max_size: int
    max_channels: int
    max_batch: int


UNTIED = Untied(ties=False, max_size=8, max_channels=3, max_batch=3)
"""Central differences cost four forward passes per position: the images stay at most 8 × 8."""


@pytest.mark.parametrize("kind", [MaxPool2D, AvgPool2D], ids=lambda k: k.__name__)
@given(case=pool_cases(**UNTIED))
def test_pooling_input_delta_by_central_differences(kind, case):
    input_delta_matches_central_differences(case, kind)


@given(case=pool_cases(flat=True, **UNTIED))
def test_flatten_input_delta_by_central_differences(case):
    input_delta_matches_central_differences(case, Flatten)


def test_central_differences_reject_average_pooling_without_its_divisor():
    assert rejects(input_delta_matches_central_differences, pool_cases(**UNTIED), kind=AvgWithoutDivisor)


def test_central_differences_reject_flatten_laid_back_in_fortran_order():
    assert rejects(input_delta_matches_central_differences, pool_cases(flat=True, **UNTIED), kind=FortranFlattenBack)


@given(case=pool_cases(ties=True))
def test_max_pool_conserves_delta_at_ties(case):
    max_pool_conserves_delta(case)


def test_conservation_rejects_delta_to_every_tied_maximum():
    assert rejects(max_pool_conserves_delta, pool_cases(ties=True), kind=EveryTiedMaximum)


# --- loops against vectorized -------------------------------------------------------------------


def within(value: np.ndarray, expected: np.ndarray, allowed: np.ndarray, what: str) -> None:
    """|value − expected| ≤ allowed everywhere, or an AssertionError saying by how much."""
    excess = np.abs(value.astype(np.float64) - expected) - allowed
    assert not (excess > 0).any(), (
        f"{what}: off by {np.max(np.abs(value - expected)):.3g} where {allowed.flat[np.argmax(excess)]:.3g} is allowed"
    )


def loops_match_vectorized(case: PoolCase, kind=MaxPool2D, dtype=np.float64) -> None:
    """``forward_loops`` and ``input_delta_loops`` equal ``forward`` and ``input_delta`` (exactly
    where the layer only moves values; for average pooling to 2u · terms · the same sums on
    absolute values, both sides rounding in ``dtype``), and keep ``dtype``."""
    layer = case.layer(kind)
    a_prev, delta = case.a_prev.astype(dtype), case.delta.astype(dtype)
    pairs = {
        "forward": (layer.forward_loops(a_prev), layer.forward(a_prev)),
        "input_delta": (layer.input_delta_loops(delta, a_prev), layer.input_delta(delta, a_prev)),
    }
    for name, (loops, vectorized) in pairs.items():
        assert loops.dtype == vectorized.dtype == np.dtype(dtype), (name, loops.dtype, vectorized.dtype)
        assert loops.shape == vectorized.shape, (name, loops.shape, vectorized.shape)
        if not issubclass(kind, AvgPool2D):
            assert np.array_equal(loops, vectorized), f"{name} of {kind.__name__}, {dtype}, {case.describe()}"
    if issubclass(kind, AvgPool2D):
        u, m = tol.unit_roundoff(dtype), case.window[0] * case.window[1]
        within(
            pairs["forward"][0],
            pairs["forward"][1],
            2 * u * m * layer.forward(np.abs(case.a_prev)),
            f"forward, {dtype}, {case.describe()}",
        )
        within(
            pairs["input_delta"][0],
            pairs["input_delta"][1],
            2 * u * case.reach * layer.input_delta(np.abs(case.delta), case.a_prev),
            f"input_delta, {dtype}, {case.describe()}",
        )


@pytest.mark.parametrize("kind", [MaxPool2D, AvgPool2D], ids=lambda k: k.__name__)
@given(case=pool_cases(ties=None, max_size=9), dtype=st.sampled_from(DTYPES))
def test_loops_match_vectorized(kind, case, dtype):
    loops_match_vectorized(case, kind, dtype)


@given(case=pool_cases(ties=None, flat=True, max_size=9), dtype=st.sampled_from(DTYPES))
def test_flatten_loops_match_vectorized(case, dtype):
    loops_match_vectorized(case, Flatten, dtype)


def test_loops_property_rejects_loops_keeping_the_last_maximum():
    assert rejects(loops_match_vectorized, pool_cases(ties=True, max_size=9), kind=LastMaximumLoops)


# --- shapes, parameters and refusals ------------------------------------------------------------


@given(case=pool_cases(ties=None))
def test_no_parameters(case):
    rng = np.random.default_rng(0)
    for kind in (MaxPool2D, AvgPool2D, Flatten):
        layer = case.layer(kind)
        assert layer.init(rng, case.a_prev.shape[1:], np.float64) == {}
        assert layer.parameter_gradients(case.delta, case.a_prev, {}) == {}


def test_out_shape_of_ragged_sizes():
    # 7 + 2·1 − 3 = 6 is not a multiple of 4: two windows down, the last row read by none
    assert MaxPool2D((3, 2), (4, 3), (1, 0)).out_shape((2, 7, 5)) == (2, 2, 2)
    assert AvgPool2D((1, 1), (1, 1), (0, 0)).out_shape((3, 1, 1)) == (3, 1, 1)
    assert Flatten().out_shape((3, 4, 5)) == (60,)


REFUSED = [
    (lambda: MaxPool2D((2, 2), (1, 1), (2, 0)), "smaller than the window"),
    (lambda: AvgPool2D((2, 1), (1, 1), (0, 1)), "smaller than the window"),
    (lambda: MaxPool2D((0, 2)), "window must be a pair"),
    (lambda: MaxPool2D((2, 2), (1, 0)), "stride must be a pair"),
    (lambda: MaxPool2D((2, 2), (1, 1), (-1, 0)), "padding must be a pair"),
    (lambda: MaxPool2D([2, 2]), "window must be a pair"),  # type: ignore[arg-type]  # a list, to check the refusal
    (lambda: MaxPool2D((3, 3)).out_shape((1, 2, 5)), "does not fit"),
    (lambda: AvgPool2D((3, 3), (1, 1), (1, 0)).out_shape((1, 5, 2)), "does not fit"),
    (lambda: MaxPool2D((2, 2)).out_shape((4, 4)), "in_shape must be"),
    (lambda: Flatten().out_shape((4, 0, 4)), "in_shape must be"),
    (lambda: MaxPool2D((2, 2)).forward(np.zeros((4, 4))), "a_prev must be"),
    (lambda: MaxPool2D((2, 2)).forward(np.zeros((1, 1, 4, 4), int)), "a_prev must be"),
    (lambda: AvgPool2D((2, 2)).input_delta(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 4, 4))), "delta must have"),
    (lambda: Flatten().input_delta(np.zeros((1, 15)), np.zeros((1, 1, 4, 4))), "delta must have"),
]


@pytest.mark.parametrize("make, message", REFUSED, ids=[m for _, m in REFUSED])
def test_refusals_say_why_in_one_sentence(make, message):
    with pytest.raises(ValueError, match=message) as error:
        make()
    assert "\n" not in str(error.value) and ". " not in str(error.value)
