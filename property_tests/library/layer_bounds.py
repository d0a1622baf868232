"""The running rounding-error analysis through each layer kind, in units of u (the reasoning of
``tolerances``, first order): for a layer's output, the size of the terms it is computed from
(M, or Z in the forward pass), its running error bound E, and autodiff's noise N carried along.

Three questions per kind, all on autodiff's values (float64):

    forward_bound(layer, P, A, EA, a)         (Z, EZ) of z from (A, EA) of its input a
    backward_bound(layer, P, M, E, N, a, A, EA)   (M, E, N) of (∂z/∂a)ᵀδ from those of δ
    gradient_bounds(layer, P, M, E, N, a, A, EA)  {parameter: (M, E, N)} of equation (3)

Linear kinds (convolution, dense, average pooling, flatten) answer with their kind's own
operations on absolute values: the terms of a linear map applied to sizes are the sizes of its
terms, and its rounding adds (terms + 1) times that. The operations are those of the kind's
registered class (``manual.layers.LAYER_KINDS``), never a subclass's: the derivation under test
may be a negative control's or a mutant's, and a bound taken from it would move with its
mistake (or be NaN with it, and blame the checker). Max pooling selects: no rounding, and an
error at most the largest in its window. The norms and the residual block are not linear; each
has its own first-order analysis below, written from its formulas (docs/normalization.md).
"""

from __future__ import annotations

import math

import numpy as np

from manual.layers import LAYER_KINDS, kind_of
from property_tests.library import tolerances as tol


def absolute(params: dict) -> dict:
    return {name: np.abs(np.asarray(v, np.float64)) for name, v in params.items()}


def without_bias(params: dict) -> dict:
    return {name: (np.zeros_like(v) if name in ("b", "beta") else v) for name, v in params.items()}


LINEAR = ("conv2d", "dense", "avg_pool", "max_pool", "flatten")


def forward_terms(layer, params: dict) -> int:
    """How many rounded operations make one element of a linear layer's z: the products and
    sums of a convolution or a dense layer with its bias, a window's sum and its division, none
    for max pooling (a selection) and flatten (a move); for the others, the statistics' count."""
    kind = kind_of(layer)
    if kind in ("conv2d", "dense", "residual"):
        weights = params["W"] if kind == "conv2d" else params["theta"]
        return math.prod(weights.shape[1:]) + 1
    if kind == "avg_pool":
        return layer.window[0] * layer.window[1] + 1
    if kind in ("layer_norm", "rms_norm", "batch_norm"):
        return int(params["gamma"].shape[0]) + 6
    return 0


def backward_terms(layer, params: dict) -> int:
    """How many products at most are summed into one element of the layer's ``input_delta``:
    every output a weight connects to an input (a convolution: C_out·kh·kw; dense: its units),
    every window holding an input (pooling: at most wh·ww windows), a norm's mean over its
    group and its own few operations."""
    kind = kind_of(layer)
    if kind == "conv2d":
        return int(params["W"].shape[0] * params["W"].shape[2] * params["W"].shape[3]) + 1
    if kind in ("dense", "residual"):
        return int(params["theta"].shape[0]) + 2
    if kind in ("avg_pool", "max_pool"):
        return layer.window[0] * layer.window[1] + 1
    if kind in ("layer_norm", "rms_norm", "batch_norm"):
        return int(params["gamma"].shape[0]) + 6
    return 0


def gradient_terms(layer, delta: np.ndarray) -> int:
    """How many products equation (3) sums into one gradient: every example and every position."""
    return math.prod(delta.shape[:1] + delta.shape[2:])


# --- linear kinds -------------------------------------------------------------------------------


def _own(layer, name: str):
    """The method ``name`` of the registered class of the layer's kind, to call on the layer;
    without the arguments' checks where the class states them apart (``manual.conv.checks_input``):
    sizes of checked values fit and are finite."""
    method = getattr(LAYER_KINDS[kind_of(layer)], name)
    return getattr(method, "__wrapped__", method)


def _linear_forward(layer, P, A, EA, a):
    forward = _own(layer, "forward")
    Z = forward(layer, A, P)
    return Z, forward_terms(layer, P) * Z + forward(layer, EA, without_bias(P))


def _linear_backward(layer, P, M, E, N, a, A, EA):
    input_delta = _own(layer, "input_delta")

    def back(v):
        return input_delta(layer, v, a, P)

    M_back = back(M)
    # A linear map takes zeros to zeros (each equation on its own has no running error E, and
    # autodiff's noise N is zero without a noisy activation above): not computed.
    E_back, N_back = (back(v) if v.any() else np.zeros_like(M_back) for v in (E, N))
    return M_back, E_back + backward_terms(layer, P) * M_back, N_back


def _linear_gradients(layer, P, M, E, N, a, A, EA):
    parameter_gradients = _own(layer, "parameter_gradients")

    def gradients(delta, a_prev):
        return parameter_gradients(layer, delta, a_prev, P)

    Mp = gradients(M, A)
    zeros = {name: np.zeros_like(v) for name, v in Mp.items()}
    Ep_delta = gradients(E, A) if E.any() else zeros
    Ep_a = gradients(M, EA) if EA.any() else zeros
    Np = gradients(N, A) if N.any() else zeros
    count = gradient_terms(layer, M)
    return {
        name: (Mp[name], Ep_delta[name] + (Ep_a[name] if name != "b" else 0) + (count + 1) * Mp[name], Np[name])
        for name in Mp
    }


# --- the norms ----------------------------------------------------------------------------------


def _statistics(layer, a, A, EA):
    """x̂, the divisor s (σ or r), and their running errors Ex̂, Es, from a's values and bounds."""
    ax, eps = layer.axis, layer.eps
    m = a.shape[ax]

    def mean(v):
        return v.mean(axis=ax, keepdims=True)

    if kind_of(layer) == "rms_norm":
        d, Ed = a, EA
    else:
        mu = mean(a)
        E_mu = mean(EA) + (m + 1) * mean(A)
        d = a - mu
        Ed = EA + E_mu + A + mean(A)  # the subtraction rounds relative to |x| + |μ|
    v = mean(d * d)
    squares = A * A if kind_of(layer) == "rms_norm" else d * d  # the terms of the mean of squares
    Ev = mean(2 * np.abs(d) * Ed) + (m + 2) * mean(squares)
    s = np.sqrt(v + eps)
    Es = (Ev + v + eps) / (2 * s) + s  # + ε, then the square root: one rounding each
    x_hat = d / s
    E_x_hat = Ed / s + np.abs(x_hat) * Es / s + np.abs(x_hat)
    return x_hat, s, E_x_hat, Es, mean


def _norm_forward(layer, P, A, EA, a):
    x_hat, _, E_x_hat, _, _ = _statistics(layer, a, A, EA)
    gamma, beta = P["gamma"], P.get("beta", 0.0)
    Z = gamma * np.abs(x_hat) + beta
    return Z, gamma * E_x_hat + 2 * Z


def _norm_backward(layer, P, M, E, N, a, A, EA):
    x_hat, s, E_x_hat, Es, mean = _statistics(layer, a, A, EA)
    x_abs, gamma = np.abs(x_hat), P["gamma"]
    centred = kind_of(layer) != "rms_norm"

    def through(v):  # the backward formula on sizes: |g| + mean|g| + |x̂| mean(|g||x̂|), over s
        g = gamma * v
        return (g + (mean(g) if centred else 0) + x_abs * mean(g * x_abs)) / s

    S = through(M)
    E_back = (
        through(E)
        + (backward_terms(layer, P) * S)
        + S * Es / s
        + (E_x_hat * mean(gamma * M * x_abs) + x_abs * mean(gamma * M * E_x_hat)) / s
    )
    return S, E_back, through(N)


def _norm_gradients(layer, P, M, E, N, a, A, EA):
    x_hat, _, E_x_hat, _, _ = _statistics(layer, a, A, EA)
    n, x_abs = M.shape[0], np.abs(x_hat)
    out = {
        "gamma": (
            (M * x_abs).sum(axis=0) / n,
            (E * x_abs + M * E_x_hat).sum(axis=0) / n + (n + 1) * (M * x_abs).sum(axis=0) / n,
            (N * x_abs).sum(axis=0) / n,
        )
    }
    if "beta" in P:
        out["beta"] = (M.sum(axis=0) / n, E.sum(axis=0) / n + (n + 1) * M.sum(axis=0) / n, N.sum(axis=0) / n)
    return out


# --- the residual block --------------------------------------------------------------------------


def _residual_parts(layer, P, a, A, EA):
    theta, theta_abs = P["theta_signed"], P["theta"]
    u = a @ theta.T + P["b_signed"]
    U = A @ theta_abs.T + P["b"]
    EU = (theta.shape[1] + 1) * U + EA @ theta_abs.T
    from property_tests.library.compare import scales  # autodiff's slope and noise of g, measured once per activation

    f, eta = scales(layer.g, u)
    return u, U, EU, f, eta, theta_abs


def _residual_forward(layer, P, A, EA, a):
    u, U, EU, f, _, _ = _residual_parts(layer, P, a, A, EA)
    H = np.abs(layer.g.forward(u, np)) + f * np.abs(u)
    Z = A + H
    return Z, EA + tol.ELEMENTARY_ULPS * H + f * EU + Z


def _residual_inner_delta(layer, P, M, E, N, a, A, EA):
    u, _, EU, f, eta, theta_abs = _residual_parts(layer, P, a, A, EA)
    Mu = M * f
    Eu = E * f + M * (tol.derivative_bound(f, u) + tol.SECOND_DERIVATIVE_RATIO * f * EU)
    return Mu, Eu, N * f + M * eta, theta_abs


def _residual_backward(layer, P, M, E, N, a, A, EA):
    Mu, Eu, Nu, theta_abs = _residual_inner_delta(layer, P, M, E, N, a, A, EA)
    M_back = M + Mu @ theta_abs
    return M_back, E + Eu @ theta_abs + backward_terms(layer, P) * M_back, N + Nu @ theta_abs


def _residual_gradients(layer, P, M, E, N, a, A, EA):
    Mu, Eu, Nu, _ = _residual_inner_delta(layer, P, M, E, N, a, A, EA)
    n = M.shape[0]
    return {
        "theta": (Mu.T @ A / n, (Eu.T @ A + Mu.T @ EA + (n + 1) * Mu.T @ A) / n, Nu.T @ A / n),
        "b": (Mu.sum(axis=0) / n, (Eu.sum(axis=0) + (n + 1) * Mu.sum(axis=0)) / n, Nu.sum(axis=0) / n),
    }


_BY_KIND = {
    **dict.fromkeys(LINEAR, (_linear_forward, _linear_backward, _linear_gradients)),
    **dict.fromkeys(("layer_norm", "rms_norm", "batch_norm"), (_norm_forward, _norm_backward, _norm_gradients)),
    "residual": (_residual_forward, _residual_backward, _residual_gradients),
}
"""The three answers of every layer kind of ``manual.layers.LAYER_KINDS``."""


def _sized(layer, params: dict) -> dict:
    """|params| in float64; the residual block also needs Θ and b with their signs (for u)."""
    P = absolute(params)
    if kind_of(layer) == "residual":
        P["theta_signed"], P["b_signed"] = (np.asarray(params[k], np.float64) for k in ("theta", "b"))
    return P


def forward_bound(layer, params, A, EA, a):
    return _BY_KIND[kind_of(layer)][0](layer, _sized(layer, params), A, EA, a)


def backward_bound(layer, params, M, E, N, a, A, EA):
    return _BY_KIND[kind_of(layer)][1](layer, _sized(layer, params), M, E, N, a, A, EA)


def gradient_bounds(layer, params, M, E, N, a, A, EA) -> dict:
    return _BY_KIND[kind_of(layer)][2](layer, _sized(layer, params), M, E, N, a, A, EA)
