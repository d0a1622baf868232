"""The oracle for ``manual.conv``: the same convolution by ``jax.lax.conv_general_dilated``, and
its gradients by ``jax.vjp``, in float64. Inputs NCHW, kernels OIHW, outputs NCHW; like every
deep-learning library, lax computes a cross-correlation (the kernel is not flipped). Nothing here
imports ``manual``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

Pair = tuple[int, int]


def conv2d(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, stride: Pair = (1, 1), padding: Pair = (0, 0), dilation: Pair = (1, 1)
) -> np.ndarray:
    """z = W ⋆ x + b: x (n, C_in, H, W) padded by ``padding`` zeros on both sides, kernels
    W (C_out, C_in, kh, kw) with taps ``dilation`` apart, moved ``stride`` at a time; in float64."""
    with jax.enable_x64(True):
        return np.asarray(_conv2d(*_float64(x, W, b), *_static(stride, padding, dilation)))


def conv2d_vjp(
    x: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    delta: np.ndarray,
    stride: Pair = (1, 1),
    padding: Pair = (0, 0),
    dilation: Pair = (1, 1),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(∂/∂x, ∂/∂W, ∂/∂b) of Σ z·δ, z = ``conv2d(x, W, b, …)``, from ``jax.vjp`` in float64.
    Summed over the examples, not averaged: with δ = ∂Eₜ/∂z per example, ∂/∂x is ∂Eₜ/∂x per
    example and ∂/∂W, ∂/∂b are n times the batch gradients of E = (1/n) Σₜ Eₜ."""
    with jax.enable_x64(True):
        d_x, d_W, d_b = _conv2d_vjp(*_float64(x, W, b, delta), *_static(stride, padding, dilation))
        return np.asarray(d_x), np.asarray(d_W), np.asarray(d_b)


def _z(x, W, b, stride, padding, dilation):
    z = jax.lax.conv_general_dilated(
        x,
        W,
        window_strides=stride,
        padding=[(p, p) for p in padding],
        rhs_dilation=dilation,
        dimension_numbers=("NCHW", "OIHW", "NCHW"),
        precision=jax.lax.Precision.HIGHEST,
    )
    return z + b[None, :, None, None]


def _vjp(x, W, b, delta, stride, padding, dilation):
    _, pullback = jax.vjp(lambda x_, W_, b_: _z(x_, W_, b_, stride, padding, dilation), x, W, b)
    return pullback(delta)


# One compilation per shape and configuration (stride, padding and dilation are static).
# Tests draw a new shape nearly every example and run it once, so LLVM's optimisations,
# which do not change what is computed, are skipped: compiling takes about half as long.
_FAST_TO_COMPILE = {"xla_backend_optimization_level": 0}
_conv2d = jax.jit(_z, static_argnums=(3, 4, 5), compiler_options=_FAST_TO_COMPILE)
_conv2d_vjp = jax.jit(_vjp, static_argnums=(4, 5, 6), compiler_options=_FAST_TO_COMPILE)


def _float64(*arrays):
    return tuple(jnp.asarray(np.asarray(a, np.float64)) for a in arrays)


def _static(*pairs):
    return tuple(tuple(int(v) for v in pair) for pair in pairs)
