"""Random activations and losses, written as sympy expressions, for fuzzing the checkers.

A generated activation is a sympy expression g in one real symbol z. Its hand derivative is
``sympy.diff`` (or, for a few shapes, the form a person writes by hand: s·(1 − s) for a naive
sigmoid, a limit at a removable singularity), and both are turned into ``forward(z, xp)`` and
``derivative(z, xp)`` callables that work with ``xp = numpy`` and ``xp = jax.numpy``. So every
generated activation is right by construction, and every *wrong variant* (``wrong_variants``)
is wrong by construction, in a labelled way, on a region of the line where that is visible.

    from hypothesis import given
    from property_tests.banks import fuzz

    @given(fuzz.activations())
    def test_mine(act): ...

What is drawn (Hypothesis draws the structure, so a failure shrinks to a small expression):

- ``expressions``: trees over +, ×, c·u, u/(1 + v²), u/(2 + tanh v), exp, log1p(|u|),
  log1p(u²), tanh, sin, √(1 + u²), u², u³ and |u|, with leaves z, a·z + b, hinges (kinks) and
  clips at rational and irrational points (π/4, √2, …);
- hostile shapes, each its own branch of ``symbolic_activations``: overflow (exp of a linear or
  quadratic term), removable singularities guarded by a Piecewise (sin w / w with its value
  at w = 0), cancellation written naively (eʷ − 1, 1 − cos w), kinks at irrational points, a
  naive sigmoid 1/(1 + e⁻ᶻ) with g′ = s(1 − s), and fast polynomials (z³, z⁵);
- an overall scale, log-uniform in 1e-8 … 1e6, with the extremes drawn on purpose.

Conventions of the generated derivatives: sympy's, d|u|/dz = sign(u)·u′ (0 where u = 0) and at
a Piecewise breakpoint the slope of the branch whose condition holds there. Both lie between
the one-sided slopes at a kink. ``Heaviside`` and ``DiracDelta`` never appear (no max/min, no
derivative of sign); ``symbolic_activation`` refuses any expression that has them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy
from hypothesis import assume
from hypothesis import strategies as st
from sympy.codegen.cfunctions import log1p
from sympy.core.function import AppliedUndef
from sympy.printing.numpy import JaxPrinter, NumPyPrinter

from manual import Activation, Loss

Array = Any
ArrayFunction = Callable[[Array, ModuleType], Array]

Z = sympy.Symbol("z", real=True)
"""The one symbol of every generated expression (a loss's φ is also written in z = a − y)."""

W = sympy.Symbol("w", real=True)
"""The local variable of the removable singularities and cancellations, w = z − c."""

# --- constants the generator draws from ------------------------------------------------------

HALF = sympy.Rational(1, 2)
IRRATIONAL_POINTS: tuple[sympy.Expr, ...] = (
    sympy.pi / 4,
    sympy.sqrt(2),
    -sympy.sqrt(2) / 2,
    sympy.E / 3,
    -sympy.pi / 3,
    sympy.sqrt(3) - 3,
)
POINTS: tuple[sympy.Expr, ...] = (
    sympy.Integer(0),
    sympy.Integer(1),
    sympy.Integer(-1),
    HALF,
    sympy.Integer(-2),
    sympy.Integer(3),
    *IRRATIONAL_POINTS,
)
"""Kink locations and shifts; 0 first so that a failure shrinks to it."""

COEFFICIENTS: tuple[sympy.Expr, ...] = tuple(sympy.sympify(c) for c in (2, -1, 3, HALF, 10, sympy.Rational(1, 10), -3))
"""Multipliers a of a·z + b and of c·u (1 is not among them: z itself is a leaf)."""

LEFT_SLOPES: tuple[sympy.Expr, ...] = tuple(sympy.sympify(s) for s in (0, sympy.Rational(1, 10), -1, 2, HALF))
"""Slopes of a hinge left of its kink (the right slope is 1): ReLU, leaky, |·|-like, …"""

EXTREME_SCALES: tuple[float, ...] = (1e-8, 1e6, 1e-7, 3e5)


# --- from sympy to forward(z, xp) ------------------------------------------------------------


def _literal(value: float) -> str:
    return repr(value) if math.isfinite(value) else f"float({str(value)!r})"


class _Printing:
    """Printing shared by the NumPy and the JAX printer.

    Every number that is not an integer is printed as a Python float literal at full precision
    (``numpy.sqrt(2)`` would be a float64 scalar, turning float32 arithmetic into float64), and
    a Piecewise as nested ``where`` (both branches evaluated, as in hand-written code), with
    constant branches written ``full_like(z, c)`` so that they keep z's dtype."""

    _module: str  # from the sympy printer this is mixed into: "numpy" or "jax.numpy"

    if TYPE_CHECKING:  # from the sympy printer too (declared only, so that its own is used)

        def _module_format(self, fqn: str, register: bool = True) -> str: ...

    def _print(self, expr, **kwargs):
        if isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Integer:
            return _literal(float(expr))
        return super()._print(expr, **kwargs)

    def _print_Piecewise(self, expr):
        where = self._module_format(self._module + ".where")
        *pairs, (otherwise, last) = expr.args
        if last != sympy.true:
            raise ValueError(f"a Piecewise must end with a True branch: {expr}")
        out = self._branch(otherwise)
        for value, condition in reversed(pairs):
            out = f"{where}({self._print(condition)}, {self._branch(value)}, {out})"
        return out

    def _print_RealAbs(self, expr):
        return self._print(sympy.Abs(expr.args[0]))

    def _branch(self, value: sympy.Expr) -> str:
        if value.is_number:
            full_like = self._module_format(self._module + ".full_like")
            return f"{full_like}({Z.name}, {_literal(float(value))})"
        return self._print(value)


class _NumPyPrinter(_Printing, NumPyPrinter):
    pass


class _JaxPrinter(_Printing, JaxPrinter):
    pass


def _shaped_like(out: Array, z: Array, xp: ModuleType) -> Array:
    """out with z's shape (constants are broadcast) and z's dtype."""
    out = xp.asarray(out)
    if out.shape != xp.shape(z):
        out = xp.broadcast_to(out, xp.shape(z))
        if xp is np:
            out = out.copy()  # broadcast_to gives a read-only view
    if out.dtype != z.dtype:
        out = out.astype(z.dtype)
    return out


def elementwise(expr: sympy.Expr) -> ArrayFunction:
    """``expr`` (in z) as ``f(z, xp)``, elementwise, for ``xp`` = numpy or jax.numpy.

    The output keeps z's shape and dtype; NumPy runs under ``errstate(all="ignore")`` (an
    overflow beyond some z is part of the test, not a warning). The JAX version works under
    ``jax.grad`` on a scalar and under ``vmap``."""
    numpy_fn = sympy.lambdify(Z, expr, modules="numpy", printer=_NumPyPrinter)
    jax_fn: list[Callable] = []  # built on first use: most callers never ask for JAX

    def f(z: Array, xp: ModuleType) -> Array:
        if xp is np:
            z = np.asarray(z)
            with np.errstate(all="ignore"):
                return _shaped_like(numpy_fn(z), z, np)
        if not jax_fn:
            jax_fn.append(sympy.lambdify(Z, expr, modules="jax", printer=_JaxPrinter))
        return _shaped_like(jax_fn[0](z), z, xp)

    f.__qualname__ = f.__name__ = "elementwise"
    f.__doc__ = f"{expr}, elementwise in z"
    return f


# --- what a generated expression must not contain, and its kinks --------------------------

FORBIDDEN = (
    sympy.Heaviside,
    sympy.DiracDelta,
    sympy.Derivative,
    sympy.Subs,
    sympy.re,
    sympy.im,
    sympy.Max,
    sympy.Min,
    AppliedUndef,
)


def is_finite_everywhere(*exprs: sympy.Expr) -> bool:
    """No ∞ or NaN constant (sympy writes 1/0 as zoo, as in a Piecewise branch that divides by
    a branch that is 0 there)."""
    return not any(e.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) for e in exprs)


def require_plain(*exprs: sympy.Expr) -> None:
    """Raise ValueError when an expression holds something the generator must never produce
    (Heaviside, DiracDelta, an unevaluated derivative, re/im, max/min, non-finite constants)."""
    for expr in exprs:
        bad = [f for f in FORBIDDEN if expr.has(f)]
        if bad or expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise ValueError(f"generated expression holds {bad or 'a non-finite constant'}: {expr}")
        if expr.free_symbols - {Z}:
            raise ValueError(f"generated expression has symbols other than z: {expr}")


_ORDER = (sympy.StrictLessThan, sympy.StrictGreaterThan, sympy.LessThan, sympy.GreaterThan)


def kinks_of(expr: sympy.Expr) -> tuple[float, ...]:
    """The kinks the expression shows plainly: breakpoints z ⋚ c of its Piecewise parts and
    zeros of |a·z + b|. (|u| of a non-linear u has kinks too, at points not computed here.)"""
    points = set()
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, _ORDER):
            if node.lhs == Z and node.rhs.is_number:
                points.add(float(node.rhs))
            elif node.rhs == Z and node.lhs.is_number:
                points.add(float(node.lhs))
        elif isinstance(node, sympy.Abs):
            arg = node.args[0]
            if arg.is_polynomial(Z) and sympy.degree(arg, Z) == 1:
                points.add(float(sympy.solve(arg, Z)[0]))
    return tuple(sorted(points))


def readable(expr: sympy.Expr) -> str:
    """``expr`` as text, with long binary fractions (exact scales) written as 15-digit floats."""
    long = {r: sympy.Float(r, 15) for r in expr.atoms(sympy.Rational) if r.q > 10**6 or abs(r.p) > 10**12}
    return sympy.sstr(expr.xreplace(long))


def _short(expr: sympy.Expr, width: int = 70) -> str:
    text = readable(expr)
    return text if len(text) <= width else text[: width - 1] + "…"


# --- generated activations -------------------------------------------------------------------

KINK_CONVENTION = (
    "sympy.diff's: d|u|/dz = sign(u)·u′ (0 where u = 0); at a Piecewise breakpoint, "
    "the slope of the branch whose condition holds there"
)

GRID = np.linspace(-10, 10, 4001)
"""Where wrong variants are shown to be wrong: [−10, 10] every 0.005."""

GRID_STEP = float(GRID[1] - GRID[0])


@dataclass(frozen=True, eq=False)
class SymbolicActivation:
    """A generated activation: g and g′ as sympy expressions and as an ``Activation``."""

    kind: str
    forward: sympy.Expr
    derivative: sympy.Expr
    scale: float
    kinks: tuple[float, ...]
    activation: Activation

    @cached_property
    def on_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(g, g′) on ``GRID`` in float64, evaluated once."""
        return self.activation.forward(GRID, np), self.activation.derivative(GRID, np)

    def __repr__(self) -> str:
        return (
            f"SymbolicActivation({self.kind!r}, g(z) = {readable(self.forward)}, g'(z) = {readable(self.derivative)})"
        )


def symbolic_activation(
    kind: str, forward: sympy.Expr, derivative: sympy.Expr | None = None, scale: float = 1.0
) -> SymbolicActivation:
    """The activation g = ``forward`` (already scaled) with g′ = ``derivative`` (by default
    ``sympy.diff(forward, z)``), its kinks, readable name and formula."""
    forward = sympy.sympify(forward)
    derivative = sympy.diff(forward, Z) if derivative is None else sympy.sympify(derivative)
    require_plain(forward, derivative)
    kinks = kinks_of(forward)
    activation = Activation(
        name=f"fuzz {kind}: {_short(forward)}",
        forward=elementwise(forward),
        derivative=elementwise(derivative),
        formula=f"g(z) = {readable(forward)};  g'(z) = {readable(derivative)}",
        kinks=kinks,
        kink_convention=KINK_CONVENTION,
    )
    return SymbolicActivation(kind, forward, derivative, float(scale), kinks, activation)


def hinge(c: sympy.Expr, left_slope: sympy.Expr) -> sympy.Expr:
    """A kink at c: slope ``left_slope`` left of c, 1 right of it, 0 at c."""
    return sympy.Piecewise((left_slope * (Z - c), Z < c), (Z - c, True))


def clip(low: sympy.Expr, high: sympy.Expr) -> sympy.Expr:
    """z clipped to [low, high]: kinks at both ends, flat outside."""
    return sympy.Piecewise((low, Z < low), (high, Z > high), (Z, True))


def _point_pairs(points: Sequence[sympy.Expr]) -> st.SearchStrategy[tuple[sympy.Expr, sympy.Expr]]:
    return st.lists(st.sampled_from(points), min_size=2, max_size=2, unique=True).map(
        lambda p: tuple(sorted(p, key=float))
    )


def leaves() -> st.SearchStrategy[sympy.Expr]:
    """z, a·z + b, a hinge or a clip (the first, z, is where failures shrink to)."""
    return st.one_of(
        st.just(Z),
        st.builds(lambda a, b: a * Z + b, st.sampled_from(COEFFICIENTS), st.sampled_from(POINTS)),
        st.builds(hinge, st.sampled_from(POINTS), st.sampled_from(LEFT_SLOPES)),
        _point_pairs(POINTS).map(lambda p: clip(*p)),
    )


class RealAbs(sympy.Abs):
    """|u| of a real u, differentiated as sign(u)·u′ always.

    sympy's own Abs does that only when it can prove u real; for u = z/(tanh z + 2) it cannot,
    and writes (re(u)·re(u)′ + im(u)·im(u)′)/|u|, with re, im and a 1/0 at u's zeros. Every
    generated expression is real, so the rule is right here. Printed as ``Abs``."""

    def _eval_derivative(self, x):
        return sympy.sign(self.args[0]) * sympy.diff(self.args[0], x)

    def _sympystr(self, printer):
        return f"Abs({printer._print(self.args[0])})"


def as_sympy(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with sympy's own Abs for ``RealAbs`` (for sympy's printers and evaluators)."""
    return expr.replace(RealAbs, sympy.Abs)


UNARY: dict[str, Callable[[sympy.Expr], sympy.Expr]] = {
    "tanh": sympy.tanh,
    "sin": sympy.sin,
    "square": lambda u: u**2,
    "cube": lambda u: u**3,
    "abs": RealAbs,
    "exp": sympy.exp,
    "gaussian": lambda u: sympy.exp(-(u**2)),
    "log1p_abs": lambda u: log1p(RealAbs(u)),
    "log1p_square": lambda u: log1p(u**2),
    "hypot": lambda u: sympy.sqrt(1 + u**2),
}

BINARY: dict[str, Callable[[sympy.Expr, sympy.Expr], sympy.Expr]] = {
    "add": lambda u, v: u + v,
    "mul": lambda u, v: u * v,
    "over_1_plus_square": lambda u, v: u / (1 + v**2),
    "over_2_plus_tanh": lambda u, v: u / (2 + sympy.tanh(v)),
}

NODES = ("leaf", "add", "mul", "scaled", *UNARY, "over_1_plus_square", "over_2_plus_tanh")
TAME_NODES = tuple(n for n in NODES if n != "exp")
"""Without exp of an arbitrary term: finite wherever its leaves are (for losses)."""


@st.composite
def expressions(draw, depth: int = 3, tame: bool = False) -> sympy.Expr:
    """A random expression tree in z of at most ``depth`` operations above the leaves;
    ``tame`` leaves out exp of an arbitrary term (e^{−u²} stays)."""
    node = draw(st.sampled_from(TAME_NODES if tame else NODES)) if depth > 0 else "leaf"
    if node == "leaf":
        return draw(leaves())
    if node == "scaled":
        return draw(st.sampled_from(COEFFICIENTS)) * draw(expressions(depth - 1, tame))
    if node in UNARY:
        return UNARY[node](draw(expressions(depth - 1, tame)))
    return BINARY[node](draw(expressions(depth - 1, tame)), draw(expressions(depth - 1, tame)))


Shape = tuple[str, sympy.Expr, "sympy.Expr | None"]
"""(kind, g, hand g′ or None for sympy.diff), before scaling."""


def trees() -> st.SearchStrategy[Shape]:
    """A random expression tree of depth ≤ 3, differentiated by sympy."""
    return expressions(3).map(lambda e: ("tree", e, None))


@st.composite
def overflows(draw) -> Shape:
    """exp of a linear or quadratic term, times a tame factor: g = ±∞ beyond some z."""
    exponent = draw(st.sampled_from([Z, 2 * Z, -Z, Z / 2, Z**2 / 2, Z**2 / 8 + Z, Z**3 / 10, -(Z**2) / 4 + 3 * Z]))
    shift = draw(st.sampled_from(POINTS))
    factor = draw(st.sampled_from([sympy.Integer(1), Z, sympy.tanh(Z), sympy.sin(Z), 1 / (1 + Z**2)]))
    return "overflow", factor * sympy.exp(exponent + shift), None


REMOVABLE: tuple[tuple[sympy.Expr, sympy.Expr, sympy.Expr], ...] = (
    (sympy.sin(W) / W, sympy.Integer(1), sympy.Integer(0)),
    ((sympy.exp(W) - 1) / W, sympy.Integer(1), HALF),
    ((1 - sympy.cos(W)) / W**2, HALF, sympy.Integer(0)),
    (sympy.tanh(W) / W, sympy.Integer(1), sympy.Integer(0)),
    (log1p(W**2) / W**2, sympy.Integer(1), sympy.Integer(0)),
    ((sympy.sqrt(1 + W**2) - 1) / W**2, HALF, sympy.Integer(0)),
    ((sympy.exp(W) - 1 - W) / W**2, HALF, sympy.Rational(1, 6)),
)
"""q(w) with a removable singularity at w = 0, its limit q(0) and the limit of q′ there."""


def removable(q: sympy.Expr, q0: sympy.Expr, q0_prime: sympy.Expr, c: sympy.Expr) -> Shape:
    """q(z − c) with its value at z = c given by a Piecewise (a ``where`` in code), and the
    quotient-rule derivative guarded the same way, with the limit of q′ at c."""
    q_z = q.subs(W, Z - c)
    forward = sympy.Piecewise((q0, sympy.Eq(Z, c)), (q_z, True))
    derivative = sympy.Piecewise((q0_prime, sympy.Eq(Z, c)), (sympy.diff(q_z, Z), True))
    return "removable", forward, derivative


@st.composite
def removables(draw) -> Shape:
    """One of ``REMOVABLE`` centred at 0, 1, −2 or √2."""
    q, q0, q0_prime = draw(st.sampled_from(REMOVABLE))
    c = draw(st.sampled_from([sympy.Integer(0), sympy.Integer(1), sympy.Integer(-2), sympy.sqrt(2)]))
    return removable(q, q0, q0_prime, c)


CANCELLING: tuple[sympy.Expr, ...] = (
    sympy.exp(W) - 1,
    1 - sympy.cos(W),
    sympy.sqrt(1 + W**2) - 1,
    W - sympy.sin(W),
    sympy.exp(W) - 1 - W,
    log1p(W**2) - W**2,
)
"""Forms that lose digits near w = 0 when written naively (as here)."""


@st.composite
def cancellations(draw) -> Shape:
    """One of ``CANCELLING`` at w = z − c, written naively (eʷ − 1, not expm1)."""
    q = draw(st.sampled_from(CANCELLING))
    c = draw(st.sampled_from(POINTS))
    return "cancellation", q.subs(W, Z - c), None


@st.composite
def irrational_kinks(draw) -> Shape:
    """One to three hinges, |z − c| or clips at irrational points, with coefficients."""
    kink = st.one_of(
        st.builds(hinge, st.sampled_from(IRRATIONAL_POINTS), st.sampled_from(LEFT_SLOPES)),
        st.sampled_from(IRRATIONAL_POINTS).map(lambda c: RealAbs(Z - c)),
        _point_pairs(IRRATIONAL_POINTS).map(lambda p: clip(*p)),
    )
    terms = draw(st.lists(st.tuples(st.sampled_from((sympy.Integer(1),) + COEFFICIENTS), kink), min_size=1, max_size=3))
    return "irrational_kinks", sympy.Add(*(a * k for a, k in terms)), None


@st.composite
def naive_sigmoids(draw) -> Shape:
    """s = 1/(1 + e^{−(a·z + b)}) with the hand derivative a·s·(1 − s), both written naively."""
    a = draw(st.sampled_from((sympy.Integer(1),) + COEFFICIENTS))
    b = draw(st.sampled_from(POINTS))
    s = 1 / (1 + sympy.exp(-(a * Z + b)))
    return "naive_sigmoid", s, a * s * (1 - s)


@st.composite
def polynomials(draw) -> Shape:
    """A fast-growing polynomial: c·z³ or c·z⁵ plus up to three lower terms."""
    degree = draw(st.sampled_from([3, 5]))
    lower = [k for k in draw(st.lists(st.sampled_from([1, 2, 3, 4]), max_size=3, unique=True)) if k < degree]
    terms = [draw(st.sampled_from((sympy.Integer(1),) + COEFFICIENTS)) * Z**k for k in [degree, *lower]]
    return "polynomial", sympy.Add(*terms), None


SHAPES: dict[str, Callable[[], st.SearchStrategy[Shape]]] = {
    "tree": trees,
    "overflow": overflows,
    "removable": removables,
    "cancellation": cancellations,
    "irrational_kinks": irrational_kinks,
    "naive_sigmoid": naive_sigmoids,
    "polynomial": polynomials,
}


def scales(low: float = -8, high: float = 6) -> st.SearchStrategy[float]:
    """10^e for e in [low, high] by tenths (shrinking to 1), or one of the extremes on purpose."""
    log_uniform = st.integers(round(10 * low), round(10 * high)).map(lambda k: 10.0 ** (k / 10))
    extremes = st.sampled_from([s for s in EXTREME_SCALES if 10.0**low <= s <= 10.0**high])
    return st.one_of(log_uniform, extremes)


def _scaled(scale: float, expr: sympy.Expr) -> sympy.Expr:
    """scale·expr with the scale as the exact rational it is in binary, so that sympy's
    products of it (36·s in a derivative) are exact, not rounded to 15 digits."""
    return expr if scale == 1.0 else sympy.Rational(scale) * expr


@st.composite
def symbolic_activations(draw, kinds: Sequence[str] = tuple(SHAPES)) -> SymbolicActivation:
    """A generated activation of one of ``kinds`` (all of ``SHAPES`` by default): a hostile
    shape sometimes plus a small tree, times a scale."""
    kind, forward, derivative = draw(st.one_of([SHAPES[k]() for k in kinds]))
    if kind != "tree" and draw(st.booleans()):
        extra = draw(expressions(1))
        forward = forward + extra
        derivative = None if derivative is None else derivative + sympy.diff(extra, Z)
    derivative = sympy.diff(forward, Z) if derivative is None else derivative
    assume(is_finite_everywhere(forward, derivative))
    scale = draw(scales())
    return symbolic_activation(kind, _scaled(scale, forward), _scaled(scale, derivative), scale)


def activations(kinds: Sequence[str] = tuple(SHAPES)) -> st.SearchStrategy[Activation]:
    """Generated right activations, as ``manual.Activation`` objects."""
    return symbolic_activations(kinds).map(lambda s: s.activation)


# --- wrong variants --------------------------------------------------------------------------

NOT_NEGLIGIBLE = 1e-4
"""A wrong variant counts only where |g′| is at least this fraction of max|g′| on the grid."""

SMALLEST_ERROR = 0.999e-6
"""...and where it is off by at least this relative to g′ (1e-6, less a rounding)."""

MIN_WIDTH = 0.49
"""...on a run of grid points at least this wide (0.5, less a grid step at the ends)."""


@dataclass(frozen=True, eq=False)
class WrongVariant:
    """A classic mistake in the derivative of ``correct``: ``label`` says which."""

    label: str
    correct: SymbolicActivation
    derivative: sympy.Expr
    activation: Activation
    low: float = -math.inf
    high: float = math.inf
    min_abs: float = 0.0
    """The mistake is confined to low < z < high, |z| > min_abs (the whole line by default)."""

    def in_region(self, z: np.ndarray) -> np.ndarray:
        """Where the mistake may show: low < z < high and |z| > min_abs."""
        z = np.asarray(z, np.float64)
        return (z > self.low) & (z < self.high) & (np.abs(z) >= self.min_abs)

    def differs(self, z: np.ndarray) -> np.ndarray:
        """Where (float64) the wrong g′ differs from the right one at all."""
        z = np.asarray(z, np.float64)
        right = self.correct.activation.derivative(z, np)
        wrong = self.activation.derivative(z, np)
        with np.errstate(invalid="ignore"):
            return ~(wrong == right) & ~(np.isnan(wrong) & np.isnan(right))

    def wrong_width(self) -> float:
        """The width of the longest run of ``GRID`` where this variant is really wrong: g and
        both g′ finite, |g′| not negligible, off by at least ``SMALLEST_ERROR`` relative."""
        g, right = self.correct.on_grid
        wrong = self.activation.derivative(GRID, np)
        finite = np.isfinite(g) & np.isfinite(right) & np.isfinite(wrong)
        if not np.any(finite):
            return 0.0
        size = np.abs(right)
        scale = float(np.max(size[finite]))
        with np.errstate(invalid="ignore"):
            off = (
                finite
                & (size >= NOT_NEGLIGIBLE * scale)
                & (size > 0)
                & (np.abs(wrong - right) >= SMALLEST_ERROR * size)
            )
        return _longest_run(off) * GRID_STEP

    def __repr__(self) -> str:
        return (
            f"WrongVariant({self.label!r}, g(z) = {readable(self.correct.forward)}, "
            f"wrong g'(z) = {readable(self.derivative)})"
        )


def _longest_run(mask: np.ndarray) -> int:
    best = run = 0
    for flag in mask:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def wrong_derivative(correct: SymbolicActivation, label: str, derivative: sympy.Expr, **region: float) -> WrongVariant:
    """``correct`` with its derivative replaced by ``derivative`` (the same forward function);
    ``region`` (low, high, min_abs) says where the two may differ, when not everywhere."""
    require_plain(derivative)
    act = correct.activation
    wrong = Activation(
        name=f"{act.name} [{label}]",
        forward=act.forward,
        derivative=elementwise(derivative),
        formula=f"g(z) = {readable(correct.forward)};  wrong g'(z) = {readable(derivative)}",
        kinks=act.kinks,
        kink_convention=act.kink_convention,
    )
    return WrongVariant(label, correct, derivative, wrong, **region)


def _off_where(derivative: sympy.Expr, relative: float, where: sympy.Basic) -> sympy.Expr:
    wrong = sympy.Float(1 + relative) * derivative
    return wrong if where is sympy.true else sympy.Piecewise((wrong, where), (derivative, True))


def relative_error(correct: SymbolicActivation, relative: float = 1e-6) -> WrongVariant:
    """g′·(1 + relative) everywhere."""
    return wrong_derivative(
        correct, f"relative {relative:g} everywhere", _off_where(correct.derivative, relative, sympy.true)
    )


def interval_error(correct: SymbolicActivation, low: sympy.Expr, relative: float = 1e-2) -> WrongVariant:
    """g′·(1 + relative) on (low, low + ½) only."""
    low = sympy.nsimplify(low)
    return wrong_derivative(
        correct,
        f"relative {relative:g} on ({float(low):g}, {float(low + HALF):g})",
        _off_where(correct.derivative, relative, (Z > low) & (Z < low + HALF)),
        low=float(low),
        high=float(low + HALF),
    )


def large_z_error(correct: SymbolicActivation, relative: float = 1e-6) -> WrongVariant:
    """g′·(1 + relative) only where |z| > 5."""
    return wrong_derivative(
        correct,
        f"relative {relative:g} for |z| > 5",
        _off_where(correct.derivative, relative, sympy.Abs(Z) > 5),
        min_abs=5.0,
    )


def negative_z_error(correct: SymbolicActivation, relative: float = 1e-6) -> WrongVariant:
    """g′·(1 + relative) only where z < 0."""
    return wrong_derivative(
        correct, f"relative {relative:g} for z < 0", _off_where(correct.derivative, relative, Z < 0), high=0.0
    )


_CHAINED = (sympy.exp, sympy.tanh, sympy.sin, sympy.cos, log1p, RealAbs)


def _compositions(expr: sympy.Expr) -> list[sympy.Expr]:
    """Nodes f(u) of ``expr`` with u ≠ z (whose chain rule has an inner factor u′)."""
    found = []
    for node in sympy.preorder_traversal(expr):
        inner = (
            node.base
            if isinstance(node, sympy.Pow) and node.exp.is_number
            else (node.args[0] if isinstance(node, _CHAINED) else None)
        )
        if inner is not None and inner != Z and not inner.is_number and node not in found:
            found.append(node)
    return found


def _differentiate_with(forward: sympy.Expr, node: sympy.Expr, node_prime: sympy.Expr) -> sympy.Expr:
    """d/dz of ``forward`` where the derivative of ``node`` is taken to be ``node_prime``."""
    h = sympy.Function("h", real=True)(Z)
    derivative = sympy.diff(forward.xreplace({node: h}), Z)
    return derivative.xreplace({sympy.Derivative(h, Z): node_prime}).xreplace({h: node})


def dropped_inner_derivative(correct: SymbolicActivation, node: sympy.Expr) -> WrongVariant:
    """The chain rule at f(u) = ``node`` without its inner factor u′: f′(u) instead of f′(u)·u′."""
    w = sympy.Dummy("w", real=True)
    if isinstance(node, sympy.Pow):
        inner, outer = node.base, w**node.exp
    else:
        inner, outer = node.args[0], node.func(w)
    outer_prime = sympy.diff(outer, w).subs(w, inner)
    return wrong_derivative(
        correct,
        f"inner derivative of {_short(node, 40)} dropped",
        _differentiate_with(correct.forward, node, outer_prime),
    )


def dropped_power_factor(correct: SymbolicActivation, node: sympy.Pow) -> WrongVariant:
    """(uᵏ)′ written u^{k−1}·u′, the factor k dropped."""
    base, k = node.base, node.exp
    return wrong_derivative(
        correct,
        f"factor {k} of {_short(node, 40)} dropped",
        _differentiate_with(correct.forward, node, base ** (k - 1) * sympy.diff(base, Z)),
    )


def dropped_scale(correct: SymbolicActivation) -> WrongVariant:
    """The overall constant factor forgotten in the derivative."""
    return wrong_derivative(
        correct, f"scale {correct.scale:g} dropped", correct.derivative / sympy.Rational(correct.scale)
    )


def dropped_factors(correct: SymbolicActivation) -> list[WrongVariant]:
    """Every dropped-factor mistake this activation allows (inner derivatives, power factors,
    the scale), really wrong or not."""
    out = [dropped_inner_derivative(correct, node) for node in _compositions(correct.forward)]
    out += [
        dropped_power_factor(correct, node)
        for node in sympy.preorder_traversal(correct.forward)
        if isinstance(node, sympy.Pow) and node.exp.is_Integer and node.exp >= 2
    ]
    if correct.scale != 1.0:
        out.append(dropped_scale(correct))
    return out


def _sums(expr: sympy.Expr) -> list[sympy.Add]:
    """The sums the derivative is made of: Add nodes reached through products, sums and
    Piecewise branches (not inside a function's argument)."""
    if isinstance(expr, sympy.Add):
        return [expr, *(s for a in expr.args for s in _sums(a))]
    if isinstance(expr, sympy.Mul):
        return [s for a in expr.args for s in _sums(a)]
    if isinstance(expr, sympy.Piecewise):
        return [s for value, _ in expr.args for s in _sums(value)]
    return []


MAX_SIGN_FLIPS = 12


def sign_flips(correct: SymbolicActivation) -> list[WrongVariant]:
    """One term's sign flipped in a sum of the derivative, for each term (at most 12)."""
    out: list[WrongVariant] = []
    for total in _sums(correct.derivative):
        for term in total.args:
            if len(out) < MAX_SIGN_FLIPS:
                flipped = correct.derivative.xreplace({total: total - 2 * term})
                out.append(wrong_derivative(correct, f"sign of {_short(term, 40)} flipped", flipped))
    return out


def _interval_starts(correct: SymbolicActivation) -> list[sympy.Rational]:
    """Starts a = k/20 of intervals (a, a + ½) in [−10, 10] where g and g′ are finite and |g′|
    is not negligible at every grid point inside, nearest 0 first."""
    g, d = correct.on_grid
    finite = np.isfinite(g) & np.isfinite(d)
    if not np.any(finite):
        return []
    good = finite & (np.abs(d) >= NOT_NEGLIGIBLE * np.max(np.abs(d[finite]))) & (d != 0)
    starts = []
    for k in sorted(range(-200, 191), key=abs):
        inside = (GRID > k / 20 + 1e-9) & (GRID < k / 20 + 0.5 - 1e-9)
        if np.all(good[inside]):
            starts.append(sympy.Rational(k, 20))
    return starts


MISTAKES = ("relative", "interval", "large_z", "negative_z", "dropped_factor", "sign_flip")


@st.composite
def wrong_variants(draw, correct: SymbolicActivation, mistakes: Sequence[str] = MISTAKES) -> WrongVariant:
    """A classic mistake in ``correct``'s derivative that is really wrong on [−10, 10]
    (``WrongVariant.wrong_width`` ≥ ``MIN_WIDTH``); examples where the drawn mistake cannot be
    made visible there are rejected."""
    mistake = draw(st.sampled_from(mistakes))
    if mistake == "relative":
        candidates = [relative_error(correct, 1e-6)]
    elif mistake == "interval":
        starts = _interval_starts(correct)
        assume(starts)
        relative = draw(st.sampled_from([1e-2, 1e-3]))
        candidates = [interval_error(correct, draw(st.sampled_from(starts)), relative)]
    elif mistake == "large_z":
        candidates = [large_z_error(correct, draw(st.sampled_from([1e-6, 1e-4])))]
    elif mistake == "negative_z":
        candidates = [negative_z_error(correct, draw(st.sampled_from([1e-6, 1e-3])))]
    elif mistake == "dropped_factor":
        candidates = dropped_factors(correct)
    else:
        candidates = sign_flips(correct)
    valid = [v for v in candidates if v.wrong_width() >= MIN_WIDTH]
    assume(valid)
    return draw(st.sampled_from(valid))


@st.composite
def wrong_activations(draw, kinds: Sequence[str] = tuple(SHAPES), mistakes: Sequence[str] = MISTAKES) -> WrongVariant:
    """A generated activation with a classic mistake in its derivative."""
    return draw(wrong_variants(draw(symbolic_activations(kinds)), mistakes))


# --- generated losses ------------------------------------------------------------------------

LOSS_RANGE = np.linspace(-20, 20, 8001)
"""Where a generated φ must be finite (|a − y| ≤ 20), and where wrong losses are shown wrong."""

NAMED_PENALTIES: tuple[sympy.Expr, ...] = (
    Z**2 / 2,
    sympy.sqrt(1 + Z**2) - 1,
    log1p(Z**2),
    RealAbs(Z),
    Z**4 / 4,
    Z * sympy.tanh(Z),
    sympy.Piecewise((Z**2 / 2, RealAbs(Z) <= 1), (RealAbs(Z) - HALF, True)),
    1 - sympy.exp(-(Z**2)),
    sympy.log(sympy.cosh(Z)),
)
"""φ(r) of familiar losses: squared, pseudo-Huber, Cauchy, absolute, quartic, Huber, Welsch, log-cosh."""


@dataclass(frozen=True, eq=False)
class SymbolicLoss:
    """A generated loss Eₜ = s·Σⱼ φ(aⱼ − yⱼ), with ∂Eₜ/∂aⱼ = s·φ′(aⱼ − yⱼ)."""

    kind: str
    phi: sympy.Expr
    phi_prime: sympy.Expr
    scale: float
    loss: Loss

    @cached_property
    def on_range(self) -> tuple[np.ndarray, np.ndarray]:
        """(s·φ, s·φ′) on ``LOSS_RANGE`` in float64, through the loss's own functions."""
        return _loss_on_range(self.loss)

    def __repr__(self) -> str:
        return f"SymbolicLoss({self.kind!r}, phi(z) = {self.phi}, scale {self.scale:g})"


def _loss_on_range(loss: Loss) -> tuple[np.ndarray, np.ndarray]:
    r = LOSS_RANGE[:, None]
    y = np.zeros_like(r)
    return loss.error(r, y, np), loss.gradient(r, y, np)[:, 0]


def _loss(
    name: str,
    formula: str,
    phi: sympy.Expr,
    phi_prime: sympy.Expr,
    scale: float,
    gradient_scale: float,
    per_example: bool = False,
) -> Loss:
    """Eₜ = scale·Σⱼ φ(aⱼ − yⱼ) and its claimed gradient gradient_scale·φ′(a − y) (/ n when
    ``per_example``)."""
    phi_fn, phi_prime_fn = elementwise(phi), elementwise(phi_prime)

    def error(a, y, xp):
        return scale * xp.sum(phi_fn(a - y, xp), axis=-1)

    def gradient(a, y, xp):
        g = gradient_scale * phi_prime_fn(a - y, xp)
        return g / a.shape[0] if per_example else g

    return Loss(name, error, gradient, formula=formula, kinks=kinks_of(phi), kink_convention=KINK_CONVENTION)


def symbolic_loss(kind: str, phi: sympy.Expr, scale: float = 1.0) -> SymbolicLoss:
    """The loss s·Σⱼ φ(aⱼ − yⱼ) with gradient s·φ′ (sympy's)."""
    phi = sympy.sympify(phi)
    phi_prime = sympy.diff(phi, Z)
    require_plain(phi, phi_prime)
    formula = f"E_t = {scale:g}·Σ_j φ(a_j − y_j), φ(z) = {phi};  ∂E_t/∂a_j = {scale:g}·φ′, φ′(z) = {phi_prime}"
    loss = _loss(f"fuzz {kind}: {scale:g}·Σ {_short(phi, 60)}", formula, phi, phi_prime, scale, scale)
    return SymbolicLoss(kind, phi, phi_prime, float(scale), loss)


@st.composite
def symbolic_losses(draw) -> SymbolicLoss:
    """φ a familiar penalty (maybe shifted) or a tame expression tree, finite for |r| ≤ 20,
    and s log-uniform in 1e-10 … 1e6."""
    kind = draw(st.sampled_from(["named", "tree"]))
    if kind == "named":
        phi = draw(st.sampled_from(NAMED_PENALTIES))
        phi = phi.subs(Z, Z - draw(st.sampled_from(POINTS)))
    else:
        phi = draw(expressions(2, tame=True))
    assume(is_finite_everywhere(phi, sympy.diff(phi, Z)))
    made = symbolic_loss(kind, phi, draw(scales(-10, 6)))
    value, slope = made.on_range
    assume(np.all(np.isfinite(value)) and np.all(np.isfinite(slope)))
    return made


def losses() -> st.SearchStrategy[Loss]:
    """Generated right losses, as ``manual.Loss`` objects."""
    return symbolic_losses().map(lambda s: s.loss)


@dataclass(frozen=True, eq=False)
class WrongLoss:
    """A classic mistake in a generated loss's gradient: ``label`` says which."""

    label: str
    correct: SymbolicLoss
    loss: Loss

    def wrong_width(self) -> float:
        """The longest run of ``LOSS_RANGE`` where the gradient is finite, not negligible, and
        off by at least ``SMALLEST_ERROR`` relative (for 1/n twice: n = 2, the least it is)."""
        _, right = self.correct.on_range
        r = LOSS_RANGE[:, None]
        pair = np.concatenate([r, r])  # a batch of two rows per point: 1/n twice halves
        wrong = self.loss.gradient(pair, np.zeros_like(pair), np)[: r.shape[0], 0]
        finite = np.isfinite(right) & np.isfinite(wrong)
        if not np.any(finite):
            return 0.0
        size = np.abs(right)
        with np.errstate(invalid="ignore"):
            off = (
                finite
                & (size >= NOT_NEGLIGIBLE * np.max(size[finite]))
                & (size > 0)
                & (np.abs(wrong - right) >= SMALLEST_ERROR * size)
            )
        return _longest_run(off) * float(LOSS_RANGE[1] - LOSS_RANGE[0])

    def __repr__(self) -> str:
        return f"WrongLoss({self.label!r}, {self.correct!r})"


def wrong_loss(
    correct: SymbolicLoss,
    label: str,
    phi_prime: sympy.Expr | None = None,
    gradient_scale: float | None = None,
    per_example: bool = False,
) -> WrongLoss:
    """``correct`` with the gradient ``gradient_scale``·``phi_prime`` (by default the right
    s and φ′), divided by n once more when ``per_example``."""
    prime = correct.phi_prime if phi_prime is None else phi_prime
    require_plain(prime)
    s = correct.scale if gradient_scale is None else gradient_scale
    formula = f"{correct.loss.formula};  WRONG gradient {s:g}·({prime})" + (" / n" if per_example else "")
    loss = _loss(f"{correct.loss.name} [{label}]", formula, correct.phi, prime, correct.scale, s, per_example)
    return WrongLoss(label, correct, loss)


LOSS_MISTAKES = ("relative", "sign_flip", "dropped_factor", "one_over_n_twice")


def loss_mistakes(correct: SymbolicLoss, mistake: str) -> list[WrongLoss]:
    """Every mistake of the kind ``mistake`` (one of ``LOSS_MISTAKES``) this loss allows,
    really wrong or not."""
    if mistake == "relative":
        return [wrong_loss(correct, "relative 1e-06", sympy.Float(1 + 1e-6) * correct.phi_prime)]
    if mistake == "one_over_n_twice":
        return [wrong_loss(correct, "1/n applied twice", per_example=True)]
    as_activation = symbolic_activation("phi", correct.phi, correct.phi_prime)
    variants = sign_flips(as_activation) if mistake == "sign_flip" else dropped_factors(as_activation)
    out = [wrong_loss(correct, v.label, v.derivative) for v in variants]
    if mistake == "dropped_factor" and correct.scale != 1.0:
        out.append(wrong_loss(correct, f"scale {correct.scale:g} dropped", gradient_scale=1.0))
    return out


@st.composite
def wrong_losses(draw, mistakes: Sequence[str] = LOSS_MISTAKES) -> WrongLoss:
    """A generated loss with a classic mistake in its gradient, really wrong for |a − y| ≤ 20."""
    correct = draw(symbolic_losses())
    mistake = draw(st.sampled_from(mistakes))
    valid = [v for v in loss_mistakes(correct, mistake) if v.wrong_width() >= MIN_WIDTH]
    assume(valid)
    return draw(st.sampled_from(valid))
