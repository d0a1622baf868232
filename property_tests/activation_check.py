"""Check a user's own activation: its hand derivative against ``jax.grad`` of its forward,
pointwise and inside random networks, with kinks told apart from mistakes.

    from property_tests.activation_check import check_activation, assert_activation_correct

    report = check_activation(MY_ACTIVATION, examples=200, seed=0)
    report.verdict            # "verified" or "wrong"
    report.counterexample     # the simplest z where the derivative is wrong, or None
    assert_activation_correct(MY_ACTIVATION)   # fails a pytest test with the same message

Where the points come from: a dense grid of [−10, 10] (step 0.005, so any interval of width
0.5 holds a hundred points), a grid of [−50, 50], magnitudes from 1e-8 to 1e3 of both signs, a
few ulps either side of every declared kink, and ``examples`` arrays drawn by Hypothesis.

How a point is judged: |hand − autodiff| ≤ (1 + u₆₄/u)·u·8·f(1 + |z|) + 2N + floor, the
pointwise bound of ``property_tests.tolerances``; f = max|g′| is the *absolute floor derived from
the forward's scale* (relative error means nothing where g′ is near zero), and N is autodiff's
own measured noise for this forward.

Kinks: where the hand value differs from autodiff's but lies between autodiff's one-sided
slopes (taken a hair to the left and right), g is not differentiable there and any value between
the slopes is a valid choice: it is reported as a kink, never as a failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed as hypothesis_seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from manual import Activation

from . import tolerances as tol
from .compare import autodiff_derivative
from .loading import UsageError


@dataclass(frozen=True)
class Kink:
    """A point where g′ jumps: autodiff's one-sided slopes, autodiff's value, the hand value."""

    z: float
    left: float
    right: float
    autodiff: float
    hand: float

    def describe(self) -> str:
        return (f"kink at z = {self.z:.17g}: slopes {self.left:.6g} (left) and {self.right:.6g} (right), "
                f"autodiff takes {self.autodiff:.6g}, the hand derivative {self.hand:.6g}")


@dataclass(frozen=True)
class PointCounterexample:
    z: float
    hand: float
    autodiff: float
    finite_difference: float
    relative_error: float
    tolerance: float

    def describe(self) -> str:
        return (f"at z = {self.z!r}: hand derivative {self.hand!r}, autodiff {self.autodiff!r}, "
                f"central finite difference {self.finite_difference:.17g}; error {self.relative_error:.3g} "
                f"relative to the derivative's scale, tolerance {self.tolerance:.3g}")


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
    counterexample: PointCounterexample | None = None
    networks: int = 0
    network_report: dict | None = None
    network_failure: dict | None = None
    skipped_points: int = 0
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        return "wrong" if self.counterexample or self.network_failure else "verified"

    def message(self) -> str:
        """The human-readable report the command prints."""
        lines = [f"activation {self.name!r} ({self.dtype}, seed {self.seed}): {self.verdict.upper()}"]
        lines.append(f"  pointwise: {self.points} points ({'; '.join(self.ranges)}); largest error "
                     f"{self.max_error:.3g} against tolerance {self.tolerance:.3g} (relative to the slope "
                     f"scale max|g′| = {self.slope_scale:.6g}; autodiff's own noise {self.autodiff_noise:.3g})")
        if self.skipped_points:
            lines.append(f"  {self.skipped_points} points skipped where the forward or autodiff is not finite")
        for kink in self.kinks:
            lines.append(f"  warning: {kink.describe()}")
        if self.counterexample:
            lines.append(f"  WRONG DERIVATIVE {self.counterexample.describe()}")
        lines += network_lines(self.networks, f"with {self.name} in every layer (positions 1–6 and output)",
                               self.network_report, self.network_failure)
        lines.append(f"  {self.seconds:.1f} s")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("kinks", "counterexample")}
        out["verdict"] = self.verdict
        out["kinks"] = [k.__dict__ for k in self.kinks]
        out["counterexample"] = self.counterexample.__dict__ if self.counterexample else None
        return out


def network_lines(networks: int, where: str, network_report: dict | None,
                  network_failure: dict | None) -> list[str]:
    """The lines of a checker's report about its random networks (activation and loss checks)."""
    lines = []
    if network_report is not None:
        summary = ", ".join(f"{eq} {v['max_error']:.3g}/{v['tolerance']:.3g}"
                            for eq, v in network_report["equations"].items())
        lines.append(f"  networks: {networks} random networks {where}; largest error/tolerance per equation: {summary}")
    if network_failure:
        nf = network_failure
        lines.append(f"  IN A NETWORK the hand result first leaves autodiff's at equation {nf['equation']}, "
                     f"layer {nf['layer']}: {nf['summary']}")
        lines.append(f"    {nf['case']}; x = {nf['x']}")
    return lines


# --- calling the user's code safely -------------------------------------------------------

def _call(what: str, fn, z: np.ndarray) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            out = fn(z, np)
    except Exception as error:  # the user's code may raise anything
        raise UsageError(f"the {what} raises {type(error).__name__}: {error} "
                         f"(on a float{z.dtype.itemsize * 8} array of shape {z.shape})") from None
    out = np.asarray(out)
    if out.shape != z.shape:
        raise UsageError(f"the {what} returns shape {out.shape} for an input of shape {z.shape}; "
                         f"it must work elementwise and keep the shape")
    return out


def _autodiff(g: Activation, z: np.ndarray) -> np.ndarray:
    """``jax.grad`` of g's forward in float64, on arrays padded to few distinct shapes."""
    try:
        return autodiff_derivative(g, z)
    except Exception as error:
        raise UsageError(f"the forward cannot be differentiated by jax.grad with xp=jax.numpy: "
                         f"{type(error).__name__}: {str(error).splitlines()[0]}") from None


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


def random_points() -> st.SearchStrategy[np.ndarray]:
    """Hypothesis arrays of z across magnitudes, and a few ulps from small integers."""
    magnitude = st.floats(-8, 3).map(lambda e: 10.0 ** e)
    signed = st.tuples(st.sampled_from([-1.0, 1.0]), magnitude).map(lambda p: p[0] * p[1])
    near_integers = st.tuples(st.integers(-10, 10), st.integers(-8, 8)).map(
        lambda p: p[0] + p[1] * float(np.spacing(max(abs(p[0]), 1.0))))
    element = st.one_of(signed, st.floats(-50, 50, allow_subnormal=False), near_integers)
    return hnp.arrays(np.float64, st.integers(1, 64), elements=element, fill=st.nothing())


# --- judging points --------------------------------------------------------------------------

@dataclass
class _Judged:
    z: np.ndarray
    hand: np.ndarray
    autodiff: np.ndarray
    allowed: np.ndarray
    bad: np.ndarray
    skipped: int


def judge_points(g: Activation, z: np.ndarray, dtype: np.dtype, f: float, noise: float) -> _Judged:
    zt = z.astype(dtype)
    a = _call("forward", g.forward, zt)
    hand = _call("derivative", g.derivative, zt).astype(np.float64)
    r = _autodiff(g, zt)
    usable = np.isfinite(a) & np.isfinite(r)
    z64 = zt.astype(np.float64)
    allowed = tol.scale(dtype) * tol.derivative_bound(f, z64) + tol.NOISE_SAFETY * noise + tol.floor(dtype, 1)
    with np.errstate(invalid="ignore"):
        bad = usable & ~(np.abs(hand - r) <= allowed)  # NaN or ∞ by hand counts as wrong
    return _Judged(z64, hand, r, allowed, bad, int(np.sum(~usable)))


KINK_STEP = 1e-7
"""One-sided slopes are read this far (relative to max(1, |z|)) left and right of a point."""


def one_sided(g: Activation, z: np.ndarray, step: float = KINK_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Autodiff's slopes just left and right of every point of z."""
    h = step * np.maximum(1.0, np.abs(z))
    both = _autodiff(g, np.concatenate([z - h, z + h]))
    return both[: z.size], both[z.size :]


def kinks_among(g: Activation, z: np.ndarray, hand: np.ndarray, autodiff: np.ndarray,
                allowed: np.ndarray) -> np.ndarray:
    """Which points are kinks where the hand value is a valid choice.

    A smooth g′ also differs left and right of z, by about |g″|·2h; a jump does not shrink with
    h. So the slopes are read at h and at h/64: a kink is a gap of more than 100× the tolerance
    that keeps at least half its size when the step shrinks 64-fold, and the hand value is
    valid there when it lies between the one-sided slopes."""
    if z.size == 0:
        return np.zeros(0, bool)
    left, right = one_sided(g, z)
    near_left, near_right = one_sided(g, z, KINK_STEP / 64)
    gap, near_gap = np.abs(left - right), np.abs(near_left - near_right)
    jump = (gap > 100 * allowed) & (near_gap >= 0.5 * gap)
    between = (np.minimum(left, right) - allowed <= hand) & (hand <= np.maximum(left, right) + allowed)
    return jump & between


def find_jumps(g: Activation, f: float) -> np.ndarray:
    """Locations where autodiff's g′ jumps, found on the dense grid of [−10, 10] and pinned down
    by bisection to neighbouring floats. A jump is a step between grid neighbours far larger
    than the steps two places away (100×, and more than 1e-6 of the slope scale f)."""
    z = np.linspace(-10, 10, 4001)
    r = _autodiff(g, z)
    step = np.abs(np.diff(r))
    # Compare with the steps two away: a grid point exactly on the kink splits the jump in two.
    padded = np.concatenate([[0, 0], step, [0, 0]])
    around = np.maximum(padded[:-4], padded[4:])
    candidates = np.flatnonzero(np.isfinite(step) & (step > 100 * around) & (step > 1e-6 * f))
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
    # Of the two neighbouring floats, report the one with the shorter decimal form (1.0, not 1.0000000000000002).
    return np.array([min((a, b), key=lambda v: len(repr(float(v)))) for a, b in zip(lo, hi)])


def describe_kinks(g: Activation, z: np.ndarray, hand: np.ndarray, autodiff: np.ndarray) -> list[Kink]:
    """One Kink per distinct location (points within 1e-9 of each other are one kink)."""
    out: dict[float, Kink] = {}
    left, right = one_sided(g, z)
    for i in np.argsort(np.abs(z)):
        key = round(float(z[i]), 9)
        if key not in out:
            out[key] = Kink(float(z[i]), float(left[i]), float(right[i]), float(autodiff[i]), float(hand[i]))
    return sorted(out.values(), key=lambda k: k.z)


def central_difference(g: Activation, z0: float) -> float:
    h = tol.finite_difference_step() * max(1.0, abs(z0))
    up, down = _call("forward", g.forward, np.array([z0 + h, z0 - h]))
    return float((up - down) / (2 * h))


def simplest(g: Activation, failing: np.ndarray, dtype, f, noise) -> float:
    """The simplest z where the derivative is clearly wrong: the failing points are rounded to
    0, 1, 2, … decimals, and the first rounding at which some point still fails (by 10× its
    tolerance when any does) wins, the smallest |z| among those."""
    for decimals in range(0, 18):
        trial = np.unique(np.round(failing, decimals))
        judged = judge_points(g, trial, dtype, f, noise)
        wrong = judged.bad & ~kinks_among(g, trial, judged.hand, judged.autodiff, judged.allowed)
        if np.any(wrong):
            with np.errstate(invalid="ignore"):
                clear = wrong & ~(np.abs(judged.hand - judged.autodiff) <= 10 * judged.allowed)
            pool = trial[clear] if np.any(clear) else trial[wrong]
            return float(pool[np.argmin(np.abs(pool))])
    return float(failing[np.argmin(np.abs(failing))])


# --- the check ------------------------------------------------------------------------------

def check_activation(act: Activation, *, examples: int = 200, seed: int = 0,
                     dtype: np.dtype | type | str = np.float64) -> ActivationReport:
    """Check ``act.derivative`` against ``jax.grad`` of ``act.forward``: pointwise on grids and
    Hypothesis draws, then in ``examples`` random networks with ``act`` in every layer.
    Raises ``UsageError`` (one sentence) when the activation cannot be used at all."""
    import time

    start = time.perf_counter()
    dtype = np.dtype(dtype)
    if not isinstance(act, Activation):
        raise UsageError(f"expected an Activation, got {type(act).__name__}")
    if examples < 1:
        raise UsageError(f"examples must be at least 1, got {examples}")
    check_callable(act)
    report = ActivationReport(act.name, str(dtype), seed)
    f, noise = tol.slope_scale(act), tol.derivative_noise(act)
    report.slope_scale, report.autodiff_noise = f, noise

    z, report.ranges = grid_points(act)
    judged = [judge_points(act, z, dtype, f, noise)]
    _summarise(act, report, judged, dtype, f, noise)
    if report.counterexample is None:  # the grids found nothing: let Hypothesis look further
        judged += _hypothesis_points(act, examples, seed, dtype, f, noise)
        report.ranges.append(f"{len(judged) - 1} Hypothesis-drawn arrays")
        _summarise(act, report, judged, dtype, f, noise)

    networks = examples if report.counterexample is None else min(examples, 16)
    _network_check(act, report, networks, seed, dtype)
    report.seconds = time.perf_counter() - start
    return report


def _hypothesis_points(act, examples, seed, dtype, f, noise) -> list[_Judged]:
    found: list[_Judged] = []

    @hypothesis_seed(seed)  # the same seed draws the same points
    @settings(max_examples=examples, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(random_points())
    def draw(z):
        found.append(judge_points(act, z, dtype, f, noise))

    draw()
    return found


def _summarise(act, report, judged, dtype, f, noise) -> None:
    z = np.concatenate([j.z for j in judged])
    hand = np.concatenate([j.hand for j in judged])
    r = np.concatenate([j.autodiff for j in judged])
    allowed = np.concatenate([j.allowed for j in judged])
    bad = np.concatenate([j.bad for j in judged])
    report.points = int(z.size)
    report.skipped_points = sum(j.skipped for j in judged)
    scale = np.abs(r) + f
    with np.errstate(invalid="ignore"):
        ratio = np.where(np.isfinite(hand), np.abs(hand - r) / allowed, np.inf)
    ratio = np.where(np.isfinite(r), ratio, 0.0)
    worst = int(np.argmax(ratio))
    report.max_error = float(abs(hand[worst] - r[worst]) / scale[worst]) if np.isfinite(hand[worst]) else math.inf
    report.tolerance = float(allowed[worst] / scale[worst])
    suspects = np.flatnonzero(bad)
    is_kink = kinks_among(act, z[suspects], hand[suspects], r[suspects], allowed[suspects])
    failing = z[suspects[~is_kink]]
    kink_points = suspects[is_kink]
    declared = np.unique(np.concatenate([np.asarray(act.kinks, np.float64), find_jumps(act, f)]))
    if declared.size:  # declared and detected kinks: what each side does, and is the hand value valid?
        at = judge_points(act, declared, dtype, f, noise)
        valid = ~at.bad | kinks_among(act, declared, at.hand, at.autodiff, at.allowed)
        failing = np.concatenate([failing, declared[~valid]])
        z_k = np.concatenate([z[kink_points], declared[valid]])
        report.kinks = describe_kinks(act, z_k, np.concatenate([hand[kink_points], at.hand[valid]]),
                                      np.concatenate([r[kink_points], at.autodiff[valid]]))
    else:
        report.kinks = describe_kinks(act, z[kink_points], hand[kink_points], r[kink_points])
    if failing.size:
        z0 = simplest(act, failing, dtype, f, noise)
        j = judge_points(act, np.array([z0]), dtype, f, noise)
        report.counterexample = PointCounterexample(
            z=z0, hand=float(j.hand[0]), autodiff=float(j.autodiff[0]),
            finite_difference=central_difference(act, z0),
            relative_error=float(abs(j.hand[0] - j.autodiff[0]) / (abs(j.autodiff[0]) + f))
            if np.isfinite(j.hand[0]) else math.inf,
            tolerance=float(j.allowed[0] / (abs(j.autodiff[0]) + f)))


def _network_check(act, report, networks, seed, dtype) -> None:
    from .verify import run_verify

    kinked = replace(act, kinks=tuple(sorted({*act.kinks, *(k.z for k in report.kinks)})))
    try:
        result = run_verify(networks, seed, activations=[kinked], dtype=dtype)
    except UsageError:
        raise
    except Exception as error:
        raise UsageError(f"the activation breaks inside a network: {type(error).__name__}: {error}") from None
    report.networks = networks
    report.network_report = result.as_dict()
    if not result.verified:
        report.network_failure = result.counterexample


def assert_activation_correct(act: Activation, **kwargs) -> ActivationReport:
    """Fail the calling pytest test with the report's message unless ``act`` is verified."""
    import pytest

    report = check_activation(act, **kwargs)
    if report.verdict != "verified":
        pytest.fail(report.message(), pytrace=False)
    return report
