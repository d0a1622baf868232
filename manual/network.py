"""A feed-forward network and its forward pass.

Layers are numbered as in the derivation, k = 1 … L, and the Python index is the layer number:
``theta[k]`` is Θ⁽ᵏ⁾, ``z[k]`` is z⁽ᵏ⁾, ``a[k]`` is a⁽ᵏ⁾ with ``a[0]`` the input x. Index 0 of
``theta``, ``b``, ``g`` and ``z`` is ``None`` because layer 0 has no weights.

Examples are the rows of every matrix: for a batch of n examples, ``a[k]`` has shape
(n, units in layer k), and z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾ for every example reads
``z[k] = a[k-1] @ theta[k].T + b[k]``. Θ⁽ᵏ⁾ has shape (units in k, units in k − 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .activations import Activation
from .output_maps import OutputMap

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class Network:
    """Weights Θ⁽ᵏ⁾, biases b⁽ᵏ⁾ and one activation g_k per layer (index 0 unused). The output
    layer's g_L may also be an ``OutputMap`` (softmax, log_softmax)."""

    theta: tuple[np.ndarray | None, ...]
    b: tuple[np.ndarray | None, ...]
    g: tuple[Activation | None, ...]

    def __post_init__(self) -> None:
        check_network(self)

    @property
    def depth(self) -> int:
        """L, the number of layers with weights."""
        return len(self.theta) - 1

    @property
    def widths(self) -> tuple[int, ...]:
        """Units per layer, input layer first: (n₀, n₁, …, n_L)."""
        return (self.theta[1].shape[1],) + tuple(t.shape[0] for t in self.theta[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.theta[1].dtype

    def astype(self, dtype: np.dtype | type) -> "Network":
        """The same network with every weight and bias rounded to ``dtype``."""
        return Network(
            theta=(None,) + tuple(t.astype(dtype) for t in self.theta[1:]),
            b=(None,) + tuple(b.astype(dtype) for b in self.b[1:]),
            g=self.g,
        )


def check_network(network: Network) -> None:
    """Raise ``ValueError`` with one clear sentence if the network's pieces do not fit."""
    theta, b, g = network.theta, network.b, network.g
    if not (len(theta) == len(b) == len(g)) or len(theta) < 2:
        raise ValueError("a network needs at least one layer and one Θ, b and g per layer")
    if theta[0] is not None or b[0] is not None or g[0] is not None:
        raise ValueError("index 0 of theta, b and g must be None: layer 0 is the input")
    for k in range(1, len(theta)):
        t, bias = theta[k], b[k]
        if t.ndim != 2 or bias.shape != (t.shape[0],):
            raise ValueError(f"layer {k}: Θ must be 2-D and b must have one entry per row of Θ")
        if k > 1 and t.shape[1] != theta[k - 1].shape[0]:
            raise ValueError(
                f"layer {k}: Θ has {t.shape[1]} columns but layer {k - 1} has {theta[k - 1].shape[0]} units")
        if t.dtype not in FLOAT_DTYPES or bias.dtype != t.dtype or t.dtype != theta[1].dtype:
            raise ValueError(f"layer {k}: every Θ and b must share one dtype, float32 or float64")
        if k == len(theta) - 1 and isinstance(g[k], OutputMap):
            continue  # the output layer may mix units (softmax, log_softmax)
        if not isinstance(g[k], Activation):
            raise ValueError(f"layer {k}: the activation must be an Activation, not {type(g[k]).__name__}"
                             + (" (an OutputMap only fits the output layer)" if isinstance(g[k], OutputMap) else ""))


def init_network(
    widths: Sequence[int],
    g: Sequence[Activation],
    rng: np.random.Generator,
    *,
    scale: float = 1.0,
    dtype: np.dtype | type = np.float64,
) -> Network:
    """A network with Θ⁽ᵏ⁾ ~ N(0, scale²/n_{k−1}) and b⁽ᵏ⁾ ~ N(0, scale²/n_{k−1})."""
    if len(g) != len(widths) - 1:
        raise ValueError(f"{len(widths) - 1} layers need {len(widths) - 1} activations, got {len(g)}")
    theta, b = [None], [None]
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        std = scale / np.sqrt(n_in)
        theta.append((std * rng.standard_normal((n_out, n_in))).astype(dtype))
        b.append((std * rng.standard_normal(n_out)).astype(dtype))
    return Network(tuple(theta), tuple(b), (None,) + tuple(g))


@dataclass(frozen=True)
class ForwardPass:
    """Every weighted input z⁽ᵏ⁾ and activation a⁽ᵏ⁾ (``a[0]`` is x, ``z[0]`` is ``None``)."""

    z: tuple[np.ndarray | None, ...]
    a: tuple[np.ndarray, ...]


def forward(network: Network, x: np.ndarray) -> ForwardPass:
    """Run the network on the rows of x, keeping every z⁽ᵏ⁾ and a⁽ᵏ⁾."""
    check_input(network, x)
    z, a = [None], [x]
    for k in range(1, network.depth + 1):
        z_k = a[k - 1] @ network.theta[k].T  # one GEMM, no copy of Θ (BLAS reads the transpose)
        z_k += network.b[k]  # z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾, the bias added in place
        z.append(z_k)
        a.append(network.g[k].forward(z_k, np))  # a⁽ᵏ⁾ = g_k(z⁽ᵏ⁾)
    return ForwardPass(tuple(z), tuple(a))


def check_input(network: Network, x: np.ndarray) -> None:
    """Raise ``ValueError`` with one clear sentence if x does not fit the network."""
    if not isinstance(x, np.ndarray) or x.ndim != 2:
        raise ValueError("x must be a 2-D NumPy array with one example per row")
    if x.shape[1] != network.widths[0]:
        raise ValueError(f"x has {x.shape[1]} columns but the network takes {network.widths[0]} inputs")
    if x.dtype != network.dtype:
        raise ValueError(f"x is {x.dtype} but the network is {network.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError("x contains NaN or infinity")
