"""Deliberately wrong derivations: the negative controls of the property suite.

Each is the real code with one piece replaced by a mistake people make when they derive
backpropagation by hand. A property that does not reject its control could not fail, and a
property that cannot fail proves nothing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from manual import EQUATIONS, Activation, backprop


def _g_prime_at_a_output(grad_a_E, z_L, g_L):
    return grad_a_E * g_L.derivative(g_L.forward(z_L, np), np)


def _g_prime_at_a_hidden(theta_next, delta_next, z_k, g_k):
    return (delta_next @ theta_next) * g_k.derivative(g_k.forward(z_k, np), np)


G_PRIME_AT_A = dataclasses.replace(EQUATIONS, output_delta=_g_prime_at_a_output, hidden_delta=_g_prime_at_a_hidden)
"""g′ evaluated at the activation a = g(z) instead of at z, in (1) and (2)."""


def _missing_transpose(theta_next, delta_next, z_k, g_k):
    return (delta_next @ theta_next.T) * g_k.derivative(z_k, np)


MISSING_TRANSPOSE = dataclasses.replace(EQUATIONS, hidden_delta=_missing_transpose)
"""Θ⁽ᵏ⁺¹⁾ instead of (Θ⁽ᵏ⁺¹⁾)ᵀ in (2) (only computable when the layers are square)."""


def _bias_summed(delta_k, a_prev):
    grad_theta, _ = backprop.parameter_gradients(delta_k, a_prev)
    return grad_theta, delta_k.sum(axis=0)


BIAS_SUMMED = dataclasses.replace(EQUATIONS, parameter_gradients=_bias_summed)
"""The bias gradient summed over the examples instead of averaged."""


def _misaligned(delta_k, a_prev):
    _, grad_b = backprop.parameter_gradients(delta_k, a_prev)
    return np.roll(delta_k, 1, axis=0).T @ a_prev / delta_k.shape[0], grad_b


MISALIGNED_EXAMPLES = dataclasses.replace(EQUATIONS, parameter_gradients=_misaligned)
"""(3) pairs δ of example t with a of example t − 1 (rows shifted by one)."""


def off_by(g: Activation, relative: float = 1e-6) -> Activation:
    """g with its derivative off by a relative ``relative`` everywhere (same name and forward)."""
    derivative = g.derivative
    return dataclasses.replace(g, derivative=lambda z, xp: derivative(z, xp) * (1 + relative))


def fast_reference_with_padding_leak(network, x, y):
    """A padded reference whose padded rows leak into the mean: E averaged over n + 1 rows."""
    from reference import fast

    x1 = np.vstack([x, np.zeros((1, x.shape[1]), x.dtype)])
    y1 = np.vstack([y, np.zeros((1, y.shape[1]), y.dtype)])
    ref = fast.autodiff(network, x1, y1)
    n = x.shape[0]
    return dataclasses.replace(ref, delta=(None,) + tuple(d[:n] for d in ref.delta[1:]))


def _softmax_diagonal_only(z, v, xp):
    from manual.output_maps import softmax

    a = softmax(z, xp)
    return a * (1 - a) * v


def _output_delta_diagonal_softmax(grad_a_E, z_L, g_L):
    from manual import OutputMap, backprop

    if isinstance(g_L, OutputMap) and g_L.name == "softmax":
        return _softmax_diagonal_only(z_L, grad_a_E, np)  # (1) without the off-diagonal terms
    return backprop.output_delta(grad_a_E, z_L, g_L)


SOFTMAX_WITHOUT_OFF_DIAGONAL = dataclasses.replace(EQUATIONS, output_delta=_output_delta_diagonal_softmax)
"""Equation (1) through softmax with a Jacobian that has lost its off-diagonal terms."""


def softmax_map_without_off_diagonal():
    from manual import SOFTMAX

    return dataclasses.replace(SOFTMAX, vjp=_softmax_diagonal_only)


def loss_with_gradient(loss, gradient):
    """``loss`` with its hand gradient replaced."""
    return dataclasses.replace(loss, gradient=gradient)


def loss_with_fused_delta(loss, fused_delta):
    """``loss`` with its fused δ⁽ᴸ⁾ replaced (the fused error, which autodiff uses, is kept)."""
    return dataclasses.replace(loss, fused_delta=fused_delta)


# --- activations with parameters, and maps that mix units ------------------------------------


def parameter_partial_off_by(g, name: str, relative: float = 1e-6):
    """A ``ParametricActivation`` whose ∂g/∂p for ``name`` is off by a relative ``relative``."""
    partials = g.parameter_derivatives

    def wrong(z, p, xp):
        out = dict(partials(z, p, xp))
        out[name] = out[name] * (1 + relative)
        return out

    return dataclasses.replace(g, parameter_derivatives=wrong)


def _parameters_summed_over_units(grad_a, z_k, g_k, p_k):
    n = grad_a.shape[0]
    partials = g_k.parameter_derivatives(z_k, p_k, np)
    grads = {}
    for name, value in p_k.items():
        terms = grad_a * partials[name]
        # a per-unit parameter reduced over the units instead of the examples: the shape is
        # right only when the batch is as large as the layer is wide
        grads[name] = (terms.sum() if np.ndim(value) == 0 else terms.sum(axis=1)) / n
    return grads


PARAMETERS_WRONG_AXIS = dataclasses.replace(EQUATIONS, activation_parameter_gradients=_parameters_summed_over_units)
"""A per-unit parameter's gradient summed over the wrong axis (units instead of examples)."""


def _per_unit_treated_as_shared(grad_a, z_k, g_k, p_k):
    grads = backprop.activation_parameter_gradients(grad_a, z_k, g_k, p_k)
    return {name: np.full(np.shape(p_k[name]), np.sum(v)) for name, v in grads.items()}


PER_UNIT_AS_SHARED = dataclasses.replace(EQUATIONS, activation_parameter_gradients=_per_unit_treated_as_shared)
"""Every unit of a per-unit parameter given the layer's total gradient (as if it were shared)."""


def halves_swapped(g):
    """A GLU whose Jᵀv hands each half the other half's gradient (the gate taken to be the
    first half, as some libraries write it, with this catalogue's forward)."""
    vjp = g.vjp

    def wrong(z, v, xp):
        right = vjp(z, v, xp)
        m = right.shape[-1] // 2
        return xp.concatenate([right[..., m:], right[..., :m]], axis=-1)

    return dataclasses.replace(g, vjp=wrong)


def one_hot_at_ties(g):
    """Maxout whose Jᵀv sends a group's whole gradient to its first maximum, where ``jax.grad``
    splits it equally among tied maxima."""
    k = g.group

    def wrong(z, v, xp):
        grouped = z.reshape(z.shape[:-1] + (z.shape[-1] // k, k))
        first = np.argmax(grouped, axis=-1)
        one_hot = (np.arange(k) == first[..., None]).astype(z.dtype)
        return (one_hot * v[..., None]).reshape(z.shape)

    return dataclasses.replace(g, vjp=wrong)


def _diagonal_only(theta_next, delta_next, z_k, g_k):
    from manual import SOFTMAX

    back = delta_next @ theta_next
    if g_k.mixes == "row" and g_k.name == SOFTMAX.name:
        return _softmax_diagonal_only(z_k, back, np)  # (2) with J_g's diagonal only
    return backprop.hidden_delta_general(theta_next, delta_next, z_k, g_k)


HIDDEN_JACOBIAN_DIAGONAL = dataclasses.replace(EQUATIONS, hidden_delta_general=_diagonal_only)
"""Equation (2) through a hidden softmax with J_g replaced by its diagonal a ⊙ (1 − a)."""


def _parameters_from_delta(grad_a, z_k, g_k, p_k):
    # δ⁽ᵏ⁾ = ∂Eₜ/∂a⁽ᵏ⁾ ⊙ ∂g/∂z: the layer's own delta, one factor too far down the chain
    delta_k = grad_a * g_k.derivative(z_k, p_k, np)
    return backprop.activation_parameter_gradients(delta_k, z_k, g_k, p_k)


PARAMETERS_FROM_DELTA = dataclasses.replace(EQUATIONS, activation_parameter_gradients=_parameters_from_delta)
"""∂E/∂p⁽ᵏ⁾ = (1/n) Σ δ⁽ᵏ⁾ ∂g/∂p: the layer's own δ⁽ᵏ⁾ = ∂Eₜ/∂a⁽ᵏ⁾ ⊙ ∂g/∂z in place of
∂Eₜ/∂a⁽ᵏ⁾ (= δ⁽ᵏ⁺¹⁾Θ⁽ᵏ⁺¹⁾ in a hidden layer), as if p entered through z."""
