"""A bank of user-style activations, right and wrong, for ``backprop-check activation``.

Each entry says in one line what it models. The right ones include kinks written with
``where``, ``clip``, ``abs`` and ``maximum``, and derivatives that are near zero where relative
error means nothing; the wrong ones cover every class the checker must catch. Any entry can be
checked from the command line, for example::

    backprop-check activation property_tests.banks.activation_bank:WRONG_NEGATIVE_ONLY
"""

from __future__ import annotations

import math

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

RIGHT_GAUSSIAN = Activation("gaussian", lambda z, xp: xp.exp(-z * z), lambda z, xp: -2 * z * xp.exp(-z * z))
"""e^{−z²}: g′ is nearly zero almost everywhere, where a relative error means nothing."""

RIGHT_WHERE_KINK = Activation(
    "bent", lambda z, xp: xp.where(z > 1, 2 * z - 1, z), lambda z, xp: xp.where(z > 1, 2.0, 1.0) + 0 * z
)
"""A kink written with where at z = 1 (slopes 1 and 2); g′(1) = 1, the left slope."""

RIGHT_WHERE_KINK_OTHER_SIDE = Activation(
    "bent_right", lambda z, xp: xp.where(z > 1, 2 * z - 1, z), lambda z, xp: xp.where(z >= 1, 2.0, 1.0) + 0 * z
)
"""The same kink with g′(1) = 2, the right slope: a different choice, equally valid."""

RIGHT_CLIP = Activation(
    "clipped", lambda z, xp: xp.clip(z, -2.0, 3.0), lambda z, xp: xp.where((z > -2) & (z < 3), 1.0, 0.0) + 0 * z
)
"""clip(z, −2, 3): kinks at both bounds, where jax.grad of clip gives ½."""

RIGHT_ABS = Activation("abs", lambda z, xp: xp.abs(z), lambda z, xp: xp.sign(z))
"""|z| with g′ = sign z, so g′(0) = 0, between the one-sided slopes −1 and 1."""

RIGHT_MAXIMUM = Activation(
    "leaky_max", lambda z, xp: xp.maximum(z, 0.2 * z), lambda z, xp: xp.where(z > 0, 1.0, 0.2) + 0 * z
)
"""max(z, 0.2z): jax.grad splits the tie at 0 (0.6); the hand g′(0) = 0.2 is the left slope."""

RIGHT_RELU_OTHER_CONVENTION = Activation(
    "relu_right", lambda z, xp: xp.maximum(z, 0), lambda z, xp: xp.where(z >= 0, 1.0, 0.0) + 0 * z
)
"""ReLU with g′(0) = 1 instead of JAX's 0: a valid choice at the kink."""


# Right, and numerically hostile: each one of the classes of false alarm the checker must not raise.


def _naive_sigmoid(z, xp):
    return 1 / (1 + xp.exp(-z))


def _naive_sigmoid_prime(z, xp):
    s = 1 / (1 + xp.exp(-z))
    return s * (1 - s)


RIGHT_NAIVE_SIGMOID = Activation("naive_sigmoid", _naive_sigmoid, _naive_sigmoid_prime)
"""σ written as 1/(1 + e⁻ᶻ) with g′ = s(1 − s): autodiff is ∞/∞ = NaN once e⁻ᶻ overflows (z ≲ −710),
a non-finite value that must not poison any scale (class 1)."""

RIGHT_OVERFLOWING = Activation("exp_half", lambda z, xp: xp.exp(z / 2), lambda z, xp: xp.exp(z / 2) / 2)
"""e^{z/2}: the forward overflows for z ≳ 1420 in float64 and z ≳ 177 in float32, and in networks
its values reach 1e100 and beyond unless held (classes 1 and 2)."""

RIGHT_CUBIC = Activation("cubic", lambda z, xp: z**3 + z, lambda z, xp: 3 * z**2 + 1)
"""z³ + z: grows fast, so random networks with it in every layer reach 1e45 … 1e95 (class 2)."""


def _sinc(z, xp):
    safe = xp.where(z == 0, 1.0, z)
    return xp.where(z == 0, 1.0, xp.sin(safe) / safe)


def _sinc_prime(z, xp):
    safe = xp.where(z == 0, 1.0, z)
    return xp.where(z == 0, 0.0, (safe * xp.cos(safe) - xp.sin(safe)) / safe**2)


RIGHT_QUOTIENT_RULE = Activation("sinc", _sinc, _sinc_prime)
"""sin z / z (1 at 0, by where) with the quotient rule's (z·cos z − sin z)/z²: both this and
autodiff cancel near 0 and lose up to every digit there; right, and in float32 right but unable
to be more precise than float32 (classes 3 and 4)."""

RIGHT_CANCELLING = Activation("expm1_naive", lambda z, xp: (xp.exp(z) - 1 - z) / 2, lambda z, xp: (xp.exp(z) - 1) / 2)
"""(eᶻ − 1 − z)/2 with g′ = (eᶻ − 1)/2, written without expm1: cancels near 0 (class 3)."""


def _removable(z, xp):
    safe = xp.where(z == 0, 1.0, z)
    return xp.where(z == 0, 0.5, (xp.exp(safe) - 1 - safe) / safe**2)


def _removable_prime(z, xp):
    # ((eᶻ − 1 − z)/z²)′ = (zeᶻ − 2eᶻ + 2 + z)/z³, whose limit at 0 is 1/6
    safe = xp.where(z == 0, 1.0, z)
    return xp.where(z == 0, 1 / 6, (safe * xp.exp(safe) - 2 * xp.exp(safe) + 2 + safe) / safe**3)


RIGHT_REMOVABLE_SINGULARITY = Activation("exp_removable", _removable, _removable_prime)
"""(eᶻ − 1 − z)/z², ½ at 0 by ``where``: right, but both g and g′ cancel near 0 (g′ loses every
digit below |z| ≈ 1e-5 in float64). Inside a network the forward's own cancellation, which the
running error bound does not carry, puts the equations past their bound: the network stage must
see that this is rounding (``activation_check.rounding_explains``), not call it wrong."""

_C = 2**0.5


def _near_kink(z, xp):
    d = z - _C
    safe = xp.where(z == _C, 1.0, d)
    bump = xp.where(z == _C, 0.5, (xp.sqrt(safe * safe + 1) - 1) / (safe * safe))
    return bump + xp.abs(xp.clip(z, -_C / 2, _C))


def _near_kink_prime(z, xp):
    # ((√(d² + 1) − 1)/d²)′ = 1/(d√(d² + 1)) − 2(√(d² + 1) − 1)/d³, 0 in the limit d → 0; and
    # |clip(z)|′ = sign(z) inside the clip's range, as jnp.clip and jnp.abs give it.
    d = z - _C
    safe = xp.where(z == _C, 1.0, d)
    root = xp.sqrt(safe * safe + 1)
    bump = xp.where(z == _C, 0.0, 1 / (safe * root) - 2 * (root - 1) / safe**3)
    inside = xp.where((z >= -_C / 2) & (z <= _C), 1.0, 0.0)
    return bump + inside * xp.sign(xp.clip(z, -_C / 2, _C))


RIGHT_KINK_NEAR_SINGULARITY = Activation("bump_near_clip", _near_kink, _near_kink_prime)
"""A removable singularity at √2 (the quotient rule cancels to garbage around it, in float32
above all) beside the kink of a clip at the same √2: a finite difference that reaches the kink
marks one, though the points judged lie a little way from it. Right; found by the fuzzer."""

RIGHT_NEAR_THE_LARGEST_FLOAT = Activation(
    "exp_square_sin",
    lambda z, xp: xp.exp(z * z / 2) * xp.sin(z),
    lambda z, xp: xp.exp(z * z / 2) * (z * xp.sin(z) + xp.cos(z)),
)
"""e^{z²/2} sin z: around |z| ≈ 37.6 in float64 g′ is finite but within a factor 40 of the
largest float, where its bound 8(1 + |z|)·f overflows; such points are skipped, never judged
with an infinite tolerance. Found by the fuzzer."""


def _at_a_kink(z, xp):
    w = z - 1
    safe = xp.where(w == 0, 1.0, w)
    return xp.where(w == 0, 1.0, (xp.exp(safe) - 1) / safe) + xp.where(w > 0, w, 0.0)


def _at_a_kink_prime(z, xp):
    # ((eʷ − 1)/w)′ = (weʷ − eʷ + 1)/w², ½ in the limit; the hinge adds 1 for w > 0.
    w = z - 1
    safe = xp.where(w == 0, 1.0, w)
    bump = xp.where(w == 0, 0.5, (safe * xp.exp(safe) - xp.exp(safe) + 1) / safe**2)
    return bump + xp.where(w > 0, 1.0, 0.0)


RIGHT_REMOVABLE_AT_A_KINK = Activation("removable_at_hinge", _at_a_kink, _at_a_kink_prime, kinks=(1.0,))
"""(eʷ − 1)/w with w = z − 1 (1 at w = 0) plus a hinge at the same point: a few ulps from 1
both g′ by hand and autodiff are the quotient rule's debris, and every finite difference
reaches the kink. Right; the second look reads the one-sided slopes there. Found by the fuzzer."""

RIGHT_TRIPLE_EXPONENTIAL = Activation(
    "triple_exp",
    lambda z, xp: xp.exp(xp.exp(xp.exp(z))),
    lambda z, xp: xp.exp(z) * xp.exp(xp.exp(z)) * xp.exp(xp.exp(xp.exp(z))),
)
"""e^{e^{eᶻ}}: finite up to z ≈ 1.88, but its slope scale one unit past a network's z overflows
while the network's values do not, so the network's error bounds would be infinite: such a
network is skipped and counted, never judged with an infinite tolerance (it was an internal
error, exit 4). Right; found by the fuzzer."""


def _double_exponential_quotient(z, xp):
    return 2e3 * xp.exp(xp.exp(3 * z + 1)) / (xp.tanh(xp.sin(3 * z - math.e)) + 2)


def _double_exponential_quotient_prime(z, xp):
    grow, wave = xp.exp(xp.exp(3 * z + 1)), xp.tanh(xp.sin(3 * z - math.e))
    d_grow = 3 * xp.exp(3 * z + 1) * grow
    d_wave = 3 * (1 - wave * wave) * xp.cos(3 * z - math.e)
    return 2e3 * (d_grow * (wave + 2) - grow * d_wave) / (wave + 2) ** 2


RIGHT_DOUBLE_EXPONENTIAL_QUOTIENT = Activation(
    "double_exp_quotient", _double_exponential_quotient, _double_exponential_quotient_prime
)
"""2000·e^{e^{3z+1}}/(tanh(sin(3z − e)) + 2): finite below z ≈ 1.85 only, and its slope scale
near the largest float for z above about 0.85, so most random networks' error bounds
overflow though their values do not: they are tried again with weights 8× smaller until the
bounds fit, instead of being skipped (which left too few networks, INCONCLUSIVE, for a
function finite on most of [−10, 10]). Right; found by the fuzzer."""

HOSTILE_RIGHT = [
    RIGHT_NAIVE_SIGMOID,
    RIGHT_OVERFLOWING,
    RIGHT_CUBIC,
    RIGHT_QUOTIENT_RULE,
    RIGHT_CANCELLING,
    RIGHT_REMOVABLE_SINGULARITY,
    RIGHT_KINK_NEAR_SINGULARITY,
    RIGHT_NEAR_THE_LARGEST_FLOAT,
    RIGHT_REMOVABLE_AT_A_KINK,
    RIGHT_TRIPLE_EXPONENTIAL,
    RIGHT_DOUBLE_EXPONENTIAL_QUOTIENT,
]
"""Right activations that are hard on the numbers; each must be verified in float64 and float32."""

RIGHT = [
    RIGHT_SMOOTH,
    RIGHT_GAUSSIAN,
    RIGHT_WHERE_KINK,
    RIGHT_WHERE_KINK_OTHER_SIDE,
    RIGHT_CLIP,
    RIGHT_ABS,
    RIGHT_MAXIMUM,
    RIGHT_RELU_OTHER_CONVENTION,
    *HOSTILE_RIGHT,
]

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
    "ztanh_wrong_large",
    _ztanh,
    lambda z, xp: xp.where(xp.abs(z) > 5, _ztanh_prime(z, xp) * (1 + 1e-6), _ztanh_prime(z, xp)),
)
"""Wrong only for |z| > 5 (by a relative 1e-6), where tanh is saturated."""

WRONG_NEGATIVE_ONLY = Activation(
    "softplus_wrong_negative",
    lambda z, xp: xp.logaddexp(z, 0),
    lambda z, xp: xp.where(z < 0, 0.5 * xp.exp(z), 1 / (1 + xp.exp(-xp.abs(z)))),
)
"""softplus with g′ = ½eᶻ for z < 0 (an approximation passed off as the derivative)."""

WRONG_MISSING_CHAIN_FACTOR = Activation("tanh2z", lambda z, xp: xp.tanh(2 * z), lambda z, xp: 1 - xp.tanh(2 * z) ** 2)
"""tanh(2z) with the inner derivative 2 forgotten."""

WRONG_NAN_AT_ZERO = Activation("sinc_like", lambda z, xp: xp.sin(z), lambda z, xp: xp.sin(z) / z * (z / xp.tan(z)))
"""sin z, with g′ = cos z written as (sin z / z)(z / tan z): NaN at z = 0 where g is finite."""

WRONG_ON_ARRAYS = Activation(
    "ztanh_row_max",
    _ztanh,
    lambda z, xp: _ztanh_prime(z, xp) * xp.max(xp.abs(z), axis=-1, keepdims=True) / xp.max(xp.abs(z)),
)
"""Right on a 1-D array, wrong on a batch: normalised by each row's maximum instead of the
whole array's (a reduction over the wrong axis)."""

WRONG_NAIVE_SIGMOID = Activation(
    "naive_sigmoid_1e-6", _naive_sigmoid, lambda z, xp: _naive_sigmoid_prime(z, xp) * (1 + 1e-6)
)
"""The naive sigmoid's derivative off by a relative 1e-6: its NaN far points must not hide it."""

WRONG_CUBIC = Activation("cubic_1e-6", RIGHT_CUBIC.forward, lambda z, xp: (3 * z**2 + 1) * (1 + 1e-6))
"""z³ + z with g′ off by a relative 1e-6: huge network values must not hide it."""

WRONG_QUOTIENT_RULE = Activation(
    "sinc_sign",
    _sinc,
    lambda z, xp: xp.where(
        z == 0, 0.0, (xp.where(z == 0, 1.0, z) * xp.cos(z) + xp.sin(z)) / xp.where(z == 0, 1.0, z) ** 2
    ),
)
"""sin z / z with the quotient rule's sign flipped (z·cos z + sin z)/z²: wrong, not imprecise."""

WRONG_CANCELLING_LARGE = Activation(
    "expm1_naive_wrong_large",
    RIGHT_CANCELLING.forward,
    lambda z, xp: xp.where(xp.abs(z) > 5, (xp.exp(z) - 1) / 2 * (1 + 1e-6), (xp.exp(z) - 1) / 2),
)
"""(eᶻ − 1 − z)/2 with g′ off by a relative 1e-6 only for |z| > 5."""

HOSTILE_WRONG = [WRONG_NAIVE_SIGMOID, WRONG_CUBIC, WRONG_QUOTIENT_RULE, WRONG_CANCELLING_LARGE]
"""Wrong activations that are hard on the numbers; each must stay wrong in float64."""

# Wrong beyond any tolerance: g′ off by a factor no rounding comes near, or not a number at all,
# where the right g′ is of order 1. Each must be WRONG with a counterexample, with no warning of
# the checker's own (an error that dwarfs its bound ranks as ∞) and every reported figure finite.

WRONG_TIMES_1E300 = Activation("ztanh_times_1e300", _ztanh, lambda z, xp: _ztanh_prime(z, xp) * 1e300)
"""g′ 1e300 times too large: finite in float64, ∞ in float32 and wherever a network multiplies it."""

WRONG_TIMES_1E_300 = Activation("ztanh_times_1e-300", _ztanh, lambda z, xp: _ztanh_prime(z, xp) * 1e-300)
"""g′ 1e300 times too small: subnormal in float64, 0 in float32."""

WRONG_PLUS_INF = Activation("ztanh_plus_inf", _ztanh, lambda z, xp: _ztanh_prime(z, xp) + math.inf)
"""g′ = +∞ everywhere."""

WRONG_MINUS_INF = Activation("ztanh_minus_inf", _ztanh, lambda z, xp: _ztanh_prime(z, xp) - math.inf)
"""g′ = −∞ everywhere."""

WRONG_NAN_EVERYWHERE = Activation("ztanh_nan", _ztanh, lambda z, xp: _ztanh_prime(z, xp) * math.nan)
"""g′ = NaN everywhere (``WRONG_NAN_AT_ZERO`` is NaN at one point only)."""

FAR_OFF = [WRONG_TIMES_1E300, WRONG_TIMES_1E_300, WRONG_PLUS_INF, WRONG_MINUS_INF, WRONG_NAN_EVERYWHERE]
"""Wrong beyond any tolerance; kept out of ``WRONG`` (their own test runs them under warnings as errors)."""

WRONG = [
    WRONG_RELATIVE_1E6,
    WRONG_INTERVAL_NEGATIVE,
    WRONG_INTERVAL_MIDDLE,
    WRONG_INTERVAL_EDGE,
    WRONG_LARGE_ONLY,
    WRONG_NEGATIVE_ONLY,
    WRONG_MISSING_CHAIN_FACTOR,
    WRONG_NAN_AT_ZERO,
    WRONG_ON_ARRAYS,
    *HOSTILE_WRONG,
]

# --- too little to judge ------------------------------------------------------------------

INCONCLUSIVE_MOSTLY_NAN = Activation("log_shifted", lambda z, xp: xp.log(z - 8), lambda z, xp: 1 / (z - 8))
"""log(z − 8): NaN on most of [−10, 10], so too few points can be checked there (exit 3)."""

# --- unusable -----------------------------------------------------------------------------

UNUSABLE_RAISES = Activation("raises", _ztanh, lambda z, xp: xp.tanh(z) + z.no_such_attribute)
"""The derivative raises AttributeError."""

UNUSABLE_SHAPE = Activation("scalar", _ztanh, lambda z, xp: xp.sum(_ztanh_prime(z, xp)))
"""The derivative returns one number instead of one per element."""

NOT_AN_ACTIVATION = (_ztanh, _ztanh_prime)
"""A tuple, not an Activation."""
