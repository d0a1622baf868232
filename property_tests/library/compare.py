"""Manual against autodiff, equation by equation, with a report for every comparison.

Data flows one way: a ``Case`` → ``manual`` and ``reference`` each compute → the functions here
judge each equation at each layer → pytest or ``backprop-check`` reports.

Every judgement is elementwise, |manual − autodiff| ≤ allowed, where allowed comes from a
running rounding-error analysis carried beside the values (``error_bounds``; the reasoning is
in ``property_tests.library.tolerances``). Errors are reported relative to the quantity's magnitude M,
the same sums taken on absolute values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

import manual
from manual import (
    EQUATIONS,
    LOSSES,
    Activation,
    Equations,
    Loss,
    Network,
    ParametricActivation,
    VectorActivation,
    as_used,
)
from property_tests.library import tolerances as tol
from property_tests.library.strategies import Case, activation_at, at_layer
from property_tests.library.tolerances import require_finite
from reference import Reference

if TYPE_CHECKING:
    from reference.layers import LayerReference

BoundKey = tuple[str, int] | tuple[str, int, str]
"""A key of ``Bounds``: ("delta", k), ("theta", k), ("b", k), or ("p", k, parameter name)."""


@dataclass(frozen=True)
class Comparison:
    """One equation at one layer, judged elementwise. ``error`` is |hand − autodiff| / M at the
    element that came closest to (or went furthest past) its bound, ``tolerance`` the bound
    there in the same units, M being the quantity's magnitude."""

    equation: str
    layer: int
    activation: str
    error: float | None
    tolerance: float
    passed: bool
    index: tuple[int, ...] = ()
    manual_value: float = float("nan")
    autodiff_value: float = float("nan")

    def describe(self) -> str:
        verdict = "ok" if self.passed else "MISMATCH"
        where = f" at {self.index}: hand {self.manual_value:.17g}, autodiff {self.autodiff_value:.17g}"
        head = f"equation {self.equation}, layer {self.layer} ({self.activation}): "
        if self.error is None:
            return head + (
                "the hand result has the wrong shape"
                if not self.index
                else f"the hand value is not finite where autodiff's is: {verdict}{where}"
            )
        return (
            head
            + f"error {self.error:.3g} vs tolerance {self.tolerance:.3g}: {verdict}"
            + ("" if self.passed else where)
        )


@dataclass(frozen=True)
class RaisedComparison(Comparison):
    """A comparison that could not be made because the hand derivation raised."""

    reason: str = ""

    def describe(self) -> str:
        return f"equation {self.equation}, layer {self.layer}: the hand derivation raised: {self.reason}"


def judge(
    equation: str,
    layer: int,
    activation: str,
    m: npt.ArrayLike | None,
    r: npt.ArrayLike,
    magnitude: npt.ArrayLike,
    allowed: npt.ArrayLike,
) -> Comparison:
    """Compare ``m`` (by hand) with ``r`` (autodiff) elementwise: |m − r| ≤ allowed. A NaN or an
    infinity by hand where autodiff is finite always fails, with no error figure (``error`` is
    ``None``), and so does a wrong shape. A tolerance or magnitude that is not finite is a bug
    of the checker (``InternalError``), never a verdict."""
    m, r = np.asarray(m, np.float64), np.asarray(r, np.float64)
    if m.ndim == r.ndim == 0:  # a parameter shared by a layer: one number
        m, r, allowed, magnitude = (np.reshape(v, 1) for v in (m, r, allowed, magnitude))
    if m.shape != r.shape:
        return Comparison(equation, layer, activation, None, 0.0, False)
    if m.size == 0:
        return Comparison(equation, layer, activation, 0.0, 0.0, True)
    allowed, magnitude = _shaped(allowed, m.shape), _shaped(magnitude, m.shape)
    if not (np.isfinite(allowed).all() and np.isfinite(magnitude).all() and np.isfinite(r).all()):
        require_finite(f"the tolerance of equation {equation}, layer {layer}", allowed, magnitude, r)
    diff = np.abs(m - r)
    passed = bool((diff <= allowed).all())
    with np.errstate(over="ignore"):  # an error of 1e300 over a bound of 1e-290 is ∞: it ranks worst
        score = diff / np.maximum(allowed, _TINY)  # no 0/0 or ∞/∞: allowed is finite, at least _TINY here
    if not np.isfinite(m).all():
        score[~np.isfinite(m)] = np.inf  # NaN or ∞ by hand ranks worst
    worst = np.unravel_index(int(score.argmax()), m.shape)
    unit = max(float(magnitude[worst]), _TINY)
    finite = bool(np.isfinite(m[worst]))
    return Comparison(
        equation,
        layer,
        activation,
        error=float(diff[worst]) / unit if finite else None,
        tolerance=float(allowed[worst]) / unit,
        passed=passed,
        index=tuple(int(i) for i in worst),
        manual_value=float(m[worst]),
        autodiff_value=float(r[worst]),
    )


_TINY = float(np.finfo(np.float64).tiny)


def by_hand() -> np.errstate:
    """Around the hand side of a comparison: it may be anything (a user's derivative, a
    mutant's equation), and every value it gives is judged, an ∞ or a NaN where autodiff is
    finite a failure; its overflow or ∞·0 on the way is no warning of the checker's."""
    return np.errstate(all="ignore")


def _shaped(v: npt.ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """v broadcast to ``shape`` (v itself when it has that shape already)."""
    if isinstance(v, np.ndarray) and v.shape == shape:
        return v
    return np.broadcast_to(v, shape)


@dataclass(frozen=True)
class Bounds:
    """For every δ⁽ᵏ⁾, ∂E/∂Θ⁽ᵏ⁾ and ∂E/∂b⁽ᵏ⁾ of one case: its magnitude M (the same sums on
    absolute values), its running rounding-error bound E (in units of u, see
    ``property_tests.library.tolerances``) and autodiff's noise N carried along."""

    M: dict[BoundKey, np.ndarray]
    E: dict[BoundKey, np.ndarray]
    N: dict[BoundKey, np.ndarray]

    def allowed(self, key: BoundKey, dtype: np.dtype | type, terms: int) -> np.ndarray:
        return tol.scale(dtype) * self.E[key] + tol.NOISE_SAFETY * self.N[key] + tol.floor(dtype, terms)


def scales(g, z, p=None) -> tuple:
    """(f_g, autodiff's noise in g′) at every element of z (``tolerances.Profile``). An
    activation with parameters p is sized by ``parametric_sizes``; a map that mixes units is
    bounded through its own Jacobian (``mixed_terms``), so (1, 0)."""
    if isinstance(g, VectorActivation):
        return 1.0, 0.0
    if isinstance(g, ParametricActivation):
        return parametric_sizes(g, p, z)["z"], np.zeros(np.shape(z))
    # One comparison asks about the same layer's z several times (its forward bounds, equation
    # (2), the output layer): the lookup is remembered for the profile and the z object, both
    # held so that their identities cannot pass to other objects (a profile given an allowance
    # by ``tolerances.allow_deviation`` is a new object, so it is looked up anew).
    profile = tol.profile(g)
    hit = _SCALES.get((id(profile), id(z)))
    if hit is not None and hit[0] is z and hit[1] is profile:
        return hit[2]
    found = profile.at(z)
    if len(_SCALES) >= 64:
        _SCALES.clear()
    _SCALES[id(profile), id(z)] = (z, profile, found)
    return found


_SCALES: dict[tuple[int, int], tuple] = {}


def toward_origin(z: np.ndarray) -> list[np.ndarray]:
    """Points between the origin and z, one unit (``tolerances.REACH``) past each, as the
    scales of ``tolerances.Profile`` are taken."""
    direction = np.where(z >= 0, 1.0, -1.0)
    return [z + direction * tol.REACH, z, 0.75 * z, 0.5 * z, 0.25 * z, 0 * z, -direction * tol.REACH]


SCAN = (0.0, 0.25, 0.5, 0.75)
"""Fractions of a parameter's value at which ``parametric_sizes`` also looks (z held)."""


def parametric_sizes(g: ParametricActivation, p, z) -> dict[str, np.ndarray]:
    """For ∂g/∂z (key ``"z"``) and every ∂g/∂p (by name): the largest value it takes between
    the origin and z, and between the origin and each parameter's value (``SCAN``, z held), the
    size of the terms the partial is computed from. Autodiff's σ′ = σ(1 − σ), say, is accurate
    only to u absolutely, so its z²σ′(βz) for swish's ∂g/∂β carries an error of u·z²/4, the
    size the partial has at β → 0. Taken from the hand partials, in float64: they only size the
    rounding allowance (some 1e-13 of it), and the partials themselves are proven against
    ``jax.grad`` pointwise (``test_activation_kinds``, and ``backprop-check activation`` for a
    user's own), so a wrong partial cannot hide in it. Points where a scanned value is not
    finite take no part. Remembered for the last few layers asked about (each is asked for its
    ∂g/∂z and its parameters several times in one comparison)."""
    z = np.asarray(z, np.float64)
    p64 = {name: np.asarray(v, np.float64) for name, v in (p or {}).items()}
    key = (g, z.shape, z.tobytes(), tuple((name, v.tobytes()) for name, v in sorted(p64.items())))
    if key in _SIZES:
        return _SIZES[key]
    points = [(s, p64) for s in toward_origin(z)]
    points += [(z, {**p64, name: t * value}) for name, value in p64.items() for t in SCAN]
    sizes: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for s, q in points:
            partials = {"z": g.derivative(s, q, np), **g.parameter_derivatives(s, q, np)}
            for name, value in partials.items():
                v = np.abs(np.broadcast_to(value, z.shape))
                v = np.where(np.isfinite(v), v, 0.0)
                sizes[name] = v if name not in sizes else np.maximum(sizes[name], v)
    sizes = {name: np.maximum(v, tol.SLOPE_MINIMUM) for name, v in sizes.items()}
    if len(_SIZES) >= 64:
        _SIZES.clear()
    _SIZES[key] = sizes
    return sizes


_SIZES: dict = {}


def jacobian_size(g: VectorActivation, z: np.ndarray) -> np.ndarray:
    """|J_g(z)| for every row, shape (n, output units, units), one output unit at a time
    through the hand Jᵀv (proven against ``jax.vjp`` pointwise, as ``parametric_sizes``). For
    a GLU, the largest |J| with the gated half s anywhere between the origin and s (as
    ``toward_origin``), the value half held: the gate's derivative is computed from terms of
    that size (jax's σ′ = σ(1 − σ) is 0 for s > 37, where σ′ is e⁻ˢ by hand)."""
    z = np.asarray(z, np.float64)
    key = (g, z.shape, z.tobytes())
    if key not in _SIZES:
        if g.mixes == "halves":
            m = z.shape[-1] // 2
            variants = [np.concatenate([z[..., :m], s], axis=-1) for s in toward_origin(z[..., m:])]
            J = np.max([_jacobian_at(g, v) for v in variants], axis=0)
        elif g.mixes is None:  # how it mixes is not said: the whole row toward the origin
            J = np.max([_jacobian_at(g, t * z) for t in (1.0, 0.75, 0.5, 0.25, 0.0)], axis=0)
        else:
            J = _jacobian_at(g, z)
        if len(_SIZES) >= 64:
            _SIZES.clear()
        _SIZES[key] = J
    return _SIZES[key]


def _jacobian_at(g: VectorActivation, z: np.ndarray) -> np.ndarray:
    out = g.width(z.shape[-1])
    rows = []
    with np.errstate(all="ignore"):
        for j in range(out):
            e = np.zeros(z.shape[:-1] + (out,))
            e[..., j] = 1.0
            rows.append(np.abs(g.vjp(z, e, np)))
    J = np.stack(rows, axis=-2)
    return np.where(np.isfinite(J), J, 0.0)


def mixed_terms(g: VectorActivation, z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The size of the terms J_g(z)ᵀv is computed from, for non-negative v (z's shape). A
    softmax-like map (``mixes == "row"``) computes aᵢ(vᵢ − Σⱼaⱼvⱼ), or vᵢ − sᵢΣⱼvⱼ, with
    0 ≤ a, s ≤ 1: terms up to vᵢ + Σⱼvⱼ, far above |J|ᵀv where the row saturates (those terms
    cancel). A GLU and maxout multiply each vⱼ by one Jacobian entry: |J|ᵀv. A map that does not
    say how it mixes may cancel like softmax: |J|ᵀv plus its largest entry times Σⱼvⱼ."""
    if g.mixes == "row":
        return v + np.sum(v, axis=-1, keepdims=True)
    J = jacobian_size(g, z)
    terms = np.einsum("...ji,...j->...i", J, v)
    if g.mixes is None:  # a row map may cancel terms of any entry's size (a saturating softmax)
        terms = terms + np.max(J, axis=(-2, -1))[..., None] * np.sum(v, axis=-1, keepdims=True)
    return terms


def mixed_sensitivity(g: VectorActivation, z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """How far an error in z moves J_g(z)ᵀv, per unit of the row's largest error, divided by
    ``tolerances.SECOND_DERIVATIVE_RATIO`` (z's shape, v non-negative): the terms of J_gᵀv
    with the Jacobian sized one unit (``tolerances.REACH``) past z, as an elementwise g′ is
    (``scales``). Its own terms (``mixed_terms``) are not enough: a GLU's ∂aᵢ/∂sᵢ = uᵢh′(sᵢ) is
    as small as uᵢ, yet an error Δu moves it by h′(sᵢ)·Δu, so where uᵢ is a sum that cancelled
    to 1e-5, its rounding moves δ 1e5 times more than those terms allow. A softmax-like map's
    terms (vᵢ + Σⱼvⱼ) already bound how its Jacobian moves."""
    terms = mixed_terms(g, z, v)
    if g.mixes == "row":
        return terms
    reached = z + np.where(z >= 0, 1.0, -1.0) * tol.REACH
    return np.maximum(terms, mixed_terms(g, reached, v))


def mixed_forward(g: VectorActivation, z: np.ndarray, a: np.ndarray, EZ: np.ndarray) -> tuple:
    """(A, EA) of a = g(z) for a map that mixes units: the size of its terms and its running
    error (units of u), from z's error EZ."""
    z_abs = np.abs(z)
    if g.mixes == "row":
        A = np.abs(a) + z_abs
        return A, tol.ELEMENTARY_ULPS * A + 2 * np.max(EZ, axis=-1, keepdims=True)
    J = jacobian_size(g, z)
    A = np.abs(a) + np.einsum("...ji,...i->...j", J, z_abs)
    reach = 1 + np.max(z_abs, axis=-1, keepdims=True)
    return A, tol.ELEMENTARY_ULPS * reach * A + np.einsum("...ji,...i->...j", J, EZ)


def mixed_rounding(z: np.ndarray, units: int) -> np.ndarray:
    """Rounding of one J_gᵀv, in units of u per unit of its terms: its elementary functions
    (``ELEMENTARY_ULPS``·(1 + |z|), the row's largest |z|) and a sum over up to ``units``."""
    return tol.ELEMENTARY_ULPS * (1 + np.max(np.abs(z), axis=-1, keepdims=True)) + units + 2


def loss_terms(case: Case, a: np.ndarray) -> np.ndarray:
    """The size of the terms ∇ₐEₜ is computed from: for a loss other than the squared error that
    is |∇| + |a| + |y| + 1 (logcosh's tanh(a − y) is a difference of two halves of size ½), the
    last three in the loss's own units (``tolerances.loss_units``: 1 for the catalogue)."""
    y = case.y.astype(np.float64)
    units = tol.loss_units(case.loss)
    return np.abs(sizing_gradient(case.loss, a, y)) + units * (np.abs(a) + np.abs(y) + (case.loss.name != "mse"))


def sizing_gradient(loss: Loss, a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """∇ₐEₜ for sizing a bound: a catalogue loss's hand gradient (the suite proves it against
    autodiff), any other loss's from autodiff (``reference.loss_gradient``). The hand gradient of
    a user's loss is the one under test: a bound sized by it would move with its mistake, and be
    ∞ or NaN with it (an error of the checker's, not a verdict)."""
    if LOSSES.get(loss.name) is loss:
        return loss.gradient(a, y, np)
    hit = _SIZING.get(id(a))
    if hit is not None and hit[0] is a and hit[1] is loss and np.array_equal(hit[2], y):
        return hit[3]  # (1) and the end-to-end bounds of one case ask for the same a
    from reference.plain import loss_gradient_compiled  # JAX only for a loss outside the catalogue

    found = loss_gradient_compiled(loss, a, y)
    _SIZING.clear()
    _SIZING[id(a)] = (a, loss, y, found)
    return found


_SIZING: dict[int, tuple] = {}


def output_layer(case: Case, ref: Reference | LayerReference, EA_L=0.0, EZ_L=0.0):
    """M, E (units of u) and N of δ⁽ᴸ⁾ by equation (1) in the form the case uses: fused with
    the loss, the general form J_gᵀ∇ₐE, or the elementwise form."""
    net, L = case.network, case.network.depth
    g, y, a, z = net.g[L], case.y.astype(np.float64), ref.a[L], ref.z[L]
    # exp and log cost ELEMENTARY_ULPS·(1 + |z|) each; softmax's normalising sum over the m
    # output units costs m more (γ_m), as does the Σⱼ aⱼvⱼ of its Jᵀv.
    m_units = net.widths[-1]
    own = tol.ELEMENTARY_ULPS * (1 + np.abs(z)) + m_units
    z_error = tol.SECOND_DERIVATIVE_RATIO * np.max(np.broadcast_to(EZ_L, np.shape(z)), axis=-1, keepdims=True)
    if case.loss.fuses(g):  # a·Σy − y
        M = np.abs(a) * np.sum(np.abs(y), axis=-1, keepdims=True) + np.abs(y) + np.abs(a)
        return M, M * (own + z_error + 2) + EA_L, np.zeros_like(M)
    G = loss_terms(case, a)
    if isinstance(g, VectorActivation):
        M = mixed_terms(g, z, G)
        E = M * (own + 2) + mixed_sensitivity(g, z, G) * z_error + mixed_terms(g, z, G + EA_L)
        return M, E, np.zeros_like(M)
    f, eta = scales(g, z, net.p[L])
    M = G * f
    loss_rounding = 1 if case.loss.name == "mse" else tol.ELEMENTARY_ULPS
    E = (loss_rounding * G + EA_L) * f + G * (tol.derivative_bound(f, z) + tol.SECOND_DERIVATIVE_RATIO * f * EZ_L) + M
    return M, E, G * eta


@dataclass
class _Forward:
    """The forward half of the running error analysis: for every layer, the size of the terms
    of a (A), and the running errors of a and z (EA, EZ, units of u); f, η for elementwise g."""

    A: list
    EA: list
    EZ: list
    f: list
    eta: list


def _forward_bounds(case: Case, ref: Reference, theta: Mapping[int, np.ndarray]) -> _Forward:
    net, L = case.network, case.network.depth
    fw = _Forward([np.abs(ref.a[0])], [np.zeros_like(ref.a[0])], [None], [None], [None])
    for k in range(1, L + 1):
        Z = fw.A[k - 1] @ theta[k].T + np.abs(at_layer(net.b, k).astype(np.float64))
        fw.EZ.append((theta[k].shape[1] + 1) * Z + fw.EA[k - 1] @ theta[k].T)
        g = net.g[k]
        if isinstance(g, VectorActivation):
            A, EA = mixed_forward(g, ref.z[k], ref.a[k], fw.EZ[k])
            f = eta = None
        else:
            f, eta = scales(g, ref.z[k], net.p[k])
            A = np.abs(ref.a[k]) + f * np.abs(ref.z[k])
            EA = tol.ELEMENTARY_ULPS * A + f * fw.EZ[k]
        for column, value in ((fw.A, A), (fw.EA, EA), (fw.f, f), (fw.eta, eta)):
            column.append(value)
    return fw


def parameter_bounds(
    g: ParametricActivation,
    p: Mapping[str, np.ndarray],
    z: np.ndarray,
    w: np.ndarray,
    Ew: np.ndarray,
    Nw: np.ndarray,
    EZ: np.ndarray | float,
    n: int,
) -> tuple[dict, dict, dict]:
    """M, E (units of u) and N of ∂E/∂p = (1/n) Σ w ∂g/∂p for every parameter of g: w is the
    size of ∂Eₜ/∂a's terms, Ew and Nw its running error and autodiff's noise. The sum runs over
    the examples, and over the units too for a shared parameter."""
    M, E, N = {}, {}, {}
    for q in g.parameters:
        P = parametric_sizes(g, p, z)[q.name]
        shared = np.ndim(p[q.name]) == 0
        count = w.size if shared else w.shape[0]

        def total(v, shared=shared):
            return (v.sum() if shared else v.sum(axis=0)) / n

        M[q.name] = total(w * P)
        own = tol.derivative_bound(P, z) + tol.SECOND_DERIVATIVE_RATIO * P * EZ + (count + 1) * P
        E[q.name] = total(Ew * P + w * own)
        N[q.name] = total(Nw * P)
    return M, E, N


def error_bounds(case: Case, ref: Reference) -> Bounds:
    """The running error analysis of the whole pipeline, on autodiff's values (float64)."""
    net, L, n = case.network, case.network.depth, case.n
    theta = {k: np.abs(at_layer(net.theta, k).astype(np.float64)) for k in range(1, L + 1)}  # |Θ⁽ᵏ⁾|
    fw = _forward_bounds(case, ref, theta)
    f, EZ = fw.f, fw.EZ

    def g_prime_error(k):
        return tol.derivative_bound(f[k], ref.z[k]) + tol.SECOND_DERIVATIVE_RATIO * f[k] * EZ[k]

    M: dict[BoundKey, np.ndarray] = {}
    E: dict[BoundKey, np.ndarray] = {}
    N: dict[BoundKey, np.ndarray] = {}
    M["delta", L], E["delta", L], N["delta", L] = output_layer(case, ref, fw.EA[L], EZ[L])
    upstream = {}  # ∂Eₜ/∂a⁽ᵏ⁾'s terms, running error and noise, for the parameter gradients
    if isinstance(net.g[L], ParametricActivation):
        G = loss_terms(case, ref.a[L])
        upstream[L] = (G, tol.ELEMENTARY_ULPS * G + fw.EA[L], np.zeros_like(G))
    # Backward: equations (1) and (2) with every term made non-negative.
    for k in range(L - 1, 0, -1):
        back = M["delta", k + 1] @ theta[k + 1]
        E_back = E["delta", k + 1] @ theta[k + 1] + (theta[k + 1].shape[0] + 1) * back
        N_back = N["delta", k + 1] @ theta[k + 1]
        upstream[k] = (back, E_back, N_back)
        g = net.g[k]
        if isinstance(g, VectorActivation):
            M["delta", k] = mixed_terms(g, ref.z[k], back)
            z_error = tol.SECOND_DERIVATIVE_RATIO * np.max(EZ[k], axis=-1, keepdims=True)
            E["delta", k] = (
                mixed_terms(g, ref.z[k], E_back)
                + mixed_rounding(ref.z[k], back.shape[-1]) * M["delta", k]
                + mixed_sensitivity(g, ref.z[k], back) * z_error
            )
            N["delta", k] = mixed_terms(g, ref.z[k], N_back)
        else:
            M["delta", k] = back * f[k]
            E["delta", k] = E_back * f[k] + back * g_prime_error(k)
            N["delta", k] = N_back * f[k] + back * fw.eta[k]
    # Equation (3): (1/n) δᵀa and (1/n) Σ δ, and (1/n) Σ (∂Eₜ/∂a) ∂g/∂p.
    A, EA = fw.A, fw.EA
    for k in range(1, L + 1):
        Md, Ed, Nd = M["delta", k], E["delta", k], N["delta", k]
        M["theta", k] = Md.T @ A[k - 1] / n
        E["theta", k] = (Ed.T @ A[k - 1] + Md.T @ EA[k - 1] + (n + 1) * Md.T @ A[k - 1]) / n
        N["theta", k] = Nd.T @ A[k - 1] / n
        M["b", k] = Md.sum(axis=0) / n
        E["b", k] = (Ed.sum(axis=0) + (n + 1) * Md.sum(axis=0)) / n
        N["b", k] = Nd.sum(axis=0) / n
        g_k = net.g[k]
        if isinstance(g_k, ParametricActivation):
            Mp, Ep, Np = parameter_bounds(g_k, at_layer(net.p, k), ref.z[k], *upstream[k], EZ[k], n)
            for name in Mp:
                M["p", k, name], E["p", k, name], N["p", k, name] = Mp[name], Ep[name], Np[name]
    return Bounds(M, E, N)


def equation_1(case: Case, ref: Reference, equations: Equations = EQUATIONS) -> Comparison:
    """Equation (1) on autodiff's z⁽ᴸ⁾ and a⁽ᴸ⁾: δ⁽ᴸ⁾ by hand against ∂Eₜ/∂z⁽ᴸ⁾ from autodiff.
    The inputs are shared, so only the equation's own rounding counts."""
    net, L = case.network, case.network.depth
    g, y = activation_at(net, L), case.y.astype(np.float64)
    with by_hand():
        if case.loss.fuses(g):
            assert case.loss.fused_delta is not None  # a loss that fuses with g has its fused form of (1)
            m = case.loss.fused_delta(ref.z[L], y, np)
        else:
            m = equations.output_delta(case.loss.gradient(ref.a[L], y, np), ref.z[L], as_used(net, L))
    M, E, N = output_layer(case, ref)
    allowed = tol.scale(np.float64) * E + tol.NOISE_SAFETY * N + tol.floor(np.float64, net.widths[-1])
    return judge("(1)", L, g.name, m, ref.delta[L], M, allowed)


def equation_2(case: Case, ref: Reference, k: int, equations: Equations = EQUATIONS) -> Comparison:
    """Equation (2) at layer k on autodiff's δ⁽ᵏ⁺¹⁾ and z⁽ᵏ⁾, against autodiff's δ⁽ᵏ⁾; in its
    general form J_gᵀ(Θᵀδ) for a map that mixes units. The inputs are shared, so only the
    equation's own rounding counts."""
    net, g = case.network, activation_at(case.network, k)
    theta_next = at_layer(net.theta, k + 1).astype(np.float64)
    back = np.abs(ref.delta[k + 1]) @ np.abs(theta_next)
    terms = theta_next.shape[0]
    if isinstance(g, VectorActivation):
        with by_hand():
            m = equations.hidden_delta_general(theta_next, ref.delta[k + 1], ref.z[k], g)
        M = mixed_terms(g, ref.z[k], back)
        E = mixed_terms(g, ref.z[k], (terms + 1) * back) + mixed_rounding(ref.z[k], back.shape[-1]) * M
        allowed = tol.scale(np.float64) * E + tol.floor(np.float64, terms + back.shape[-1])
        return judge("(2)", k, g.name, m, ref.delta[k], M, allowed)
    g_used = as_used(net, k)
    assert isinstance(g_used, Activation)  # g is elementwise here (bound to p⁽ᵏ⁾ if it has parameters)
    with by_hand():
        m = equations.hidden_delta(theta_next, ref.delta[k + 1], ref.z[k], g_used)
    f, noise = scales(g, ref.z[k], net.p[k])
    E = (terms + 1) * back * f + back * tol.derivative_bound(f, ref.z[k])
    allowed = tol.scale(np.float64) * E + tol.NOISE_SAFETY * back * noise + tol.floor(np.float64, terms)
    return judge("(2)", k, g.name, m, ref.delta[k], back * f, allowed)


def parameter_equation(case: Case, ref: Reference, k: int, equations: Equations = EQUATIONS) -> list[Comparison]:
    """The parameter gradient of layer k's activation, (1/n) Σ (∂Eₜ/∂a⁽ᵏ⁾) ∂g/∂p, on autodiff's
    z⁽ᵏ⁾ and ∂Eₜ/∂a⁽ᵏ⁾ (∇ₐEₜ at the output, δ⁽ᵏ⁺¹⁾Θ⁽ᵏ⁺¹⁾ below), against ``jax.grad``'s ∂E/∂p:
    one comparison per parameter, only the equation's own rounding counted."""
    net, g, n = case.network, case.network.g[k], case.n
    assert isinstance(g, ParametricActivation)  # layer k's activation has parameters
    p = at_layer(net.p, k)
    if k == net.depth:
        w = case.loss.gradient(ref.a[k], case.y.astype(np.float64), np)
        w_terms = loss_terms(case, ref.a[k])
        E_w = tol.ELEMENTARY_ULPS * w_terms
    else:
        theta_next = at_layer(net.theta, k + 1).astype(np.float64)
        w = ref.delta[k + 1] @ theta_next
        w_terms = np.abs(ref.delta[k + 1]) @ np.abs(theta_next)
        E_w = (theta_next.shape[0] + 1) * w_terms
    with by_hand():
        m = equations.activation_parameter_gradients(w, ref.z[k], g, p)
    M, E, N = parameter_bounds(g, p, ref.z[k], w_terms, E_w, np.zeros_like(w_terms), 0.0, n)
    out = []
    for name in M:
        allowed = tol.scale(np.float64) * E[name] + tol.floor(np.float64, w.size)
        out.append(
            judge("(3) p", k, f"{g.name}.{name}", np.asarray(m.get(name, np.nan)), ref.p[k][name], M[name], allowed)
        )
    return out


def equation_3(case: Case, ref: Reference, bounds: Bounds, grads: manual.Gradients) -> list[Comparison]:
    """Equation (3) end to end: the manual gradients (forward, (1), (2), (3) in the case's dtype)
    against ``jax.grad`` in float64, for every layer's Θ and b."""
    net = case.network
    terms = max(net.widths) + case.n
    out = []
    for k in range(1, net.depth + 1):
        name = activation_at(net, k).name
        key: BoundKey
        for part, m, r in (("Θ", grads.theta[k], ref.theta[k]), ("b", grads.b[k], ref.b[k])):
            key = ("theta" if part == "Θ" else "b", k)
            out.append(judge(f"(3) {part}", k, name, m, r, bounds.M[key], bounds.allowed(key, net.dtype, terms)))
        for param, r in (ref.p[k] or {}).items():
            key = ("p", k, param)
            m = np.asarray((grads.p[k] or {}).get(param, np.nan)) if grads.p else np.asarray(np.nan)
            out.append(
                judge(
                    "(3) p",
                    k,
                    f"{name}.{param}",
                    m,
                    r,
                    bounds.M[key],
                    bounds.allowed(key, net.dtype, terms * max(net.widths)),
                )
            )
    return out


KINK_ULPS = 4
"""How close to a kink (in ulps of the kink) a z must be for a forward's own shift to matter."""


def near_kink(g: Activation, z: np.ndarray) -> np.ndarray:
    """Elements of z within KINK_ULPS ulps (of z's dtype) of one of g's kinks."""
    close = np.zeros(np.shape(z), bool)
    for kink in g.kinks:
        close |= np.abs(z.astype(np.float64) - kink) <= KINK_ULPS * np.spacing(np.asarray(max(abs(kink), 1.0), z.dtype))
    return close


def kink_in_doubt(case: Case, ref: Reference, z_manual: tuple, a_manual: tuple | None = None) -> str | None:
    """Where rounding put a manual z⁽ᵏ⁾ on the other side of one of g_k's kinks than autodiff's
    z⁽ᵏ⁾, g′ legitimately jumps between the two computations: say where; else ``None``.
    End-to-end comparisons are skipped there, never reported as failures."""
    net = case.network
    for k in range(1, net.depth + 1):
        g = activation_at(net, k)
        z_m = z_manual[k].astype(np.float64)
        if isinstance(g, VectorActivation) and g.mixes == "groups":
            row = tie_in_doubt(g.group, z_m, ref.z[k], z_manual[k].dtype)
            if row is not None:
                return (
                    f"z⁽{k}⁾ of example {row} has a group of {g.name} whose maxima tie, or nearly, "
                    f"so rounding may pick a different maximum by hand than in autodiff"
                )
        for kink in g.kinks:
            # A forward may shift z before it meets the kink (hard_sigmoid tests z + 3), so two
            # different z within a few ulps of the kink are in doubt even on the same side.
            near = KINK_ULPS * np.spacing(np.asarray(max(abs(kink), 1.0), z_manual[k].dtype))
            flipped = np.sign(z_m - kink) != np.sign(ref.z[k] - kink)
            flipped |= (z_m != ref.z[k]) & (np.minimum(np.abs(z_m - kink), np.abs(ref.z[k] - kink)) <= near)
            if np.any(flipped):
                row, unit = (int(i) for i in np.argwhere(flipped)[0])
                return (
                    f"z⁽{k}⁾ of example {row}, unit {unit} lies on the other side of "
                    f"{g.name}'s kink at {kink:g} by hand than in autodiff"
                )
    if a_manual is not None:
        y = case.y.astype(np.float64)
        for kink in case.loss.kinks:  # the loss's kinks in a − y (mean absolute error at 0)
            r_m, r_r = a_manual[-1].astype(np.float64) - y, ref.a[-1] - y
            flipped = np.sign(r_m - kink) != np.sign(r_r - kink)
            if np.any(flipped):
                return f"an output lies on the other side of {case.loss.name}'s kink by hand than in autodiff"
    return None


def tie_in_doubt(k: int, z_manual: np.ndarray, z_ref: np.ndarray, dtype: np.dtype) -> int | None:
    """The first example whose maxout groups (of k units) have their two largest values within
    ``KINK_ULPS`` ulps of each other, by hand or in autodiff, or a different maximum: there the
    cotangent may legitimately go to another unit. ``None`` when there is none."""
    for z in (z_manual, z_ref):
        grouped = np.sort(z.reshape(z.shape[0], -1, k), axis=-1)
        if k > 1:
            gap = grouped[..., -1] - grouped[..., -2]
            near = gap <= KINK_ULPS * np.spacing(np.maximum(np.abs(grouped[..., -1]), 1.0).astype(dtype))
            if np.any(near):
                return int(np.argwhere(near)[0][0])
    moved = np.argmax(z_manual.reshape(z_manual.shape[0], -1, k), axis=-1) != np.argmax(
        z_ref.reshape(z_ref.shape[0], -1, k), axis=-1
    )
    return int(np.argwhere(moved)[0][0]) if np.any(moved) else None


def _guarded(equation: str, layer: int, activation: str, compute):
    """Run one comparison; a derivation that raises (shapes that do not fit) has failed it."""
    try:
        return compute()
    except (ValueError, IndexError) as error:
        return _raised(equation, layer, activation, error)


def _raised(equation: str, layer: int, activation: str, error: Exception) -> Comparison:
    return RaisedComparison(equation, layer, activation, None, 0.0, False, reason=str(error))


def compare_case(case: Case, ref: Reference, equations: Equations = EQUATIONS) -> tuple[list[Comparison], str | None]:
    """Every equation at every layer. Returns the comparisons and, when the end-to-end check was
    skipped because a z sits on a kink within rounding, the reason. A derivation that raises
    (shapes that do not fit, as Θ without its transpose does) fails the equation it raised in."""
    net = case.network
    comparisons = [_guarded("(1)", net.depth, activation_at(net, -1).name, lambda: equation_1(case, ref, equations))]
    comparisons += [
        _guarded("(2)", k, activation_at(net, k).name, lambda k=k: equation_2(case, ref, k, equations))
        for k in range(net.depth - 1, 0, -1)
    ]
    for k in range(1, net.depth + 1):
        g = net.g[k]
        if isinstance(g, ParametricActivation):
            try:
                comparisons += parameter_equation(case, ref, k, equations)
            except (ValueError, IndexError, KeyError) as error:
                comparisons.append(_raised("(3) p", k, g.name, error))
    fwd = manual.forward(net, case.x)
    doubt = kink_in_doubt(case, ref, fwd.z, fwd.a)
    if doubt is None:

        def end_to_end():
            with by_hand():
                grads = manual.backward(net, fwd.z, fwd.a, case.y, loss=case.loss, equations=equations)
            return equation_3(case, ref, error_bounds(case, ref), grads)

        try:
            comparisons += end_to_end()
        except (ValueError, IndexError) as error:
            comparisons.append(_raised("(3) Θ", 0, "", error))
    return comparisons, doubt


def first_failure(comparisons: Sequence[Comparison]) -> Comparison | None:
    return next((c for c in comparisons if not c.passed), None)


def autodiff_derivative(g: Activation, z: np.ndarray) -> np.ndarray:
    """``reference.derivative``: g′ from ``jax.grad`` of g's forward, in float64, at every
    element of z (computed in chunks of one size, so one compilation per activation)."""
    from reference import derivative

    return derivative(g, z)


def derivative_check(g: Activation, z: np.ndarray, name: str | None = None) -> Comparison:
    """g′(z) by hand (in z's dtype) against ``jax.grad`` of g's forward (float64), pointwise."""
    m = g.derivative(z, np)
    r = autodiff_derivative(g, z)
    if z.dtype != np.float64 and np.shape(m) == np.shape(z):
        # The hand g′ rounds its own kink tests (z + 3 for hard_sigmoid) in z's dtype, autodiff
        # in float64: within a few ulps of a kink the two may take different sides. Not judged.
        m = np.where(near_kink(g, z), r, m)
    f, noise = scales(g, z.astype(np.float64))
    allowed = (
        tol.scale(z.dtype) * tol.derivative_bound(f, z.astype(np.float64))
        + tol.NOISE_SAFETY * noise
        + tol.derivative_floor(z.dtype, z.astype(np.float64))
    )
    if np.shape(m) != np.shape(z):
        return Comparison("g′", 0, name or g.name, None, 0.0, False)
    return judge("g′", 0, name or g.name, m, r, np.abs(r) + f, allowed)


def _mean_error(network: Network, x: np.ndarray, y: np.ndarray, loss) -> tuple[float, tuple]:
    fwd = manual.forward(network, x)
    return float(np.mean(loss.error(fwd.a[-1], y, np))), fwd.z


def _sides(network: Network, z: tuple) -> list:
    return [np.sign(z[k][..., None] - np.asarray(activation_at(network, k).kinks)) for k in range(1, network.depth + 1)]


def finite_differences(case: Case, grads: manual.Gradients) -> tuple[list[Comparison], int]:
    """Central differences of E in float64 against the manual ∂E/∂Θ and ∂E/∂b: an opinion that
    depends on neither the hand derivation nor autodiff. A parameter whose ±2h steps move any
    z across a kink is skipped (the difference quotient means nothing there). Returns the
    comparisons and the number of parameters skipped."""
    net, x, y = case.network, case.x, case.y
    L = net.depth
    _, z0 = _mean_error(net, x, y, case.loss)
    sides0 = _sides(net, z0)
    fwd = manual.forward(net, x)
    magnitude_E = np.mean(np.sum((np.abs(fwd.a[-1]) + np.abs(y)) ** 2, axis=1))
    error_bound = 4 * (L + 1) * (max(net.widths) + 1 + tol.ELEMENTARY_ULPS) * magnitude_E
    skipped, out = 0, []
    for k in range(1, L + 1):
        for part, values in (("Θ", net.theta), ("b", net.b)):
            m = at_layer(grads.theta if part == "Θ" else grads.b, k)
            d_h, d_2h = np.zeros_like(m), np.zeros_like(m)
            h = tol.finite_difference_step() * np.maximum(1.0, np.abs(at_layer(values, k)))
            for index in np.ndindex(m.shape):
                quotients, crossed = [], False
                for step in (1, 2):
                    e = []
                    for sign in (1, -1):
                        moved = list(values)
                        moved[k] = moved_k = at_layer(values, k).copy()
                        moved_k[index] += sign * step * h[index]
                        perturbed = Network(
                            *((tuple(moved), net.b, net.g) if part == "Θ" else (net.theta, tuple(moved), net.g))
                        )
                        value, z = _mean_error(perturbed, x, y, case.loss)
                        crossed |= any(np.any(s != s0) for s, s0 in zip(_sides(net, z), sides0, strict=True))
                        e.append(value)
                    quotients.append((e[0] - e[1]) / (2 * step * h[index]))
                if crossed:
                    skipped += 1
                    d_h[index] = d_2h[index] = m[index]
                else:
                    d_h[index], d_2h[index] = quotients
            allowed = tol.finite_difference_tolerance(d_h, d_2h, error_bound, h)
            out.append(judge(f"FD {part}", k, activation_at(net, k).name, m, d_h, np.abs(d_h) + allowed, allowed))
    return out, skipped
