"""Teaching: the three equations with real numbers (``explain``) and in pictures (``plot``).

Both use the same code as the suite: ``manual``'s equation functions for the hand side and
``reference.plain`` (``jax.grad``) for autodiff's side, nothing copied.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field, replace

import numpy as np

import manual
from manual import (
    ALIASES,
    CATALOGUE,
    EQUATIONS,
    LOSSES,
    OUTPUT_MAPS,
    PARAMETRIC,
    VECTOR_ACTIVATIONS,
    Activation,
    Equations,
    Loss,
    ParametricActivation,
    VectorActivation,
)
from property_tests.checkers.loading import UsageError
from reference import plain


@dataclass
class Explained:
    """Everything ``explain`` prints, as plain lists (the ``--json`` object). ``widths`` are the
    units of z per layer (input first); ``notes`` says what was adjusted to make them fit."""

    widths: list[int]
    activations: list[str]
    loss: str
    x: list
    y: list
    forward: list[dict]
    equations: list[dict]
    max_difference: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


AnyActivation = Activation | ParametricActivation | VectorActivation

PARAMETER_SHAPES = ("default", "shared", "per-unit")
"""``explain``'s choices for the shape of an activation's parameters: each parameter's own
default, one value per layer (shape ()), or one per unit (shape (units,))."""


def resolve_activation(name: str) -> AnyActivation:
    """An activation of any kind by name: the elementwise catalogue (aliases included), the
    activations with trainable parameters, the maps that mix units, and softmax/log_softmax."""
    try:
        return manual.activation(name)
    except KeyError:
        pass
    for table in (PARAMETRIC, VECTOR_ACTIVATIONS, OUTPUT_MAPS):
        if name in table:
            return table[name]
    raise UsageError(
        f"unknown activation {name!r}; known: {', '.join(sorted(CATALOGUE) + sorted(ALIASES))} (elementwise), "
        f"{', '.join(PARAMETRIC)} (with trainable parameters), "
        f"{', '.join([*VECTOR_ACTIVATIONS, *OUTPUT_MAPS])} (mixing units)"
    )


def _resolve(activation: str, loss: str) -> tuple[AnyActivation, Loss]:
    g = resolve_activation(activation)
    if loss not in LOSSES:
        raise UsageError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
    return g, LOSSES[loss]


def _what_it_does(g: VectorActivation) -> str:
    if g.mixes == "halves":
        return "splits z into a value half and a gate half"
    return f"takes the maximum of each group of {g.group} units"


def fit_widths(widths: list[int], layers: list) -> tuple[list[int], str | None]:
    """``widths`` with every layer whose g needs a multiple of its group (two for a GLU, k for
    maxout k) rounded up to one, and the sentence that says so (``None`` if nothing changed)."""
    fitted = list(widths)
    changed = []
    for k, g in enumerate(layers, 1):
        if isinstance(g, VectorActivation) and fitted[k] % g.group:
            fitted[k] += g.group - fitted[k] % g.group
            changed.append(g)
    if not changed:
        return fitted, None
    g = changed[0]
    return fitted, (
        f"{g.name} {_what_it_does(g)}, so each of its layers needs a multiple of {g.group} "
        f"units of z: the widths {'-'.join(map(str, widths))} became {'-'.join(map(str, fitted))}."
    )


def build(
    widths: list[int],
    activation: str,
    loss: str,
    seed: int,
    examples: int = 2,
    *,
    parameters: str = "default",
    notes: list[str] | None = None,
):
    """A tiny network with ``activation`` in every hidden layer; the output layer is the one the
    loss needs (softmax for cross-entropy, …) or ``activation`` too. ``widths`` are the units of
    z per layer; a layer whose g needs a multiple of its group gets the next one up (said in
    ``notes``). Activation parameters take their defaults, in the shape ``parameters`` asks for."""
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise UsageError(f"--widths needs at least two positive widths, got {widths}")
    if parameters not in PARAMETER_SHAPES:
        raise UsageError(f"--parameters must be one of {', '.join(PARAMETER_SHAPES)}, got {parameters!r}")
    g, loss_ = _resolve(activation, loss)
    if parameters != "default" and not isinstance(g, ParametricActivation):
        raise UsageError(
            f"--parameters {parameters} needs an activation with trainable parameters "
            f"({', '.join(PARAMETRIC)}), and {g.name} has none"
        )
    output = OUTPUT_MAPS.get(loss_.outputs[0]) or CATALOGUE[loss_.outputs[0]] if loss_.outputs else g
    layers = [g] * (len(widths) - 2) + [output]
    widths, note = fit_widths(widths, layers)
    if note and notes is not None:
        notes.append(note)
    rng = np.random.default_rng(seed)
    net = manual.init_network(widths, layers, rng)
    if parameters != "default":
        net = replace(
            net,
            p=(None,)
            + tuple(
                g_k.defaults(w, per_unit=parameters == "per-unit") if isinstance(g_k, ParametricActivation) else None
                for g_k, w in zip(layers, widths[1:], strict=True)
            ),
        )
    x = np.round(rng.uniform(-1, 1, (examples, widths[0])), 2) + 0.0  # + 0.0: no −0 in the printout
    out = net.output_width
    if loss_.targets == "distribution":
        y = np.eye(out)[rng.integers(0, out, examples)]
    elif loss_.targets == "unit":
        y = np.round(rng.uniform(0, 1, (examples, out)), 2)
    else:
        y = np.round(rng.uniform(-1, 1, (examples, out)), 2) + 0.0
    return net, x, y, loss_


def jacobian(g: VectorActivation, z: np.ndarray) -> np.ndarray:
    """J_g(z) for every row, shape (n, output units, units), row j of each from the hand J_gᵀeⱼ."""
    out = g.width(z.shape[-1])
    rows = []
    for j in range(out):
        e = np.zeros(z.shape[:-1] + (out,))
        e[..., j] = 1.0
        rows.append(g.vjp(z, e, np))
    return np.stack(rows, axis=-2) + 0.0  # + 0.0: no −0 in the printout


GATES = {"glu": "σ", "reglu": "relu", "geglu": "gelu", "swiglu": "silu (swish)"}
"""The gate h of each GLU of the catalogue, for the sentence that explains its J_gᵀw."""


def _how(g: VectorActivation) -> str:
    """How J_gᵀw comes out for this kind of map, in one line."""
    if g.mixes == "halves":
        gate = f", with h = {GATES[g.name]}" if g.name in GATES else ""
        return f"z = [u, s], a = u ⊙ h(s){gate}, so J_gᵀw = [w ⊙ h(s), w ⊙ u ⊙ h′(s)]: each wᵢ reaches uᵢ and sᵢ only"
    if g.mixes == "groups":
        return f"each wᵢ goes to the largest unit of group i (of {g.group}), shared equally at a tie; the others get 0"
    if g.name == "softmax":
        return "J_gᵀw = a ⊙ (w − a·w): the diagonal aᵢwᵢ and, from every other unit, −aᵢaⱼwⱼ"
    return "J_gᵀw = w − softmax(z) Σⱼ wⱼ"


def _width_change(g: VectorActivation, k: int, units: int, out: int, hidden: bool) -> str:
    """What J_g's shape says about the widths of layer k (and of Θ⁽ᵏ⁺¹⁾ when k is hidden)."""
    if out == units:
        return f"J_g(z⁽{k}⁾) is {out}×{units} for each example: {g.name} keeps the width"
    ratio = {2: "half", 3: "a third"}.get(units // out, f"1/{units // out}")
    said = (
        f"J_g(z⁽{k}⁾) is {out}×{units} for each example: {g.name} turns {units} units of z⁽{k}⁾ into {out} "
        f"of a⁽{k}⁾ ({ratio} as many)"
    )
    return said + (f", so Θ⁽{k + 1}⁾ has {out} columns and Θᵀδ has {out} entries per example" if hidden else "")


def _parameter_note(g: ParametricActivation, name: str, value: np.ndarray, k: int, units: int) -> tuple[str, str]:
    """(formula, note) for the gradient of g's parameter ``name`` at layer k, written p (a
    parameter may be called a, as prelu's slope is: not the activations a⁽ᵏ⁾)."""
    product = f"Gₜᵢ = (∂Eₜ/∂a⁽{k}⁾ₜᵢ) · ∂g/∂p(z⁽{k}⁾ₜᵢ; p)"
    if np.ndim(value) == 0:
        return (
            f"∂E/∂p = (1/n) Σₜ Σᵢ Gₜᵢ,   {product},   p = {g.name}'s {name}",
            (
                f"p is shared by the layer (shape ()): it reaches every unit, so G is summed over the "
                f"examples and the {units} units alike, one number"
            ),
        )
    return (
        f"∂E/∂pᵢ = (1/n) Σₜ Gₜᵢ,   {product},   p = {g.name}'s {name}",
        (
            f"p is per unit (shape ({units},)): pᵢ reaches unit i only, so G is summed over the examples "
            f"alone, one sum per unit"
        ),
    )


def explain(
    widths: list[int],
    activation: str = "tanh",
    loss: str = "mse",
    seed: int = 0,
    *,
    parameters: str = "default",
    equations: Equations = EQUATIONS,
) -> Explained:
    """Forward pass, then equations (1), (2), (3) by hand beside autodiff's numbers; for an
    activation with parameters, their gradient ∂E/∂p too, and for a map that mixes units, (1) or
    (2) in its general form with J_g. ``equations`` swaps the hand derivation (a wrong one shows
    up as a difference from autodiff)."""
    notes: list[str] = []
    net, x, y, loss_ = build(widths, activation, loss, seed, parameters=parameters, notes=notes)
    fwd = manual.forward(net, x)
    ref = plain.autodiff(net, x, y, loss=loss_)
    L = net.depth
    forward = []
    for k in range(1, L + 1):
        g, units, z_k = net.g[k], net.widths[k], fwd.z[k]
        assert z_k is not None  # index 0, the input layer, alone has no z
        out = manual.output_width(g, units)
        layer = {
            "layer": k,
            "theta": net.theta[k].tolist(),
            "b": net.b[k].tolist(),
            "z": z_k.tolist(),
            "a": fwd.a[k].tolist(),
            "g": g.name,
            "p": None if net.p[k] is None else {name: np.asarray(v).tolist() for name, v in net.p[k].items()},
            "note": "",
        }
        if out != units:
            nxt = (
                f"Θ⁽{k + 1}⁾ is {net.widths[k + 1]}×{out}, one column per unit of a⁽{k}⁾"
                if k < L
                else f"y has {out} column{'s' if out > 1 else ''} too"
            )
            layer["note"] = f"{g.name} {_what_it_does(g)}: z⁽{k}⁾ has {units} units, a⁽{k}⁾ has {out}; {nxt}"
        elif isinstance(g, VectorActivation):
            layer["note"] = f"{g.name} mixes units: every a⁽{k}⁾ⱼ depends on the whole row of z⁽{k}⁾"
        forward.append(layer)
    grads = manual.backward(net, fwd.z, fwd.a, y, loss=loss_, equations=equations)
    entries = []
    g_L = net.g[L]
    note = ""
    if loss_.fuses(g_L):
        formula = "δ⁽ᴸ⁾ = a⁽ᴸ⁾ − y   (softmax or sigmoid fused with its cross-entropy)"
        parts = {"a − y": (fwd.a[L] - y).tolist()}
    elif isinstance(g_L, VectorActivation):
        formula = f"δ⁽ᴸ⁾ = J_g(z⁽ᴸ⁾)ᵀ ∇ₐE   (the general form: {g_L.name} mixes units)"
        parts = {"∇ₐE": loss_.gradient(fwd.a[L], y, np).tolist(), f"J_g(z⁽{L}⁾)": jacobian(g_L, fwd.z[L]).tolist()}
        note = _how(g_L) + "; " + _width_change(g_L, L, net.widths[L], net.output_width, hidden=False)
    elif isinstance(g_L, ParametricActivation):
        formula = "δ⁽ᴸ⁾ = ∇ₐE ⊙ ∂g/∂z(z⁽ᴸ⁾; p)   (g′ at the current p)"
        g_used = manual.as_used(net, L)
        assert isinstance(g_used, Activation)  # g bound to its p is elementwise
        parts = {
            "∇ₐE": loss_.gradient(fwd.a[L], y, np).tolist(),
            "∂g/∂z(z⁽ᴸ⁾; p)": g_used.derivative(fwd.z[L], np).tolist(),
        }
    else:
        formula = "δ⁽ᴸ⁾ = ∇ₐE ⊙ g′(z⁽ᴸ⁾)"
        parts = {"∇ₐE": loss_.gradient(fwd.a[L], y, np).tolist(), "g′(z⁽ᴸ⁾)": g_L.derivative(fwd.z[L], np).tolist()}
    entries.append(_entry("(1)", L, formula, parts, grads.delta[L], ref.delta[L], note))
    for k in range(L - 1, 0, -1):
        g, z_k = net.g[k], fwd.z[k]
        assert z_k is not None  # index 0, the input layer, alone has no z
        back = {f"(Θ⁽{k + 1}⁾)ᵀδ⁽{k + 1}⁾": (grads.delta[k + 1] @ net.theta[k + 1]).tolist()}
        if isinstance(g, VectorActivation):
            formula = f"δ⁽{k}⁾ = J_g(z⁽{k}⁾)ᵀ ((Θ⁽{k + 1}⁾)ᵀ δ⁽{k + 1}⁾)   (the general form: {g.name} mixes units)"
            parts = {**back, f"J_g(z⁽{k}⁾)": jacobian(g, z_k).tolist()}
            note = (
                _how(g) + "; " + _width_change(g, k, net.widths[k], manual.output_width(g, net.widths[k]), hidden=True)
            )
        else:
            name = "∂g/∂z" if isinstance(g, ParametricActivation) else "g′"
            arg = f"(z⁽{k}⁾; p)" if isinstance(g, ParametricActivation) else f"(z⁽{k}⁾)"
            formula = f"δ⁽{k}⁾ = (Θ⁽{k + 1}⁾)ᵀ δ⁽{k + 1}⁾ ⊙ {name}{arg}"
            g_used = manual.as_used(net, k)
            assert isinstance(g_used, Activation)  # g is elementwise here (bound to its p if it has one)
            parts = {**back, f"{name}{arg}": g_used.derivative(z_k, np).tolist()}
            note = ""
        entries.append(_entry("(2)", k, formula, parts, grads.delta[k], ref.delta[k], note))
    for k in range(1, L + 1):
        entries.append(
            _entry("(3) Θ", k, f"∂E/∂Θ⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾ (a⁽{k - 1}⁾)ᵀ", {}, grads.theta[k], ref.theta[k])
        )
        entries.append(_entry("(3) b", k, f"∂E/∂b⁽{k}⁾ = (1/n) Σₜ δ⁽{k}⁾", {}, grads.b[k], ref.b[k]))
        if isinstance(net.g[k], ParametricActivation):
            entries += _parameter_entries(net, k, fwd, grads, ref, loss_, y)
    biggest = max(e["max_difference"] for e in entries)
    return Explained(
        list(net.widths),
        [g.name for g in net.g[1:]],
        loss_.name,
        x.tolist(),
        y.tolist(),
        forward,
        entries,
        biggest,
        notes,
    )


def _parameter_entries(net, k, fwd, grads, ref, loss_, y) -> list[dict]:
    """One "(3) p" entry per parameter of layer k: ∂E/∂p = (1/n) Σ (∂Eₜ/∂a⁽ᵏ⁾) ∂g/∂p with its
    factors, by hand beside autodiff's."""
    g, p, L = net.g[k], net.p[k], net.depth
    if k == L:
        w_name, w = "∂Eₜ/∂a⁽ᴸ⁾ = ∇ₐE", loss_.gradient(fwd.a[L], y, np)
    else:
        w_name, w = f"∂Eₜ/∂a⁽{k}⁾ = (Θ⁽{k + 1}⁾)ᵀδ⁽{k + 1}⁾", grads.delta[k + 1] @ net.theta[k + 1]
    partials = g.parameter_derivatives(fwd.z[k], p, np)
    out = []
    for q in g.parameters:
        value = np.asarray(p[q.name])
        formula, note = _parameter_note(g, q.name, value, k, net.widths[k])
        partial = np.broadcast_to(partials[q.name], w.shape) + 0.0  # + 0.0: no −0 in the printout
        parts = {
            f"p = {q.name}": value.tolist(),
            w_name: w.tolist(),
            f"∂g/∂p(z⁽{k}⁾; p)": partial.tolist(),
            "G": (w * partial + 0.0).tolist(),
        }
        hand = (grads.p[k] or {}).get(q.name, np.nan) if grads.p else np.nan
        out.append(_entry("(3) p", k, formula, parts, hand, ref.p[k][q.name], note))
    return out


def _entry(equation, layer, formula, parts, hand, autodiff, note: str = "") -> dict:
    hand, autodiff = np.asarray(hand, np.float64) + 0.0, np.asarray(autodiff, np.float64) + 0.0  # no −0 shown
    if hand.shape != autodiff.shape:  # a wrong derivation may get the shape wrong: no number is equal
        difference = float("inf")
    else:
        difference = float(np.max(np.abs(hand - autodiff), initial=0.0))
    return {
        "equation": equation,
        "layer": layer,
        "formula": formula,
        "note": note,
        "parts": parts,
        "hand": hand.tolist(),
        "autodiff": autodiff.tolist(),
        "max_difference": difference,
    }


def _line(prefix: str, values) -> str:
    """``prefix`` then the array, its later rows aligned under its first."""
    text = np.array2string(np.asarray(values), precision=6, floatmode="fixed", max_line_width=110, separator="  ")
    return "\n".join(line.rstrip() for line in (prefix + text.replace("\n", "\n" + " " * len(prefix))).split("\n"))


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, width=110, initial_indent=indent, subsequent_indent=indent + " ")


def _pad(names, *more: str) -> int:
    """The width that lines up the ``=`` of a block of labelled arrays."""
    return max([14, *(len(name) + 1 for name in [*names, *more])])


def equation_lines(equations: list[dict], max_difference: float) -> list[str]:
    """Each equation's formula, note, parts, hand and autodiff values, then the closing line."""
    lines = []
    for eq in equations:
        lines += ["", f"Equation {eq['equation']}, layer {eq['layer']}:  {eq['formula']}"]
        if eq.get("note"):
            lines += _wrapped(f"({eq['note']})", "    ")
        pad = _pad(eq["parts"])
        for name, value in eq["parts"].items():
            lines.append(_line(f"    {name:<{pad}}= ", value))
        lines += [
            _line(f"    {'hand':<{pad}}= ", eq["hand"]),
            _line(f"    {'autodiff':<{pad}}= ", eq["autodiff"]),
            f"    largest |hand − autodiff| = {eq['max_difference']:.2e}",
        ]
    return lines + ["", f"Every number by hand equals autodiff's to within {max_difference:.1e}."]


def format_explained(e: Explained) -> str:
    lines = [
        (
            f"Network {'-'.join(map(str, e.widths))} (units of z, input first), activations "
            f"{', '.join(e.activations)}, loss {e.loss}, {len(e.x)} examples (one per row)"
        )
    ]
    lines += [line for note in e.notes for line in _wrapped(f"({note})", "  ")]
    lines += [
        _line("  x = ", e.x),
        _line("  y = ", e.y),
        "",
        "Forward pass: z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾, a⁽ᵏ⁾ = g(z⁽ᵏ⁾)"
        + (", or g(z⁽ᵏ⁾; p) with trainable p" if any(layer["p"] for layer in e.forward) else ""),
    ]
    for layer in e.forward:
        k = layer["layer"]
        lines += _wrapped(f"layer {k} ({layer['g']})" + (f": {layer['note']}" if layer["note"] else ""), "  ")
        for name, value in (layer["p"] or {}).items():
            label = f"p: {name} ({'shared' if np.ndim(value) == 0 else 'per unit'})"
            lines.append(_line(f"    {label:<{_pad(layer['p'], label)}}= ", value))
        lines += [
            _line(f"    {'z⁽' + str(k) + '⁾':<14}= ", layer["z"]),
            _line(f"    {'a⁽' + str(k) + '⁾':<14}= ", layer["a"]),
        ]
    return "\n".join(lines + equation_lines(e.equations, e.max_difference))


# --- plots ----------------------------------------------------------------------------------


def resolve_target(target: str) -> Activation:
    """A catalogue name (or alias), or path/to/file.py:NAME / package.module:NAME."""
    if ":" in target:
        from property_tests.checkers.loading import load_object

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

    from property_tests.checkers.activation_check import check_callable, find_jumps, judge_points

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
    top.set_title(
        f"{g.name}: hand derivative against autodiff"
        + (f" (kinks at {', '.join(f'{k:g}' for k in kinks)})" if kinks else "")
    )
    top.legend()
    with np.errstate(invalid="ignore"):
        diff = np.where(judged.usable, np.abs(hand - auto), np.nan)
    middle.semilogy(z, np.maximum(diff, 1e-18), color="tab:purple", label="|hand − autodiff|")
    middle.fill_between(
        z,
        1e-18,
        np.where(judged.usable, np.maximum(judged.allowed, 1e-18), np.nan),
        color="tab:green",
        alpha=0.2,
        label="tolerance (first look)",
    )
    if not np.all(judged.usable):
        middle.scatter(
            z[~judged.usable],
            np.full(int(np.sum(~judged.usable)), 1e-18),
            marker="x",
            color="0.4",
            s=10,
            label="skipped: g or autodiff not finite",
        )
    middle.set_ylabel("|hand − autodiff| (0 drawn at 1e-18)")
    middle.set_xlabel("z")
    middle.legend(fontsize=7)
    net, x, y, loss = build([3, 4, 4, 2], "identity", "mse", seed, examples=8)
    net = manual.Network(net.theta, net.b, (None, g, g, g))
    m, r = manual.gradients(net, x, y), plain.autodiff(net, x, y)
    for k in range(1, net.depth + 1):
        m_theta, m_b = m.theta[k], m.b[k]
        assert m_theta is not None and m_b is not None  # index 0, the input layer, alone has none
        bottom.scatter(r.theta[k].ravel(), m_theta.ravel(), s=14, label=f"Θ⁽{k}⁾")
        bottom.scatter(r.b[k].ravel(), m_b.ravel(), s=14, marker="x", label=f"b⁽{k}⁾")
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
