"""Backpropagation derived by hand, in NumPy: the essay's three equations.

    z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾,   a⁽ᵏ⁾ = g_k(z⁽ᵏ⁾),   E = (1/n) Σₜ Eₜ,   δ⁽ᵏ⁾ = ∂E/∂z⁽ᵏ⁾

    (1) δ⁽ᴸ⁾ = ∇ₐE ⊙ g_L′(z⁽ᴸ⁾)                    output_delta
        δ⁽ᴸ⁾ = J_g(z⁽ᴸ⁾)ᵀ ∇ₐE   (softmax, log_softmax: the general form)
    (2) δ⁽ᵏ⁾ = (Θ⁽ᵏ⁺¹⁾)ᵀ δ⁽ᵏ⁺¹⁾ ⊙ g_k′(z⁽ᵏ⁾)        hidden_delta
        δ⁽ᵏ⁾ = J_g(z⁽ᵏ⁾)ᵀ (Θ⁽ᵏ⁺¹⁾)ᵀ δ⁽ᵏ⁺¹⁾   (a GLU, maxout, softmax: hidden_delta_general)
    (3) ∂E/∂Θ⁽ᵏ⁾ᵢⱼ = δ⁽ᵏ⁾ᵢ a⁽ᵏ⁻¹⁾ⱼ, ∂E/∂b⁽ᵏ⁾ᵢ = δ⁽ᵏ⁾ᵢ   parameter_gradients
        ∂E/∂p = (1/n) Σₜ Σᵢ (∂Eₜ/∂aᵢ) ∂g/∂p   (g(z; p): activation_parameter_gradients)

This package imports NumPy and SciPy only, never JAX.
"""

from .activations import ALIASES, CATALOGUE, Activation, activation, special
from .backprop import (
    EQUATIONS,
    Equations,
    Gradients,
    activation_parameter_gradients,
    as_used,
    backward,
    gradients,
    hidden_delta,
    hidden_delta_general,
    output_delta,
    parameter_gradients,
)
from .layers import (
    LAYER_KINDS,
    Dense,
    LayerForward,
    LayerGradients,
    LayerNetwork,
    delta_through,
    init_layer_network,
    layer_backward,
    layer_forward,
    layer_gradients,
)
from .losses import (
    BINARY_CROSS_ENTROPY,
    CROSS_ENTROPY,
    HUBER,
    LOSSES,
    MAE,
    MSE,
    NEGATIVE_LOG_LIKELIHOOD,
    Loss,
    mean_error,
)
from .network import AnyActivation, ForwardPass, Network, activate, check_input, forward, init_network, output_width
from .output_maps import LOG_SOFTMAX, OUTPUT_MAPS, SOFTMAX, OutputMap
from .parametric import PARAMETRIC, Parameter, ParametricActivation, parametric
from .vector_activations import VECTOR_ACTIVATIONS, VectorActivation, maxout, vector_activation

__all__ = [
    # activations: g and g′ side by side
    "Activation",
    "CATALOGUE",
    "ALIASES",
    "activation",
    "special",
    # losses: Eₜ and ∇ₐEₜ side by side, fused forms after softmax and sigmoid
    "Loss",
    "LOSSES",
    "MSE",
    "MAE",
    "HUBER",
    "BINARY_CROSS_ENTROPY",
    "CROSS_ENTROPY",
    "NEGATIVE_LOG_LIKELIHOOD",
    "mean_error",
    # maps that mix units, with J_gᵀv by hand: equations (1) and (2) in their general form
    "VectorActivation",
    "VECTOR_ACTIVATIONS",
    "vector_activation",
    "maxout",
    "OutputMap",
    "OUTPUT_MAPS",
    "SOFTMAX",
    "LOG_SOFTMAX",
    # activations with trainable parameters, with ∂g/∂z and ∂g/∂p by hand
    "ParametricActivation",
    "Parameter",
    "PARAMETRIC",
    "parametric",
    # the network and its forward pass
    "Network",
    "init_network",
    "ForwardPass",
    "forward",
    "check_input",
    "AnyActivation",
    "activate",
    "output_width",
    # the three equations and the backward pass
    "output_delta",
    "hidden_delta",
    "hidden_delta_general",
    "parameter_gradients",
    "activation_parameter_gradients",
    "as_used",
    "Equations",
    "EQUATIONS",
    "Gradients",
    "backward",
    "gradients",
    # networks as a sequence of layers: convolution, pooling, flatten, dense (manual.layers)
    "LayerNetwork",
    "LAYER_KINDS",
    "Dense",
    "init_layer_network",
    "LayerForward",
    "LayerGradients",
    "layer_forward",
    "delta_through",
    "layer_backward",
    "layer_gradients",
]
