"""The properties, as plain functions of a case that raise ``AssertionError`` with a report.

The tests in ``test_*.py`` run them under Hypothesis, once with the real derivation and once
with a deliberately wrong one (the negative control), which the same property must reject.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from hypothesis import assume

import manual
from manual import EQUATIONS, Activation, Equations
from property_tests.library import tolerances as tol
from property_tests.library.compare import (
    Comparison,
    derivative_check,
    equation_1,
    equation_2,
    equation_3,
    error_bounds,
    finite_differences,
    judge,
    kink_in_doubt,
    parameter_equation,
)
from property_tests.library.strategies import Case, activation_at, at_layer
from reference import fast, plain

Reference = Callable[[manual.Network, np.ndarray, np.ndarray], plain.Reference]


def _require(comparisons: list[Comparison], case: Case | None = None) -> None:
    failed = [c for c in comparisons if not c.passed]
    if failed:
        context = f"\n  case: {case.describe()}" if case is not None else ""
        raise AssertionError(
            "\n  ".join(["hand derivation disagrees with autodiff:"] + [c.describe() for c in failed]) + context
        )


def equation_1_holds(case: Case, equations: Equations = EQUATIONS) -> None:
    """(1): δ⁽ᴸ⁾ by hand, on autodiff's forward values, equals autodiff's ∂Eₜ/∂z⁽ᴸ⁾."""
    ref = fast.autodiff(case.network, case.x, case.y, loss=case.loss)
    _require([equation_1(case, ref, equations)], case)


def equation_2_holds(case: Case, equations: Equations = EQUATIONS) -> None:
    """(2): every hidden δ⁽ᵏ⁾, by hand from autodiff's δ⁽ᵏ⁺¹⁾, equals autodiff's δ⁽ᵏ⁾."""
    ref = fast.autodiff(case.network, case.x, case.y, loss=case.loss)
    _require([equation_2(case, ref, k, equations) for k in range(case.network.depth - 1, 0, -1)], case)


def _end_to_end(case: Case, equations: Equations) -> list[Comparison]:
    """Manual forward and backward in the case's dtype against jax.grad in float64; cases where
    rounding moved a z across a kink are rejected (``assume``), never failed."""
    ref = fast.autodiff(case.network, case.x, case.y, loss=case.loss)
    fwd = manual.forward(case.network, case.x)
    assume(kink_in_doubt(case, ref, fwd.z, fwd.a) is None)
    grads = manual.backward(case.network, fwd.z, fwd.a, case.y, loss=case.loss, equations=equations)
    return equation_3(case, ref, error_bounds(case, ref), grads)


def equation_3_holds(case: Case, equations: Equations = EQUATIONS) -> None:
    """(3), end to end: every ∂E/∂Θ⁽ᵏ⁾ and ∂E/∂b⁽ᵏ⁾ of the manual pass equals jax.grad."""
    _require(_end_to_end(case, equations), case)


def parameter_gradients_hold(case: Case, equations: Equations = EQUATIONS) -> None:
    """(3) for activation parameters: every ∂E/∂p⁽ᵏ⁾ by hand, from autodiff's z⁽ᵏ⁾ and
    ∂Eₜ/∂a⁽ᵏ⁾, equals ``jax.grad``'s."""
    ref = fast.autodiff(case.network, case.x, case.y, loss=case.loss)
    layers = [k for k in _layers(case) if case.network.p[k] is not None]
    _require([c for k in layers for c in parameter_equation(case, ref, k, equations)], case)


def float32_matches_float64_reference(case: Case, equations: Equations = EQUATIONS) -> None:
    """The manual pass in float32 equals jax.grad in float64 on the same (float32) numbers,
    to within float32's bound."""
    _require(_end_to_end(case.astype(np.float32), equations), case)


def averaging_constraint_holds(case: Case, equations: Equations = EQUATIONS) -> None:
    """No oracle: the batch gradient is the mean of the per-example gradients."""
    batch = manual.gradients(case.network, case.x, case.y, loss=case.loss, equations=equations)
    singles = [
        manual.gradients(case.network, case.x[t : t + 1], case.y[t : t + 1], loss=case.loss, equations=equations)
        for t in range(case.n)
    ]
    _require(
        _manual_against_manual(
            case,
            batch,
            "mean of singles",
            theta=[np.mean([at_layer(s.theta, k) for s in singles], axis=0) for k in _layers(case)],
            b=[np.mean([at_layer(s.b, k) for s in singles], axis=0) for k in _layers(case)],
        ),
        case,
    )


def permutation_changes_nothing(case: Case, permutation: np.ndarray, equations: Equations = EQUATIONS) -> None:
    """No oracle: reordering the examples leaves every gradient unchanged."""
    batch = manual.gradients(case.network, case.x, case.y, loss=case.loss, equations=equations)
    moved = case.rows(permutation)
    shuffled = manual.gradients(moved.network, moved.x, moved.y, loss=case.loss, equations=equations)
    _require(
        _manual_against_manual(
            case,
            batch,
            "permuted batch",
            theta=[shuffled.theta[k] for k in _layers(case)],
            b=[shuffled.b[k] for k in _layers(case)],
        ),
        case,
    )


def _layers(case: Case) -> range:
    return range(1, case.network.depth + 1)


def _manual_against_manual(case: Case, batch: manual.Gradients, what: str, theta, b) -> list[Comparison]:
    """The same computation summed in another order: bounds from the running error analysis
    with the batch size counted among the sums (the reference supplies magnitudes only)."""
    ref = fast.autodiff(case.network, case.x, case.y, loss=case.loss)
    bounds = error_bounds(case, ref)
    terms = max(case.network.widths) + case.n
    out = []
    for k in _layers(case):
        name = activation_at(case.network, k).name
        for symbol, key, ours, other in (("Θ", "theta", batch.theta, theta), ("b", "b", batch.b, b)):
            out.append(
                judge(
                    f"{what} {symbol}",
                    k,
                    name,
                    ours[k],
                    other[k - 1],
                    bounds.M[key, k],
                    2 * tol.scale(case.network.dtype) * bounds.E[key, k] + tol.floor(case.network.dtype, terms),
                )
            )
    return out


def finite_differences_agree(case: Case, equations: Equations = EQUATIONS) -> None:
    """An independent third opinion: central differences of E in float64 equal the manual
    gradients (parameters whose step crosses a kink are skipped)."""
    grads = manual.gradients(case.network, case.x, case.y, loss=case.loss, equations=equations)
    comparisons, _ = finite_differences(case, grads)
    _require(comparisons, case)


def fast_reference_equals_plain(case: Case, fast_autodiff: Reference = fast.autodiff) -> None:
    """``reference.fast`` (padded, one compilation) gives the same z, a, δ, ∂E/∂Θ and ∂E/∂b as
    ``reference.plain`` (one compilation per architecture), to within float64 rounding."""
    slow = plain.autodiff(case.network, case.x, case.y, loss=case.loss)
    quick = fast_autodiff(case.network, case.x, case.y)
    bounds = error_bounds(case, slow)
    terms = max(case.network.widths) + case.n
    out = []
    for k in _layers(case):
        for field, key in (("delta", "delta"), ("theta", "theta"), ("b", "b")):
            allowed = tol.scale(np.float64) * bounds.E[key, k] + tol.floor(np.float64, terms)
            out.append(
                judge(
                    f"fast {field}",
                    k,
                    activation_at(case.network, k).name,
                    getattr(quick, field)[k],
                    getattr(slow, field)[k],
                    bounds.M[key, k],
                    allowed,
                )
            )
        for name, value in (slow.p[k] or {}).items():
            allowed = tol.scale(np.float64) * bounds.E["p", k, name] + tol.floor(
                np.float64, terms * max(case.network.widths)
            )
            got = (quick.p[k] or {}).get(name, np.nan) if quick.p else np.nan
            out.append(
                judge(
                    "fast p",
                    k,
                    f"{activation_at(case.network, k).name}.{name}",
                    got,
                    value,
                    bounds.M["p", k, name],
                    allowed,
                )
            )
    _require(out, case)


def derivative_matches_autodiff(g: Activation, z: np.ndarray) -> None:
    """g′ by hand equals jax.grad of g's forward at every point of z."""
    _require([derivative_check(g, z)])
