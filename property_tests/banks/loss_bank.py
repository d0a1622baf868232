"""User-style losses, right and wrong, for ``backprop-check loss`` and its tests."""

from __future__ import annotations

import math

from manual import Loss


def _logcosh(a, y, xp):
    r = a - y
    return xp.sum(xp.logaddexp(r, -r) - xp.log(2.0), axis=-1)


RIGHT_LOGCOSH = Loss("logcosh", _logcosh, lambda a, y, xp: xp.tanh(a - y))
"""log cosh(a − y), gradient tanh(a − y)."""

WRONG_LOGCOSH = Loss("logcosh_1e-6", _logcosh, lambda a, y, xp: xp.tanh(a - y) * (1 + 1e-6))
"""The same gradient off by a relative 1e-6."""

WRONG_MSE_TWICE_AVERAGED = Loss(
    "mse_1_over_n_twice", lambda a, y, xp: 0.5 * xp.sum((a - y) ** 2, axis=-1), lambda a, y, xp: (a - y) / a.shape[0]
)
"""The squared error with the 1/n of the mean applied again inside the gradient."""

UNUSABLE_SHAPE = Loss("summed", lambda a, y, xp: xp.sum((a - y) ** 2), lambda a, y, xp: 2 * (a - y))
"""The error returns one number for the whole batch instead of one per example."""


# --- scaled, overflowing, cancelling, non-finite: the pointwise verdict at every scale -------


def _mse_times(c, off=1.0):
    return (lambda a, y, xp: c * 0.5 * xp.sum((a - y) ** 2, axis=-1), lambda a, y, xp: c * (a - y) * off)


RIGHT_MSE_TINY = Loss("mse_times_1e-10", *_mse_times(1e-10))
"""½‖a − y‖² times 1e-10, gradient (a − y) times 1e-10."""

RIGHT_MSE_HUGE = Loss("mse_times_1e6", *_mse_times(1e6))
"""½‖a − y‖² times 1e6, gradient (a − y) times 1e6."""

WRONG_MSE_TINY = Loss("mse_times_1e-10_off_1e-6", *_mse_times(1e-10, 1 + 1e-6))
"""The 1e-10-scaled squared error with its gradient off by a relative 1e-6."""

WRONG_MSE_HUGE = Loss("mse_times_1e6_off_1e-6", *_mse_times(1e6, 1 + 1e-6))
"""The 1e6-scaled squared error with its gradient off by a relative 1e-6."""


def _cosh(a, y, xp):
    return xp.sum(xp.cosh(a - y), axis=-1)


RIGHT_COSH = Loss("cosh", _cosh, lambda a, y, xp: xp.sinh(a - y))
"""Σ cosh(a − y), which overflows to inf where |a − y| > 710 (a few far points), gradient sinh(a − y)."""

WRONG_COSH = Loss("cosh_off_1e-6", _cosh, lambda a, y, xp: xp.sinh(a - y) * (1 + 1e-6))
"""Σ cosh(a − y) with its gradient off by a relative 1e-6."""


def _cubic(a, y, xp):
    # (a⁴ − 4ay³ + 3y⁴)/4 written as ¼(a − y)²(a² + 2ay + 3y²), so that autodiff does not cancel.
    r = a - y
    return xp.sum(0.25 * r * r * (a * a + 2 * a * y + 3 * y * y), axis=-1)


RIGHT_CANCELLING = Loss("cubic_gap", _cubic, lambda a, y, xp: a**3 - y**3)
"""¼(a − y)²(a² + 2ay + 3y²), gradient a³ − y³: right, but cancelling to a few digits where a ≈ y is large."""

WRONG_CANCELLING = Loss("cubic_gap_off_1e-6", _cubic, lambda a, y, xp: (a**3 - y**3) * (1 + 1e-6))
"""The cancelling gradient a³ − y³ off by a relative 1e-6."""


def _exp_gap(a, y, xp):
    r = a - y
    return xp.sum(xp.exp(r) - r, axis=-1)


RIGHT_EXP_CANCELLING = Loss("exp_gap", _exp_gap, lambda a, y, xp: xp.exp(a - y) - 1)
"""Σ exp(a − y) − (a − y), gradient exp(a − y) − 1: cancelling near a = y (as autodiff does), inf where a − y > 709."""

WRONG_EXP_CANCELLING = Loss("exp_gap_off_1e-6", _exp_gap, lambda a, y, xp: (xp.exp(a - y) - 1) * (1 + 1e-6))
"""The cancelling gradient exp(a − y) − 1 off by a relative 1e-6."""


def _one_minus_cos(a, y, xp):
    return xp.sum(1 - xp.cos(a - y), axis=-1)


WRONG_NAN_AT_ZERO = Loss("one_minus_cos_nan", _one_minus_cos, lambda a, y, xp: (a - y) * (xp.sin(a - y) / (a - y)))
"""1 − cos(a − y) with the gradient written r·(sin r / r): NaN at a = y, where the error (0) is finite."""

INCONCLUSIVE_LOG = Loss(
    "log_gap", lambda a, y, xp: xp.sum(xp.log(a - y - 12), axis=-1), lambda a, y, xp: 1 / (a - y - 12)
)
"""Σ log(a − y − 12): NaN wherever a − y < 12, almost everywhere the outputs and targets lie."""


def _mae(a, y, xp):
    return xp.sum(xp.abs(a - y), axis=-1)


RIGHT_MAE_SIGN_ZERO = Loss("mae_sign_0", _mae, lambda a, y, xp: xp.sign(a - y))
"""Σ|a − y| with gradient sign(a − y): 0 at a = y, between autodiff's one-sided gradients (a kink, accepted)."""

WRONG_MAE_AT_KINK = Loss("mae_3_at_kink", _mae, lambda a, y, xp: xp.where(a == y, 3.0, xp.sign(a - y)))
"""Σ|a − y| with gradient 3 at a = y, outside the one-sided gradients ±1: a jump is no rounding noise."""


def _saturating(a, y, xp):
    r = a - y
    return xp.sum(r / (xp.tanh(r**3) + 2), axis=-1)


def _saturating_gradient(a, y, xp):
    r = a - y
    t = xp.tanh(r**3)
    return 1 / (t + 2) - 3 * r**3 * (1 - t**2) / (t + 2) ** 2


RIGHT_SATURATING = Loss("saturating_tanh", _saturating, _saturating_gradient)
"""Σ r/(tanh r³ + 2): for r ≲ −2 autodiff's 1 − tanh² of XLA's tanh (a few ulps from −1) times
3r³ is off by ~100 ulps of the gradient, which stays ≈ 1 there; only a central difference on
steps far longer than u^(1/5) is precise enough to side with the hand value."""

WRONG_SATURATING = Loss(
    "saturating_tanh_off_1e-6", _saturating, lambda a, y, xp: _saturating_gradient(a, y, xp) * (1 + 1e-6)
)


def _saturated_clip(a, y, xp):
    return xp.sum(2.5 * xp.tanh(10 * xp.clip(a - y, 1, 3)), axis=-1)


def _saturated_clip_gradient(a, y, xp):
    r = a - y
    return xp.where((r > 1) & (r < 3), 25 * (1 - xp.tanh(10 * r) ** 2), 0.0)


RIGHT_SATURATED_CLIP = Loss("saturated_clip", _saturated_clip, _saturated_clip_gradient)
"""Σ 2.5·tanh(10·clip(r, 1, 3)): a gradient of 25·(1 − tanh² 10r), at most 2e-7 and made of terms
of size 25, so that both the hand value (0 for r ≳ 1.9) and autodiff (XLA's tanh a few ulps from
1) lose every digit of it; the formula on long doubles agrees with the Richardson difference."""


# Wrong beyond any tolerance: the gradient off by a factor no rounding comes near, or not a
# number at all, where the right one (tanh(a − y)) is of order 1. Each must be WRONG with a
# counterexample, with no warning of the checker's own and every reported figure finite.

WRONG_TIMES_1E300 = Loss("logcosh_times_1e300", _logcosh, lambda a, y, xp: xp.tanh(a - y) * 1e300)
"""log cosh(a − y) with its gradient 1e300 times too large."""

WRONG_TIMES_1E_300 = Loss("logcosh_times_1e-300", _logcosh, lambda a, y, xp: xp.tanh(a - y) * 1e-300)
"""log cosh(a − y) with its gradient 1e300 times too small (subnormal)."""

WRONG_PLUS_INF = Loss("logcosh_plus_inf", _logcosh, lambda a, y, xp: xp.tanh(a - y) + math.inf)
"""log cosh(a − y) with the gradient +∞ everywhere."""

WRONG_MINUS_INF = Loss("logcosh_minus_inf", _logcosh, lambda a, y, xp: xp.tanh(a - y) - math.inf)
"""log cosh(a − y) with the gradient −∞ everywhere."""

WRONG_NAN_EVERYWHERE = Loss("logcosh_nan", _logcosh, lambda a, y, xp: xp.tanh(a - y) * math.nan)
"""log cosh(a − y) with the gradient NaN everywhere (``WRONG_NAN_AT_ZERO`` is NaN at a = y only)."""

FAR_OFF = [WRONG_TIMES_1E300, WRONG_TIMES_1E_300, WRONG_PLUS_INF, WRONG_MINUS_INF, WRONG_NAN_EVERYWHERE]
"""Wrong beyond any tolerance; kept out of ``WRONG`` (their own test runs them under warnings as errors)."""


RIGHT = [
    RIGHT_LOGCOSH,
    RIGHT_MSE_TINY,
    RIGHT_MSE_HUGE,
    RIGHT_COSH,
    RIGHT_CANCELLING,
    RIGHT_EXP_CANCELLING,
    RIGHT_MAE_SIGN_ZERO,
    RIGHT_SATURATING,
    RIGHT_SATURATED_CLIP,
]
"""Every right loss of the bank: verified."""

WRONG = [
    WRONG_LOGCOSH,
    WRONG_MSE_TWICE_AVERAGED,
    WRONG_MSE_TINY,
    WRONG_MSE_HUGE,
    WRONG_COSH,
    WRONG_CANCELLING,
    WRONG_EXP_CANCELLING,
    WRONG_NAN_AT_ZERO,
    WRONG_MAE_AT_KINK,
    WRONG_SATURATING,
]
"""Every wrong loss of the bank: wrong, with a counterexample."""

INCONCLUSIVE = [INCONCLUSIVE_LOG]
"""Losses that cannot be judged on most points: inconclusive."""
