"""A second look at a point before a derivative is called wrong there.

The first look compares the hand value h with autodiff's r against a bound derived from the
dtype's rounding (``property_tests.tolerances``). That bound assumes both sides are computed
about as well as the dtype allows. Two right formulas can break the assumption: one that
cancels (the quotient rule's (z·cos z − sin z)/z² near 0 loses eight digits, and so does
``jax.grad`` of sin z / z, which goes through the same subtraction), and any formula evaluated
in float32, which cannot be more accurate than float32. So at every point the first look
rejects, three more opinions are taken, each of them vectorised over all such points:

1. **Local noise** (Moré and Wild, *Estimating computational noise*, SIAM J. Sci. Comput. 33,
   2011): h and r are evaluated at nine points a millionth of z apart around the point, the
   least-squares cubic is taken out (the true g′ is smooth on that scale), and the spread of
   what is left is the noise of each. A disagreement within twice the two noises is rounding,
   not a mistake.
2. **Higher precision**: the hand formula evaluated on ``np.longdouble`` inputs (the same
   ``xp=numpy`` code; 64-bit significand on x86-64, 113 on AArch64 Linux). Where that type is
   wider than float64 and the formula keeps it, the exact value of the formula is known to far
   more digits than the dtype under test gives, and it either matches autodiff (the formula is
   right, only imprecise in that dtype) or it does not.
3. **A Richardson-extrapolated central difference** of the forward, in ``np.longdouble`` where
   the forward keeps it (float64 otherwise), with its own error estimate: the difference
   between the steps h and h/2, plus the forward's own measured noise divided by h. It counts
   only where it is precise enough to tell h from r apart.

A point is *wrong* only when the disagreement survives all three. A point that the first look
rejected but the second clears is *imprecise* when the formula in higher precision is right and
the hand value itself (not autodiff) is the one that lost digits; one cleared by noise or by the
difference alone was within rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import tolerances as tol

NEIGHBOURS = 4
"""Noise is measured over the 2·4 + 1 floats nearest a point, as for autodiff's noise profile."""

NOISE_SAFETY = tol.NOISE_SAFETY
FD_SAFETY = tol.FINITE_DIFFERENCE_SAFETY

WIDE = np.dtype(np.longdouble)
HAS_WIDE = np.finfo(WIDE).eps < np.finfo(np.float64).eps
"""Whether np.longdouble is wider than float64 on this machine (not on Windows or macOS ARM)."""


NOISE_STEP = 2.0 ** -20
"""Noise is sampled at z + i·h, i = −4 … 4, h = 2⁻²⁰·max(|z|, 2⁻²⁰) (about a millionth of z).
Not at the nearest floats: where a formula cancels, its rounding errors at consecutive floats
are nearly the same (sin z and z·cos z each move by one ulp per ulp of z), so the nearest floats
hide exactly the noise that matters. A millionth of z moves them across many ulps."""


def neighbourhood(z: np.ndarray, dtype: np.dtype | type, k: int = NEIGHBOURS) -> np.ndarray:
    """The 2k + 1 points z + i·h of ``dtype`` around each z (z itself in the middle column)."""
    z = np.asarray(z, np.float64)
    h = NOISE_STEP * np.maximum(np.abs(z), NOISE_STEP)
    return (z[..., None] + np.arange(-k, k + 1) * h[..., None]).astype(dtype)


def _detrend() -> np.ndarray:
    """The projection that takes the least-squares cubic out of 2·NEIGHBOURS + 1 values."""
    t = np.linspace(-1, 1, 2 * NEIGHBOURS + 1)
    v = np.stack([t ** p for p in range(4)], axis=1)
    return np.eye(t.size) - v @ np.linalg.pinv(v)


_DETREND = _detrend()


def spread(rows: np.ndarray) -> np.ndarray:
    """Noise of each row of values at ``neighbourhood`` points: the spread of what is left after
    the least-squares cubic through the row is taken out (the true g′ is smooth on that scale,
    rounding is not). Non-finite rows have infinite noise, and rows that are a step
    (``tolerances.is_step``) none."""
    rows = np.asarray(rows)
    rows = rows if rows.dtype == WIDE else rows.astype(np.float64)  # keep longdouble's digits
    with np.errstate(all="ignore"):
        centred = rows - rows[..., NEIGHBOURS : NEIGHBOURS + 1]  # so the projection's own rounding is small
        residual = centred @ _DETREND.T.astype(rows.dtype)
        out = (np.max(residual, axis=-1) - np.min(residual, axis=-1)).astype(np.float64)
    finite = np.all(np.isfinite(rows), axis=-1) & np.isfinite(out)
    # A jump inside the row (a kink of g′ there) is not noise: it is judged as a kink, or not at all.
    flat = rows.reshape(-1, rows.shape[-1]).astype(np.float64)
    step = np.zeros(flat.shape[0], bool)
    step[np.all(np.isfinite(flat), axis=1)] = tol.is_step(flat[np.all(np.isfinite(flat), axis=1)])
    return np.where(step.reshape(out.shape), 0.0, np.where(finite, out, np.inf))


def in_wide(fn: Callable, z: np.ndarray) -> np.ndarray | None:
    """``fn(z, numpy)`` on ``np.longdouble`` inputs, when the type is wider than float64 and the
    function keeps it (SciPy's special functions, for one, return float64); else ``None``."""
    if not HAS_WIDE:
        return None
    try:
        with np.errstate(all="ignore"):
            out = fn(np.asarray(z, WIDE), np)
    except Exception:  # the user's code need not support longdouble
        return None
    out = np.asarray(out)
    return out if out.dtype == WIDE and out.shape == np.shape(z) else None


@dataclass
class Richardson:
    """A central difference of the forward with its error estimate (both float64)."""

    value: np.ndarray
    error: np.ndarray


def richardson(forward: Callable, z: np.ndarray) -> Richardson:
    """Central differences D(h) = (g(z + h) − g(z − h)) / 2h at h, h/2 and h/4, extrapolated
    twice (Richardson): R(h) = (4·D(h/2) − D(h)) / 3 cancels the h² term, and the value is
    R(h/2). h = u^(1/5)·max(1, |z|) in the widest type the forward keeps, which balances the
    h⁴ truncation left after extrapolation against rounding. Error: |R(h/2) − R(h)| plus the
    rounding of the forward (its measured noise and 8 ulps of |g|) over h/4; times
    ``FD_SAFETY``."""
    z = np.asarray(z, np.float64)
    probe = in_wide(forward, z[:1]) if z.size else None
    dtype = WIDE if probe is not None else np.dtype(np.float64)
    u = float(np.finfo(dtype).eps) / 2
    zw = z.astype(dtype)
    h = np.asarray(u ** 0.2, dtype) * np.maximum(1, np.abs(zw))
    offsets = np.array([-1, -0.5, -0.25, 0.25, 0.5, 1], dtype)
    with np.errstate(all="ignore"):
        g = np.asarray(forward(zw[:, None] + offsets[None, :] * h[:, None], np), dtype)
        d = [(g[:, 5 - i] - g[:, i]) / (2 * h * offsets[5 - i]) for i in range(3)]  # D(h), D(h/2), D(h/4)
        r_h, r_half = (4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3
        g_noise = spread(np.asarray(forward(neighbourhood(z, dtype), np), dtype))
        size = np.max(np.abs(g), axis=1).astype(np.float64)
        rounding = (g_noise + 8 * u * size) / (h.astype(np.float64) / 4)
        error = FD_SAFETY * (np.abs(r_half - r_h).astype(np.float64) + rounding)
    value = r_half.astype(np.float64)
    ok = np.isfinite(error) & np.isfinite(value)
    return Richardson(np.where(ok, value, 0.0), np.where(ok, error, np.inf))


@dataclass
class Verdicts:
    """The second look's findings at each re-examined point."""

    wrong: np.ndarray
    imprecise: np.ndarray
    threshold: np.ndarray
    hand_noise: np.ndarray
    autodiff_noise: np.ndarray
    high_precision: np.ndarray
    finite_difference: Richardson

    def hand_digits(self, hand: np.ndarray) -> np.ndarray:
        return _digits(hand, self.high_precision)

    def autodiff_digits(self, autodiff: np.ndarray) -> np.ndarray:
        return _digits(autodiff, self.high_precision)


def _digits(value: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Correct significant digits of value against truth (17 when equal, 0 when off by 100 %)."""
    with np.errstate(all="ignore"):
        rel = np.abs(value - truth) / np.maximum(np.abs(truth), np.finfo(np.float64).tiny)
        digits = -np.log10(np.maximum(rel, 1e-17))
    return np.where(np.isfinite(digits), np.clip(digits, 0, 17), 0.0)


WIDE_SAFETY = 16
"""The hand formula's rounding error in np.longdouble is estimated from its error in float64,
scaled by the ratio of the two unit roundoffs (first-order error analysis: a fixed formula's
rounding error is proportional to u); this factor covers the randomness of the proportion."""


def reexamine(forward: Callable, derivative: Callable, autodiff: Callable, z: np.ndarray,
              dtype: np.dtype, hand: np.ndarray, r: np.ndarray, allowed: np.ndarray,
              allowed_wide: np.ndarray) -> Verdicts:
    """The second look at every z (already in ``dtype``) where |hand − r| > allowed.

    ``allowed_wide`` is the first look's bound for a float64 evaluation, used for the hand
    formula in higher precision; ``autodiff(z)`` gives float64 g′ for any array shape. A hand
    value that is NaN or ∞ is cleared only by the formula in higher precision, finite and
    right there (so it lost everything to the dtype, as a z² that underflows in float32 does);
    a NaN that the formula gives in every precision is wrong."""
    z = np.asarray(z, np.float64)
    with np.errstate(all="ignore"):
        hand_rows = np.asarray(derivative(neighbourhood(z, dtype), np), np.float64)
    hand_noise = spread(hand_rows) if hand_rows.shape == z.shape + (2 * NEIGHBOURS + 1,) else np.full(z.shape, np.inf)
    autodiff_noise = spread(autodiff(neighbourhood(z, np.float64)))
    gap = np.abs(hand - r)
    noise = NOISE_SAFETY * (np.where(np.isfinite(hand_noise), hand_noise, 0.0) + autodiff_noise)
    within_noise = (gap <= allowed + noise) & np.isfinite(hand)

    wide = in_wide(derivative, z)
    if wide is not None:
        high = wide.astype(np.float64)
        with np.errstate(all="ignore"):
            in_64 = np.asarray(derivative(z, np), np.float64)
            wide_error = WIDE_SAFETY * np.abs(in_64 - high) * (np.finfo(WIDE).eps / np.finfo(np.float64).eps)
        wide_error = np.where(np.isfinite(wide_error), wide_error, np.inf)
        high_right = np.abs(high - r) <= allowed_wide + NOISE_SAFETY * (wide_error + autodiff_noise)
    else:
        high, wide_error, high_right = hand.astype(np.float64), np.zeros(z.shape), np.zeros(z.shape, bool)

    fd = richardson(forward, z)
    # The difference counts only where it is precise enough to tell the hand value from autodiff's.
    with np.errstate(invalid="ignore"):
        decisive = fd.error < gap / 2
        hand_near_fd = decisive & (np.abs(hand - fd.value) <= fd.error + allowed + noise)
        high_near_fd = (fd.error < np.abs(high - r) / 2) & (
            np.abs(high - fd.value) <= fd.error + allowed_wide + NOISE_SAFETY * wide_error)

    high_ok = (high_right | high_near_fd) & np.isfinite(high)
    cleared = within_noise | high_ok | (hand_near_fd & np.isfinite(hand))
    truth = np.where(high_ok, high, r)
    with np.errstate(invalid="ignore"):  # only the formula in higher precision can show it is right
        imprecise = cleared & high_ok & ~(np.abs(hand - truth) <= allowed)
    threshold = np.where(np.isfinite(hand_noise), allowed + noise, allowed)
    return Verdicts(~cleared, imprecise, threshold, hand_noise, autodiff_noise, truth, fd)
