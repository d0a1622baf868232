"""Every catalogue activation: its forward equals jax.nn's, and its hand derivative equals
jax.grad of its forward (on a dense grid, at random points across magnitudes, and at its kinks).
That every entry stays finite and quiet for |z| up to 1e3 is in ``test_without_autodiff.py``."""

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from manual import ALIASES, CATALOGUE, activation
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import properties
from property_tests.library import tolerances as tol
from property_tests.library.compare import judge
from property_tests.library.conventions import ACTIVATION_KINK_SLOPES
from reference import JAX_NN

NAMES = sorted(CATALOGUE)
GRID = np.linspace(-50, 50, 200_001)
EXTREMES = np.array([-1e3, -700.0, -100.0, -60.0, 60.0, 100.0, 700.0, 1e3])


def grid_with_kinks(g):
    return np.concatenate([GRID, EXTREMES, np.asarray(g.kinks, np.float64)])


def test_catalogue_covers_jax_nn():
    assert set(CATALOGUE) == set(JAX_NN)
    assert activation("swish") is CATALOGUE["silu"] and activation("hard_swish") is CATALOGUE["hard_silu"]
    assert set(ALIASES.values()) <= set(CATALOGUE)


def forward_matches(g, z, jax_f, xp=np):
    """g's forward, in NumPy (the hand derivation's) or in jax.numpy (the one the reference
    differentiates), against ``jax_f``."""
    with jax.enable_x64(True):  # JAX's side compiled whole (op by op, each operation compiles)
        expected = np.asarray(jax.jit(jax_f)(jax.numpy.asarray(z)))
        mine = np.asarray(g.forward(z, np) if xp is np else jax.jit(lambda s: g.forward(s, xp))(z))
    f = tol.slope_scale(g)
    size = np.abs(expected) + f * np.abs(z)  # the size of the terms g is computed from
    allowed = 2 * tol.scale(np.float64) * tol.ELEMENTARY_ULPS * size + tol.floor(np.float64, 1)
    return judge("g", 0, g.name, mine, expected, size, allowed)


@pytest.mark.parametrize("xp", [np, jax.numpy], ids=["numpy", "jax.numpy"])
@pytest.mark.parametrize("name", NAMES)
def test_forward_equals_jax_nn(name, xp):
    g = CATALOGUE[name]
    z = grid_with_kinks(g)
    comparison = forward_matches(g, z, JAX_NN[name], xp)
    assert comparison.passed, comparison.describe()


def test_forward_check_rejects_forward_off_by_1e_6():
    g = CATALOGUE["tanh"]
    comparison = forward_matches(g, grid_with_kinks(g), lambda z: JAX_NN["tanh"](z) * (1 + 1e-6))
    assert not comparison.passed


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", NAMES)
def test_derivative_on_dense_grid(name, dtype):
    g = CATALOGUE[name]
    properties.derivative_matches_autodiff(g, grid_with_kinks(g).astype(dtype))


@pytest.mark.parametrize("name", ["tanh", "gelu_tanh", "hard_silu", "sparse_sigmoid", "log_sigmoid"])
def test_dense_grid_rejects_derivative_off_by_1e_6(name):
    g = broken.off_by(CATALOGUE[name], 1e-6)
    with pytest.raises(AssertionError):
        properties.derivative_matches_autodiff(g, grid_with_kinks(g))


def _ulps_from_integer(pair):
    whole, ulps = pair
    return whole + ulps * float(np.spacing(max(abs(whole), 1.0)))


def points():
    """Arrays of z: sign · 10^e with e in [−3, log10 50], plain floats in [−50, 50], and points a
    few ulps from the integers −6 … 6, where every catalogue kink lies."""
    magnitude = st.floats(-3, np.log10(50)).map(lambda e: 10.0**e)
    signed = st.tuples(st.sampled_from([-1.0, 1.0]), magnitude).map(lambda p: p[0] * p[1])
    near_integers = st.tuples(st.integers(-6, 6), st.integers(-8, 8)).map(_ulps_from_integer)
    element = st.one_of(signed, st.floats(-50, 50, allow_subnormal=False), near_integers)
    return hnp.arrays(np.float64, st.integers(1, 64), elements=element, fill=st.nothing())


def _random_points_property(z, g):
    properties.derivative_matches_autodiff(g, z)


@pytest.mark.parametrize("name", NAMES)
@given(z=points())
def test_derivative_at_random_points(name, z):
    properties.derivative_matches_autodiff(CATALOGUE[name], z)


@pytest.mark.parametrize("name", ["sigmoid", "gelu", "silu", "hard_silu"])
def test_random_points_reject_derivative_off_by_1e_6(name):
    assert rejects(_random_points_property, points(), g=broken.off_by(CATALOGUE[name], 1e-6))


KINKED = [name for name in NAMES if CATALOGUE[name].kinks]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", KINKED)
def test_derivative_within_ulps_of_kinks(name, dtype):
    # Forwards round before they meet a kink (hard_sigmoid compares z + 3): the hand g′ must
    # follow autodiff to the last ulp around every kink, not only at it.
    g = CATALOGUE[name]
    steps = np.arange(-40, 41).astype(dtype)
    z = np.concatenate([dtype(k) + steps * np.spacing(dtype(max(abs(k), 1.0))) for k in g.kinks])
    properties.derivative_matches_autodiff(g, z.astype(dtype))


@pytest.mark.parametrize("name", KINKED)
def test_kink_convention_matches_jax_nn(name):
    g = CATALOGUE[name]
    with jax.enable_x64(True):
        kinks = jax.numpy.asarray(g.kinks, jax.numpy.float64)
        jax_value = jax.jit(jax.vmap(jax.grad(JAX_NN[name])))(kinks).tolist()
        mine_under_jax = jax.jit(jax.vmap(jax.grad(lambda s: g.forward(s, jax.numpy))))(kinks).tolist()
    mine = g.derivative(np.asarray(g.kinks), np).tolist()
    assert mine == jax_value, f"{name}: g′ at kinks {g.kinks} is {mine}, jax.nn gives {jax_value}"
    assert mine_under_jax == jax_value, "the forward's own autodiff must follow jax.nn's convention"
    recorded = ACTIVATION_KINK_SLOPES[name]
    assert list(recorded) == list(g.kinks) and list(recorded.values()) == jax_value, (
        f"conventions.ACTIVATION_KINK_SLOPES[{name!r}] must be {dict(zip(g.kinks, jax_value, strict=True))}"
    )


def test_kink_convention_check_rejects_other_convention():
    relu = CATALOGUE["relu"]
    other = relu.__class__("relu", relu.forward, lambda z, xp: (z >= 0).astype(z.dtype), kinks=(0.0,))
    with jax.enable_x64(True):
        jax_value = float(jax.grad(JAX_NN["relu"])(0.0))
    assert other.derivative(np.zeros(1), np)[0] != jax_value
