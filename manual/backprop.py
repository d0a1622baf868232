"""The three equations of backpropagation, and the backward pass that composes them.

With examples as rows, δ⁽ᵏ⁾ here is the matrix whose row t is the delta error of example t,
δ⁽ᵏ⁾₍ₜ₎ = ∂Eₜ/∂z⁽ᵏ⁾₍ₜ₎. Because E = (1/n) Σₜ Eₜ (the averaging constraint) and z⁽ᵏ⁾₍ₜ₎ reaches
no other Eₛ, the batch derivative ∂E/∂z⁽ᵏ⁾₍ₜ₎ is δ⁽ᵏ⁾₍ₜ₎ / n; the 1/n is applied once, in (3).

Transposes: the column form δ⁽ᵏ⁾ = (Θ⁽ᵏ⁺¹⁾)ᵀδ⁽ᵏ⁺¹⁾ becomes, for a row per example,
δ⁽ᵏ⁾ = δ⁽ᵏ⁺¹⁾Θ⁽ᵏ⁺¹⁾; and Σₜ δ⁽ᵏ⁾₍ₜ₎ a⁽ᵏ⁻¹⁾₍ₜ₎ᵀ is the single product (δ⁽ᵏ⁾)ᵀa⁽ᵏ⁻¹⁾.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .activations import Activation
from .losses import MSE, Loss
from .network import Network, Parameters, check_input, check_targets, forward
from .parametric import ParametricActivation
from .vector_activations import VectorActivation


def output_delta(grad_a_E: np.ndarray, z_L: np.ndarray, g_L: Activation | VectorActivation) -> np.ndarray:
    """Equation (1), the output layer:

        δ⁽ᴸ⁾ = ∇ₐE ⊙ g_L′(z⁽ᴸ⁾)

    ``grad_a_E`` holds ∇ₐEₜ for every example (one row each), ``z_L`` holds z⁽ᴸ⁾. That form
    assumes a⁽ᴸ⁾ᵢ depends on z⁽ᴸ⁾ᵢ alone. For an output map that mixes units (softmax) the
    chain rule keeps the sum over output units, and (1) takes its general form

        δ⁽ᴸ⁾ = J_g(z⁽ᴸ⁾)ᵀ ∇ₐE

    with the Jacobian-transpose-vector product derived by hand in ``manual.output_maps`` and
    ``manual.vector_activations``. An activation with parameters enters bound to its values
    (``ParametricActivation.bind``): g′ is then ∂g/∂z(z; p).
    """
    if isinstance(g_L, VectorActivation):
        return g_L.vjp(z_L, grad_a_E, np)  # (1), general form
    return grad_a_E * g_L.derivative(z_L, np)  # (1)


def hidden_delta(theta_next: np.ndarray, delta_next: np.ndarray, z_k: np.ndarray, g_k: Activation) -> np.ndarray:
    """Equation (2), moving backwards from layer k + 1 to layer k:

        δ⁽ᵏ⁾ = (Θ⁽ᵏ⁺¹⁾)ᵀ δ⁽ᵏ⁺¹⁾ ⊙ g_k′(z⁽ᵏ⁾)

    Θ⁽ᵏ⁺¹⁾ excludes the bias column: the bias unit has no incoming weights, so no delta flows
    back into it. With one example per row the product reads ``delta_next @ theta_next``.
    """
    delta_k = delta_next @ theta_next
    delta_k *= g_k.derivative(z_k, np)  # (2), the ⊙ done in place
    return delta_k


def hidden_delta_general(
    theta_next: np.ndarray, delta_next: np.ndarray, z_k: np.ndarray, g_k: VectorActivation
) -> np.ndarray:
    """Equation (2) in its general form, for an activation that mixes units (softmax, a GLU,
    maxout), where a⁽ᵏ⁾ⱼ depends on several z⁽ᵏ⁾ᵢ and the chain rule keeps the sum over j:

        δ⁽ᵏ⁾ = J_g(z⁽ᵏ⁾)ᵀ ((Θ⁽ᵏ⁺¹⁾)ᵀ δ⁽ᵏ⁺¹⁾)

    Θ⁽ᵏ⁺¹⁾ has as many columns as a⁽ᵏ⁾ has units (a GLU's output is half as wide as z⁽ᵏ⁾), and
    J_gᵀv is the hand-derived product of ``g_k.vjp``. With J_g diagonal it is ``hidden_delta``.
    """
    return g_k.vjp(z_k, delta_next @ theta_next, np)  # (2), general form


def activation_parameter_gradients(
    grad_a: np.ndarray, z_k: np.ndarray, g_k: ParametricActivation, p_k: Parameters
) -> dict[str, np.ndarray]:
    """Equation (3) for the parameters of an activation a⁽ᵏ⁾ = g(z⁽ᵏ⁾; p):

        ∂E/∂p = (1/n) Σₜ Σᵢ (∂Eₜ/∂a⁽ᵏ⁾ₜᵢ) ∂g/∂p(z⁽ᵏ⁾ₜᵢ; p)

    ``grad_a`` holds ∂Eₜ/∂a⁽ᵏ⁾ for every example: ∇ₐEₜ at the output, (Θ⁽ᵏ⁺¹⁾)ᵀδ⁽ᵏ⁺¹⁾ in a
    hidden layer (the factor of (2) before its ⊙). A parameter shared by the layer (shape ())
    sums over examples and units; a per-unit one (shape (units,)) over the examples only.
    """
    n = grad_a.shape[0]
    partials = g_k.parameter_derivatives(z_k, p_k, np)
    grads = {}
    for name, value in p_k.items():
        terms = grad_a * partials[name]
        grads[name] = (terms.sum() if np.ndim(value) == 0 else terms.sum(axis=0)) / n  # (3), parameters
    return grads


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


def layer_operands(delta: Sequence, a: Sequence, k: int) -> tuple[np.ndarray, np.ndarray]:
    """What equation (3) multiplies for layer k: its own δ⁽ᵏ⁾ and its input a⁽ᵏ⁻¹⁾."""
    return delta[k], a[k - 1]


@dataclass(frozen=True)
class Equations:
    """The three equations as one swappable set, so a deliberately wrong derivation can be
    checked by the same properties (``EQUATIONS`` is the right one)."""

    output_delta: Callable[[np.ndarray, np.ndarray, Activation | VectorActivation], np.ndarray] = output_delta
    hidden_delta: Callable[[np.ndarray, np.ndarray, np.ndarray, Activation], np.ndarray] = hidden_delta
    parameter_gradients: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] = parameter_gradients
    layer_operands: Callable[[Sequence, Sequence, int], tuple[np.ndarray, np.ndarray]] = layer_operands
    hidden_delta_general: Callable[[np.ndarray, np.ndarray, np.ndarray, VectorActivation], np.ndarray] = (
        hidden_delta_general
    )
    activation_parameter_gradients: Callable[..., dict[str, np.ndarray]] = activation_parameter_gradients


EQUATIONS = Equations()


@dataclass(frozen=True)
class Gradients:
    """Every δ⁽ᵏ⁾ (one row per example), ∂E/∂Θ⁽ᵏ⁾, ∂E/∂b⁽ᵏ⁾ and, for an activation with
    parameters, ∂E/∂p⁽ᵏ⁾ (a dict by parameter name, ``None`` elsewhere); index 0 is ``None``."""

    delta: tuple[np.ndarray | None, ...]
    theta: tuple[np.ndarray | None, ...]
    b: tuple[np.ndarray | None, ...]
    p: tuple[dict[str, np.ndarray] | None, ...] = ()


def as_used(network: Network, k: int) -> Activation | VectorActivation:
    """g_k as equations (1) and (2) use it: bound to p⁽ᵏ⁾ when it has parameters (g′ = ∂g/∂z)."""
    g, p = network.g[k], network.p[k]
    if g is None:
        raise ValueError(f"layer {k} has no activation: layer 0 is the input")
    if isinstance(g, ParametricActivation):
        assert p is not None  # an activation with parameters has their values (check_network)
        return g.bind(p)
    return g


def backward(
    network: Network, z: tuple, a: tuple, y: np.ndarray, *, loss: Loss = MSE, equations: Equations = EQUATIONS
) -> Gradients:
    """Equations (1), (2), (3) in the essay's order, from the forward pass's z and a. When the
    loss has a fused form with the output layer (softmax and cross-entropy, sigmoid and binary
    cross-entropy), (1) uses it: δ⁽ᴸ⁾ = a − y, finite for any logits."""
    L, theta = network.depth, network.theta
    delta: list[np.ndarray | None] = [None] * (L + 1)
    grad_a_E: np.ndarray | None = None
    if loss.fuses(network.g[L]):
        assert loss.fused_delta is not None  # a loss that fuses with g_L carries its fused forms
        delta[L] = loss.fused_delta(z[L], y, np)  # (1), fused with the loss: a − y
    else:
        grad_a_E = loss.gradient(a[L], y, np)  # ∇ₐEₜ for every example
        delta[L] = equations.output_delta(grad_a_E, z[L], as_used(network, L))  # (1)
    for k in range(L - 1, 0, -1):
        g_k, theta_next, delta_next = as_used(network, k), theta[k + 1], delta[k + 1]
        assert theta_next is not None and delta_next is not None  # Θ⁽ᵏ⁺¹⁾ is given, δ⁽ᵏ⁺¹⁾ just computed
        if isinstance(g_k, VectorActivation):
            delta[k] = equations.hidden_delta_general(theta_next, delta_next, z[k], g_k)  # (2), general form
        else:
            delta[k] = equations.hidden_delta(theta_next, delta_next, z[k], g_k)  # (2)
    grads = [equations.parameter_gradients(*equations.layer_operands(delta, a, k)) for k in range(1, L + 1)]  # (3)
    p_grads: list[dict[str, np.ndarray] | None] = [None] * (L + 1)
    for k in range(1, L + 1):
        g, p_k = network.g[k], network.p[k]
        if isinstance(g, ParametricActivation):
            if k == L:
                grad_a = grad_a_E  # ∂Eₜ/∂a⁽ᴸ⁾ = ∇ₐEₜ
            else:
                theta_next, delta_next = theta[k + 1], delta[k + 1]
                assert theta_next is not None and delta_next is not None  # Θ⁽ᵏ⁺¹⁾ is given, δ⁽ᵏ⁺¹⁾ just computed
                grad_a = delta_next @ theta_next  # ∂Eₜ/∂a⁽ᵏ⁾
            p_grads[k] = equations.activation_parameter_gradients(grad_a, z[k], g, p_k)  # (3)
    return Gradients(
        delta=tuple(delta),
        theta=(None,) + tuple(g for g, _ in grads),
        b=(None,) + tuple(g for _, g in grads),
        p=tuple(p_grads),
    )


def gradients(
    network: Network, x: np.ndarray, y: np.ndarray, *, loss: Loss = MSE, equations: Equations = EQUATIONS
) -> Gradients:
    """Forward pass, then backward pass: every δ⁽ᵏ⁾, ∂E/∂Θ⁽ᵏ⁾ and ∂E/∂b⁽ᵏ⁾ for the batch x, y."""
    check_input(network, x)
    check_targets(y, x.shape[0], network.output_width)
    fwd = forward(network, x)
    return backward(network, fwd.z, fwd.a, y, loss=loss, equations=equations)
