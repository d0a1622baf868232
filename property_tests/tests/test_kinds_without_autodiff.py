"""The newer kinds checked without autodiff: central differences of every partial ∂g/∂z,
∂g/∂p and of J_gᵀv, and of the network's error in every activation parameter; and the
averaging constraint for the parameter gradients. Like ``test_without_autodiff``, this module
never imports JAX, so mutation testing of ``manual/`` can run it quickly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import manual
from manual import (
    LOG_SOFTMAX,
    PARAMETRIC,
    SOFTMAX,
    VECTOR_ACTIVATIONS,
    Network,
    ParametricActivation,
    VectorActivation,
)
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import profiles
from property_tests.library import tolerances as tol
from property_tests.library.strategies import mixed_cases

SMOOTH_KINDS: list[ParametricActivation | VectorActivation] = (
    [PARAMETRIC[n] for n in ("swish_beta", "snake", "acon_c")]
    + [VECTOR_ACTIVATIONS[n] for n in ("glu", "geglu", "swiglu")]
    + [SOFTMAX, LOG_SOFTMAX]
)
"""Kinds without kinks or ties, where a central difference means something everywhere."""

H = tol.finite_difference_step()


def _central(f, x):
    """D(h) and D(2h) of a scalar function of one number."""
    h = H * max(1.0, abs(x))
    return [(f(x + s * h) - f(x - s * h)) / (2 * s * h) for s in (1, 2)], h


def _agree(hand, d_h, d_2h, h, size):
    allowed = tol.finite_difference_tolerance(np.asarray(d_h), np.asarray(d_2h), 8 * size, h)
    return abs(hand - d_h) <= allowed + 1e-9 * size


PARAMETRIC_BY_NAME = sorted(PARAMETRIC.values(), key=lambda g: g.name)


@pytest.mark.parametrize("g", PARAMETRIC_BY_NAME, ids=lambda g: g.name)
def test_parameter_partials_by_central_differences(g):
    rng = np.random.default_rng(1)
    for _ in range(40):
        z = float(rng.uniform(-4, 4))
        p = {q.name: np.float64(rng.uniform(q.low, q.high)) for q in g.parameters}
        if any(abs(z - k) < 1e-3 for k in g.kinks) or ("b1" in p and min(abs(v) for v in p.values()) < 1e-3):
            continue  # a kink within the step: the difference means nothing there
        partials = {"z": g.derivative(np.array(z), p, np), **g.parameter_derivatives(np.array(z), p, np)}
        for name, hand in partials.items():
            if name == "z":
                (d_h, d_2h), h = _central(lambda s, p=p: g.forward(np.array(s), p, np), z)
            else:
                (d_h, d_2h), h = _central(
                    lambda s, z=z, p=p, name=name: g.forward(np.array(z), {**p, name: np.float64(s)}, np), p[name]
                )
            assert _agree(float(hand), float(d_h), float(d_2h), h, 1 + abs(z) ** 5), (g.name, name, z, p)


@pytest.mark.parametrize("g", SMOOTH_KINDS[3:] + [VECTOR_ACTIVATIONS["maxout3"]], ids=lambda g: g.name)
def test_vjp_by_central_differences(g):
    rng = np.random.default_rng(2)
    z = rng.uniform(-3, 3, (4, 2 * g.group * 3))
    v = rng.standard_normal((4, g.width(z.shape[1])))
    hand = g.vjp(z, v, np)
    for row in range(z.shape[0]):
        for i in range(z.shape[1]):

            def along(s, row=row, i=i):
                moved = z[row].copy()
                moved[i] = s
                return float(np.sum(g.forward(moved[None], np) * v[row]))

            (d_h, d_2h), h = _central(along, z[row, i])
            assert _agree(hand[row, i], d_h, d_2h, h, 1 + np.sum(np.abs(v[row])) * (1 + np.max(np.abs(z)))), (row, i)


def parameter_differences(case) -> list[tuple[int, str, np.ndarray, np.ndarray, np.ndarray]]:
    """For every activation parameter: (layer, name, D(h), D(2h), h) of E by central differences."""
    net, x, y = case.network, case.x, case.y
    out = []
    for k in range(1, net.depth + 1):
        for name, value in (net.p[k] or {}).items():
            d_h, d_2h = np.zeros(value.shape), np.zeros(value.shape)
            h = H * np.maximum(1.0, np.abs(value))
            for index in np.ndindex(value.shape):
                quotients = []
                for step in (1, 2):
                    e = []
                    for sign in (1, -1):
                        moved = dict(net.p[k])
                        moved[name] = value.copy()
                        moved[name][index] += sign * step * h[index]
                        p = net.p[:k] + (moved,) + net.p[k + 1 :]
                        a = manual.forward(Network(net.theta, net.b, net.g, p), x).a[-1]
                        e.append(float(np.mean(case.loss.error(a, y, np))))
                    quotients.append((e[0] - e[1]) / (2 * step * h[index]))
                d_h[index], d_2h[index] = quotients
            out.append((k, name, d_h, d_2h, h))
    return out


def parameter_gradients_match_differences(case, equations=manual.EQUATIONS) -> None:
    grads = manual.gradients(case.network, case.x, case.y, loss=case.loss, equations=equations)
    fwd = manual.forward(case.network, case.x)
    size = 1 + float(np.mean(np.sum((np.abs(fwd.a[-1]) + np.abs(case.y)) ** 2, axis=1)))
    for k, name, d_h, d_2h, h in parameter_differences(case):
        grads_p = grads.p[k]
        assert grads_p is not None, f"layer {k} has parameters but no ∂E/∂p"
        hand = np.asarray(grads_p[name])
        allowed = tol.finite_difference_tolerance(d_h, d_2h, 64 * size, h)
        assert hand.shape == d_h.shape and np.all(np.abs(hand - d_h) <= allowed + 1e-9 * size), (
            f"∂E/∂{name} of layer {k}: hand {hand}, central differences {d_h}"
        )


@profiles.fewer(1 / 2, 5)
@given(mixed_cases(kinds=SMOOTH_KINDS, elementwise=["tanh"], max_depth=3, max_width=8, max_examples=6))
def test_parameter_gradients_by_central_differences(case):
    parameter_gradients_match_differences(case)


def test_central_differences_reject_a_wrong_axis_and_a_wrong_hidden_source():
    strategy = mixed_cases(
        kinds=[PARAMETRIC["snake"], PARAMETRIC["acon_c"]],
        elementwise=["tanh"],
        max_depth=3,
        max_width=8,
        max_examples=6,
    )
    assert rejects(parameter_gradients_match_differences, strategy, equations=broken.PARAMETERS_WRONG_AXIS)
    assert rejects(parameter_gradients_match_differences, strategy, equations=broken.PER_UNIT_AS_SHARED)


@profiles.fewer(1 / 2, 5)
@given(mixed_cases(max_depth=3, max_width=8, max_examples=6))
def test_parameter_gradients_are_the_mean_of_per_example_ones(case):
    batch = manual.gradients(case.network, case.x, case.y, loss=case.loss)
    singles = [
        manual.gradients(case.network, case.x[t : t + 1], case.y[t : t + 1], loss=case.loss) for t in range(case.n)
    ]
    for k in range(1, case.network.depth + 1):
        for name, value in (batch.p[k] or {}).items():
            mean = np.mean([s.p[k][name] for s in singles], axis=0)
            scale = np.mean([np.abs(s.p[k][name]) for s in singles], axis=0) + 1e-300
            assert np.all(np.abs(value - mean) <= 1e-12 * (scale * case.n + np.abs(mean))), (k, name)


def test_central_differences_reject_a_parameter_partial_off_by_1e_6():
    off = broken.parameter_partial_off_by(PARAMETRIC["snake"], "alpha", 1e-6)
    strategy = mixed_cases(kinds=[off], elementwise=["tanh"], max_depth=2, max_width=8, max_examples=6)
    assert rejects(parameter_gradients_match_differences, strategy)
