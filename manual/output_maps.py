"""Output layers that mix units: a⁽ᴸ⁾ = g(z⁽ᴸ⁾) where each aⱼ depends on every zᵢ.

Equation (1) assumed that a⁽ᴸ⁾ᵢ depends on z⁽ᴸ⁾ᵢ alone. In general the chain rule sums over
every output unit, δ⁽ᴸ⁾ = J_g(z⁽ᴸ⁾)ᵀ ∇ₐE, with J_g the Jacobian. Each map here carries that
Jacobian-transpose-vector product derived by hand, ``vjp(z, v, xp)`` = J_g(z)ᵀv per example,
without ever building J_g.
"""

from __future__ import annotations

from .vector_activations import VectorActivation

OutputMap = VectorActivation
"""The name these maps had when they fitted only the output layer; a ``VectorActivation`` now,
allowed in hidden layers too, where equation (2) takes its general form."""


def softmax(z, xp):
    # Shifting by the row maximum changes nothing mathematically and keeps exp from overflowing.
    e = xp.exp(z - xp.max(z, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def softmax_vjp(z, v, xp):
    # ∂aⱼ/∂zᵢ = aⱼ([i = j] − aᵢ), so (Jᵀv)ᵢ = aᵢ(vᵢ − Σⱼ aⱼvⱼ): the diagonal term aᵢvᵢ and the
    # off-diagonal terms −aᵢΣⱼaⱼvⱼ. Dropping the latter is the classic mistake.
    a = softmax(z, xp)
    return a * (v - xp.sum(a * v, axis=-1, keepdims=True))


def log_softmax(z, xp):
    m = xp.max(z, axis=-1, keepdims=True)
    shifted = z - m
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def log_softmax_vjp(z, v, xp):
    # ∂aⱼ/∂zᵢ = [i = j] − softmax(z)ᵢ, so (Jᵀv)ᵢ = vᵢ − softmax(z)ᵢ Σⱼ vⱼ.
    return v - softmax(z, xp) * xp.sum(v, axis=-1, keepdims=True)


SOFTMAX = OutputMap(
    "softmax",
    softmax,
    softmax_vjp,
    mixes="row",
    formula=r"a_j = \frac{e^{z_j}}{\sum_k e^{z_k}},\quad (J^\top v)_i = a_i\,(v_i - a\cdot v)",
)
LOG_SOFTMAX = OutputMap(
    "log_softmax",
    log_softmax,
    log_softmax_vjp,
    mixes="row",
    formula=r"a_j = z_j - \log\sum_k e^{z_k},\quad (J^\top v)_i = v_i - \operatorname{softmax}(z)_i \sum_j v_j",
)

OUTPUT_MAPS: dict[str, OutputMap] = {m.name: m for m in [SOFTMAX, LOG_SOFTMAX]}
"""The maps that normalise a row (the losses' fused forms pair with them at the output)."""
