"""Every tolerance of the suite, and why it is what it is.

The hand derivation and autodiff compute the same real numbers with different roundings, so
they may differ by the rounding error of each, and by nothing more. Each comparison is
elementwise,

    |manual − autodiff| ≤ (1 + u₆₄/u) · u · E  +  2 · N  +  floor,

where u = eps/2 is the unit roundoff of the dtype under test, and:

- E is a *running error bound* in units of u (Higham, *Accuracy and Stability of Numerical
  Algorithms*, §3.1 and §3.3), carried through the forward and backward pass beside the values
  (``property_tests.compare.error_bounds``). Its ingredients:
  - a sum of m products is off by at most m·u times the sum of the absolute products (γ_m);
  - one evaluation of g, or of g′, is off by at most ``ELEMENTARY_ULPS``·u times the size of
    the terms it is computed from. For g that size is |g(z)| + f_g|z|, f_g = max|g′| being the
    slope scale (½z(1 + tanh u) is tiny for z ≪ 0 but its terms are not). For g′ it is
    f_g(1 + |z|): many g′ are sums such as h(z) + z·h′(z) (SiLU, GELU, Mish, hard SiLU), where
    the rounding of h′ — often taken from a rounded h near saturation, as 1 − σ(z) — is
    multiplied by |z|;
  - an error Δz in z moves g′(z) by |g″|Δz ≤ 2·f_g·Δz (the largest max|g″| / max|g′| over the
    catalogue is soft_sign's, 2);
  - the factor (1 + u₆₄/u) counts the reference's own rounding (float64) beside the manual
    one: 2 in float64, 1 in float32.
- N is the rounding noise of autodiff's own g′, measured per activation
  (``derivative_noise``) and carried through the same sums. ``jax.grad`` differentiates the
  forward's program, and a forward such as ½z(1 + tanh u) turns into ½z·u′(1 − tanh²u), whose
  error near saturation is many ulps of |z·u′| (about 4e-14 at |z| ≈ 7): measured, not guessed.
- floor is a few smallest normal numbers: XLA on the CPU flushes subnormal results to zero
  while NumPy keeps them.

Sensitivity: a derivative off by a relative 1e-6 must fail in float64. Relative to the
magnitude M of each quantity (the same sums on absolute values), the float64 bound is typically
1e-14 to 1e-11 for the suite's networks (depth ≤ 6, width ≤ 16); ``backprop-check verify``
prints it beside every error, and the negative controls in ``test_equations.py`` and
``test_catalogue.py`` show a derivative off by a relative 1e-6 failing.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

ELEMENTARY_ULPS = 8
"""Rounding of one g or g′ evaluation, in units of u: NumPy/SciPy and XLA elementary functions
are within 1–4 ulps, and a catalogue entry composes at most three of them."""

SECOND_DERIVATIVE_RATIO = 2
"""max|g″| / max|g′| over the catalogue (soft_sign's); bounds how far an error in z moves g′."""

NOISE_SAFETY = 2
"""The oracle's measured noise is counted twice: the grid may miss its worst point."""

NOISE_NEIGHBOURS = 4
"""Noise is the spread of the oracle over the 2·4 + 1 floats nearest each grid point."""

REFERENCE_DTYPE = np.dtype(np.float64)


@lru_cache(maxsize=None)
def unit_roundoff(dtype: np.dtype | type) -> float:
    """u = eps/2: the largest relative error of one rounding."""
    return float(np.finfo(dtype).eps) / 2


def both_sides(dtype: np.dtype | type) -> float:
    """Both computations round: the manual one in ``dtype``, the reference in float64."""
    return 1 + unit_roundoff(REFERENCE_DTYPE) / unit_roundoff(dtype)


def scale(dtype: np.dtype | type) -> float:
    """What one unit of a running error bound E is worth: (1 + u₆₄/u)·u."""
    return both_sides(dtype) * unit_roundoff(dtype)


def floor(dtype: np.dtype | type, terms: int) -> float:
    """Absolute slack for subnormal results flushed to zero by XLA: one smallest normal per term."""
    return _smallest_normal(dtype) * (terms + 2)


@lru_cache(maxsize=None)
def _smallest_normal(dtype: np.dtype | type) -> float:
    return float(np.finfo(dtype).smallest_normal)


def derivative_bound(g_scale: float, z: np.ndarray) -> np.ndarray:
    """Error of one g′ evaluation at z, in units of u: ELEMENTARY_ULPS · f_g · (1 + |z|)."""
    return ELEMENTARY_ULPS * g_scale * (1 + np.abs(z))


def _grid() -> np.ndarray:
    """Dense on [−50, 50], then logarithmic out to ±1e3."""
    tail = np.logspace(np.log10(50), 3, 400)[1:]
    return np.concatenate([-tail[::-1], np.linspace(-50, 50, 20_001), tail])


@lru_cache(maxsize=None)
def slope_scale(g) -> float:
    """f_g = max |g′| over the grid, from ``jax.grad`` of g's forward (never from the hand
    derivative under test). At least 1e-3, so that a nearly flat activation does not make
    every bound vanish."""
    from reference import derivative

    return max(float(np.max(np.abs(derivative(g, _grid())))), 1e-3)


@lru_cache(maxsize=None)
def derivative_noise(g) -> float:
    """The rounding noise of autodiff's own g′, measured (absolute, float64).

    Computational noise is measured as Moré and Wild do (*Estimating computational noise*,
    SIAM J. Sci. Comput. 33, 2011): evaluate the oracle at the nine floats nearest each point
    of a dense grid, where the true g′ barely moves, and take the largest spread. Rows that
    straddle a declared kink are left out, and so are rows that are a step (``is_step``): a
    jump of g′ that nobody declared is not noise, and counting it as noise would make every
    tolerance as wide as the jump.
    """
    from reference import derivative

    grid = _grid()
    steps = np.arange(-NOISE_NEIGHBOURS, NOISE_NEIGHBOURS + 1)
    z = grid[:, None] + steps[None, :] * np.spacing(np.abs(grid))[:, None]
    r = derivative(g, z)
    spread = np.max(r, axis=1) - np.min(r, axis=1)
    for kink in g.kinks:
        spread[(z.min(axis=1) <= kink) & (z.max(axis=1) >= kink)] = 0.0
    spread[is_step(r)] = 0.0
    return float(np.max(spread))


STEP_FLATNESS = 1e-3
"""A row of neighbouring g′ values is a step when each side varies by at most this fraction of
the whole row's spread; rounding noise scatters instead."""

STEP_MINIMUM = 1e-9
"""...and when the two sides lie at least this far apart, relative to the row's largest |g′|.
Autodiff's rounding noise stays below 1e-12 of it (the largest measured in the catalogue is
about 260 ulps, 6e-14), so a difference a thousand times that is a jump, never rounding."""


def is_step(rows: np.ndarray) -> np.ndarray:
    """For each row of values at consecutive floats: is it a jump rather than noise? True when
    the row splits into a left and a right part, each flat (``STEP_FLATNESS``) and at levels
    at least half the row's spread and ``STEP_MINIMUM`` apart, with at most one point between
    them (the value at a kink may lie between the one-sided slopes). A lone outlier in a flat
    row is not a step, and nor is a staircase of a few ulps."""
    rows = np.asarray(rows, np.float64)
    total = np.max(rows, axis=1) - np.min(rows, axis=1)
    flat = STEP_FLATNESS * total
    jump = np.maximum(total / 2, STEP_MINIMUM * np.max(np.abs(rows), axis=1))
    width = rows.shape[1]
    step = np.zeros(rows.shape[0], bool)
    for split in range(1, width):
        for gap in (0, 1):
            left, right = rows[:, :split], rows[:, split + gap:]
            if right.shape[1] == 0:
                continue
            left_flat = np.max(left, axis=1) - np.min(left, axis=1) <= flat
            right_flat = np.max(right, axis=1) - np.min(right, axis=1) <= flat
            apart = np.abs(left[:, 0] - right[:, 0]) >= jump
            step |= left_flat & right_flat & apart & (total > 0)
    return step


FINITE_DIFFERENCE_SAFETY = 4
"""Central differences are trusted to within 4× their own a-posteriori error estimate."""


def finite_difference_step(dtype: np.dtype | type = np.float64) -> float:
    """h = u^(1/3) balances truncation (∝ h²) against rounding (∝ u/h) in a central difference."""
    return unit_roundoff(dtype) ** (1 / 3)


def finite_difference_tolerance(d_h: np.ndarray, d_2h: np.ndarray, error_bound: np.ndarray,
                                h: np.ndarray, dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Error bound of the central difference D(h) = (E(θ+h) − E(θ−h)) / 2h.

    Truncation: D(h) − E′ ≈ c·h², so D(2h) − D(h) ≈ 3c·h² estimates it (Richardson).
    Rounding: each E is off by at most u·``error_bound``, and the difference divides by 2h.
    Both, times FINITE_DIFFERENCE_SAFETY."""
    truncation = np.abs(d_2h - d_h) / 3
    rounding = unit_roundoff(dtype) * error_bound / h
    return FINITE_DIFFERENCE_SAFETY * (truncation + rounding)
