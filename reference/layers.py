"""The oracle for networks of layers (convolution, pooling, flatten, dense): ``jax.grad`` of a
plainly written forward pass, in float64, deltas as ∂E/∂z.

Each layer kind's forward pass is written here with JAX's own operations
(``lax.conv_general_dilated`` at HIGHEST precision, ``lax.reduce_window``, a reshape, a matrix
product), reading only the layer's settings (``kernel``, ``stride``, …) and its kind's name,
never its methods: nothing of ``manual``'s backward code is called. Activations and losses are
evaluated by their ``forward``/``error`` with ``jnp``, as in ``reference.plain``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from manual import MSE, Activation, Loss, VectorActivation
from manual.layers import LAYER_KINDS, LayerNetwork, kind_of

from . import stored
from .conv import _z as conv_z
from .plain import stand_in
from .pooling import avg_pool, flatten, max_pool


def _dense(a, params, layer):
    return a @ params["theta"].T + params["b"]


def _conv2d(a, params, layer):
    return conv_z(a, params["W"], params["b"], layer.stride, layer.padding, layer.dilation)


def _layer_norm(a, params, layer, axis=1):
    mu = jnp.mean(a, axis=axis, keepdims=True)
    var = jnp.mean((a - mu) ** 2, axis=axis, keepdims=True)
    return params["gamma"] * (a - mu) / jnp.sqrt(var + layer.eps) + params.get("beta", 0.0)


def _rms_norm(a, params, layer):
    return params["gamma"] * a / jnp.sqrt(jnp.mean(a**2, axis=1, keepdims=True) + layer.eps)


FORWARD = {
    "conv2d": _conv2d,
    "max_pool": lambda a, params, layer: max_pool(a, layer.window, layer.stride, layer.padding),
    "avg_pool": lambda a, params, layer: avg_pool(a, layer.window, layer.stride, layer.padding),
    "flatten": lambda a, params, layer: flatten(a),
    "dense": _dense,
    "layer_norm": _layer_norm,
    "rms_norm": _rms_norm,
    "batch_norm": lambda a, params, layer: _layer_norm(a, params, layer, axis=0),
    "residual": lambda a, params, layer: a + layer.g.forward(_dense(a, params, layer), jnp),
}
"""z⁽ᵏ⁾ of each layer kind, written with JAX (one line per kind of ``manual.layers.LAYER_KINDS``)."""


@dataclass(frozen=True)
class LayerReference:
    """Autodiff's values in float64; index k is layer k, index 0 ``None`` (``a[0]`` is x).
    ``delta[k]`` is ∂Eₜ/∂z⁽ᵏ⁾ per example (n · ∂E/∂z⁽ᵏ⁾); ``params[k]`` the gradients by name."""

    z: tuple
    a: tuple
    delta: tuple
    params: tuple
    error: float


def _error(params, offset, x, y, layers, g, loss):
    """E = (1/n) Σₜ Eₜ, with a zero ``offset`` added to every z⁽ᵏ⁾ so that ∂E/∂offset = ∂E/∂z."""
    z, a = [None], [x]
    for k in range(1, len(layers)):
        z.append(FORWARD[kind_of(layers[k])](a[k - 1], params[k], layers[k]) + offset[k])
        a.append(z[k] if g[k] is None else g[k].forward(z[k], jnp))
    if g[-1] is not None and loss.fuses(g[-1]):
        return jnp.mean(loss.fused_error(z[-1], y, jnp)), (z, a)
    return jnp.mean(loss.error(a[-1], y, jnp)), (z, a)


# One compilation per architecture: the layers, activations and loss are part of the program.
# Nearly every architecture is run once or a few times, so LLVM's optimisations, which do not
# change what is computed, are skipped (as in ``reference.conv``): compiling takes half as long.
OPTIONS: dict = {"compiler_options": {"xla_backend_optimization_level": 0}}
_value_and_grad = jax.value_and_grad(_error, argnums=(0, 1), has_aux=True)

KEEP = 512
"""Architectures whose traced program is kept on disk (``reference.stored``, most recently used
first). A run meets the same fixed networks again (``verify``'s extremes, the mutant hunts,
``explain``) and Hypothesis's simplest draws; 60 to 70 are met in a run of the quick test tier."""


@lru_cache(maxsize=256)  # a long run meets thousands of architectures: the recent ones are kept
def _program(layers: tuple, g: tuple, loss: Loss):
    """The oracle of one architecture, compiled once per process (while among the last 256 met);
    traced once and read back in later runs when every part of it is fixed by ``manual``'s and
    this package's code alone."""
    jitted = jax.jit(partial(_value_and_grad, layers=layers, g=g, loss=loss), **OPTIONS)
    parts = _describe(layers)
    if parts is None:
        return jitted
    entries = [stand_in(entry) for entry in g[1:] if entry is not None] + [loss]
    names = ("layers", parts, tuple(None if entry is None else stand_in(entry).name for entry in g), loss.name)
    return stored.kept(jitted, names, entries, shelf="layers", keep=KEEP, **OPTIONS)


def _describe(layers: tuple) -> tuple | None:
    """The layers by kind and settings, activations by name (the same in every process), or
    ``None`` when a layer is of no registered kind, has settings its kind does not have, or
    holds an activation that is not a table entry as imported (``stand_in``). The program reads
    a layer's kind and settings only (``FORWARD``), so a subclass that changes a method alone
    (a negative control's mistake in the backward pass) has its kind's program."""
    described = []
    for layer in layers[1:]:
        try:
            kind = kind_of(layer)
        except ValueError:
            return None
        if _names(layer) != _names(LAYER_KINDS[kind]):
            return None
        settings = []
        for field in fields(layer):
            value = getattr(layer, field.name)
            if isinstance(value, (Activation, VectorActivation)):
                value = stand_in(value)
                if not stored.is_table_entry(value):
                    return None
                value = value.name
            settings.append((field.name, repr(value)))
        described.append((kind, tuple(settings)))
    return tuple(described)


def _names(layer_or_kind) -> list[str]:
    return [field.name for field in fields(layer_or_kind)]


def layer_autodiff(net: LayerNetwork, x: np.ndarray, y: np.ndarray, *, loss: Loss = MSE) -> LayerReference:
    """Every z, a, δ = ∂E/∂z and ∂E/∂(parameter) of a layer network from ``jax.grad``, in float64."""
    with jax.enable_x64(True):
        params = [None] + [{name: jnp.asarray(v, jnp.float64) for name, v in p.items()} for p in net.params[1:]]
        n = x.shape[0]
        offset = [None] + [np.zeros((n, *shape)) for shape in net.shapes[1:]]  # NumPy: no program compiled for it
        program = _program(net.layers, net.g, loss)
        (error, (z, a)), (d_params, d_offset) = program(
            params, offset, jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
        )
        return LayerReference(
            z=_numpy(z),
            a=_numpy(a),
            delta=(None,) + tuple(n * np.asarray(d) for d in d_offset[1:]),
            params=(None,) + tuple({name: np.asarray(v) for name, v in p.items()} for p in d_params[1:]),
            error=float(error),
        )


def _numpy(values):
    return tuple(None if v is None else np.asarray(v) for v in values)
