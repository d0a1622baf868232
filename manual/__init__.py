"""Backpropagation derived by hand, in NumPy: the essay's three equations.

    z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾,   a⁽ᵏ⁾ = g_k(z⁽ᵏ⁾),   E = (1/n) Σₜ Eₜ,   δ⁽ᵏ⁾ = ∂E/∂z⁽ᵏ⁾

    (1) δ⁽ᴸ⁾ = ∇ₐE ⊙ g_L′(z⁽ᴸ⁾)                    output_delta
        δ⁽ᴸ⁾ = J_g(z⁽ᴸ⁾)ᵀ ∇ₐE   (softmax, log_softmax: the general form)
    (2) δ⁽ᵏ⁾ = (Θ⁽ᵏ⁺¹⁾)ᵀ δ⁽ᵏ⁺¹⁾ ⊙ g_k′(z⁽ᵏ⁾)        hidden_delta
    (3) ∂E/∂Θ⁽ᵏ⁾ᵢⱼ = δ⁽ᵏ⁾ᵢ a⁽ᵏ⁻¹⁾ⱼ, ∂E/∂b⁽ᵏ⁾ᵢ = δ⁽ᵏ⁾ᵢ   parameter_gradients

This package imports NumPy and SciPy only, never JAX.
"""

from .activations import ALIASES, CATALOGUE, Activation, activation, special
from .backprop import (
    EQUATIONS,
    Equations,
    Gradients,
    backward,
    gradients,
    hidden_delta,
    output_delta,
    parameter_gradients,
)
from .losses import (BINARY_CROSS_ENTROPY, CROSS_ENTROPY, HUBER, LOSSES, MAE, MSE,
                     NEGATIVE_LOG_LIKELIHOOD, Loss, mean_error)
from .output_maps import LOG_SOFTMAX, OUTPUT_MAPS, SOFTMAX, OutputMap
from .network import ForwardPass, Network, check_input, forward, init_network

__all__ = [
    # activations: g and g′ side by side
    "Activation", "CATALOGUE", "ALIASES", "activation", "special",
    # losses: Eₜ and ∇ₐEₜ side by side, fused forms after softmax and sigmoid
    "Loss", "LOSSES", "MSE", "MAE", "HUBER", "BINARY_CROSS_ENTROPY", "CROSS_ENTROPY",
    "NEGATIVE_LOG_LIKELIHOOD", "mean_error",
    # output layers that mix units, with J_gᵀv by hand: equation (1) in its general form
    "OutputMap", "OUTPUT_MAPS", "SOFTMAX", "LOG_SOFTMAX",
    # the network and its forward pass
    "Network", "init_network", "ForwardPass", "forward", "check_input",
    # the three equations and the backward pass
    "output_delta", "hidden_delta", "parameter_gradients",
    "Equations", "EQUATIONS", "Gradients", "backward", "gradients",
]
