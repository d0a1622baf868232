"""The oracle: ``jax.grad`` of the plain forward pass, one network at a time; deltas as ∂E/∂z.

This is the obviously-correct version. It compiles once per architecture (0.1–0.7 s), so the
property suite uses ``reference.fast`` for volume and checks it against this one. A copy of a
table entry that differs only in its hand derivatives is differentiated as that entry
(``stand_in``): autodiff reads the forward alone, and the copy needs no program of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from manual import (
    CATALOGUE,
    MSE,
    OUTPUT_MAPS,
    PARAMETRIC,
    VECTOR_ACTIVATIONS,
    Activation,
    Loss,
    Network,
    ParametricActivation,
)


@dataclass(frozen=True)
class Reference:
    """Autodiff's values in float64; index k is layer k, index 0 ``None`` (``a[0]`` is x).

    ``delta[k]`` has one row per example: row t is ∂Eₜ/∂z⁽ᵏ⁾₍ₜ₎ = n · ∂E/∂z⁽ᵏ⁾₍ₜ₎.
    """

    z: tuple
    a: tuple
    delta: tuple
    theta: tuple
    b: tuple
    error: float
    p: tuple = ()
    """∂E/∂p⁽ᵏ⁾ for every layer whose activation has parameters (a dict by name), else ``None``."""


HAND_FIELDS = frozenset(
    {"name", "derivative", "parameter_derivatives", "vjp", "formula", "kinks", "kink_convention", "paper"}
)
"""What an activation carries that autodiff never reads: its name, its hand derivatives and its
documentation. The rest (the forward, a map's layout, the parameters) makes the program."""


def _program_fields(g) -> tuple:
    return (type(g), *(getattr(g, f.name) for f in fields(g) if f.name not in HAND_FIELDS))


@cache
def _table_entries() -> dict:
    tables = (CATALOGUE, OUTPUT_MAPS, PARAMETRIC, VECTOR_ACTIVATIONS)
    return {_program_fields(g): g for table in tables for g in table.values()}


def stand_in(g):
    """The entry of manual's tables that autodiff cannot tell from g: the one with g's own
    forward function and layout, differing at most in name, hand derivative and docs (a copy of
    an entry with a changed derivative, as the negative controls make); else g itself. The
    oracle differentiates forwards only, so the two give the same program, and such a copy
    needs no compilation of its own."""
    try:
        return _table_entries().get(_program_fields(g), g)
    except TypeError:  # a field that cannot be hashed (a user's list of parameters): g's own
        return g


def _error(theta, b, p, offset, x, y, g, loss):
    """E = (1/n) Σₜ Eₜ, with a zero ``offset`` added to every z⁽ᵏ⁾ so that ∂E/∂offset = ∂E/∂z.
    After softmax or sigmoid, cross-entropy is taken from the logits (its fused form)."""
    z, a = [None], [x]
    for k in range(1, len(theta)):
        z.append(a[k - 1] @ theta[k].T + b[k] + offset[k])
        if isinstance(g[k], ParametricActivation):
            a.append(g[k].forward(z[k], p[k], jnp))
        else:
            a.append(g[k].forward(z[k], jnp))
    if loss.fuses(g[-1]):
        return jnp.mean(loss.fused_error(z[-1], y, jnp)), (z, a)
    return jnp.mean(loss.error(a[-1], y, jnp)), (z, a)


# One compilation per architecture: the activations and the loss are static (part of the program).
_value_and_grad = jax.jit(jax.value_and_grad(_error, argnums=(0, 1, 2, 3), has_aux=True), static_argnums=(6, 7))


def autodiff(network: Network, x: np.ndarray, y: np.ndarray, *, loss: Loss = MSE) -> Reference:
    """Every z, a, δ = ∂E/∂z, ∂E/∂Θ, ∂E/∂b and ∂E/∂p from ``jax.grad``, in float64."""
    with jax.enable_x64(True):
        weights = [jnp.asarray(t, jnp.float64) for t in network.theta[1:]]
        theta = [None, *weights]
        b = [None] + [jnp.asarray(v, jnp.float64) for v in network.b[1:]]
        p = [None if q is None else {name: jnp.asarray(v, jnp.float64) for name, v in q.items()} for q in network.p]
        x64, y64 = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
        n = x.shape[0]
        offset = [None, *(np.zeros((n, t.shape[0])) for t in weights)]  # NumPy: no program compiled for it
        g = tuple(None if g_k is None else stand_in(g_k) for g_k in network.g)
        (error, (z, a)), (d_theta, d_b, d_p, d_offset) = _value_and_grad(theta, b, p, offset, x64, y64, g, loss)
        return Reference(
            z=_numpy(z),
            a=_numpy(a),
            delta=(None,) + tuple(n * np.asarray(d) for d in d_offset[1:]),
            theta=_numpy(d_theta),
            b=_numpy(d_b),
            error=float(error),
            p=tuple(None if q is None else {name: np.asarray(v) for name, v in q.items()} for q in d_p),
        )


def derivative(g: Activation, z: np.ndarray) -> np.ndarray:
    """g′(z) elementwise, as ``jax.grad`` of ``g.forward`` gives it, in float64."""
    return derivatives((g,), z)[0]


LOSS_ROWS = 512
"""``loss_gradient`` pads a and y to at least this many rows (whole powers of two beyond): JAX
caches each operation per shape, and the padded shapes recur."""


def loss_gradient(loss: Loss, a: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """wₜ·∇ₐEₜ for every example t (w = 1: ∇ₐEₜ itself), from ``jax.vjp`` of ``loss.error`` in
    float64, op by op rather than compiled: a user's loss is new to JAX, and compiling it for
    each shape costs more than running it on many points. Padded rows repeat the first example
    with w = 0."""
    rows = max(LOSS_ROWS, _rows(a))
    with jax.enable_x64(True):
        return np.asarray(_weighted(loss, *_padded(a, y, w, rows)))[: a.shape[0]]


def loss_gradient_compiled(loss: Loss, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``loss_gradient`` for a few examples (a network's batch), from a program compiled once
    per loss and shape (rows padded to a power of two, at least 64, so that a network's width
    alone makes the shape): the same values, for many small calls."""
    with jax.enable_x64(True):
        return np.asarray(_weighted_compiled(loss)(*_padded(a, y, None, max(64, _rows(a)))))[: a.shape[0]]


def _rows(a: np.ndarray) -> int:
    return 1 << (a.shape[0] - 1).bit_length()


def _padded(a, y, w, rows: int) -> tuple:
    a, y = np.asarray(a, np.float64), np.asarray(y, np.float64)
    n = a.shape[0]
    w = np.ones(n) if w is None else np.asarray(w, np.float64)

    def pad(v: np.ndarray, fill: float | None) -> np.ndarray:
        extra = np.repeat(v[:1], rows - n, axis=0) if fill is None else np.full((rows - n,) + v.shape[1:], fill)
        return np.concatenate([v, extra])

    return pad(a, None), pad(y, None), pad(w, 0.0)


def _weighted(loss: Loss, a, y, w):
    _, vjp = jax.vjp(lambda a_: loss.error(a_, y, jnp), a)
    return vjp(w)[0]


@cache
def _weighted_compiled(loss: Loss):
    return jax.jit(partial(_weighted, loss))


CHUNK = 4096
"""Points per call of the compiled g′ program: z is flattened, padded with its first value to
whole chunks and fed one chunk at a time, so that one compilation serves every size of z."""


def derivatives(gs: Sequence[Activation], z: np.ndarray) -> list[np.ndarray]:
    """``derivative(g, z)`` for every g of ``gs``, from one compiled program (compiling one
    program per activation costs some 0.1 s each; the catalogue's 22 together take 0.6 s).
    Catalogue entries (``stand_in``) on one chunk of z come from the one program of the whole
    catalogue, so that a process compiles it once, whichever entries it asks for; on more, the
    other entries' work would cost more than a compilation, and gs get a program of their own."""
    gs = tuple(stand_in(g) for g in gs)
    flat = np.asarray(z, np.float64).ravel()
    if flat.size == 0:
        return [np.zeros(np.shape(z)) for _ in gs]
    catalogue = tuple(stand_in(g) for g in CATALOGUE.values())  # an entry swapped for a copy: the entry
    program = catalogue if flat.size <= CHUNK and all(g in catalogue for g in gs) else gs
    chunks = -(-flat.size // CHUNK)
    padded = np.concatenate([flat, np.full(chunks * CHUNK - flat.size, flat[0])]).reshape(chunks, CHUNK)
    with jax.enable_x64(True):
        parts = [jax.device_get(_g_primes(jnp.asarray(chunk), program)) for chunk in padded]
    values = {g: np.concatenate([part[i] for part in parts]) for i, g in enumerate(program)}
    return [values[g][: flat.size].reshape(np.shape(z)) for g in gs]


@partial(jax.jit, static_argnums=1)
def _g_primes(z, gs):
    return [jax.vmap(jax.grad(lambda s, g=g: g.forward(s, jnp)))(z) for g in gs]


def partials(g: ParametricActivation, z: np.ndarray, p: dict) -> tuple[np.ndarray, dict]:
    """∂g/∂z and every ∂g/∂p elementwise, from ``jax.grad`` in float64: each parameter is
    given one copy per element of z, so that its gradient is the elementwise partial."""
    with jax.enable_x64(True):
        z64 = jnp.asarray(z, jnp.float64)
        spread = {name: jnp.broadcast_to(jnp.asarray(v, jnp.float64), z64.shape) for name, v in p.items()}
        dz, dp = _partials(z64, spread, stand_in(g))
        return np.asarray(dz), {name: np.asarray(v) for name, v in dp.items()}


@partial(jax.jit, static_argnums=2)
def _partials(z, p, g):
    return jax.grad(lambda z_, p_: jnp.sum(g.forward(z_, p_, jnp)), argnums=(0, 1))(z, p)


def vjp(g, z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """J_g(z)ᵀv row by row, from ``jax.vjp`` of g's forward, in float64."""
    with jax.enable_x64(True):
        return np.asarray(_vjp(jnp.asarray(z, jnp.float64), jnp.asarray(v, jnp.float64), stand_in(g)))


@partial(jax.jit, static_argnums=2)
def _vjp(z, v, g):
    _, pullback = jax.vjp(lambda z_: g.forward(z_, jnp), z)
    return pullback(v)[0]


def _numpy(values):
    return tuple(None if v is None else np.asarray(v) for v in values)


JAX_NN = {
    "identity": jax.nn.identity,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "celu": jax.nn.celu,
    "selu": jax.nn.selu,
    "softplus": jax.nn.softplus,
    "silu": jax.nn.silu,
    "gelu": partial(jax.nn.gelu, approximate=False),
    "gelu_tanh": partial(jax.nn.gelu, approximate=True),
    "mish": jax.nn.mish,
    "soft_sign": jax.nn.soft_sign,
    "log_sigmoid": jax.nn.log_sigmoid,
    "relu6": jax.nn.relu6,
    "hard_tanh": jax.nn.hard_tanh,
    "hard_sigmoid": jax.nn.hard_sigmoid,
    "hard_silu": jax.nn.hard_silu,
    "squareplus": jax.nn.squareplus,
    "sparse_plus": jax.nn.sparse_plus,
    "sparse_sigmoid": jax.nn.sparse_sigmoid,
}
"""The ``jax.nn`` function behind each catalogue name (``gelu`` is the exact erf form)."""
