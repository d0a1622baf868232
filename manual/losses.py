"""Per-example errors Eₜ and their gradients ∇ₐEₜ, side by side.

The essay's averaging constraint: the network's error is the mean of per-example errors,

    E = (1/n) Σₜ Eₜ(a⁽ᴸ⁾₍ₜ₎, y₍ₜ₎),

and each Eₜ depends on the network only through its output a⁽ᴸ⁾₍ₜ₎. A ``Loss`` therefore
supplies the per-example errors and per-example gradients; the mean over examples belongs to
the framework (``mean_error`` here, and the 1/n of equation (3) in ``backprop``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

import numpy as np

Array = Any
LossFunction = Callable[[Array, Array, ModuleType], Array]


@dataclass(frozen=True)
class Loss:
    """A per-example error and its hand-derived gradient.

    ``error(a, y, xp)`` returns Eₜ for every example (shape ``(n,)``) and ``gradient(a, y, xp)``
    returns ∇ₐEₜ for every example (shape ``(n, m)``), with ``a`` and ``y`` of shape ``(n, m)``
    and ``xp`` the array namespace (``numpy`` or ``jax.numpy``).
    """

    name: str
    error: LossFunction
    gradient: LossFunction
    formula: str = ""

    def __repr__(self) -> str:
        return f"Loss({self.name!r})"


def mse(a, y, xp):
    # Convention: Eₜ = ½‖aₜ − yₜ‖², summed over output units, with the ½ so that ∇ₐEₜ = aₜ − yₜ.
    r = a - y
    return 0.5 * xp.sum(r * r, axis=-1)


def mse_gradient(a, y, xp):
    return a - y


MSE = Loss("mse", mse, mse_gradient,
           r"E_t = \tfrac12\lVert a_t - y_t\rVert^2,\quad \nabla_a E_t = a_t - y_t")

LOSSES: dict[str, Loss] = {loss.name: loss for loss in [MSE]}


def mean_error(loss: Loss, a: np.ndarray, y: np.ndarray) -> float:
    """E = (1/n) Σₜ Eₜ: the averaging constraint."""
    return float(np.mean(loss.error(a, y, np)))
