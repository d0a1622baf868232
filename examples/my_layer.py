"""A user's own layer, with its backward pass written by hand, ready for ``backprop-check layer``:

    backprop-check layer examples/my_layer.py:ScaledTanh
    backprop-check layer examples/my_layer.py:ScaledTanh --dtype float32 --json

The layer is z = s ⊙ tanh(a) with one learnable scale s per unit. What the checker needs:

- ``forward(a_prev, params, xp=np)`` written with ``xp`` (``xp.tanh``), so that the checker can
  pass ``jax.numpy`` and differentiate exactly this function;
- ``input_delta(delta, a_prev, params)``: (∂z/∂a)ᵀδ for every example, here δ ⊙ s ⊙ (1 − tanh²a);
- ``parameter_gradients(delta, a_prev, params)``: (1/n)·∂(Σ z·δ)/∂s, here the batch mean of
  δ ⊙ tanh a (the 1/n of E = (1/n) Σₜ Eₜ is applied here, once);
- ``out_shape`` and ``init``; ``example_shapes`` (optional) says which in_shapes to try.

Change ``1 - t * t`` to ``1 - t`` below and the command prints WRONG with the smallest case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScaledTanh:
    """z = s ⊙ tanh(a): one learnable scale per unit."""

    example_shapes = ((4,), (16,))

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: tuple[int, ...], dtype=np.float64) -> dict:
        return {"s": np.ones(in_shape, dtype)}

    # property_tests/banks/layer_bank.py keeps its own ScaledTanh for the checker's tests; this one is
    # the user's template, standalone, to copy and change in place (see the docstring).
    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        return params["s"] * xp.tanh(a_prev)

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        t = np.tanh(a_prev)
        return delta * params["s"] * (1 - t * t)

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        return {"s": (delta * np.tanh(a_prev)).mean(axis=0)}
