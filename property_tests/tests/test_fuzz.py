"""Fuzzing the checkers with generated activations and losses (``property_tests.banks.fuzz``).

- The generator is sound on its own, without any checker: NumPy and JAX agree, ``jax.grad``
  of the forward agrees with the hand derivative, and the hand derivative agrees with a
  central difference taken in 120-digit arithmetic; wrong variants are wrong where they say.
- (a) a generated right activation is never called wrong, in float64 and float32;
- (b) every generated wrong variant is called wrong in float64, with a counterexample at a
  point where the variant really differs;
- (c) generated right losses are never called wrong, and wrong ones are.

Every property is a plain function (``assert_…``) run under ``@given``, and has a negative
control: the same function on a deliberately wrong (or right) input must raise.

Budgets, scaled from the active Hypothesis profile: a ``check_activation`` costs a second or
more per example (JAX compiles every generated activation), a ``check_loss`` several seconds,
so the checker properties run a tenth (``FUZZ_EXAMPLES``) and a fifteenth (``LOSS_EXAMPLES``)
of the profile's examples, and the generator's own checks half of them (``CHEAP``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TypedDict

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, given, settings

from manual import Activation, Loss
from property_tests.banks import fuzz
from property_tests.checkers.activation_check import PointCounterexample, check_activation
from property_tests.checkers.loss_check import check_loss, check_pointwise
from property_tests.tests.sweeps import SWEEP

pytestmark = SWEEP  # the fuzzing: under the ci and thorough profiles (sweeps.py)

FUZZ_EXAMPLES = max(2, settings().max_examples // 10)
"""Examples per checker property: 3 under the ci profile (30), 1000 when thorough (the fuzzing is a
sweep: the quick default leaves it out)."""

LOSS_EXAMPLES = max(2, settings().max_examples // 15)
"""Examples per loss-checker property: 2 under the ci profile, 666 when thorough
(``check_loss`` compiles networks for every new loss: several seconds each)."""

CHECK_EXAMPLES = 5
"""``examples=`` (Hypothesis point arrays, random networks) of each checker call."""


class CheckOptions(TypedDict):
    """The keyword arguments of ``check_activation`` that the properties below fix."""

    examples: int
    seed: int
    networks: int


CHECK_OPTIONS = CheckOptions(examples=CHECK_EXAMPLES, seed=0, networks=CHECK_EXAMPLES)

POINTWISE_EXAMPLES = 2 * settings().max_examples
"""Examples of the pointwise-only properties: 60 each under the default and ci profiles (180
generated activations and 120 losses in all), 20,000 when thorough. Without networks a check costs about
0.4 s: the pointwise judgement, where the false alarms of extreme numbers live, gets volume;
the few examples above carry the networks."""

POINTWISE_OPTIONS = CheckOptions(examples=2, seed=0, networks=0)

EXPENSIVE = settings(
    max_examples=FUZZ_EXAMPLES,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.nested_given,
    ],
)
"""check_activation draws its own points with Hypothesis: a nested @given, on purpose."""

LOSSES = settings(EXPENSIVE, max_examples=LOSS_EXAMPLES)

CHEAP = settings(
    max_examples=max(10, settings().max_examples // 2),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
"""The generator's own checks: about 0.2 s an example (sympy, one JAX compilation)."""


# --- the generator on its own ------------------------------------------------------------

SMOOTH_POINTS = np.array([-7.31, -2.17, -0.613, 0.377, 1.29, 2.93, 6.11])
"""Points where a generated g is smooth (no generated kink lies at these decimals)."""

EXACT_POINTS = (
    *(sympy.nsimplify(p) for p in SMOOTH_POINTS),
    sympy.Integer(0),
    sympy.Integer(1),
    sympy.Integer(-2),
    sympy.sqrt(2),
)
"""The same, plus the centres of the removable singularities (the limits are checked there)."""

DIGITS = 120
"""Working precision of the central difference: the removable singularities cancel 40 digits at
z = c ± h, h = 1e-20, and 80 are left."""
STEP = mpmath.mpf(10) ** -20


def _close(a: np.ndarray, b: np.ndarray, rtol: float, slack: np.ndarray | float = 0.0) -> np.ndarray:
    """a ≈ b where both are finite: within rtol of the largest finite magnitude of either, plus
    ``slack`` (the function's own sensitivity to rounding there, see ``_spread``)."""
    both = np.isfinite(a) & np.isfinite(b)
    if not np.any(both):
        return np.ones_like(both)
    scale = max(np.max(np.abs(a[both])), np.max(np.abs(b[both])), 1e-300)
    with np.errstate(invalid="ignore"):
        return ~both | (np.abs(a - b) <= rtol * scale + slack)


def _spread(fn: Callable, z: np.ndarray, ulps: int = 4) -> np.ndarray:
    """How much ``fn(·, numpy)`` moves over the floats within ``ulps`` of each z, times 100:
    two correct programs may differ by that much where the function is ill-conditioned
    (sin(z⁹) at z = −7.31 moves 7e-8 per ulp of z, and NumPy and JAX round z⁹ differently)."""
    near = z[:, None] + np.arange(-ulps, ulps + 1)[None, :] * np.spacing(np.abs(z))[:, None]
    values = fn(near, np)
    finite = np.where(np.isfinite(values), values, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN rows
        spread = np.nanmax(finite, axis=1) - np.nanmin(finite, axis=1)
    return 100 * np.nan_to_num(spread, nan=0.0)


def _exact(expr: sympy.Expr) -> sympy.Expr:
    """Floats (1 + 1e-6, …) as the exact rationals they stand for, so that 120-digit
    arithmetic is not cut back to their 53 bits."""
    return expr.xreplace({f: sympy.Rational(f) for f in expr.atoms(sympy.Float)})


def assert_sound(sym: fuzz.SymbolicActivation) -> None:
    """The generated activation is right and usable, judged without the checker."""
    act = sym.activation
    for dtype in (np.float32, np.float64):
        for shape in ((7,), (3, 4), ()):
            z = np.asarray(np.linspace(-2, 2, int(np.prod(shape))).reshape(shape), dtype)
            for fn in (act.forward, act.derivative):
                out = fn(z, np)
                assert out.shape == z.shape and out.dtype == z.dtype, (fn.__doc__, out.shape, out.dtype)

    z = SMOOTH_POINTS
    with jax.enable_x64(True):  # one compilation for all three
        both = jax.jit(
            lambda v: (
                act.forward(v, jnp),
                act.derivative(v, jnp),
                jax.vmap(jax.grad(lambda s: act.forward(s, jnp)))(v),
            )
        )
        *by_jax, autodiff = (np.asarray(v) for v in both(jnp.asarray(z)))
    by_numpy = [act.forward(z, np), act.derivative(z, np)]
    slack = [_spread(act.forward, z), _spread(act.derivative, z)]
    for what, n, j, s in zip(("forward", "derivative"), by_numpy, by_jax, slack, strict=True):
        assert np.array_equal(np.isfinite(n), np.isfinite(j)), (what, n, j)
        assert np.all(_close(n, j, 1e-9, s)), (what, n, j)
    assert np.all(_close(by_numpy[1], autodiff, 1e-7, slack[1])), ("jax.grad", by_numpy[1], autodiff)

    forward, derivative = (
        sympy.lambdify(fuzz.Z, _exact(fuzz.as_sympy(e)), modules="mpmath") for e in (sym.forward, sym.derivative)
    )
    with mpmath.workdps(DIGITS):
        for p in EXACT_POINTS:
            if any(abs(float(p) - k) < 1e-6 for k in sym.kinks):
                continue
            z0 = mpmath.mpf(sympy.N(p, DIGITS + 10))
            try:
                hand = derivative(z0)
                d_h, d_2h = (_central(forward, z0, h) for h in (STEP, 2 * STEP))
            except ZeroDivisionError:
                raise AssertionError(f"a division by zero at z = {float(p)}") from None
            # rounding: DIGITS digits of g, divided by h; truncation, by Richardson: about
            # |D(2h) − D(h)|/3 (O(h), not O(h²), at a kink of |u| that nobody declared, where
            # g′ = 0 by sign(0))
            rounding = mpmath.mpf(10) ** (2 - DIGITS) * (abs(forward(z0)) + abs(hand)) / STEP
            allowed = mpmath.mpf(1e-15) * abs(hand) + rounding + abs(d_2h - d_h) + mpmath.mpf(1e-40)
            assert abs(hand - d_h) <= allowed, (float(p), hand, d_h)


def _central(f: Callable, z0, h):
    return (f(z0 + h) - f(z0 - h)) / (2 * h)


@CHEAP
@given(fuzz.symbolic_activations())
def test_generated_activations_are_right_without_the_checker(sym):
    assert_sound(sym)


def test_soundness_rejects_a_wrong_derivative():
    """Negative control: g = tanh z with g′ = 1 − tanh z (the square forgotten)."""
    wrong = fuzz.symbolic_activation("control", sympy.tanh(fuzz.Z), 1 - sympy.tanh(fuzz.Z))
    with pytest.raises(AssertionError):
        assert_sound(wrong)


def test_soundness_rejects_a_float64_leak():
    """Negative control: a forward that turns float32 into float64 (NumPy's sqrt(2) scalar)."""
    sym = fuzz.symbolic_activation("control", sympy.tanh(fuzz.Z))
    leaky = Activation("leak", lambda z, xp: z * np.sqrt(np.float64(2)), sym.activation.derivative)
    with pytest.raises(AssertionError):
        assert_sound(fuzz.SymbolicActivation("control", sym.forward, sym.derivative, 1.0, (), leaky))


def assert_really_wrong(variant: fuzz.WrongVariant) -> None:
    """The variant differs from the right derivative only in its region, and there, on a run
    of width ≥ 0.5, by at least 1e-6 relative where g′ is not negligible; the forward is the same."""
    assert variant.wrong_width() >= fuzz.MIN_WIDTH, variant
    differs = variant.differs(fuzz.GRID)
    assert np.any(differs) and np.all(variant.in_region(fuzz.GRID[differs])), variant
    assert variant.activation.forward is variant.correct.activation.forward


@CHEAP
@given(fuzz.wrong_activations())
def test_wrong_variants_are_wrong_without_the_checker(variant):
    assert_really_wrong(variant)


def test_really_wrong_rejects_an_invisible_mistake():
    """Negative control: off by 1e-3, but only on (20, 21), outside [−10, 10]."""
    right = fuzz.symbolic_activation("control", sympy.tanh(fuzz.Z))
    hidden = sympy.Piecewise((1.001 * right.derivative, (fuzz.Z > 20) & (fuzz.Z < 21)), (right.derivative, True))
    with pytest.raises(AssertionError):
        assert_really_wrong(fuzz.wrong_derivative(right, "hidden", hidden, low=20.0, high=21.0))


def assert_sound_loss(loss: Loss) -> None:
    """Shapes (n,) and (n, m), both dtypes, NumPy against JAX, and the gradient against
    ``jax.grad`` of the summed error."""
    rng = np.random.default_rng(0)
    a, y = rng.uniform(-10, 10, (2, 6, 3))
    for dtype in (np.float32, np.float64):
        e, g = loss.error(a.astype(dtype), y.astype(dtype), np), loss.gradient(a.astype(dtype), y.astype(dtype), np)
        assert e.shape == (6,) and g.shape == (6, 3) and e.dtype == g.dtype == dtype
    with jax.enable_x64(True):  # one compilation for all three
        three = jax.jit(
            lambda a_, y_: (
                loss.error(a_, y_, jnp),
                loss.gradient(a_, y_, jnp),
                jax.grad(lambda v: jnp.sum(loss.error(v, y_, jnp)))(a_),
            )
        )
        e_jax, g_jax, autodiff = (np.asarray(v) for v in three(jnp.asarray(a), jnp.asarray(y)))
    g = loss.gradient(a, y, np)
    assert np.all(_close(loss.error(a, y, np), e_jax, 1e-9)) and np.all(_close(g, g_jax, 1e-9))
    assert np.all(_close(g, autodiff, 1e-7)), (g, autodiff)


@CHEAP
@given(fuzz.symbolic_losses())
def test_generated_losses_are_right_without_the_checker(sym):
    assert_sound_loss(sym.loss)


def test_loss_soundness_rejects_a_wrong_gradient():
    """Negative control: ½r² with gradient r/n (1/n twice)."""
    right = fuzz.symbolic_loss("control", fuzz.Z**2 / 2)
    with pytest.raises(AssertionError):
        assert_sound_loss(fuzz.wrong_loss(right, "1/n applied twice", per_example=True).loss)


# --- (a) right activations are never called wrong ----------------------------------------


def assert_not_called_wrong(act: Activation, dtype) -> None:
    report = check_activation(act, dtype=dtype, **CHECK_OPTIONS)
    assert report.verdict != "wrong", report.message()


@EXPENSIVE
@given(fuzz.activations())
def test_right_activations_are_never_wrong_float64(act):
    assert_not_called_wrong(act, np.float64)


@EXPENSIVE
@given(fuzz.activations())
def test_right_activations_are_never_wrong_float32(act):
    assert_not_called_wrong(act, np.float32)


POINTWISE = settings(EXPENSIVE, max_examples=POINTWISE_EXAMPLES)


@POINTWISE
@given(fuzz.activations())
def test_right_activations_are_never_wrong_pointwise_float64(act):
    report = check_activation(act, **POINTWISE_OPTIONS)
    assert report.verdict != "wrong", report.message()


@POINTWISE
@given(fuzz.activations())
def test_right_activations_are_never_wrong_pointwise_float32(act):
    report = check_activation(act, dtype=np.float32, **POINTWISE_OPTIONS)
    assert report.verdict != "wrong", report.message()


TANH = fuzz.symbolic_activation("control", sympy.tanh(fuzz.Z) + fuzz.Z / 10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_never_wrong_rejects_a_wrong_variant(dtype):
    """Negative control: tanh z + z/10 with g′ off by 1% on (0.5, 1)."""
    with pytest.raises(AssertionError):
        assert_not_called_wrong(fuzz.interval_error(TANH, sympy.Rational(1, 2), 1e-2).activation, dtype)


# --- (b) wrong variants are called wrong -------------------------------------------------


def assert_caught(variant: fuzz.WrongVariant) -> None:
    report = check_activation(variant.activation, dtype=np.float64, **CHECK_OPTIONS)
    counterexample = report.counterexample  # an elementwise activation's: at a point z
    assert report.verdict == "wrong" and isinstance(counterexample, PointCounterexample), report.message()
    z = counterexample.z
    assert variant.differs(np.array([z]))[0], (
        f"the counterexample z = {z!r} is a point where g′ is right\n" + report.message()
    )


# Same shape as the loss tests below: thin @given wrappers, one per strategy and budget, so each
# property and its budget are named where pytest reports them.
@EXPENSIVE
@given(fuzz.wrong_activations())
def test_wrong_variants_are_caught(variant):
    assert_caught(variant)


@POINTWISE
@given(fuzz.wrong_activations())
def test_wrong_variants_are_caught_pointwise(variant):
    report = check_activation(variant.activation, **POINTWISE_OPTIONS)
    assert report.verdict == "wrong", report.message()
    assert variant.differs(np.array([report.counterexample.z]))[0], report.message()


def test_pointwise_properties_have_negative_controls():
    """The pointwise properties' own assertions reject a wrong variant and a right activation."""
    wrong = fuzz.interval_error(TANH, sympy.Rational(1, 2), 1e-2)
    assert check_activation(wrong.activation, **POINTWISE_OPTIONS).verdict == "wrong"
    assert check_activation(TANH.activation, **POINTWISE_OPTIONS).verdict == "verified"


def test_caught_rejects_a_right_activation():
    """Negative control: a right activation, posing as a variant with no mistake."""
    with pytest.raises(AssertionError):
        assert_caught(fuzz.wrong_derivative(TANH, "no mistake", TANH.derivative))


# --- (c) losses ---------------------------------------------------------------------------


def assert_loss_not_called_wrong(loss: Loss) -> None:
    report = check_loss(loss, examples=CHECK_EXAMPLES, seed=0)
    assert report.verdict != "wrong", report.message()


def assert_loss_caught(wrong: fuzz.WrongLoss) -> None:
    report = check_loss(wrong.loss, examples=CHECK_EXAMPLES, seed=0)
    assert report.verdict == "wrong", report.message()


@LOSSES
@given(fuzz.losses())
def test_right_losses_are_never_wrong(loss):
    assert_loss_not_called_wrong(loss)


@LOSSES
@given(fuzz.wrong_losses())
def test_wrong_losses_are_caught(wrong):
    assert_loss_caught(wrong)


@POINTWISE
@given(fuzz.losses())
def test_right_losses_are_never_wrong_pointwise(loss):
    report = check_pointwise(loss, examples=20, seed=0)
    assert report.verdict != "wrong", report.message()


@POINTWISE
@given(fuzz.wrong_losses())
def test_wrong_losses_are_caught_pointwise(wrong):
    report = check_pointwise(wrong.loss, examples=20, seed=0)
    assert report.verdict == "wrong", report.message()


PSEUDO_HUBER = fuzz.symbolic_loss("control", sympy.sqrt(1 + fuzz.Z**2) - 1, 1e-3)


def test_loss_properties_have_negative_controls():
    """The right-loss property rejects a wrong loss, and the wrong-loss property a right one."""
    with pytest.raises(AssertionError):
        assert_loss_not_called_wrong(
            fuzz.wrong_loss(PSEUDO_HUBER, "relative 1e-3", 1.001 * PSEUDO_HUBER.phi_prime).loss
        )
    with pytest.raises(AssertionError):
        assert_loss_caught(fuzz.wrong_loss(PSEUDO_HUBER, "no mistake"))
    # ... and so do the pointwise ones' assertions.
    assert (
        check_pointwise(
            fuzz.wrong_loss(PSEUDO_HUBER, "relative 1e-3", 1.001 * PSEUDO_HUBER.phi_prime).loss, examples=20, seed=0
        ).verdict
        == "wrong"
    )
    assert check_pointwise(PSEUDO_HUBER.loss, examples=20, seed=0).verdict == "verified"
