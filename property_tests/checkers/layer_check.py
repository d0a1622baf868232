"""Check a user's own layer: its hand-written backward pass (a vector-Jacobian product) against
``jax.vjp`` of its own forward, then inside random networks against ``jax.grad``.

    from property_tests.checkers.layer_check import check_layer, assert_layer_correct

    report = check_layer(MyLayer(), examples=40, seed=0)
    report.verdict            # "verified", "wrong", "imprecise" (only with strict) or "inconclusive"
    report.counterexample     # the smallest case where the backward pass is wrong, or None
    assert_layer_correct(MyLayer())   # raises AssertionError with the report's message

The contract
------------
A layer is an object (or a class that builds one without arguments) with the five methods of
``manual.layers.Layer``, the forward taking the array namespace as a keyword:

    out_shape(in_shape) -> out_shape                   one example's shapes, without the batch axis
    init(rng, in_shape, dtype) -> {name: array}        the parameters (may be an empty dict)
    forward(a_prev, params, xp=np) -> z                (n, *in_shape) -> (n, *out_shape)
    input_delta(delta, a_prev, params) -> array        (∂z/∂a)ᵀδ, a_prev's shape
    parameter_gradients(delta, a_prev, params) -> {name: array}
                                                       (1/n)·∂(Σ z·δ)/∂(parameter), each its shape

``forward`` is written with ``xp`` (``xp.tanh``, ``xp.exp``, ``xp.sum``, …, operators on arrays)
so that the checker can pass ``jax.numpy`` and differentiate exactly the function you wrote; the
other methods are plain NumPy. δ is ∂(Σₛ Eₛ)/∂z, one row per example, not divided by n: for a
layer that keeps examples apart that is ∂Eₜ/∂zₜ; for one that mixes the batch (batch
statistics) ``input_delta`` is the VJP of the whole batch. The 1/n of E = (1/n) Σₜ Eₜ is applied
once, in ``parameter_gradients``. Two optional attributes: ``example_shapes``, the in_shapes to
check (default ``DEFAULT_SHAPES``: (4,) and (7,)), and ``batch_sizes`` (default 1 … 5; a layer
that refuses one example, like batch norm in training, says (2, 3, 4, 5)). A layer kind
registered in ``manual.layers.LAYER_KINDS`` whose forward has no ``xp`` is differentiated through
``reference.layers.FORWARD`` instead.

Stage 1: the VJP, case by case
------------------------------
``examples`` cases, each an in_shape and a batch size (every pair in turn), random inputs a
(standard normal times 1, 0.2 or 4, in turn), parameters (``init``'s, each multiplied by
e^{0.3·N(0,1)}, zeros replaced by N(0, ½²): no symmetry of the initial values hides a mistake)
and a standard normal cotangent δ, all rounded to the dtype under test. Your ``input_delta`` and
``parameter_gradients`` (in that dtype) are compared element by element with ``jax.vjp`` of your
forward (float64, on the same rounded values), within

    |hand − autodiff| ≤ (1 + u₆₄/u)·u·R·T + floor.

T is the size of the terms the element is computed from. Let J be the Jacobian of the batch
forward (``jax.jacrev``), taken at the case and also toward the origin (a at ½ and ¼ of itself,
then the parameters at ½ and 0 of themselves, a held), the largest |J| over those points
elementwise (a non-finite point takes no part): a formula's terms keep the size they have nearer
the origin where it saturates (1 − tanh²a is computed from terms of size 1 while it is 1e-8), as
``tolerances.Profile`` takes its scales. Then for element j of (∂z/∂a)ᵀδ

    T_j = Σᵢ |J_ij|·|δᵢ|  +  Σ_s (largest |J| entry of the block (example s, example of j))·Σ|δ_s|,

the exact VJP's own products, plus what a formula that cancels may combine: terms as large as
the largest Jacobian entry of each example times that example's Σ|δ| (softmax's δ − p·Σδ,
LayerNorm's g − mean g − x̂·mean(g x̂); the same allowance as ``compare.mixed_terms`` for a map
that does not say how it mixes). For a parameter the same sums over the batch, divided by n. R
counts the roundings per unit of T (``compare.mixed_rounding``): ``ELEMENTARY_ULPS``·(1 + ρ) for
the elementary functions, ρ = max|a| + max|z| + max|a|·max|p| bounding their arguments (an
argument's rounding, relative, times its size), plus the longest sum of the forward (the most
inputs and parameters one output depends on, counted from J) and of the VJP (the most outputs
one input reaches), plus 2. floor is ``tolerances.floor`` (subnormals flushed by XLA). The
factor (1 + u₆₄/u) counts autodiff's own rounding beside yours. Nothing is tuned: the bound
comes from the dtype and the layer's own Jacobian. It is first order and cannot see a formula
that cancels more than its Jacobian shows; such a formula fails the first look and is settled by
the second, which calls it imprecise, never wrong.

Autodiff runs on the whole batch (one compiled program per batch size and shape) unless the
layer keeps examples apart: when moving example 0 far, either way, leaves every other example's
z bit for bit (in NumPy), one example's forward is differentiated and mapped over the batch,
padded to the largest batch size, and its Jacobian is block-diagonal (one program per shape).

What is skipped: a case where your forward (in the dtype under test), autodiff's z or VJP, or the
bound is not finite is left out and counted, and one is reported. Fewer than half the cases
usable makes the verdict INCONCLUSIVE. NaN or ∞ from your forward at ordinary inputs (uniform
in (−½, ½), the parameters from ``init``) is unusable input, one sentence.

The second look, before WRONG
-----------------------------
The cases are judged smallest first (batch size times in_shape's size), and the first WRONG ends
the check. In a case with elements beyond their bound the worst few (``SUSPECTS``) get a second
look (``MAX_SECOND_LOOKS`` in all), each along one variable: element j of (∂z/∂a)ᵀδ is the
derivative of s ↦ Σ δ·z(a with a_j = s), and element k of a parameter's gradient that of
s ↦ (1/n)Σ δ·z(p_k = s):

1. in float32, your formula on the same values in float64: if it agrees with autodiff within the
   bound, the formula is right and only lost digits (imprecise);
2. ``second_look.reexamine`` along that line, as for an activation: the local noise of both,
   your formula in ``np.longdouble``, a Richardson central difference of your forward;
3. if it is still wrong, the case again with a fresh δ and with δ × ``DELTA_SCALE``: the same
   element must exceed its bound in both.

Only a mismatch that survives all three is WRONG; the counterexample is that case (the smallest
batch and shape that fail), the element, both values, the difference and the tolerance it
exceeds (finite, the second look's threshold), and the case's a, δ and parameters. A suspect
the first two clear as your formula's lost digits is IMPRECISE: a warning, a failure under
``strict``.

Stage 2: random networks
------------------------
For every 1-D in_shape with a 1-D out_shape: x (n × 3) → Dense → tanh → your layer → (tanh or
none) → Dense (2 units), MSE, n from the batch sizes. ``manual.layers.layer_backward`` (the
equations every ``LayerNetwork`` runs; the network record skips the registry of layer kinds)
computes every δ⁽ᵏ⁾ and every parameter gradient on autodiff's forward values, in float64; each
is compared with ``jax.grad`` of the whole network (written here with your forward on
``jax.numpy``), within a running bound carried backwards (M, E, N as in ``layer_compare``: the
dense layers' sums on |Θ|, tanh's slope and noise from ``tolerances.profile``, your layer's
R·T above with M, E, N in place of |δ|). A network beyond its bound is looked at again with a
fresh y and with y × ``DELTA_SCALE``; if it persists, your layer is judged at the network's own
point (its a, parameters and δ from autodiff) as in stage 1, second look included, and only a
WRONG there is WRONG. A network whose values are not finite is skipped and counted.

Your functions must not change their arguments in place (backpropagation passes the same δ on
to ``parameter_gradients``): that, any exception, a wrong shape, missing parameters, or a
forward JAX cannot trace is unusable input: ``UsageError``, one sentence, exit code 2.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import EllipsisType
from typing import Any

import numpy as np

from manual import CATALOGUE, MSE
from manual.layers import Dense, LayerNetwork, kind_of, layer_backward
from property_tests.checkers import second_look
from property_tests.checkers.loading import UsageError, json_safe, require_finite
from property_tests.library import tolerances as tol

DEFAULT_SHAPES: tuple[tuple[int, ...], ...] = ((4,), (7,))
"""The in_shapes checked when the layer declares no ``example_shapes``."""

BATCH_SIZES: tuple[int, ...] = (1, 2, 3, 4, 5)
"""The batch sizes checked when the layer declares no ``batch_sizes``."""

INPUT_SCALES = (1.0, 0.2, 4.0)
"""Cases draw a as a standard normal times each of these in turn."""

SCANS = ((1.0, 1.0), (0.5, 1.0), (0.25, 1.0), (1.0, 0.5), (1.0, 0.0))
"""Where |J| is taken: (fraction of a, fraction of the parameters); the first is the case itself.
Toward the origin but not at it: at a = 0 a norm's 1/σ is 1/√ε, a size none of its terms has
at the case."""

DELTA_SCALE = 1e3
"""The second look scales δ (and a network's y) by this: not a power of two, so every value
rounds anew."""

SUSPECTS = 4
"""Elements given the second look in a failing case, the worst first."""

MAX_SECOND_LOOKS = 16
"""Second looks per check at most (a right formula that is imprecise everywhere fails the first
look everywhere)."""

MIN_USABLE = 0.5
"""Below this fraction of usable cases (or networks) the verdict is inconclusive."""

MAX_JACOBIAN = 20_000_000
"""Entries of the scanned Jacobian above which a shape is refused (use smaller example_shapes)."""

NETWORK_INPUTS, NETWORK_OUTPUTS = 3, 2
TANH = CATALOGUE["tanh"]
INPUT = "input_delta"


def _what(key: str) -> str:
    return INPUT if key == INPUT else f"parameter_gradients[{key!r}]"


# --- the report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCounterexample:
    """The smallest case where the hand backward pass is wrong, after the second look.
    ``difference`` exceeds ``tolerance`` (both absolute and finite); ``relative_error`` and
    ``relative_tolerance`` are the same over the size of the element's terms. ``difference`` and
    ``relative_error`` are ``None`` when the hand value is NaN or ∞ where autodiff's is finite."""

    what: str
    batch: int
    in_shape: tuple
    index: tuple
    hand: float
    autodiff: float
    difference: float | None
    tolerance: float
    relative_error: float | None
    relative_tolerance: float
    finite_difference: float
    where: str
    a_prev: list
    delta: list
    params: dict

    def describe(self) -> str:
        head = (
            f"{self.what} at batch {self.batch}, in_shape {self.in_shape}, element {self.index}"
            f"{' ' + self.where if self.where else ''}: hand {self.hand!r}, autodiff {self.autodiff!r}, "
            f"central difference of your forward {self.finite_difference:.17g}; "
        )
        if self.difference is None:
            return head + "the hand value is not finite where the forward and autodiff are"
        return head + (
            f"difference {self.difference:.3g} > tolerance {self.tolerance:.3g} (relative to the size "
            f"of its terms: {self.relative_error:.3g} against {self.relative_tolerance:.3g}); it persists "
            f"with a fresh δ and with δ × {DELTA_SCALE:g}"
        )


@dataclass(frozen=True)
class ImpreciseCase:
    """The first element where a right formula lost digits beyond the bound in the dtype under
    test: its value, autodiff's, and the formula in higher precision."""

    # Same shape as activation_check.ImprecisePoint and as LayerCounterexample's first fields: each
    # record spells out its own fields (the keys of its JSON report) and its own wording.
    what: str
    batch: int
    in_shape: tuple
    index: tuple
    hand: float
    autodiff: float
    high_precision: float
    difference: float
    tolerance: float
    where: str

    def describe(self, dtype: str) -> str:
        return (
            f"the hand formula is right but loses digits in {dtype}: {self.what} at batch {self.batch}, in_shape "
            f"{self.in_shape}, element {self.index}{' ' + self.where if self.where else ''}: hand {self.hand!r}, "
            f"autodiff {self.autodiff!r} (difference {self.difference:.3g} beyond the tolerance "
            f"{self.tolerance:.3g}), the same formula in higher precision {self.high_precision!r}"
        )


VERDICTS = ("verified", "wrong", "inconclusive", "imprecise")


@dataclass
class LayerReport:
    """What ``check_layer`` found."""

    # Same shape as activation_check.ActivationReport and loss_check.LossReport: each checker's report
    # lists its own figures and decides its own verdict, in one place.
    name: str
    dtype: str
    seed: int
    shapes: list = field(default_factory=list)
    batch_sizes: list = field(default_factory=list)
    cases: int = 0
    skipped: int = 0
    skipped_example: str | None = None
    max_error: float = 0.0
    tolerance: float = 0.0
    counterexample: LayerCounterexample | None = None
    imprecise: ImpreciseCase | None = None
    imprecise_points: int = 0
    cleared: int = 0
    networks: int = 0
    networks_skipped: int = 0
    networks_cleared: int = 0
    network_shapes: list = field(default_factory=list)
    network_max_error: float = 0.0
    network_tolerance: float = 0.0
    inconclusive: str | None = None
    strict: bool = False
    seconds: float = 0.0

    @property
    def verdict(self) -> str:
        if self.counterexample:
            return "wrong"
        if self.inconclusive:
            return "inconclusive"
        if self.strict and self.imprecise:
            return "imprecise"
        return "verified"

    def message(self) -> str:
        """The human-readable report the command prints."""
        lines = [f"layer {self.name!r} ({self.dtype}, seed {self.seed}): {self.verdict.upper()}"]
        shapes = ", ".join(str(tuple(s)) for s in self.shapes)
        scales = ", ".join(f"{s:g}" for s in INPUT_SCALES)
        lines.append(
            f"  vjp: {self.cases} case(s) against jax.vjp of your forward (in_shape {shapes}; batch sizes "
            f"{', '.join(map(str, self.batch_sizes))}; a at scales {scales}; "
            f"random parameters and δ); largest error {self.max_error:.3g} against tolerance "
            f"{self.tolerance:.3g} (relative to the size of each element's terms)"
        )
        if self.skipped:
            lines.append(
                f"  {self.skipped} case(s) skipped where the forward, autodiff or the bound is not finite "
                f"(for example {self.skipped_example})"
            )
        if self.cleared:
            lines.append(f"  {self.cleared} element(s) beyond the first bound cleared by the second look as rounding")
        if self.imprecise:
            strict = " (a failure under --strict)" if self.strict else " (--strict makes this a failure)"
            label = "IMPRECISE" if self.strict else "warning"
            lines.append(
                f"  {label}: {self.imprecise.describe(self.dtype)}; {self.imprecise_points} element(s) like it{strict}"
            )
        if self.counterexample:
            ce = self.counterexample
            lines.append(f"  WRONG {ce.describe()}")
            lines.append(f"    a_prev = {_short(ce.a_prev)}; delta = {_short(ce.delta)}")
            if ce.params:
                lines.append("    params: " + "; ".join(f"{k} = {_short(v)}" for k, v in ce.params.items()))
        if self.inconclusive and not self.counterexample:
            lines.append(f"  INCONCLUSIVE: {self.inconclusive}")
        if self.networks or self.networks_skipped:
            lines.append(
                f"  networks: {self.networks} random networks (x → Dense → tanh → your layer → tanh or none "
                f"→ Dense, MSE; in_shape {', '.join(str(tuple(s)) for s in self.network_shapes)}), every δ "
                f"and gradient against jax.grad; largest error {self.network_max_error:.3g} against "
                f"tolerance {self.network_tolerance:.3g}"
            )
            if self.networks_skipped:
                lines.append(f"  {self.networks_skipped} network(s) skipped: their values are not finite")
            if self.networks_cleared:
                lines.append(
                    f"  {self.networks_cleared} network(s) beyond the running bound, but your layer is right "
                    f"at their own point (second look): rounding the bound does not carry"
                )
        elif not self.counterexample and not self.inconclusive:
            lines.append("  networks: none (no 1-D in_shape with a 1-D out_shape to put between dense layers)")
        lines.append(f"  {self.seconds:.1f} s")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("counterexample", "imprecise")}
        out["verdict"] = self.verdict
        out["shapes"] = [list(s) for s in self.shapes]
        out["network_shapes"] = [list(s) for s in self.network_shapes]
        out["counterexample"] = _as_dict(self.counterexample)
        out["imprecise"] = _as_dict(self.imprecise)
        return json_safe(out)


def _as_dict(item) -> dict | None:
    if item is None:
        return None
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in item.__dict__.items()}


def _short(values) -> str:
    text = np.array2string(np.asarray(values, np.float64), precision=6, threshold=24, separator=", ")
    return " ".join(text.split())


# --- the user's layer, called safely ------------------------------------------------------------


def resolve_layer(value: object, where: str = "the target") -> object:
    """The layer itself: ``value``, or ``value()`` when it is a class; ``UsageError`` (one
    sentence) when it lacks one of the five methods."""
    if isinstance(value, type):
        try:
            value = value()
        except Exception as error:
            raise UsageError(
                f"{where} is a class that cannot be built without arguments ({type(error).__name__}: "
                f"{error}); name an instance instead"
            ) from None
    missing = [
        m
        for m in ("out_shape", "init", "forward", "input_delta", "parameter_gradients")
        if not callable(getattr(value, m, None))
    ]
    if missing:
        raise UsageError(
            f"{where} is a {type(value).__name__}, not a layer: it lacks {', '.join(missing)} "
            f"(a layer has out_shape, init, forward, input_delta and parameter_gradients)"
        )
    return value


def _shape(value, what: str) -> tuple:
    try:
        shape = tuple(int(v) for v in value)
        ok = len(shape) >= 1 and all(v >= 1 and v == s for v, s in zip(shape, value, strict=True))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UsageError(f"{what} must be a tuple of positive whole numbers, got {value!r}")
    return shape


class _Layer:
    """The user's layer with every call wrapped: exceptions and wrong shapes become one sentence,
    inputs are copied in and checked unchanged after, and its forward under ``jax.numpy``."""

    def __init__(self, layer: object) -> None:
        self.layer: Any = resolve_layer(layer)  # the user's object: only its five methods' presence is known
        self.name = getattr(self.layer, "name", None) or type(self.layer).__name__
        self.shapes = self._declared("example_shapes", DEFAULT_SHAPES, "example_shapes")
        self.batch_sizes = tuple(sorted(set(self._declared("batch_sizes", BATCH_SIZES, "batch_sizes", flat=True))))
        self.jax_forward = self._jax_forward()
        self._programs: dict = {}
        self._apart: dict = {}

    def _declared(self, attribute: str, default, what: str, flat: bool = False):
        value = getattr(self.layer, attribute, None)
        if value is None:
            return default
        try:
            items = list(value)
        except TypeError:
            raise UsageError(f"the layer's {what} must be a sequence, got {value!r}") from None
        if not items:
            raise UsageError(f"the layer's {what} is empty")
        if flat:
            return _shape(items, what)
        return tuple(_shape(s, f"each of the layer's {what}") for s in items)

    def _jax_forward(self) -> Callable:
        forward = self.layer.forward
        parameters: Mapping[str, inspect.Parameter]
        try:
            parameters = inspect.signature(forward).parameters
        except (TypeError, ValueError):
            parameters = {}
        takes_xp = "xp" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())
        import jax.numpy as jnp

        if takes_xp:
            return lambda a, p: forward(a, p, xp=jnp)
        try:
            kind = kind_of(self.layer)
        except ValueError:
            raise UsageError(
                "the layer's forward must take the array namespace as a keyword, "
                "forward(a_prev, params, xp=np), so that jax.numpy can be passed in"
            ) from None
        from reference.layers import FORWARD

        return lambda a, p: FORWARD[kind](a, p, self.layer)

    def call(self, what: str, *args):
        """``layer.<what>(*args)`` with NumPy; the arrays among ``args`` must come back unchanged."""
        before = [_snapshot(v) for v in args]
        try:
            with np.errstate(all="ignore"):
                out = getattr(self.layer, what)(*args)
        except UsageError:
            raise
        except Exception as error:  # the user's code may raise anything
            raise UsageError(
                f"the layer's {what} raises {type(error).__name__}: {error} ({_describe_args(args)})"
            ) from None
        for name, old, new in zip(_ARG_NAMES[what], before, args, strict=True):
            if old is not None and not _unchanged(old, new):
                raise UsageError(
                    f"the layer's {what} changes its argument {name} in place; backpropagation passes "
                    f"the same arrays on, so return new arrays instead"
                )
        return out

    def out_shape(self, in_shape: tuple) -> tuple:
        return _shape(self.call("out_shape", tuple(in_shape)), f"out_shape({tuple(in_shape)})")

    def init(self, rng: np.random.Generator, in_shape: tuple) -> dict:
        params = self.call("init", rng, tuple(in_shape), np.float64)
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise UsageError(f"the layer's init must return a dict of arrays by name, got {type(params).__name__}")
        out = {}
        for name, value in params.items():
            value = np.asarray(value)
            if value.dtype.kind not in "fiu" or not np.all(np.isfinite(value)):
                raise UsageError(f"the layer's init gives {name!r} that is not an array of finite numbers")
            out[name] = value.astype(np.float64)
        return out

    def forward(self, a: np.ndarray, params: dict) -> np.ndarray:
        z = np.asarray(self.call("forward", a, params))
        out = (a.shape[0], *self.out_shape(a.shape[1:]))
        if z.shape != out:
            raise UsageError(
                f"the layer's forward returns shape {z.shape} for a_prev of shape {a.shape}; "
                f"out_shape says each example gives {out[1:]}, so {out} was expected"
            )
        return z

    def input_delta(self, delta: np.ndarray, a: np.ndarray, params: dict) -> np.ndarray:
        out = np.asarray(self.call("input_delta", delta, a, params))
        if out.shape != a.shape:
            raise UsageError(
                f"the layer's input_delta returns shape {out.shape} for a_prev of shape {a.shape}; "
                f"(∂z/∂a)ᵀδ has a_prev's shape"
            )
        return out

    def parameter_gradients(self, delta: np.ndarray, a: np.ndarray, params: dict) -> dict:
        grads = self.call("parameter_gradients", delta, a, params)
        if not isinstance(grads, dict) or set(grads) != set(params):
            got = sorted(grads) if isinstance(grads, dict) else type(grads).__name__
            raise UsageError(
                f"the layer's parameter_gradients must return one array per parameter "
                f"({', '.join(sorted(params)) or 'none'}), got {got}"
            )
        out = {}
        for name, value in grads.items():
            value = np.asarray(value)
            if value.shape != np.shape(params[name]):
                raise UsageError(
                    f"the layer's parameter_gradients returns shape {value.shape} for {name!r}, "
                    f"whose shape is {np.shape(params[name])}"
                )
            out[name] = value
        return out

    def keeps_examples_apart(self, in_shape: tuple, rng: np.random.Generator) -> bool:
        """Does example t's output depend on example t alone? Tried in NumPy (float64): example 0 of
        a batch of 3 made large, of either sign, must leave the other examples' z bit for bit.
        A layer that mixes the batch (batch statistics) fails; one that does not is
        differentiated one example at a time, with one compiled program for every batch size."""
        if in_shape not in self._apart:
            a = rng.standard_normal((3, *in_shape))
            params = self.init(rng, in_shape)
            try:
                with np.errstate(all="ignore"):
                    z = np.asarray(self.layer.forward(a, params))
                    apart = z.shape[0] == 3 and bool(np.all(np.isfinite(z)))
                    for shift in (3.0, -3.0):
                        moved = a.copy()
                        moved[0] = 10 * moved[0] + shift
                        other = np.asarray(self.layer.forward(moved, params))
                        apart = apart and other.shape == z.shape and np.array_equal(other[1:], z[1:])
            except Exception:  # judged (and reported) by the batch path
                apart = False
            self._apart[in_shape] = apart
        return self._apart[in_shape]

    def program(self, apart: bool) -> Callable:
        """z, the VJP and the Jacobians at ``SCANS`` in float64, from JAX: of the batch forward
        (compiled once per batch size and shape), or, when the layer keeps examples apart, of
        one example's forward mapped over a batch padded to the largest size (once per shape)."""
        key = ("per example",) if apart else ("batch",)
        if key not in self._programs:
            import jax
            import jax.numpy as jnp

            f = self.jax_forward
            if apart:

                def f_one(x, p):
                    return f(x[None], p)[0]
            else:
                f_one = f

            def run(a, p, d):
                z, pull = jax.vjp(f_one, a, p)
                da, dp = pull(d.astype(z.dtype))
                scans = jnp.asarray(SCANS, a.dtype)

                def jacobian(t):
                    return jax.jacrev(f_one, argnums=(0, 1))(t[0] * a, jax.tree_util.tree_map(lambda v: t[1] * v, p))

                ja, jp = jax.vmap(jacobian)(scans)
                return z, da, dp, ja, jp

            if apart:
                run = jax.vmap(run, in_axes=(0, None, 0))
            self._programs[key] = jax.jit(run, compiler_options=_FAST_COMPILE)
        return self._programs[key]

    def autodiff(self, a: np.ndarray, p: dict, d: np.ndarray, rng: np.random.Generator | None = None):
        """(z, VJP on a, VJP on each parameter summed over the batch, Jacobians (S, n, *out, n,
        *in) and (S, n, *out, *shape)) in float64 as NumPy arrays."""
        import jax

        n, in_shape = a.shape[0], tuple(a.shape[1:])
        out_shape = (n, *self.out_shape(in_shape))
        size = len(SCANS) * math.prod(out_shape) * (a.size + sum(v.size for v in p.values()))
        if size > MAX_JACOBIAN:
            raise UsageError(
                f"in_shape {in_shape} is too large to check by the layer's whole Jacobian "
                f"({size:.2g} entries); declare smaller example_shapes"
            )
        apart = self.keeps_examples_apart(in_shape, rng or np.random.default_rng(0))
        a64, d64 = a.astype(np.float64), d.astype(np.float64)
        p64 = {k: np.asarray(v, np.float64) for k, v in p.items()}
        if apart:  # padded with copies of example 0 (finite where it is) and zero cotangents
            width = max(max(self.batch_sizes), n)
            a64 = np.concatenate([a64, np.repeat(a64[:1], width - n, axis=0)])
            d64 = np.concatenate([d64, np.zeros((width - n, *d64.shape[1:]))])
        with jax.enable_x64(True):
            try:
                z, da, dp, ja, jp = self.program(apart)(a64, p64, d64)
            except UsageError:
                raise
            except Exception as error:
                raise UsageError(
                    f"the layer's forward cannot be differentiated by JAX with xp=jax.numpy: "
                    f"{type(error).__name__}: {_first_line(error)}"
                ) from None
            z, da, ja = (np.asarray(v, np.float64) for v in (z, da, ja))
            dp = {k: np.asarray(v, np.float64) for k, v in dp.items()}
            jp = {k: np.asarray(v, np.float64) for k, v in jp.items()}
        if apart:
            z, da = z[:n], da[:n]
            dp = {k: v[:n].sum(axis=0) for k, v in dp.items()}
            blocks = np.moveaxis(ja[:n], 0, 1)  # (S, n, *out, *in)
            ja = np.zeros((len(SCANS), n, *out_shape[1:], n, *in_shape))
            every_input = (slice(None),) * len(in_shape)
            for t in range(n):
                block_t: tuple[slice | int | EllipsisType, ...] = (slice(None), t, ..., t, *every_input)
                ja[block_t] = blocks[:, t]  # example t's outputs against example t's inputs
            jp = {k: np.moveaxis(v[:n], 0, 1) for k, v in jp.items()}
        if tuple(z.shape) != out_shape:
            raise UsageError(f"the layer's forward with xp=jax.numpy returns shape {tuple(z.shape)}, not {out_shape}")
        return z, da, dp, ja, jp

    def line_autodiff(self, key: str) -> Callable:
        """s ↦ d/ds Σ δ·z (a or parameter ``key`` with element idx = s), vectorised over s, float64."""
        if ("line", key) not in self._programs:
            import jax
            import jax.numpy as jnp

            f = self.jax_forward

            def one(s, a, p, d, idx):
                if key == INPUT:
                    a = a.reshape(-1).at[idx].set(s).reshape(a.shape)
                    scale = 1.0
                else:
                    p = {**p, key: p[key].reshape(-1).at[idx].set(s).reshape(p[key].shape)}
                    scale = 1.0 / a.shape[0]
                return jnp.sum(d * f(a, p)) * scale

            self._programs["line", key] = jax.jit(
                jax.vmap(jax.grad(one), in_axes=(0, None, None, None, None)), compiler_options=_FAST_COMPILE
            )
        return self._programs["line", key]


_FAST_COMPILE = {"xla_backend_optimization_level": 0}
"""As ``reference.layers``: each program runs a few dozen times, so LLVM's optimisations (which
do not change what is computed) are skipped; compiling takes half as long."""

_ARG_NAMES = {
    "out_shape": ("in_shape",),
    "init": ("rng", "in_shape", "dtype"),
    "forward": ("a_prev", "params"),
    "input_delta": ("delta", "a_prev", "params"),
    "parameter_gradients": ("delta", "a_prev", "params"),
}


def _snapshot(value):
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict):
        return {k: np.array(v, copy=True) for k, v in value.items()}
    return None


def _unchanged(old, new) -> bool:
    if isinstance(old, dict):
        return set(old) == set(new) and all(np.array_equal(old[k], np.asarray(new[k]), equal_nan=True) for k in old)
    return np.array_equal(old, new, equal_nan=True)


def _describe_args(args) -> str:
    parts = [
        f"{type(v).__name__} {v.dtype} {v.shape}" if isinstance(v, np.ndarray) else repr(v)
        for v in args
        if not isinstance(v, (dict, np.random.Generator))
    ]
    return "on " + ", ".join(parts) if parts else "while being set up"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else ""


# --- the first look ------------------------------------------------------------------------------


@dataclass
class _Case:
    in_shape: tuple
    n: int
    a: np.ndarray
    params: dict
    delta: np.ndarray
    scale: float

    @property
    def size(self) -> tuple:
        return (self.n * math.prod(self.in_shape), self.n, math.prod(self.in_shape))

    def describe(self) -> str:
        return f"batch {self.n}, in_shape {self.in_shape}, a at scale {self.scale:g}"

    def with_delta(self, delta: np.ndarray) -> _Case:
        return _Case(self.in_shape, self.n, self.a, self.params, delta.astype(self.delta.dtype), self.scale)


@dataclass
class _Sizes:
    """The largest |J| over ``SCANS`` (input: (n, O, n, I); each parameter: (n, O, P)) and the
    counts of R; ``input_terms(v)`` and ``param_terms(v)`` give T for a non-negative v."""

    J: np.ndarray
    Jp: dict
    rho: float
    k_forward: int
    k_input: int
    k_param: dict

    def input_terms(self, v: np.ndarray) -> np.ndarray:
        n = self.J.shape[0]
        v = v.reshape(n, -1)
        exact = np.einsum("soti,so->ti", self.J, v)
        block = self.J.max(axis=(1, 3), initial=0.0)  # (example s of z, example t of a)
        return exact + (block * v.sum(axis=1)[:, None]).sum(axis=0)[:, None]

    def param_terms(self, name: str, v: np.ndarray) -> np.ndarray:
        Jp = self.Jp[name]
        n = Jp.shape[0]
        v = v.reshape(n, -1)
        exact = np.einsum("sok,so->k", Jp, v)
        block = Jp.max(axis=(1, 2), initial=0.0)
        return (exact + np.sum(block * v.sum(axis=1))) / n

    def rounding(self, key: str) -> float:
        """R of the module's docstring, for (∂z/∂a)ᵀδ or one parameter's gradient."""
        longest = self.k_input if key == INPUT else self.k_param[key] + 1  # + the division by n
        return tol.ELEMENTARY_ULPS * (1 + self.rho) + self.k_forward + longest + 2

    def terms(self, key: str, v: np.ndarray) -> np.ndarray:
        return self.input_terms(v) if key == INPUT else self.param_terms(key, v)


def _sizes(a: np.ndarray, p: dict, z: np.ndarray, ja: np.ndarray, jp: dict) -> _Sizes | None:
    """``_Sizes`` from the scanned Jacobians; ``None`` when J at the case itself is not finite."""
    n = a.shape[0]
    S = ja.shape[0]

    def largest(j, shape):
        j = np.abs(j.reshape(shape))
        if not np.all(np.isfinite(j[0])):
            return None
        return np.max(np.where(np.isfinite(j), j, 0.0), axis=0)

    J = largest(ja, (S, n, -1, n, a[0].size))
    if J is None:
        return None
    Jp = {}
    for name, value in jp.items():
        Jp[name] = largest(value, (S, n, J.shape[1], max(p[name].size, 1)))
        if Jp[name] is None:
            return None
    forward_fan = (J > 0).sum(axis=(2, 3)) + sum((v > 0).sum(axis=2) for v in Jp.values())
    k_param = {name: int((v > 0).sum(axis=(0, 1)).max(initial=0)) for name, v in Jp.items()}
    largest_p = max((float(np.max(np.abs(v), initial=0.0)) for v in p.values()), default=0.0)
    a_max = float(np.max(np.abs(a), initial=0.0))
    rho = a_max + float(np.max(np.abs(z), initial=0.0)) + a_max * largest_p
    return _Sizes(
        J, Jp, rho, int(np.max(forward_fan, initial=0)), int((J > 0).sum(axis=(0, 1)).max(initial=0)), k_param
    )


@dataclass
class _Judged:
    """One case's first look: hand and autodiff values, bound and size of terms per key."""

    case: _Case
    usable: bool
    reason: str = ""
    hand: dict = field(default_factory=dict)
    autodiff: dict = field(default_factory=dict)
    allowed: dict = field(default_factory=dict)
    terms: dict = field(default_factory=dict)

    def bad(self, key: str) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return ~(np.abs(self.hand[key] - self.autodiff[key]) <= self.allowed[key])

    def ratio(self, key: str) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            gap = np.abs(self.hand[key] - self.autodiff[key]) / np.maximum(self.allowed[key], tol.SLOPE_MINIMUM)
        return np.where(np.isfinite(self.hand[key]), gap, np.inf)


def judge_case(layer: _Layer, case: _Case, dtype: np.dtype) -> _Judged:
    """The first look at one case: your backward pass in ``dtype`` against ``jax.vjp`` (float64)."""
    z = layer.forward(case.a, case.params)
    hand = {
        INPUT: layer.input_delta(case.delta, case.a, case.params),
        **layer.parameter_gradients(case.delta, case.a, case.params),
    }
    hand = {k: np.asarray(v, np.float64) for k, v in hand.items()}
    z64, da, dp, ja, jp = layer.autodiff(case.a, case.params, case.delta)
    judged = _Judged(case, False, hand=hand, autodiff={INPUT: da, **{k: v / case.n for k, v in dp.items()}})
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(z)):
            judged.reason = f"the forward is not finite in {dtype}"
            return judged
        finite = np.all(np.isfinite(z64)) and all(np.all(np.isfinite(v)) for v in judged.autodiff.values())
        fits = all(np.all(np.abs(v) <= np.finfo(dtype).max) for v in judged.autodiff.values())
        if not (finite and fits):
            judged.reason = "autodiff is not finite" if not finite else f"autodiff does not fit in {dtype}"
            return judged
        a64 = case.a.astype(np.float64)
        sizes = _sizes(a64, {k: v.astype(np.float64) for k, v in case.params.items()}, z64, ja, jp)
        if sizes is None:
            judged.reason = "the Jacobian is not finite"
            return judged
        v = np.abs(case.delta.astype(np.float64))
        for key, r in judged.autodiff.items():
            T = sizes.terms(key, v).reshape(r.shape)
            judged.terms[key] = T
            judged.allowed[key] = tol.scale(dtype) * sizes.rounding(key) * T + tol.floor(dtype, sizes.k_input)
        if not all(np.all(np.isfinite(b)) for b in judged.allowed.values()):
            judged.reason = "the bound is not finite"
            return judged
    judged.usable = True
    return judged


# --- the second look ---------------------------------------------------------------------------


@dataclass
class _Look:
    verdict: str  # "wrong", "imprecise" or "cleared"
    threshold: float = 0.0
    finite_difference: float = float("nan")
    high_precision: float = float("nan")


def _place(case: _Case, key: str, flat: int, value, dtype) -> tuple:
    a = case.a.astype(dtype)
    p = {k: v.astype(dtype) for k, v in case.params.items()}
    target = a if key == INPUT else p[key]
    target.reshape(-1)[flat] = value
    return a, p, case.delta.astype(dtype)


def _line(layer: _Layer, case: _Case, key: str, flat: int):
    """(forward, derivative, autodiff) of one element along one variable, for ``reexamine``."""
    scale = 1.0 if key == INPUT else 1.0 / case.n

    def forward(s, xp=np):
        s = np.asarray(s)
        values = []
        for value in s.reshape(-1):
            a, p, d = _place(case, key, flat, value, s.dtype)
            values.append(np.sum(d * np.asarray(layer.call("forward", a, p))) * np.asarray(scale, s.dtype))
        return np.array(values).reshape(s.shape)

    def derivative(s, xp=np):
        s = np.asarray(s)
        values = []
        for value in s.reshape(-1):
            a, p, d = _place(case, key, flat, value, s.dtype)
            out = layer.call(INPUT, d, a, p) if key == INPUT else layer.call("parameter_gradients", d, a, p)[key]
            values.append(np.asarray(out).reshape(-1)[flat])
        return np.array(values).reshape(s.shape)

    def autodiff(s):
        import jax

        s = np.asarray(s, np.float64)
        with jax.enable_x64(True):
            out = layer.line_autodiff(key)(
                s.reshape(-1),
                case.a.astype(np.float64),
                {k: v.astype(np.float64) for k, v in case.params.items()},
                case.delta.astype(np.float64),
                flat,
            )
        return np.asarray(out, np.float64).reshape(s.shape)

    return forward, derivative, autodiff


def second_look_at(
    layer: _Layer, judged: _Judged, key: str, index: tuple, dtype: np.dtype, rng: np.random.Generator
) -> _Look:
    """The second look of the module's docstring at one element of one case."""
    case = judged.case
    flat = int(np.ravel_multi_index(index, judged.hand[key].shape)) if judged.hand[key].ndim else 0
    hand, r, allowed = (
        float(judged.hand[key][index]),
        float(judged.autodiff[key][index]),
        float(judged.allowed[key][index]),
    )
    if dtype != np.float64:  # 1. the same formula on the same values in float64
        wide = _Case(
            case.in_shape,
            case.n,
            case.a.astype(np.float64),
            {k: v.astype(np.float64) for k, v in case.params.items()},
            case.delta.astype(np.float64),
            case.scale,
        )
        value = (
            layer.input_delta(wide.delta, wide.a, wide.params)
            if key == INPUT
            else layer.parameter_gradients(wide.delta, wide.a, wide.params)[key]
        )
        high = float(np.asarray(value, np.float64)[index])
        if math.isfinite(high) and abs(high - r) <= allowed:
            return _Look("imprecise", allowed, high_precision=high)
    forward, derivative, autodiff = _line(layer, case, key, flat)
    s0 = np.array([(case.a if key == INPUT else case.params[key]).reshape(-1)[flat]], dtype)
    look = second_look.reexamine(
        forward, derivative, autodiff, s0, dtype, np.array([hand]), np.array([r]), np.array([allowed])
    )
    fd = float(look.finite_difference.value[0])
    threshold = float(look.threshold[0])
    if not look.wrong[0]:
        return _Look("imprecise" if look.imprecise[0] else "cleared", threshold, fd, float(look.high_precision[0]))
    for delta in (rng.standard_normal(case.delta.shape), case.delta.astype(np.float64) * DELTA_SCALE):  # 3.
        again = judge_case(layer, case.with_delta(delta), dtype)
        if not again.usable or not again.bad(key)[index]:
            return _Look("cleared", threshold, fd)
    return _Look("wrong", threshold, fd)


# --- stage 1 -----------------------------------------------------------------------------------


def _perturbed(rng: np.random.Generator, params: dict) -> dict:
    out = {}
    for name, value in params.items():
        noise = rng.standard_normal(value.shape)
        out[name] = np.where(value != 0, value * np.exp(0.3 * noise), 0.5 * noise)
    return out


def draw_cases(layer: _Layer, examples: int, rng: np.random.Generator, dtype: np.dtype) -> list[_Case]:
    """``examples`` cases over every (in_shape, batch size), smallest first."""
    combos = sorted(
        ((s, n) for s in layer.shapes for n in layer.batch_sizes), key=lambda c: (c[1] * math.prod(c[0]), c[1])
    )
    cases = []
    for i in range(examples):
        in_shape, n = combos[i % len(combos)]
        scale = INPUT_SCALES[i % len(INPUT_SCALES)]
        params = _perturbed(rng, layer.init(rng, in_shape))
        a = scale * rng.standard_normal((n, *in_shape))
        delta = rng.standard_normal((n, *layer.out_shape(in_shape)))
        cases.append(
            _Case(
                in_shape,
                n,
                a.astype(dtype),
                {k: v.astype(dtype) for k, v in params.items()},
                delta.astype(dtype),
                scale,
            )
        )
    return sorted(cases, key=lambda c: c.size)


def probe(layer: _Layer, rng: np.random.Generator) -> None:
    """Unusable layers fail here with one sentence: every declared shape at ordinary inputs
    (uniform in (−½, ½), the parameters from ``init``), in float64 and float32."""
    n = layer.batch_sizes[0]
    for in_shape in layer.shapes:
        out_shape = layer.out_shape(in_shape)
        params = layer.init(rng, in_shape)
        for dtype in (np.float64, np.float32):
            a = rng.uniform(-0.5, 0.5, (n, *in_shape)).astype(dtype)
            p = {k: v.astype(dtype) for k, v in params.items()}
            z = layer.forward(a, p)
            if not np.all(np.isfinite(z)):
                raise UsageError(
                    f"the layer's forward returns NaN or infinity at ordinary inputs (in_shape "
                    f"{in_shape}, batch {n}, a uniform in (−½, ½), the parameters from init, "
                    f"{np.dtype(dtype)})"
                )
            delta = rng.standard_normal((n, *out_shape)).astype(dtype)
            layer.input_delta(delta, a, p)
            layer.parameter_gradients(delta, a, p)


def _stage_one(
    layer: _Layer, report: LayerReport, cases: list[_Case], dtype: np.dtype, rng: np.random.Generator
) -> None:
    looks = 0
    usable = 0
    worst = (-1.0, 0.0, 0.0)
    for case in cases:
        judged = judge_case(layer, case, dtype)
        if not judged.usable:
            report.skipped += 1
            report.skipped_example = report.skipped_example or f"{case.describe()}: {judged.reason}"
            continue
        usable += 1
        suspects = []
        for key in judged.hand:
            ratio = judged.ratio(key)
            bad = judged.bad(key)
            for at in np.argwhere(bad):
                suspects.append((-float(ratio[tuple(at)]), key, tuple(int(i) for i in at)))
            passed = ~bad
            if passed.any():
                ok = np.where(passed, ratio, -1.0)
                i = np.unravel_index(int(np.argmax(ok)), ok.shape)
                if ok[i] > worst[0]:
                    hand, r = float(judged.hand[key][i]), float(judged.autodiff[key][i])
                    T = _unit(float(judged.terms[key][i]), hand, r)
                    worst = (float(ok[i]), abs(hand - r) / T, float(judged.allowed[key][i]) / T)
        for _, key, index in sorted(suspects)[:SUSPECTS]:
            if looks >= MAX_SECOND_LOOKS:
                break
            looks += 1
            look = second_look_at(layer, judged, key, index, dtype, rng)
            if look.verdict == "wrong":
                report.counterexample = _counterexample(judged, key, index, look)
                break
            if look.verdict == "imprecise":
                report.imprecise_points += 1
                report.imprecise = report.imprecise or _imprecise(judged, key, index, look)
            else:
                report.cleared += 1
        if report.counterexample:
            break
    report.cases = usable + report.skipped
    report.max_error, report.tolerance = worst[1], worst[2]
    require_finite("the largest error or its tolerance", report.max_error, report.tolerance)
    if not report.counterexample and usable < MIN_USABLE * len(cases):
        report.inconclusive = (
            f"the forward, autodiff or the bound is finite in only {usable} of {len(cases)} "
            f"cases in {dtype} (for example not at {report.skipped_example}): too few to judge"
        )


def _unit(terms: float, hand: float, r: float) -> float:
    """What relative figures are relative to: the size of the element's terms, or where every
    term is zero (the exact value is 0, as for a batch statistic of one example) the values'."""
    if terms > 0:
        return terms
    return max(abs(hand) if math.isfinite(hand) else 0.0, abs(r), tol.SLOPE_MINIMUM)


def _counterexample(judged: _Judged, key: str, index: tuple, look: _Look, where: str = "") -> LayerCounterexample:
    hand, r = float(judged.hand[key][index]), float(judged.autodiff[key][index])
    T = _unit(float(judged.terms[key][index]), hand, r)
    finite = math.isfinite(hand)
    tolerance = look.threshold
    require_finite("the tolerance of a counterexample", tolerance, tolerance / T)
    case = judged.case
    return LayerCounterexample(
        what=_what(key),
        batch=case.n,
        in_shape=tuple(case.in_shape),
        index=tuple(index),
        hand=hand,
        autodiff=r,
        difference=abs(hand - r) if finite else None,
        tolerance=tolerance,
        relative_error=abs(hand - r) / T if finite else None,
        relative_tolerance=tolerance / T,
        finite_difference=look.finite_difference,
        where=where,
        a_prev=case.a.astype(np.float64).tolist(),
        delta=case.delta.astype(np.float64).tolist(),
        params={k: v.astype(np.float64).tolist() for k, v in case.params.items()},
    )


def _imprecise(judged: _Judged, key: str, index: tuple, look: _Look, where: str = "") -> ImpreciseCase:
    hand, r = float(judged.hand[key][index]), float(judged.autodiff[key][index])
    difference = abs(hand - r) if math.isfinite(hand) else float("inf")
    allowed = float(judged.allowed[key][index])
    require_finite("the tolerance of an imprecise point", allowed)
    return ImpreciseCase(
        _what(key),
        judged.case.n,
        tuple(judged.case.in_shape),
        tuple(index),
        hand,
        r,
        look.high_precision,
        difference,
        allowed,
        where,
    )


# --- stage 2: networks ---------------------------------------------------------------------------


class _Network(LayerNetwork):
    """A ``LayerNetwork`` holding a user's layer: ``check_layer_network`` accepts registered kinds
    only, so this record skips it; the checker builds the network to fit (``_network``)."""

    def __post_init__(self) -> None:
        pass


@dataclass
class _NetworkCase:
    net: _Network
    x: np.ndarray
    y: np.ndarray
    in_shape: tuple


def _network(layer: _Layer, in_shape: tuple, n: int, with_tanh: bool, rng: np.random.Generator) -> _NetworkCase:
    (m_in,) = in_shape
    (m_out,) = layer.out_shape(in_shape)
    first, last = Dense(m_in), Dense(NETWORK_OUTPUTS)
    params = (
        None,
        first.init(rng, (NETWORK_INPUTS,)),
        _perturbed(rng, layer.init(rng, in_shape)),
        last.init(rng, (m_out,)),
    )
    net = _Network(
        (NETWORK_INPUTS,), (None, first, layer.layer, last), params, (None, TANH, TANH if with_tanh else None, None)
    )
    return _NetworkCase(
        net, rng.standard_normal((n, NETWORK_INPUTS)), rng.standard_normal((n, NETWORK_OUTPUTS)), tuple(in_shape)
    )


def _network_program(layer: _Layer, with_tanh: bool) -> Callable:
    key = ("network", with_tanh)
    if key not in layer._programs:
        import jax
        import jax.numpy as jnp

        f = layer.jax_forward

        def error(params, offsets, x, y):
            z1 = x @ params[0]["theta"].T + params[0]["b"] + offsets[0]
            a1 = TANH.forward(z1, jnp)
            z2 = f(a1, params[1]) + offsets[1]
            a2 = TANH.forward(z2, jnp) if with_tanh else z2
            z3 = a2 @ params[2]["theta"].T + params[2]["b"] + offsets[2]
            return jnp.mean(MSE.error(z3, y, jnp)), ((z1, z2, z3), (a1, a2, z3))

        layer._programs[key] = jax.jit(
            jax.value_and_grad(error, argnums=(0, 1), has_aux=True), compiler_options=_FAST_COMPILE
        )
    return layer._programs[key]


@dataclass
class _NetworkReference:
    z: tuple
    a: tuple
    delta: tuple
    params: tuple


def _network_autodiff(layer: _Layer, case: _NetworkCase) -> _NetworkReference:
    import jax

    net, n = case.net, case.x.shape[0]
    with jax.enable_x64(True):
        params = [{k: np.asarray(v, np.float64) for k, v in p.items()} for p in net.params[1:]]
        offsets = [np.zeros((n, *shape)) for shape in net.shapes[1:]]
        try:
            (_, (z, a)), (d_params, d_offsets) = _network_program(layer, net.g[2] is not None)(
                params, offsets, case.x, case.y
            )
        except Exception as error:
            raise UsageError(
                f"the layer's forward cannot be differentiated inside a network: "
                f"{type(error).__name__}: {_first_line(error)}"
            ) from None
        return _NetworkReference(
            z=(None,) + tuple(np.asarray(v, np.float64) for v in z),
            a=(case.x,) + tuple(np.asarray(v, np.float64) for v in a),
            delta=(None,) + tuple(n * np.asarray(v, np.float64) for v in d_offsets),
            params=(None,) + tuple({k: np.asarray(v, np.float64) for k, v in p.items()} for p in d_params),
        )


@dataclass
class _Quantity:
    name: str
    layer: int
    hand: np.ndarray
    autodiff: np.ndarray
    M: np.ndarray
    allowed: np.ndarray


def _dense_back(theta: np.ndarray, M, E, N):
    """A dense layer's (2) before its ⊙ on sizes: δΘ summed over its units."""
    t = np.abs(theta)
    M_back = M @ t
    return M_back, E @ t + (theta.shape[0] + 2) * M_back, N @ t


def _dense_grads(a: np.ndarray, M, E, N) -> dict:
    """(3) of a dense layer on sizes, a exact (autodiff's own values)."""
    n, A = M.shape[0], np.abs(a)
    return {
        "theta": (M.T @ A / n, (E.T @ A + (n + 1) * M.T @ A) / n, N.T @ A / n),
        "b": (M.sum(axis=0) / n, (E.sum(axis=0) + (n + 1) * M.sum(axis=0)) / n, N.sum(axis=0) / n),
    }


def _through_tanh(z: np.ndarray, M, E, N):
    """g′ applied on sizes (as ``layer_compare.layer_bounds``): slope f and autodiff noise η."""
    from property_tests.library.compare import scales

    f, eta = scales(TANH, z)
    return M * f, E * f + M * tol.derivative_bound(f, z), N * f + M * eta


def network_quantities(layer: _Layer, case: _NetworkCase, ref: _NetworkReference) -> list[_Quantity]:
    """Every δ⁽ᵏ⁾ and parameter gradient by hand (``layer_backward`` on autodiff's forward
    values) beside autodiff's, with the running backward bound of the module's docstring."""
    net, f64 = case.net, np.dtype(np.float64)
    try:
        with np.errstate(all="ignore"):
            grads = layer_backward(net, ref.z, ref.a, case.y, loss=MSE)
    except UsageError:
        raise
    except Exception as error:
        raise UsageError(f"the layer breaks inside a network: {type(error).__name__}: {error}") from None
    p2 = net.params[2]
    _, _, _, ja, jp = layer.autodiff(ref.a[1], p2, ref.delta[2])
    sizes = _sizes(ref.a[1], p2, ref.z[2], ja, jp)
    if sizes is None:
        return []
    out: list[_Quantity] = []

    def add(name, k, hand, r, M, E, N, terms):
        allowed = tol.scale(f64) * E + tol.NOISE_SAFETY * N + tol.floor(f64, terms)
        out.append(_Quantity(name, k, np.asarray(hand, np.float64), r, M, allowed))

    # Autodiff's δ is n·∂E/∂z: beside a − y (one rounding) its 1/n and its ×n round once each.
    M3 = np.abs(ref.a[3]) + np.abs(case.y)
    E3, N3 = 3 * M3, np.zeros_like(M3)
    add("δ", 3, grads.delta[3], ref.delta[3], M3, E3, N3, 2)
    M, E, N = _dense_back(net.params[3]["theta"], M3, E3, N3)
    if net.g[2] is not None:
        M, E, N = _through_tanh(ref.z[2], M, E, N)
    M2, E2, N2 = M, E, N
    add("δ", 2, grads.delta[2], ref.delta[2], M2, E2 + M2, N2, net.params[3]["theta"].shape[0] + 2)
    Mb = sizes.input_terms(M2).reshape(ref.a[1].shape)
    R = sizes.rounding(INPUT)
    M1, E1, N1 = _through_tanh(
        ref.z[1], Mb, sizes.input_terms(E2).reshape(Mb.shape) + R * Mb, sizes.input_terms(N2).reshape(Mb.shape)
    )
    add("δ", 1, grads.delta[1], ref.delta[1], M1, E1 + M1, N1, sizes.k_input)
    for k, (M, E, N) in ((3, (M3, E3, N3)), (1, (M1, E1, N1))):
        for name, (Mp, Ep, Np) in _dense_grads(ref.a[k - 1], M, E, N).items():
            add(f"∂E/∂{name}", k, grads.params[k][name], ref.params[k][name], Mp, Ep, Np, M.shape[0] + 1)
    for name in p2:
        shape = np.shape(p2[name])
        Mp = sizes.param_terms(name, M2).reshape(shape)
        Ep = sizes.param_terms(name, E2).reshape(shape) + sizes.rounding(name) * Mp
        Np = sizes.param_terms(name, N2).reshape(shape)
        add(f"∂E/∂{name}", 2, grads.params[2][name], ref.params[2][name], Mp, Ep, Np, sizes.k_param[name])
    return out


def _judge_network(layer: _Layer, case: _NetworkCase) -> tuple[list[_Quantity], _NetworkReference] | None:
    """The quantities of one network, or ``None`` when its values are not finite."""
    ref = _network_autodiff(layer, case)
    values = [v for v in (*ref.z[1:], *ref.a, *ref.delta[1:]) if v is not None]
    values += [v for p in ref.params[1:] for v in p.values()]
    if not all(np.all(np.isfinite(v)) for v in values):
        return None
    quantities = network_quantities(layer, case, ref)
    if not quantities or not all(np.all(np.isfinite(q.allowed)) for q in quantities):
        return None
    return quantities, ref


def _failing(quantities: list[_Quantity]) -> _Quantity | None:
    for q in quantities:
        with np.errstate(invalid="ignore"):
            if not np.all(np.abs(q.hand - q.autodiff) <= q.allowed):
                return q
    return None


def _stage_two(layer: _Layer, report: LayerReport, networks: int, dtype: np.dtype, rng: np.random.Generator) -> None:
    shapes = []
    for s in layer.shapes:
        if len(s) == 1 and len(layer.out_shape(s)) == 1:
            shapes.append(s)
    report.network_shapes = shapes
    if not shapes or networks < 1:
        return
    checked, worst, looks = 0, (-1.0, 0.0, 0.0), 0
    for i in range(networks):
        n = layer.batch_sizes[i % len(layer.batch_sizes)]
        case = _network(layer, shapes[i % len(shapes)], n, i % 2 == 1, rng)
        judged = _judge_network(layer, case)
        if judged is None:
            report.networks_skipped += 1
            continue
        quantities, ref = judged
        checked += 1
        failing = _failing(quantities)
        for q in quantities:
            with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                ratio = np.abs(q.hand - q.autodiff) / np.maximum(q.allowed, tol.SLOPE_MINIMUM)
            ratio = np.where(np.isfinite(ratio) & (ratio <= 1), ratio, -1.0)
            j = np.unravel_index(int(np.argmax(ratio)), ratio.shape) if ratio.size else ()
            if ratio.size and ratio[j] > worst[0]:
                M = max(float(q.M[j]), tol.SLOPE_MINIMUM)
                worst = (float(ratio[j]), abs(float(q.hand[j] - q.autodiff[j])) / M, float(q.allowed[j]) / M)
        if failing is None or looks >= MAX_SECOND_LOOKS:
            continue
        looks += 1
        if _network_persists(layer, case, rng):
            _at_network_point(layer, report, case, ref, rng)
            if report.counterexample:
                break
    report.networks = checked
    report.network_max_error, report.network_tolerance = max(worst[1], 0.0), max(worst[2], 0.0)
    require_finite("the largest network error or its tolerance", report.network_max_error, report.network_tolerance)
    if not report.counterexample and not report.inconclusive and checked < MIN_USABLE * networks:
        report.inconclusive = (
            f"only {checked} of {networks} random networks have finite values in float64: too few to judge"
        )


def _network_persists(layer: _Layer, case: _NetworkCase, rng: np.random.Generator) -> bool:
    """The same network with a fresh y and with y × ``DELTA_SCALE``: still beyond the bound?"""
    for y in (rng.standard_normal(case.y.shape), case.y * DELTA_SCALE):
        judged = _judge_network(layer, _NetworkCase(case.net, case.x, y, case.in_shape))
        if judged is None or _failing(judged[0]) is None:
            return False
    return True


def _at_network_point(
    layer: _Layer, report: LayerReport, case: _NetworkCase, ref: _NetworkReference, rng: np.random.Generator
) -> None:
    """Stage 1's judgement at the network's own point: a⁽¹⁾, your parameters, δ⁽²⁾, in float64."""
    point = _Case(case.in_shape, case.x.shape[0], ref.a[1], case.net.params[2], ref.delta[2], 1.0)
    judged = judge_case(layer, point, np.dtype(np.float64))
    where = f"(inside a random network, g = tanh before your layer{' and after it' if case.net.g[2] else ''})"
    if not judged.usable:
        report.networks_cleared += 1
        return
    suspects = sorted(
        (-float(judged.ratio(key)[tuple(i)]), key, tuple(int(v) for v in i))
        for key in judged.hand
        for i in np.argwhere(judged.bad(key))
    )
    for _, key, index in suspects[:SUSPECTS]:
        look = second_look_at(layer, judged, key, index, np.dtype(np.float64), rng)
        if look.verdict == "wrong":
            report.counterexample = _counterexample(judged, key, index, look, where)
            return
        if look.verdict == "imprecise":
            report.imprecise_points += 1
            report.imprecise = report.imprecise or _imprecise(judged, key, index, look, where)
    report.networks_cleared += 1


# --- the check -------------------------------------------------------------------------------------


_WRAPPED: dict[int, tuple[object, _Layer]] = {}
"""The last few layers checked, wrapped with their compiled programs (a layer checked again in
the same process, as in a test suite, is not compiled again)."""


def _wrap(layer: object) -> _Layer:
    if isinstance(layer, _Layer):
        return layer
    hit = _WRAPPED.get(id(layer))
    if hit is not None and hit[0] is layer:
        return hit[1]
    wrapped = _Layer(layer)
    if len(_WRAPPED) >= 16:
        _WRAPPED.pop(next(iter(_WRAPPED)))
    _WRAPPED[id(layer)] = (layer, wrapped)
    return wrapped


# The same keyword options as check_activation and check_kind, written out in each: a checker's
# signature is its documented API (the command passes them by name).
def check_layer(
    layer: object,
    *,
    examples: int = 40,
    seed: int = 0,
    dtype: np.dtype | type | str = np.float64,
    networks: int | None = None,
    strict: bool = False,
) -> LayerReport:
    """Check a layer's ``input_delta`` and ``parameter_gradients`` against ``jax.vjp`` of its
    forward in ``examples`` random cases, then in ``networks`` random networks (default
    ``examples // 8``, at least 1) against ``jax.grad``. Raises ``UsageError`` (one sentence)
    when the layer cannot be used at all."""
    start = time.perf_counter()
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise UsageError(f"dtype must be float64 or float32, got {dtype!r}") from None
    if dtype not in (np.float64, np.float32):
        raise UsageError(f"dtype must be float64 or float32, got {dtype}")
    if examples < 1:
        raise UsageError(f"examples must be at least 1, got {examples}")
    networks = max(1, examples // 8) if networks is None else networks
    wrapped = _wrap(layer)
    rng = np.random.default_rng(seed)
    report = LayerReport(
        wrapped.name,
        str(dtype),
        seed,
        shapes=list(wrapped.shapes),
        batch_sizes=list(wrapped.batch_sizes),
        strict=strict,
    )
    probe(wrapped, rng)
    cases = draw_cases(wrapped, examples, rng, dtype)
    _stage_one(wrapped, report, cases, dtype, rng)
    if not report.counterexample and not report.inconclusive:
        _stage_two(wrapped, report, networks, dtype, rng)
    report.seconds = time.perf_counter() - start
    return report


def assert_layer_correct(layer: object, **options) -> LayerReport:
    """For pytest: raise ``AssertionError`` with the report's message unless ``layer`` is
    verified; return the report otherwise. ``options`` are ``check_layer``'s."""
    report = check_layer(layer, **options)
    if report.verdict != "verified":
        raise AssertionError(report.message())
    return report


def load_layer(target: str) -> object:
    """The layer named by ``path/to/file.py:NAME`` or ``package.module:NAME`` (an instance, or a
    class built without arguments)."""
    from property_tests.checkers.loading import load_object

    return resolve_layer(load_object(target, object, "a layer"), target)
