"""The three equations of backpropagation, and the backward pass that composes them.

With examples as rows, δ⁽ᵏ⁾ here is the matrix whose row t is the delta error of example t,
δ⁽ᵏ⁾₍ₜ₎ = ∂Eₜ/∂z⁽ᵏ⁾₍ₜ₎. Because E = (1/n) Σₜ Eₜ (the averaging constraint) and z⁽ᵏ⁾₍ₜ₎ reaches
no other Eₛ, the batch derivative ∂E/∂z⁽ᵏ⁾₍ₜ₎ is δ⁽ᵏ⁾₍ₜ₎ / n; the 1/n is applied once, in (3).

Transposes: the column form δ⁽ᵏ⁾ = (Θ⁽ᵏ⁺¹⁾)ᵀδ⁽ᵏ⁺¹⁾ becomes, for a row per example,
δ⁽ᵏ⁾ = δ⁽ᵏ⁺¹⁾Θ⁽ᵏ⁺¹⁾; and Σₜ δ⁽ᵏ⁾₍ₜ₎ a⁽ᵏ⁻¹⁾₍ₜ₎ᵀ is the single product (δ⁽ᵏ⁾)ᵀa⁽ᵏ⁻¹⁾.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .activations import Activation
from .output_maps import OutputMap
from .losses import MSE, Loss
from .network import Network, check_input, forward


def output_delta(grad_a_E: np.ndarray, z_L: np.ndarray, g_L: Activation | OutputMap) -> np.ndarray:
    """Equation (1), the output layer:

        δ⁽ᴸ⁾ = ∇ₐE ⊙ g_L′(z⁽ᴸ⁾)

    ``grad_a_E`` holds ∇ₐEₜ for every example (one row each), ``z_L`` holds z⁽ᴸ⁾. That form
    assumes a⁽ᴸ⁾ᵢ depends on z⁽ᴸ⁾ᵢ alone. For an output map that mixes units (softmax) the
    chain rule keeps the sum over output units, and (1) takes its general form

        δ⁽ᴸ⁾ = J_g(z⁽ᴸ⁾)ᵀ ∇ₐE

    with the Jacobian-transpose-vector product derived by hand in ``manual.output_maps``.
    """
    if isinstance(g_L, OutputMap):
        return g_L.vjp(z_L, grad_a_E, np)  # (1), general form
    return grad_a_E * g_L.derivative(z_L, np)  # (1)


def hidden_delta(theta_next: np.ndarray, delta_next: np.ndarray, z_k: np.ndarray,
                 g_k: Activation) -> np.ndarray:
    """Equation (2), moving backwards from layer k + 1 to layer k:

        δ⁽ᵏ⁾ = (Θ⁽ᵏ⁺¹⁾)ᵀ δ⁽ᵏ⁺¹⁾ ⊙ g_k′(z⁽ᵏ⁾)

    Θ⁽ᵏ⁺¹⁾ excludes the bias column: the bias unit has no incoming weights, so no delta flows
    back into it. With one example per row the product reads ``delta_next @ theta_next``.
    """
    delta_k = delta_next @ theta_next
    delta_k *= g_k.derivative(z_k, np)  # (2), the ⊙ done in place
    return delta_k


def parameter_gradients(delta_k: np.ndarray, a_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Equation (3), the weights and the bias, averaged over the n examples:

        ∂E/∂Θ⁽ᵏ⁾ᵢⱼ = δ⁽ᵏ⁾ᵢ a⁽ᵏ⁻¹⁾ⱼ        ∂E/∂b⁽ᵏ⁾ᵢ = δ⁽ᵏ⁾ᵢ   (the bias unit a₀ = 1)

    For a batch: ∂E/∂Θ⁽ᵏ⁾ = (1/n) (δ⁽ᵏ⁾)ᵀ a⁽ᵏ⁻¹⁾ and ∂E/∂b⁽ᵏ⁾ = (1/n) Σₜ δ⁽ᵏ⁾₍ₜ₎.
    """
    n = delta_k.shape[0]
    grad_theta = delta_k.T @ a_prev  # (3), one GEMM over the batch
    grad_theta /= n
    grad_b = delta_k.sum(axis=0) / n  # (3), a₀ = 1
    return grad_theta, grad_b


def layer_operands(delta: tuple, a: tuple, k: int) -> tuple[np.ndarray, np.ndarray]:
    """What equation (3) multiplies for layer k: its own δ⁽ᵏ⁾ and its input a⁽ᵏ⁻¹⁾."""
    return delta[k], a[k - 1]


@dataclass(frozen=True)
class Equations:
    """The three equations as one swappable set, so a deliberately wrong derivation can be
    checked by the same properties (``EQUATIONS`` is the right one)."""

    output_delta: Callable[[np.ndarray, np.ndarray, Activation | OutputMap], np.ndarray] = output_delta
    hidden_delta: Callable[[np.ndarray, np.ndarray, np.ndarray, Activation], np.ndarray] = hidden_delta
    parameter_gradients: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] = parameter_gradients
    layer_operands: Callable[[tuple, tuple, int], tuple[np.ndarray, np.ndarray]] = layer_operands


EQUATIONS = Equations()


@dataclass(frozen=True)
class Gradients:
    """Every δ⁽ᵏ⁾ (one row per example), ∂E/∂Θ⁽ᵏ⁾ and ∂E/∂b⁽ᵏ⁾; index 0 is ``None``."""

    delta: tuple[np.ndarray | None, ...]
    theta: tuple[np.ndarray | None, ...]
    b: tuple[np.ndarray | None, ...]


def backward(network: Network, z: tuple, a: tuple, y: np.ndarray, *, loss: Loss = MSE,
             equations: Equations = EQUATIONS) -> Gradients:
    """Equations (1), (2), (3) in the essay's order, from the forward pass's z and a. When the
    loss has a fused form with the output layer (softmax and cross-entropy, sigmoid and binary
    cross-entropy), (1) uses it: δ⁽ᴸ⁾ = a − y, finite for any logits."""
    L = network.depth
    delta = [None] * (L + 1)
    if loss.fuses(network.g[L]):
        delta[L] = loss.fused_delta(z[L], y, np)  # (1), fused with the loss: a − y
    else:
        grad_a_E = loss.gradient(a[L], y, np)  # ∇ₐEₜ for every example
        delta[L] = equations.output_delta(grad_a_E, z[L], network.g[L])  # (1)
    for k in range(L - 1, 0, -1):
        delta[k] = equations.hidden_delta(network.theta[k + 1], delta[k + 1], z[k], network.g[k])  # (2)
    grads = [equations.parameter_gradients(*equations.layer_operands(delta, a, k)) for k in range(1, L + 1)]  # (3)
    return Gradients(
        delta=tuple(delta),
        theta=(None,) + tuple(g for g, _ in grads),
        b=(None,) + tuple(g for _, g in grads),
    )


def gradients(network: Network, x: np.ndarray, y: np.ndarray, *, loss: Loss = MSE,
              equations: Equations = EQUATIONS) -> Gradients:
    """Forward pass, then backward pass: every δ⁽ᵏ⁾, ∂E/∂Θ⁽ᵏ⁾ and ∂E/∂b⁽ᵏ⁾ for the batch x, y."""
    check_input(network, x)
    if not isinstance(y, np.ndarray) or y.shape != (x.shape[0], network.widths[-1]):
        raise ValueError(f"y must be an array of shape {(x.shape[0], network.widths[-1])}, got {np.shape(y)}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity")
    fwd = forward(network, x)
    return backward(network, fwd.z, fwd.a, y, loss=loss, equations=equations)
