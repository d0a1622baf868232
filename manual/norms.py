"""Normalization layers and their backward passes, derived by hand (docs/normalization.md).

Each takes a⁽ᵏ⁻¹⁾ of shape (n, m), one example per row, and gives z⁽ᵏ⁾ of the same shape:

    LayerNorm   over the m units of each example:   x̂ = (x − μ)/σ,  z = γ ⊙ x̂ + β
    RMSNorm     over the m units of each example:   x̂ = x/r,        z = γ ⊙ x̂
    BatchNorm   over the n examples, unit by unit (training mode: the batch's own statistics):
                                                    x̂ = (x − μ)/σ,  z = γ ⊙ x̂ + β

with μ the mean, σ = √(v + ε) for the variance v (the mean of (x − μ)², divided by the count,
not by the count − 1), r = √(mean(x²) + ε), and ε = ``eps`` (1e-5 by default) INSIDE the
square root. γ and β have one entry per unit.

Equation (2) through a norm (``input_delta``; g = γ ⊙ δ, means over the normalized axis):

    LayerNorm, BatchNorm:   ∂/∂x = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / σ
    RMSNorm:                ∂/∂x = (g − x̂ ⊙ mean(g ⊙ x̂)) / r

The two mean terms are the paths through μ and through σ (or r): every x of the normalized
group moves the statistics that every other one is divided by.

The lesson of BatchNorm: its statistics run over the batch, so example t's output depends on
every example, and Eₜ with it. δ can then no longer be "∂Eₜ/∂z for example t alone": what is
carried back is ∂(Σₛ Eₛ)/∂z⁽ᵏ⁾ₜ = n·∂E/∂z⁽ᵏ⁾ₜ, which for a layer that keeps examples apart is the
same thing (no Eₛ of another example depends on z⁽ᵏ⁾ₜ) and through BatchNorm is not. Every
layer's ``input_delta`` is linear in δ, so the factor n passes through, and (3) still divides by
n once. BatchNorm's ``input_delta_graph`` takes the same derivative step by step through the
computational graph (x → μ → x − μ → v → σ → x̂ → z), checked equal to the compact form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

Params = Mapping[str, np.ndarray]

EPS = 1e-5
"""ε of every norm, inside the square root (PyTorch's and Flax's default)."""


def _check_rows(layer, a_prev: np.ndarray) -> None:
    if not isinstance(a_prev, np.ndarray) or a_prev.ndim != 2:
        raise ValueError(
            f"{type(layer).__name__} takes one row per example, an (n, m) array; put a Flatten or a Dense before it"
        )


def _check_units(in_shape: tuple) -> int:
    if len(in_shape) != 1:
        raise ValueError(f"a norm takes one row per example, not {in_shape}: put a Flatten before it")
    return in_shape[0]


@dataclass(frozen=True)
class _Norm:
    """What the three norms share: γ (and β) per unit, ε, the statistics' axis."""

    eps: float = EPS
    axis: ClassVar[int]
    """The axis the statistics run over: 1 (each example's units) or 0 (the batch)."""
    has_beta: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not (isinstance(self.eps, (int, float)) and np.isfinite(self.eps) and self.eps > 0):
            raise ValueError(f"eps must be a positive number, got {self.eps!r}")

    def out_shape(self, in_shape: tuple) -> tuple:
        return (_check_units(in_shape),)

    def init(self, rng: np.random.Generator, in_shape: tuple, dtype: np.dtype | type = np.float64) -> dict:
        """γ = 1 and β = 0, as every library starts them."""
        m = _check_units(in_shape)
        return {"gamma": np.ones(m, dtype), **({"beta": np.zeros(m, dtype)} if self.has_beta else {})}

    def mean(self, v: np.ndarray) -> np.ndarray:
        return v.mean(axis=self.axis, keepdims=True)

    def normalized(self, a_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x̂, the divisor σ or r): each norm's own."""
        raise NotImplementedError(f"{type(self).__name__} must define its normalization")

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> dict:
        """Equation (3): ∂E/∂γ = (1/n) Σₜ δₜ ⊙ x̂ₜ and ∂E/∂β = (1/n) Σₜ δₜ (γ and β are used by
        every example, so their gradients sum over the batch once, as a dense layer's b)."""
        n = delta.shape[0]
        x_hat = self.normalized(a_prev)[0]
        grads = {"gamma": (delta * x_hat).sum(axis=0) / n}  # (3)
        if self.has_beta:
            grads["beta"] = delta.sum(axis=0) / n  # (3)
        return grads


@dataclass(frozen=True)
class LayerNorm(_Norm):
    """z = γ ⊙ (x − μ)/σ + β, μ and σ over each example's m units."""

    axis: ClassVar[int] = 1

    def normalized(self, a_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x̂, σ): x̂ = (x − μ)/σ with σ = √(v + ε), statistics along ``axis``."""
        _check_rows(self, a_prev)
        centred = a_prev - self.mean(a_prev)
        sigma = np.sqrt(self.mean(centred * centred) + self.eps)
        return centred / sigma, sigma

    def forward(self, a_prev: np.ndarray, params: Params) -> np.ndarray:
        x_hat, _ = self.normalized(a_prev)
        return params["gamma"] * x_hat + params["beta"]

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """(2) before its ⊙: (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / σ with g = γ ⊙ δ."""
        x_hat, sigma = self.normalized(a_prev)
        g = params["gamma"] * delta
        return (g - self.mean(g) - x_hat * self.mean(g * x_hat)) / sigma  # (2), through μ and σ too


@dataclass(frozen=True)
class RMSNorm(_Norm):
    """z = γ ⊙ x / r, r = √(mean(x²) + ε) over each example's m units (no centring, no β)."""

    axis: ClassVar[int] = 1
    has_beta: ClassVar[bool] = False

    def normalized(self, a_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(x̂, r): x̂ = x/r with r = √(mean(x²) + ε)."""
        _check_rows(self, a_prev)
        r = np.sqrt(self.mean(a_prev * a_prev) + self.eps)
        return a_prev / r, r

    def forward(self, a_prev: np.ndarray, params: Params) -> np.ndarray:
        return params["gamma"] * self.normalized(a_prev)[0]

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """(2) before its ⊙: (g − x̂ ⊙ mean(g ⊙ x̂)) / r with g = γ ⊙ δ."""
        x_hat, r = self.normalized(a_prev)
        g = params["gamma"] * delta
        return (g - x_hat * self.mean(g * x_hat)) / r  # (2), through r too


@dataclass(frozen=True)
class BatchNorm(LayerNorm):
    """z = γ ⊙ (x − μ)/σ + β, μ and σ over the batch for each unit (training mode).

    With one example every x̂ is 0 and z = β whatever the input, so no gradient reaches the
    layers below: one example is refused, as PyTorch does in training mode."""

    axis: ClassVar[int] = 0
    batch_sizes: ClassVar[tuple[int, ...]] = (2, 3, 4, 5)
    """The batch sizes ``backprop-check layer`` checks it at (its default, 1 … 5, less the 1 it refuses)."""

    def normalized(self, a_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _check_rows(self, a_prev)
        if a_prev.shape[0] < 2:
            raise ValueError(
                "BatchNorm in training mode needs at least 2 examples: with one, every x̂ is 0 "
                "and its output is β whatever its input"
            )
        return super().normalized(a_prev)

    def input_delta_graph(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """The same ∂/∂x as ``input_delta``, node by node backwards through the graph
        x → μ → c = x − μ → v = mean(c²) → σ = √(v + ε) → x̂ = c/σ → z = γx̂ + β, each node's
        gradient the sum over the paths leaving it (δ is carried as n·∂E/∂z, see the module)."""
        n = a_prev.shape[0]
        mu = a_prev.mean(axis=0)
        c = a_prev - mu
        v = (c * c).mean(axis=0)
        sigma = np.sqrt(v + self.eps)
        d_x_hat = delta * params["gamma"]  # z = γx̂ + β
        d_sigma = -(d_x_hat * c).sum(axis=0) / sigma**2  # x̂ = c/σ: σ reaches every example
        d_v = d_sigma / (2 * sigma)  # σ = √(v + ε)
        d_c = d_x_hat / sigma + d_v * 2 * c / n  # c reaches z through x̂ and through v
        d_mu = -d_c.sum(axis=0)  # c = x − μ for every example
        return d_c + d_mu / n  # (2), x reaches c directly and through μ
