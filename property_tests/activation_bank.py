"""A bank of user-style activations, right and wrong, for ``backprop-check activation``.

Each entry says in one line what it models. The right ones include kinks written with
``where``, ``clip``, ``abs`` and ``maximum``, and derivatives that are near zero where relative
error means nothing; the wrong ones cover every class the checker must catch. Any entry can be
checked from the command line, for example::

    backprop-check activation property_tests.activation_bank:WRONG_NEGATIVE_ONLY
"""

from __future__ import annotations

from manual import Activation


def _ztanh(z, xp):
    return z * xp.tanh(z)


def _ztanh_prime(z, xp):
    t = xp.tanh(z)
    return t + z * (1 - t * t)


def _inside(z, xp, low, high):
    return (z > low) & (z < high)


# --- right --------------------------------------------------------------------------------

RIGHT_SMOOTH = Activation("ztanh", _ztanh, _ztanh_prime)
"""z·tanh z with g′ = tanh z + z(1 − tanh²z): smooth, the subtraction form of sech²."""

RIGHT_GAUSSIAN = Activation("gaussian", lambda z, xp: xp.exp(-z * z),
                            lambda z, xp: -2 * z * xp.exp(-z * z))
"""e^{−z²}: g′ is nearly zero almost everywhere, where a relative error means nothing."""

RIGHT_WHERE_KINK = Activation(
    "bent", lambda z, xp: xp.where(z > 1, 2 * z - 1, z),
    lambda z, xp: xp.where(z > 1, 2.0, 1.0) + 0 * z)
"""A kink written with where at z = 1 (slopes 1 and 2); g′(1) = 1, the left slope."""

RIGHT_WHERE_KINK_OTHER_SIDE = Activation(
    "bent_right", lambda z, xp: xp.where(z > 1, 2 * z - 1, z),
    lambda z, xp: xp.where(z >= 1, 2.0, 1.0) + 0 * z)
"""The same kink with g′(1) = 2, the right slope: a different choice, equally valid."""

RIGHT_CLIP = Activation("clipped", lambda z, xp: xp.clip(z, -2.0, 3.0),
                        lambda z, xp: xp.where((z > -2) & (z < 3), 1.0, 0.0) + 0 * z)
"""clip(z, −2, 3): kinks at both bounds, where jax.grad of clip gives ½."""

RIGHT_ABS = Activation("abs", lambda z, xp: xp.abs(z), lambda z, xp: xp.sign(z))
"""|z| with g′ = sign z, so g′(0) = 0, between the one-sided slopes −1 and 1."""

RIGHT_MAXIMUM = Activation("leaky_max", lambda z, xp: xp.maximum(z, 0.2 * z),
                           lambda z, xp: xp.where(z > 0, 1.0, 0.2) + 0 * z)
"""max(z, 0.2z): jax.grad splits the tie at 0 (0.6); the hand g′(0) = 0.2 is the left slope."""

RIGHT_RELU_OTHER_CONVENTION = Activation("relu_right", lambda z, xp: xp.maximum(z, 0),
                                         lambda z, xp: xp.where(z >= 0, 1.0, 0.0) + 0 * z)
"""ReLU with g′(0) = 1 instead of JAX's 0: a valid choice at the kink."""

RIGHT = [RIGHT_SMOOTH, RIGHT_GAUSSIAN, RIGHT_WHERE_KINK, RIGHT_WHERE_KINK_OTHER_SIDE, RIGHT_CLIP,
         RIGHT_ABS, RIGHT_MAXIMUM, RIGHT_RELU_OTHER_CONVENTION]

# --- wrong --------------------------------------------------------------------------------

WRONG_RELATIVE_1E6 = Activation("ztanh_1e-6", _ztanh, lambda z, xp: _ztanh_prime(z, xp) * (1 + 1e-6))
"""Off by a relative 1e-6 everywhere."""


def _wrong_on(low, high):
    def derivative(z, xp):
        return xp.where(_inside(z, xp, low, high), _ztanh_prime(z, xp) * 1.01, _ztanh_prime(z, xp))
    return Activation(f"ztanh_wrong_on_{low}_{high}", _ztanh, derivative)


WRONG_INTERVAL_NEGATIVE = _wrong_on(-9.7, -9.2)
"""Wrong (1%) only on (−9.7, −9.2), an interval of width 0.5 near the edge of |z| ≤ 10."""

WRONG_INTERVAL_MIDDLE = _wrong_on(2.13, 2.63)
"""Wrong only on (2.13, 2.63)."""

WRONG_INTERVAL_EDGE = _wrong_on(9.45, 9.95)
"""Wrong only on (9.45, 9.95)."""

WRONG_LARGE_ONLY = Activation(
    "ztanh_wrong_large", _ztanh,
    lambda z, xp: xp.where(xp.abs(z) > 5, _ztanh_prime(z, xp) * (1 + 1e-6), _ztanh_prime(z, xp)))
"""Wrong only for |z| > 5 (by a relative 1e-6), where tanh is saturated."""

WRONG_NEGATIVE_ONLY = Activation(
    "softplus_wrong_negative", lambda z, xp: xp.logaddexp(z, 0),
    lambda z, xp: xp.where(z < 0, 0.5 * xp.exp(z), 1 / (1 + xp.exp(-xp.abs(z)))))
"""softplus with g′ = ½eᶻ for z < 0 (an approximation passed off as the derivative)."""

WRONG_MISSING_CHAIN_FACTOR = Activation("tanh2z", lambda z, xp: xp.tanh(2 * z),
                                        lambda z, xp: 1 - xp.tanh(2 * z) ** 2)
"""tanh(2z) with the inner derivative 2 forgotten."""

WRONG_NAN_AT_ZERO = Activation("sinc_like", lambda z, xp: xp.sin(z),
                               lambda z, xp: xp.sin(z) / z * (z / xp.tan(z)))
"""sin z, with g′ = cos z written as (sin z / z)(z / tan z): NaN at z = 0 where g is finite."""

WRONG_ON_ARRAYS = Activation(
    "ztanh_row_max", _ztanh,
    lambda z, xp: _ztanh_prime(z, xp) * xp.max(xp.abs(z), axis=-1, keepdims=True) / xp.max(xp.abs(z)))
"""Right on a 1-D array, wrong on a batch: normalised by each row's maximum instead of the
whole array's (a reduction over the wrong axis)."""

WRONG = [WRONG_RELATIVE_1E6, WRONG_INTERVAL_NEGATIVE, WRONG_INTERVAL_MIDDLE, WRONG_INTERVAL_EDGE,
         WRONG_LARGE_ONLY, WRONG_NEGATIVE_ONLY, WRONG_MISSING_CHAIN_FACTOR, WRONG_NAN_AT_ZERO,
         WRONG_ON_ARRAYS]

# --- unusable -----------------------------------------------------------------------------

UNUSABLE_RAISES = Activation("raises", _ztanh, lambda z, xp: xp.tanh(z) + z.no_such_attribute)
"""The derivative raises AttributeError."""

UNUSABLE_SHAPE = Activation("scalar", _ztanh, lambda z, xp: xp.sum(_ztanh_prime(z, xp)))
"""The derivative returns one number instead of one per element."""

NOT_AN_ACTIVATION = (_ztanh, _ztanh_prime)
"""A tuple, not an Activation."""
