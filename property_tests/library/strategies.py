"""Hypothesis strategies for networks, batches and cases, reusable in your own tests.

Every strategy takes keyword-only arguments and raises ``hypothesis.errors.InvalidArgument``
for a request that makes no sense (``max_depth=0``, a width range upside down, an unknown
activation name). Hypothesis draws what shapes a case: depth, widths, activations, loss, batch
size, the scale of the weights, inputs and targets, and one seed per array; NumPy's generator
turns each seed into the array's numbers in one call (``unit_arrays``), not one Hypothesis draw
per element, which would cost more than the check itself. A failing case shrinks to the
smallest structure that still fails (fewest layers, narrowest widths, fewest examples).

    from hypothesis import given
    from property_tests.library.strategies import cases

    @given(cases(max_depth=3, activations=["tanh", "relu"]))
    def test_mine(case): ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import TypeVar

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

# A long list, as in verify and reference.fast: the strategies draw manual's own objects by
# their names (CATALOGUE, Network, activation, ...), so each one reads like the case it builds.
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
    activation,
    output_width,
)

DTYPES = (np.dtype(np.float64), np.dtype(np.float32))

T = TypeVar("T")


@dataclass(frozen=True)
class Architecture:
    """Layer widths (input first) and one activation per layer with weights."""

    widths: tuple[int, ...]
    g: tuple[AnyActivation, ...]

    @property
    def depth(self) -> int:
        return len(self.widths) - 1


def at_layer(values: Sequence[T | None], k: int) -> T:
    """``values[k]`` for a layer k ≥ 1 of a per-layer tuple (Θ, b, p, z, δ, ...), whose index 0,
    the input layer, alone holds ``None``."""
    value = values[k]
    assert value is not None, f"layer {k} has no entry (index 0, the input layer, alone is None)"
    return value


def activation_at(network: Network, k: int) -> AnyActivation:
    """g_k of a network's layer k ≥ 1 (``network.g[0]``, the input layer's, alone is ``None``)."""
    g = network.g[k]
    assert g is not None, f"layer {k} has no activation (index 0, the input layer, alone is None)"
    return g


@dataclass(frozen=True)
class Case:
    """One network with a batch of inputs x (one example per row) and targets y."""

    network: Network
    x: np.ndarray
    y: np.ndarray
    loss: Loss = field(default=MSE)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    def astype(self, dtype: np.dtype | type) -> Case:
        return Case(self.network.astype(dtype), self.x.astype(dtype), self.y.astype(dtype), self.loss)

    def rows(self, index: Sequence[int] | np.ndarray) -> Case:
        """The same network on a subset (or reordering) of the examples."""
        return Case(self.network, self.x[index], self.y[index], self.loss)

    def describe(self) -> str:
        """A short, replayable description: architecture, activations, batch size."""
        names = ", ".join(g.name for g in self.network.g[1:] if g is not None)  # index 0 alone is None
        return (
            f"widths {self.network.widths}, activations [{names}], {self.n} example(s), "
            f"{self.network.dtype}, loss {self.loss.name}"
        )


def _check_range(name: str, low: float, high: float, minimum: float) -> None:
    if not (minimum <= low <= high):
        raise InvalidArgument(f"{name}: need {minimum} <= min <= max, got min={low}, max={high}")


def _resolve(
    names: Sequence[str | Activation | OutputMap] | None, *, maps: bool = False
) -> list[Activation | OutputMap]:
    if names is None:
        return list(CATALOGUE.values())
    if len(names) == 0:
        raise InvalidArgument("activations: give at least one activation, or None for the catalogue")
    chosen: list[Activation | OutputMap] = []
    for item in names:
        if isinstance(item, Activation) or (maps and isinstance(item, OutputMap)):
            chosen.append(item)
            continue
        if maps and item in OUTPUT_MAPS:
            chosen.append(OUTPUT_MAPS[item])
            continue
        if not isinstance(item, str):  # an output map where only activations may go, or no activation at all
            raise InvalidArgument(f"{item!r} is not an activation: give a catalogue name or an Activation")
        try:
            chosen.append(activation(item))
        except (KeyError, TypeError) as error:
            raise InvalidArgument(f"{item!r} is not an activation: {error}") from None
    return chosen


def activations(*, names: Sequence[str | Activation] | None = None) -> st.SearchStrategy[Activation]:
    """One activation from ``names`` (catalogue names or ``Activation`` objects; all by default)."""
    return st.sampled_from(_resolve(names))


def architectures(
    *,
    min_depth: int = 1,
    max_depth: int = 6,
    min_width: int = 1,
    max_width: int = 16,
    activations: Sequence[str | Activation] | None = None,
    output_layers: Sequence[str | Activation | OutputMap] | None = None,
) -> st.SearchStrategy[Architecture]:
    """Depth L in [min_depth, max_depth], every width in [min_width, max_width], and an
    activation per layer drawn independently from ``activations`` (the catalogue by default);
    the output layer's from ``output_layers`` when given (names of activations or of the output
    maps softmax and log_softmax)."""
    _check_range("depth", min_depth, max_depth, 1)
    _check_range("width", min_width, max_width, 1)
    pool = _resolve(activations)
    outputs = pool if output_layers is None else _resolve(output_layers, maps=True)

    @st.composite
    def draw(draw_) -> Architecture:
        depth = draw_(st.integers(min_depth, max_depth))
        widths = tuple(draw_(st.lists(st.integers(min_width, max_width), min_size=depth + 1, max_size=depth + 1)))
        g = tuple(draw_(st.lists(st.sampled_from(pool), min_size=depth - 1, max_size=depth - 1)))
        return Architecture(widths, g + (draw_(st.sampled_from(outputs)),))

    return draw()


def _scale(name: str, value: float | tuple[float, float]) -> st.SearchStrategy[float]:
    low, high = (value, value) if isinstance(value, (int, float)) else value
    if not (0 < low <= high < 1e6):
        raise InvalidArgument(f"{name}: need 0 < min <= max < 1e6, got {value!r}")
    return st.just(float(low)) if low == high else st.floats(low, high)


TINY = 1e-6
"""Drawn magnitudes below this become 0, so no later scaling can turn them subnormal."""


def _no_tiny(value: float) -> float:
    return 0.0 if abs(value) < TINY else value


def unit_arrays(shape: tuple[int, ...], *, dtype: np.dtype | type = np.float64) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``shape`` with elements uniform in [−1, 1]: no NaN, no infinity, no subnormal
    (magnitudes below ``TINY`` become 0), and all elements distinct, so no array is mostly one
    repeated value and no two units start out as twins. Hypothesis draws a seed; NumPy's
    generator draws the numbers from it."""
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise InvalidArgument(f"dtype must be float32 or float64, got {dtype}")
    return _unit_arrays(tuple(int(size) for size in shape), dtype)


@lru_cache(maxsize=4096)
def _unit_arrays(shape: tuple[int, ...], dtype: np.dtype) -> st.SearchStrategy[np.ndarray]:
    # One strategy object per shape and dtype: Hypothesis validates and labels every new
    # strategy it draws from, which cost more than the draw when a layer's weights asked for
    # a new one in every example.
    return SEEDS.map(partial(_seeded_unit_array, shape, dtype))


SEEDS = st.integers(0, 2**32 - 1)
"""The seed of each array ``unit_arrays`` draws."""


def _seeded_unit_array(shape: tuple[int, ...], dtype: np.dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, int(np.prod(shape, dtype=np.int64))).astype(dtype)
    while True:  # a repeat (two tiny values made 0, or a float32 rounding) is drawn again
        u[np.abs(u) < TINY] = 0
        _, first = np.unique(u, return_index=True)
        repeat = np.ones(u.size, bool)
        repeat[first] = False
        if not repeat.any():
            return u.reshape(shape)
        u[repeat] = rng.uniform(-1, 1, int(repeat.sum())).astype(dtype)


def networks(
    architecture: Architecture,
    *,
    weight_scale: float | tuple[float, float] = (0.25, 2.0),
    dtype: np.dtype | type = np.float64,
) -> st.SearchStrategy[Network]:
    """Weights Θ⁽ᵏ⁾ = s·U/√n_{k−1} and biases b⁽ᵏ⁾ = s·U/√n_{k−1}, U elementwise in [−1, 1], s drawn
    from ``weight_scale`` once per network."""
    return _network(architecture, _scale("weight_scale", weight_scale), np.dtype(dtype))


@st.composite
def _network(draw_, architecture: Architecture, scales: st.SearchStrategy, dtype: np.dtype) -> Network:
    # At module level, like every composite called once per example: ``st.composite`` reads
    # the source of the function it wraps, which costs more than drawing from it.
    s = draw_(scales)
    theta, b, p = [None], [None], [None]
    n_in = architecture.widths[0]
    for g, n_out in zip(architecture.g, architecture.widths[1:], strict=True):
        std = np.asarray(s / np.sqrt(n_in), dtype)
        theta.append(draw_(unit_arrays((n_out, n_in), dtype=dtype)) * std)
        b.append(draw_(unit_arrays((n_out,), dtype=dtype)) * std)
        p.append(draw_(parameter_values(g, n_out, dtype=dtype)) if isinstance(g, ParametricActivation) else None)
        n_in = output_width(g, n_out)
    return Network(tuple(theta), tuple(b), (None,) + architecture.g, tuple(p))


def parameter_values(
    g: ParametricActivation, units: int, *, dtype: np.dtype | type = np.float64
) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """Values for every parameter of g across its valid range [low, high]: each one shared by
    the layer (shape ()) or one per unit (shape (units,), all different, so that a parameter
    broadcast over the wrong axis cannot pass), Hypothesis choosing which."""

    def one(q) -> st.SearchStrategy[np.ndarray]:
        def within(u: np.ndarray) -> np.ndarray:
            return (q.low + (u.astype(np.float64) + 1) / 2 * (q.high - q.low)).astype(dtype)

        return st.one_of(
            unit_arrays((units,), dtype=dtype).map(within),
            unit_arrays((1,), dtype=dtype).map(lambda u: within(u).reshape(())),
        )

    return st.fixed_dictionaries({q.name: one(q) for q in g.parameters})


KINDS = [*PARAMETRIC.values(), *VECTOR_ACTIVATIONS.values(), *OUTPUT_MAPS.values()]
"""Every activation with trainable parameters and every map that mixes units (softmax and
log_softmax included, which may sit in hidden layers too)."""


def mixed_architectures(
    *,
    max_depth: int = 4,
    max_width: int = 12,
    kinds: Sequence[Activation | ParametricActivation | VectorActivation] | None = None,
    elementwise: Sequence[str | Activation] | None = ("tanh", "relu", "gelu", "sigmoid"),
) -> st.SearchStrategy[Architecture]:
    """Architectures that mix every kind of activation: each layer's g from ``kinds`` (all the
    newer kinds by default) or ``elementwise``; each width a multiple of what its g needs (two
    for a GLU, k for maxout k), and the widths of z and of a all different where the range
    allows (so that no two axes can be mistaken for each other)."""
    _check_range("depth", 1, max_depth, 1)
    pool = list(kinds if kinds is not None else KINDS) + (_resolve(elementwise) if elementwise else [])

    @st.composite
    def draw(draw_) -> Architecture:
        depth = draw_(st.integers(1, max_depth))
        g = tuple(draw_(st.lists(st.sampled_from(pool), min_size=depth, max_size=depth)))
        used = {draw_(st.integers(1, max_width))}
        widths = [next(iter(used))]
        for g_k in g:
            group = g_k.group if isinstance(g_k, VectorActivation) else 1
            choices = list(range(group, max(max_width, group) + 1, group))
            fresh = [w for w in choices if w not in used and output_width(g_k, w) not in used] or choices
            w = draw_(st.sampled_from(fresh))
            used |= {w, output_width(g_k, w)}
            widths.append(w)
        return Architecture(tuple(widths), g)

    return draw()


def mixed_cases(
    *,
    max_depth: int = 4,
    max_width: int = 12,
    kinds=None,
    elementwise: Sequence[str | Activation] | None = ("tanh", "relu", "gelu", "sigmoid"),
    max_examples: int = 16,
    dtype: np.dtype | type = np.float64,
    loss: Loss = MSE,
    ties: bool = False,
) -> st.SearchStrategy[Case]:
    """A case whose network mixes the kinds of activation (``mixed_architectures``), with
    parameter values drawn across their ranges, a batch size unlike every width, and targets for
    ``loss``. With ``ties``, the first two units of every maxout group get the same weights and
    bias, so that their z tie exactly (where ``jax.grad`` splits the gradient)."""

    arch_strategy = mixed_architectures(max_depth=max_depth, max_width=max_width, kinds=kinds, elementwise=elementwise)

    @st.composite
    def draw(draw_) -> Case:
        arch = draw_(arch_strategy)
        network = draw_(networks(arch, dtype=dtype))
        if ties:
            network = tied(network)
        sizes = set(arch.widths) | {output_width(g, w) for g, w in zip(arch.g, arch.widths[1:], strict=True)}
        n = draw_(st.sampled_from([m for m in range(1, max_examples + 1) if m not in sizes] or [max_examples]))
        x = draw_(unit_arrays((n, arch.widths[0]), dtype=dtype))
        y = draw_(targets(loss, (n, network.output_width), dtype=dtype))
        return Case(network, x, y, loss)

    return draw()


def tied(network: Network) -> Network:
    """The same network with the first two units of every maxout group made twins (same row
    of Θ, same bias): their z are equal, the tie ``jax.grad`` splits the gradient at."""
    theta, b = list(network.theta), list(network.b)
    for k in range(1, network.depth + 1):
        g = network.g[k]
        if isinstance(g, VectorActivation) and g.mixes == "groups" and g.group > 1:
            theta_k, b_k = at_layer(theta, k).copy(), at_layer(b, k).copy()
            theta_k[1 :: g.group] = theta_k[0 :: g.group]
            b_k[1 :: g.group] = b_k[0 :: g.group]
            theta[k], b[k] = theta_k, b_k
    return Network(tuple(theta), tuple(b), network.g, network.p)


def batches(
    n_inputs: int,
    *,
    min_examples: int = 1,
    max_examples: int = 32,
    scale: float | tuple[float, float] = (0.1, 4.0),
    dtype: np.dtype | type = np.float64,
) -> st.SearchStrategy[np.ndarray]:
    """A batch of 1–32 examples (rows), each of ``n_inputs`` values in [−s, s], s drawn from ``scale``."""
    _check_range("examples", min_examples, max_examples, 1)
    if n_inputs < 1:
        raise InvalidArgument(f"n_inputs must be at least 1, got {n_inputs}")
    return _batch(n_inputs, st.integers(min_examples, max_examples), _scale("scale", scale), np.dtype(dtype))


@st.composite
def _batch(draw_, n_inputs: int, sizes: st.SearchStrategy, scales: st.SearchStrategy, dtype: np.dtype) -> np.ndarray:
    n = draw_(sizes)
    return draw_(unit_arrays((n, n_inputs), dtype=dtype)) * np.asarray(draw_(scales), dtype)


def targets(
    loss: Loss, shape: tuple[int, int], *, scale: float | tuple[float, float] = 1.0, dtype: np.dtype | type = np.float64
) -> st.SearchStrategy[np.ndarray]:
    """Valid targets for ``loss``: reals in [−s, s]; values in [0, 1] (binary cross-entropy);
    or rows that are probability distributions, one-hot half of the time (cross-entropy)."""
    scales = _scale("target_scale", scale)
    if loss.targets == "real":
        return st.tuples(unit_arrays(shape, dtype=dtype), scales).map(lambda p: p[0] * np.asarray(p[1], dtype))
    if loss.targets == "unit":
        return unit_arrays(shape, dtype=dtype).map(lambda u: np.abs(u))
    if loss.targets == "distribution":

        def normalise(u):
            w = np.abs(u) + 1e-3
            return (w / w.sum(axis=1, keepdims=True)).astype(dtype)

        one_hot = st.lists(st.integers(0, shape[1] - 1), min_size=shape[0], max_size=shape[0]).map(
            lambda idx: np.eye(shape[1], dtype=dtype)[idx]
        )
        return st.one_of(one_hot, unit_arrays(shape, dtype=dtype).map(normalise))
    raise InvalidArgument(f"loss {loss.name!r} has unknown targets {loss.targets!r}")


def make_targets(loss: Loss, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Valid targets from NumPy's generator (the bulk path of ``verify``): reals in [−1, 1],
    values in [0, 1], or probability rows (one-hot half the time)."""
    if loss.targets == "unit":
        return rng.uniform(0, 1, shape)
    if loss.targets == "distribution":
        if rng.uniform() < 0.5:
            return np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
        return rng.dirichlet(np.ones(shape[1]), shape[0])
    return rng.uniform(-1, 1, shape)


def losses(*, names: Sequence[str | Loss] | None = None) -> st.SearchStrategy[Loss]:
    """One loss from ``names`` (catalogue names or ``Loss`` objects; all by default)."""
    if names is None:
        return st.sampled_from(list(LOSSES.values()))
    chosen = []
    for item in names:
        if isinstance(item, Loss):
            chosen.append(item)
        elif item in LOSSES:
            chosen.append(LOSSES[item])
        else:
            raise InvalidArgument(f"unknown loss {item!r}; known: {', '.join(LOSSES)}")
    if not chosen:
        raise InvalidArgument("losses: give at least one loss, or None for the catalogue")
    return st.sampled_from(chosen)


def output_layers_for(loss: Loss) -> list:
    """The output layers a loss makes sense after: its own list, or every activation and map."""
    if loss.outputs:
        return [OUTPUT_MAPS.get(name) or CATALOGUE[name] for name in loss.outputs]
    return list(CATALOGUE.values()) + list(OUTPUT_MAPS.values())


def loss_cases(*, names: Sequence[str | Loss] | None = None, **kwargs) -> st.SearchStrategy[Case]:
    """A loss from the catalogue, a compatible output layer, valid targets and a case around
    them (``kwargs`` as for ``cases``)."""
    return losses(names=names).flatmap(lambda loss: cases(loss=loss, output_layers=output_layers_for(loss), **kwargs))


# The first keywords are architectures()'s, written out rather than passed as **kwargs so that
# the signature shows every option of a case, with its default and type.
def cases(
    *,
    min_depth: int = 1,
    max_depth: int = 6,
    min_width: int = 1,
    max_width: int = 16,
    activations: Sequence[str | Activation] | None = None,
    output_layers: Sequence[str | Activation | OutputMap] | None = None,
    min_examples: int = 1,
    max_examples: int = 32,
    weight_scale: float | tuple[float, float] = (0.25, 2.0),
    input_scale: float | tuple[float, float] = (0.1, 4.0),
    target_scale: float | tuple[float, float] = 1.0,
    dtype: np.dtype | type = np.float64,
    loss: Loss = MSE,
) -> st.SearchStrategy[Case]:
    """A whole case: an architecture, its weights, a batch x and targets y valid for ``loss``."""
    arch_strategy = architectures(
        min_depth=min_depth,
        max_depth=max_depth,
        min_width=min_width,
        max_width=max_width,
        activations=activations,
        output_layers=output_layers,
    )
    _scale("target_scale", target_scale)
    _scale("weight_scale", weight_scale), _scale("input_scale", input_scale)  # refuse nonsense now
    _check_range("examples", min_examples, max_examples, 1)

    @st.composite
    def draw(draw_) -> Case:
        arch = draw_(arch_strategy)
        network = draw_(networks(arch, weight_scale=weight_scale, dtype=dtype))
        x = draw_(
            batches(
                arch.widths[0], min_examples=min_examples, max_examples=max_examples, scale=input_scale, dtype=dtype
            )
        )
        y = draw_(targets(loss, (x.shape[0], network.output_width), scale=target_scale, dtype=dtype))
        return Case(network, x, y, loss)

    return draw()


def dtypes() -> st.SearchStrategy[np.dtype]:
    """float64 or float32."""
    return st.sampled_from(DTYPES)
