"""A network as a sequence of layers (convolution, pooling, flatten, dense), and the three
equations through it (docs/convolution.md, docs/pooling.md).

Layer k turns a⁽ᵏ⁻¹⁾ into its weighted input z⁽ᵏ⁾ = layer_k(a⁽ᵏ⁻¹⁾; params⁽ᵏ⁾), then
a⁽ᵏ⁾ = g_k(z⁽ᵏ⁾); a pooling or flatten layer has no activation (``g[k]`` is ``None``: a⁽ᵏ⁾ = z⁽ᵏ⁾).
Every layer kind answers the same four questions, which is all backpropagation needs of it:

    out_shape(in_shape)                          the shape of z⁽ᵏ⁾ per example
    forward(a_prev, params)                      z⁽ᵏ⁾
    input_delta(delta, a_prev, params)           (∂z⁽ᵏ⁾/∂a⁽ᵏ⁻¹⁾)ᵀ δ⁽ᵏ⁾, per example: (2) before its ⊙
    parameter_gradients(delta, a_prev, params)   (3): ∂E/∂(each parameter), averaged over the batch

For a dense layer ``input_delta`` is (Θ⁽ᵏ⁾)ᵀδ⁽ᵏ⁾ and the equations below are exactly
``manual.backprop``'s; for a convolution it is the full correlation with the rotated kernel.
A new layer kind is one module with these four methods plus one line in ``LAYER_KINDS``.

As in ``manual.backprop``, δ⁽ᵏ⁾ holds ∂Eₜ/∂z⁽ᵏ⁾ per example (not divided by n); the 1/n of
E = (1/n) Σₜ Eₜ is applied once, in (3). Index k is the layer number; index 0 is ``None``
(``a[0]`` is x).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .activations import Activation
from .backprop import output_delta, parameter_gradients
from .conv import Conv2D
from .losses import MSE, Loss
from .network import FLOAT_DTYPES, check_targets
from .norms import BatchNorm, LayerNorm, RMSNorm
from .pooling import AvgPool2D, Flatten, MaxPool2D
from .residual import Residual
from .vector_activations import VectorActivation

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Params = Mapping[str, np.ndarray]
Shape = tuple[int, ...]


class Layer(Protocol):
    """What a layer kind provides (see the module's docstring)."""

    def out_shape(self, in_shape: Shape) -> Shape: ...
    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: np.dtype | type = np.float64) -> dict: ...
    def forward(self, a_prev: np.ndarray, params: Params) -> np.ndarray: ...
    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> np.ndarray: ...
    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> dict: ...


@dataclass(frozen=True)
class Dense:
    """z = Θa + b on rows: ``z = a_prev @ theta.T + b``, the essay's layer, for a (n, units) input."""

    units: int

    def __post_init__(self) -> None:
        if not isinstance(self.units, (int, np.integer)) or isinstance(self.units, bool) or self.units < 1:
            raise ValueError(f"units must be an integer of at least 1, got {self.units!r}")

    def out_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 1:
            raise ValueError(f"a dense layer takes one row per example, not {in_shape}: put a Flatten before it")
        return (self.units,)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype: np.dtype | type = np.float64) -> dict:
        """Θ ~ N(0, 1/n_in) and b ~ N(0, 1/n_in), as ``init_network``."""
        self.out_shape(in_shape)
        (n_in,) = in_shape
        std = 1 / np.sqrt(n_in)
        return {
            "theta": (std * rng.standard_normal((self.units, n_in))).astype(dtype),
            "b": (std * rng.standard_normal(self.units)).astype(dtype),
        }

    def forward(self, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾ for every row."""
        return a_prev @ params["theta"].T + params["b"]

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> np.ndarray:
        """(Θ⁽ᵏ⁾)ᵀδ⁽ᵏ⁾ for every row: ``delta @ theta``, the product of ``hidden_delta``."""
        return delta @ params["theta"]  # (2), before its ⊙

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> dict:
        """Equation (3), ``manual.backprop.parameter_gradients``."""
        grad_theta, grad_b = parameter_gradients(delta, a_prev)  # (3)
        return {"theta": grad_theta, "b": grad_b}


LAYER_KINDS: dict[str, type] = {
    "conv2d": Conv2D,
    "max_pool": MaxPool2D,
    "avg_pool": AvgPool2D,
    "flatten": Flatten,
    "dense": Dense,
    "layer_norm": LayerNorm,
    "rms_norm": RMSNorm,
    "batch_norm": BatchNorm,
    "residual": Residual,
}
"""Every layer kind by name: adding one is a module with the four methods and a line here."""


def kind_of(layer: object) -> str:
    """The registered name of a layer's kind: a subclass is of the nearest registered class it
    derives from (in its method resolution order), so a BatchNorm's subclass is of the kind
    ``batch_norm``, not of ``layer_norm``, from which BatchNorm itself derives."""
    for cls in type(layer).__mro__:  # the layer's own class first, then its parents, nearest first
        for name, kind in LAYER_KINDS.items():
            if cls is kind:
                return name
    raise ValueError(f"{type(layer).__name__} is not a registered layer kind ({', '.join(LAYER_KINDS)})")


def layer_config(layer: DataclassInstance) -> dict:
    """A layer's settings by name (its dataclass fields), e.g. ``{"kernel": (3, 3), …}``."""
    return {field.name: getattr(layer, field.name) for field in dataclasses.fields(layer)}


@dataclass(frozen=True)
class LayerNetwork:
    """A sequence of layers with their parameters and activations; index 0 is ``None``.

    ``in_shape`` is one example's shape, (C, H, W) for images. ``g[k]`` is an elementwise
    ``Activation``, ``None`` (no activation: a pooling or flatten layer, or a linear layer),
    or, for a dense last layer only, an output map such as softmax."""

    in_shape: Shape
    layers: tuple
    params: tuple
    g: tuple

    # Same shape as manual.network.Network (checked on creation, depth = entries − 1): the dense
    # network and the layer network are separate types with their own fields and checks.
    def __post_init__(self) -> None:
        check_layer_network(self)

    @property
    def depth(self) -> int:
        return len(self.layers) - 1

    @property
    def shapes(self) -> tuple[Shape, ...]:
        """One example's shape of a⁽⁰⁾ (the input), z⁽¹⁾, …, z⁽ᴸ⁾."""
        shapes = [tuple(self.in_shape)]
        for layer in self.layers[1:]:
            shapes.append(tuple(layer.out_shape(shapes[-1])))
        return tuple(shapes)

    @property
    def output_width(self) -> int:
        return self.shapes[-1][0]

    @property
    def dtype(self) -> np.dtype:
        for p in self.params[1:]:
            for value in p.values():
                return value.dtype
        return np.dtype(np.float64)

    def astype(self, dtype: np.dtype | type) -> LayerNetwork:
        """The same network with every parameter rounded to ``dtype``."""
        params = (None,) + tuple({name: v.astype(dtype) for name, v in p.items()} for p in self.params[1:])
        return LayerNetwork(self.in_shape, self.layers, params, self.g)


def check_layer_network(net: LayerNetwork) -> None:
    """Raise ``ValueError`` with one clear sentence if the network's pieces do not fit."""
    layers, params, g = net.layers, net.params, net.g
    if not (len(layers) == len(params) == len(g)) or len(layers) < 2:
        raise ValueError("a network needs at least one layer, and one parameter dict and activation per layer")
    if layers[0] is not None or params[0] is not None or g[0] is not None:
        raise ValueError("index 0 of layers, params and g must be None: layer 0 is the input")
    shape, dtypes = tuple(net.in_shape), set()
    for k in range(1, len(layers)):
        kind_of(layers[k])
        expected = layers[k].init(np.random.default_rng(0), shape)  # also checks that the layer fits
        if set(params[k]) != set(expected):
            raise ValueError(
                f"layer {k} ({kind_of(layers[k])}) needs the parameters {sorted(expected)}, got {sorted(params[k])}"
            )
        for name, value in params[k].items():
            if not isinstance(value, np.ndarray) or value.shape != expected[name].shape:
                raise ValueError(f"layer {k}: {name} must be an array of shape {expected[name].shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"layer {k}: {name} contains NaN or infinity")
            dtypes.add(value.dtype)
        shape = layers[k].out_shape(shape)
        if (
            g[k] is not None
            and not isinstance(g[k], Activation)
            and not (k == len(layers) - 1 and isinstance(g[k], VectorActivation) and len(shape) == 1)
        ):
            raise ValueError(
                f"layer {k}: the activation must be an elementwise Activation or None "
                f"(an output map such as softmax only after a dense last layer)"
            )
    if len(dtypes) > 1 or not dtypes <= set(FLOAT_DTYPES):
        raise ValueError("every parameter must share one dtype, float32 or float64")
    if len(shape) != 1:
        raise ValueError(f"the last layer must give one row per example (end with Flatten or Dense), not {shape}")


def init_layer_network(
    in_shape: Shape,
    stack: Sequence[tuple[Layer, Activation | VectorActivation | None]],
    rng: np.random.Generator,
    *,
    dtype: np.dtype | type = np.float64,
) -> LayerNetwork:
    """A network from (layer, activation) pairs, each layer's parameters from its ``init``."""
    params: list[dict | None] = [None]
    shape = tuple(in_shape)
    for layer, _ in stack:
        params.append(layer.init(rng, shape, dtype))
        shape = layer.out_shape(shape)
    return LayerNetwork(
        tuple(in_shape),
        (None,) + tuple(layer for layer, _ in stack),
        tuple(params),
        (None,) + tuple(g for _, g in stack),
    )


@dataclass(frozen=True)
class LayerForward:
    """Every z⁽ᵏ⁾ and a⁽ᵏ⁾ (``a[0]`` is x, ``z[0]`` is ``None``)."""

    z: tuple
    a: tuple


@dataclass(frozen=True)
class LayerGradients:
    """Every δ⁽ᵏ⁾ (∂Eₜ/∂z⁽ᵏ⁾ per example) and every layer's ∂E/∂(parameter), by name."""

    delta: tuple
    params: tuple


def check_layer_input(net: LayerNetwork, x: np.ndarray) -> None:
    """Raise ``ValueError`` with one clear sentence if x does not fit the network."""
    if not isinstance(x, np.ndarray) or x.shape[1:] != tuple(net.in_shape):
        raise ValueError(f"x must be an array of shape (n, {', '.join(map(str, net.in_shape))}), got {np.shape(x)}")
    if x.shape[0] < 1:
        raise ValueError("x needs at least one example")
    if x.dtype != net.dtype:
        raise ValueError(f"x is {x.dtype} but the network is {net.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinity")


def layer_forward(net: LayerNetwork, x: np.ndarray) -> LayerForward:
    """z⁽ᵏ⁾ = layer_k(a⁽ᵏ⁻¹⁾) and a⁽ᵏ⁾ = g_k(z⁽ᵏ⁾) for k = 1 … L."""
    check_layer_input(net, x)
    z: list[np.ndarray | None] = [None]
    a = [x]
    for k in range(1, net.depth + 1):
        z_k = net.layers[k].forward(a[k - 1], net.params[k])
        z.append(z_k)
        a.append(z_k if net.g[k] is None else net.g[k].forward(z_k, np))
    return LayerForward(tuple(z), tuple(a))


def delta_through(
    layer: Layer, delta_next: np.ndarray, a_k: np.ndarray, params_next: Params, z_k: np.ndarray, g_k: Activation | None
) -> np.ndarray:
    """Equation (2) through any layer k + 1, moving backwards to layer k:

        δ⁽ᵏ⁾ = (∂z⁽ᵏ⁺¹⁾/∂a⁽ᵏ⁾)ᵀ δ⁽ᵏ⁺¹⁾ ⊙ g_k′(z⁽ᵏ⁾)

    The first factor is the layer's ``input_delta``: (Θ⁽ᵏ⁺¹⁾)ᵀδ⁽ᵏ⁺¹⁾ for a dense layer, δ
    correlated with the kernel rotated by 180° for a convolution, δ routed to each window's
    maximum for max pooling. Without an activation (g_k is None) g_k′ = 1.
    """
    grad_a = layer.input_delta(delta_next, a_k, params_next)
    if g_k is None:
        return grad_a  # (2), a⁽ᵏ⁾ = z⁽ᵏ⁾
    return grad_a * g_k.derivative(z_k, np)  # (2)


def last_delta(
    g_L: Activation | VectorActivation | None, z_L: np.ndarray, a_L: np.ndarray, y: np.ndarray, loss: Loss
) -> np.ndarray:
    """Equation (1) for the last layer: ``output_delta`` (δ⁽ᴸ⁾ = ∇ₐE ⊙ g_L′(z⁽ᴸ⁾), or J_gᵀ∇ₐE
    for softmax), a − y when the loss is fused with g_L, ∇ₐE itself when there is no g_L."""
    if g_L is not None and loss.fuses(g_L):
        assert loss.fused_delta is not None  # a loss that fuses with g_L carries its fused forms
        return loss.fused_delta(z_L, y, np)  # (1), fused with the loss: a − y
    if g_L is None:
        return loss.gradient(a_L, y, np)  # (1), g_L′ = 1
    return output_delta(loss.gradient(a_L, y, np), z_L, g_L)  # (1)


def layer_backward(net: LayerNetwork, z: tuple, a: tuple, y: np.ndarray, *, loss: Loss = MSE) -> LayerGradients:
    """Equations (1), (2), (3) through the layers, from the forward pass's z and a."""
    L = net.depth
    delta: list[np.ndarray | None] = [None] * (L + 1)
    delta[L] = last_delta(net.g[L], z[L], a[L], y, loss)  # (1)
    for k in range(L - 1, 0, -1):
        delta_next = delta[k + 1]
        assert delta_next is not None  # δ⁽ᵏ⁺¹⁾ was just computed
        delta[k] = delta_through(net.layers[k + 1], delta_next, a[k], net.params[k + 1], z[k], net.g[k])  # (2)
    grads = [None] + [
        net.layers[k].parameter_gradients(delta[k], a[k - 1], net.params[k])  # (3)
        for k in range(1, L + 1)
    ]
    return LayerGradients(tuple(delta), tuple(grads))


def layer_gradients(net: LayerNetwork, x: np.ndarray, y: np.ndarray, *, loss: Loss = MSE) -> LayerGradients:
    """Forward pass, then backward pass, for the batch x, y."""
    check_layer_input(net, x)
    check_targets(y, x.shape[0], net.output_width)
    fwd = layer_forward(net, x)
    return layer_backward(net, fwd.z, fwd.a, y, loss=loss)
