"""``backprop-check activation`` for the newer kinds: an activation with trainable parameters
(``ParametricActivation``) or a map that mixes units (``VectorActivation``).

The check follows the one for an elementwise g (``activation_check``): a first look at many
points against ``jax.grad`` with a bound derived from the dtype, a second look
(``second_look.reexamine``) before any point is called wrong, then random networks. The second
look works on a function of one variable, so each suspect is looked at along one line:

- a partial ∂g/∂z or ∂g/∂p of a parametric g, at one element: g as a function of that one
  variable, every other held (``_along``);
- one element of J_gᵀv: s ↦ v·g(z with zᵢ = s), whose derivative at zᵢ is (J_gᵀv)ᵢ.

Parameters are drawn across their ranges, one value per unit and all different (so that a
partial that mixes up units shows), and at the ends of the ranges; a map that mixes units is
checked on rows of several valid widths and scales, with ties in every group of a maxout-like
map.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from manual import Activation, ParametricActivation, VectorActivation
from property_tests.checkers import second_look
from property_tests.checkers.activation_check import MIN_USABLE, ActivationReport, Kink
from property_tests.checkers.loading import InternalError, UsageError, require_finite
from property_tests.library import tolerances as tol
from property_tests.library.compare import mixed_rounding, mixed_terms, parametric_sizes
from reference import plain

UNITS = 7
"""Units per row of the pointwise arrays: per-unit parameter values differ along them."""

SUSPECTS = 8
"""First-look failures given the second look, the worst first."""


@dataclass(frozen=True)
class KindCounterexample:
    """Where a partial (or an element of J_gᵀv) by hand is wrong, after the second look."""

    what: str
    where: str
    hand: float
    autodiff: float
    finite_difference: float
    relative_error: float | None
    tolerance: float

    def describe(self) -> str:
        head = (
            f"{self.what} {self.where}: hand {self.hand!r}, autodiff {self.autodiff!r}, "
            f"central finite difference {self.finite_difference:.17g}; "
        )
        if self.relative_error is None:
            return head + "the hand value is not finite where g and autodiff are"
        return head + f"error {self.relative_error:.3g} relative to its scale, tolerance {self.tolerance:.3g}"


Line = tuple[Callable, Callable, float, str]
"""One variable s to look along: (forward(s, xp), derivative(s, xp), the point s₀, a description)."""


@dataclass
class _Look:
    """One array of first-look judgements: hand and autodiff values, their bound and scale,
    and how to look again at element i along one variable (``line(i)``)."""

    what: str
    hand: np.ndarray
    autodiff: np.ndarray
    allowed: np.ndarray
    scale: np.ndarray
    usable: np.ndarray
    line: Callable[[tuple], Line]
    row: Callable[[int], Line] | None = None  # a map that mixes units: along a whole row (``_along_row``)

    @property
    def bad(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.usable & ~(np.abs(self.hand - self.autodiff) <= self.allowed)


def _bound(dtype: np.dtype, size: np.ndarray, r: np.ndarray, rounding: np.ndarray | float, z: np.ndarray) -> np.ndarray:
    """The first-look bound, as for an elementwise g′: u·8·(rounding·size + |r|) + floor."""
    with np.errstate(over="ignore", invalid="ignore"):
        return tol.scale(dtype) * (rounding * size + tol.ELEMENTARY_ULPS * np.abs(r)) + tol.derivative_floor(dtype, z)


def _usable_bound(usable: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """The bound where a point is judged, 0 elsewhere; ``usable`` loses, in place, the points
    whose bound overflows (its sizes near the largest float: a partial by hand 1e300 times too
    large sizes its own terms), which are skipped and counted like those where autodiff does not
    fit the dtype, never judged with an infinite tolerance that any hand value, ∞ included,
    would pass. A NaN bound is a bug of the checker: it stays, to fail ``require_finite``."""
    usable &= ~np.isinf(bound)
    return np.where(usable, bound, 0.0)


def _unit(scale: float, hand: float, r: float) -> float:
    """What a counterexample's relative figures are relative to: the size of its terms, or where
    that is zero (a row of one unit, whose softmax is constant: Jᵀv is exactly 0) the values'."""
    if scale > 0:
        return scale
    return max(abs(hand) if math.isfinite(hand) else 0.0, abs(r), tol.SLOPE_MINIMUM)


# --- activations with parameters -------------------------------------------------------------


def parameter_settings(g: ParametricActivation, rng: np.random.Generator, count: int) -> list[dict]:
    """Values for g's parameters: the defaults, every parameter at the low and at the high end
    of its range, then ``count`` draws with one value per unit, all different."""
    ends = [
        {q.name: np.full(UNITS, q.default) for q in g.parameters},
        {q.name: np.full(UNITS, q.low) for q in g.parameters},
        {q.name: np.full(UNITS, q.high) for q in g.parameters},
    ]
    draws = [{q.name: rng.uniform(q.low, q.high, UNITS) for q in g.parameters} for _ in range(count)]
    return ends + draws


def parametric_points(g: ParametricActivation) -> np.ndarray:
    """z on [−10, 10], out to ±1e3 logarithmically, and beside every kink, as rows of UNITS."""
    magnitudes = np.logspace(-8, 3, 56)
    near = [k + np.arange(-3, 4) * np.spacing(max(abs(k), 1.0)) for k in g.kinks]
    z = np.concatenate([np.linspace(-10, 10, 701), magnitudes, -magnitudes, [0.0], *near])
    z = np.concatenate([z, np.zeros(-z.size % UNITS)])
    return z.reshape(-1, UNITS)


def _call(what: str, fn, *args):
    try:
        with np.errstate(all="ignore"):
            return fn(*args, np)
    except Exception as error:  # the user's code may raise anything
        raise UsageError(f"the {what} raises {type(error).__name__}: {error}") from None


def _parametric_looks(g: ParametricActivation, z: np.ndarray, p: dict, dtype: np.dtype) -> list[_Look]:
    zt, pt = z.astype(dtype), {name: v.astype(dtype) for name, v in p.items()}
    a = np.asarray(_call("forward", g.forward, zt, pt))
    hand_z = np.asarray(_call("derivative", g.derivative, zt, pt), np.float64)
    hand_p = _call("parameter_derivatives", g.parameter_derivatives, zt, pt)
    try:
        r_z, r_p = plain.partials(g, zt, pt)
    except Exception as error:
        raise UsageError(
            f"the forward cannot be differentiated by jax.grad with xp=jax.numpy: "
            f"{type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None
    if a.shape != z.shape or hand_z.shape != z.shape or set(hand_p) != set(p):
        raise UsageError(
            "the forward and derivative must keep z's shape, and parameter_derivatives must "
            f"return one array per parameter ({', '.join(sorted(p))})"
        )
    z64 = zt.astype(np.float64)
    sizes = parametric_sizes(g, pt, z64)
    looks = []
    for name, hand, r in [("z", hand_z, r_z), *((n, hand_p[n], r_p[n]) for n in sorted(p))]:
        hand = np.asarray(np.broadcast_to(np.asarray(hand, np.float64), z.shape))
        with np.errstate(invalid="ignore"):
            usable = np.isfinite(a) & np.isfinite(r) & (np.abs(r) <= np.finfo(dtype).max)
        allowed = _usable_bound(usable, _bound(dtype, sizes[name], r, tol.ELEMENTARY_ULPS * (1 + np.abs(z64)), z64))

        def line(i: tuple, name: str = name) -> Line:
            return _along_parameter(g, zt, pt, name, i)

        looks.append(_Look(f"∂g/∂{name}", hand, r, allowed, np.abs(r) + sizes[name], usable, line))
    return looks


def _along_parameter(g: ParametricActivation, z: np.ndarray, p: dict, name: str, i: tuple) -> Line:
    """g at element i as a function of one variable (z itself, or the parameter ``name``), every
    other variable held: (forward, derivative, the point, a description)."""
    row, unit = i
    held = {n: (v if np.ndim(v) == 0 else v[unit]) for n, v in p.items()}
    z0 = z[row, unit]
    where = f"at z = {float(z0)!r} with " + ", ".join(f"{n} = {float(v)!r}" for n, v in sorted(held.items()))
    if name == "z":
        return (lambda s, xp: g.forward(s, held, xp), lambda s, xp: g.derivative(s, held, xp), z0, where)

    def forward(q, xp):
        return g.forward(z0 + 0 * q, {**held, name: q}, xp)

    def derivative(q, xp):
        return g.parameter_derivatives(z0 + 0 * q, {**held, name: q}, xp)[name] + 0 * q

    return forward, derivative, held[name], where


# --- maps that mix units ---------------------------------------------------------------------


def vector_rows(g: VectorActivation, rng: np.random.Generator, rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(z, v) pairs: rows of three valid widths at scales from 0.1 to 100, half of them with
    ties in every group of ``g.group`` units; v drawn from a normal distribution."""
    out = []
    for multiple in (1, 2, 5):
        m = g.group * multiple
        for scale in (0.1, 1.0, 10.0, 100.0):
            z = rng.uniform(-1, 1, (rows, m)) * scale
            if g.group > 1:
                z[rows // 2 :, 1 :: g.group] = z[rows // 2 :, 0 :: g.group]  # ties
            v = rng.standard_normal((rows, g.width(m)))
            out.append((z, v))
    return out


def _vector_look(g: VectorActivation, z: np.ndarray, v: np.ndarray, dtype: np.dtype) -> _Look:
    zt, vt = z.astype(dtype), v.astype(dtype)
    a = np.asarray(_call("forward", g.forward, zt))
    hand = np.asarray(_call("vjp", g.vjp, zt, vt), np.float64)
    try:
        r = plain.vjp(g, zt, vt)
    except Exception as error:
        raise UsageError(
            f"the forward cannot be differentiated by jax.vjp with xp=jax.numpy: "
            f"{type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None
    if hand.shape != z.shape or a.shape != (z.shape[0], g.width(z.shape[1])):
        raise UsageError(
            f"for rows of {z.shape[1]} units the forward must return {g.width(z.shape[1])} units "
            f"and the vjp z's shape; got {a.shape} and {hand.shape}"
        )
    z64, v64 = zt.astype(np.float64), vt.astype(np.float64)
    size = _vector_size(g, z64, np.abs(v64))
    with np.errstate(invalid="ignore"):
        usable = np.all(np.isfinite(a), axis=-1, keepdims=True) & np.isfinite(r)
    allowed = _usable_bound(usable, _bound(dtype, size, r, mixed_rounding(z64, v.shape[-1]), z64))
    look = _Look("(J_gᵀv)", hand, r, allowed, np.abs(r) + size, usable, lambda i: _along_unit(g, zt, vt, i))
    look.row = lambda row: _along_row(g, zt, vt, row)
    return look


def _vector_size(g: VectorActivation, z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The size of the terms J_gᵀv is computed from (``compare.mixed_terms``: for a map that does
    not say how it mixes, |J|ᵀ|v| plus the row's largest |J| entry times Σ|v|, with J taken
    toward the origin): scaled with g, so a map of size 1e-8 is judged at its own scale."""
    return mixed_terms(g, z, v)


def _along_unit(g: VectorActivation, z: np.ndarray, v: np.ndarray, i: tuple) -> Line:
    """Element i = (row, unit) of J_gᵀv as the derivative of s ↦ v·g(z with z_unit = s)."""
    row, unit = i
    base, weights = z[row], v[row]
    mask = np.arange(base.size) == unit

    def forward(s, xp):
        rows = xp.where(mask, s[..., None], base)
        return xp.sum(g.forward(rows, xp) * weights, axis=-1)

    def derivative(s, xp):
        rows = xp.where(mask, s[..., None], base)
        return g.vjp(rows, xp.broadcast_to(weights, rows.shape[:-1] + weights.shape), xp)[..., unit]

    return forward, derivative, base[unit], f"at row z = {base.tolist()}, v = {weights.tolist()}, unit {unit}"


def _along_row(g: VectorActivation, z: np.ndarray, v: np.ndarray, row: int) -> Line:
    """The sum of row ``row`` of J_gᵀv as the derivative of s ↦ v·g(z + s·(1, …, 1)): every unit
    of the row moved together. At a tie of maxout each unit alone meets a kink, and one side's
    slope is a valid value for each; but moved together the tied units stay tied, the map is
    smooth, and the values must add up to its slope (one-hot or an equal split do, the whole v
    to every tied unit does not)."""
    base, weights = z[row], v[row]

    def forward(s, xp):
        return xp.sum(g.forward(base + s[..., None], xp) * weights, axis=-1)

    def derivative(s, xp):
        rows = base + s[..., None]
        return xp.sum(g.vjp(rows, xp.broadcast_to(weights, rows.shape[:-1] + weights.shape), xp), axis=-1)

    return (
        forward,
        derivative,
        base[0] * 0,
        f"at row z = {base.tolist()}, v = {weights.tolist()}, every unit moved together",
    )


# --- the check -------------------------------------------------------------------------------


def _autodiff_of(forward):
    """Autodiff of a one-variable function, for the second look."""

    def autodiff(s):
        return plain.derivative(Activation("line", forward, forward), np.asarray(s, np.float64))

    return autodiff


def _second_look(look: _Look, i: tuple, dtype: np.dtype):
    forward, derivative, s0, where = look.line(i)
    s = np.array([s0], dtype)
    verdict = second_look.reexamine(
        forward,
        derivative,
        _autodiff_of(forward),
        s,
        dtype,
        look.hand[i][None],
        look.autodiff[i][None],
        look.allowed[i][None],
    )
    return verdict, where


def _judge(looks: list[_Look], report: ActivationReport, dtype: np.dtype) -> None:
    """The ``SUSPECTS`` worst first-look failures over all the looks (by how far past their
    bound) get the second look; the first that stays wrong is the counterexample, and those
    cleared as one side's slope of a kink are reported as kinks (each z once)."""
    suspects = []
    for n, look in enumerate(looks):
        gap = np.abs(look.hand - look.autodiff)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            ratio = np.where(np.isfinite(look.hand), gap / np.maximum(look.allowed, tol.SLOPE_MINIMUM), np.inf)
        # Ties (∞ for every hand value that is not finite) go to the largest right value first, the
        # clearest: where it is exactly 0 (Jᵀv of a row of one unit) a NaN by hand may be 0·∞, which
        # the formula on long doubles clears, and eight such suspects would hide every other.
        suspects += [
            (-float(ratio[tuple(i)]), -abs(float(look.autodiff[tuple(i)])), n, tuple(int(k) for k in i))
            for i in np.argwhere(look.bad)
        ]
    rows_seen = set()
    for _, _, n, i in sorted(suspects)[:SUSPECTS]:
        look = looks[n]
        verdict, where = _second_look(look, i, dtype)
        fd = verdict.finite_difference
        if verdict.at_kink is not None and verdict.at_kink[0]:
            z0 = float(look.line(i)[2])
            if all(k.z != z0 for k in report.kinks):
                report.kinks.append(
                    Kink(
                        z0,
                        float(fd.left.value[0]),
                        float(fd.right.value[0]),
                        float(look.autodiff[i]),
                        float(look.hand[i]),
                    )
                )
        if verdict.wrong[0]:
            hand, r = float(look.hand[i]), float(look.autodiff[i])
            scale = _unit(float(look.scale[i]), hand, r)
            tolerance = float(verdict.threshold[0]) / scale
            require_finite("the tolerance of a counterexample", tolerance)
            report.counterexample = KindCounterexample(
                look.what,
                where,
                hand,
                r,
                float(fd.value[0]),
                abs(hand - r) / scale if np.isfinite(hand) else None,
                tolerance,
            )
            return
        if look.row is not None and (n, i[0]) not in rows_seen:
            rows_seen.add((n, i[0]))
            if _row_is_wrong(look, i[0], report, dtype):
                return


def _row_is_wrong(look: _Look, row: int, report: ActivationReport, dtype: np.dtype) -> bool:
    """The second look along a whole row (``_along_row``) for a suspect element that survived
    its own line; records the counterexample when the row's sum is wrong."""
    with np.errstate(invalid="ignore"):  # +∞ and −∞ by hand in one row sum to NaN: still not finite, still wrong
        hand = float(np.sum(look.hand[row]))
    r = float(np.sum(look.autodiff[row]))
    allowed, scale = float(np.sum(look.allowed[row])), _unit(float(np.sum(look.scale[row])), hand, r)
    with np.errstate(invalid="ignore"):
        if abs(hand - r) <= allowed:
            return False
    assert look.row is not None  # asked only of a look along rows
    forward, derivative, s0, where = look.row(row)
    verdict = second_look.reexamine(
        forward,
        derivative,
        _autodiff_of(forward),
        np.array([s0], dtype),
        dtype,
        np.array([hand]),
        np.array([r]),
        np.array([allowed]),
    )
    if not verdict.wrong[0]:
        return False
    tolerance = float(verdict.threshold[0]) / scale
    require_finite("the tolerance of a counterexample", tolerance)
    report.counterexample = KindCounterexample(
        "Σᵢ(J_gᵀv)ᵢ",
        where,
        hand,
        r,
        float(verdict.finite_difference.value[0]),
        abs(hand - r) / scale if np.isfinite(hand) else None,
        tolerance,
    )
    return True


def _tally(looks: list[_Look], report: ActivationReport) -> None:
    usable = [look for look in looks if look.usable.any()]
    report.points += int(sum(look.hand.size for look in looks))
    report.skipped_points += int(sum(np.sum(~look.usable) for look in looks))
    for look in usable:
        ok = look.usable & ~look.bad & (look.scale > 0)
        if not ok.any():
            continue
        with np.errstate(all="ignore"):  # ∞ where an error dwarfs its bound; only ok elements count
            ratio = np.where(ok, np.abs(look.hand - look.autodiff) / np.maximum(look.allowed, tol.SLOPE_MINIMUM), -1)
        i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        error, tolerance = abs(look.hand[i] - look.autodiff[i]) / look.scale[i], look.allowed[i] / look.scale[i]
        if error / max(tolerance, tol.SLOPE_MINIMUM) >= report.max_error / max(report.tolerance, tol.SLOPE_MINIMUM):
            report.max_error, report.tolerance = float(error), float(tolerance)
    require_finite("the largest pointwise error or its tolerance", report.max_error, report.tolerance)


# The same keyword options as check_activation (which hands a kind over to this) and check_layer,
# written out in each: a checker's signature is its documented API.
def check_kind(
    g: ParametricActivation | VectorActivation,
    *,
    examples: int = 200,
    seed: int = 0,
    dtype: np.dtype | type | str = np.float64,
    networks: int | None = None,
    strict: bool = False,
) -> ActivationReport:
    """Check the hand partials of a parametric g (∂g/∂z and every ∂g/∂p), or the hand J_gᵀv of
    a map that mixes units, against ``jax.grad`` (``jax.vjp``): pointwise, then in
    ``networks`` (default ``examples``) random networks with g in every layer."""
    start = time.perf_counter()
    dtype = np.dtype(dtype)
    if examples < 1:
        raise UsageError(f"examples must be at least 1, got {examples}")
    networks = examples if networks is None else networks
    report = ActivationReport(g.name, str(dtype), seed, strict=strict)
    rng = np.random.default_rng(seed)
    looks: list[_Look] = []
    if isinstance(g, ParametricActivation):
        z = parametric_points(g)
        settings = parameter_settings(g, rng, max(1, min(examples, 40) // 8))
        for p in settings:
            looks += _parametric_looks(g, z, p, dtype)
        report.ranges = [
            f"z on [−10, 10] and ±1e-8 … ±1e3 in rows of {UNITS} units",
            f"{len(settings)} parameter settings (defaults, both ends of every range, "
            f"{len(settings) - 3} drawn with a value per unit)",
        ]
    else:
        pairs = vector_rows(g, rng, max(8, min(examples, 64)))
        looks = [_vector_look(g, z, v, dtype) for z, v in pairs]
        report.ranges = [
            f"{len(pairs)} arrays of rows at widths {sorted({z.shape[1] for z, _ in pairs})}, "
            f"scales 0.1 … 100, ties in every group, random cotangents v"
        ]
    _tally(looks, report)
    usable = np.mean(np.concatenate([look.usable.ravel() for look in looks]))
    if usable < MIN_USABLE:
        report.inconclusive = (
            f"the forward or autodiff is finite at only {usable:.0%} of the points in {dtype}: too few to judge"
        )
    else:
        _judge(looks, report, dtype)
    if not report.inconclusive and report.counterexample is None and networks > 0:
        _network_check(g, report, networks, seed, dtype)
    report.seconds = time.perf_counter() - start
    return report


def _network_check(g, report: ActivationReport, networks: int, seed: int, dtype: np.dtype) -> None:
    from property_tests.checkers.verify import run_verify

    try:
        result = run_verify(networks, seed, activations=[g], dtype=dtype)
    except (UsageError, InternalError):
        raise
    except Exception as error:
        raise UsageError(f"the activation breaks inside a network: {type(error).__name__}: {error}") from None
    report.networks = networks
    report.network_report = result.as_dict()
    if not result.verified:
        report.network_failure = result.counterexample
    elif result.checked < MIN_USABLE * networks:
        report.inconclusive = (
            f"only {result.checked} of {networks} random networks stay finite in {dtype}: too few to judge"
        )
