"""Pooling and flatten written plainly in JAX; their ∂Eₜ/∂a from ``jax.vjp``, in float64.

NCHW, as ``manual.pooling``. ``max_pool`` and ``avg_pool`` are ``jax.lax.reduce_window`` over
the last two axes, padded with the reduction's identity (−∞ for max, 0 for add); ``avg_pool``
divides by the full window size, padding included. They are plain jnp functions:
``pool_vjp`` calls them with float64 switched on, as ``reference.plain`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

Pair = tuple[int, int]


def _reduce_windows(x, init: float, op, window: Pair, stride: Pair, padding: Pair):
    (wh, ww), (sh, sw), (ph, pw) = window, stride, padding
    return jax.lax.reduce_window(x, init, op, (1, 1, wh, ww), (1, 1, sh, sw), [(0, 0), (0, 0), (ph, ph), (pw, pw)])


def max_pool(x, window: Pair, stride: Pair, padding: Pair):
    """The maximum of every window, padding with −∞."""
    return _reduce_windows(x, -jnp.inf, jax.lax.max, window, stride, padding)


def avg_pool(x, window: Pair, stride: Pair, padding: Pair):
    """The sum of every window, padding with 0, over the window size wh·ww."""
    return _reduce_windows(x, 0.0, jax.lax.add, window, stride, padding) / (window[0] * window[1])


def flatten(x):
    """Each example's (C, H, W) as one row, in C order."""
    return jnp.reshape(x, (x.shape[0], -1))


def pool_vjp(pool: Callable, x: np.ndarray, delta: np.ndarray, *config) -> tuple[np.ndarray, np.ndarray]:
    """z = pool(x, *config) and δᵀ∂z/∂x = ∂Eₜ/∂x, by ``jax.vjp``, in float64, as NumPy arrays."""
    with jax.enable_x64(True):
        settings = tuple(tuple(int(v) for v in pair) for pair in config)  # hashable: part of the program
        z, grad = _pool_vjp(pool, jnp.asarray(x, jnp.float64), jnp.asarray(delta, jnp.float64), settings)
        return np.asarray(z), np.asarray(grad)


@partial(jax.jit, static_argnums=(0, 3))  # one program per pooling, shape and settings
def _pool_vjp(pool: Callable, x, delta, config: tuple):
    z, pullback = jax.vjp(lambda a: pool(a, *config), x)
    (grad,) = pullback(delta)
    return z, grad
