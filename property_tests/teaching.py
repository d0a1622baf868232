"""Teaching: the three equations with real numbers (``explain``) and in pictures (``plot``).

Both use the same code as the suite: ``manual``'s equation functions for the hand side and
``reference.plain`` (``jax.grad``) for autodiff's side, nothing copied.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import manual
from manual import CATALOGUE, LOSSES, OUTPUT_MAPS, Activation, Loss
from reference import plain

from .loading import UsageError


@dataclass
class Explained:
    """Everything ``explain`` prints, as plain lists (the ``--json`` object)."""

    widths: list[int]
    activations: list[str]
    loss: str
    x: list
    y: list
    forward: list[dict]
    equations: list[dict]
    max_difference: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _resolve(activation: str, loss: str) -> tuple[Activation, Loss]:
    try:
        g = manual.activation(activation)
    except KeyError as error:
        raise UsageError(str(error.args[0])) from None
    if loss not in LOSSES:
        raise UsageError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    return g, LOSSES[loss]


def build(widths: list[int], activation: str, loss: str, seed: int, examples: int = 2):
    """A tiny network with ``activation`` in every hidden layer; the output layer is the one the
    loss needs (softmax for cross-entropy, …) or ``activation`` too."""
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise UsageError(f"--widths needs at least two positive widths, got {widths}")
    g, loss_ = _resolve(activation, loss)
    output = OUTPUT_MAPS.get(loss_.outputs[0]) or CATALOGUE[loss_.outputs[0]] if loss_.outputs else g
    rng = np.random.default_rng(seed)
    net = manual.init_network(widths, [g] * (len(widths) - 2) + [output], rng)
    x = np.round(rng.uniform(-1, 1, (examples, widths[0])), 2)
    if loss_.targets == "distribution":
        y = np.eye(widths[-1])[rng.integers(0, widths[-1], examples)]
    elif loss_.targets == "unit":
        y = np.round(rng.uniform(0, 1, (examples, widths[-1])), 2)
    else:
        y = np.round(rng.uniform(-1, 1, (examples, widths[-1])), 2)
    return net, x, y, loss_


def explain(widths: list[int], activation: str = "tanh", loss: str = "mse", seed: int = 0) -> Explained:
    """Forward pass, then equations (1), (2), (3) by hand beside autodiff's numbers."""
    net, x, y, loss_ = build(widths, activation, loss, seed)
    fwd = manual.forward(net, x)
    ref = plain.autodiff(net, x, y, loss=loss_)
    L = net.depth
    forward = [{"layer": k, "theta": net.theta[k].tolist(), "b": net.b[k].tolist(),
                "z": fwd.z[k].tolist(), "a": fwd.a[k].tolist(), "g": net.g[k].name} for k in range(1, L + 1)]
    grads = manual.backward(net, fwd.z, fwd.a, y, loss=loss_)
    equations = []
    g_L = net.g[L]
    if loss_.fuses(g_L):
        formula = "δ⁽ᴸ⁾ = a⁽ᴸ⁾ − y   (softmax or sigmoid fused with its cross-entropy)"
        parts = {"a − y": (fwd.a[L] - y).tolist()}
    elif isinstance(g_L, manual.OutputMap):
        formula = "δ⁽ᴸ⁾ = J_g(z⁽ᴸ⁾)ᵀ ∇ₐE   (the general form: this output layer mixes units)"
        parts = {"∇ₐE": loss_.gradient(fwd.a[L], y, np).tolist()}
    else:
        formula = "δ⁽ᴸ⁾ = ∇ₐE ⊙ g′(z⁽ᴸ⁾)"
        parts = {"∇ₐE": loss_.gradient(fwd.a[L], y, np).tolist(), "g′(z⁽ᴸ⁾)": g_L.derivative(fwd.z[L], np).tolist()}
    equations.append(_entry("(1)", L, formula, parts, grads.delta[L], ref.delta[L]))
    for k in range(L - 1, 0, -1):
        parts = {f"(Θ⁽{k + 1}⁾)ᵀδ⁽{k + 1}⁾": (grads.delta[k + 1] @ net.theta[k + 1]).tolist(),
                 f"g′(z⁽{k}⁾)": net.g[k].derivative(fwd.z[k], np).tolist()}
        equations.append(_entry("(2)", k, f"δ⁽{k}⁾ = (Θ⁽{k + 1}⁾)ᵀ δ⁽{k + 1}⁾ ⊙ g′(z⁽{k}⁾)", parts,
                                grads.delta[k], ref.delta[k]))
    for k in range(1, L + 1):
        equations.append(_entry("(3) Θ", k, f"∂E/∂Θ⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾ (a⁽{k - 1}⁾)ᵀ", {},
                                grads.theta[k], ref.theta[k]))
        equations.append(_entry("(3) b", k, f"∂E/∂b⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾", {}, grads.b[k], ref.b[k]))
    biggest = max(e["max_difference"] for e in equations)
    return Explained(list(net.widths), [g.name for g in net.g[1:]], loss_.name, x.tolist(), y.tolist(),
                     forward, equations, biggest)


def _entry(equation, layer, formula, parts, hand, autodiff) -> dict:
    return {"equation": equation, "layer": layer, "formula": formula, "parts": parts,
            "hand": np.asarray(hand).tolist(), "autodiff": np.asarray(autodiff).tolist(),
            "max_difference": float(np.max(np.abs(np.asarray(hand) - np.asarray(autodiff)), initial=0.0))}


def _line(prefix: str, values) -> str:
    """``prefix`` then the array, its later rows aligned under its first."""
    text = np.array2string(np.asarray(values), precision=6, floatmode="fixed", max_line_width=110,
                           separator="  ")
    return prefix + text.replace("\n", "\n" + " " * len(prefix))


def format_explained(e: Explained) -> str:
    lines = [f"Network {'-'.join(map(str, e.widths))}, activations {', '.join(e.activations)}, loss {e.loss}, "
             f"{len(e.x)} examples (one per row)",
             _line("  x = ", e.x), _line("  y = ", e.y), "",
             "Forward pass: z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾, a⁽ᵏ⁾ = g(z⁽ᵏ⁾)"]
    for layer in e.forward:
        k = layer["layer"]
        lines += [f"  layer {k} ({layer['g']})", _line(f"    {'z⁽' + str(k) + '⁾':<14}= ", layer["z"]),
                  _line(f"    {'a⁽' + str(k) + '⁾':<14}= ", layer["a"])]
    for eq in e.equations:
        lines += ["", f"Equation {eq['equation']}, layer {eq['layer']}:  {eq['formula']}"]
        for name, value in eq["parts"].items():
            lines.append(_line(f"    {name:<14}= ", value))
        lines += [_line(f"    {'hand':<14}= ", eq["hand"]), _line(f"    {'autodiff':<14}= ", eq["autodiff"]),
                  f"    largest |hand − autodiff| = {eq['max_difference']:.2e}"]
    lines += ["", f"Every number by hand equals autodiff's to within {e.max_difference:.1e}."]
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------

def resolve_target(target: str) -> Activation:
    """A catalogue name (or alias), or path/to/file.py:NAME / package.module:NAME."""
    if ":" in target:
        from .loading import load_object

        return load_object(target, Activation, "an Activation")
    try:
        return manual.activation(target)
    except KeyError as error:
        raise UsageError(str(error.args[0])) from None


def plot(g: Activation, output: str, *, low: float = -6.0, high: float = 6.0, seed: int = 0) -> str:
    """Three panels: g with its hand and autodiff derivatives (kinks marked); the difference
    between the two with the pointwise tolerance band of ``backprop-check activation`` and the
    points it skips (where g or autodiff is not finite) marked; and, for a random network with g
    in every layer, each weight's gradient by hand against autodiff's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .activation_check import check_callable, find_jumps, judge_points

    if not low < high:
        raise UsageError(f"the range must be increasing, got {low} … {high}")
    check_callable(g)
    z = np.linspace(low, high, 2001)
    judged = judge_points(g, z, np.dtype(np.float64))
    hand, auto = judged.hand, judged.autodiff
    found = {round(float(k), 9): float(k) for k in (*g.kinks, *find_jumps(g))}
    kinks = sorted(k for k in found.values() if low <= k <= high)
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 10), gridspec_kw={"height_ratios": [3, 2, 3]})
    with np.errstate(all="ignore"):
        top.plot(z, g.forward(z, np), label=f"{g.name}(z)", color="0.2")
    top.plot(z, hand, label="g′ by hand", color="tab:blue", linewidth=2.5, alpha=0.6)
    top.plot(z, auto, label="g′ by jax.grad", color="tab:orange", linestyle="--")
    for k in kinks:
        for ax in (top, middle):
            ax.axvline(k, color="tab:red", linestyle=":", linewidth=1)
    top.set_title(f"{g.name}: hand derivative against autodiff" + (f" (kinks at {', '.join(f'{k:g}' for k in kinks)})" if kinks else ""))
    top.legend()
    with np.errstate(invalid="ignore"):
        diff = np.where(judged.usable, np.abs(hand - auto), np.nan)
    middle.semilogy(z, np.maximum(diff, 1e-18), color="tab:purple", label="|hand − autodiff|")
    middle.fill_between(z, 1e-18, np.where(judged.usable, np.maximum(judged.allowed, 1e-18), np.nan),
                        color="tab:green", alpha=0.2, label="tolerance (first look)")
    if not np.all(judged.usable):
        middle.scatter(z[~judged.usable], np.full(int(np.sum(~judged.usable)), 1e-18), marker="x",
                       color="0.4", s=10, label="skipped: g or autodiff not finite")
    middle.set_ylabel("|hand − autodiff| (0 drawn at 1e-18)")
    middle.set_xlabel("z")
    middle.legend(fontsize=7)
    net, x, y, loss = build([3, 4, 4, 2], "identity", "mse", seed, examples=8)
    net = manual.Network(net.theta, net.b, (None, g, g, g))
    m, r = manual.gradients(net, x, y), plain.autodiff(net, x, y)
    for k in range(1, net.depth + 1):
        bottom.scatter(r.theta[k].ravel(), m.theta[k].ravel(), s=14, label=f"Θ⁽{k}⁾")
        bottom.scatter(r.b[k].ravel(), m.b[k].ravel(), s=14, marker="x", label=f"b⁽{k}⁾")
    lim = max(np.max(np.abs(np.concatenate([v.ravel() for v in r.theta[1:] + r.b[1:]]))), 1e-12) * 1.1
    bottom.plot([-lim, lim], [-lim, lim], color="0.6", linewidth=1)
    bottom.set_xlabel("∂E/∂w by jax.grad")
    bottom.set_ylabel("∂E/∂w by hand")
    bottom.set_title(f"every weight of a random 3-4-4-2 network with {g.name} in each layer")
    bottom.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    plt.close(fig)
    return output
