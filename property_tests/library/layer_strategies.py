"""Hypothesis strategies for networks of layers: one or two convolution blocks (a convolution
with any activation of the catalogue, then maybe max or average pooling), flatten, maybe a
hidden dense layer, and a dense output layer; a batch of images and targets.

Every configuration the issue names is drawn: images 1–12 on a side, channels 1–4, kernels
1–5, strides 1–3, padding 0–2, dilation 1–2, pooling windows 1–3 with strides 1–3 and padding
below the window. Only valid combinations are drawn (each layer must fit what reaches it), and
sizes the stride does not divide come up by themselves as often as not. Weights are uniform in
±scale/√fan_in, so every z stays of moderate size whatever the depth. With ``ties`` the images
are drawn from a few levels only and reach max pooling through a 1×1 convolution, which
keeps them tied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from manual import CATALOGUE, CROSS_ENTROPY, MSE, SOFTMAX, Activation, Loss
from manual.conv import Conv2D
from manual.layers import Dense, LayerNetwork, kind_of, layer_config
from manual.norms import BatchNorm, LayerNorm, RMSNorm
from manual.pooling import AvgPool2D, Flatten, MaxPool2D
from manual.residual import Residual
from property_tests.library.strategies import unit_arrays


@dataclass(frozen=True, eq=False)
class LayerCase:
    """One layer network, a batch x (NCHW) and targets y, and the loss between them."""

    network: LayerNetwork
    x: np.ndarray
    y: np.ndarray
    loss: Loss

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    def astype(self, dtype: np.dtype | type) -> LayerCase:
        return LayerCase(self.network.astype(dtype), self.x.astype(dtype), self.y.astype(dtype), self.loss)

    def describe(self) -> str:
        """The architecture as one line: every layer's kind, settings and activation."""
        parts = []
        for layer, g in zip(self.network.layers[1:], self.network.g[1:], strict=True):
            settings = ", ".join(f"{k}={v}" for k, v in layer_config(layer).items())
            parts.append(f"{kind_of(layer)}({settings})" + ("" if g is None else f"→{g.name}"))
        return f"x {self.x.shape} {self.dtype}, loss {self.loss.name}: " + " · ".join(parts)


def _fits(size: int, span: int, padding: int) -> bool:
    return size + 2 * padding >= span


@st.composite
def _conv(draw, shape: tuple[int, int, int], max_channels: int) -> Conv2D | None:
    c, h, w = shape
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    kernel = []
    for size, p, d in zip((h, w), padding, dilation, strict=True):
        fitting = [k for k in range(1, 6) if _fits(size, d * (k - 1) + 1, p)]
        kernel.append(draw(st.sampled_from(fitting)))
    return Conv2D(c, draw(st.integers(1, max_channels)), tuple(kernel), stride, padding, dilation)


@st.composite
def _pool(draw, shape: tuple[int, int, int]):
    _, h, w = shape
    window = (draw(st.integers(1, min(3, h + 2))), draw(st.integers(1, min(3, w + 2))))
    padding = tuple(draw(st.integers(0, min(2, k - 1))) for k in window)
    if not all(_fits(size, k, p) for size, k, p in zip((h, w), window, padding, strict=True)):
        return None
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return draw(st.sampled_from([MaxPool2D, AvgPool2D]))(window, stride, padding)


def layer_architectures(
    *,
    activations: list[Activation] | None = None,
    max_blocks: int = 2,
    max_channels: int = 4,
    max_size: int = 12,
    pool_first: bool = False,
) -> st.SearchStrategy:
    """(in_shape, [(layer, activation or None), …]) of a valid layer network; with
    ``pool_first``, a one-channel image goes through a 1×1 convolution and g (which keep equal
    pixels equal, exactly) into max pooling of at least 2 inputs a window, then the blocks."""
    pool_of_g = list(CATALOGUE.values()) if activations is None else activations

    @st.composite
    def draw(draw_):
        in_shape = (draw_(st.integers(1, 3)), draw_(st.integers(1, max_size)), draw_(st.integers(1, max_size)))
        stack, shape = [], in_shape
        if pool_first:  # equal pixels stay equal through a 1×1 convolution of one channel and g
            in_shape = shape = (1,) + in_shape[1:]
            conv = Conv2D(1, draw_(st.integers(1, max_channels)), (1, 1))
            stack.append((conv, draw_(st.sampled_from(pool_of_g))))
            shape = conv.out_shape(shape)
            pool = draw_(_pool(shape))
            if pool is not None and pool.window[0] * pool.window[1] > 1:
                pool = MaxPool2D(pool.window, pool.stride, pool.padding)
                stack.append((pool, None))
                shape = pool.out_shape(shape)
        for _ in range(draw_(st.integers(1, max_blocks))):
            conv = draw_(_conv(shape, max_channels))
            stack.append((conv, draw_(st.sampled_from(pool_of_g))))
            shape = conv.out_shape(shape)
            if draw_(st.booleans()):
                pool = draw_(_pool(shape))
                if pool is not None:
                    stack.append((pool, None))
                    shape = pool.out_shape(shape)
        stack.append((Flatten(), None))
        if draw_(st.booleans()):
            stack.append((Dense(draw_(st.integers(1, 5))), draw_(st.sampled_from(pool_of_g))))
        output = draw_(st.sampled_from([None, SOFTMAX, *pool_of_g]))
        units = draw_(st.integers(2 if output is SOFTMAX else 1, 3))
        stack.append((Dense(units), output))
        return in_shape, stack

    return draw()


def _scaled(array: np.ndarray, fan_in: int, scale: float) -> np.ndarray:
    return (array * (scale / np.sqrt(fan_in))).astype(array.dtype)


def _parameters(draw, layer, shape, dtype, scale: float) -> dict:
    template = layer.init(np.random.default_rng(0), shape, dtype)
    if not template:
        return {}
    fan_in = int(np.prod(template["W" if "W" in template else "theta"].shape[1:]))
    return {name: _scaled(draw(unit_arrays(v.shape, dtype=dtype)), fan_in, scale) for name, v in template.items()}


def _with_targets(draw, network: LayerNetwork, x: np.ndarray, softmax: bool) -> LayerCase:
    """The case with its targets: one-hot under cross-entropy after softmax, else uniform in
    ±1 under the mean squared error."""
    n, units, dtype = x.shape[0], network.output_width, x.dtype
    if softmax:
        labels = draw(st.lists(st.integers(0, units - 1), min_size=n, max_size=n))
        return LayerCase(network, x, np.eye(units, dtype=dtype)[labels], CROSS_ENTROPY)
    return LayerCase(network, x, draw(unit_arrays((n, units), dtype=dtype)), MSE)


def layer_cases(
    *,
    dtype: np.dtype | type = np.float64,
    max_examples: int = 4,
    ties: bool = False,
    activations: list[Activation] | None = None,
    max_blocks: int = 2,
) -> st.SearchStrategy[LayerCase]:
    """A layer network with parameters, a batch and targets; softmax outputs are paired with
    cross-entropy and one-hot targets, every other output with the mean squared error."""
    dtype = np.dtype(dtype)

    architectures = layer_architectures(activations=activations, max_blocks=max_blocks, pool_first=ties)

    @st.composite
    def draw(draw_) -> LayerCase:
        in_shape, stack = draw_(architectures)
        scale = draw_(st.sampled_from([0.5, 1.0, 2.0]))
        params: list[dict | None] = [None]  # index 0, the input layer, has none
        shape = in_shape
        for layer, _ in stack:
            params.append(_parameters(draw_, layer, shape, dtype, scale))
            shape = layer.out_shape(shape)
        network = LayerNetwork(
            in_shape, (None,) + tuple(s[0] for s in stack), tuple(params), (None,) + tuple(s[1] for s in stack)
        )
        n = draw_(st.integers(1, max_examples))
        x = draw_(unit_arrays((n, *in_shape), dtype=dtype))
        if ties:
            x = (np.round(x * 2) / 2).astype(dtype)  # five levels: many exact ties in every window
        return _with_targets(draw_, network, x, stack[-1][1] is SOFTMAX)

    return draw()


def describe_kinds(network: LayerNetwork) -> list[str]:
    """The kinds of a network's layers, in order."""
    return [kind_of(layer) for layer in network.layers[1:]]


# --- networks with normalization and residual layers -----------------------------------------------

NORMS = (LayerNorm, RMSNorm, BatchNorm)


@st.composite
def _stage(draw, width: int, pool_of_g: list):
    """One stage of a mixed network at ``width`` units: a dense layer, a residual block, or a norm
    (with an activation after it, or none)."""
    kind = draw(st.sampled_from(["dense", "residual", "norm"]))
    g = draw(st.sampled_from([None, *pool_of_g]))
    if kind == "dense":
        return Dense(draw(st.integers(1, 6))), draw(st.sampled_from(pool_of_g))
    if kind == "residual":
        return Residual(width, draw(st.sampled_from(pool_of_g))), g
    return draw(st.sampled_from(NORMS))(), g


def mixed_layer_architectures(
    *, activations: list[Activation] | None = None, max_stages: int = 4, conv_front: bool | None = None
) -> st.SearchStrategy:
    """(in_shape, [(layer, activation or None), …]): dense layers, residual blocks and norms in
    any order (a norm may come first, on the input itself), maybe after a convolution and a
    flatten, then a dense output layer."""
    pool_of_g = list(CATALOGUE.values()) if activations is None else activations

    @st.composite
    def draw(draw_):
        front = draw_(st.booleans()) if conv_front is None else conv_front
        if front:
            in_shape = (draw_(st.integers(1, 2)), draw_(st.integers(2, 6)), draw_(st.integers(2, 6)))
            conv = draw_(_conv(in_shape, 3))
            stack = [(conv, draw_(st.sampled_from(pool_of_g))), (Flatten(), None)]
            width = int(np.prod(conv.out_shape(in_shape)))
        else:
            width = draw_(st.integers(1, 6))
            in_shape, stack = (width,), []
        for _ in range(draw_(st.integers(1, max_stages))):
            layer, g = draw_(_stage(width, pool_of_g))
            stack.append((layer, g))
            width = layer.out_shape((width,))[0]
        output = draw_(st.sampled_from([None, SOFTMAX, *pool_of_g]))
        stack.append((Dense(draw_(st.integers(2 if output is SOFTMAX else 1, 3))), output))
        return in_shape, stack

    return draw()


def _norm_parameters(draw, layer, shape, dtype) -> dict:
    template = layer.init(np.random.default_rng(0), shape, dtype)
    return {
        name: (draw(unit_arrays(v.shape, dtype=dtype)) + (1 if name == "gamma" else 0)).astype(dtype)
        for name, v in template.items()
    }


def mixed_layer_cases(
    *,
    dtype: np.dtype | type = np.float64,
    max_examples: int = 5,
    activations: list[Activation] | None = None,
    flat_rows: bool | None = None,
    conv_front: bool | None = None,
) -> st.SearchStrategy[LayerCase]:
    """A network of ``mixed_layer_architectures`` with parameters (γ around 1, β around 0,
    weights as ``layer_cases``), a batch and targets. With ``flat_rows`` some examples of x are
    a constant plus noise of 1e-6 or exactly constant, so that a norm on the input meets a
    variance far below its ε (and, for BatchNorm, units that barely vary over the batch). A
    network with BatchNorm gets at least two examples."""
    dtype = np.dtype(dtype)

    architectures = mixed_layer_architectures(activations=activations, conv_front=conv_front)

    @st.composite
    def draw(draw_) -> LayerCase:
        in_shape, stack = draw_(architectures)
        scale = draw_(st.sampled_from([0.5, 1.0, 2.0]))
        params: list[dict | None] = [None]  # index 0, the input layer, has none
        shape = in_shape
        for layer, _ in stack:
            if isinstance(layer, NORMS):
                params.append(_norm_parameters(draw_, layer, shape, dtype))
            else:
                params.append(_parameters(draw_, layer, shape, dtype, scale))
            shape = layer.out_shape(shape)
        network = LayerNetwork(
            in_shape, (None,) + tuple(s[0] for s in stack), tuple(params), (None,) + tuple(s[1] for s in stack)
        )
        least = 2 if any(isinstance(layer, BatchNorm) for layer, _ in stack) else 1
        n = draw_(st.integers(least, max(least, max_examples)))
        x = draw_(unit_arrays((n, *in_shape), dtype=dtype))
        if draw_(st.booleans()) if flat_rows is None else flat_rows:
            level = draw_(unit_arrays((n,) + (1,) * len(in_shape), dtype=dtype))
            tiny = draw_(st.sampled_from([0.0, 1e-6]))
            x = (level + tiny * x).astype(dtype)
        return _with_targets(draw_, network, x, stack[-1][1] is SOFTMAX)

    return draw()
