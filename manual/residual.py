"""A residual block and its backward pass, derived by hand (docs/normalization.md).

    z = a + g(u),   u = Θa + b        (one row per example: u = a Θᵀ + b; Θ is m × m)

The block's input reaches its output along two paths: the skip (slope 1) and the dense layer
with its activation. Equation (2) sums them:

    ∂Eₜ/∂a = δ + Θᵀ(δ ⊙ g′(u))        (the skip path's δ, plus the dense path's)

and equation (3) is the dense layer's, with δ ⊙ g′(u) as its δ:

    ∂E/∂Θ = (1/n) Σₜ (δₜ ⊙ g′(uₜ)) aₜᵀ,    ∂E/∂b = (1/n) Σₜ δₜ ⊙ g′(uₜ)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .activations import Activation

Params = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Residual:
    """a ↦ a + g(Θa + b) on rows of ``units`` units; g is any elementwise activation."""

    units: int
    g: Activation

    def __post_init__(self) -> None:
        if not isinstance(self.units, (int, np.integer)) or isinstance(self.units, bool) or self.units < 1:
            raise ValueError(f"units must be an integer of at least 1, got {self.units!r}")
        if not isinstance(self.g, Activation):
            raise ValueError(f"a residual block's g must be an elementwise Activation, not {type(self.g).__name__}")

    def out_shape(self, in_shape: tuple) -> tuple:
        if tuple(in_shape) != (self.units,):
            raise ValueError(
                f"a residual block of {self.units} units takes rows of {self.units} units, "
                f"not {tuple(in_shape)}: the skip path adds its input to its output"
            )
        return (self.units,)

    def init(self, rng: np.random.Generator, in_shape: tuple, dtype: np.dtype | type = np.float64) -> dict:
        """Θ ~ N(0, 1/m) and b ~ N(0, 1/m)."""
        self.out_shape(in_shape)
        std = 1 / np.sqrt(self.units)
        return {
            "theta": (std * rng.standard_normal((self.units, self.units))).astype(dtype),
            "b": (std * rng.standard_normal(self.units)).astype(dtype),
        }

    def inner(self, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """u = Θa + b for every row."""
        return a_prev @ params["theta"].T + params["b"]

    def forward(self, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """z = a + g(u)."""
        return a_prev + self.g.forward(self.inner(a_prev, params), np)

    def inner_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """The dense path's δ: δ ⊙ g′(u)."""
        return delta * self.g.derivative(self.inner(a_prev, params), np)

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """(2) before its ⊙: δ + Θᵀ(δ ⊙ g′(u)), the two paths summed."""
        return delta + self.inner_delta(delta, a_prev, params) @ params["theta"]  # (2), skip path + dense path

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> dict:
        """(3) of the dense path: (1/n) Σₜ (δ ⊙ g′(u))ₜ aₜᵀ and (1/n) Σₜ (δ ⊙ g′(u))ₜ."""
        n = delta.shape[0]
        delta_u = self.inner_delta(delta, a_prev, params)
        return {"theta": delta_u.T @ a_prev / n, "b": delta_u.sum(axis=0) / n}  # (3)
