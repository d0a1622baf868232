"""A second look at a point before a derivative is called wrong there.

The first look compares the hand value h with autodiff's r against a bound derived from the
dtype's rounding (``property_tests.library.tolerances``). That bound assumes both sides are computed
about as well as the dtype allows. Two right formulas can break the assumption: one that
cancels (the quotient rule's (z·cos z − sin z)/z² near 0 loses eight digits, and so does
``jax.grad`` of sin z / z, which goes through the same subtraction), and any formula evaluated
in float32, which cannot be more accurate than float32. So at every point the first look
rejects, three more opinions are taken, each of them vectorised over all such points:

1. **Local noise** (Moré and Wild, *Estimating computational noise*, SIAM J. Sci. Comput. 33,
   2011): h and r are evaluated at eight points either side of z, a millionth of max(|z|, 1)
   apart, the least-squares parabola is taken out of each side (the true g′ is a parabola on
   that scale), and the smaller spread of what is left is the noise of each. A disagreement
   within twice the two noises is rounding, not a mistake.
2. **Higher precision**: the hand formula evaluated on ``np.longdouble`` inputs (the same
   ``xp=numpy`` code; 64-bit significand on x86-64, 113 on AArch64 Linux). Where that type is
   wider than float64 and the formula keeps it, the exact value of the formula is known to far
   more digits than the dtype under test gives, and it either matches autodiff (the formula is
   right, only imprecise in that dtype) or it does not.
3. **A Richardson-extrapolated central difference** of the forward, in ``np.longdouble`` where
   the forward keeps it (float64 otherwise), with its own error estimate: the difference
   between the steps h and h/2, plus the forward's own measured noise divided by h. It counts
   only where it is precise enough to tell h from r apart.

A point is *wrong* only when the disagreement survives all three. Where the difference shows
autodiff itself far off, autodiff cannot judge the point: if the hand value sits nearer to
autodiff than that, both lost their digits to the same formula and the point is imprecise;
otherwise it is left unjudged. Either way it is never wrong. A point that the first look
rejected but the second clears is *imprecise* when the formula in higher precision is right and
the hand value itself (not autodiff) is the one that lost digits; one cleared by noise or by the
difference alone was within rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from property_tests.library import tolerances as tol

NEIGHBOURS = 8
"""Noise is measured at eight points either side of z: a parabola fitted to each side leaves five
degrees of freedom to measure the noise with."""

NOISE_SAFETY = tol.NOISE_SAFETY
FD_SAFETY = tol.FINITE_DIFFERENCE_SAFETY

WIDE = np.dtype(np.longdouble)
HAS_WIDE = np.finfo(WIDE).eps < np.finfo(np.float64).eps
"""Whether np.longdouble is wider than float64 on this machine (not on Windows or macOS ARM)."""


NOISE_STEP = 2.0**-20
"""Noise is sampled at z + i·h, i = −4 … 4, h = 2⁻²⁰·max(|z|, 1) (about a millionth of z, and
of 1 for |z| < 1; see ``SMALL_Z`` for |z| < 2⁻¹²). Not at the nearest floats: where a formula
cancels, its rounding errors at consecutive floats are nearly the same (sin z and z·cos z each
move by one ulp per ulp of z), so the nearest floats hide exactly the noise that matters; and
not at a millionth of z for small z either, where the same holds (the rounding of z³/6 moves by
z²·h/ulp(z) ≈ 2³²z² ulps a step, less than one for |z| < 1e-5)."""


SMALL_Z, SMALL_STEP = 2.0**-12, 2.0**-8
"""Below |z| = 2⁻¹² the step is 2⁻⁸·|z| instead: near a removable singularity at 0 a formula's
noise grows like 1/z, so the neighbourhood must stay at z's own scale, and at 0.4 % of z apart
its rounding errors are independent all the same."""


def neighbourhood(z: np.ndarray, dtype: np.dtype | type, k: int = NEIGHBOURS) -> np.ndarray:
    """The 2k + 1 points z + i·h of ``dtype`` around each z (z itself in the middle column)."""
    z = np.asarray(z, np.float64)
    h = np.where(np.abs(z) < SMALL_Z, SMALL_STEP * np.abs(z), NOISE_STEP * np.maximum(np.abs(z), 1.0))
    return (z[..., None] + np.arange(-k, k + 1) * h[..., None]).astype(dtype)


def _detrend() -> np.ndarray:
    """The projection that takes the least-squares parabola out of NEIGHBOURS values."""
    t = np.linspace(-1, 1, NEIGHBOURS)
    v = np.stack([t**p for p in range(3)], axis=1)
    return np.eye(t.size) - v @ np.linalg.pinv(v)


_DETREND = _detrend()


def spread(rows: np.ndarray) -> np.ndarray:
    """Noise of each row of values at ``neighbourhood`` points: the smaller of the spreads left
    in its two halves (the eight points either side of z) after the least-squares parabola
    through each is taken out. The true g′ is a parabola on that scale (what is left of it is
    g⁗·(4h)³/48, some 1e-17 of its size), rounding is not; a kink on one side
    of z (or at z itself, which neither half holds) is no noise, and the other half shows the
    noise alone. A half with a non-finite value has infinite noise."""
    rows = np.asarray(rows)
    rows = rows if rows.dtype == WIDE else rows.astype(np.float64)  # keep longdouble's digits
    halves = []
    for half in (rows[..., :NEIGHBOURS], rows[..., NEIGHBOURS + 1 :]):
        with np.errstate(all="ignore"):
            centred = half - half[..., :1]  # so the projection's own rounding is small
            residual = centred @ _DETREND.T.astype(rows.dtype)
            out = (np.max(residual, axis=-1) - np.min(residual, axis=-1)).astype(np.float64)
        halves.append(np.where(np.all(np.isfinite(half), axis=-1) & np.isfinite(out), out, np.inf))
    return np.minimum(*halves)


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
    """A central difference of the forward with its error estimate (both float64); where the
    one-sided rules disagree (a kink) the error is infinite, and ``left`` and ``right`` keep
    the one-sided slopes with their own errors."""

    value: np.ndarray
    error: np.ndarray
    left: Richardson | None = None
    right: Richardson | None = None


LADDER = (0.25, 1.0, 4.0, 16.0, 64.0)
"""Richardson is tried at these multiples of h = u^(1/5)·max(1, |z|): the scale on which a
forward varies is unknown, and a forward that cancels (its own noise over h dominating) wants a
larger step than a smooth one. The step with the smallest error estimate is taken."""


KINK_JUMP = 1e-8
"""One-sided derivatives farther apart than this (relative) and than four times their error
estimates mark a kink: their truncation after extrapolation is O(h³), some 1e-11 of their size,
and where g(z) itself is a cancellation's debris both sides carry it, with errors to match."""


SHRINK = (2.0**-10, 2.0**-20)
"""Where the one-sided rules disagree, the ladder is tried again this much smaller: a kink
*near* z (a clip's edge 1e-5 away) spoils every step that reaches it, and shows as slopes that
disagree, but is left behind by steps shorter than its distance; a kink *at* z never is."""


def richardson(forward: Callable, z: np.ndarray) -> Richardson:
    """``richardson_at`` on the ``LADDER``, then, where it finds the one-sided slopes apart,
    again on the ladder shrunk by each of ``SHRINK``: a point keeps the first answer that does
    not mark a kink (its error infinite only if every one does)."""
    z = np.asarray(z, np.float64)
    result = richardson_at(forward, z)
    for shrink in SHRINK:
        again = ~np.isfinite(result.error) & np.isfinite(result.value)
        if not again.any():
            break
        closer = richardson_at(forward, z[again], shrink)
        parts = []
        for mine, theirs in ((result, closer), (result.left, closer.left), (result.right, closer.right)):
            assert mine is not None and theirs is not None  # richardson_at gives both one-sided slopes
            value, error = mine.value.copy(), mine.error.copy()
            value[again], error[again] = theirs.value, theirs.error
            parts.append(Richardson(value, error))
        result = Richardson(parts[0].value, parts[0].error, parts[1], parts[2])
    return result


def richardson_at(forward: Callable, z: np.ndarray, shrink: float = 1.0) -> Richardson:
    """A derivative of the forward by Richardson extrapolation, with its error estimate.

    Central differences D(h) = (g(z + h) − g(z − h)) / 2h at h, h/2 and h/4, extrapolated twice:
    R(h) = (4·D(h/2) − D(h)) / 3 cancels the h² term, and the value is R(h/2). One-sided
    differences (g(z ± h) − g(z)) / ±h too, extrapolated for their h and h² terms, so that a
    kink just to one side of z does not spoil them all. h runs over ``LADDER`` times
    u^(1/5)·max(1, |z|), in the widest type the forward keeps. Error: the last extrapolation's
    change plus the rounding of the forward (its measured noise and 8 ulps of |g|) over the
    smallest step, times ``FD_SAFETY``; the smallest over every rule and step is taken, and it
    is infinite where the two one-sided values disagree (a kink at z)."""
    z = np.asarray(z, np.float64)
    probe = in_wide(forward, z[:1]) if z.size else None
    dtype = WIDE if probe is not None else np.dtype(np.float64)
    u = float(np.finfo(dtype).eps) / 2
    zw = z.astype(dtype)
    with np.errstate(all="ignore"):
        g_noise = spread(np.asarray(forward(neighbourhood(z, dtype), np), dtype))
    offsets = np.array([-1, -0.5, -0.25, 0, 0.25, 0.5, 1], dtype)
    rules = [Richardson(np.zeros(z.shape), np.full(z.shape, np.inf)) for _ in range(3)]  # central, right, left
    for rung in LADDER:
        h = np.asarray(shrink * rung * u**0.2, dtype) * np.maximum(1, np.abs(zw))
        with np.errstate(all="ignore"):
            g = np.asarray(forward(zw[:, None] + offsets[None, :] * h[:, None], np), dtype)
            # The central rule never reads g(z): its rounding is the forward's away from z (which
            # may be a removable singularity's debris), measured a quarter step either side.
            away = [
                spread(np.asarray(forward(neighbourhood((zw + s * h / 4).astype(np.float64), dtype), np), dtype))
                for s in (-1, 1)
            ]
            sizes = np.abs(g).astype(np.float64)
            step = h.astype(np.float64) / 4
            rounding = [
                (np.maximum(*away) + 8 * u * np.max(np.delete(sizes, 3, axis=1), axis=1)) / step,
                (g_noise + 8 * u * np.max(sizes, axis=1)) / step,
            ]
            for i, (value, change, factor) in enumerate(_extrapolations(g, h)):
                error = FD_SAFETY * (np.abs(change).astype(np.float64) + factor * rounding[min(i, 1)])
                value = value.astype(np.float64)
                better = np.isfinite(error) & np.isfinite(value) & (error < rules[i].error)
                rules[i] = Richardson(np.where(better, value, rules[i].value), np.where(better, error, rules[i].error))
    central, right, left = rules
    # Slopes that differ either side of z: a kink there, where no difference is the derivative.
    with np.errstate(invalid="ignore"):  # (beyond 1e-8 of their size, which no truncation reaches)
        kink = np.abs(right.value - left.value) > 4 * (right.error + left.error) + KINK_JUMP * (
            np.abs(right.value) + np.abs(left.value)
        )
    pick = np.argmin(np.stack([r.error for r in rules]), axis=0)
    value = np.choose(pick, [r.value for r in rules])
    error = np.choose(pick, [r.error for r in rules])
    return Richardson(value, np.where(kink, np.inf, error), left, right)


def _extrapolations(g: np.ndarray, h: np.ndarray):
    """(value, its last change, rounding factor) of the central and both one-sided rules, from
    g at z + (−1, −½, −¼, 0, ¼, ½, 1)·h."""
    central = [(g[:, 6 - i] - g[:, i]) / (2 * h * (1 / 2**i)) for i in range(3)]  # D(h), D(h/2), D(h/4)
    r_h, r_half = (4 * central[1] - central[0]) / 3, (4 * central[2] - central[1]) / 3
    yield r_half, r_half - r_h, 1.0
    for side in (1, -1):  # right, then left
        at = [3 + side * (3 - i) for i in range(3)]  # the points at h, h/2, h/4 on that side
        d = [(g[:, at[i]] - g[:, 3]) / (side * h / 2**i) for i in range(3)]
        first = [2 * d[1] - d[0], 2 * d[2] - d[1]]  # the h term gone
        second = (4 * first[1] - first[0]) / 3  # and the h² term
        yield second, second - first[1], 4.0


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
    at_kink: np.ndarray | None = None
    """Cleared only as the one-sided slope of a kink at (or within a step of) the point."""

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
"""The hand formula's rounding error in np.longdouble is estimated from its error in float64 (its
distance from the longdouble value, or its noise in float64 if larger: a cancellation may land
on the right value by chance), scaled by the ratio of the two unit roundoffs (first-order error
analysis: a fixed formula's rounding error is proportional to u); this factor covers the
randomness of the proportion."""


def reexamine(
    forward: Callable,
    derivative: Callable,
    autodiff: Callable,
    z: np.ndarray,
    dtype: np.dtype,
    hand: np.ndarray,
    r: np.ndarray,
    allowed: np.ndarray,
) -> Verdicts:
    """The second look at every z (already in ``dtype``) where |hand − r| > allowed.

    The formula in higher precision is held to the same bound ``allowed`` as the hand value
    (whether a formula is right is asked to the precision the dtype under test can answer);
    ``autodiff(z)`` gives float64 g′ for any array shape. A hand
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
        with np.errstate(all="ignore"):  # a longdouble beyond float64's range becomes ∞, not judged
            high = wide.astype(np.float64)
            in_64 = np.asarray(derivative(z, np), np.float64)
            noise_64 = spread(np.asarray(derivative(neighbourhood(z, np.float64), np), np.float64))
            error_64 = np.maximum(np.abs(in_64 - high), np.where(np.isfinite(noise_64), noise_64, 0.0))
            wide_error = WIDE_SAFETY * error_64 * (np.finfo(WIDE).eps / np.finfo(np.float64).eps)
        wide_error = np.where(np.isfinite(wide_error), wide_error, np.inf)
        high_right = np.abs(high - r) <= allowed + NOISE_SAFETY * (wide_error + autodiff_noise)
    else:
        high, wide_error, high_right = hand.astype(np.float64), np.zeros(z.shape), np.zeros(z.shape, bool)

    fd = richardson(forward, z)
    # The difference counts only where it is precise enough to tell the hand value from autodiff's.
    with np.errstate(invalid="ignore"):
        decisive = fd.error < gap / 2
        hand_near_fd = decisive & (np.abs(hand - fd.value) <= fd.error + allowed + noise)
        high_near_fd = (fd.error < np.abs(high - r) / 2) & (
            np.abs(high - fd.value) <= fd.error + allowed + NOISE_SAFETY * wide_error
        )

    # Where the difference shows autodiff itself far off (a removable singularity's formula at
    # z ≈ 1e-15 cancels every digit under autodiff too) and the hand value is closer to autodiff
    # than autodiff is to the difference, both ran the same right formula into the same loss.
    # The same holds when the formula in higher precision lands near autodiff's loss, though the
    # dtype under test made the hand value NaN (z³ underflows in float32 at z ≈ 1e-15).
    with np.errstate(invalid="ignore"):
        off = np.abs(r - fd.value)
        autodiff_lost = fd.error < off / 2
        if fd.left is not None and fd.right is not None:  # beside a kink: autodiff lies on neither one-sided slope
            autodiff_lost |= ~np.isfinite(fd.error) & np.all(
                [side.error < np.abs(r - side.value) / 2 for side in (fd.left, fd.right)], axis=0
            )
            off = np.where(
                np.isfinite(fd.error), off, np.minimum(np.abs(r - fd.left.value), np.abs(r - fd.right.value))
            )
        shared = autodiff_lost & (
            ((gap <= off / 4) & np.isfinite(hand))
            | ((np.abs(high - r) <= off / 4) & np.isfinite(high) & (wide is not None))
        )
    # At a kink (or one so close that every step reaches it) no difference is the derivative,
    # but a right hand value is the slope of one side: it is cleared when it lies on either
    # one-sided slope, each decisive against the gap. A wrong value lies on neither.
    with np.errstate(invalid="ignore"):
        on_a_side = np.zeros(z.shape, bool)
        if fd.left is not None and fd.right is not None:
            for side in (fd.left, fd.right):
                on_a_side |= (
                    (side.error < gap / 2)
                    & (np.abs(hand - side.value) <= side.error + allowed + noise)
                    & ~np.isfinite(fd.error)
                )
    high_ok = (high_right | high_near_fd) & np.isfinite(high)
    # And where autodiff is shown off without the hand value sitting near it, nothing trustworthy
    # is left to judge the hand value against (both are the same formula's debris at z ≈ 1e-77):
    # not judged, never wrong.
    unjudgeable = autodiff_lost & (np.isfinite(hand) | (np.isfinite(high) & (wide is not None)))
    cleared = within_noise | high_ok | (hand_near_fd & np.isfinite(hand)) | shared | unjudgeable | on_a_side
    truth = np.where(high_ok, high, np.where(shared, fd.value, r))
    with np.errstate(invalid="ignore"):  # only a better value than autodiff's can show the loss
        imprecise = cleared & (high_ok | shared) & ~(np.abs(hand - truth) <= allowed)
    threshold = np.where(np.isfinite(hand_noise), allowed + noise, allowed)
    others = within_noise | high_ok | (hand_near_fd & np.isfinite(hand))
    return Verdicts(~cleared, imprecise, threshold, hand_noise, autodiff_noise, truth, fd, on_a_side & ~others)
