"""Check a user's own loss: its hand gradient ∇ₐEₜ against ``jax.grad`` of its per-example
error, pointwise with random per-example weights (so errors cannot cancel in a sum), and inside
random networks ending in a compatible output layer.

    from property_tests.loss_check import check_loss, assert_loss_correct

The outputs a are produced the way a network would produce them: through the output layers the
loss names in ``outputs`` (softmax gives probability rows, sigmoid values in (0, 1)), or as
plain reals in [−10, 10] when it names none. Targets follow ``targets``. A kink of the loss (as
|a − y| has at a = y) is told apart from a mistake the way ``activation_check`` does it: the
hand value must lie between autodiff's one-sided gradients.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial

import jax
import numpy as np

from manual import CATALOGUE, OUTPUT_MAPS, Loss
from reference import fast

from . import tolerances as tol
from .activation_check import network_lines
from .loading import UsageError
from .strategies import make_targets
from .verify import run_verify

WIDTHS = (1, 3)
PAD_ROWS = 512
PLAIN_NETWORKS = 24
"""Networks checked when the padded reference cannot take the loss (see ``reference.fast.supports``)."""


def _network_with(output):
    import manual

    return manual.init_network([1, 1], [output], np.random.default_rng(0))


@dataclass
class LossCounterexample:
    a: list
    y: list
    unit: int
    hand: float
    autodiff: float
    finite_difference: float
    relative_error: float
    tolerance: float

    def describe(self) -> str:
        return (f"at a = {self.a}, y = {self.y} (output unit {self.unit}): hand ∂Eₜ/∂a {self.hand!r}, "
                f"autodiff {self.autodiff!r}, central finite difference {self.finite_difference:.17g}; "
                f"error {self.relative_error:.3g} relative to the gradient's scale, tolerance {self.tolerance:.3g}")


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

    @property
    def verdict(self) -> str:
        return "wrong" if self.counterexample or self.network_failure else "verified"

    def message(self) -> str:
        lines = [f"loss {self.name!r} (seed {self.seed}): {self.verdict.upper()}",
                 f"  pointwise: {self.points} examples (outputs through {', '.join(self.outputs)}; widths "
                 f"{', '.join(map(str, WIDTHS))}; random per-example weights); largest error {self.max_error:.3g} "
                 f"against tolerance {self.tolerance:.3g}"]
        if self.kinks:
            lines.append(f"  warning: {self.kinks} points at kinks of the loss, where the hand gradient lies "
                         f"between autodiff's one-sided gradients (accepted)")
        if self.counterexample:
            lines.append(f"  WRONG GRADIENT {self.counterexample.describe()}")
        lines += network_lines(self.networks, "ending in a compatible output layer", self.network_report,
                               self.network_failure)
        lines.append(f"  {self.seconds:.1f} s")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "counterexample"}
        out["verdict"] = self.verdict
        out["counterexample"] = self.counterexample.__dict__ if self.counterexample else None
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
        raise UsageError(f"the loss's {what} raises {type(error).__name__}: {error} "
                         f"(on a and y of shape {a.shape})") from None
    if out.shape != shape:
        raise UsageError(f"the loss's {what} returns shape {out.shape} for a and y of shape {a.shape}; "
                         f"it must return {'one error per example' if what == 'error' else 'one gradient per output'}"
                         f" (shape {shape})")
    return out


@partial(jax.jit, static_argnums=0)
def _weighted_gradient(loss, a, y, w):
    _, vjp = jax.vjp(lambda a_: loss.error(a_, y, jax.numpy), a)
    return vjp(w)[0]


def _autodiff(loss: Loss, a: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    n = a.shape[0]
    rows = PAD_ROWS * max(1, math.ceil(n / PAD_ROWS))
    pad = lambda v, fill: np.concatenate([v, np.repeat(v[:1], rows - n, axis=0) if fill is None else
                                          np.zeros((rows - n,) + v.shape[1:])])
    try:
        with jax.enable_x64(True):
            out = _weighted_gradient(loss, pad(a, None), pad(y, None), pad(w, 0.0))
        return np.asarray(out)[:n]
    except Exception as error:
        raise UsageError(f"the loss's error cannot be differentiated by jax.grad with xp=jax.numpy: "
                         f"{type(error).__name__}: {str(error).splitlines()[0]}") from None


def sample(loss: Loss, rng: np.random.Generator, n: int, m: int, output) -> tuple:
    z = np.concatenate([np.linspace(-10, 10, n // 2), rng.uniform(-10, 10, n - n // 2)])
    z = np.stack([np.roll(z, 7 * j) for j in range(m)], axis=1)
    a = np.asarray(output.forward(z, np), np.float64)
    y = make_targets(loss, (n, m), rng)
    if loss.targets == "real":
        y = y * 10  # targets over the same range as the outputs
    w = rng.uniform(0.5, 1.5, n)
    return a, y, w


def check_loss(loss: Loss, *, examples: int = 200, seed: int = 0) -> LossReport:
    """Check ``loss.gradient`` against ``jax.grad`` of ``loss.error``, pointwise and in networks."""
    start = time.perf_counter()
    if not isinstance(loss, Loss):
        raise UsageError(f"expected a Loss, got {type(loss).__name__}")
    if examples < 1:
        raise UsageError(f"examples must be at least 1, got {examples}")
    outputs = _outputs(loss)
    report = LossReport(loss.name, seed, outputs=[g.name for g in outputs])
    rng = np.random.default_rng(seed)
    worst = (0.0, 0.0)
    for output in outputs:
        for m in WIDTHS:
            a, y, w = sample(loss, rng, 4001 + examples, m, output)
            _call("error", loss.error, a, y, (a.shape[0],))
            hand = w[:, None] * _call("gradient", loss.gradient, a, y, a.shape)
            r = _autodiff(loss, a, y, w)
            size = np.abs(r) + w[:, None] * (np.abs(a) + np.abs(y) + 1)
            allowed = tol.scale(np.float64) * 4 * tol.ELEMENTARY_ULPS * size + tol.floor(np.float64, m)
            finite = np.isfinite(r)
            with np.errstate(invalid="ignore"):
                bad = finite & ~(np.abs(hand - r) <= allowed)
                ratio = np.where(finite, np.abs(hand - r) / allowed, 0.0)
            report.points += a.shape[0]
            i = np.unravel_index(np.nanargmax(np.where(np.isnan(ratio), np.inf, ratio)), ratio.shape)
            if ratio[i] >= worst[0]:
                worst = (float(ratio[i]), float(allowed[i] / size[i]))
                report.max_error = float(abs(hand[i] - r[i]) / size[i]) if np.isfinite(hand[i]) else math.inf
                report.tolerance = worst[1]
            kinks = _at_kinks(loss, a, y, w, hand, allowed, bad)
            report.kinks += int(np.sum(kinks))
            bad &= ~kinks
            if np.any(bad) and report.counterexample is None:
                report.counterexample = _counterexample(loss, a, y, w, hand, r, size, allowed, bad)
    networks = examples if report.counterexample is None else min(examples, 12)
    if not fast.supports([_network_with(g) for g in outputs], loss):
        networks = min(networks, PLAIN_NETWORKS)  # the plain reference compiles per architecture
    result = run_verify(networks, seed, losses=[loss])
    report.networks, report.network_report = networks, result.as_dict()
    if not result.verified:
        report.network_failure = result.counterexample
    report.seconds = time.perf_counter() - start
    return report


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
    jump = (gap > 100 * slack) & (np.abs(near_left - near_right) >= 0.5 * gap)
    between = (np.minimum(left, right) - slack <= hand[rows, cols]) & (hand[rows, cols] <= np.maximum(left, right) + slack)
    kinks[rows, cols] = jump & between
    return kinks


def _counterexample(loss, a, y, w, hand, r, size, allowed, bad) -> LossCounterexample:
    rows, cols = np.nonzero(bad)
    k = int(np.argmin(np.abs(a[rows, cols] - y[rows, cols])))
    row, col = int(rows[k]), int(cols[k])
    h = tol.finite_difference_step() * max(1.0, abs(a[row, col]))
    up, down = a[row:row + 1].copy(), a[row:row + 1].copy()
    up[0, col] += h
    down[0, col] -= h
    fd = float((loss.error(up, y[row:row + 1], np)[0] - loss.error(down, y[row:row + 1], np)[0]) / (2 * h))
    return LossCounterexample(
        a=a[row].tolist(), y=y[row].tolist(), unit=col, hand=float(hand[row, col] / w[row]),
        autodiff=float(r[row, col] / w[row]), finite_difference=fd,
        relative_error=float(abs(hand[row, col] - r[row, col]) / size[row, col]),
        tolerance=float(allowed[row, col] / size[row, col]))


def assert_loss_correct(loss: Loss, **kwargs) -> LossReport:
    """Fail the calling pytest test with the report's message unless ``loss`` is verified."""
    import pytest

    report = check_loss(loss, **kwargs)
    if report.verdict != "verified":
        pytest.fail(report.message(), pytrace=False)
    return report
