"""Check a user's own activation: its hand derivative against ``jax.grad`` of its forward,
pointwise and inside random networks, with kinks told apart from mistakes.

    from property_tests.checkers.activation_check import check_activation, assert_activation_correct

    report = check_activation(MY_ACTIVATION, examples=200, seed=0)
    report.verdict            # "verified" or "wrong"
    report.counterexample     # the simplest z where the derivative is wrong, or None
    assert_activation_correct(MY_ACTIVATION)   # fails a pytest test with the same message

Where the points come from: a dense grid of [−10, 10] (step 0.005, so any interval of width
0.5 holds a hundred points), a grid of [−50, 50], magnitudes from 1e-8 to 1e3 of both signs, a
few ulps either side of every declared kink, and ``examples`` arrays drawn by Hypothesis.

How a point is judged: |hand − autodiff| ≤ (1 + u₆₄/u)·u·8·f(1 + |z|) + 2N + floor, the
pointwise bound of ``property_tests.library.tolerances``; f = max|g′| is the *absolute floor derived from
the forward's scale* (relative error means nothing where g′ is near zero), and N is autodiff's
own measured noise for this forward.

Kinks: where the hand value differs from autodiff's but lies between autodiff's one-sided
slopes (taken a hair to the left and right), g is not differentiable there and any value between
the slopes is a valid choice: it is reported as a kink, never as a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from manual import Activation
from property_tests.checkers import second_look
from property_tests.checkers.loading import InternalError, UsageError, json_safe, require_finite
from property_tests.library import tolerances as tol
from property_tests.library.compare import autodiff_derivative

if TYPE_CHECKING:  # kinds_check imports this module
    from property_tests.checkers.kinds_check import KindCounterexample


@dataclass(frozen=True)
class Kink:
    """A point where g′ jumps: autodiff's one-sided slopes, autodiff's value, the hand value."""

    # Same shape as the end of layer_check.LayerCounterexample: each checker's record spells out its
    # own fields (the keys of its JSON report) and its own describe().
    z: float
    left: float
    right: float
    autodiff: float
    hand: float

    def describe(self) -> str:
        text = (
            f"kink at z = {self.z:.17g}: slopes {self.left:.6g} (left) and {self.right:.6g} (right), "
            f"autodiff takes {self.autodiff:.6g}, the hand derivative {self.hand:.6g}"
        )
        low, high = min(self.left, self.right), max(self.left, self.right)
        slack = 1e-6 * (abs(low) + abs(high))
        if not (low - slack <= self.hand <= high + slack):
            text += (
                " (outside both one-sided slopes: conventions mixed, as when two kinks meet at one "
                "point; a network uses it only where a z lands exactly there)"
            )
        return text


@dataclass(frozen=True)
class PointCounterexample:
    """A point where the hand derivative is wrong, after the second look. ``relative_error`` is
    ``None`` when the hand value is not finite (NaN or ∞ where g and autodiff are finite);
    otherwise it exceeds ``tolerance``, both relative to the derivative's scale there."""

    # Same shape as kinds_check.KindCounterexample: each counterexample keeps its own fields (its JSON
    # keys) and its own wording, so a reader sees one record whole.
    z: float
    hand: float
    autodiff: float
    finite_difference: float
    relative_error: float | None
    tolerance: float

    def describe(self) -> str:
        head = (
            f"at z = {self.z!r}: hand derivative {self.hand!r}, autodiff {self.autodiff!r}, "
            f"central finite difference {self.finite_difference:.17g}; "
        )
        if self.relative_error is None:
            return head + "the hand derivative is not finite where g and autodiff are"
        return head + (
            f"error {self.relative_error:.3g} relative to the derivative's scale, tolerance {self.tolerance:.3g}"
        )


@dataclass(frozen=True)
class ImprecisePoint:
    """The worst point where a right formula loses digits in the dtype under test: its value
    there, autodiff's, and the formula's own value in higher precision."""

    z: float
    hand: float
    autodiff: float
    high_precision: float
    hand_digits: float
    autodiff_digits: float
    points: int

    def describe(self, dtype: str) -> str:
        return (
            f"the hand formula is right but loses digits in {dtype} at {self.points} point(s); worst at "
            f"z = {self.z!r}: hand {self.hand!r} keeps {self.hand_digits:.1f} significant digits, "
            f"autodiff {self.autodiff!r} keeps {self.autodiff_digits:.1f} (against the formula in "
            f"higher precision, {self.high_precision!r})"
        )


@dataclass(frozen=True)
class Skipped:
    """Points left out because the forward or autodiff is not finite in the dtype under test."""

    points: int
    low: float
    high: float
    example: float

    def describe(self) -> str:
        return (
            f"{self.points} points skipped where the forward, autodiff or the bound is not finite "
            f"(between z = {self.low:.6g} and {self.high:.6g}; for example z = {self.example!r})"
        )


VERDICTS = ("verified", "wrong", "inconclusive", "imprecise")
"""``wrong``: mathematically wrong somewhere (exit 1); ``inconclusive``: too little could be
checked (exit 3); ``imprecise``: right but losing digits, a failure only with ``strict``
(exit 1); ``verified`` otherwise (exit 0)."""


@dataclass
class ActivationReport:
    """What ``check_activation`` found."""

    name: str
    dtype: str
    seed: int
    points: int = 0
    ranges: list[str] = field(default_factory=list)
    max_error: float = 0.0
    tolerance: float = 0.0
    slope_scale: float = 0.0
    autodiff_noise: float = 0.0
    kinks: list[Kink] = field(default_factory=list)
    counterexample: PointCounterexample | KindCounterexample | None = None
    networks: int = 0
    network_report: dict | None = None
    network_failure: dict | None = None
    skipped_points: int = 0
    skipped: Skipped | None = None
    imprecise: ImprecisePoint | None = None
    networks_imprecise: int = 0
    inconclusive: str | None = None
    strict: bool = False
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if self.counterexample or self.network_failure:
            return "wrong"
        if self.inconclusive:
            return "inconclusive"
        if self.strict and (self.imprecise or self.networks_imprecise):
            return "imprecise"
        return "verified"

    def message(self) -> str:
        """The human-readable report the command prints."""
        lines = [f"activation {self.name!r} ({self.dtype}, seed {self.seed}): {self.verdict.upper()}"]
        scales = (
            f"relative to the local slope scale, on [−10, 10] at most {self.slope_scale:.6g}; autodiff's "
            f"own noise there at most {self.autodiff_noise:.3g}"
            if self.slope_scale
            else "relative to the size of each value's terms"
        )
        lines.append(
            f"  pointwise: {self.points} points ({'; '.join(self.ranges)}); largest error "
            f"{self.max_error:.3g} against tolerance {self.tolerance:.3g} ({scales})"
        )
        if self.skipped:
            lines.append(f"  {self.skipped.describe()}")
        for kink in self.kinks:
            lines.append(f"  warning: {kink.describe()}")
        if self.imprecise:
            strict = " (a failure under --strict)" if self.strict else " (--strict makes this a failure)"
            lines.append(
                f"  {'IMPRECISE' if self.strict else 'warning'}: {self.imprecise.describe(self.dtype)}{strict}"
            )
        if self.networks_imprecise:
            strict = " (a failure under --strict)" if self.strict else " (--strict makes this a failure)"
            lines.append(
                f"  {'IMPRECISE' if self.strict else 'warning'}: {self.networks_imprecise} random network(s) "
                f"disagree with autodiff beyond the error bound, yet g and g′ are elementwise and g′ survives "
                f"both looks at every z of those networks: rounding, not a wrong derivative{strict}"
            )
        if self.counterexample:
            lines.append(f"  WRONG DERIVATIVE {self.counterexample.describe()}")
        if self.inconclusive and not (self.counterexample or self.network_failure):
            lines.append(f"  INCONCLUSIVE: {self.inconclusive}")
        lines += network_lines(
            self.networks,
            f"with {self.name} in every layer (positions 1–6 and output)",
            self.network_report,
            self.network_failure,
        )
        lines.append(f"  {self.seconds:.1f} s")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("kinks", "counterexample", "skipped", "imprecise")}
        out["verdict"] = self.verdict
        out["kinks"] = [k.__dict__ for k in self.kinks]
        out["counterexample"] = self.counterexample.__dict__ if self.counterexample else None
        out["skipped"] = self.skipped.__dict__ if self.skipped else None
        out["imprecise"] = self.imprecise.__dict__ if self.imprecise else None
        return json_safe(out)


def network_lines(networks: int, where: str, network_report: dict | None, network_failure: dict | None) -> list[str]:
    """The lines of a checker's report about its random networks (activation and loss checks)."""
    lines = []
    if network_report is not None:
        summary = ", ".join(
            f"{eq} {v['max_error']:.3g}/{v['tolerance']:.3g}" for eq, v in network_report["equations"].items()
        )
        lines.append(f"  networks: {networks} random networks {where}; largest error/tolerance per equation: {summary}")
        if network_report.get("skipped_overflow"):
            lines.append(
                f"  {network_report['skipped_overflow']} networks skipped: their values overflow even with "
                f"the weights scaled down"
            )
    if network_failure:
        nf = network_failure
        lines.append(
            f"  IN A NETWORK the hand result first leaves autodiff's at equation {nf['equation']}, "
            f"layer {nf['layer']}: {nf['summary']}"
        )
        lines.append(f"    {nf['case']}; x = {nf['x']}")
    return lines


# --- calling the user's code safely -------------------------------------------------------


def _call(what: str, fn, z: np.ndarray) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            out = fn(z, np)
    except Exception as error:  # the user's code may raise anything
        raise UsageError(
            f"the {what} raises {type(error).__name__}: {error} "
            f"(on a float{z.dtype.itemsize * 8} array of shape {z.shape})"
        ) from None
    out = np.asarray(out)
    if out.shape != z.shape:
        raise UsageError(
            f"the {what} returns shape {out.shape} for an input of shape {z.shape}; "
            f"it must work elementwise and keep the shape"
        )
    return out


def _autodiff(g: Activation, z: np.ndarray) -> np.ndarray:
    """``jax.grad`` of g's forward in float64, on arrays padded to few distinct shapes."""
    try:
        return autodiff_derivative(g, z)
    except Exception as error:
        raise UsageError(
            f"the forward cannot be differentiated by jax.grad with xp=jax.numpy: "
            f"{type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None


def check_callable(g: Activation) -> None:
    """Unusable activations fail here with one sentence: the functions must run on arrays of
    both dtypes and of one and two dimensions, and keep their shape."""
    for shape in ((7,), (3, 4)):
        for dtype in (np.float64, np.float32):
            z = np.linspace(-2, 2, int(np.prod(shape)), dtype=dtype).reshape(shape)
            _call("forward", g.forward, z)
            _call("derivative", g.derivative, z)
    _autodiff(g, np.linspace(-2, 2, 7))


# --- the points ------------------------------------------------------------------------------


def grid_points(g: Activation) -> tuple[np.ndarray, list[str]]:
    dense = np.linspace(-10, 10, 4001)
    wide = np.linspace(-50, 50, 2001)
    magnitudes = np.logspace(-8, 3, 111)
    near_kinks = [k + np.arange(-8, 9) * np.spacing(max(abs(k), 1.0)) for k in g.kinks]
    z = np.unique(np.concatenate([dense, wide, magnitudes, -magnitudes, [0.0], *near_kinks]))
    ranges = ["[−10, 10] every 0.005", "[−50, 50] every 0.05", "±1e-8 … ±1e3 logarithmically"]
    if g.kinks:
        ranges.append("±8 ulps around each declared kink")
    return z, ranges


MAGNITUDES = (-8.0, 3.0)
"""Hypothesis-drawn magnitudes run from 10⁻⁸ to 10³."""
NEAR_INTEGERS = (10, 8)
"""Hypothesis draws points up to 8 ulps from the integers −10 … 10."""


def random_points() -> st.SearchStrategy[np.ndarray]:
    """Hypothesis arrays of z, each of one kind: signed magnitudes from 1e-8 to 1e3, anything
    in [−50, 50], or a few ulps from a small integer. Every element is one float or integer
    drawn by Hypothesis (its cheapest draws), made into z by NumPy for the whole array."""
    size = st.integers(1, 64)
    low, high = MAGNITUDES
    reach, ulps = NEAR_INTEGERS
    exponents = st.floats(-(high - low), high - low)  # the sign of z, and |e| + low its exponent
    tags = st.integers(0, (2 * reach + 1) * (2 * ulps + 1) - 1)  # an integer and an ulp count
    return st.one_of(
        hnp.arrays(np.float64, size, elements=exponents).map(signed_magnitudes),
        hnp.arrays(np.float64, size, elements=st.floats(-50, 50, allow_subnormal=False)),
        hnp.arrays(np.int64, size, elements=tags).map(near_integers),
    )


def signed_magnitudes(e: np.ndarray) -> np.ndarray:
    """±10^(|e| + low) for drawn e, with the sign of e (its sign bit: −0 gives −10⁻⁸, 0 gives +10⁻⁸)."""
    return np.where(np.signbit(e), -1.0, 1.0) * 10.0 ** (np.abs(e) + MAGNITUDES[0])


def near_integers(tag: np.ndarray) -> np.ndarray:
    """The integer i = tag // (2·ulps + 1) − reach, moved by tag % (2·ulps + 1) − ulps of its ulps."""
    reach, ulps = NEAR_INTEGERS
    i, moved = np.divmod(tag, 2 * ulps + 1)
    whole = (i - reach).astype(np.float64)
    return whole + (moved - ulps) * np.spacing(np.maximum(np.abs(whole), 1.0))


# --- judging points --------------------------------------------------------------------------


@dataclass
class _Judged:
    z: np.ndarray
    hand: np.ndarray
    autodiff: np.ndarray
    allowed: np.ndarray
    bad: np.ndarray
    usable: np.ndarray

    @property
    def skipped(self) -> int:
        return int(np.sum(~self.usable))


def first_look(profile: tol.Profile, z: np.ndarray, dtype: np.dtype, r: np.ndarray) -> np.ndarray:
    """The pointwise bound: (1 + u₆₄/u)·u·8·(f(1 + |z|) + |r|) + 2N + floor·(1 + |z|), f and N
    taken near z, r autodiff's g′ at z (the rounding of a value is relative to itself too,
    where it exceeds the slope scale: a formula that cancels to garbage near a removable
    singularity does so by hand and under autodiff alike)."""
    f, noise = profile.at(z)
    with np.errstate(over="ignore", invalid="ignore"):
        return (
            tol.scale(dtype) * (tol.derivative_bound(f, z) + tol.ELEMENTARY_ULPS * np.abs(r))
            + tol.NOISE_SAFETY * noise
            + tol.derivative_floor(dtype, z)
        )


def judge_points(g: Activation, z: np.ndarray, dtype: np.dtype) -> _Judged:
    """The first look at every z. A point is *usable* when the forward (in ``dtype``) and
    autodiff's g′ are finite there, g′ is representable in ``dtype`` and so is the bound; only
    usable points are judged, and a hand value that is NaN or ∞ at a usable point is wrong."""
    if z.size == 0:  # the user's code need not take empty arrays
        empty = np.zeros(0)
        return _Judged(empty, empty, empty, empty, np.zeros(0, bool), np.zeros(0, bool))
    zt = z.astype(dtype)
    a = _call("forward", g.forward, zt)
    hand = _call("derivative", g.derivative, zt).astype(np.float64)
    r = _autodiff(g, zt)
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(a) & np.isfinite(r) & (np.abs(r) <= np.finfo(dtype).max)
    z64 = zt.astype(np.float64)
    allowed = first_look(tol.profile(g), z64, dtype, r)
    # A bound that overflows (g′ near the largest float, times 8(1 + |z|)) cannot judge: the
    # point is skipped like one where g′ does not fit the dtype.
    # (A NaN bound is a bug of the checker, not an overflow: it stays, to be reported as one.)
    usable &= ~np.isinf(allowed)
    allowed = np.where(usable, allowed, 0.0)
    with np.errstate(invalid="ignore"):
        bad = usable & ~(np.abs(hand - r) <= allowed)  # NaN or ∞ by hand counts as wrong
    return _Judged(z64, hand, r, allowed, bad, usable)


KINK_STEP = 1e-7
"""One-sided slopes are read this far (relative to max(1, |z|)) left and right of a point."""


def one_sided(g: Activation, z: np.ndarray, step: float = KINK_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Autodiff's slopes just left and right of every point of z."""
    h = step * np.maximum(1.0, np.abs(z))
    both = _autodiff(g, np.concatenate([z - h, z + h]))
    return both[: z.size], both[z.size :]


def kinks_among(
    g: Activation, z: np.ndarray, hand: np.ndarray, autodiff: np.ndarray, allowed: np.ndarray
) -> np.ndarray:
    """Which points are kinks, where g′ is not defined and the hand value is a convention.

    A smooth g′ also differs left and right of z, by about |g″|·2h; a jump does not shrink with
    h. So the slopes are read at h and at h/64: a kink is a gap of more than 100× the tolerance
    that keeps its size when the step shrinks 64-fold (``is_jump``). Any finite hand value is a
    convention there, reported with the kink (a value outside both one-sided slopes, as a sum
    of two kinks at one point with different conventions gives, is pointed out); only a NaN or
    an infinity is wrong."""
    if z.size == 0:
        return np.zeros(0, bool)
    left, right = one_sided(g, z)
    jump, gap = is_jump(g, z, left, right)
    with np.errstate(invalid="ignore"):
        jump &= gap > 100 * allowed
    return jump & np.isfinite(hand)


def is_jump(g: Activation, z: np.ndarray, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Is the gap between autodiff's one-sided slopes at z (read at ``KINK_STEP``) a jump? Read
    again at a 64th of the step, each side must keep its value (within a quarter of the gap):
    a jump stays put, a smooth g′ closes the gap, and rounding garbage (autodiff of sin z / z at
    z ≈ 1e-9) moves. Returns the verdicts and the gaps."""
    near_left, near_right = one_sided(g, z, KINK_STEP / 64)
    with np.errstate(invalid="ignore"):
        gap = np.abs(left - right)
        steady = (np.abs(near_left - left) <= gap / 4) & (np.abs(near_right - right) <= gap / 4)
    return steady & (gap > 0), gap


def find_jumps(g: Activation, profile: tol.Profile | None = None) -> np.ndarray:
    """Locations where autodiff's g′ jumps, found on the dense grid of [−10, 10] and pinned down
    by bisection to neighbouring floats. A jump is a step between grid neighbours far larger
    than the steps two places away (100×, and more than 1e-6 of the slope scale f there)."""
    profile = profile or tol.profile(g)
    z = np.linspace(-10, 10, 4001)
    r = _autodiff(g, z)
    with np.errstate(invalid="ignore"):
        step = np.abs(np.diff(r))
    # Compare with the steps two away: a grid point exactly on the kink splits the jump in two.
    padded = np.concatenate([[0, 0], step, [0, 0]])
    around = np.maximum(padded[:-4], padded[4:])
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero(
            np.isfinite(step) & np.isfinite(around) & (step > 100 * around) & (step > 1e-6 * profile.slope_at(z[:-1]))
        )
    if candidates.size == 0:
        return np.zeros(0)
    lo, hi = z[candidates], z[candidates + 1]
    r_lo, r_hi = r[candidates], r[candidates + 1]
    for _ in range(64):
        mid = (lo + hi) / 2
        done = (mid <= lo) | (mid >= hi)
        r_mid = _autodiff(g, mid)
        right_side = np.abs(r_mid - r_lo) < np.abs(r_mid - r_hi)  # the jump lies in (mid, hi)
        lo, r_lo = np.where(right_side & ~done, mid, lo), np.where(right_side & ~done, r_mid, r_lo)
        hi, r_hi = np.where(~right_side & ~done, mid, hi), np.where(~right_side & ~done, r_mid, r_hi)
    # A jump keeps its size as the one-sided steps shrink; rounding garbage at tiny z does not.
    jump, gap = is_jump(g, lo, *one_sided(g, lo))
    real = jump & (gap > 1e-6 * profile.slope_at(lo))
    # Of the two neighbouring floats, report the one with the shorter decimal form (1.0, not 1.0000000000000002).
    return np.array([min((a, b), key=lambda v: len(repr(float(v)))) for a, b in zip(lo[real], hi[real], strict=True)])


def describe_kinks(g: Activation, z: np.ndarray, hand: np.ndarray, autodiff: np.ndarray) -> list[Kink]:
    """One Kink per distinct location (points within 1e-9 of each other are one kink)."""
    out: dict[float, Kink] = {}
    left, right = one_sided(g, z)
    for i in np.argsort(np.abs(z)):
        key = round(float(z[i]), 9)
        if key not in out:
            out[key] = Kink(float(z[i]), float(left[i]), float(right[i]), float(autodiff[i]), float(hand[i]))
    return sorted(out.values(), key=lambda k: k.z)


def _second_look(g: Activation, judged: _Judged, dtype: np.dtype) -> second_look.Verdicts:
    """``second_look.reexamine`` at every point of ``judged`` (all of them first-look failures)."""
    return second_look.reexamine(
        g.forward,
        g.derivative,
        lambda z: _autodiff(g, z),
        judged.z,
        dtype,
        judged.hand,
        judged.autodiff,
        judged.allowed,
    )


@dataclass
class _Suspects:
    """First-look failures that are not kinks, sorted by the second look."""

    z: np.ndarray
    wrong: np.ndarray
    imprecise: ImprecisePoint | None


def sort_suspects(g: Activation, judged: _Judged, dtype: np.dtype) -> _Suspects:
    """The second look at every suspect of ``judged``; the worst imprecise point, if any."""
    if judged.z.size == 0:
        return _Suspects(judged.z, np.zeros(0, bool), None)
    look = _second_look(g, judged, dtype)
    imprecise = None
    if np.any(look.imprecise):
        digits = look.hand_digits(judged.hand)
        i = int(np.flatnonzero(look.imprecise)[np.argmin(digits[look.imprecise])])
        imprecise = ImprecisePoint(
            float(judged.z[i]),
            float(judged.hand[i]),
            float(judged.autodiff[i]),
            float(look.high_precision[i]),
            float(digits[i]),
            float(look.autodiff_digits(judged.autodiff)[i]),
            int(np.sum(look.imprecise)),
        )
    return _Suspects(judged.z, look.wrong, imprecise)


def _subset(judged: _Judged, keep: np.ndarray) -> _Judged:
    return _Judged(
        judged.z[keep],
        judged.hand[keep],
        judged.autodiff[keep],
        judged.allowed[keep],
        judged.bad[keep],
        judged.usable[keep],
    )


def counterexample_at(g: Activation, z0: float, dtype: np.dtype) -> PointCounterexample | None:
    """The report of a wrong point, from both looks; ``None`` if the point is not wrong after all."""
    j = judge_points(g, np.array([z0]), dtype)
    if not j.bad[0]:
        return None
    look = _second_look(g, j, dtype)
    if not look.wrong[0]:
        return None
    scale = abs(float(j.autodiff[0])) + float(tol.profile(g).slope_at(j.z)[0])
    hand, r = float(j.hand[0]), float(j.autodiff[0])
    tolerance = float(look.threshold[0]) / scale
    require_finite("the tolerance of a counterexample", tolerance)
    return PointCounterexample(
        z=z0,
        hand=hand,
        autodiff=r,
        finite_difference=float(look.finite_difference.value[0]),
        relative_error=abs(hand - r) / scale if math.isfinite(hand) else None,
        tolerance=tolerance,
    )


def simplest(g: Activation, failing: np.ndarray, dtype: np.dtype) -> PointCounterexample:
    """The simplest z where the derivative is clearly wrong: the failing points are rounded to
    0, 1, 2, … decimals, and the first rounding at which some point is still wrong (by 10× its
    tolerance when any is) wins, the smallest |z| among those."""
    for decimals in range(0, 18):
        trial = np.unique(np.round(failing, decimals))
        judged = judge_points(g, trial, dtype)
        judged = _subset(judged, judged.bad & ~kinks_among(g, trial, judged.hand, judged.autodiff, judged.allowed))
        if judged.z.size == 0:
            continue
        look = _second_look(g, judged, dtype)
        if np.any(look.wrong):
            with np.errstate(invalid="ignore"):
                clear = look.wrong & ~(np.abs(judged.hand - judged.autodiff) <= 10 * look.threshold)
            pool = judged.z[clear] if np.any(clear) else judged.z[look.wrong]
            found = counterexample_at(g, float(pool[np.argmin(np.abs(pool))]), dtype)
            if found is not None:
                return found
    found = counterexample_at(g, float(failing[np.argmin(np.abs(failing))]), dtype)
    if found is None:  # every failing point came from this very look: it cannot vanish
        raise InternalError("a wrong point was not wrong when judged again; please report this as a bug")
    return found


# --- the check ------------------------------------------------------------------------------

MIN_USABLE = 0.5
"""Below this fraction of usable points on the dense grid of [−10, 10] the check is inconclusive."""


def check_activation(
    act: Activation,
    *,
    examples: int = 200,
    seed: int = 0,
    dtype: np.dtype | type | str = np.float64,
    networks: int | None = None,
    strict: bool = False,
) -> ActivationReport:
    """Check ``act.derivative`` against ``jax.grad`` of ``act.forward``: pointwise on grids and
    Hypothesis draws, then in ``networks`` (default ``examples``) random networks with ``act``
    in every layer. A point is called wrong only after the second look (``second_look``);
    a right formula that only loses digits is a warning, or a failure with ``strict``.
    Raises ``UsageError`` (one sentence) when the activation cannot be used at all."""
    import time

    from manual import ParametricActivation, VectorActivation

    if isinstance(act, (ParametricActivation, VectorActivation)):
        from property_tests.checkers.kinds_check import check_kind

        return check_kind(act, examples=examples, seed=seed, dtype=dtype, networks=networks, strict=strict)
    start = time.perf_counter()
    dtype = np.dtype(dtype)
    if not isinstance(act, Activation):
        raise UsageError(f"expected an Activation, ParametricActivation or VectorActivation, got {type(act).__name__}")
    if examples < 1:
        raise UsageError(f"examples must be at least 1, got {examples}")
    networks = examples if networks is None else networks
    check_callable(act)
    report = ActivationReport(act.name, str(dtype), seed, strict=strict)
    profile, central = tol.profile(act), np.linspace(-10, 10, 4001)
    report.slope_scale = float(np.max(profile.slope_at(central)))
    report.autodiff_noise = float(np.max(profile.noise_at(central)))

    z, report.ranges = grid_points(act)
    judged = [judge_points(act, z, dtype)]
    dense = np.abs(z) <= 10
    usable_dense = float(np.mean(judged[0].usable[dense]))
    _summarise(act, report, judged, dtype)
    if report.counterexample is None and usable_dense < MIN_USABLE:
        report.inconclusive = (
            f"the forward or autodiff is finite at only {usable_dense:.0%} of the points of "
            f"[−10, 10] in {dtype}: too few to judge"
        )
    if report.counterexample is None and not report.inconclusive:  # let Hypothesis look further
        drawn, arrays = _hypothesis_points(act, examples, seed, dtype)
        judged.append(drawn)
        report.ranges.append(f"{arrays} Hypothesis-drawn arrays")
        _summarise(act, report, judged, dtype)

    if not report.inconclusive and networks > 0:
        _network_check(act, report, networks if report.counterexample is None else min(networks, 16), seed, dtype)
    report.seconds = time.perf_counter() - start
    return report


def _hypothesis_points(act, examples, seed, dtype) -> tuple[_Judged, int]:
    """The Hypothesis-drawn arrays (``random_points``), judged together in one look; returns
    the look and how many arrays were drawn."""
    found: list[np.ndarray] = []

    @hypothesis_seed(seed)  # the same seed draws the same points
    @settings(
        max_examples=examples,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(random_points())
    def draw(z):
        found.append(z)

    draw()
    return judge_points(act, np.concatenate(found), dtype), len(found)


def _concatenate(judged: list[_Judged]) -> _Judged:
    return _Judged(
        *(
            np.concatenate([getattr(j, name) for j in judged])
            for name in ("z", "hand", "autodiff", "allowed", "bad", "usable")
        )
    )


def _summarise(act: Activation, report: ActivationReport, judged: list[_Judged], dtype: np.dtype) -> None:
    """Kinks, the second look, the largest error, skipped points and the counterexample."""
    every = _concatenate(judged)
    report.points = int(every.z.size)
    report.skipped_points = every.skipped
    if every.skipped:
        left_out = every.z[~every.usable]
        report.skipped = Skipped(
            every.skipped, float(left_out.min()), float(left_out.max()), float(left_out[np.argmin(np.abs(left_out))])
        )
    _largest_error(act, report, _subset(every, every.usable & ~every.bad))
    # Declared and detected kinks join the points: what each side does, and is the hand value valid?
    declared = np.unique(np.concatenate([np.asarray(act.kinks, np.float64), find_jumps(act)]))
    at = judge_points(act, declared, dtype)
    at_kink = kinks_among(act, at.z, at.hand, at.autodiff, at.allowed)
    suspects = _subset(every, every.bad)
    is_kink = kinks_among(act, suspects.z, suspects.hand, suspects.autodiff, suspects.allowed)
    kink_points = _concatenate([_subset(suspects, is_kink), _subset(at, (~at.bad | at_kink) & at.usable)])
    pool = _concatenate([_subset(suspects, ~is_kink), _subset(at, at.bad & ~at_kink)])
    sorted_out = sort_suspects(act, pool, dtype)
    failing = sorted_out.z[sorted_out.wrong]
    report.imprecise = sorted_out.imprecise
    report.kinks = describe_kinks(act, kink_points.z, kink_points.hand, kink_points.autodiff)
    if failing.size:
        report.counterexample = simplest(act, failing, dtype)


def _largest_error(act: Activation, report: ActivationReport, passed: _Judged) -> None:
    """The largest first-look error among the points that passed it, relative to the
    derivative's scale |g′| + f there, beside its tolerance in the same units."""
    if passed.z.size == 0:
        report.max_error = report.tolerance = 0.0
        return
    scale = np.abs(passed.autodiff) + tol.profile(act).slope_at(passed.z)
    ratio = np.abs(passed.hand - passed.autodiff) / passed.allowed
    worst = int(np.argmax(ratio))
    report.max_error = float(abs(passed.hand[worst] - passed.autodiff[worst]) / scale[worst])
    report.tolerance = float(passed.allowed[worst] / scale[worst])
    require_finite("the largest pointwise error or its tolerance", report.max_error, report.tolerance)


def accepted_deviation(g: Activation, dtype: np.dtype, z: np.ndarray) -> np.ndarray:
    """|hand − autodiff| of g′ at every z (hand in ``dtype``) where the two looks accept it,
    and 0 where they do not (there the equations must fail on their own); plus autodiff's
    own noise measured at z (``second_look.spread``), since ``jax.grad`` through a network
    rounds differently from ``jax.grad`` of g alone where g′ cancels."""
    flat = np.asarray(z, np.float64).ravel()
    judged = judge_points(g, flat, dtype)
    with np.errstate(all="ignore"):
        own = second_look.spread(_autodiff(g, second_look.neighbourhood(flat, np.float64)))
        # The manual pass meets g′ at its own z, a rounding away from these: where g′ by hand is
        # noisy (a formula that cancels, in float32 above all), that noise is part of what the
        # pointwise look accepted.
        rows = np.asarray(g.derivative(second_look.neighbourhood(flat, dtype), np), np.float64)
        hand_noise = tol.NOISE_SAFETY * second_look.spread(rows)
    own = np.maximum(np.where(np.isfinite(own), own, 0.0), np.where(np.isfinite(hand_noise), hand_noise, 0.0))
    deviation = np.where(judged.usable & ~judged.bad, np.abs(judged.hand - judged.autodiff), 0.0)
    suspects = np.flatnonzero(judged.bad)
    if suspects.size:
        look = _second_look(g, _subset(judged, judged.bad), dtype)
        gap = np.abs(judged.hand - judged.autodiff)[suspects]
        deviation[suspects] = np.where(~look.wrong & np.isfinite(gap), gap, 0.0)
    return (deviation + own).reshape(np.shape(z))


def elementwise(g: Activation, z: np.ndarray) -> bool:
    """Do g and g′ by hand give, on the 2-D array z, exactly what they give element by element?
    An activation that looks across the batch or the units (a mean, a sort, an axis) does not."""
    with np.errstate(all="ignore"):
        for fn in (g.forward, g.derivative):
            whole = np.asarray(fn(z, np))
            single = np.asarray(fn(z.ravel(), np)).reshape(z.shape)
            if whole.shape != z.shape or not np.array_equal(whole, single, equal_nan=True):
                return False
    return True


def right_at(g: Activation, z: np.ndarray, dtype: np.dtype) -> bool:
    """Does g′ by hand survive both looks at every usable point of z (in ``dtype``)?"""
    judged = judge_points(g, np.asarray(z, np.float64).ravel(), dtype)
    if not judged.bad.any():
        return True
    return not _second_look(g, _subset(judged, judged.bad), dtype).wrong.any()


def rounding_explains(g: Activation, dtype: np.dtype):
    """For the network stage: ``explain(case, ref)`` of a failing network returns why the
    failure is rounding, or ``None``. The equations themselves are the catalogue's; what the
    network can add to the pointwise looks is g (or g′) behaving differently inside a batch,
    or a g′ wrong at z the looks never met. So when, at every layer, g and g′ are elementwise
    on the network's own z, and g′ by hand survives the two looks at exactly those z (the
    manual pass's, in ``dtype``, and autodiff's, in float64), the mismatch comes from rounding
    that the running bound does not carry (a forward that cancels near a removable
    singularity, say), not from a wrong derivative."""
    import manual

    def explain(case, ref) -> str | None:
        with np.errstate(all="ignore"):
            fwd = manual.forward(case.network, case.x)
        for k in range(1, case.network.depth + 1):
            if not isinstance(case.network.g[k], Activation):
                continue
            z_k = fwd.z[k]
            assert z_k is not None  # index 0, the input layer, alone has no z
            for z, where in ((z_k, dtype), (ref.z[k], np.dtype(np.float64))):
                if not (elementwise(g, np.asarray(z, where)) and right_at(g, z, where)):
                    return None
        return (
            "g and g′ are elementwise and g′ survives both looks at every z of the network: "
            "its mismatch is rounding the error bound does not carry"
        )

    return explain


def _network_check(act, report, networks, seed, dtype) -> None:
    from property_tests.checkers.verify import run_verify

    kinked = replace(act, kinks=tuple(sorted({*act.kinks, *(k.z for k in report.kinks)})))
    tol.allow_deviation(kinked, act, partial(accepted_deviation, act, dtype))
    try:
        result = run_verify(networks, seed, activations=[kinked], dtype=dtype, excuse=rounding_explains(act, dtype))
    except (UsageError, InternalError):
        raise
    except Exception as error:
        raise UsageError(f"the activation breaks inside a network: {type(error).__name__}: {error}") from None
    finally:
        tol.forget_deviation(kinked)
    report.networks = networks
    report.network_report = result.as_dict()
    report.networks_imprecise = result.excused
    if not result.verified:
        report.network_failure = result.counterexample
    elif result.checked < MIN_USABLE * networks and not report.counterexample:
        report.inconclusive = (
            f"only {result.checked} of {networks} random networks stay finite in {dtype}, "
            f"even with their weights scaled down: too few to judge"
        )


def assert_activation_correct(act: Activation, **kwargs) -> ActivationReport:
    """Fail the calling pytest test with the report's message unless ``act`` is verified."""
    import pytest

    report = check_activation(act, **kwargs)
    if report.verdict != "verified":
        pytest.fail(report.message(), pytrace=False)
    return report
