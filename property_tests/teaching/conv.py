"""Teaching: the three equations through a tiny convolutional network, with real numbers
(``backprop-check explain --conv``), each step by hand beside autodiff's numbers; and through a
tiny network with a LayerNorm, a residual block and a BatchNorm (``explain --norm``).

The network: a 1×5×5 image → convolution 1→2, 2×2, g → convolution 2→2, 2×2, stride 2, g →
max pooling 2×2 → flatten → dense 2 (no activation), under the squared error. Equation (2)
through the second convolution is shown step by step (δ with the stride's zeros inserted,
padded, correlated with the kernel rotated by 180°, cropped), through max pooling as δ routed
to each window's first maximum, through flatten as a reshape. The hand side is ``manual``'s
own code; autodiff's is ``reference.layers`` (``jax.grad``), nothing copied.

The second network: 3 inputs → dense 4 → LayerNorm, g → residual block (4 units, tanh inside) →
BatchNorm → dense 2, three examples. Equation (2) through a norm shows its three terms (straight
through, through μ, through σ), through the residual block its two paths, and BatchNorm's δ is
n·∂E/∂z, as every δ here is (docs/normalization.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from manual import MSE, Activation
from manual.conv import Conv2D, correlate, crop, insert_zeros, rotate180
from manual.layers import (
    Dense,
    Layer,
    LayerNetwork,
    delta_through,
    init_layer_network,
    kind_of,
    last_delta,
    layer_forward,
)
from manual.norms import BatchNorm, LayerNorm
from manual.pooling import Flatten, MaxPool2D
from manual.residual import Residual
from property_tests.checkers.loading import UsageError
from property_tests.teaching.dense import _entry, _line, _wrapped, equation_lines, resolve_activation
from reference.layers import layer_autodiff

IN_SHAPE = (1, 5, 5)


@dataclass
class ExplainedConv:
    """Everything ``explain --conv`` prints, as plain lists (the ``--json`` object)."""

    # Same shape as dense.Explained, not a subclass of it: each is the --json object of its own
    # command, its fields in the order they print, and a base class would put the shared ones first.
    layers: list[str]
    loss: str
    x: list
    y: list
    forward: list[dict]
    equations: list[dict]
    max_difference: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def tiny_network(g: Activation, seed: int, kind: str = "conv") -> tuple[LayerNetwork, np.ndarray, np.ndarray]:
    """The network of the module's docstring (``kind`` "conv" or "norm"), its examples and their
    targets, from ``seed``."""
    rng = np.random.default_rng(seed)
    in_shape: tuple[int, ...]
    stack: list[tuple[Layer, Activation | None]]
    if kind == "conv":
        in_shape, n = IN_SHAPE, 1
        stack = [
            (Conv2D(1, 2, (2, 2)), g),
            (Conv2D(2, 2, (2, 2), stride=(2, 2)), g),
            (MaxPool2D((2, 2)), None),
            (Flatten(), None),
            (Dense(2), None),
        ]
    else:
        in_shape, n = (3,), 3
        stack = [(Dense(4), None), (LayerNorm(), g), (Residual(4, g), None), (BatchNorm(), None), (Dense(2), None)]
    net = init_layer_network(in_shape, stack, rng)
    params = (None,) + tuple(
        {
            name: np.round(v + (rng.uniform(-0.5, 0.5, v.shape) if name in ("gamma", "beta") else 0), 2)
            for name, v in p.items()
        }
        for p in net.params[1:]
    )
    net = LayerNetwork(net.in_shape, net.layers, params, net.g)  # two decimals: numbers a reader can follow
    x, y = np.round(rng.uniform(-1, 1, (n, *in_shape)), 2), np.round(rng.uniform(-1, 1, (n, 2)), 2)
    return net, x + 0.0, y + 0.0  # + 0.0: no −0 in the printout


def describe(layer, g) -> str:
    kind = kind_of(layer)
    settings = {
        "conv2d": lambda L: (
            f"{L.in_channels}→{L.out_channels}, kernel {L.kernel[0]}×{L.kernel[1]}"
            + (f", stride {L.stride[0]}" if L.stride != (1, 1) else "")
        ),
        "max_pool": lambda L: f"window {L.window[0]}×{L.window[1]}",
        "flatten": lambda L: "",
        "dense": lambda L: f"{L.units} units",
        "layer_norm": lambda L: f"ε {L.eps:g}",
        "rms_norm": lambda L: f"ε {L.eps:g}",
        "batch_norm": lambda L: f"ε {L.eps:g}, training mode",
        "residual": lambda L: f"a + {L.g.name}(Θa + b), {L.units} units",
    }[kind](layer)
    return f"{kind}({settings})" + (f" → {g.name}" if g is not None else "")


def explain_conv(
    activation: str = "tanh", seed: int = 0, *, mistake: tuple | None = None, network: str = "conv"
) -> ExplainedConv:
    """The forward pass, then (1), (2) through every layer and (3) for every layer with
    parameters, each by hand beside autodiff's numbers. ``mistake`` = (kind, wrong layer class)
    puts a wrong derivation in the hand side (it shows up as a difference from autodiff)."""
    g = resolve_activation(activation)
    if not isinstance(g, Activation):
        raise UsageError(f"explain --{network} takes an elementwise activation of the catalogue; {g.name} is not one")
    net, x, y = tiny_network(g, seed, network)
    if mistake is not None:
        from property_tests.banks.layer_controls import mistaken

        net = mistaken(net, *mistake)
    fwd, ref = layer_forward(net, x), layer_autodiff(net, x, y, loss=MSE)
    z, a, L = fwd.z, fwd.a, net.depth
    forward = [
        {
            "layer": k,
            "what": describe(net.layers[k], net.g[k]),
            "params": {name: v.tolist() for name, v in net.params[k].items()},
            "z": z[k].tolist(),
            "a": a[k].tolist(),
        }
        for k in range(1, L + 1)
    ]
    delta: dict[int, np.ndarray] = {}  # δ⁽ᵏ⁾ by layer k = 1 … L
    entries = []
    delta[L] = last_delta(net.g[L], z[L], a[L], y, MSE)  # (1)
    entries.append(
        _entry(
            "(1)",
            L,
            "δ⁽ᴸ⁾ = ∇ₐE ⊙ g′(z⁽ᴸ⁾), g′ = 1 (no activation)",
            {"∇ₐE = 2(a − y)/m": MSE.gradient(a[L], y, np).tolist()},
            delta[L],
            ref.delta[L],
        )
    )
    for k in range(L - 1, 0, -1):
        layer = net.layers[k + 1]
        delta[k] = delta_through(layer, delta[k + 1], a[k], net.params[k + 1], z[k], net.g[k])  # (2)
        formula, parts, note = _step_2(net, k, delta, a, z)
        entries.append(_entry("(2)", k, formula, parts, delta[k], ref.delta[k], note))
    for k in range(1, L + 1):
        grads = net.layers[k].parameter_gradients(delta[k], a[k - 1], net.params[k])  # (3)
        for name, value in grads.items():
            formula = _formula_3(net.layers[k], name, k)
            entries.append(_entry(f"(3) {name}", k, formula, {}, value, ref.params[k][name]))
    biggest = max(e["max_difference"] for e in entries)
    notes = ["weights, biases, x and y rounded to two decimals, so that every number can be followed by hand"]
    if network == "norm":
        notes.append(
            "δ is n·∂E/∂z, one row per example: with BatchNorm, example t's error depends on every "
            "example, and this is the quantity every layer passes back (docs/normalization.md)"
        )
    # Same shape as the end of dense.explain: each fills its own record, field by field in order.
    return ExplainedConv(
        [describe(layer, g_k) for layer, g_k in zip(net.layers[1:], net.g[1:], strict=True)],
        MSE.name,
        x.tolist(),
        y.tolist(),
        forward,
        entries,
        biggest,
        notes,
    )


def _step_2(net: LayerNetwork, k: int, delta: Mapping[int, np.ndarray], a: tuple, z: tuple) -> tuple[str, dict, str]:
    """(2) from layer k + 1 to layer k: the formula, its intermediate steps, a note."""
    layer, params, g = net.layers[k + 1], net.params[k + 1], net.g[k]
    g_prime = {} if g is None else {f"g′(z⁽{k}⁾)": g.derivative(z[k], np).tolist()}
    times_g = "" if g is None else f" ⊙ g′(z⁽{k}⁾)"
    kind = kind_of(layer)
    if kind == "dense":
        return (
            f"δ⁽{k}⁾ = (Θ⁽{k + 1}⁾)ᵀ δ⁽{k + 1}⁾{times_g}",
            {f"(Θ⁽{k + 1}⁾)ᵀ δ⁽{k + 1}⁾": (delta[k + 1] @ params["theta"]).tolist(), **g_prime},
            "",
        )
    if kind == "flatten":
        return (
            f"δ⁽{k}⁾ = δ⁽{k + 1}⁾ laid back out as (C, H, W){times_g}",
            g_prime,
            "flatten only moved numbers, so its (∂z/∂a)ᵀ moves them back",
        )
    if kind in ("layer_norm", "rms_norm", "batch_norm"):
        x_hat, sigma = layer.normalized(a[k])
        g_delta = params["gamma"] * delta[k + 1]
        over = "the batch" if kind == "batch_norm" else "each example's units"
        return (
            f"δ⁽{k}⁾ = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / σ{times_g},  g = γ ⊙ δ⁽{k + 1}⁾, means over {over}",
            {
                "x̂": x_hat.tolist(),
                "σ": sigma.tolist(),
                "g = γ ⊙ δ": g_delta.tolist(),
                "mean(g)": layer.mean(g_delta).tolist(),
                "mean(g ⊙ x̂)": layer.mean(g_delta * x_hat).tolist(),
                **g_prime,
            },
            "three paths: straight through, through μ, through σ"
            + (
                "; BatchNorm's statistics run over the batch, so every example's δ reaches every other"
                if kind == "batch_norm"
                else ""
            ),
        )
    if kind == "residual":
        dense_path = layer.inner_delta(delta[k + 1], a[k], params) @ params["theta"]
        return (
            f"δ⁽{k}⁾ = (δ⁽{k + 1}⁾ + Θᵀ(δ⁽{k + 1}⁾ ⊙ g′(u))){times_g},  u = Θa⁽{k}⁾ + b",
            {"skip path: δ": delta[k + 1].tolist(), "dense path: Θᵀ(δ ⊙ g′(u))": dense_path.tolist(), **g_prime},
            "the block's input reaches its output along two paths, and their δs add",
        )
    if kind == "max_pool":
        routed = layer.input_delta(delta[k + 1], a[k], params)
        return (
            f"δ⁽{k}⁾ = δ⁽{k + 1}⁾ routed to each window's first maximum{times_g}",
            {f"a⁽{k}⁾ (pooled)": a[k].tolist(), "routed": routed.tolist(), **g_prime},
            "each window's δ goes to its largest input (the first, row-major, at a tie), as jax.grad does",
        )
    spread = insert_zeros(delta[k + 1], layer.stride)
    (kh, kw), (dh, dw), (ph, pw) = layer.kernel, layer.dilation, layer.padding
    h, w = a[k].shape[2:]
    before, after = (dh * (kh - 1), dw * (kw - 1)), (h + 2 * ph - spread.shape[2], w + 2 * pw - spread.shape[3])
    full = np.pad(spread, ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))
    correlated = correlate(full, rotate180(params["W"]), (1, 1), layer.dilation)
    parts = {
        f"δ⁽{k + 1}⁾ with s − 1 zeros inserted": spread.tolist(),
        "padded by k − 1": full.tolist(),
        f"W⁽{k + 1}⁾ rotated by 180°, channels swapped": rotate180(params["W"]).tolist(),
        "full correlation": correlated.tolist(),
        "cropped (padding p)": crop(correlated, layer.padding, (h, w)).tolist(),
        **g_prime,
    }
    return (
        f"δ⁽{k}⁾ = (δ⁽{k + 1}⁾ ⋆full rot180(W⁽{k + 1}⁾)){times_g}",
        parts,
        "the rows the stride skipped get the zeros, the padding k − 1 lets every weight meet every δ, "
        "and the rotation turns the forward's window into the backward's",
    )


def _formula_3(layer, name: str, k: int) -> str:
    kind = kind_of(layer)
    if kind in ("layer_norm", "rms_norm", "batch_norm"):
        return f"∂E/∂γ⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾ ⊙ x̂" if name == "gamma" else f"∂E/∂β⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾"
    if kind == "residual":
        return (
            f"∂E/∂Θ⁽{k}⁾ = (1/n) Σₜ (δ⁽{k}⁾ ⊙ g′(u)) (a⁽{k - 1}⁾)ᵀ"
            if name == "theta"
            else f"∂E/∂b⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾ ⊙ g′(u)"
        )
    if kind == "conv2d":
        return (
            f"∂E/∂W⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾ ⋆ a⁽{k - 1}⁾ (a valid correlation of the input with δ)"
            if name == "W"
            else f"∂E/∂b⁽{k}⁾_f = (1/n) Σₜ Σ_ij δ⁽{k}⁾_f,ij"
        )
    return f"∂E/∂Θ⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾ (a⁽{k - 1}⁾)ᵀ" if name == "theta" else f"∂E/∂b⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾"


def format_explained_conv(e: ExplainedConv) -> str:
    lines = [f"Network {' · '.join(e.layers)}, loss {e.loss}, {len(e.x)} example{'s' if len(e.x) > 1 else ''}"]
    lines += [line for note in e.notes for line in _wrapped(f"({note})", "  ")]
    lines += [_line("  x = ", e.x), _line("  y = ", e.y), "", "Forward pass: z⁽ᵏ⁾ = layer_k(a⁽ᵏ⁻¹⁾), a⁽ᵏ⁾ = g(z⁽ᵏ⁾)"]
    for layer in e.forward:
        k = layer["layer"]
        lines.append(f"  layer {k}: {layer['what']}")
        for name, value in layer["params"].items():
            lines.append(_line(f"    {name + '⁽' + str(k) + '⁾':<14}= ", value))
        lines += [
            _line(f"    {'z⁽' + str(k) + '⁾':<14}= ", layer["z"]),
            _line(f"    {'a⁽' + str(k) + '⁾':<14}= ", layer["a"]),
        ]
    return "\n".join(lines + equation_lines(e.equations, e.max_difference))
