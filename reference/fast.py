"""The same autodiff as ``reference.plain``, compiled once for many architectures.

``plain`` compiles a new program for every architecture (0.1–0.7 s each). Here every network is
padded to one fixed shape so that a single compiled program serves them all:

- widths are padded to W units with zero weights: a padded unit receives nothing and sends
  nothing (its outgoing weights are zero), so it changes no real z, a or gradient;
- depth is padded to D layers by appending identity layers (Θ = I, b = 0, g = identity) after
  the output layer: multiplying by 1 and adding 0 is exact, so the output is unchanged;
- the batch is padded to N rows whose errors are weighted by zero in E;
- padded output units are multiplied by zero before the loss; after softmax or log_softmax their
  bias is −1e30 instead, so that they take no share of the normalisation (e^(−1e30) is 0);
- an elementwise g is applied to the real rows and units only (``_masked``), so that autodiff's
  NaN at a padded z = 0 cannot leak into the real gradients;
- an activation with trainable parameters reads them from a (parameters × W) array per layer,
  a parameter shared by the layer repeated in every column; its gradient is summed back over
  the real units (the chain rule for one value used W times);
- a map that mixes units keeps its own layout in the padded row: a GLU's two halves each sit at
  the start of their half of the W units (``mixes = "halves"``), maxout's groups are contiguous
  from unit 0 (``"groups"``), and softmax in any layer has its padded units switched off by
  their bias (``"row"``); its output is padded back to W units with zeros;
- a fused loss (cross-entropy after softmax, binary cross-entropy after sigmoid) is taken from
  the output layer's z, which the program tracks whatever the network's depth;
- each layer's activation is chosen at run time with ``lax.switch`` over a fixed list of
  activations, and each network's loss with ``lax.switch`` over the catalogue's losses, so both
  choices are data, not program.

``autodiff_many`` also maps over many networks at once with ``vmap``. The property
``test_fast_reference_equals_plain`` checks this module against ``plain`` on random networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

# The oracle names manual's catalogues and types directly, so the padding code reads in manual's
# terms; property_tests imports an overlapping list for its own use, so there is nothing to share.
from manual import (
    CATALOGUE,
    LOSSES,
    MSE,
    OUTPUT_MAPS,
    PARAMETRIC,
    VECTOR_ACTIVATIONS,
    Activation,
    AnyActivation,
    Loss,
    Network,
    OutputMap,
    ParametricActivation,
    VectorActivation,
    output_width,
)

from . import plain, stored
from .plain import Reference, stand_in

BASE_DEPTH, BASE_WIDTH, BASE_BATCH = 6, 16, 32
CHUNK = 64
"""Networks per vmapped call in ``autodiff_many``; the last chunk is padded with repeats."""

IDENTITY = CATALOGUE["identity"]
SWITCHED_OFF = -1e30
"""The bias of a padded unit of a softmax or log_softmax output layer."""


@dataclass(frozen=True)
class Shape:
    """The padded sizes one compiled program serves."""

    depth: int
    width: int
    batch: int


def padded_shape(network: Network, n: int) -> Shape:
    """The smallest standard shape that holds this network and batch."""
    return Shape(max(BASE_DEPTH, network.depth), _round_up(max(network.widths), BASE_WIDTH), _round_up(n, BASE_BATCH))


def _round_up(size: int, base: int) -> int:
    while base < size:
        base *= 2
    return base


def catalogue_branches() -> tuple[Activation | OutputMap, ...]:
    """Every catalogue activation and output map: the branches of the one shared program. An
    entry swapped in the table for a copy with other hand derivatives (a mutant's, a negative
    control's) is still the entry here (``plain.stand_in``): autodiff's program is the same."""
    return tuple(stand_in(g) for g in (*CATALOGUE.values(), *OUTPUT_MAPS.values()))


KINDS_ELEMENTWISE = ("tanh", "relu", "gelu", "sigmoid")
"""The elementwise activations the newer kinds' program also holds, to mix with them."""


def kinds_branches() -> tuple[AnyActivation, ...]:
    """The program for networks with the newer kinds: identity (for the padding layers), a few
    elementwise activations to mix with them, the activations with parameters, the maps that
    mix units, and softmax and log_softmax."""
    entries = (
        IDENTITY,
        *(CATALOGUE[name] for name in KINDS_ELEMENTWISE),
        *PARAMETRIC.values(),
        *VECTOR_ACTIVATIONS.values(),
        *OUTPUT_MAPS.values(),
    )
    return tuple(stand_in(g) for g in entries)  # a swapped-in copy: its entry (catalogue_branches)


PARAMETERS = max(len(g.parameters) for g in PARAMETRIC.values())
"""Rows of each layer's parameter array: the most parameters any catalogue activation has."""


def branches_for(networks: Sequence[Network]) -> tuple[AnyActivation, ...]:
    """The activations one compiled program switches between: the whole catalogue when the
    networks use only catalogue activations (one program for all of them); otherwise identity
    (for the padding layers), the activations used, in first-seen order, and the output maps (a
    small program for a user's own activations)."""
    return branches_for_pool(list(dict.fromkeys(g for net in networks for g in net.g[1:] if g is not None)))


def branches_for_pool(activations: Sequence[AnyActivation]) -> tuple[AnyActivation, ...]:
    """``branches_for`` every network built from ``activations`` and the output maps, so that
    all of them, and any subset, share one compiled program."""
    activations = list(dict.fromkeys(stand_in(g) for g in activations))  # copies of an entry: the entry
    catalogue, kinds = catalogue_branches(), kinds_branches()
    if all(g in catalogue for g in activations):
        return catalogue
    if all(g in kinds for g in activations):
        return kinds
    if all(g in catalogue or g in kinds for g in activations):
        return tuple(dict.fromkeys([*kinds, *catalogue]))
    return tuple(dict.fromkeys([IDENTITY, *activations, *OUTPUT_MAPS.values()]))


def supports(networks: Sequence[Network], loss: Loss) -> bool:
    """Where the padded program is valid. Padded output units hold a = 0 and y = 0, so the loss
    must be finite there with a finite gradient: true of every catalogue loss (cross-entropy
    uses xlogy, 0·log 0 = 0), and checked for any other loss; after softmax or log_softmax a
    loss from outside the catalogue is not trusted with the padding at all. A fused loss must
    meet the output layer it fuses with."""
    if loss.fused_with is not None and not all(loss.fuses(net.g[-1]) for net in networks):
        return False
    if any(
        not _has_layout(g, net.widths[k], padded_shape(net, 1).width)
        for net in networks
        for k, g in enumerate(net.g[1:], 1)
    ):
        return False
    if loss in LOSSES.values():
        return True
    return not any(isinstance(net.g[-1], OutputMap) for net in networks) and _finite_at_padding(loss)


@cache
def _finite_at_padding(loss: Loss) -> bool:
    with jax.enable_x64(True):
        zero = jnp.zeros((1, 2))
        try:
            value, grad = jax.value_and_grad(lambda a: jnp.sum(loss.error(a, zero, jnp)))(zero)
        except Exception:
            return False
        return bool(jnp.isfinite(value) and jnp.all(jnp.isfinite(grad)))


def _has_layout(g, units: int, width: int) -> bool:
    """Can a padded row of ``width`` hold g's ``units`` units? Any elementwise g can; so can a
    map that mixes units with a known layout (``VectorActivation.mixes``: softmax-like maps
    of the catalogue, a GLU's halves, maxout's groups); any other map only when its units fill
    the row, with nothing padded for it to mix in."""
    if not isinstance(g, VectorActivation) or g in OUTPUT_MAPS.values():
        return True
    return g.mixes in ("halves", "groups") or units == width


SAFE_Z = 0.5
"""What a padded entry's g sees instead of its z (see ``_masked``)."""


def _masked(g):
    """g applied to the real entries only (``live``), as a = where(live, g(where(live, z, ½)), 0).
    A padded unit has z = 0, and autodiff of a user's g can be NaN there (a `where` whose other
    branch is 0/0 at 0): its zero cotangent times that NaN would be NaN, and a zero weight times
    NaN leaks into every real gradient. The double `where` sends that product to the constant
    branch, which nothing depends on. A map that mixes units keeps them all (softmax's padded
    units are switched off by their bias instead; a GLU's or maxout's padded units are zero and
    feed only padded outputs), and its output is padded back to the row's W units."""
    if isinstance(g, VectorActivation):

        def mixed(z, live, p_rows):
            if g.mixes == "groups":
                z = z[..., : z.shape[-1] // g.group * g.group]
            a = g.forward(z, jnp)
            return jnp.pad(a, ((0, 0), (0, live.shape[-1] - a.shape[-1])))

        return mixed
    if isinstance(g, ParametricActivation):

        def parametric(z, live, p_rows):
            p = {q.name: p_rows[i] for i, q in enumerate(g.parameters)}
            return jnp.where(live, g.forward(jnp.where(live, z, SAFE_Z), p, jnp), 0.0)

        return parametric
    return lambda z, live, p_rows: jnp.where(live, g.forward(jnp.where(live, z, SAFE_Z), jnp), 0.0)


def _layers(theta, b, p, offset, x, index, live, last, branches):
    """The padded forward pass as one ``lax.scan`` over layers (one layer body to compile,
    whatever the depth). Returns every z and a, and the output layer's z."""
    forwards = [_masked(g) for g in branches]

    def layer(carry, inputs):
        a, z_out = carry
        k, theta_k, b_k, p_k, offset_k, index_k, live_k = inputs
        z = a @ theta_k.T + b_k + offset_k
        a_next = jax.lax.switch(index_k, forwards, z, live_k, p_k)
        return (a_next, jnp.where(k == last, z, z_out)), (z, a_next)

    ks = jnp.arange(theta.shape[0])
    (a, z_out), (zs, a_s) = jax.lax.scan(layer, (x, jnp.zeros_like(offset[0])), (ks, theta, b, p, offset, index, live))
    return a, z_out, zs, a_s


def _per_example(loss: Loss):
    """Eₜ for every row: from the output layer's z when the loss is fused with it, else from a."""
    if loss.fused_with is not None:
        fused_error = loss.fused_error
        assert fused_error is not None  # a loss fused with an output layer carries its fused forms
        return lambda a, z_out, y, unit_mask: fused_error(z_out, y, jnp)
    return lambda a, z_out, y, unit_mask: loss.error(a * unit_mask, y, jnp)


def _error(theta, b, p, offset, x, y, index, live, last, loss_index, row_mask, unit_mask, n, branches, losses):
    """E = (1/n) Σₜ Eₜ over the real rows; ``offset`` is zero and gives δ = n ∂E/∂offset.
    ``last`` is the index of the network's own output layer (the rest are identity layers), and
    ``loss_index`` picks the network's loss from ``losses``, like ``index`` picks activations."""
    a, z_out, zs, a_s = _layers(theta, b, p, offset, x, index, live, last, branches)
    per_example = jax.lax.switch(loss_index, [_per_example(loss) for loss in losses], a, z_out, y, unit_mask)
    return jnp.sum(jnp.where(row_mask, per_example, 0)) / n, (zs, a_s)


def _program(theta, b, p, offset, x, y, index, live, last, loss_index, row_mask, unit_mask, n, branches, losses):
    value_and_grad = jax.value_and_grad(_error, argnums=(0, 1, 2, 3), has_aux=True)
    (error, (z, a)), grads = value_and_grad(
        theta, b, p, offset, x, y, index, live, last, loss_index, row_mask, unit_mask, n, branches, losses
    )
    return error, grads, z, jnp.concatenate([x[None], a])


@cache
def _compiled(branches: tuple[AnyActivation, ...], losses: tuple[Loss, ...], shape: Shape, batched: bool):
    def program(*args):
        return _program(*args, branches, losses)

    # A program for a user's activation or loss serves one check of a few hundred networks:
    # there, compiling is most of the time, and LLVM's optimisation level 0 cuts a check of 10
    # networks from 0.72 s to 0.54 s. The level may change the last bits of a composite
    # expression (a different instruction order, no fast-math either way): rounding that the
    # tolerances already count, as for any XLA build.
    # The newer kinds' program serves a few hundred networks a run, too: compiling dominates.
    own = branches != catalogue_branches() or any(loss not in LOSSES.values() for loss in losses)
    function = jax.vmap(program) if batched else program
    options: dict = {"compiler_options": {"xla_backend_optimization_level": 0}} if own else {}
    try:
        jitted = jax.jit(function, **options)
    except TypeError:  # a JAX without jit(compiler_options=...): compile as usual
        jitted, options = jax.jit(function), {}
    # Traced once and read back in later runs when made of manual's tables only (``stored.kept``).
    names = (tuple(g.name for g in branches), tuple(loss.name for loss in losses), repr(shape), batched)
    return stored.kept(jitted, names, (*branches, *losses), **options)


def losses_for(branches: tuple[AnyActivation, ...], losses: Sequence[Loss]) -> tuple[Loss, ...]:
    """The losses one program switches between. Catalogue losses are finite wherever another is
    evaluated, so they can share a program: with the catalogue's activations, the program holds
    every catalogue loss (one compilation serves all of them); with a user's activations, only
    the losses used (that program is compiled for one check). A loss from outside the catalogue
    always gets a program of its own."""
    used = tuple(dict.fromkeys(losses))
    shared = (*catalogue_branches(), *kinds_branches())  # a tuple: a user's activation may not hash
    if all(loss in LOSSES.values() for loss in used) and IDENTITY in branches and all(g in shared for g in branches):
        return tuple(LOSSES.values())
    return used


def placement(g, units: int, width: int) -> np.ndarray:
    """Where the ``units`` real units of z sit in a padded row of ``width``: from 0, except for
    a GLU, whose halves each start their half of the row (the map splits the row in two)."""
    if isinstance(g, VectorActivation) and g.mixes == "halves":
        half = units // 2
        return np.concatenate([np.arange(half), width // 2 + np.arange(half)])
    return np.arange(units)


def _pad(network: Network, x: np.ndarray, y: np.ndarray, shape: Shape, branches, loss_index: int = 0):
    D, W, N = shape.depth, shape.width, shape.batch
    L, n = network.depth, x.shape[0]
    theta = np.zeros((D, W, W))
    b = np.zeros((D, W))
    p = np.zeros((D, PARAMETERS, W))
    index = np.full(D, branches.index(IDENTITY))
    live = np.zeros((D, N, W), bool)  # the real rows and units of every layer's z
    for k in range(1, L + 1):
        g, theta_k, p_k = network.g[k], network.theta[k], network.p[k]
        assert theta_k is not None  # layers 1 … L have weights (check_network)
        units, cols = theta_k.shape
        rows = placement(g, units, W)
        theta[k - 1, rows, :cols] = theta_k
        b[k - 1, rows] = network.b[k]
        index[k - 1] = branches.index(stand_in(g))
        live[k - 1, :n, rows] = True
        if g in OUTPUT_MAPS.values():  # softmax-like: padded units take no share of the row
            b[k - 1, np.setdiff1d(np.arange(W), rows)] = SWITCHED_OFF
        if isinstance(g, ParametricActivation):
            assert p_k is not None  # an activation with parameters has their values (check_network)
            for i, q in enumerate(g.parameters):
                p[k - 1, i, rows] = p_k[q.name]  # a shared value fills every real unit
    theta[L:] = np.eye(W)
    live[L:, :n, : network.output_width] = True
    x_pad, y_pad = np.zeros((N, W)), np.zeros((N, W))
    x_pad[:n, : x.shape[1]] = x
    y_pad[:n, : y.shape[1]] = y
    row_mask = np.arange(N) < n
    unit_mask = (np.arange(W) < network.output_width).astype(np.float64)
    return (
        theta,
        b,
        p,
        np.zeros((D, N, W)),
        x_pad,
        y_pad,
        index,
        live,
        L - 1,
        loss_index,
        row_mask,
        unit_mask,
        float(n),
    )


def _unpad(network: Network, n: int, error, grads, z, a) -> Reference:
    d_theta, d_b, d_p, d_offset = (np.asarray(g) for g in grads)
    z, a = np.asarray(z), np.asarray(a)
    W, L = z.shape[-1], network.depth
    rows = [None] + [placement(network.g[k], network.widths[k], W) for k in range(1, L + 1)]
    outs = [network.widths[0]] + [output_width(network.g[k], network.widths[k]) for k in range(1, L + 1)]
    layers = range(1, L + 1)

    def p_grad(k):
        g = network.g[k]
        if not isinstance(g, ParametricActivation):
            return None
        real = d_p[k - 1][:, rows[k]]
        return {q.name: real[i] if np.ndim(network.p[k][q.name]) else real[i].sum() for i, q in enumerate(g.parameters)}

    return Reference(
        z=(None,) + tuple(z[k - 1, :n][:, rows[k]] for k in layers),
        a=(a[0, :n, : outs[0]],) + tuple(a[k, :n, : outs[k]] for k in layers),
        delta=(None,) + tuple(n * d_offset[k - 1, :n][:, rows[k]] for k in layers),
        theta=(None,) + tuple(d_theta[k - 1][rows[k]][:, : outs[k - 1]] for k in layers),
        b=(None,) + tuple(d_b[k - 1, rows[k]] for k in layers),
        error=float(error),
        p=(None,) + tuple(p_grad(k) for k in layers),
    )


def autodiff(network: Network, x: np.ndarray, y: np.ndarray, *, loss: Loss = MSE) -> Reference:
    """Like ``reference.plain.autodiff``, from the padded program (no new compilation per
    architecture)."""
    return autodiff_many([(network, x, y)], loss=loss)[0]


def autodiff_many(
    cases: Sequence[tuple[Network, np.ndarray, np.ndarray]],
    *,
    loss: Loss = MSE,
    batched: bool | None = None,
    losses: Sequence[Loss] | None = None,
    branches: tuple[AnyActivation, ...] | None = None,
) -> list[Reference]:
    """``autodiff`` for many (network, x, y) cases; cases of one padded shape share a call.

    ``losses`` gives each case its own loss (``loss`` serves all of them otherwise). ``batched``
    picks the program: the vmapped one (``True``), the one-network one (``False``), or the
    vmapped one whenever a padded shape holds more than one case (``None``). Each is compiled
    once per process. ``branches`` (from ``branches_for_pool``) fixes the activations the
    program switches between, so that calls on different subsets share one compilation."""
    case_losses = list(losses) if losses is not None else [loss] * len(cases)
    results: dict[int, Reference] = {}
    groups: dict[tuple, list[int]] = {}
    for i, ((net, x, y), case_loss) in enumerate(zip(cases, case_losses, strict=True)):
        if supports([net], case_loss):
            own = "catalogue" if case_loss in LOSSES.values() else case_loss
            groups.setdefault((own, padded_shape(net, x.shape[0])), []).append(i)
        else:  # outside what the padded program can take: the plain oracle, one by one
            results[i] = plain.autodiff(net, x, y, loss=case_loss)
    with jax.enable_x64(True):
        for (_, shape), members in groups.items():
            used = branches_for([cases[i][0] for i in members])
            group_branches = branches if branches is not None and set(used) <= set(branches) else used
            loss_set = losses_for(group_branches, [case_losses[i] for i in members])
            vmapped = len(members) > 1 if batched is None else batched
            program = _compiled(group_branches, loss_set, shape, vmapped)
            step = CHUNK if vmapped else 1
            for start in range(0, len(members), step):
                chunk = members[start : start + step]
                padded = [_pad(*cases[i], shape, group_branches, loss_set.index(case_losses[i])) for i in chunk]
                if vmapped:
                    padded += [padded[0]] * (step - len(chunk))
                    args = [np.stack(parts) for parts in zip(*padded, strict=True)]
                    out = jax.device_get(program(*args))
                    outs = [jax.tree_util.tree_map(lambda v, j=j: v[j], out) for j in range(len(chunk))]
                else:
                    outs = [jax.device_get(program(*padded[0]))]
                for i, (error, grads, z, a) in zip(chunk, outs, strict=True):
                    results[i] = _unpad(cases[i][0], cases[i][1].shape[0], error, grads, z, a)
    return [results[i] for i in range(len(cases))]
