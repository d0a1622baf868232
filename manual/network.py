"""A feed-forward network and its forward pass.

Layers are numbered as in the derivation, k = 1 … L, and the Python index is the layer number:
``theta[k]`` is Θ⁽ᵏ⁾, ``z[k]`` is z⁽ᵏ⁾, ``a[k]`` is a⁽ᵏ⁾ with ``a[0]`` the input x. Index 0 of
``theta``, ``b``, ``g`` and ``z`` is ``None`` because layer 0 has no weights.

Examples are the rows of every matrix: for a batch of n examples, ``a[k]`` has shape
(n, units in layer k), and z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾ for every example reads
``z[k] = a[k-1] @ theta[k].T + b[k]``. Θ⁽ᵏ⁾ has shape (units in k, units in k − 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .activations import Activation
from .parametric import ParametricActivation
from .vector_activations import VectorActivation

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

AnyActivation = Activation | ParametricActivation | VectorActivation
"""What a layer may apply: elementwise g (``Activation``), elementwise g(z; p) with trainable
parameters (``ParametricActivation``), or a map that mixes units and may change the width
(``VectorActivation``: softmax, log_softmax, the GLU family, maxout)."""

Parameters = Mapping[str, np.ndarray]


def output_width(g: AnyActivation | None, units: int) -> int:
    """The width of a⁽ᵏ⁾ = g(z⁽ᵏ⁾) for z⁽ᵏ⁾ of ``units`` units (smaller for a GLU or maxout)."""
    return g.width(units) if isinstance(g, VectorActivation) else units


def activate(g: AnyActivation, z: np.ndarray, p: Parameters | None, xp=np) -> np.ndarray:
    """a = g(z), or g(z; p) for an activation with parameters."""
    if isinstance(g, ParametricActivation):
        if p is None:
            raise ValueError(f"{g.name} has parameters: p must hold their values")
        return g.forward(z, p, xp)
    return g.forward(z, xp)


@dataclass(frozen=True)
class Network:
    """Weights Θ⁽ᵏ⁾, biases b⁽ᵏ⁾, one activation g_k per layer and, for an activation with
    trainable parameters, their values p⁽ᵏ⁾ (a dict of arrays of shape () or (units,)); index 0
    is unused, and p⁽ᵏ⁾ is ``None`` for a layer without parameters (``p`` may be left out).
    Θ⁽ᵏ⁺¹⁾ has as many columns as a⁽ᵏ⁾ has units: g_k's output width (``output_width``)."""

    theta: tuple[np.ndarray | None, ...]
    b: tuple[np.ndarray | None, ...]
    g: tuple[AnyActivation | None, ...]
    p: tuple[Parameters | None, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.p:
            object.__setattr__(self, "p", (None,) * len(self.theta))
        check_network(self)

    @property
    def depth(self) -> int:
        """L, the number of layers with weights."""
        return len(self.theta) - 1

    @property
    def widths(self) -> tuple[int, ...]:
        """Units per layer, input layer first: (n₀, n₁, …, n_L)."""
        weights = [t for t in self.theta[1:] if t is not None]  # Θ⁽¹⁾ … Θ⁽ᴸ⁾: only index 0 is None
        return (weights[0].shape[1],) + tuple(t.shape[0] for t in weights)

    @property
    def output_width(self) -> int:
        """Units of the network's output a⁽ᴸ⁾ (and of every target y)."""
        return output_width(self.g[-1], self.widths[-1])

    @property
    def dtype(self) -> np.dtype:
        theta_1 = self.theta[1]
        assert theta_1 is not None  # layer 1 has weights (check_network)
        return theta_1.dtype

    @property
    def parametric(self) -> bool:
        """Has any layer trainable activation parameters?"""
        return any(p is not None for p in self.p)

    def astype(self, dtype: np.dtype | type) -> Network:
        """The same network with every weight, bias and activation parameter rounded to ``dtype``."""
        return Network(
            theta=(None,) + tuple(None if t is None else t.astype(dtype) for t in self.theta[1:]),
            b=(None,) + tuple(None if b is None else b.astype(dtype) for b in self.b[1:]),
            g=self.g,
            p=tuple(
                None if p is None else {name: np.asarray(v).astype(dtype) for name, v in p.items()} for p in self.p
            ),
        )


def check_network(network: Network) -> None:
    """Raise ``ValueError`` with one clear sentence if the network's pieces do not fit."""
    theta, b, g, p = network.theta, network.b, network.g, network.p
    if not (len(theta) == len(b) == len(g)) or len(theta) < 2:
        raise ValueError("a network needs at least one layer and one Θ, b and g per layer")
    if len(p) != len(theta):
        raise ValueError("p needs one entry per layer (None where the activation has no parameters)")
    if theta[0] is not None or b[0] is not None or g[0] is not None or p[0] is not None:
        raise ValueError("index 0 of theta, b and g (and p) must be None: layer 0 is the input")
    for k in range(1, len(theta)):
        t, bias, g_k, t_prev, g_prev = theta[k], b[k], g[k], theta[k - 1], g[k - 1]
        if t is None or bias is None or t.ndim != 2 or bias.shape != (t.shape[0],):
            raise ValueError(f"layer {k}: Θ must be 2-D and b must have one entry per row of Θ")
        if t_prev is not None and isinstance(g_prev, (Activation, ParametricActivation, VectorActivation)):
            units = t_prev.shape[0]
            fed = output_width(g_prev, units)
            if t.shape[1] != fed:
                how = "" if fed == units else f" ({g_prev.name} turns its {units} units of z into {fed})"
                raise ValueError(f"layer {k}: Θ has {t.shape[1]} columns but layer {k - 1} has {fed} units{how}")
        if t.dtype not in FLOAT_DTYPES or bias.dtype != t.dtype or t.dtype != network.dtype:
            raise ValueError(f"layer {k}: every Θ and b must share one dtype, float32 or float64")
        if not isinstance(g_k, (Activation, ParametricActivation, VectorActivation)):
            raise ValueError(
                f"layer {k}: the activation must be an Activation, ParametricActivation or "
                f"VectorActivation, not {type(g_k).__name__}"
            )
        check_parameters(k, g_k, p[k], t.shape[0], t.dtype)
        if k == len(theta) - 1:
            output_width(g_k, t.shape[0])  # a GLU or maxout output needs a width it can split


def check_parameters(k: int, g: AnyActivation, p: Parameters | None, units: int, dtype: np.dtype) -> None:
    """Raise ``ValueError`` unless p holds every parameter of g, each of shape () or (units,),
    finite and in the network's dtype (and is ``None`` for an activation without parameters)."""
    if not isinstance(g, ParametricActivation):
        if p is not None:
            raise ValueError(f"layer {k}: {g.name} has no parameters, so p⁽{k}⁾ must be None")
        return
    names = {q.name for q in g.parameters}
    if p is None or set(p) != names:
        raise ValueError(f"layer {k}: {g.name} needs exactly the parameters {sorted(names)}")
    for name, value in p.items():
        if not isinstance(value, np.ndarray) or value.shape not in ((), (units,)) or value.dtype != dtype:
            raise ValueError(f"layer {k}: parameter {name} must be a {dtype} array of shape () or ({units},)")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"layer {k}: parameter {name} contains NaN or infinity")


def init_network(
    widths: Sequence[int],
    g: Sequence[AnyActivation],
    rng: np.random.Generator,
    *,
    scale: float = 1.0,
    dtype: np.dtype | type = np.float64,
) -> Network:
    """A network with Θ⁽ᵏ⁾ ~ N(0, scale²/n_{k−1}) and b⁽ᵏ⁾ ~ N(0, scale²/n_{k−1}), n_{k−1} the
    width of a⁽ᵏ⁻¹⁾; ``widths`` are the units of z⁽¹⁾ … z⁽ᴸ⁾ after the input's, and activation
    parameters start at their defaults."""
    if len(g) != len(widths) - 1:
        raise ValueError(f"{len(widths) - 1} layers need {len(widths) - 1} activations, got {len(g)}")
    theta: list[np.ndarray | None] = [None]
    b: list[np.ndarray | None] = [None]
    p: list[Parameters | None] = [None]
    n_in = widths[0]
    for g_k, n_out in zip(g, widths[1:], strict=True):
        std = scale / np.sqrt(n_in)
        theta.append((std * rng.standard_normal((n_out, n_in))).astype(dtype))
        b.append((std * rng.standard_normal(n_out)).astype(dtype))
        p.append(g_k.defaults(n_out, dtype) if isinstance(g_k, ParametricActivation) else None)
        n_in = output_width(g_k, n_out)
    return Network(tuple(theta), tuple(b), (None,) + tuple(g), tuple(p))


@dataclass(frozen=True)
class ForwardPass:
    """Every weighted input z⁽ᵏ⁾ and activation a⁽ᵏ⁾ (``a[0]`` is x, ``z[0]`` is ``None``)."""

    z: tuple[np.ndarray | None, ...]
    a: tuple[np.ndarray, ...]


def forward(network: Network, x: np.ndarray) -> ForwardPass:
    """Run the network on the rows of x, keeping every z⁽ᵏ⁾ and a⁽ᵏ⁾."""
    check_input(network, x)
    z: list[np.ndarray | None] = [None]
    a = [x]
    for k in range(1, network.depth + 1):
        theta_k, b_k, g_k = network.theta[k], network.b[k], network.g[k]
        assert theta_k is not None and b_k is not None and g_k is not None  # layer k ≥ 1 (check_network)
        z_k = a[k - 1] @ theta_k.T  # one GEMM, no copy of Θ (BLAS reads the transpose)
        z_k += b_k  # z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾, the bias added in place
        z.append(z_k)
        a.append(activate(g_k, z_k, network.p[k]))  # a⁽ᵏ⁾ = g_k(z⁽ᵏ⁾), or g_k(z⁽ᵏ⁾; p⁽ᵏ⁾)
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


def check_targets(y: np.ndarray, n: int, width: int) -> None:
    """Raise ``ValueError`` with one clear sentence unless y holds n finite targets of ``width``
    units, one per row (``gradients`` and ``layer_gradients`` both ask this of y)."""
    if not isinstance(y, np.ndarray) or y.shape != (n, width):
        raise ValueError(f"y must be an array of shape {(n, width)}, got {np.shape(y)}")
    if not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or infinity")
