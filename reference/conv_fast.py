"""The oracle of ``reference.layers`` (``jax.grad`` of a plain forward pass, in float64),
compiled once for many convolutional architectures.

``reference.layers.layer_autodiff`` compiles a new program for every architecture (about 0.5 s
each): the layers' settings are part of its program. Here every network is laid into a fixed
``Template`` so that one compiled program serves them all, as ``reference.fast`` does for dense
networks. A template is a chain of stages on a zero *canvas* of C channels, S × S pixels and a
batch of N examples:

    conv₁ → pool₁ → … → conv_B → pool_B → flatten → dense₁ → dense₂

A network with fewer stages gets identity stages where it has none. What differs between
architectures (kernel, stride, padding, dilation, window, pooling kind, activation, sizes)
reaches the program as arrays of numbers, never as its shape, so nothing is recompiled. The
padding tricks, and why each keeps every real value exactly what the plain program computes
(up to the order in which the same terms are summed):

- **Canvas and masks.** A real (C, H, W) image sits in the corner of its canvas; every other
  entry, and every padded example, is an exact 0, enforced after each stage by
  ``where(live, ·, 0)`` with ``live`` built in the program from the stage's real shape. A 0
  read by a later sum adds 0 (x + 0 = x exactly); a 0 weight times a finite value adds 0.
- **Convolution by one-hot selection.** On each axis, ``tap_rows`` gives the input row
  s·i + d·u − p that output row i reads with kernel tap u (−1, no row, where the plain program
  reads its zero padding, where the kernel has no tap u ≥ kh, or where there is no output row
  i). ``selection`` turns it into a one-hot matrix, and the program computes

      z[t, f, i, j] = b_f + Σ_v Σ_x cols[j, v, x] · Σ_c Σ_u W[f, c, u, v] · Σ_y rows[i, u, y] · a[t, c, y, x]

  Each one-hot sum is one product 1·a plus products 0·a = 0, so it *is* a[rows[i, u]] (or 0):
  picking is exact. The kernel is a zero K × K × C × C array with W in its corner. The sum is
  therefore the plain convolution's C·kh·kw products, zeros among them, in another order.
  Stride, padding and dilation are numbers in the selection matrices, not in the program; and
  a product of matrices differentiates into products of matrices (a gather would become a
  scatter, which is slow on the CPU).
- **Pooling by the same selection**, windows of P × P taps, the taps r ≥ wh, q ≥ ww and those in
  the padding marked invalid. Average pooling sums the window (an invalid tap reads 0: a padded
  input counts as 0, as in the plain program) and divides by wh·ww. Max pooling sets invalid
  taps to −∞ (never a maximum, as the plain program's −∞ padding), takes ``argmax`` over the
  taps in row-major order (r, then q), which is the *first* maximum, and keeps that one value by
  ``where`` (plus zeros): its value is one input, exactly, and the whole δ goes to that input,
  which is how ``jax.grad`` of ``lax.reduce_window`` breaks ties (``manual.pooling.MaxPool2D``).
- **Identity stages.** A convolution or pooling the network does not have is skipped:
  ``lax.cond`` passes the canvas on untouched (then b = 0 and g = identity). Its data still
  describe an identity, W[c, c] = 1 at one tap (z = 1·a + 0 = a exactly, δ back 1·δ) and a 1×1
  max (one input), so that it changes nothing even where both branches run (``vmap``). A
  missing second dense layer comes after the output layer (Θ = I, b = 0, g = identity), as
  ``reference.fast`` pads depth; the loss reads the output layer's z where it is fused with
  softmax.
- **Flatten.** The first dense layer reads the whole canvas, C·S·S values; Θ's column for the
  real feature (c, y, x), index (c·H + y)·W + x, is moved to the canvas's c·S² + y·S + x, and
  every other column is 0.
- **Activations are data.** Each layer's g is picked by ``lax.switch`` over the catalogue
  (softmax too, for a dense layer). An elementwise g sees ``where(live, z, ½)``, so that
  autodiff's NaN at a padded point cannot leak (``reference.fast._masked``); a softmax layer's
  padded units get the bias −1e30: e^(−1e30 − max) is exactly 0, so they take no share.
- **Losses**: the two pairs ``layer_strategies`` draws, the mean squared error after any output
  and cross-entropy fused with a softmax output. A padded example's Eₜ is weighted by zero in
  E = (1/n) Σₜ Eₜ; a padded unit has a = 0 = y.

(One caveat of both programs alike: XLA on the CPU flushes subnormal results to zero, so two
orders of summation may differ there by all of such a number; the suite's tolerances carry a
floor for it, ``tolerances.floor``.)

δ⁽ᵏ⁾ = n ∂E/∂z⁽ᵏ⁾ comes from a zero offset added to every stage's z, as in
``reference.layers``. The work grows with the canvas's area, so there are several standard
templates (``SIDES``) and each network goes to the smallest that holds it: one compilation per
side, each serving every architecture that fits. The networks of a call are stacked and the
program loops over them (``lax.map``): inside the loop each ``lax.switch`` runs only its
network's branch, where ``vmap`` runs all of them and selects (1.4 times slower, measured at side 12).
A network no template can hold is refused with a ``ValueError`` of one sentence
(``check_fits``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

from manual import CATALOGUE, CROSS_ENTROPY, MSE, SOFTMAX, Loss
from manual.layers import LayerNetwork, kind_of

from . import stored
from .layers import LayerReference

ELEMENTWISE = tuple(CATALOGUE.values())
"""The activations a convolution (or a hidden dense layer) switches between: the catalogue."""

DENSE_MAPS = ELEMENTWISE + (SOFTMAX,)
"""The activations a dense layer switches between: the catalogue and softmax."""

BRANCH = {g: i for i, g in enumerate(DENSE_MAPS)}
"""Each activation's branch number: its place in ``DENSE_MAPS``, and in ``ELEMENTWISE`` too."""

IDENTITY = CATALOGUE["identity"]

LOSSES = (MSE, CROSS_ENTROPY)
"""The losses the program switches between; cross-entropy only fused with a softmax output."""

SAFE_Z = 0.5
"""What an elementwise g sees at a padded entry instead of its z (``reference.fast.SAFE_Z``)."""

SWITCHED_OFF = -1e30
"""The bias of a padded unit of a softmax layer: e^(−1e30 − max) is 0, so it takes no share."""

CHUNK = 32
"""Networks per compiled call. A short last chunk is filled with copies of its first network,
which the program skips (``lax.cond``), so a lone network costs one network's time."""

SIDES = (8, 12, 16, 24)
"""The canvas sides of the standard templates. Every network that
``layer_strategies.layer_architectures()`` draws fits 24: a 12-pixel image grows by at most
2p = 4 in a convolution (a 1×1 kernel, padding 2) and by w − 1 = 2 in a pooling (its padding is
below its window), twice. About 40 % of them fit 8 and 96 % fit 12."""

HIGHEST = jax.lax.Precision.HIGHEST


@dataclass(frozen=True)
class Template:
    """The padded sizes one compiled program serves: ``blocks`` convolution blocks, images on a
    ``side`` × ``side`` canvas of ``channels`` channels, kernels of at most ``kernel`` taps a
    side, pooling windows of at most ``window`` taps a side, dense layers of at most ``units``
    units, batches of at most ``batch`` examples. With ``blocks=3`` and ``side=26`` it also holds
    every network of ``layer_strategies.layer_cases(ties=True)`` (a 1×1 convolution and a max
    pooling before the blocks)."""

    side: int = 24
    blocks: int = 2
    channels: int = 4
    kernel: int = 5
    window: int = 3
    units: int = 5
    batch: int = 4

    @property
    def features(self) -> int:
        """Columns of the first dense layer: the whole canvas, C·S·S."""
        return self.channels * self.side * self.side


STANDARD = tuple(Template(side=side) for side in SIDES)
"""The standard templates, smallest first (``template_for``)."""


# --- where each layer goes, and whether it fits ----------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Where a network's layers sit in a template: ``conv[b]`` and ``pool[b]`` are the layer
    numbers k of block b's convolution and pooling (``None``: an identity stage), ``flatten``
    the flatten layer's, ``dense`` the dense layers' (one or two). ``shapes`` is
    ``net.shapes``, one example's shape of a⁽⁰⁾, z⁽¹⁾, …, z⁽ᴸ⁾."""

    conv: tuple
    pool: tuple
    flatten: int
    dense: tuple
    shapes: tuple

    @property
    def side(self) -> int:
        """The smallest canvas that holds every image of the network, its input included."""
        return max(max(shape[1:]) for shape in self.shapes[: self.flatten])


def check_fits(net: LayerNetwork, n: int, loss: Loss, template: Template) -> Plan:
    """The network's ``Plan`` in ``template``, after checking that its layers come in the
    template's order and that every size, activation and the loss fit; otherwise
    ``ValueError`` with one sentence saying what does not."""
    kinds = [kind_of(layer) for layer in net.layers[1:]]
    conv: list[int] = []
    pool: list[int | None] = []
    k = 1
    while k <= len(kinds) and kinds[k - 1] == "conv2d":
        conv.append(k)
        has_pool = k + 1 <= len(kinds) and kinds[k] in ("max_pool", "avg_pool")
        pool.append(k + 1 if has_pool else None)
        k += 1 + has_pool
    flatten, dense = k, tuple(range(k + 1, len(kinds) + 1))
    if (
        not conv
        or flatten > len(kinds)
        or kinds[flatten - 1] != "flatten"
        or not 1 <= len(dense) <= 2
        or any(kinds[j - 1] != "dense" for j in dense)
    ):
        raise ValueError(
            f"the template holds convolution blocks (each maybe followed by one pooling), flatten "
            f"and one or two dense layers, in that order, not {' · '.join(kinds)}"
        )
    if len(conv) > template.blocks:
        raise ValueError(
            f"the template holds at most {template.blocks} convolution blocks, but this network has {len(conv)}"
        )
    empty = (None,) * (template.blocks - len(conv))
    p = Plan(tuple(conv) + empty, tuple(pool) + empty, flatten, dense, net.shapes)
    if not 1 <= n <= template.batch:
        raise ValueError(f"the template holds batches of 1 to {template.batch} examples, not {n}")
    for k, (c, h, w) in enumerate(p.shapes[:flatten]):
        where = "the input" if k == 0 else f"layer {k}"
        if c > template.channels:
            raise ValueError(f"{where} has {c} channels, more than the template's {template.channels}")
        if max(h, w) > template.side:
            raise ValueError(
                f"{where} is {h} × {w}, larger than the template's canvas of {template.side} × {template.side}"
            )
    for k in conv:
        if max(net.layers[k].kernel) > template.kernel:
            raise ValueError(
                f"layer {k}'s kernel {net.layers[k].kernel} is larger than the template's "
                f"{template.kernel} × {template.kernel}"
            )
    for k_pool in pool:
        if k_pool is not None and max(net.layers[k_pool].window) > template.window:
            raise ValueError(
                f"layer {k_pool}'s window {net.layers[k_pool].window} is larger than the template's "
                f"{template.window} × {template.window}"
            )
    for k in dense:
        if p.shapes[k][0] > template.units:
            raise ValueError(f"layer {k} has {p.shapes[k][0]} units, more than the template's {template.units}")
    for k in conv + list(dense[:-1]):
        if net.g[k] is not None and (net.g[k] not in BRANCH or net.g[k] is SOFTMAX):
            raise ValueError(f"layer {k}'s activation {net.g[k]!r} is not one of the catalogue's")
    g_out = net.g[dense[-1]]
    if g_out is not None and g_out not in BRANCH:
        raise ValueError(f"the output activation {g_out!r} is neither softmax nor one of the catalogue's")
    if loss not in LOSSES or (loss is CROSS_ENTROPY and not loss.fuses(g_out)):
        raise ValueError(
            f"the template takes the mean squared error, or cross-entropy after softmax, "
            f"not {loss.name} after {getattr(g_out, 'name', 'no activation')}"
        )
    return p


def template_for(net: LayerNetwork, n: int, loss: Loss) -> Template:
    """The smallest standard template that holds the network; ``ValueError`` (the largest
    template's reason) when none does."""
    return _placed(net, n, loss, None)[0]


def _placed(net: LayerNetwork, n: int, loss: Loss, template: Template | None) -> tuple[Template, Plan]:
    """``template`` (or the smallest standard one that holds the network) and the network's
    plan in it. The standard templates differ only in their side, so one check serves all."""
    if template is not None:
        return template, check_fits(net, n, loss, template)
    p = check_fits(net, n, loss, STANDARD[-1])
    return next(t for t in STANDARD if t.side >= p.side), p


# --- the padding, on the host (NumPy) ------------------------------------------------------


def tap_rows(
    size: int, out: int, taps: int, stride: int, padding: int, dilation: int, template_taps: int, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """On one axis: ``rows[i, u]`` = s·i + d·u − p, the input row that output row i reads with
    tap u, for i < ``out`` and u < ``taps`` when it lies inside the image (0 ≤ · < ``size``);
    otherwise −1, no row: the plain program's zero padding, a tap the layer does not have, an
    output row it does not have. Also ``valid``, where the first case holds. Both of shape
    (``side``, ``template_taps``)."""
    i = np.arange(side)[:, None]
    u = np.arange(template_taps)[None, :]
    position = stride * i + dilation * u - padding
    valid = (i < out) & (u < taps) & (position >= 0) & (position < size)
    return np.where(valid, position, -1), valid


def selection(rows: np.ndarray, side: int) -> np.ndarray:
    """The one-hot matrices of ``rows``: ``selection[i, u, y]`` = 1 where y = rows[i, u], else 0
    (all 0 for −1). Σ_y selection[i, u, y] · a[y] is then a[rows[i, u]] exactly, or 0: one term
    1·a[y], the others 0·a = 0 (every canvas entry is finite)."""
    return (rows[:, :, None] == np.arange(side)[None, None, :]).astype(np.float64)


@cache
def _picking(
    rows_of, size: int, out: int, taps: int, stride: int, padding: int, dilation: int, template_taps: int, side: int
) -> tuple[np.ndarray, np.ndarray]:
    """``selection`` of ``rows_of(…)`` (``tap_rows``) and its ``valid``, read-only, computed once
    per setting: few settings recur across many networks. ``rows_of`` is part of the key, so
    that a ``tap_rows`` swapped for a wrong one (a negative control) is never served the right
    one's arrays."""
    rows, valid = rows_of(size, out, taps, stride, padding, dilation, template_taps, side)
    one_hot = selection(rows, side)
    one_hot.flags.writeable = valid.flags.writeable = False
    return one_hot, valid


def embed_kernel(W: np.ndarray, template: Template) -> np.ndarray:
    """W (F, C, kh, kw) in the corner of a zero (C_max, C_max, K, K) kernel: a tap or channel
    the layer does not have weighs 0."""
    padded = np.zeros((template.channels, template.channels, template.kernel, template.kernel))
    F, C, kh, kw = W.shape
    padded[:F, :C, :kh, :kw] = W
    return padded


def embed_columns(theta: np.ndarray, image: tuple, template: Template) -> np.ndarray:
    """Θ (units, C·H·W) of the dense layer after flatten in a zero (U, C_max·S·S) matrix, each
    column (c·H + y)·W + x moved to the canvas's c·S² + y·S + x."""
    C, H, W = image
    S, units = template.side, theta.shape[0]
    padded = np.zeros((template.units, template.channels, S, S))
    padded[:units, :C, :H, :W] = theta.reshape(units, C, H, W)
    return padded.reshape(template.units, -1)


def _conv_stage(net: LayerNetwork, k: int | None, image: tuple, out: tuple, template: Template):
    """A block's convolution, reading ``image`` and giving ``out`` (C, H, W): (its parameters,
    its data); the identity when k is None."""
    C, S, K = template.channels, template.side, template.kernel
    if k is None:
        kernel, stride, padding, dilation = (1, 1), (1, 1), (0, 0), (1, 1)
        W = np.zeros((C, C, K, K))
        W[np.arange(C), np.arange(C), 0, 0] = 1.0  # W[c, c] = 1 at one tap: z = 1·a + 0, exactly a
        bias, g = np.zeros(C), IDENTITY
    else:
        layer, params = net.layers[k], net.params[k]
        kernel, stride, padding, dilation = layer.kernel, layer.stride, layer.padding, layer.dilation
        W = embed_kernel(np.asarray(params["W"], np.float64), template)
        bias = np.zeros(C)
        bias[: out[0]] = params["b"]
        g = net.g[k] or IDENTITY
    rows, _ = _picking(tap_rows, image[1], out[1], kernel[0], stride[0], padding[0], dilation[0], K, S)
    cols, _ = _picking(tap_rows, image[2], out[2], kernel[1], stride[1], padding[1], dilation[1], K, S)
    data = {
        "rows": rows,
        "cols": cols,
        "shape": np.asarray(out, np.int32),
        "g": np.int32(BRANCH[g]),
        "present": np.bool_(k is not None),
    }
    return {"W": W, "b": bias}, data


def _pool_stage(net: LayerNetwork, k: int | None, image: tuple, out: tuple, template: Template) -> dict:
    """A block's pooling, reading ``image`` and giving ``out``: its data; a 1×1 max (the
    identity) when k is None."""
    S, P = template.side, template.window
    if k is None:
        window, stride, padding, is_max = (1, 1), (1, 1), (0, 0), True
    else:
        layer = net.layers[k]
        window, stride, padding, is_max = layer.window, layer.stride, layer.padding, kind_of(layer) == "max_pool"
    rows, row_valid = _picking(tap_rows, image[1], out[1], window[0], stride[0], padding[0], 1, P, S)
    cols, col_valid = _picking(tap_rows, image[2], out[2], window[1], stride[1], padding[1], 1, P, S)
    return {
        "rows": rows,
        "cols": cols,
        "row_valid": row_valid,
        "col_valid": col_valid,
        "is_max": np.bool_(is_max),
        "divisor": np.float64(window[0] * window[1]),
        "shape": np.asarray(out, np.int32),
        "present": np.bool_(k is not None),
    }


def _dense_stage(net: LayerNetwork, k: int | None, width: int, image: tuple | None, template: Template):
    """A dense layer's (parameters, data), reading ``width`` units, or the canvas holding
    ``image`` when it follows flatten; after the output layer, the identity (Θ = I, b = 0)."""
    U = template.units
    theta, bias = np.zeros((U, U if image is None else template.features)), np.zeros(U)
    if k is None:
        theta[np.arange(U), np.arange(U)] = 1.0
        return {"theta": theta, "b": bias}, {"units": np.int32(width), "g": np.int32(BRANCH[IDENTITY])}
    real, g = np.asarray(net.params[k]["theta"], np.float64), net.g[k] or IDENTITY
    units = real.shape[0]
    if image is None:
        theta[:units, : real.shape[1]] = real
    else:
        theta = embed_columns(real, image, template)
    bias[:units] = net.params[k]["b"]
    if g is SOFTMAX:
        bias[units:] = SWITCHED_OFF  # the padded units take no share of the normalising sum
    return {"theta": theta, "b": bias}, {"units": np.int32(units), "g": np.int32(BRANCH[g])}


def pad_case(
    net: LayerNetwork, x: np.ndarray, y: np.ndarray, loss: Loss, template: Template, p: Plan | None = None
) -> tuple[dict, dict]:
    """(parameters, data) of one network laid into ``template``, as NumPy arrays."""
    p = p or check_fits(net, x.shape[0], loss, template)
    n, S, N = x.shape[0], template.side, template.batch
    x_pad = np.zeros((N, template.channels, S, S))
    x_pad[:n, : x.shape[1], : x.shape[2], : x.shape[3]] = x
    y_pad = np.zeros((N, template.units))
    y_pad[:n, : y.shape[1]] = y
    params: dict[str, list[dict]] = {"conv": [], "dense": []}
    stages: dict[str, list[dict]] = {"conv": [], "pool": [], "dense": []}
    image = p.shapes[0]
    for k_conv, k_pool in zip(p.conv, p.pool, strict=True):
        convolved = image if k_conv is None else p.shapes[k_conv]
        pooled = convolved if k_pool is None else p.shapes[k_pool]
        conv_params, conv_data = _conv_stage(net, k_conv, image, convolved, template)
        params["conv"].append(conv_params)
        stages["conv"].append(conv_data)
        stages["pool"].append(_pool_stage(net, k_pool, convolved, pooled, template))
        image = pooled
    width, canvas = 0, image  # the first dense layer reads the canvas (after flatten), the second its units
    for k in p.dense + (None,) * (2 - len(p.dense)):
        dense_params, dense_data = _dense_stage(net, k, width, canvas, template)
        params["dense"].append(dense_params)
        stages["dense"].append(dense_data)
        width, canvas = int(dense_data["units"]), None
    data = {
        "x": x_pad,
        "y": y_pad,
        **stages,
        "n": np.int32(n),
        "last": np.int32(len(p.dense) - 1),
        "loss": np.int32(LOSSES.index(loss)),
    }
    return params, data


# --- the program (JAX): one network, looped over many ----------------------------------------


def _live(shape, n, like):
    """True at the real entries of a (N, C, S, S) stage output: example < n, channel < C,
    row < H, column < W, from ``shape`` = (C, H, W)."""
    N, C, S, _ = like.shape
    t = jnp.arange(N)[:, None, None, None]
    c = jnp.arange(C)[None, :, None, None]
    i = jnp.arange(S)[None, None, :, None]
    j = jnp.arange(S)[None, None, None, :]
    return (t < n) & (c < shape[0]) & (i < shape[1]) & (j < shape[2])


def _correlate(a, W, rows, cols):
    """z[t, f, i, j] − b_f: each tap's input row picked by its one-hot ``rows``, the products
    summed over c and u, then each tap's column picked and the partial sums added over v."""
    by_rows = jnp.einsum("iuy,tcyx->tciux", rows, a, precision=HIGHEST)  # a[t, c, rows[i, u], x]
    partial = jnp.einsum("fcuv,tciux->tfivx", W, by_rows, precision=HIGHEST)  # Σ_c Σ_u
    return jnp.einsum("tfivx,jvx->tfij", partial, cols, precision=HIGHEST)  # Σ_v, column cols[j, v]


def _pool(a, data):
    """Max or average pooling of the canvas by the stage's one-hot matrices."""
    by_rows = jnp.einsum("iry,tcyx->tcirx", data["rows"], a, precision=HIGHEST)
    windows = jnp.einsum("tcirx,jqx->tcijrq", by_rows, data["cols"], precision=HIGHEST)  # (t, c, i, j, r, q)
    valid = data["row_valid"][:, None, :, None] & data["col_valid"][None, :, None, :]  # (i, j, r, q)
    taps = jnp.where(valid, windows, -jnp.inf).reshape(*windows.shape[:4], -1)  # in row-major order (r, q)
    first = jnp.argmax(taps, axis=-1)[..., None]  # the first maximum
    z_max = jnp.sum(jnp.where(jnp.arange(taps.shape[-1]) == first, taps, 0.0), axis=-1)  # it alone (+ zeros)
    z_avg = jnp.sum(windows, axis=(-2, -1)) / data["divisor"]
    return jnp.where(data["is_max"], z_max, z_avg)


def _passed_on(a, *_):
    """A stage the network does not have: the canvas, untouched."""
    return a


def _elementwise(g):
    """g at the live entries (a padded one sees ``SAFE_Z``: no NaN from autodiff), 0 elsewhere."""
    return lambda z, live: jnp.where(live, g.forward(jnp.where(live, z, SAFE_Z), jnp), 0.0)


def _row_map(g):
    """A map that mixes a row's units (softmax); its padded units are switched off by their bias."""
    return lambda z, live: jnp.where(live, g.forward(z, jnp), 0.0)


def _branches(activations):
    return [_row_map(g) if g is SOFTMAX else _elementwise(g) for g in activations]


def _mean_squared_error(a, z_out, y):
    return MSE.error(a, y, jnp)


def _cross_entropy_after_softmax(a, z_out, y):
    return CROSS_ENTROPY.fused_error(z_out, y, jnp)


def _error(params, offsets, data):
    """E = (1/n) Σₜ Eₜ of one padded network, and every stage's z and a."""
    n, conv_g, dense_g = data["n"], _branches(ELEMENTWISE), _branches(DENSE_MAPS)
    a, z_all, a_all = data["x"], {"conv": [], "pool": [], "dense": []}, {"conv": [], "dense": []}
    for b, (conv, pool) in enumerate(zip(data["conv"], data["pool"], strict=True)):
        W, bias = params["conv"][b]["W"], params["conv"][b]["b"]
        z = jax.lax.cond(conv["present"], _correlate, _passed_on, a, W, conv["rows"], conv["cols"])
        z = z + bias[None, :, None, None] + offsets["conv"][b]
        a = jax.lax.switch(conv["g"], conv_g, z, _live(conv["shape"], n, z))
        z_all["conv"].append(z)
        a_all["conv"].append(a)
        live = _live(pool["shape"], n, a)
        z = jnp.where(live, jax.lax.cond(pool["present"], _pool, _passed_on, a, pool), 0.0) + offsets["pool"][b]
        a = jnp.where(live, z, 0.0)
        z_all["pool"].append(z)
    examples = jnp.arange(a.shape[0])[:, None]
    a = (a + offsets["flatten"]).reshape(a.shape[0], -1)  # flatten: its z is the canvas, read as a row
    for d, dense in enumerate(data["dense"]):
        theta, bias = params["dense"][d]["theta"], params["dense"][d]["b"]
        z = jnp.einsum("tj,ij->ti", a, theta, precision=HIGHEST) + bias + offsets["dense"][d]
        live = (examples < n) & (jnp.arange(z.shape[1])[None, :] < dense["units"])
        a = jax.lax.switch(dense["g"], dense_g, z, live)
        z_all["dense"].append(z)
        a_all["dense"].append(a)
    z_out = jnp.where(data["last"] == 1, z_all["dense"][1], z_all["dense"][0])  # the output layer's z
    per_example = jax.lax.switch(data["loss"], [_mean_squared_error, _cross_entropy_after_softmax], a, z_out, data["y"])
    return jnp.sum(jnp.where(examples[:, 0] < n, per_example, 0.0)) / n, (z_all, a_all)


def _offsets(params, data):
    """Zeros shaped as every stage's z: ∂E/∂offset = ∂E/∂z."""
    canvas, blocks = jnp.zeros_like(data["x"]), len(data["conv"])
    return {
        "conv": [canvas] * blocks,
        "pool": [canvas] * blocks,
        "flatten": canvas,
        "dense": [jnp.zeros_like(data["y"]) for _ in params["dense"]],
    }


def _program(params, data):
    """One network: E, ∂E/∂(parameters), ∂E/∂(every stage's z), every z and a."""
    (error, (z, a)), (d_params, d_offsets) = jax.value_and_grad(_error, argnums=(0, 1), has_aux=True)(
        params, _offsets(params, data), data
    )
    return error, d_params, d_offsets, z, a


def _program_or_skip(params, data, real):
    """``_program``, or zeros of its shapes for a copy that only fills a chunk."""
    shapes = jax.eval_shape(_program, params, data)
    return jax.lax.cond(
        real, _program, lambda p, d: jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes), params, data
    )


@cache
def compiled(template: Template, mapping: str = "map"):
    """The program for ``CHUNK`` networks of ``template`` stacked on a leading axis, and a
    flag per network (False: a filler to skip). ``"map"`` loops over them in one call
    (``lax.map``: each ``lax.switch`` and ``lax.cond`` runs one branch); ``"vmap"`` vectorises
    them (every branch runs, then each network's is selected). The template's sizes reach the
    program as its arguments' shapes, so one program serves every network of the template."""
    if mapping == "map":
        jitted = jax.jit(
            lambda params, data, real: jax.lax.map(lambda args: _program_or_skip(*args), (params, data, real))
        )
    elif mapping == "vmap":
        jitted = jax.jit(jax.vmap(lambda params, data, real: _program(params, data)))
    else:
        raise ValueError(f"mapping must be 'map' or 'vmap', not {mapping!r}")
    # Traced once and read back in later runs when made of manual's tables only (``stored.kept``).
    return stored.kept(jitted, ("conv_fast", repr(template), mapping), (*DENSE_MAPS, *LOSSES))


# --- back to each network's own shapes -------------------------------------------------------


def _unpad(net: LayerNetwork, p: Plan, x: np.ndarray, out, j: int, template: Template) -> LayerReference:
    """Network j's ``LayerReference`` from the program's output for its chunk: every array cut
    to the network's examples, channels, rows, columns and units; δ = n ∂E/∂z."""
    error, d_params, d_offsets, z_all, a_all = out
    n, L, shapes = x.shape[0], net.depth, p.shapes
    z: list[np.ndarray | None] = [None] * (L + 1)
    a: list[np.ndarray | None] = [None] * (L + 1)
    delta: list[np.ndarray | None] = [None] * (L + 1)
    grads: list[dict[str, np.ndarray] | None] = [None] * (L + 1)

    def real(array, k):
        return array[(j, slice(0, n)) + tuple(slice(0, s) for s in shapes[k])]

    for b, (k_conv, k_pool) in enumerate(zip(p.conv, p.pool, strict=True)):
        if k_conv is not None:
            z[k_conv], a[k_conv] = real(z_all["conv"][b], k_conv), real(a_all["conv"][b], k_conv)
            delta[k_conv] = n * real(d_offsets["conv"][b], k_conv)
            F, C, kh, kw = net.params[k_conv]["W"].shape
            grads[k_conv] = {"W": d_params["conv"][b]["W"][j, :F, :C, :kh, :kw], "b": d_params["conv"][b]["b"][j, :F]}
        if k_pool is not None:
            z[k_pool] = a[k_pool] = real(z_all["pool"][b], k_pool)
            delta[k_pool] = n * real(d_offsets["pool"][b], k_pool)
            grads[k_pool] = {}
    k = p.flatten
    z[k] = a[k] = real(z_all["pool"][-1], k - 1).reshape(n, -1)  # C order, as the plain reshape
    delta[k] = n * real(d_offsets["flatten"], k - 1).reshape(n, -1)
    grads[k] = {}
    for d, k in enumerate(p.dense):
        units, inputs = net.params[k]["theta"].shape
        z[k], a[k] = z_all["dense"][d][j, :n, :units], a_all["dense"][d][j, :n, :units]
        delta[k] = n * d_offsets["dense"][d][j, :n, :units]
        d_theta = d_params["dense"][d]["theta"][j]
        if d == 0:  # each column back from the canvas's c·S² + y·S + x to (c·H + y)·W + x
            C, H, W = shapes[p.flatten - 1]
            d_theta = d_theta.reshape(template.units, template.channels, template.side, template.side)
            d_theta = d_theta[:units, :C, :H, :W].reshape(units, inputs)
        grads[k] = {"theta": d_theta[:units, :inputs], "b": d_params["dense"][d]["b"][j, :units]}
    a[0] = np.asarray(x, np.float64)
    return LayerReference(z=tuple(z), a=tuple(a), delta=tuple(delta), params=tuple(grads), error=float(error[j]))


def layer_autodiff_many(
    cases: Sequence[tuple[LayerNetwork, np.ndarray, np.ndarray, Loss]],
    *,
    template: Template | None = None,
    mapping: str = "map",
) -> list[LayerReference]:
    """``reference.layers.layer_autodiff`` for many (network, x, y, loss) cases: every z, a,
    δ = ∂Eₜ/∂z and ∂E/∂(parameter), in float64, in each network's own shapes. Each case goes
    to the smallest standard template that holds it (or to ``template``); the cases of one
    template share its compiled program, ``CHUNK`` a call. ``ValueError`` (``check_fits``)
    for a case that does not fit."""
    placed = [_placed(net, x.shape[0], loss, template) for net, x, _, loss in cases]
    groups: dict[Template, list[int]] = {}
    for i, (t, _) in enumerate(placed):
        groups.setdefault(t, []).append(i)
    results: dict[int, LayerReference] = {}
    with jax.enable_x64(True):
        for t, members in groups.items():
            program = compiled(t, mapping)
            for start in range(0, len(members), CHUNK):
                chunk = members[start : start + CHUNK]
                padded = [pad_case(*cases[i], t, placed[i][1]) for i in chunk]
                padded += [padded[0]] * (CHUNK - len(chunk))
                real = np.arange(CHUNK) < len(chunk)
                stacked = jax.tree_util.tree_map(lambda *leaves: np.stack(leaves), *padded)
                out = jax.device_get(program(*stacked, real))
                for j, i in enumerate(chunk):
                    results[i] = _unpad(cases[i][0], placed[i][1], cases[i][1], out, j, t)
    return [results[i] for i in range(len(cases))]


def layer_autodiff(
    net: LayerNetwork, x: np.ndarray, y: np.ndarray, *, loss: Loss = MSE, template: Template | None = None
) -> LayerReference:
    """Like ``reference.layers.layer_autodiff``, from a template's compiled program."""
    return layer_autodiff_many([(net, x, y, loss)], template=template)[0]
