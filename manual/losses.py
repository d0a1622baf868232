"""Per-example errors Eₜ and their gradients ∇ₐEₜ, side by side.

The essay's averaging constraint: the network's error is the mean of per-example errors,

    E = (1/n) Σₜ Eₜ(a⁽ᴸ⁾₍ₜ₎, y₍ₜ₎),

and each Eₜ depends on the network only through its output a⁽ᴸ⁾₍ₜ₎. A ``Loss`` therefore
supplies the per-example errors and per-example gradients; the mean over examples belongs to
the framework (``mean_error`` here, and the 1/n of equation (3) in ``backprop``).

Some losses meet an output layer whose composition with them overflows when taken apart:
cross-entropy after softmax (log of a probability that rounded to 0) and binary cross-entropy
after sigmoid. Those losses also carry the *fused* forms, written on the output layer's input
z⁽ᴸ⁾ (the logits): the error from z directly, and δ⁽ᴸ⁾ = a − y. The framework uses the fused
forms whenever the network's output layer is the one named in ``fused_with``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from .activations import special

Array = Any
LossFunction = Callable[[Array, Array, ModuleType], Array]


@dataclass(frozen=True)
class Loss:
    """A per-example error and its hand-derived gradient.

    ``error(a, y, xp)`` returns Eₜ for every example (shape ``(n,)``) and ``gradient(a, y, xp)``
    returns ∇ₐEₜ for every example (shape ``(n, m)``), with ``a`` and ``y`` of shape ``(n, m)``
    and ``xp`` the array namespace (``numpy`` or ``jax.numpy``).

    Optional: ``targets`` says what y may hold (``"real"``, ``"unit"`` for values in [0, 1],
    ``"distribution"`` for rows of non-negative values summing to 1); ``outputs`` names the
    output layers the loss makes sense after (empty: any); ``fused_with`` names the output layer
    whose composition with this loss has the fused forms ``fused_error(z, y, xp)`` (Eₜ from the
    logits) and ``fused_delta(z, y, xp)`` (δ⁽ᴸ⁾ per example).
    """

    name: str
    error: LossFunction
    gradient: LossFunction
    formula: str = ""
    targets: str = "real"
    outputs: tuple[str, ...] = ()
    kinks: tuple[float, ...] = ()
    kink_convention: str = ""
    fused_with: str | None = None
    fused_error: LossFunction | None = None
    fused_delta: LossFunction | None = None

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"

    def fuses(self, g_L: object) -> bool:
        """Does this loss take its fused form after the output layer ``g_L``?"""
        return self.fused_with is not None and getattr(g_L, "name", None) == self.fused_with


# --- the catalogue: Eₜ and ∇ₐEₜ side by side ------------------------------------------------


def mse(a, y, xp):
    # Convention: Eₜ = ½‖aₜ − yₜ‖², summed over output units, with the ½ so that ∇ₐEₜ = aₜ − yₜ.
    r = a - y
    return 0.5 * xp.sum(r * r, axis=-1)


def mse_gradient(a, y, xp):
    return a - y


def mae(a, y, xp):
    return xp.sum(xp.abs(a - y), axis=-1)


def mae_gradient(a, y, xp):
    # sign(a − y), with +1 at a = y: jax.grad of |r| at 0 is 1.
    return xp.where(a - y >= 0, 1.0, -1.0) + 0 * a


HUBER_DELTA = 1.0


def huber(a, y, xp):
    r = xp.abs(a - y)
    return xp.sum(xp.where(r <= HUBER_DELTA, 0.5 * r * r, HUBER_DELTA * (r - 0.5 * HUBER_DELTA)), axis=-1)


def huber_gradient(a, y, xp):
    return xp.clip(a - y, -HUBER_DELTA, HUBER_DELTA)


def binary_cross_entropy(a, y, xp):
    # −[y log a + (1 − y) log(1 − a)], with 0·log 0 = 0 (xlogy, xlog1py).
    s = special(xp)
    return -xp.sum(s.xlogy(y, a) + s.xlog1py(1 - y, -a), axis=-1)


def binary_cross_entropy_gradient(a, y, xp):
    return (a - y) / (a * (1 - a))


def binary_cross_entropy_from_logits(z, y, xp):
    # a = σ(z): −[y log σ(z) + (1 − y) log σ(−z)] = softplus(z) − y·z, finite for any z.
    return xp.sum(xp.logaddexp(z, 0) - y * z, axis=-1)


def binary_cross_entropy_delta(z, y, xp):
    # δ⁽ᴸ⁾ = σ′(z) · (a − y)/(a(1 − a)) = a − y, since σ′ = a(1 − a).
    return special(xp).expit(z) - y


def cross_entropy(a, y, xp):
    return -xp.sum(special(xp).xlogy(y, a), axis=-1)


def cross_entropy_gradient(a, y, xp):
    return -y / a


def cross_entropy_from_logits(z, y, xp):
    # a = softmax(z): −Σ y log a = (Σ y)·logsumexp(z) − Σ y z, finite for any z.
    m = xp.max(z, axis=-1, keepdims=True)
    logsumexp = m[..., 0] + xp.log(xp.sum(xp.exp(z - m), axis=-1))
    return xp.sum(y, axis=-1) * logsumexp - xp.sum(y * z, axis=-1)


def cross_entropy_delta(z, y, xp):
    # δ⁽ᴸ⁾ = J_softmaxᵀ(−y/a) = a·Σy − y, which is a − y when the row of y sums to 1.
    m = xp.max(z, axis=-1, keepdims=True)
    e = xp.exp(z - m)
    a = e / xp.sum(e, axis=-1, keepdims=True)
    return a * xp.sum(y, axis=-1, keepdims=True) - y


def negative_log_likelihood(a, y, xp):
    # a holds log-probabilities (log_softmax output): Eₜ = −Σ y a.
    return -xp.sum(y * a, axis=-1)


def negative_log_likelihood_gradient(a, y, xp):
    return -y + 0 * a


MSE = Loss("mse", mse, mse_gradient, r"E_t = \tfrac12\lVert a_t - y_t\rVert^2,\quad \nabla_a E_t = a_t - y_t")
MAE = Loss(
    "mae",
    mae,
    mae_gradient,
    r"E_t = \sum_j |a_j - y_j|,\quad \nabla_a E_t = \operatorname{sign}(a - y)",
    kinks=(0.0,),
    kink_convention="∂Eₜ/∂aⱼ = 1 where aⱼ = yⱼ, as jax.grad of |r| at 0",
)
HUBER = Loss(
    "huber",
    huber,
    huber_gradient,
    r"E_t = \sum_j h(a_j - y_j),\ h(r) = \tfrac12 r^2 \ (|r| \le 1),\ |r| - \tfrac12,"
    r"\quad \nabla_a E_t = \operatorname{clip}(a - y, -1, 1)",
)
BINARY_CROSS_ENTROPY = Loss(
    "binary_cross_entropy",
    binary_cross_entropy,
    binary_cross_entropy_gradient,
    r"E_t = -\sum_j y_j\log a_j + (1 - y_j)\log(1 - a_j),\quad \nabla_a E_t = \frac{a - y}{a(1 - a)}",
    targets="unit",
    outputs=("sigmoid",),
    fused_with="sigmoid",
    fused_error=binary_cross_entropy_from_logits,
    fused_delta=binary_cross_entropy_delta,
)
# Same shape as BINARY_CROSS_ENTROPY above: each loss declares its gradient, targets and fused
# form beside its own definition, so the entries stay written out one by one.
CROSS_ENTROPY = Loss(
    "cross_entropy",
    cross_entropy,
    cross_entropy_gradient,
    r"E_t = -\sum_j y_j \log a_j,\quad \nabla_a E_t = -y / a",
    targets="distribution",
    outputs=("softmax",),
    fused_with="softmax",
    fused_error=cross_entropy_from_logits,
    fused_delta=cross_entropy_delta,
)
NEGATIVE_LOG_LIKELIHOOD = Loss(
    "negative_log_likelihood",
    negative_log_likelihood,
    negative_log_likelihood_gradient,
    r"E_t = -\sum_j y_j a_j \ (a = \log\operatorname{softmax} z),\quad \nabla_a E_t = -y",
    targets="distribution",
    outputs=("log_softmax",),
)

LOSSES: dict[str, Loss] = {
    loss.name: loss for loss in [MSE, MAE, HUBER, BINARY_CROSS_ENTROPY, CROSS_ENTROPY, NEGATIVE_LOG_LIKELIHOOD]
}


def mean_error(loss: Loss, a: np.ndarray, y: np.ndarray) -> float:
    """E = (1/n) Σₜ Eₜ: the averaging constraint."""
    return float(np.mean(loss.error(a, y, np)))
