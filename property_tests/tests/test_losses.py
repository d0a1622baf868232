"""Losses and output layers beyond the mean squared error: every hand gradient and every hand
Jacobian-vector product against autodiff (with random cotangents, so errors cannot cancel),
equation (1) in its general form, the fused forms, and their negative controls."""

import warnings
from functools import partial

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual
from manual import LOSSES, OUTPUT_MAPS
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import properties
from property_tests.library import tolerances as tol
from property_tests.library.compare import judge
from property_tests.library.conventions import LOSS_KINK_SLOPES
from property_tests.library.strategies import cases, loss_cases, targets, unit_arrays

LOSS_NAMES = sorted(LOSSES)


SHAPES = st.sampled_from([(1, 1), (1, 5), (6, 1), (6, 5)])
"""A few shapes, so that JAX compiles each check a few times rather than once per example."""


@partial(jax.jit, static_argnums=0)
def _weighted_gradient(loss, a, y, w):
    _, vjp = jax.vjp(lambda a_: loss.error(a_, y, jax.numpy), a)
    return vjp(w)[0]


@partial(jax.jit, static_argnums=0)
def _map_vjp(output_map, z, v):
    _, vjp = jax.vjp(lambda z_: output_map.forward(z_, jax.numpy), z)
    return vjp(v)[0]


@st.composite
def loss_points(draw, loss):
    """Outputs a in the loss's domain, valid targets y and a positive weight per example."""
    n, m = draw(SHAPES)
    u = draw(unit_arrays((n, m)))
    if loss.name == "binary_cross_entropy":
        a = 0.01 + 0.98 * np.abs(u)
    elif loss.name == "cross_entropy":
        a = (np.abs(u) + 0.01) / (np.abs(u) + 0.01).sum(axis=1, keepdims=True)
    elif loss.name == "negative_log_likelihood":
        a = -3 * np.abs(u)
    else:
        a = 3 * u
    y = draw(targets(loss, (n, m)))
    w = 0.5 + np.abs(draw(unit_arrays((n,))))
    return a, y, w


def loss_gradient_matches(pair, loss):
    """w ⊙ ∇ₐEₜ by hand against jax.vjp of Eₜ with the per-example weights w as cotangent."""
    a, y, w = pair
    with jax.enable_x64(True):
        expected = np.asarray(_weighted_gradient(loss, a, y, w))
    mine = w[:, None] * loss.gradient(a, y, np)
    size = np.abs(expected) + w[:, None] * (np.abs(a) + np.abs(y))
    allowed = tol.scale(np.float64) * 4 * tol.ELEMENTARY_ULPS * size + tol.floor(np.float64, 1)
    c = judge("∇ₐE", 0, loss.name, mine, expected, size, allowed)
    assert c.passed, c.describe()


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_loss_gradient_equals_autodiff(name):
    loss = LOSSES[name]
    given(loss_points(loss))(lambda pair: loss_gradient_matches(pair, loss))()


@pytest.mark.parametrize("name", sorted(name for name in LOSS_NAMES if LOSSES[name].kinks))
def test_recorded_loss_kink_convention_is_jax_grads(name):
    # ∂Eₜ/∂aⱼ with every residual aⱼ − yⱼ on the kink, from jax.grad of the loss's own error.
    loss = LOSSES[name]
    for kink in loss.kinks:
        y = np.array([[0.5, -2.0, 0.0]])
        with jax.enable_x64(True):
            jax_value = np.asarray(_weighted_gradient(loss, y + kink, y, np.ones(1))).tolist()
        assert loss.gradient(y + kink, y, np).tolist() == jax_value
        assert LOSS_KINK_SLOPES[name][kink] == jax_value[0][0] and len(set(jax_value[0])) == 1


@pytest.mark.parametrize(
    "name, wrong",
    [
        ("cross_entropy", lambda a, y, xp: y / a),
        ("binary_cross_entropy", lambda a, y, xp: (a - y) / a),
        ("huber", lambda a, y, xp: a - y),
        ("mae", lambda a, y, xp: xp.sign(a - y) * 0.5),
    ],
)
def test_loss_gradient_property_rejects_wrong_gradients(name, wrong):
    loss = LOSSES[name]
    assert rejects(loss_gradient_matches, loss_points(loss), loss=broken.loss_with_gradient(loss, wrong))


@st.composite
def logits_and_cotangents(draw):
    n, m = draw(SHAPES)
    scale = draw(st.sampled_from([1.0, 10.0, 1e3]))
    return scale * draw(unit_arrays((n, m))), draw(unit_arrays((n, m)))


def vjp_matches(pair, output_map):
    """J_g(z)ᵀv by hand against jax.vjp, v a random cotangent (never a plain sum)."""
    z, v = pair
    with jax.enable_x64(True):
        expected = np.asarray(_map_vjp(output_map, z, v))
    mine = output_map.vjp(z, v, np)
    spread = np.max(z, axis=-1, keepdims=True) - np.min(z, axis=-1, keepdims=True)
    size = np.abs(v) + np.sum(np.abs(v), axis=-1, keepdims=True)
    allowed = tol.scale(np.float64) * tol.ELEMENTARY_ULPS * (1 + spread) * size + tol.floor(np.float64, 1)
    c = judge("Jᵀv", 0, output_map.name, mine, expected, size, allowed)
    assert c.passed, c.describe()


@pytest.mark.parametrize("name", sorted(OUTPUT_MAPS))
@given(pair=logits_and_cotangents())
def test_output_map_vjp_equals_autodiff(name, pair):
    vjp_matches(pair, OUTPUT_MAPS[name])


@pytest.mark.parametrize("name", sorted(OUTPUT_MAPS))
def test_output_map_forward_equals_jax_nn(name):
    z = np.random.default_rng(0).uniform(-1e3, 1e3, (50, 7))
    with jax.enable_x64(True):
        expected = np.asarray(getattr(jax.nn, name)(jax.numpy.asarray(z)))
    assert np.allclose(OUTPUT_MAPS[name].forward(z, np), expected, rtol=0, atol=1e-12 * 1e3)


def test_vjp_property_rejects_softmax_without_off_diagonal_terms():
    assert rejects(vjp_matches, logits_and_cotangents(), output_map=broken.softmax_map_without_off_diagonal())


@given(loss_cases())
def test_equation_1_general_form_for_every_loss(case):
    properties.equation_1_holds(case)


def test_equation_1_rejects_softmax_without_off_diagonal_terms():
    for loss in (manual.MSE, manual.HUBER):
        softmax_out = cases(loss=loss, output_layers=["softmax"], min_width=2)
        assert rejects(properties.equation_1_holds, softmax_out, equations=broken.SOFTMAX_WITHOUT_OFF_DIAGONAL)


@given(loss_cases())
def test_equation_3_for_every_loss(case):
    properties.equation_3_holds(case)


@given(loss_cases(max_examples=6))
def test_averaging_constraint_for_every_loss(case):
    properties.averaging_constraint_holds(case)


# --- the fused forms ------------------------------------------------------------------------

FUSED = [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")]


def output_of(name):
    return OUTPUT_MAPS.get(name) or manual.CATALOGUE[name]


@pytest.mark.parametrize("loss_name, output", FUSED)
@given(data=st.data())
def test_fused_delta_equals_the_unfused_composition(loss_name, output, data):
    # δ⁽ᴸ⁾ = a − y against J_g(z)ᵀ ∇ₐE taken apart, on logits where the composition is finite.
    loss, g = LOSSES[loss_name], output_of(output)
    n, m = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 6))
    z = 4 * data.draw(unit_arrays((n, m)))
    y = data.draw(targets(loss, (n, m)))
    fused = loss.fused_delta(z, y, np)
    unfused = manual.output_delta(loss.gradient(g.forward(z, np), y, np), z, g)
    size = np.abs(fused) + np.abs(y) + 1
    c = judge("fused (1)", 0, loss_name, unfused, fused, size, 64 * tol.ELEMENTARY_ULPS * 2.2e-16 * size)
    assert c.passed, c.describe()


@pytest.mark.parametrize("loss_name, output", FUSED)
def test_fused_forms_are_finite_and_quiet_for_logits_up_to_1e3(loss_name, output):
    loss = LOSSES[loss_name]
    z = np.array([[-1e3, 0.0, 1e3], [1e3, 1e3, -1e3], [-1e3, -1e3, -1e3]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        warnings.simplefilter("error")
        e, d = loss.fused_error(z, y, np), loss.fused_delta(z, y, np)
    assert np.all(np.isfinite(e)) and np.all(np.isfinite(d))
    with jax.enable_x64(True):
        expected = np.asarray(jax.grad(lambda z_: jax.numpy.sum(loss.fused_error(z_, y, jax.numpy)))(z))
    assert np.allclose(d, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss_name, output", FUSED)
def test_fused_delta_property_rejects_a_fused_delta_with_1_over_n_twice(loss_name, output):
    loss = LOSSES[loss_name]
    wrong = broken.loss_with_fused_delta(loss, lambda z, y, xp: loss.fused_delta(z, y, xp) / z.shape[0])
    assert rejects(properties.equation_1_holds, loss_cases(names=[wrong], min_examples=2))
