"""User-written activations of the newer kinds, right and wrong: what ``backprop-check
activation`` must verify and what it must call wrong. Each is written as a researcher would,
outside the catalogue (``mixes`` left unsaid for the maps)."""

from __future__ import annotations

import math

from manual import Parameter, ParametricActivation, VectorActivation, special


def _a(p, z, xp):
    return xp.asarray(p["a"], dtype=z.dtype)


RIGHT_PRELU = ParametricActivation(
    "my_prelu",
    lambda z, p, xp: xp.where(z > 0, z, _a(p, z, xp) * z),
    lambda z, p, xp: xp.where(z > 0, 1.0, _a(p, z, xp) + 0 * z).astype(z.dtype),
    lambda z, p, xp: {"a": xp.where(z > 0, 0.0, z).astype(z.dtype)},
    (Parameter("a", 0.25, 0.0, 1.0),),
)
"""PReLU with the other convention at 0 (z > 0 tests the positive side): ∂g/∂z(0) = a, as
``jax.grad`` of this forward gives."""


def _beta(p, z, xp):
    return xp.asarray(p["beta"], dtype=z.dtype)


def _naive_swish(z, p, xp):
    return z / (1 + xp.exp(-_beta(p, z, xp) * z))


def _naive_swish_dz(z, p, xp):
    b = _beta(p, z, xp)
    s = 1 / (1 + xp.exp(-b * z))
    return s + b * z * s * (1 - s)


def _naive_swish_dp(z, p, xp):
    b = _beta(p, z, xp)
    s = 1 / (1 + xp.exp(-b * z))
    return {"beta": z * z * s * (1 - s)}


RIGHT_NAIVE_SWISH = ParametricActivation(
    "naive_swish_beta", _naive_swish, _naive_swish_dz, _naive_swish_dp, (Parameter("beta", 1.0, 0.1, 3.0),)
)
"""x·σ(βx) written naively: 1/(1 + e^{−βz}) overflows for large negative βz and σ(1 − σ)
cancels for large positive; right, and hard on the numbers."""


def _first_half_gate(z, xp):
    m = z.shape[-1] // 2
    return special(xp).expit(z[..., :m]) * z[..., m:]


def _first_half_gate_vjp(z, v, xp):
    m = z.shape[-1] // 2
    s = special(xp).expit(z[..., :m])
    return xp.concatenate([v * z[..., m:] * s * special(xp).expit(-z[..., :m]), v * s], axis=-1)


RIGHT_FIRST_HALF_GLU = VectorActivation("glu_first_half", _first_half_gate, _first_half_gate_vjp, group=2, shrink=2)
"""A GLU gated by the first half, σ(u) ⊙ s (as some libraries write it), with its own Jᵀv."""


def _softmax_t(z, xp):
    e = xp.exp((z - xp.max(z, axis=-1, keepdims=True)) / 2)
    return e / xp.sum(e, axis=-1, keepdims=True)


RIGHT_SOFTMAX_T2 = VectorActivation(
    "softmax_t2",
    _softmax_t,
    lambda z, v, xp: _softmax_t(z, xp) * (v - xp.sum(_softmax_t(z, xp) * v, axis=-1, keepdims=True)) / 2,
)
"""softmax(z/2), temperature 2: Jᵀv = a ⊙ (v − a·v)/2."""


WRONG_PRELU_INDICATOR = ParametricActivation(
    "prelu_forgot_indicator",
    RIGHT_PRELU.forward,
    RIGHT_PRELU.derivative,
    lambda z, p, xp: {"a": z},
    (Parameter("a", 0.25, 0.0, 1.0),),
)
"""∂g/∂a = z everywhere: the indicator [z ≤ 0] forgotten."""

WRONG_SWISH_1E6 = ParametricActivation(
    "naive_swish_beta_1e-6",
    _naive_swish,
    _naive_swish_dz,
    lambda z, p, xp: {"beta": _naive_swish_dp(z, p, xp)["beta"] * (1 + 1e-6)},
    (Parameter("beta", 1.0, 0.1, 3.0),),
)
"""∂g/∂β off by a relative 1e-6 everywhere."""


def _alpha(p, z, xp):
    return xp.asarray(p["alpha"], dtype=z.dtype)


WRONG_SNAKE = ParametricActivation(
    "snake_missing_term",
    lambda z, p, xp: z + xp.sin(_alpha(p, z, xp) * z) ** 2 / _alpha(p, z, xp),
    lambda z, p, xp: 1 + xp.sin(2 * _alpha(p, z, xp) * z),
    lambda z, p, xp: {"alpha": z * xp.sin(2 * _alpha(p, z, xp) * z) / _alpha(p, z, xp)},
    (Parameter("alpha", 1.0, 0.2, 5.0),),
)
"""snake's ∂g/∂α without the −sin²(αz)/α² term of the quotient rule."""

WRONG_GLU_SWAPPED = VectorActivation(
    "glu_first_half_swapped",
    _first_half_gate,
    lambda z, v, xp: xp.concatenate(
        [
            _first_half_gate_vjp(z, v, xp)[..., z.shape[-1] // 2 :],
            _first_half_gate_vjp(z, v, xp)[..., : z.shape[-1] // 2],
        ],
        axis=-1,
    ),
    group=2,
    shrink=2,
)
"""The first-half GLU with the halves of Jᵀv swapped."""


def _maxout2(z, xp):
    return xp.max(xp.reshape(z, z.shape[:-1] + (z.shape[-1] // 2, 2)), axis=-1)


def _maxout2_first(z, v, xp):
    pairs = xp.reshape(z, z.shape[:-1] + (z.shape[-1] // 2, 2))
    first = (pairs[..., 0] >= pairs[..., 1]).astype(z.dtype)
    return xp.reshape(xp.stack([v * first, v * (1 - first)], axis=-1), z.shape)


RIGHT_MAXOUT_FIRST_AT_TIES = VectorActivation("maxout_first_at_ties", _maxout2, _maxout2_first, group=2, shrink=2)
"""Maxout of pairs whose Jᵀv sends the whole gradient to the first of two tied maxima, where
``jax.grad`` splits it equally: a tie is a kink, and taking one side's slope there is a valid
convention for a user's own map (torch's max takes one), reported as a kink, never WRONG. (The
catalogue's maxout matches jax.grad's split, which the properties and the mutant bank hold it to.)"""


def _maxout2_sum(z, v, xp):
    pairs = xp.reshape(z, z.shape[:-1] + (z.shape[-1] // 2, 2))
    top = (pairs == xp.max(pairs, axis=-1, keepdims=True)).astype(z.dtype)
    return xp.reshape(top * v[..., None], z.shape)


WRONG_MAXOUT_EVERY_TIE = VectorActivation("maxout_every_tie", _maxout2, _maxout2_sum, group=2, shrink=2)
"""Maxout of pairs whose Jᵀv gives the whole gradient to EVERY tied maximum: at a tie the total
passed back is twice v, which no one-sided slope gives."""


# Wrong beyond any tolerance: a partial, or Jᵀv, off by a factor no rounding comes near, or not a
# number at all, where the right one is of order 1. Each must be WRONG with a counterexample, with
# no warning of the checker's own and every reported figure finite.


def _swish_beta_times(label: str, factor: float) -> ParametricActivation:
    """The naive swish with ∂g/∂β times ``factor`` (∂g/∂z right)."""
    return ParametricActivation(
        f"naive_swish_beta_times_{label}",
        _naive_swish,
        _naive_swish_dz,
        lambda z, p, xp: {"beta": _naive_swish_dp(z, p, xp)["beta"] * factor},
        (Parameter("beta", 1.0, 0.1, 3.0),),
    )


def _softmax_t2_times(label: str, factor: float) -> VectorActivation:
    """softmax(z/2) with Jᵀv times ``factor``."""
    return VectorActivation(
        f"softmax_t2_times_{label}", _softmax_t, lambda z, v, xp: RIGHT_SOFTMAX_T2.vjp(z, v, xp) * factor
    )


WRONG_SWISH_TIMES_1E300 = _swish_beta_times("1e300", 1e300)
"""∂g/∂β 1e300 times too large: finite in float64, ∞ in float32."""

WRONG_SWISH_TIMES_1E_300 = _swish_beta_times("1e-300", 1e-300)
"""∂g/∂β 1e300 times too small: subnormal in float64, 0 in float32."""

WRONG_PRELU_INF = ParametricActivation(
    "prelu_dz_inf",
    RIGHT_PRELU.forward,
    lambda z, p, xp: RIGHT_PRELU.derivative(z, p, xp) + math.inf,
    RIGHT_PRELU.parameter_derivatives,
    (Parameter("a", 0.25, 0.0, 1.0),),
)
"""PReLU with ∂g/∂z = +∞ everywhere."""

WRONG_PRELU_MINUS_INF = ParametricActivation(
    "prelu_da_minus_inf",
    RIGHT_PRELU.forward,
    RIGHT_PRELU.derivative,
    lambda z, p, xp: {"a": RIGHT_PRELU.parameter_derivatives(z, p, xp)["a"] - math.inf},
    (Parameter("a", 0.25, 0.0, 1.0),),
)
"""PReLU with ∂g/∂a = −∞ everywhere."""

WRONG_SWISH_NAN = _swish_beta_times("nan", math.nan)
"""∂g/∂β NaN everywhere."""

WRONG_SOFTMAX_TIMES_1E300 = _softmax_t2_times("1e300", 1e300)
"""Jᵀv 1e300 times too large (∞ in float32, NaN × 0 where a row of one unit makes Jᵀv 0)."""

WRONG_SOFTMAX_TIMES_1E_300 = _softmax_t2_times("1e-300", 1e-300)
"""Jᵀv 1e300 times too small."""

WRONG_SOFTMAX_INF = _softmax_t2_times("inf", math.inf)
"""Jᵀv times +∞: ±∞ everywhere, NaN where the right Jᵀv is 0 (rows of one unit)."""

WRONG_SOFTMAX_MINUS_INF = _softmax_t2_times("-inf", -math.inf)
"""Jᵀv times −∞."""

WRONG_SOFTMAX_NAN = _softmax_t2_times("nan", math.nan)
"""Jᵀv NaN everywhere."""

FAR_OFF = [
    WRONG_SWISH_TIMES_1E300,
    WRONG_SWISH_TIMES_1E_300,
    WRONG_PRELU_INF,
    WRONG_PRELU_MINUS_INF,
    WRONG_SWISH_NAN,
    WRONG_SOFTMAX_TIMES_1E300,
    WRONG_SOFTMAX_TIMES_1E_300,
    WRONG_SOFTMAX_INF,
    WRONG_SOFTMAX_MINUS_INF,
    WRONG_SOFTMAX_NAN,
]
"""Wrong beyond any tolerance; kept out of ``WRONG`` (their own test runs them under warnings as errors)."""

WRONG = [WRONG_PRELU_INDICATOR, WRONG_SWISH_1E6, WRONG_SNAKE, WRONG_GLU_SWAPPED, WRONG_MAXOUT_EVERY_TIE]

RIGHT = [RIGHT_PRELU, RIGHT_NAIVE_SWISH, RIGHT_FIRST_HALF_GLU, RIGHT_SOFTMAX_T2, RIGHT_MAXOUT_FIRST_AT_TIES]
