"""Activation functions g and their hand-derived derivatives g′, side by side.

Every entry is written against an array namespace ``xp`` (``numpy`` or ``jax.numpy``), so the
reference can differentiate the very same forward with ``jax.grad`` that the derivative here
claims to differentiate by hand. Adding an activation is adding one entry to ``CATALOGUE``.

Conventions at kinks (points where g′ jumps) follow what ``jax.grad`` returns for the
``jax.nn`` function of the same name; each entry states its convention.

Numerical notes that apply throughout:
- ``numpy.where`` evaluates both branches, so every branch is kept finite for |z| up to 1e3
  (exponentials only ever see non-positive arguments).
- 1 − σ(z) is written σ(−z) and sech²(u) as 4e^{−2|u|}/(1 + e^{−2|u|})²: the subtraction forms
  lose every digit once σ(z) or tanh(u) rounds to 1.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

Array = Any
"""A NumPy or JAX array; the functions here are written once for both."""

ArrayFunction = Callable[[Array, ModuleType], Array]


@dataclass(frozen=True)
class Activation:
    """An elementwise activation g with its hand-derived derivative g′.

    ``forward(z, xp)`` returns g(z) and ``derivative(z, xp)`` returns g′(z), both elementwise,
    written with the array namespace ``xp`` (``numpy`` or ``jax.numpy``) and keeping z's dtype.

    ``kinks`` lists the points where g′ jumps (g itself stays continuous). ``kink_convention``
    says which value ``derivative`` takes there. ``formula`` holds the maths in LaTeX.
    """

    name: str
    forward: ArrayFunction
    derivative: ArrayFunction
    formula: str = ""
    kinks: tuple[float, ...] = ()
    kink_convention: str = ""

    def __repr__(self) -> str:
        return f"Activation({self.name!r})"


def special(xp: ModuleType) -> ModuleType:
    """The special-function module that matches ``xp`` (``scipy.special`` for ``numpy``,
    ``jax.scipy.special`` for ``jax.numpy``). Importing it never brings in JAX by itself:
    a ``jax.numpy`` argument means the caller has imported JAX already."""
    name = xp.__name__
    return importlib.import_module(name[: -len("numpy")] + "scipy.special")


def _sech2(u: Array, xp: ModuleType) -> Array:
    """sech²(u) = 4e^{−2|u|} / (1 + e^{−2|u|})², free of the cancellation in 1 − tanh²(u)."""
    e = xp.exp(-2 * xp.abs(u))
    return 4 * e / (1 + e) ** 2


# --- the catalogue: g and g′ side by side -----------------------------------------------------


def identity(z, xp):
    return z


def identity_prime(z, xp):
    return xp.ones_like(z)


def sigmoid(z, xp):
    return special(xp).expit(z)


def sigmoid_prime(z, xp):
    # σ′ = σ(z)(1 − σ(z)) = σ(z)σ(−z): no cancellation when σ(z) rounds to 1.
    expit = special(xp).expit
    return expit(z) * expit(-z)


def tanh(z, xp):
    return xp.tanh(z)


def tanh_prime(z, xp):
    return _sech2(z, xp)


def relu(z, xp):
    if xp is np:
        # max(z, 0) with no branch per element: NumPy's where mispredicts one on every random
        # sign (2.0 ms against 0.14 ms for 512 × 1024 float32).
        return np.maximum(z, 0)
    # Under jax.grad, where gives g′(0) = 0, jax.nn.relu's convention. The values are those of
    # maximum for every number (a NaN aside, which maximum passes on, as jax.nn.relu does).
    return xp.where(z > 0, z, 0)


def relu_prime(z, xp):
    return (z > 0).astype(z.dtype)


LEAKY_SLOPE = 0.01


def leaky_relu(z, xp):
    return xp.where(z >= 0, z, LEAKY_SLOPE * z)


def leaky_relu_prime(z, xp):
    return xp.where(z >= 0, 1, LEAKY_SLOPE).astype(z.dtype)


def elu(z, xp):
    # The inner where keeps expm1 away from large positive z (overflow).
    return xp.where(z > 0, z, xp.expm1(xp.where(z > 0, 0, z)))


def elu_prime(z, xp):
    return xp.where(z > 0, 1, xp.exp(xp.minimum(z, 0)))


def celu(z, xp):
    return xp.maximum(z, 0) + xp.expm1(xp.minimum(z, 0))


def celu_prime(z, xp):
    return xp.where(z > 0, 1, xp.exp(xp.minimum(z, 0)))


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946


def selu(z, xp):
    return SELU_LAMBDA * xp.where(z > 0, z, SELU_ALPHA * xp.expm1(xp.where(z > 0, 0, z)))


def selu_prime(z, xp):
    return SELU_LAMBDA * xp.where(z > 0, 1, SELU_ALPHA * xp.exp(xp.minimum(z, 0)))


def softplus(z, xp):
    return xp.logaddexp(z, 0)


def softplus_prime(z, xp):
    return special(xp).expit(z)


def silu(z, xp):
    return z * special(xp).expit(z)


def silu_prime(z, xp):
    # (zσ(z))′ = σ(z) + zσ(z)(1 − σ(z)) = σ(z)(1 + zσ(−z))
    expit = special(xp).expit
    return expit(z) * (1 + z * expit(-z))


_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def gelu(z, xp):
    return 0.5 * z * special(xp).erfc(-z * _SQRT_HALF)


def gelu_prime(z, xp):
    # (zΦ(z))′ = Φ(z) + zφ(z), with Φ written through erfc (accurate in the left tail).
    return 0.5 * special(xp).erfc(-z * _SQRT_HALF) + z * _INV_SQRT_2PI * xp.exp(-0.5 * z * z)


_GELU_C = math.sqrt(2 / math.pi)
_GELU_B = 0.044715


def gelu_tanh(z, xp):
    return 0.5 * z * (1 + xp.tanh(_GELU_C * (z + _GELU_B * z**3)))


def gelu_tanh_prime(z, xp):
    # u = c(z + βz³);  g = ½z(1 + tanh u);  g′ = ½(1 + tanh u) + ½z sech²(u) c(1 + 3βz²)
    u = _GELU_C * (z + _GELU_B * z**3)
    return 0.5 * (1 + xp.tanh(u)) + 0.5 * z * _sech2(u, xp) * _GELU_C * (1 + 3 * _GELU_B * z * z)


def mish(z, xp):
    return z * xp.tanh(xp.logaddexp(z, 0))


def mish_prime(z, xp):
    # s = softplus(z), s′ = σ(z);  g′ = tanh(s) + z sech²(s) σ(z)
    s = xp.logaddexp(z, 0)
    return xp.tanh(s) + z * _sech2(s, xp) * special(xp).expit(z)


def soft_sign(z, xp):
    return z / (xp.abs(z) + 1)


def soft_sign_prime(z, xp):
    return 1 / (xp.abs(z) + 1) ** 2


def log_sigmoid(z, xp):
    return -xp.logaddexp(-z, 0)


def log_sigmoid_prime(z, xp):
    return special(xp).expit(-z)


def relu6(z, xp):
    return xp.where(z > 0, xp.where(z < 6, z, 6), 0)


def relu6_prime(z, xp):
    return ((z > 0) & (z < 6)).astype(z.dtype)


def hard_tanh(z, xp):
    return xp.where(z > 1, 1, xp.where(z < -1, -1, z))


def hard_tanh_prime(z, xp):
    return (xp.abs(z) <= 1).astype(z.dtype)


def hard_sigmoid(z, xp):
    return relu6(z + 3, xp) / 6


def hard_sigmoid_prime(z, xp):
    # Tested on s = z + 3, rounded as the forward rounds it, so the kink sits where g's does.
    s = z + 3
    return xp.where((s > 0) & (s < 6), 1 / 6, 0).astype(z.dtype)


def hard_silu(z, xp):
    return z * hard_sigmoid(z, xp)


def hard_silu_prime(z, xp):
    # (z·relu6(z + 3)/6)′ = (2z + 3)/6 on (−3, 3); 0 below, 1 above. Tested on s = z + 3, as
    # the forward computes it, so the kinks sit exactly where g's do after rounding.
    s = z + 3
    return xp.where(s <= 0, 0, xp.where(s >= 6, 1, (2 * z + 3) / 6)).astype(z.dtype)


SQUAREPLUS_B = 4


def squareplus(z, xp):
    # (z + s)/2 with s = √(z² + b); for z < 0 use the equal b/(2(s − z)) to avoid cancellation,
    # written b/(2(s + |z|)): the same numbers where it is taken, and never 0/0 or b/0 where it
    # is not (a large z ≥ 0 rounds s to z, and `where` evaluates both sides).
    s = xp.sqrt(z * z + SQUAREPLUS_B)
    return xp.where(z >= 0, (z + s) / 2, SQUAREPLUS_B / (2 * (s + xp.abs(z))))


def squareplus_prime(z, xp):
    # ½(1 + z/s) = (s + z)/(2s); for z < 0 this is b/(2s(s − z)), written with s + |z| as above.
    s = xp.sqrt(z * z + SQUAREPLUS_B)
    return xp.where(z >= 0, (1 + z / s) / 2, SQUAREPLUS_B / (2 * s * (s + xp.abs(z))))


def sparse_plus(z, xp):
    return xp.where(z <= -1, 0, xp.where(z >= 1, z, (z + 1) ** 2 / 4))


def sparse_plus_prime(z, xp):
    return xp.where(z <= -1, 0, xp.where(z >= 1, 1, (z + 1) / 2)).astype(z.dtype)


def sparse_sigmoid(z, xp):
    return 0.5 * xp.clip(z + 1, 0, 2)


def sparse_sigmoid_prime(z, xp):
    # ½ inside (−1, 1), 0 outside; at ±1 the mean ¼ of the one-sided slopes, as jnp.clip gives.
    # Tested on s = z + 1, rounded as the forward rounds it: for z = 1 − 2⁻⁵³, s rounds to 2,
    # the clip's bound, and g′ there is ¼ as in jax.grad.
    s = z + 1
    inside = xp.where((s > 0) & (s < 2), 0.5, 0)
    return xp.where((s == 0) | (s == 2), 0.25, inside).astype(z.dtype)


CATALOGUE: dict[str, Activation] = {
    act.name: act
    for act in [
        Activation("identity", identity, identity_prime, r"g(z) = z,\quad g'(z) = 1"),
        Activation(
            "sigmoid",
            sigmoid,
            sigmoid_prime,
            r"\sigma(z) = \frac{1}{1 + e^{-z}},\quad \sigma'(z) = \sigma(z)\,\sigma(-z)",
        ),
        Activation("tanh", tanh, tanh_prime, r"g(z) = \tanh z,\quad g'(z) = \operatorname{sech}^2 z"),
        Activation(
            "relu",
            relu,
            relu_prime,
            r"g(z) = \max(z, 0),\quad g'(z) = [z > 0]",
            kinks=(0.0,),
            kink_convention="g′(0) = 0, as jax.nn.relu",
        ),
        Activation(
            "leaky_relu",
            leaky_relu,
            leaky_relu_prime,
            r"g(z) = z \text{ if } z \ge 0 \text{ else } 0.01z,\quad g'(z) = 1 \text{ or } 0.01",
            kinks=(0.0,),
            kink_convention="g′(0) = 1 (the right slope), as jax.nn.leaky_relu",
        ),
        Activation(
            "elu",
            elu,
            elu_prime,
            r"g(z) = z \text{ if } z > 0 \text{ else } e^z - 1,\quad g'(z) = 1 \text{ or } e^z",
            kink_convention="α = 1: both slopes are 1 at 0, so g′ is continuous",
        ),
        Activation(
            "celu",
            celu,
            celu_prime,
            r"g(z) = \max(z, 0) + \min(e^z - 1, 0),\quad g'(z) = 1 \text{ or } e^z",
            kink_convention="α = 1: both slopes are 1 at 0, so g′ is continuous",
        ),
        Activation(
            "selu",
            selu,
            selu_prime,
            r"g(z) = \lambda z \text{ if } z > 0 \text{ else } \lambda\alpha(e^z - 1),"
            r"\quad g'(z) = \lambda \text{ or } \lambda\alpha e^z",
            kinks=(0.0,),
            kink_convention="g′(0) = λα (the left slope), as jax.nn.selu",
        ),
        Activation("softplus", softplus, softplus_prime, r"g(z) = \log(1 + e^z),\quad g'(z) = \sigma(z)"),
        Activation("silu", silu, silu_prime, r"g(z) = z\,\sigma(z),\quad g'(z) = \sigma(z)\,(1 + z\,\sigma(-z))"),
        Activation("gelu", gelu, gelu_prime, r"g(z) = z\,\Phi(z),\quad g'(z) = \Phi(z) + z\,\varphi(z)"),
        Activation(
            "gelu_tanh",
            gelu_tanh,
            gelu_tanh_prime,
            r"g(z) = \tfrac{z}{2}(1 + \tanh u),\ u = \sqrt{2/\pi}(z + 0.044715z^3),"
            r"\quad g'(z) = \tfrac12(1 + \tanh u) + \tfrac{z}{2}\operatorname{sech}^2(u)\,u'",
        ),
        Activation(
            "mish",
            mish,
            mish_prime,
            r"g(z) = z\tanh(\operatorname{softplus} z),"
            r"\quad g'(z) = \tanh s + z\operatorname{sech}^2(s)\,\sigma(z)",
        ),
        Activation(
            "soft_sign", soft_sign, soft_sign_prime, r"g(z) = \frac{z}{|z| + 1},\quad g'(z) = \frac{1}{(|z| + 1)^2}"
        ),
        Activation("log_sigmoid", log_sigmoid, log_sigmoid_prime, r"g(z) = -\log(1 + e^{-z}),\quad g'(z) = \sigma(-z)"),
        Activation(
            "relu6",
            relu6,
            relu6_prime,
            r"g(z) = \min(\max(z, 0), 6),\quad g'(z) = [0 < z < 6]",
            kinks=(0.0, 6.0),
            kink_convention="g′(0) = g′(6) = 0, as jax.nn.relu6",
        ),
        Activation(
            "hard_tanh",
            hard_tanh,
            hard_tanh_prime,
            r"g(z) = \max(-1, \min(z, 1)),\quad g'(z) = [|z| \le 1]",
            kinks=(-1.0, 1.0),
            kink_convention="g′(±1) = 1 (the inner slope), as jax.nn.hard_tanh",
        ),
        Activation(
            "hard_sigmoid",
            hard_sigmoid,
            hard_sigmoid_prime,
            r"g(z) = \operatorname{relu6}(z + 3)/6,\quad g'(z) = [-3 < z < 3]/6",
            kinks=(-3.0, 3.0),
            kink_convention="g′(±3) = 0 (the outer slope), as jax.nn.hard_sigmoid",
        ),
        Activation(
            "hard_silu",
            hard_silu,
            hard_silu_prime,
            r"g(z) = z\operatorname{relu6}(z + 3)/6,\quad g'(z) = (2z + 3)/6 \text{ on } (-3, 3)",
            kinks=(-3.0, 3.0),
            kink_convention="g′(−3) = 0 and g′(3) = 1 (the outer slopes), as jax.nn.hard_silu",
        ),
        Activation(
            "squareplus",
            squareplus,
            squareplus_prime,
            r"g(z) = \tfrac12(z + \sqrt{z^2 + 4}),\quad g'(z) = \tfrac12(1 + z/\sqrt{z^2 + 4})",
        ),
        Activation(
            "sparse_plus",
            sparse_plus,
            sparse_plus_prime,
            r"g(z) = \tfrac14(z + 1)^2 \text{ on } (-1, 1),\quad g'(z) = \tfrac12(z + 1) \text{ on } (-1, 1)",
            kink_convention="g′ is continuous at ±1 (only g″ jumps)",
        ),
        Activation(
            "sparse_sigmoid",
            sparse_sigmoid,
            sparse_sigmoid_prime,
            r"g(z) = \tfrac12\operatorname{clip}(z + 1, 0, 2),\quad g'(z) = \tfrac12[|z| < 1]",
            kinks=(-1.0, 1.0),
            kink_convention="g′(±1) = ¼, the mean of the one-sided slopes, as jax.nn.sparse_sigmoid",
        ),
    ]
}

ALIASES: dict[str, str] = {"swish": "silu", "hard_swish": "hard_silu"}


def activation(name: str) -> Activation:
    """The catalogue entry called ``name`` (aliases such as ``swish`` included)."""
    key = ALIASES.get(name, name)
    if key not in CATALOGUE:
        known = ", ".join(sorted(CATALOGUE) + sorted(ALIASES))
        raise KeyError(f"unknown activation {name!r}; known: {known}")
    return CATALOGUE[key]
