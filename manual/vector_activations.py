"""Activations that mix units and may change the width: gated linear units and maxout.

Such a layer computes a⁽ᵏ⁾ = g(z⁽ᵏ⁾) row by row, but aⱼ depends on several zᵢ, and a⁽ᵏ⁾ may be
narrower than z⁽ᵏ⁾ (``width``). Equation (2) then takes its general form,

    δ⁽ᵏ⁾ = J_g(z⁽ᵏ⁾)ᵀ ((Θ⁽ᵏ⁺¹⁾)ᵀ δ⁽ᵏ⁺¹⁾),

where Θ⁽ᵏ⁺¹⁾ has ``width(units)`` columns, the width of a⁽ᵏ⁾. Each entry carries that
Jacobian-transpose-vector product by hand, ``vjp(z, v, xp)`` = J_g(z)ᵀv per row, without ever
building J_g; v has the output's shape and the result has z's.

GLU family (group 2, shrink 2): z = [u, s] split into halves along the last axis, a = u ⊙ h(s),
the SECOND half gating, as ``jax.nn.glu`` does. (Some libraries, and some papers' notation,
gate the first half instead, h(u) ⊙ s: the same family up to swapping the halves of the rows of
Θ⁽ᵏ⁾ and b⁽ᵏ⁾, but a different output for the same weights.) Since aᵢ = uᵢh(sᵢ),

    ∂aᵢ/∂uᵢ = h(sᵢ),  ∂aᵢ/∂sᵢ = uᵢh′(sᵢ),  so  J_gᵀv = [v ⊙ h(s), v ⊙ u ⊙ h′(s)].

The gates h and h′ are the catalogue's own (``manual.activations``), kink conventions included.

Maxout(k) (group k, shrink k): units grouped contiguously, aᵢ = max(z[ik], …, z[ik + k − 1]).
∂aᵢ/∂zⱼ is 1 for the maximum of group i and 0 for the others; where several units of a group tie
for the maximum, g is not differentiable, and the convention here is ``jax.grad``'s of ``jnp.max``
(checked on JAX 0.10.2): the cotangent is split EQUALLY among the c tied maxima, vᵢ/c each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from .activations import CATALOGUE, Activation, Array

RowMap = Callable[[Array, ModuleType], Array]
RowVjp = Callable[[Array, Array, ModuleType], Array]


@dataclass(frozen=True)
class VectorActivation:
    """A row-wise activation that mixes units: ``forward(z, xp)`` maps rows (n, m) to
    (n, width(m)); ``vjp(z, v, xp)`` = J_g(z)ᵀv per row, shaped as z, for v shaped as the output.

    The input width must be a positive multiple of ``group``; the output width is
    input width // ``shrink``. ``kinks`` and ``kink_convention`` describe where g is not
    differentiable and which value ``vjp`` takes there (always ``jax.grad``'s of ``forward``).
    """

    name: str
    forward: RowMap
    vjp: RowVjp
    group: int = 1
    shrink: int = 1
    formula: str = ""
    kinks: tuple[float, ...] = ()
    kink_convention: str = ""
    paper: str = ""
    mixes: str | None = None
    """Which units an output depends on: ``"halves"`` (output i on units i and m/2 + i, a GLU),
    ``"groups"`` (on its contiguous group of ``group`` units, maxout), ``"row"`` (on the whole
    row through a normalising sum, softmax), or ``None`` (not said). A padded reference uses it
    to lay out a row (``reference.fast``); without it the plain reference is used."""

    def __repr__(self) -> str:
        return f"VectorActivation({self.name!r})"

    def width(self, units: int) -> int:
        """The output width for an input of ``units`` units."""
        _check_width(self.name, units, self.group)
        return units // self.shrink


def _check_width(name: str, units: int, group: int) -> None:
    if units < 1 or units % group:
        raise ValueError(f"{name} needs an input width that is a positive multiple of {group}, got {units}.")


# --- gated linear units ---------------------------------------------------------------------


def _halves(z: Array, name: str) -> tuple[Array, Array]:
    """[u, s]: the first half (the value) and the second (through the gate)."""
    _check_width(name, z.shape[-1], 2)
    m = z.shape[-1] // 2
    return z[..., :m], z[..., m:]


def _gated(name: str, gate: Activation, formula: str, paper: str, **conventions) -> VectorActivation:
    """u ⊙ h(s) for the catalogue activation h = ``gate``, and its J_gᵀv."""

    def forward(z, xp):
        u, s = _halves(z, name)
        return u * gate.forward(s, xp)

    def vjp(z, v, xp):
        # ∂aᵢ/∂uᵢ = h(sᵢ), ∂aᵢ/∂sᵢ = uᵢh′(sᵢ); nothing else couples.
        u, s = _halves(z, name)
        return xp.concatenate([v * gate.forward(s, xp), v * u * gate.derivative(s, xp)], axis=-1)

    return VectorActivation(
        name, forward, vjp, group=2, shrink=2, formula=formula, paper=paper, mixes="halves", **conventions
    )


_DAUPHIN = (
    "Dauphin, Fan, Auli, Grangier, 'Language Modeling with Gated Convolutional Networks', ICML 2017, arXiv:1612.08083"
)
_SHAZEER = "Shazeer, 'GLU Variants Improve Transformer', 2020, arXiv:2002.05202"
_SPLIT = r"z = [u, s],\ a = u \odot "

GLU = _gated(
    "glu",
    CATALOGUE["sigmoid"],
    _SPLIT + r"\sigma(s),\quad J^\top v = [v \odot \sigma(s),\ v \odot u \odot \sigma(s)\sigma(-s)]",
    _DAUPHIN,
)
REGLU = _gated(
    "reglu",
    CATALOGUE["relu"],
    _SPLIT + r"\max(s, 0),\quad J^\top v = [v \odot \max(s, 0),\ v \odot u \odot [s > 0]]",
    _SHAZEER,
    kinks=(0.0,),
    kink_convention="relu′(0) = 0 in the gate half (jax.nn.relu's convention): at s = 0 the gate's cotangent is 0",
)
GEGLU = _gated(
    "geglu",
    CATALOGUE["gelu"],
    _SPLIT + r"s\,\Phi(s),\quad J^\top v = [v \odot s\Phi(s),\ v \odot u \odot (\Phi(s) + s\varphi(s))]",
    _SHAZEER + " (GELU in its exact erf form, as jax.nn.gelu(approximate=False))",
)
SWIGLU = _gated(
    "swiglu",
    CATALOGUE["silu"],
    _SPLIT + r"s\,\sigma(s),\quad J^\top v = [v \odot s\sigma(s),\ v \odot u \odot \sigma(s)(1 + s\sigma(-s))]",
    _SHAZEER,
)


# --- maxout -----------------------------------------------------------------------------------


def _groups(z: Array, k: int, name: str, xp: ModuleType) -> Array:
    """z reshaped to (…, m/k, k): group i holds units ik … ik + k − 1."""
    _check_width(name, z.shape[-1], k)
    return xp.reshape(z, z.shape[:-1] + (z.shape[-1] // k, k))


def maxout(k: int) -> VectorActivation:
    """Maxout over contiguous groups of k units (Goodfellow et al. 2013): aᵢ = max_j z[ik + j]."""
    if k < 1:
        raise ValueError(f"maxout needs a group size k ≥ 1, got {k}.")
    name = f"maxout{k}"

    def forward(z, xp):
        return xp.max(_groups(z, k, name, xp), axis=-1)

    def vjp(z, v, xp):
        # Each group's cotangent goes to its maximum; c tied maxima get vᵢ/c each (jax.grad's split).
        grouped = _groups(z, k, name, xp)
        is_max = (grouped == xp.max(grouped, axis=-1, keepdims=True)).astype(z.dtype)
        share = v[..., None] / xp.sum(is_max, axis=-1, keepdims=True)
        return xp.reshape(is_max * share, z.shape)

    return VectorActivation(
        name,
        forward,
        vjp,
        group=k,
        shrink=k,
        mixes="groups",
        formula=rf"a_i = \max_{{0 \le j < {k}}} z_{{{k}i + j}},\quad "
        r"(J^\top v)_{ki + j} = v_i\,[z_{ki + j} = a_i] / \#\{j' : z_{ki + j'} = a_i\}",
        kink_convention="ties within a group (the kinks of max): the cotangent is split equally among "
        "the tied maxima, as jax.grad of jnp.max does",
        paper="Goodfellow, Warde-Farley, Mirza, Courville, Bengio, 'Maxout Networks', ICML 2013, arXiv:1302.4389",
    )


MAXOUT2 = maxout(2)
MAXOUT3 = maxout(3)

VECTOR_ACTIVATIONS: dict[str, VectorActivation] = {g.name: g for g in [GLU, REGLU, GEGLU, SWIGLU, MAXOUT2, MAXOUT3]}


def vector_activation(name: str) -> VectorActivation:
    """The vector activation called ``name``."""
    if name not in VECTOR_ACTIVATIONS:
        known = ", ".join(sorted(VECTOR_ACTIVATIONS))
        raise KeyError(f"unknown vector activation {name!r}; known: {known}")
    return VECTOR_ACTIVATIONS[name]
