"""Activations with trainable parameters: a = g(z; p), with ∂g/∂z and every ∂g/∂p by hand.

A layer k with a parametric activation computes

    z⁽ᵏ⁾ = Θ⁽ᵏ⁾a⁽ᵏ⁻¹⁾ + b⁽ᵏ⁾,   a⁽ᵏ⁾ᵢ = g(z⁽ᵏ⁾ᵢ; p),

still elementwise in z, so equations (1) and (2) hold unchanged with g′ read as ∂g/∂z(z; p):

    (1) δ⁽ᴸ⁾ = ∇ₐE ⊙ ∂g/∂z(z⁽ᴸ⁾; p)      (2) δ⁽ᵏ⁾ = (Θ⁽ᵏ⁺¹⁾)ᵀδ⁽ᵏ⁺¹⁾ ⊙ ∂g/∂z(z⁽ᵏ⁾; p).

What is new is a gradient for p itself. With E = (1/n) Σₜ Eₜ and the examples t as rows,

    ∂E/∂p = (1/n) Σₜ Σᵢ (∂Eₜ/∂aᵢ) · ∂g/∂p(zₜᵢ; p),

where ∂Eₜ/∂a⁽ᴸ⁾ = ∇ₐEₜ at the output and ∂Eₜ/∂a⁽ᵏ⁾ = (Θ⁽ᵏ⁺¹⁾)ᵀδ⁽ᵏ⁺¹⁾ₜ in a hidden layer (the
factor in (2) before the ⊙). A parameter shared by the layer (shape ()) enters every unit, so the
sum runs over examples and units; a per-unit parameter pᵢ (shape (units,)) enters unit i only, so
∂E/∂pᵢ sums over the examples alone. ``parameter_derivatives`` returns the factor
∂g/∂p(zₜᵢ; p) broadcast to z's shape, not reduced: the reduction belongs to the backward pass.

Shapes: z is (n, units), or any shape ending in units; a parameter value is an array of shape ()
or (units,) and broadcasts along z's last axis. Every function keeps z's dtype: parameter values
are cast to it first (``_value``), and constants are Python numbers, which never promote float32.

Numerical notes, as in ``manual.activations``: ``numpy.where`` evaluates both branches, so every
branch stays finite for |z| up to 1e3 and parameters in their ranges; 1 − σ(s) is written σ(−s).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from .activations import Activation, Array, special

ParameterValues = Mapping[str, Array]
Forward = Callable[[Array, ParameterValues, ModuleType], Array]
PartialsByName = Callable[[Array, ParameterValues, ModuleType], dict[str, Array]]


@dataclass(frozen=True)
class Parameter:
    """One trainable parameter of an activation: its default, the range [low, high] (inclusive)
    that strategies draw from, and its default shape (one value per unit, or one per layer)."""

    name: str
    default: float
    low: float
    high: float
    per_unit: bool = True
    description: str = ""


@dataclass(frozen=True)
class ParametricActivation:
    """An elementwise activation g(z; p) with trainable parameters p, and its hand derivatives.

    ``forward(z, p, xp)`` is g(z; p); ``derivative(z, p, xp)`` is ∂g/∂z, the g′ of equations (1)
    and (2), which hold unchanged; ``parameter_derivatives(z, p, xp)`` is {name: ∂g/∂p_name}, each
    broadcast to z's shape and not reduced. The gradient of the error in a parameter is

        ∂E/∂p = (1/n) Σₜ Σᵢ (∂Eₜ/∂aᵢ) ∂g/∂p(zₜᵢ; p),

    summed over examples and units for a shared parameter (shape ()), over examples only for a
    per-unit one (shape (units,), one sum per unit); that reduction is done elsewhere.

    ``p`` maps each parameter's name to an array of shape () or (units,), broadcasting along z's
    last axis. ``kinks`` are the points in z where ∂g/∂z jumps, ``kink_convention`` the value taken
    there (always the one ``jax.grad`` of ``forward`` gives), ``paper`` the source.
    """

    name: str
    forward: Forward
    derivative: Forward
    parameter_derivatives: PartialsByName
    parameters: tuple[Parameter, ...]
    formula: str = ""
    kinks: tuple[float, ...] = ()
    kink_convention: str = ""
    paper: str = ""

    def __repr__(self) -> str:
        return f"ParametricActivation({self.name!r})"

    def defaults(self, units: int, dtype=np.float64, *, per_unit: bool | None = None) -> dict[str, np.ndarray]:
        """Every parameter at its default: shape (units,) if per unit, else (). ``per_unit``
        overrides each parameter's own default shape when given."""
        if units < 1:
            raise ValueError(f"{self.name} needs at least one unit, got units = {units}.")
        return {
            q.name: np.full((units,) if (q.per_unit if per_unit is None else per_unit) else (), q.default, dtype=dtype)
            for q in self.parameters
        }

    def bind(self, p: Mapping[str, np.ndarray]) -> Activation:
        """A plain ``Activation`` computing g(·; p) and ∂g/∂z(·; p) for these fixed values."""
        missing = {q.name for q in self.parameters} - set(p)
        if missing:
            raise KeyError(f"{self.name} needs values for {sorted(missing)}")
        fixed = {name: np.array(value) for name, value in p.items()}  # a copy: later edits don't leak in
        return Activation(
            f"{self.name}(bound)",
            lambda z, xp: self.forward(z, fixed, xp),
            lambda z, xp: self.derivative(z, fixed, xp),
            formula=self.formula,
            kinks=self.kinks,
            kink_convention=self.kink_convention,
        )


def _value(p: ParameterValues, name: str, z: Array, xp: ModuleType) -> Array:
    """The parameter ``name`` in z's dtype (a float64 value must not promote a float32 z)."""
    return xp.asarray(p[name], dtype=z.dtype)


# --- PReLU ----------------------------------------------------------------------------------
# He, Zhang, Ren, Sun, "Delving Deep into Rectifiers: Surpassing Human-Level Performance on
# ImageNet Classification", 2015, arXiv:1502.01852.  g = z (z ≥ 0), az (z < 0).
# Kink at z = 0: `where(z >= 0, z, a·z)` takes the z branch at 0 (and at −0.0, since −0.0 ≥ 0),
# so jax.grad gives ∂g/∂z(0) = 1 (the right slope) and ∂g/∂a(0) = 0.


def prelu(z, p, xp):
    return xp.where(z >= 0, z, _value(p, "a", z, xp) * z)


def prelu_dz(z, p, xp):
    return xp.where(z >= 0, xp.ones_like(z), _value(p, "a", z, xp))


def prelu_dp(z, p, xp):
    return {"a": xp.where(z >= 0, xp.zeros_like(z), z)}


PRELU = ParametricActivation(
    "prelu",
    prelu,
    prelu_dz,
    prelu_dp,
    (
        Parameter(
            "a",
            0.25,
            0.0,
            1.0,
            per_unit=True,
            description="the slope for z < 0; per unit as torch.nn.PReLU(num_parameters=units), "
            "shared as num_parameters=1. He et al. initialise it at 0.25. [0, 1] runs "
            "from ReLU (a = 0) to the identity (a = 1): g stays monotone and 1-Lipschitz.",
        ),
    ),
    formula=r"g(z; a) = z \text{ if } z \ge 0 \text{ else } az,\quad "
    r"\partial_z g = [z \ge 0] + a[z < 0],\quad \partial_a g = z[z < 0]",
    kinks=(0.0,),
    kink_convention="∂g/∂z(0) = 1 (the right slope) and ∂g/∂a(0) = 0, as jax.grad of where(z >= 0, z, a·z)",
    paper="He, Zhang, Ren, Sun, 'Delving Deep into Rectifiers: Surpassing Human-Level Performance "
    "on ImageNet Classification', 2015, arXiv:1502.01852",
)


# --- Swish with trainable β -----------------------------------------------------------------
# Ramachandran, Zoph, Le, "Searching for Activation Functions", 2017, arXiv:1710.05941.
# s = βz, g = zσ(s).  ∂g/∂z = σ(s) + zσ(s)σ(−s)β = σ(s)(1 + sσ(−s));
# ∂g/∂β = zσ(s)σ(−s)·z = z²σ(s)σ(−s). Smooth: no kinks.


def swish_beta(z, p, xp):
    return z * special(xp).expit(_value(p, "beta", z, xp) * z)


def swish_beta_dz(z, p, xp):
    s = _value(p, "beta", z, xp) * z
    expit = special(xp).expit
    return expit(s) * (1 + s * expit(-s))


def swish_beta_dp(z, p, xp):
    s = _value(p, "beta", z, xp) * z
    expit = special(xp).expit
    return {"beta": z * z * expit(s) * expit(-s)}


SWISH_BETA = ParametricActivation(
    "swish_beta",
    swish_beta,
    swish_beta_dz,
    swish_beta_dp,
    (
        Parameter(
            "beta",
            1.0,
            0.0,
            5.0,
            per_unit=True,
            description="the sharpness β; 1 gives SiLU. β ≥ 0 keeps g between the linear z/2 "
            "(β = 0) and ReLU (β → ∞); at β = 5, g is within 0.06 of ReLU everywhere, "
            "so larger β adds nothing but stiffness.",
        ),
    ),
    formula=r"g(z; \beta) = z\,\sigma(\beta z),\quad \partial_z g = \sigma(s)(1 + s\,\sigma(-s)),"
    r"\quad \partial_\beta g = z^2\sigma(s)\,\sigma(-s),\quad s = \beta z",
    paper="Ramachandran, Zoph, Le, 'Searching for Activation Functions', 2017, arXiv:1710.05941",
)


# --- Snake ----------------------------------------------------------------------------------
# Liu Ziyin, Hartwig, Ueda, "Neural Networks Fail to Learn Periodic Functions and How to Fix It",
# NeurIPS 2020, arXiv:2006.08195.  u = αz, g = z + sin²(u)/α.
# ∂g/∂z = 1 + 2 sin u cos u = 1 + sin 2u;
# ∂g/∂α = 2 sin u cos u · z/α − sin²u/α² = z sin(2u)/α − sin²(u)/α².  2u doubles the rounded u
# exactly, so sin 2u sees the very argument the forward's sin u saw. Smooth: no kinks.


def snake(z, p, xp):
    alpha = _value(p, "alpha", z, xp)
    s = xp.sin(alpha * z)
    return z + s * s / alpha


def snake_dz(z, p, xp):
    return 1 + xp.sin(2 * (_value(p, "alpha", z, xp) * z))


def snake_dp(z, p, xp):
    alpha = _value(p, "alpha", z, xp)
    u = alpha * z
    s = xp.sin(u)
    return {"alpha": z * xp.sin(2 * u) / alpha - s * s / (alpha * alpha)}


SNAKE = ParametricActivation(
    "snake",
    snake,
    snake_dz,
    snake_dp,
    (
        Parameter(
            "alpha",
            1.0,
            0.2,
            50.0,
            per_unit=True,
            description="the frequency α > 0 (the wiggle's period is π/α). g divides by α, so "
            "the range keeps away from 0: α ≥ 0.2 bounds sin²(αz)/α by 5 and the 1/α² "
            "in ∂g/∂α by 25. 50 is a generous upper end for markedly periodic data (a "
            "period of 0.063). The default 1 is the common initialisation (BigVGAN's).",
        ),
    ),
    formula=r"g(z; \alpha) = z + \frac{\sin^2(\alpha z)}{\alpha},\quad \partial_z g = 1 + \sin 2\alpha z,"
    r"\quad \partial_\alpha g = \frac{z\sin 2\alpha z}{\alpha} - \frac{\sin^2 \alpha z}{\alpha^2}",
    paper="Liu Ziyin, Hartwig, Ueda, 'Neural Networks Fail to Learn Periodic Functions and How to "
    "Fix It', NeurIPS 2020, arXiv:2006.08195",
)


# --- ACON-C ---------------------------------------------------------------------------------
# Ma, Zhang, Liu, Zhang, Sun, "Activate or Not: Learning Customized Activation", CVPR 2021,
# arXiv:2009.04759.  d = p₁ − p₂, s = βdz, g = dz·σ(s) + p₂z.
# ∂g/∂z  = dσ(s) + dzσ(s)σ(−s)·βd + p₂ = dσ(s)(1 + sσ(−s)) + p₂
# ∂g/∂p₁ = zσ(s) + dzσ(s)σ(−s)·βz     = zσ(s)(1 + sσ(−s))           (∂d/∂p₁ = 1, ∂s/∂p₁ = βz)
# ∂g/∂p₂ = z − ∂g/∂p₁ = z(σ(−s) − sσ(s)σ(−s)) = zσ(−s)(1 − sσ(s))   (1 − σ(s) = σ(−s): no cancellation)
# ∂g/∂β  = dzσ(s)σ(−s)·dz             = (dz)²σ(s)σ(−s).  Smooth: no kinks.


def _acon_parts(z, p, xp):
    d = _value(p, "p1", z, xp) - _value(p, "p2", z, xp)
    return d, _value(p, "beta", z, xp) * d * z


def acon_c(z, p, xp):
    d, s = _acon_parts(z, p, xp)
    return d * z * special(xp).expit(s) + _value(p, "p2", z, xp) * z


def acon_c_dz(z, p, xp):
    d, s = _acon_parts(z, p, xp)
    expit = special(xp).expit
    return d * expit(s) * (1 + s * expit(-s)) + _value(p, "p2", z, xp)


def acon_c_dp(z, p, xp):
    d, s = _acon_parts(z, p, xp)
    expit = special(xp).expit
    dz = d * z
    return {
        "p1": z * expit(s) * (1 + s * expit(-s)),
        "p2": z * expit(-s) * (1 - s * expit(s)),
        "beta": dz * dz * expit(s) * expit(-s),
    }


ACON_C = ParametricActivation(
    "acon_c",
    acon_c,
    acon_c_dz,
    acon_c_dp,
    (
        Parameter(
            "p1",
            1.0,
            -2.0,
            2.0,
            per_unit=True,
            description="the slope g approaches where βdz → +∞ (g → max(p₁z, p₂z) as β → ∞)",
        ),
        Parameter(
            "p2",
            0.0,
            -2.0,
            2.0,
            per_unit=True,
            description="the slope g approaches where βdz → −∞. p₁ = 1, p₂ = 0 is the paper's "
            "ACON-A, i.e. Swish; the official code draws p₁, p₂ from N(0, 1), and "
            "[−2, 2] holds 95% of those draws",
        ),
        # swish_beta's β again (default 1, range [0, 5]): the same switching factor of σ(β·), declared
        # a second time because each activation lists its parameters beside its own equations.
        Parameter(
            "beta",
            1.0,
            0.0,
            5.0,
            per_unit=True,
            description="the switching factor: β = 0 is linear (the mean of the two slopes), "
            "β → ∞ the maximum; 1 as in the official code. β ≥ 0, as for swish_beta",
        ),
    ),
    formula=r"g = (p_1 - p_2)z\,\sigma(s) + p_2 z,\ s = \beta(p_1 - p_2)z,\quad "
    r"\partial_z g = (p_1 - p_2)\sigma(s)(1 + s\sigma(-s)) + p_2,\quad "
    r"\partial_{p_1} g = z\sigma(s)(1 + s\sigma(-s)),\quad "
    r"\partial_{p_2} g = z\sigma(-s)(1 - s\sigma(s)),\quad "
    r"\partial_\beta g = ((p_1 - p_2)z)^2\sigma(s)\sigma(-s)",
    paper="Ma, Zhang, Liu, Zhang, Sun, 'Activate or Not: Learning Customized Activation', CVPR 2021, arXiv:2009.04759",
)


# --- PAU (safe form) ------------------------------------------------------------------------
# Molina, Schramowski, Kersting, "Padé Activation Units: End-to-end Learning of Flexible
# Activation Functions in Deep Networks", ICLR 2020, arXiv:1907.06732.
#   g = P/Q,  P = Σ_{j=0..5} aⱼzʲ,  Q = 1 + Σ_{k=1..4} |bₖ||z|ᵏ  ≥ 1 (never a pole: the "safe" PAU).
#   ∂g/∂z  = (P′ − gQ′)/Q, with P′ = Σ jaⱼzʲ⁻¹ and Q′ = sign(z) Σ k|bₖ||z|ᵏ⁻¹
#   ∂g/∂aⱼ = zʲ/Q
#   ∂g/∂bₖ = −P/Q² · sign(bₖ)|z|ᵏ = −g · sign(bₖ)|z|ᵏ / Q
# All polynomials by Horner's rule. |x| is written x·sign(x) (``_abs``): the same value, and
# jax.grad of it is sign(x), 0 at x = 0, the convention of the paper's own backward pass (torch's
# sign). jnp.abs would not do: in the JAX installed here (0.10.2) its derivative is
# select(x ≥ 0, 1, −1), so +1 at 0, which would make ∂g/∂z(0) the right slope and ∂g/∂bₖ non-zero
# at bₖ = 0.
# Kink at z = 0: the one-sided slopes are a₁ ∓ a₀|b₁| (P′(0) = a₁, Q(0) = 1, Q′(0±) = ±|b₁|), so g′
# jumps unless a₀b₁ = 0; sign(0) = 0 gives ∂g/∂z(0) = a₁, their mean. bₖ = 0 is a kink in bₖ,
# where ∂g/∂bₖ = 0 likewise.
# The default shape is one scalar per coefficient for the whole layer, as in the paper.

PAU_NUMERATOR = ("a0", "a1", "a2", "a3", "a4", "a5")
PAU_DENOMINATOR = ("b1", "b2", "b3", "b4")

# The authors' initialisation approximating leaky ReLU, "pade_optimized_leakyrelu" in their code
# (github.com/ml-research/pau): within 0.04 of leaky ReLU with slope 0.01 on [−3, 3] (checked in
# the tests). Far out it is no ReLU: g → (a₅/|b₄|)z ≈ 0.505z as |z| → ∞, on both sides.
PAU_LEAKY_RELU = {
    "a0": 3.35583603e-02,
    "a1": 5.05000375e-01,
    "a2": 1.65343934e00,
    "a3": 2.01001052e00,
    "a4": 9.31901999e-01,
    "a5": 1.52424124e-01,
    "b1": 3.30847488e-06,
    "b2": 3.98021568e00,
    "b3": 5.12471206e-07,
    "b4": 3.01830109e-01,
}


def _abs(x, xp):
    """|x| as x·sign(x): the same value, and jax.grad gives sign(x), so 0 at x = 0."""
    return x * xp.sign(x)


def _horner(coefficients, x):
    """Σⱼ cⱼxʲ for coefficients c₀, c₁, …, innermost last."""
    total = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        total = c + x * total
    return total


def _pau_parts(z, p, xp):
    """a, |b|, |z|, P and Q, as the forward computes them."""
    a = [_value(p, name, z, xp) for name in PAU_NUMERATOR]
    b = [_abs(_value(p, name, z, xp), xp) for name in PAU_DENOMINATOR]
    r = _abs(z, xp)
    return a, b, r, _horner(a, z), 1 + r * _horner(b, r)


def pau(z, p, xp):
    _, _, _, numerator, denominator = _pau_parts(z, p, xp)
    return numerator / denominator


def pau_dz(z, p, xp):
    a, b, r, numerator, denominator = _pau_parts(z, p, xp)
    dp = _horner([j * a[j] for j in range(1, 6)], z)  # P′
    dq = xp.sign(z) * _horner([k * b[k - 1] for k in range(1, 5)], r)  # Q′
    return (dp - numerator / denominator * dq) / denominator


def pau_dp(z, p, xp):
    _, _, r, numerator, denominator = _pau_parts(z, p, xp)
    g = numerator / denominator
    partials, z_power, r_power = {"a0": 1 / denominator}, xp.ones_like(z), xp.ones_like(z)
    for j in range(1, 6):
        z_power = z_power * z
        partials[f"a{j}"] = z_power / denominator
    for k in range(1, 5):
        r_power = r_power * r
        sign_b = xp.sign(_value(p, f"b{k}", z, xp))
        partials[f"b{k}"] = -g * sign_b * r_power / denominator
    return partials


PAU = ParametricActivation(
    "pau",
    pau,
    pau_dz,
    pau_dp,
    tuple(
        Parameter(
            name,
            PAU_LEAKY_RELU[name],
            -5.0,
            5.0,
            per_unit=False,
            description=(
                f"the coefficient of z^{name[1]} in P"
                if name[0] == "a"
                else f"the coefficient of |z|^{name[1]} in Q, entering as its absolute value"
            )
            + "; one scalar shared by the layer, as in the paper. [−5, 5] holds the leaky-ReLU "
            "initialisation (largest: b2 ≈ 3.98) with room; Q ≥ 1 whatever the values, so "
            "the range is about scale, not safety",
        )
        for name in PAU_NUMERATOR + PAU_DENOMINATOR
    ),
    formula=r"g = \frac{P(z)}{Q(z)},\ P = \sum_{j=0}^{5} a_j z^j,\ Q = 1 + \sum_{k=1}^{4} |b_k||z|^k,\quad "
    r"\partial_z g = \frac{P' - gQ'}{Q},\ Q' = \operatorname{sign}(z)\sum_k k|b_k||z|^{k-1},\quad "
    r"\partial_{a_j} g = \frac{z^j}{Q},\quad \partial_{b_k} g = -\frac{g\operatorname{sign}(b_k)|z|^k}{Q}",
    kinks=(0.0,),
    kink_convention="|z| has derivative sign(z), 0 at z = 0, so ∂g/∂z(0) = a₁, the mean of the slopes "
    "a₁ ∓ a₀|b₁|; likewise ∂g/∂bₖ = 0 at bₖ = 0. The forward writes |x| as x·sign(x) so "
    "that jax.grad gives exactly this (jnp.abs would give +1 at 0)",
    paper="Molina, Schramowski, Kersting, 'Padé Activation Units: End-to-end Learning of Flexible "
    "Activation Functions in Deep Networks', ICLR 2020, arXiv:1907.06732",
)


PARAMETRIC: dict[str, ParametricActivation] = {g.name: g for g in [PRELU, SWISH_BETA, SNAKE, ACON_C, PAU]}


def parametric(name: str) -> ParametricActivation:
    """The parametric activation called ``name``."""
    if name not in PARAMETRIC:
        raise KeyError(f"unknown parametric activation {name!r}; known: {', '.join(sorted(PARAMETRIC))}")
    return PARAMETRIC[name]
