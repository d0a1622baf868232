"""Check a user's own loss: its hand gradient ∇ₐEₜ against ``jax.grad`` of its per-example
error, pointwise with random per-example weights (so errors cannot cancel in a sum), and inside
random networks ending in a compatible output layer.

    from property_tests.checkers.loss_check import check_loss, assert_loss_correct

    report = check_loss(MY_LOSS, examples=200, seed=0)
    report.verdict            # "verified", "wrong" or "inconclusive"
    report.counterexample     # a point where the gradient is wrong, or None
    report.warnings           # points where a right formula loses digits, and why they passed

Where the points come from. The outputs a are produced the way a network would produce them:
through the output layers the loss names in ``outputs`` (softmax gives probability rows, sigmoid
values in (0, 1)), or as plain reals in [−10, 10] when it names none, with a sixteenth of the
examples far out (magnitudes 10 to 1000, where losses overflow). Targets follow ``targets``. An
eighth of the examples (for real and unit targets) put a within 10⁻¹⁴…1 of y, and some exactly
on it, where the gradient of a loss vanishes and cancellation in its formula shows.

Which points are judged. A point (an example a, y) whose error (NumPy, float64) or autodiff
gradient is not finite has no right answer to compare with: it is left out of the judgement and
out of every scale, noise estimate and tolerance, counted, and one of them is shown. A hand
gradient that is NaN or infinite where the error and autodiff are finite is wrong. When fewer
than half of the sampled examples can be judged the verdict is *inconclusive*, unless a judged
point already shows the gradient wrong.

How a point is judged: relative at every scale. The hand value and autodiff's compute the same
real number with different roundings, so they may differ by the rounding of each:

    |hand − autodiff| ≤ (1 + u₆₄/u)·u·32·(|∇ₐEₜ| + F·(1 + |aⱼ| + |yⱼ|)) + floor,

with u the unit roundoff of float64 and 32 = 4 × ``ELEMENTARY_ULPS`` (a loss's gradient composes
a few elementary functions, each within 8 ulps of the size of its terms). The bound is relative
to |∇ₐEₜ| from autodiff, and its absolute part is *derived from the loss's own scale*, never
from a constant: F is the largest |∇ₐEₜ| autodiff gives over the judged points of the central
range (outputs and targets within ±``CENTRAL``), the loss's own scale there.
Relative error means nothing where a gradient crosses zero (its terms cancel there, and their
rounding is a fraction of their own size, not of the difference), so some absolute slack is
needed, and it must be measured in the loss's units: multiplying a loss and its gradient by any
c > 0 multiplies every |∇ₐEₜ|, F, every noise and every Richardson difference below by c, so the
verdict does not depend on c as long as nothing under- or overflows. The central range rather
than every point: a loss growing like cosh(a − y) would let its far-out values set the slack of
every other point. The largest rather than a typical value: a gradient computed from terms of
the loss's full size keeps their rounding where it is small itself (2s·tanh r·(1 − tanh² r) of
s·tanh² r has terms of size 2s, and is off by about 2s·u for |r| ≳ 18, where it is 1e-15 of
that). ``floor`` is the underflow slack of ``tolerances.floor``.

A second look before WRONG. The bound above assumes a formula that loses at most a few ulps of
its terms; a right formula that cancels large terms (a³ − y³ near a = y, exp(r) − 1 near r = 0)
loses more, and so may autodiff's. Every point beyond the bound is re-examined:

- computational noise, measured as Moré and Wild do (*Estimating computational noise*, SIAM J.
  Sci. Comput. 33, 2011): the hand gradient and autodiff are evaluated at the 2·4 + 1 floats
  nearest aⱼ (and, for real targets, nearest yⱼ), where the true gradient barely moves, and the
  spread (max − min) of each is its noise there. The spread holds the rounding noise and also
  what moving the inputs by a few ulps does to the value: the condition of the formula, which
  rounding its inputs (a − y, say) may cost a right formula (XLA's sinh(a − y) at |a − y| ≈ 500
  is some 250 ulps from NumPy's);
- a Richardson-extrapolated central difference of the error in that coordinate, with its own
  error estimate: Rₖ = (4·D(hₖ₊₁) − D(hₖ))/3 on a ladder of steps hₖ = h·2^(6 − k) (h = u^(1/5)·max(1,
  |aⱼ|); a loss's length scale is unknown, so the step whose estimate is smallest is taken), and
  its error |Rₖ − Rₖ₋₁| (truncation) plus the error function's noise (its scatter around a line
  at the nearest floats, at least 8 ulps) over the step (rounding), times
  ``tolerances.FINITE_DIFFERENCE_SAFETY``. It is computed in np.longdouble when the error
  function accepts long doubles and returns them (agreeing with its float64 value), in float64
  otherwise.

The point is WRONG only if |hand − autodiff| exceeds the bound plus ``NOISE_SAFETY`` times both
noises AND the hand value also disagrees with the Richardson difference beyond its error
estimate, when that estimate is informative (below half of |hand − autodiff|), AND the hand
formula evaluated on long doubles (where that type is wider and the formula keeps it) agrees
neither with autodiff, nor with an informative difference that disagrees with autodiff, nor with
a difference that cannot tell it from autodiff, nor (with the hand value) with a difference
precise to ``RESOLVED`` of the gradient's scale (``_Judge._formula_right``). A right
formula that merely loses digits is verified with a warning naming the worst such point and how
many digits it loses against autodiff's. Both tests are relative to the loss's own scale too:
noise and differences scale with c.

Kinks: a kink of the loss (as |a − y| has at a = y) is told apart from a mistake the way
``activation_check`` does it: the hand value must lie between autodiff's one-sided gradients.

No error or tolerance reported is ever NaN or infinite: one that would be raises
``InternalError``, a bug of the checker.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from manual import CATALOGUE, OUTPUT_MAPS, Loss
from property_tests.checkers import second_look
from property_tests.checkers.activation_check import network_lines
from property_tests.checkers.loading import InternalError, UsageError, json_safe
from property_tests.checkers.second_look import neighbourhood, spread
from property_tests.checkers.verify import run_verify
from property_tests.library import tolerances as tol
from property_tests.library.strategies import make_targets
from reference import fast, loss_gradient

WIDTHS = (1, 3)
PLAIN_NETWORKS = 24
"""Networks checked when the padded reference cannot take the loss (see ``reference.fast.supports``)."""

ULPS = 4 * tol.ELEMENTARY_ULPS
"""Rounding of one gradient evaluation, in units of u of its terms: a loss's gradient composes a
few (up to four) elementary functions, each within ``ELEMENTARY_ULPS``."""

RELATIVE = tol.scale(np.float64) * ULPS
"""(1 + u₆₄/u)·u·32 = 64u ≈ 7.1e-15: both sides round."""

JUDGED_FRACTION = 0.5
"""Below this fraction of judged examples the verdict is inconclusive."""

NOISE_NEIGHBOURS = tol.NOISE_NEIGHBOURS
NEIGHBOURS, CENTRE = 2 * NOISE_NEIGHBOURS + 1, NOISE_NEIGHBOURS
NOISE_SAFETY = tol.NOISE_SAFETY

RICHARDSON_STEPS = 14
RICHARDSON_TOP = 6
"""Central differences at steps 2⁶h, 2⁵h, … h/2⁷ (14 pairs of error evaluations a point): h =
u^(1/5)·max(1, |aⱼ|) balances truncation against rounding only for a loss that varies on the
scale of 1; a nearly linear one (z/(tanh z³ + 2) for z ≲ −2) wants far longer steps before its
rounding over the step stops hiding a disagreement of 1e-14, a fast-varying one shorter."""

RICHARDSON_INFORMATIVE = 2
"""The Richardson difference takes part in the verdict only when its error estimate is below
half of |hand − autodiff| (as ``second_look`` asks of it): then the two cannot both lie within
it, and it can tell which of them is off."""

RESOLVED = 1e-7
"""A Richardson difference whose error is below 1e-7 of the gradient's scale (|R| + F) resolves
any mistake the checker is for (1e-6 of the gradient at the points where it is of that scale):
a hand value and its formula in higher precision both within that error are not shown wrong."""

FIRST_LOOK = 32
LATER_LOOK = 1024
"""Second looks are taken 32 points first (the simplest of the clearest failures), then 1024 at a
time, stopping at the first batch that holds a wrong point."""


def _network_with(output):
    import manual

    return manual.init_network([1, 1], [output], np.random.default_rng(0))


def _finite(value, what: str) -> float:
    """Every error and tolerance passes here before it is reported."""
    value = float(value)
    if not math.isfinite(value):
        raise InternalError(
            f"{what} is {value}: a NaN or infinity reached a tolerance or an error "
            f"(a bug of the checker, never a verdict)"
        )
    return value


@dataclass
class LossCounterexample:
    a: list
    y: list
    unit: int
    hand: float
    autodiff: float
    finite_difference: float | None
    relative_error: float | None
    tolerance: float
    scale: float = 0.0
    hand_noise: float = 0.0
    autodiff_noise: float = 0.0
    finite_difference_error: float | None = None

    def describe(self) -> str:
        fd = (
            "no usable Richardson difference"
            if self.finite_difference is None
            else f"Richardson central difference {self.finite_difference:.17g} ± {self.finite_difference_error:.2g}"
        )
        head = (
            f"at a = {self.a}, y = {self.y} (output unit {self.unit}): hand ∂Eₜ/∂a {self.hand!r}, "
            f"autodiff {self.autodiff!r}, {fd}; "
        )
        if self.relative_error is None:
            return head + "the hand gradient is not finite where the error and autodiff are"
        return head + (
            f"error {self.relative_error:.3g} relative to the gradient's scale {self.scale:.3g}, "
            f"tolerance {self.tolerance:.3g} (local noise: hand {self.hand_noise:.2g}, "
            f"autodiff {self.autodiff_noise:.2g})"
        )

    def as_dict(self) -> dict:
        return json_safe(dict(self.__dict__))


@dataclass
class LossReport:
    name: str
    seed: int
    points: int = 0
    max_error: float = 0.0
    tolerance: float = 0.0
    kinks: int = 0
    counterexample: LossCounterexample | None = None
    networks: int = 0
    network_report: dict | None = None
    network_failure: dict | None = None
    seconds: float = 0.0
    outputs: list = field(default_factory=list)
    judged: int = 0
    excluded: int = 0
    excluded_example: dict | None = None
    nonfinite_hand: int = 0
    gradient_scale: float = 0.0
    units: float = 0.0
    network_inconclusive: str | None = None
    second_looks: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.counterexample or self.network_failure:
            return "wrong"
        if self.judged < JUDGED_FRACTION * self.points or self.network_inconclusive:
            return "inconclusive"
        return "verified"

    def message(self) -> str:
        lines = [
            f"loss {self.name!r} (seed {self.seed}): {self.verdict.upper()}",
            f"  pointwise: {self.points} examples (outputs through {', '.join(self.outputs)}; widths "
            f"{', '.join(map(str, WIDTHS))}; random per-example weights), {self.judged} judged; largest "
            f"error {self.max_error:.3g} against tolerance {self.tolerance:.3g} (relative to |∇ₐEₜ| + F, "
            f"F = {self.gradient_scale:.3g} the largest central |∇ₐEₜ| from autodiff)",
        ]
        if self.excluded:
            ex = self.excluded_example
            assert ex is not None  # set with the exclusions (``_exclusions``)
            lines.append(
                f"  {self.excluded} examples left out where the error or autodiff is not finite "
                f"(e.g. a = {ex['a']}, y = {ex['y']}: {ex['why']})"
            )
        if self.verdict == "inconclusive" and self.network_inconclusive:
            lines.append(f"  INCONCLUSIVE: {self.network_inconclusive}")
        elif self.verdict == "inconclusive":
            lines.append(
                f"  INCONCLUSIVE: only {self.judged} of {self.points} examples could be judged, because "
                f"the error or autodiff is not finite on the rest and at least half must be judged."
            )
        if self.kinks:
            lines.append(
                f"  warning: {self.kinks} points at kinks of the loss, where the hand gradient lies "
                f"between autodiff's one-sided gradients (accepted)"
            )
        for warning in self.warnings:
            lines.append(f"  warning: {warning}")
        if self.nonfinite_hand:
            lines.append(f"  the hand gradient is not finite at {self.nonfinite_hand} judged points")
        if self.counterexample:
            lines.append(f"  WRONG GRADIENT {self.counterexample.describe()}")
        lines += network_lines(
            self.networks, "ending in a compatible output layer", self.network_report, self.network_failure
        )
        lines.append(f"  {self.seconds:.1f} s")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("counterexample", "warnings")}
        out["verdict"] = self.verdict
        out["counterexample"] = self.counterexample.as_dict() if self.counterexample else None
        out["warnings"] = list(self.warnings)
        # A network's failure holds its hand value as a float, NaN or ∞ for a gradient far off: a
        # string, as in the counterexample (verify's own report does the same with it).
        out["network_failure"] = json_safe(self.network_failure)
        return out


def _outputs(loss: Loss) -> list:
    if not loss.outputs:
        return [CATALOGUE["identity"]]
    try:
        return [OUTPUT_MAPS.get(name) or CATALOGUE[name] for name in loss.outputs]
    except KeyError as error:
        raise UsageError(f"the loss names an output layer that does not exist: {error}") from None


def _call(what: str, fn, a: np.ndarray, y: np.ndarray, shape: tuple) -> np.ndarray:
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(fn(a, y, np))
    except Exception as error:
        raise UsageError(
            f"the loss's {what} raises {type(error).__name__}: {error} (on a and y of shape {a.shape})"
        ) from None
    if out.shape != shape:
        raise UsageError(
            f"the loss's {what} returns shape {out.shape} for a and y of shape {a.shape}; "
            f"it must return {'one error per example' if what == 'error' else 'one gradient per output'}"
            f" (shape {shape})"
        )
    return out


def _autodiff(loss: Loss, a: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """w·∇ₐEₜ from ``reference.loss_gradient``, or one sentence if JAX cannot differentiate the loss."""
    try:
        return loss_gradient(loss, a, y, w)
    except Exception as error:
        raise UsageError(
            f"the loss's error cannot be differentiated by jax.grad with xp=jax.numpy: "
            f"{type(error).__name__}: {str(error).splitlines()[0]}"
        ) from None


# --- the points ------------------------------------------------------------------------------

NEAR_FRACTION = 8
FAR_FRACTION = 16


def sample(loss: Loss, rng: np.random.Generator, n: int, m: int, output) -> tuple:
    """n examples of width m: outputs through ``output`` from z in [−10, 10] (a grid and uniform
    draws), a sixteenth far out when the output layer is the identity, an eighth next to or on
    their targets (real and unit targets); random weights in [0.5, 1.5]."""
    z = np.concatenate([np.linspace(-10, 10, n // 2), rng.uniform(-10, 10, n - n // 2)])
    z = np.stack([np.roll(z, 7 * j) for j in range(m)], axis=1)
    plain = output.name == "identity"
    if plain:  # far out: magnitudes 10 … 1000 of both signs, where many losses overflow
        far = rng.permutation(n)[: n // FAR_FRACTION]
        z[far] = rng.choice([-1.0, 1.0], (far.size, m)) * 10.0 ** rng.uniform(1, 3, (far.size, m))
    a = np.asarray(output.forward(z, np), np.float64)
    y = make_targets(loss, (n, m), rng)
    if loss.targets == "real":
        y = y * 10  # targets over the same range as the outputs
    if loss.targets in ("real", "unit"):  # near the diagonal: a − y from 1e-14 to 1 of a's scale, or 0
        near = rng.permutation(n)[: n // NEAR_FRACTION]
        gap = rng.choice([-1.0, 1.0], (near.size, m)) * 10.0 ** rng.uniform(-14, 0, (near.size, m))
        gap[rng.uniform(size=(near.size, m)) < 0.15] = 0.0
        if loss.targets == "real":
            y[near] = a[near] - gap * np.maximum(1.0, np.abs(a[near]))
        else:  # a unit target near an output in (0, 1): the gap shrinks with the distance to 0 or 1
            y[near] = np.clip(a[near] - gap * np.abs(a[near] * (1 - a[near])), 0.0, 1.0)
    w = rng.uniform(0.5, 1.5, n)
    return a, y, w


@dataclass
class _Batch:
    a: np.ndarray
    y: np.ndarray
    w: np.ndarray
    error: np.ndarray
    hand: np.ndarray  # unweighted, as the user's gradient returns it
    autodiff: np.ndarray  # weighted: w·∇ₐEₜ
    usable: np.ndarray  # rows whose error and autodiff are finite


CENTRAL = 10.0
"""Outputs and targets within ±10 make the central range F is measured on (the sampled reals are
in [−10, 10], a sixteenth of them far out)."""


def measured_gradient_scale(magnitudes: np.ndarray) -> float:
    """F: the largest |∇ₐEₜ| autodiff gives over the judged points of the central range
    (``CENTRAL``; 0 when all vanish)."""
    return float(np.max(magnitudes)) if magnitudes.size else 0.0


# --- the check -------------------------------------------------------------------------------


def check_loss(loss: Loss, *, examples: int = 200, seed: int = 0) -> LossReport:
    """Check ``loss.gradient`` against ``jax.grad`` of ``loss.error``, pointwise and in networks."""
    start = time.perf_counter()
    report = check_pointwise(loss, examples=examples, seed=seed)
    outputs = _outputs(loss)
    networks = examples if report.counterexample is None else min(examples, 12)
    if not fast.supports([_network_with(g) for g in outputs], loss):
        networks = min(networks, PLAIN_NETWORKS)  # the plain reference compiles per architecture
    tol.allow_loss_units(loss, report.units if report.units > 0 else None)
    try:
        result = run_verify(networks, seed, losses=[loss])
    finally:
        tol.allow_loss_units(loss, None)
    report.networks, report.network_report = networks, result.as_dict()
    if not result.verified:
        report.network_failure = result.counterexample
    elif result.checked < JUDGED_FRACTION * networks:
        report.network_inconclusive = (
            f"only {result.checked} of {networks} random networks stay finite with this loss: too few to judge"
        )
    report.seconds = time.perf_counter() - start
    return report


def check_pointwise(
    loss: Loss,
    *,
    examples: int = 200,
    seed: int = 0,
    gradient_scale: Callable[[np.ndarray], float] = measured_gradient_scale,
    second_look: bool = True,
) -> LossReport:
    """The pointwise half of ``check_loss`` (no networks). ``gradient_scale`` (F from the judged
    |∇ₐEₜ|) and ``second_look`` are there for the negative controls: an absolute floor, or no
    second look, must fail the properties of ``test_loss_check``."""
    start = time.perf_counter()
    if not isinstance(loss, Loss):
        raise UsageError(f"expected a Loss, got {type(loss).__name__}")
    if examples < 1:
        raise UsageError(f"examples must be at least 1, got {examples}")
    outputs = _outputs(loss)
    report = LossReport(loss.name, seed, outputs=[g.name for g in outputs])
    rng = np.random.default_rng(seed)
    batches = []
    for output in outputs:
        for m in WIDTHS:
            a, y, w = sample(loss, rng, 4001 + examples, m, output)
            error = _call("error", loss.error, a, y, (a.shape[0],))
            hand = _call("gradient", loss.gradient, a, y, a.shape)
            r = _autodiff(loss, a, y, w)
            usable = np.isfinite(error) & np.all(np.isfinite(r), axis=1)
            batches.append(_Batch(a, y, w, error, hand, r, usable))
    _exclusions(report, batches)
    if report.judged:
        central = [b.usable & (np.max(np.maximum(np.abs(b.a), np.abs(b.y)), axis=1) <= CENTRAL) for b in batches]
        if not any(np.any(c) for c in central):
            central = [b.usable for b in batches]
        magnitudes = np.concatenate(
            [(np.abs(b.autodiff[c]) / b.w[c, None]).ravel() for b, c in zip(batches, central, strict=True)]
        )
        report.gradient_scale = _finite(gradient_scale(magnitudes), "the gradient scale F")
        sizes = np.concatenate([(np.abs(b.a) + np.abs(b.y) + 1)[b.usable].ravel() for b in batches])
        report.units = _finite(report.gradient_scale / float(np.median(sizes)), "the loss's units")
    judge = _Judge(loss, report.gradient_scale, second_look)
    for b in batches:
        judge.batch(b)
    judge.finish(report)
    report.seconds = time.perf_counter() - start
    return report


def _exclusions(report: LossReport, batches: list) -> None:
    report.points = sum(b.a.shape[0] for b in batches)
    report.judged = sum(int(np.sum(b.usable)) for b in batches)
    report.excluded = report.points - report.judged
    best = None
    for b in batches:
        rows = np.flatnonzero(~b.usable)
        if rows.size:  # the excluded example nearest the origin
            size = np.max(np.abs(b.a[rows]), axis=1) + np.max(np.abs(b.y[rows]), axis=1)
            i = int(rows[np.argmin(size)])
            if best is None or float(np.min(size)) < best[0]:
                why = (
                    f"the error is {float(b.error[i])!r}"
                    if not np.isfinite(b.error[i])
                    else f"autodiff gives {np.asarray(b.autodiff[i] / b.w[i]).tolist()}"
                )
                best = (float(np.min(size)), {"a": b.a[i].tolist(), "y": b.y[i].tolist(), "why": why})
    report.excluded_example = best[1] if best else None


@dataclass
class _Look:
    """The second look at some points of a batch (all unweighted)."""

    rows: np.ndarray
    cols: np.ndarray
    hand: np.ndarray
    autodiff: np.ndarray
    allowed: np.ndarray
    hand_noise: np.ndarray
    autodiff_noise: np.ndarray
    richardson: np.ndarray
    richardson_error: np.ndarray
    limit: np.ndarray
    denominator: np.ndarray
    wrong: np.ndarray
    informative: np.ndarray


class _Judge:
    def __init__(self, loss: Loss, F: float, second_look: bool):
        self.loss, self.F, self.second_look = loss, F, second_look
        self.worst = (-1.0, 0.0, 0.0)  # ratio, relative error, relative tolerance
        self.kinks = self.nonfinite = self.looked = 0
        self.wrong: list[tuple[_Batch, _Look]] = []
        self.excused: list[tuple[_Batch, _Look]] = []
        self.fd_dtype = None

    def allowed(self, r_abs: np.ndarray, w, size) -> np.ndarray:
        """The first look's bound (module docstring), for w·∇ₐEₜ: relative to |w·∇ₐEₜ| and to
        w·F·(1 + |aⱼ| + |yⱼ|) (``size``): a gradient such as tanh r + r·(1 − tanh² r) rounds a
        term of size F and multiplies it by r, as g′ = h + z·h′ does for an activation."""
        return RELATIVE * r_abs + RELATIVE * w * self.F * size + tol.floor(np.float64, 3)

    def batch(self, b: _Batch) -> None:
        usable = b.usable[:, None] & np.ones(b.a.shape[1], bool)
        if not np.any(usable):
            return
        with np.errstate(all="ignore"):
            hand = b.w[:, None] * b.hand
        r = b.autodiff
        allowed = self.allowed(np.abs(r), b.w[:, None], 1 + np.abs(b.a) + np.abs(b.y))
        if not np.all(np.isfinite(allowed[usable])):
            raise InternalError("a tolerance is not finite at a judged point (a bug of the checker)")
        with np.errstate(all="ignore"):
            diff = np.abs(hand - r)
            finite = np.isfinite(hand) & np.isfinite(diff)
            bad = usable & ~(diff <= allowed)  # NaN or ∞ by hand counts as wrong
            denominator = _denominator(np.abs(r) + b.w[:, None] * self.F, diff)
            judged = usable & finite
            ratio = np.where(judged, diff / allowed, -1.0)
            error = np.where(judged, diff / denominator, 0.0)
            tolerance = np.where(judged, allowed / denominator, 0.0)
        self.nonfinite += int(np.sum(usable & ~finite))
        rows, cols = np.nonzero(bad)
        for look in self._second_looks(b, rows, cols, ratio, finite, hand, allowed):
            with np.errstate(all="ignore"):  # the second look's numbers replace the first's
                excess = np.abs(look.hand - look.autodiff)
                ok = np.isfinite(excess)
                at = (look.rows[ok], look.cols[ok])
                ratio[at] = excess[ok] / look.limit[ok]
                error[at] = excess[ok] / look.denominator[ok]
                tolerance[at] = look.limit[ok] / look.denominator[ok]
            # A point the second look cleared is reported by its warning, not as the largest error
            # (which would then read as beyond its tolerance in a VERIFIED report).
            ratio[look.rows[~look.wrong], look.cols[~look.wrong]] = -1.0
        i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
        if ratio[i] > self.worst[0]:
            self.worst = (float(ratio[i]), float(error[i]), float(tolerance[i]))

    def _second_looks(self, b: _Batch, rows, cols, ratio, finite, hand, allowed) -> list[_Look]:
        """Second looks at the bad points that are not kinks: first the simplest of the clear ones
        (at least half as far beyond the tolerance as the worst, or not finite; smallest a and y
        first), then the rest, worst first; stopping at the first look that holds a wrong point
        (so kinks are counted among the points examined). A kink's ``ratio`` becomes −1: it is
        counted among the kinks, not reported as the largest error."""
        if rows.size == 0:
            return []
        r = np.where(finite[rows, cols], ratio[rows, cols], np.inf)
        top = np.max(r[np.isfinite(r)]) if np.any(np.isfinite(r)) else np.inf
        clear = r >= 0.5 * top
        size = np.max(np.abs(b.a[rows]), axis=1) + np.max(np.abs(b.y[rows]), axis=1)
        order = np.lexsort((np.where(clear, size, -r), ~clear))
        rows, cols = rows[order], cols[order]
        looks, begin, step = [], 0, FIRST_LOOK
        while begin < rows.size:
            r_, c_ = rows[begin : begin + step], cols[begin : begin + step]
            begin, step = begin + step, LATER_LOOK
            mask = np.zeros(b.a.shape, bool)
            mask[r_, c_] = finite[r_, c_]
            kinks = _at_kinks(self.loss, b.a, b.y, b.w, hand, allowed, mask)[r_, c_]
            self.kinks += int(np.sum(kinks))
            ratio[r_[kinks], c_[kinks]] = -1.0  # counted as kinks, not as the largest error
            r_, c_ = r_[~kinks], c_[~kinks]
            if r_.size == 0:
                continue
            if not self.second_look:  # the negative control: the first pass's verdict stands
                look = self._look(b, r_[:1], c_[:1], skip=True)
                look.wrong[:] = True
                self.wrong.append((b, look))
                return [look]
            look = self._look(b, r_, c_)
            self.looked += look.rows.size
            looks.append(look)
            if np.any(look.wrong):
                self.wrong.append((b, look))
                break
            self.excused.append((b, look))
        return looks

    def _look(self, b: _Batch, rows, cols, skip: bool = False) -> _Look:
        """Noise of both sides at the floats nearest aⱼ (and yⱼ, for real targets), and a
        Richardson difference; all unweighted."""
        loss, k = self.loss, rows.size
        A, Y, x0 = b.a[rows], b.y[rows], b.a[rows, cols]
        near_a, y_a = _neighbours(A, cols), np.repeat(Y, NEIGHBOURS, axis=0)
        families = [(near_a, y_a)]
        if loss.targets == "real":
            families.append((np.repeat(A, NEIGHBOURS, axis=0), _neighbours(Y, cols)))
        near = np.concatenate([f[0] for f in families])
        y_near = np.concatenate([f[1] for f in families])
        pick = (np.arange(near.shape[0]), np.tile(np.repeat(cols, NEIGHBOURS), len(families)))
        g = _call("gradient", loss.gradient, near, y_near, near.shape)[pick].reshape(-1, k, NEIGHBOURS)
        r = _autodiff(loss, near, y_near, np.ones(near.shape[0]))[pick].reshape(-1, k, NEIGHBOURS)
        wide = _wide_neighbours(A, cols)  # where the nearest floats hide a cancellation's noise
        y_wide = np.repeat(Y, WIDE, axis=0)
        at_wide = (np.arange(k * WIDE), np.repeat(cols, WIDE))
        g_wide = _call("gradient", loss.gradient, wide, y_wide, wide.shape)[at_wide]
        r_wide = _autodiff(loss, wide, y_wide, np.ones(wide.shape[0]))[at_wide]
        e = _call("error", loss.error, near_a, y_a, (k * NEIGHBOURS,)).reshape(k, NEIGHBOURS)
        hand, auto = g[0, :, CENTRE], r[0, :, CENTRE]
        with np.errstate(all="ignore"):
            allowed = self.allowed(np.abs(auto), 1.0, 1 + np.abs(x0) + np.abs(b.y[rows, cols]))
            if skip:
                hand_noise, auto_noise = np.zeros(k), np.zeros(k)
                R, R_error = np.full(k, np.nan), np.full(k, np.nan)
            else:
                hand_noise = np.maximum(_spread(g).max(axis=0), _wide_spread(g_wide.reshape(k, WIDE)))
                auto_noise = np.maximum(_spread(r).max(axis=0), _wide_spread(r_wide.reshape(k, WIDE)))
                R, R_error = self._richardson(A, Y, cols, x0, e)
            excess = np.abs(hand - auto)
            limit = allowed + NOISE_SAFETY * (hand_noise + auto_noise)
            beyond = ~(excess <= limit)
            informative = np.isfinite(R) & np.isfinite(R_error) & (R_error * RICHARDSON_INFORMATIVE <= excess)
            agrees = informative & (np.abs(hand - R) <= R_error + allowed)
            formula_right = (
                np.zeros(k, bool) if skip else self._formula_right(A, Y, cols, hand, auto, R, R_error, limit)
            )
            wrong = ~np.isfinite(hand) | ~np.isfinite(excess) | (beyond & ~agrees & ~formula_right)
            denominator = _denominator(np.abs(auto) + self.F, excess)
        return _Look(
            rows, cols, hand, auto, allowed, hand_noise, auto_noise, R, R_error, limit, denominator, wrong, informative
        )

    def _formula_right(self, A, Y, cols, hand, auto, R, R_error, limit) -> np.ndarray:
        """Is the hand formula itself right where its float64 value lost the digits? Its value on
        ``np.longdouble`` inputs (where that type is wider and the gradient keeps it: the same
        ``xp=numpy`` code) either agrees with autodiff's within the bound, or agrees with an
        informative Richardson difference that disagrees with autodiff, or agrees with a
        difference that cannot tell it from autodiff either. (1 − tanh²(10r) at r ≈ 1.9 is 0 in
        float64 and 1e-16 in long double, as the difference says.)"""
        wide_y = Y.astype(second_look.WIDE)
        out = second_look.in_wide(lambda a, xp: self.loss.gradient(a, wide_y, xp), A)
        if out is None:  # long double is no wider here, or the gradient does not keep it
            return np.zeros(auto.shape, bool)
        with np.errstate(all="ignore"):
            high = out[np.arange(A.shape[0]), cols].astype(np.float64)
            gap = np.abs(high - auto)
            measured = np.isfinite(R) & np.isfinite(R_error)
            formula_on_difference = measured & (np.abs(high - R) <= R_error + limit)
            sides_with_difference = formula_on_difference & (R_error * RICHARDSON_INFORMATIVE <= gap)
            # Or autodiff lies within the difference's error too: the formula is where the
            # difference puts g′, and what separates it from autodiff is finer than any
            # independent measurement here (autodiff's 1 − tanh² of a tanh a few ulps from 1).
            unresolved = formula_on_difference & (np.abs(auto - R) <= R_error + limit)
            # Or the hand value lies within the difference's error as well as the formula, that
            # error being fine against the gradient's scale: nothing independent shows it off.
            fine = R_error <= RESOLVED * (np.abs(R) + self.F)
            consistent = formula_on_difference & fine & (np.abs(hand - R) <= R_error + limit)
            return np.isfinite(high) & ((gap <= limit) | sides_with_difference | unresolved | consistent)

    def _richardson(self, A, Y, cols, x0, e64) -> tuple[np.ndarray, np.ndarray]:
        """Richardson-extrapolated central differences of the error in coordinate j, on a ladder
        of steps h·2^(RICHARDSON_TOP − k) (k = 0 … RICHARDSON_STEPS − 1, h = u^(1/5)·max(1, |aⱼ|)): the length scale of
        a loss is unknown, so the step whose error estimate is smallest is taken. Rₖ =
        (4·D(hₖ₊₁) − D(hₖ))/3; its error: |Rₖ − Rₖ₋₁| (truncation) plus the error's measured
        noise over the step (rounding), times FINITE_DIFFERENCE_SAFETY."""
        loss, k, m = self.loss, A.shape[0], A.shape[1]
        dtype = self._fd_dtype(A, Y, e64)
        u = float(np.finfo(dtype).eps) / 2
        x = x0.astype(dtype)
        h = dtype(u) ** dtype(0.2) * np.maximum(dtype(1), np.abs(x))
        points, steps = [], []
        for i in range(RICHARDSON_STEPS):
            s = h * dtype(2.0 ** (RICHARDSON_TOP - i))
            up, down = (x + s) - x, x - (x - s)  # the steps actually taken
            steps.append(up + down)
            points += [x + up, x - down]
        moved = np.repeat(A.astype(dtype)[None], len(points), axis=0)
        moved[:, np.arange(k), cols] = np.stack(points)
        with np.errstate(all="ignore"):
            e = np.asarray(
                _call(
                    "error",
                    loss.error,
                    moved.reshape(-1, m),
                    np.tile(Y.astype(dtype), (len(points), 1)),
                    (len(points) * k,),
                )
            )
            e = e.astype(dtype).reshape(len(points), k)
            if dtype == np.float64:
                e_near = e64
            else:  # the error's noise in long double, at the float64 neighbours (shows float64 internals)
                e_near = np.asarray(
                    _call(
                        "error",
                        loss.error,
                        _neighbours(A, cols).astype(dtype),
                        np.repeat(Y.astype(dtype), NEIGHBOURS, axis=0),
                        (k * NEIGHBOURS,),
                    )
                )
                e_near = e_near.astype(dtype).reshape(k, NEIGHBOURS)
            ok = np.isfinite(e_near)
            centre = np.where(ok[:, CENTRE], np.abs(e_near[:, CENTRE]), 0)
            noise = np.maximum(_scatter(e_near), tol.ELEMENTARY_ULPS * u * centre)
            D = np.stack([(e[2 * i] - e[2 * i + 1]) / steps[i] for i in range(RICHARDSON_STEPS)])
            R = (4 * D[1:] - D[:-1]) / 3  # R[i] uses steps i and i + 1
            truncation = np.abs(R[1:] - R[:-1])  # attributed to R[i + 1]
            rounding = 0.75 * noise[None, :] / np.stack(steps[2:]) * 2
            error = tol.FINITE_DIFFERENCE_SAFETY * (truncation + rounding)
            error = np.where(np.isfinite(error) & np.isfinite(R[1:]), error, np.inf)
            best = np.argmin(error, axis=0)
            R, error = R[1:][best, np.arange(k)], error[best, np.arange(k)]
            R64 = R.astype(np.float64)  # rounding R to float64 is part of its error
            error = error.astype(np.float64) + np.abs(R64) * tol.unit_roundoff(np.float64)
            error = np.where(np.isfinite(error), error, np.nan)
        return R64, error

    def _fd_dtype(self, A, Y, e64):
        """np.longdouble when it is wider than float64 and the error function takes and returns
        it (and agrees with its float64 value), else float64."""
        if self.fd_dtype is None:
            self.fd_dtype = np.float64
            ld = np.longdouble
            if np.finfo(ld).eps < np.finfo(np.float64).eps:
                try:
                    with np.errstate(all="ignore"):
                        out = np.asarray(self.loss.error(A[:1].astype(ld), Y[:1].astype(ld), np))
                        ref = e64[0, NOISE_NEIGHBOURS]
                        ok = (
                            out.dtype == ld
                            and out.shape == (1,)
                            and np.isfinite(out[0])
                            and abs(float(out[0]) - ref) <= 1e-6 * abs(ref) + 1e-300
                        )
                except Exception:
                    ok = False
                if ok:
                    self.fd_dtype = ld
        return self.fd_dtype

    def finish(self, report: LossReport) -> None:
        report.kinks, report.nonfinite_hand, report.second_looks = self.kinks, self.nonfinite, self.looked
        report.max_error = _finite(self.worst[1], "the largest error")
        report.tolerance = _finite(self.worst[2], "the tolerance")
        if self.wrong:
            report.counterexample = _counterexample(*self.wrong[0])
        report.warnings = self._warnings()

    def _warnings(self) -> list[str]:
        """One line for the right formulas that lose digits: the worst point accepted by the
        second look, by how far it is beyond the rounding tolerance, and how many digits it
        loses (the error of each side: its distance from an informative Richardson difference,
        else its local noise; both at least u·(|∇ₐEₜ| + F))."""
        found = []
        for b, look in self.excused + self.wrong:
            with np.errstate(all="ignore"):
                excess = np.abs(look.hand - look.autodiff)
                over = ~look.wrong & (excess > look.allowed)
            for j in np.flatnonzero(over):
                found.append((float(excess[j] / look.allowed[j]), b, look, int(j)))
        if not found:
            return []
        _, b, look, i = max(found, key=lambda t: t[0])
        hand, auto, s = float(look.hand[i]), float(look.autodiff[i]), float(look.denominator[i])
        floor = tol.unit_roundoff(np.float64) * s
        if look.informative[i]:
            R = float(look.richardson[i])
            err_hand, err_auto = abs(hand - R), abs(auto - R)
            how = (
                f"the Richardson difference {R:.17g} ± {float(look.richardson_error[i]):.2g} sides with "
                f"{'the hand value' if err_hand <= err_auto else 'autodiff'}"
            )
        else:
            err_hand, err_auto = float(look.hand_noise[i]), float(look.autodiff_noise[i])
            how = "no informative Richardson difference; within both sides' local noise"

        def digits(err: float) -> float:
            return -math.log10(max(err, floor) / s)

        agree = _finite(max(digits(abs(hand - auto)), 0.0) + 0.0, "the digits of agreement")
        lost = _finite(digits(err_auto) - digits(err_hand), "the digits lost")
        for value, what in (
            (look.hand_noise[i], "the hand noise"),
            (look.autodiff_noise[i], "autodiff's noise"),
            (look.limit[i], "a tolerance"),
            (look.allowed[i], "a tolerance"),
        ):
            _finite(value, what)
        row, col = int(look.rows[i]), int(look.cols[i])
        who = (
            f"the hand gradient loses {lost:.1f} digits against autodiff's"
            if lost >= 0
            else f"autodiff loses {-lost:.1f} digits against the hand gradient"
        )
        return [
            f"{len(found)} points beyond the rounding tolerance accepted by the second look; the worst at "
            f"a = {b.a[row].tolist()}, y = {b.y[row].tolist()} (output unit {col}): hand {hand!r} and "
            f"autodiff {auto!r} agree to {agree:.1f} digits of the gradient's scale {s:.3g}; {who} ({how}; "
            f"local noise: hand {float(look.hand_noise[i]):.2g}, autodiff {float(look.autodiff_noise[i]):.2g})"
        ]


def _denominator(scale: np.ndarray, diff: np.ndarray) -> np.ndarray:
    """What errors are relative to: |∇ₐEₜ| + F; where both vanish (a loss flat everywhere), the
    difference itself (an error of 1), or 1 when there is no difference either."""
    return np.where(scale > 0, scale, np.where(np.isfinite(diff) & (diff > 0), diff, 1.0))


def _neighbours(X: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Each row of X repeated NEIGHBOURS times, its column ``cols[i]`` moved to the 2·4 + 1
    floats nearest it (a multiple of its spacing; zeros stay zeros)."""
    k, m = X.shape
    x0 = X[np.arange(k), cols]
    steps = np.arange(-NOISE_NEIGHBOURS, NOISE_NEIGHBOURS + 1)
    out = np.repeat(X[:, None, :], NEIGHBOURS, axis=1)
    spacing = np.where(x0 != 0, np.spacing(np.abs(x0)), 0.0)
    out[np.arange(k)[:, None], np.arange(NEIGHBOURS)[None, :], cols[:, None]] = (
        x0[:, None] + steps[None, :] * spacing[:, None]
    )
    return out.reshape(k * NEIGHBOURS, m)


WIDE = 2 * second_look.NEIGHBOURS + 1
"""Points of ``second_look.neighbourhood`` around a coordinate."""


def _wide_neighbours(X: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Each row of X repeated WIDE times, its column ``cols[i]`` moved to the points of
    ``second_look.neighbourhood`` (a millionth of it apart: at the nearest floats a formula that
    cancels, as 1 − tanh² does, makes nearly the same rounding error every time)."""
    k, m = X.shape
    out = np.repeat(X[:, None, :], WIDE, axis=1)
    out[np.arange(k)[:, None], np.arange(WIDE)[None, :], cols[:, None]] = neighbourhood(X[np.arange(k), cols], X.dtype)
    return out.reshape(k * WIDE, m)


def _wide_spread(values: np.ndarray) -> np.ndarray:
    """``second_look.spread`` of values at the wide neighbours (the least-squares cubic taken
    out, since the gradient moves over that distance; a jump is not noise); 0 for a row with a
    non-finite value."""
    out = spread(values)
    return np.where(np.isfinite(out), out, 0.0)


def _spread(values: np.ndarray) -> np.ndarray:
    """Moré–Wild noise over the last axis (values at consecutive floats): max − min of the
    finite values. It holds the rounding noise and the change of the value when its inputs move by
    a few ulps, which is what rounding the inputs may do (the condition of the formula). A jump
    (``tolerances.is_step``: the values sit on either side of a kink) is not noise, and neither
    is anything from fewer than three finite values or an overflowing spread: all give 0."""
    ok = np.isfinite(values)
    with np.errstate(all="ignore"):
        spread = np.max(np.where(ok, values, -np.inf), axis=-1) - np.min(np.where(ok, values, np.inf), axis=-1)
        step = tol.is_step(values.reshape(-1, values.shape[-1])).reshape(values.shape[:-1])
    return np.where((ok.sum(axis=-1) >= 3) & np.isfinite(spread) & ~step, spread, 0).astype(values.dtype)


def _scatter(values: np.ndarray) -> np.ndarray:
    """The rounding noise alone of each row of values at consecutive floats: the spread around
    the least-squares line through the finite ones (the function itself is a line at this
    scale); 0 with fewer than three finite values or an overflowing spread."""
    ok = np.isfinite(values)
    x = np.arange(values.shape[-1], dtype=values.dtype)
    with np.errstate(all="ignore"):
        count = np.maximum(ok.sum(axis=-1), 1)
        v = np.where(ok, values, 0)
        dx = np.where(ok, x - (np.where(ok, x, 0).sum(axis=-1) / count)[:, None], 0)
        mean = v.sum(axis=-1) / count
        slope = (dx * v).sum(axis=-1) / np.maximum((dx * dx).sum(axis=-1), 1)
        resid = v - mean[:, None] - slope[:, None] * dx
        spread = np.max(np.where(ok, resid, -np.inf), axis=-1) - np.min(np.where(ok, resid, np.inf), axis=-1)
    return np.where((ok.sum(axis=-1) >= 3) & np.isfinite(spread), spread, 0).astype(values.dtype)


def _at_kinks(loss, a, y, w, hand, allowed, bad) -> np.ndarray:
    """Bad elements where autodiff's gradient jumps across a (the hand value between the sides):
    the one-sided gradients are read at a ± h and a ± h/64, all in one call; a jump keeps at
    least half its size when the step shrinks, a smooth gradient does not."""
    rows, cols = np.nonzero(bad)
    kinks = np.zeros_like(bad)
    if rows.size == 0:
        return kinks
    h = 1e-7 * np.maximum(1.0, np.abs(a[rows, cols]))
    shifts = [-h, h, -h / 64, h / 64]
    moved = np.concatenate([a[rows] for _ in shifts])
    for j, shift in enumerate(shifts):
        moved[j * rows.size + np.arange(rows.size), cols] += shift
    r = _autodiff(loss, moved, np.concatenate([y[rows]] * 4), np.concatenate([w[rows]] * 4))
    left, right, near_left, near_right = (r[j * rows.size + np.arange(rows.size), cols] for j in range(4))
    gap, slack = np.abs(left - right), allowed[rows, cols]
    with np.errstate(invalid="ignore"):
        jump = (gap > 100 * slack) & (np.abs(near_left - near_right) >= 0.5 * gap)
        between = (np.minimum(left, right) - slack <= hand[rows, cols]) & (
            hand[rows, cols] <= np.maximum(left, right) + slack
        )
    kinks[rows, cols] = jump & between
    return kinks


def _counterexample(b: _Batch, look: _Look) -> LossCounterexample:
    """The clearest wrong point of a look: among those at least half as far beyond their
    tolerance as the worst (or with a non-finite hand value when none is finite), the one with the
    smallest a and y."""
    idx = np.flatnonzero(look.wrong)
    with np.errstate(all="ignore"):
        ratio = np.abs(look.hand[idx] - look.autodiff[idx]) / look.limit[idx]
    finite = np.isfinite(ratio)
    if np.any(finite):
        idx, ratio = idx[finite], ratio[finite]
        idx = idx[ratio >= 0.5 * ratio.max()]
    size = np.max(np.abs(b.a[look.rows[idx]]), axis=1) + np.max(np.abs(b.y[look.rows[idx]]), axis=1)
    i = int(idx[np.argmin(size)])
    row, col = int(look.rows[i]), int(look.cols[i])
    hand, auto = float(look.hand[i]), float(look.autodiff[i])
    finite_hand = math.isfinite(hand) and math.isfinite(abs(hand - auto))
    R = float(look.richardson[i])
    usable_fd = math.isfinite(R) and math.isfinite(float(look.richardson_error[i]))
    return LossCounterexample(
        a=b.a[row].tolist(),
        y=b.y[row].tolist(),
        unit=col,
        hand=hand,
        autodiff=auto,
        finite_difference=R if usable_fd else None,
        relative_error=_finite(abs(hand - auto) / look.denominator[i], "the counterexample's error")
        if finite_hand
        else None,
        tolerance=_finite(look.limit[i] / look.denominator[i], "the counterexample's tolerance"),
        scale=_finite(look.denominator[i], "the counterexample's scale"),
        hand_noise=_finite(look.hand_noise[i], "the hand noise"),
        autodiff_noise=_finite(look.autodiff_noise[i], "autodiff's noise"),
        finite_difference_error=float(look.richardson_error[i]) if usable_fd else None,
    )


def assert_loss_correct(loss: Loss, **kwargs) -> LossReport:
    """Fail the calling pytest test with the report's message unless ``loss`` is verified
    (a wrong or inconclusive verdict fails)."""
    import pytest

    report = check_loss(loss, **kwargs)
    if report.verdict != "verified":
        pytest.fail(report.message(), pytrace=False)
    return report
