"""Hypothesis strategies for networks, batches and cases, reusable in your own tests.

Every strategy takes keyword-only arguments and raises ``hypothesis.errors.InvalidArgument``
for a request that makes no sense (``max_depth=0``, a width range upside down, an unknown
activation name). Arrays are drawn element by element with ``hypothesis.extra.numpy.arrays``
(``fill=nothing()`` and ``unique=True``, so no array is mostly one repeated value) from floats without subnormals,
so a failing case shrinks to small, readable numbers.

    from hypothesis import given
    from property_tests.strategies import cases

    @given(cases(max_depth=3, activations=["tanh", "relu"]))
    def test_mine(case): ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from manual import CATALOGUE, MSE, Activation, Loss, Network, activation

DTYPES = (np.dtype(np.float64), np.dtype(np.float32))


@dataclass(frozen=True)
class Architecture:
    """Layer widths (input first) and one activation per layer with weights."""

    widths: tuple[int, ...]
    g: tuple[Activation, ...]

    @property
    def depth(self) -> int:
        return len(self.widths) - 1


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

    def astype(self, dtype: np.dtype | type) -> "Case":
        return Case(self.network.astype(dtype), self.x.astype(dtype), self.y.astype(dtype), self.loss)

    def rows(self, index: Sequence[int] | np.ndarray) -> "Case":
        """The same network on a subset (or reordering) of the examples."""
        return Case(self.network, self.x[index], self.y[index], self.loss)

    def describe(self) -> str:
        """A short, replayable description: architecture, activations, batch size."""
        names = ", ".join(g.name for g in self.network.g[1:])
        return (f"widths {self.network.widths}, activations [{names}], {self.n} example(s), "
                f"{self.network.dtype}, loss {self.loss.name}")


def _check_range(name: str, low: float, high: float, minimum: float) -> None:
    if not (minimum <= low <= high):
        raise InvalidArgument(f"{name}: need {minimum} <= min <= max, got min={low}, max={high}")


def _resolve(names: Sequence[str | Activation] | None) -> list[Activation]:
    if names is None:
        return list(CATALOGUE.values())
    if len(names) == 0:
        raise InvalidArgument("activations: give at least one activation, or None for the catalogue")
    chosen = []
    for item in names:
        if isinstance(item, Activation):
            chosen.append(item)
            continue
        try:
            chosen.append(activation(item))
        except KeyError as error:
            raise InvalidArgument(str(error.args[0])) from None
    return chosen


def activations(*, names: Sequence[str | Activation] | None = None) -> st.SearchStrategy[Activation]:
    """One activation from ``names`` (catalogue names or ``Activation`` objects; all by default)."""
    return st.sampled_from(_resolve(names))


def architectures(*, min_depth: int = 1, max_depth: int = 6, min_width: int = 1, max_width: int = 16,
                  activations: Sequence[str | Activation] | None = None,
                  ) -> st.SearchStrategy[Architecture]:
    """Depth L in [min_depth, max_depth], every width in [min_width, max_width], and an
    activation per layer drawn independently from ``activations`` (the catalogue by default)."""
    _check_range("depth", min_depth, max_depth, 1)
    _check_range("width", min_width, max_width, 1)
    pool = _resolve(activations)

    @st.composite
    def draw(draw_) -> Architecture:
        depth = draw_(st.integers(min_depth, max_depth))
        widths = tuple(draw_(st.lists(st.integers(min_width, max_width), min_size=depth + 1,
                                      max_size=depth + 1)))
        g = tuple(draw_(st.lists(st.sampled_from(pool), min_size=depth, max_size=depth)))
        return Architecture(widths, g)

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
    """Arrays of ``shape`` with every element drawn from [−1, 1]: no NaN, no infinity, no
    subnormal, every element drawn on its own and all of them distinct (so no array is mostly
    one repeated value, and no two units start out as twins)."""
    dtype = np.dtype(dtype)
    if dtype not in DTYPES:
        raise InvalidArgument(f"dtype must be float32 or float64, got {dtype}")
    elements = st.floats(-1, 1, allow_nan=False, allow_infinity=False, allow_subnormal=False,
                         width=32 if dtype == np.float32 else 64).map(_no_tiny)
    return hnp.arrays(dtype, shape, elements=elements, fill=st.nothing(), unique=True)


def networks(architecture: Architecture, *, weight_scale: float | tuple[float, float] = (0.25, 2.0),
             dtype: np.dtype | type = np.float64) -> st.SearchStrategy[Network]:
    """Weights Θ⁽ᵏ⁾ = s·U/√n_{k−1} and biases b⁽ᵏ⁾ = s·U/√n_{k−1}, U elementwise in [−1, 1], s drawn
    from ``weight_scale`` once per network."""
    scales = _scale("weight_scale", weight_scale)

    @st.composite
    def draw(draw_) -> Network:
        s = draw_(scales)
        theta, b = [None], [None]
        for n_in, n_out in zip(architecture.widths[:-1], architecture.widths[1:]):
            std = np.asarray(s / np.sqrt(n_in), dtype)
            theta.append(draw_(unit_arrays((n_out, n_in), dtype=dtype)) * std)
            b.append(draw_(unit_arrays((n_out,), dtype=dtype)) * std)
        return Network(tuple(theta), tuple(b), (None,) + architecture.g)

    return draw()


def batches(n_inputs: int, *, min_examples: int = 1, max_examples: int = 32,
            scale: float | tuple[float, float] = (0.1, 4.0),
            dtype: np.dtype | type = np.float64) -> st.SearchStrategy[np.ndarray]:
    """A batch of 1–32 examples (rows), each of ``n_inputs`` values in [−s, s], s drawn from ``scale``."""
    _check_range("examples", min_examples, max_examples, 1)
    if n_inputs < 1:
        raise InvalidArgument(f"n_inputs must be at least 1, got {n_inputs}")
    scales = _scale("scale", scale)

    @st.composite
    def draw(draw_) -> np.ndarray:
        n = draw_(st.integers(min_examples, max_examples))
        return draw_(unit_arrays((n, n_inputs), dtype=dtype)) * np.asarray(draw_(scales), dtype)

    return draw()


def cases(*, min_depth: int = 1, max_depth: int = 6, min_width: int = 1, max_width: int = 16,
          activations: Sequence[str | Activation] | None = None,
          min_examples: int = 1, max_examples: int = 32,
          weight_scale: float | tuple[float, float] = (0.25, 2.0),
          input_scale: float | tuple[float, float] = (0.1, 4.0),
          target_scale: float | tuple[float, float] = 1.0,
          dtype: np.dtype | type = np.float64, loss: Loss = MSE) -> st.SearchStrategy[Case]:
    """A whole case: an architecture, its weights, a batch x and targets y (in [−s, s])."""
    arch_strategy = architectures(min_depth=min_depth, max_depth=max_depth, min_width=min_width,
                                  max_width=max_width, activations=activations)
    targets = _scale("target_scale", target_scale)
    _scale("weight_scale", weight_scale), _scale("input_scale", input_scale)  # refuse nonsense now
    _check_range("examples", min_examples, max_examples, 1)

    @st.composite
    def draw(draw_) -> Case:
        arch = draw_(arch_strategy)
        network = draw_(networks(arch, weight_scale=weight_scale, dtype=dtype))
        x = draw_(batches(arch.widths[0], min_examples=min_examples, max_examples=max_examples,
                          scale=input_scale, dtype=dtype))
        y = draw_(unit_arrays((x.shape[0], arch.widths[-1]), dtype=dtype)) * np.asarray(draw_(targets), dtype)
        return Case(network, x, y, loss)

    return draw()


def dtypes() -> st.SearchStrategy[np.dtype]:
    """float64 or float32."""
    return st.sampled_from(DTYPES)
