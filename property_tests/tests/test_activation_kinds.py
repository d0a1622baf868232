"""Parametric activations (``manual.parametric``) and activations that mix units
(``manual.vector_activations``) against JAX, in float64.

Every hand value is compared elementwise with autodiff of the entry's own forward written in
``jax.numpy``: ∂g/∂z and every ∂g/∂p with ``jax.grad`` (vmapped over the points), J_gᵀv with
``jax.vjp``. The points include the exact kinks, a few ulps either side of them, magnitudes from
1e-8 to 1e3 of both signs, and random values; parameters take random per-unit values that all
differ (the ends of their ranges and 0 among them) and random shared (shape ()) values.

One comparison throughout (``disagreement``): |hand − autodiff| ≤ 64·eps·(|autodiff| + scale),
where the scale is 1 unless autodiff's own rounding is known to be larger (``SCALES``): JAX
differentiates expit with σ(s)(1 − σ(s)) from a rounded σ(s), which is good to eps absolute only,
and returns 0 once σ(s) rounds to 1 (the hand σ(s)σ(−s) keeps every digit; see
``test_hand_partials_are_exact_where_autodiff_rounds``). Each property has a negative control
that the same comparison rejects.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
from scipy.special import expit

from manual.activations import Activation
from manual.parametric import PARAMETRIC, ParametricActivation, parametric
from manual.vector_activations import (
    VECTOR_ACTIVATIONS,
    VectorActivation,
    maxout,
    vector_activation,
)
from reference import plain

EPS = float(np.finfo(np.float64).eps)
ULPS = 64
RELATIVE_ERROR = 1e-6  # what every negative control gets wrong by
UNITS = 6
SEEDS = [0, 1, 2]
PARAMETRIC_NAMES = sorted(PARAMETRIC)
VECTOR_NAMES = sorted(VECTOR_ACTIVATIONS)


# --- the comparison ---------------------------------------------------------------------------


def disagreement(hand, autodiff, scale=1.0) -> np.ndarray:
    """Where |hand − autodiff| > 64·eps·(|autodiff| + scale); a NaN anywhere disagrees."""
    hand, autodiff = np.asarray(hand, np.float64), np.asarray(autodiff, np.float64)
    return ~(np.abs(hand - autodiff) <= ULPS * EPS * (np.abs(autodiff) + scale))


def agrees(hand, autodiff, scale=1.0) -> bool:
    return not disagreement(hand, autodiff, scale).any()


def assert_agree(hand, autodiff, what: str, scale=1.0, z=None) -> None:
    bad = disagreement(hand, autodiff, scale)
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        at = "" if z is None else f" at z = {np.asarray(z)[i]!r}"
        raise AssertionError(
            f"{what}: {bad.sum()} of {bad.size} disagree; first, index {list(i)}{at}: "
            f"hand {np.asarray(hand)[i]!r}, autodiff {np.asarray(autodiff)[i]!r}"
        )


# --- points and parameters --------------------------------------------------------------------

TINY = float(np.finfo(np.float64).tiny)


def pool(kinks, rng) -> np.ndarray:
    """Exact kinks and ±0, a few ulps either side of the kinks, 1e-8 … 1e3 of both signs, random.

    Beside 0 the nearest points are ±(the smallest normal number), not the subnormal
    ±5e-324: XLA on the CPU treats subnormal inputs as 0 (−5e-324 ≥ 0 holds there), so at a
    subnormal z autodiff takes the kink's convention while NumPy, rightly, does not."""
    kinks = np.asarray([0.0, *kinks])
    step = np.maximum(TINY, EPS * np.abs(kinks))
    near = np.concatenate(
        [np.nextafter(kinks, np.inf), np.nextafter(kinks, -np.inf), kinks + 4 * step, kinks - 4 * step]
    )
    near = np.where(np.abs(near) < TINY, np.sign(near) * TINY, near)
    magnitudes = np.geomspace(1e-8, 1e3, 56)
    extremes = [1e3, 999.0, 700.0, 100.0, 37.5, 20.0]
    return np.concatenate(
        [
            kinks,
            [-0.0],
            near,
            magnitudes,
            -magnitudes,
            extremes,
            np.negative(extremes),
            rng.uniform(-10, 10, 120),
            rng.uniform(-1e3, 1e3, 20),
        ]
    )


def z_for(g, rng, units=UNITS) -> np.ndarray:
    """(len(pool), units): every unit sees every point, in its own order."""
    values = pool(g.kinks, rng)
    return np.stack([rng.permutation(values) for _ in range(units)], axis=1)


def per_unit(g: ParametricActivation, rng, units=UNITS) -> dict[str, np.ndarray]:
    """One value per unit, all different: the ends of the range, the default, 0 when inside, random."""
    values = {}
    for q in g.parameters:
        chosen = [q.low, q.high, q.default] + ([0.0] if q.low < 0 < q.high else [])
        chosen = list(dict.fromkeys(chosen))
        chosen += list(rng.uniform(q.low, q.high, units - len(chosen)))
        values[q.name] = rng.permutation(np.asarray(chosen[:units]))
        assert len(set(values[q.name])) == units
    return values


def shared(g: ParametricActivation, rng) -> dict[str, np.ndarray]:
    return {q.name: np.asarray(rng.uniform(q.low, q.high)) for q in g.parameters}


def parameter_sets(g, seed):
    rng = np.random.default_rng(seed)
    return [("per_unit", per_unit(g, rng)), ("shared", shared(g, rng))]


def drawn(name: str, seed: int) -> tuple[ParametricActivation, np.ndarray, list]:
    """The parametric g called ``name``, its points (``z_for``) and its parameter sets, from ``seed``."""
    g = PARAMETRIC[name]
    return g, z_for(g, np.random.default_rng(seed)), parameter_sets(g, seed)


# --- autodiff -----------------------------------------------------------------------------------


# Autodiff is compiled once per entry (and shape) with ``jax.jit``: run op by op, every operation
# of a forward would be compiled on its own for each new shape, which is most of this file's time.


@cache
def _elementwise_partials(g: ParametricActivation):
    return jax.jit(jax.vmap(jax.grad(lambda z, p: g.forward(z, p, jnp), argnums=(0, 1))))


@cache
def _pullback_in_parameters(g: ParametricActivation):
    """(z, p, w) ↦ wᵀ ∂g(z; p)/∂p by ``jax.vjp`` in p."""
    return jax.jit(lambda z, p, w: jax.vjp(lambda q: g.forward(z, q, jnp), p)[1](w)[0])


@cache
def _jitted(f):
    return jax.jit(f)


def autodiff_partials(g: ParametricActivation, z: np.ndarray, p) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """∂g/∂z and every ∂g/∂p from jax.grad, one scalar point (zₜᵢ with its own pᵢ) at a time."""
    with jax.enable_x64(True):
        flat = {k: jnp.asarray(np.broadcast_to(v, z.shape).ravel(), jnp.float64) for k, v in p.items()}
        dz, dp = _elementwise_partials(g)(jnp.asarray(z.ravel(), jnp.float64), flat)
        return np.asarray(dz).reshape(z.shape), {k: np.asarray(v).reshape(z.shape) for k, v in dp.items()}


def _sigma_prime_error(s):
    """How far JAX's σ′(s) may be off, in units of eps. lax.logistic's JVP (at default accuracy)
    is σ(s)(1 − σ(s)) from the rounded σ(s): 1 − σ(s) is good to about eps absolute, and is all
    error (0) once σ(−s) < eps/2 and σ(s) rounds to 1."""
    return expit(s) * np.minimum(1.0, expit(-s) / EPS)


def _swish_beta_scales(z, p):
    # jax.grad of z·σ(βz): ∂z = σ(s) + zβ·σ′(s), ∂β = z·z·σ′(s); σ′'s error times what multiplies it.
    s = p["beta"] * z
    e = _sigma_prime_error(s)
    return {"z": 1 + np.abs(s) * e, "beta": 1 + z * z * e}


def _acon_c_scales(z, p):
    # jax.grad of dz·σ(s) + p₂z, d = p₁ − p₂, s = βdz: σ′(s) enters each partial times ds·dz…;
    # ∂p₂ is z − (the ∂p₁ terms), which cancel to 0 as σ(s) → 1, so its rounding is relative to |z|.
    d = p["p1"] - p["p2"]
    s = p["beta"] * d * z
    e = _sigma_prime_error(s)
    return {
        "z": 1 + np.abs(d * s) * e,
        "p1": 1 + np.abs(z * s) * e,
        "p2": 1 + np.abs(z) + np.abs(z * s) * e,
        "beta": 1 + (d * z) ** 2 * e,
    }


SCALES = {"swish_beta": _swish_beta_scales, "acon_c": _acon_c_scales}
"""Where autodiff's own rounding is larger than ulps of |∂g/∂·| + 1: the size it is relative to."""


def scales(g, z, p) -> dict[str, np.ndarray | float]:
    names = ["z", *(q.name for q in g.parameters)]
    if g.name not in SCALES:
        return dict.fromkeys(names, 1.0)
    broadcast = {k: np.broadcast_to(v, z.shape) for k, v in p.items()}
    return SCALES[g.name](z, broadcast)


def hand_partials(g, z, p) -> dict[str, np.ndarray]:
    return {"z": g.derivative(z, p, np), **g.parameter_derivatives(z, p, np)}


# --- parametric: the catalogue ------------------------------------------------------------------


def test_parametric_catalogue():
    assert PARAMETRIC_NAMES == ["acon_c", "pau", "prelu", "snake", "swish_beta"]
    for name, g in PARAMETRIC.items():
        assert parametric(name) is g and g.name == name and repr(g) == f"ParametricActivation({name!r})"
        assert "arXiv:" in g.paper and g.formula
        for q in g.parameters:
            assert q.low < q.high and q.low <= q.default <= q.high and q.description
        assert all(q.per_unit for q in g.parameters) == (name != "pau")
    assert not any(q.per_unit for q in PARAMETRIC["pau"].parameters)
    assert [q.name for q in PARAMETRIC["pau"].parameters] == [
        *(f"a{j}" for j in range(6)),
        *(f"b{k}" for k in range(1, 5)),
    ]
    with pytest.raises(KeyError, match="known: acon_c, pau, prelu, snake, swish_beta"):
        parametric("maxout")


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_defaults(name):
    g = PARAMETRIC[name]
    values = g.defaults(5)
    assert list(values) == [q.name for q in g.parameters]
    for q in g.parameters:
        assert values[q.name].shape == ((5,) if q.per_unit else ()) and values[q.name].dtype == np.float64
        assert np.all(values[q.name] == q.default)
    assert all(v.shape == (5,) and v.dtype == np.float32 for v in g.defaults(5, np.float32, per_unit=True).values())
    assert all(v.shape == () for v in g.defaults(5, per_unit=False).values())
    with pytest.raises(ValueError):
        g.defaults(0)


def test_defaults_reproduce_named_cases():
    """The defaults are what their descriptions say: swish_beta and ACON-C are SiLU, PReLU at
    0.01 is leaky ReLU, and PAU's initialisation is within 0.04 of leaky ReLU on [−3, 3]."""
    z = np.linspace(-3, 3, 601)
    with jax.enable_x64(True):
        silu, leaky = np.asarray(jax.nn.silu(z)), np.asarray(jax.nn.leaky_relu(z, 0.01))
    assert_agree(PARAMETRIC["swish_beta"].forward(z, PARAMETRIC["swish_beta"].defaults(1), np), silu, "swish_beta")
    assert_agree(PARAMETRIC["acon_c"].forward(z, PARAMETRIC["acon_c"].defaults(1), np), silu, "acon_c")
    assert_agree(PARAMETRIC["prelu"].forward(z, {"a": np.asarray(0.01)}, np), leaky, "prelu")
    assert np.max(np.abs(PARAMETRIC["pau"].forward(z, PARAMETRIC["pau"].defaults(1), np) - leaky)) < 0.04


# --- parametric: the derivatives against jax.grad -----------------------------------------------


def partials_match(g, z, p) -> None:
    hand = hand_partials(g, z, p)
    dz, dp = autodiff_partials(g, z, p)
    expected = {"z": dz, **dp}
    assert list(hand) == ["z", *(q.name for q in g.parameters)] and set(expected) == set(hand)
    size = scales(g, z, p)
    for what, value in hand.items():
        assert value.shape == z.shape and value.dtype == np.float64, what
        assert_agree(value, expected[what], f"{g.name} ∂g/∂{what}", size[what], z)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_partials_equal_autodiff(name, seed):
    g, z, sets = drawn(name, seed)
    for _, p in sets:
        partials_match(g, z, p)


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_partials_equal_autodiff_at_defaults(name):
    g = PARAMETRIC[name]
    z = z_for(g, np.random.default_rng(7))
    partials_match(g, z, g.defaults(UNITS))
    partials_match(g, z, g.defaults(UNITS, per_unit=not g.parameters[0].per_unit))


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_partials_are_not_reduced_and_broadcast_like_z(name):
    g = PARAMETRIC[name]
    rng = np.random.default_rng(3)
    for _, p in parameter_sets(g, 3):
        for shape in [(UNITS,), (4, UNITS), (2, 3, UNITS)]:
            z = rng.uniform(-4, 4, shape)
            assert g.forward(z, p, np).shape == shape and g.derivative(z, p, np).shape == shape
            assert all(v.shape == shape for v in g.parameter_derivatives(z, p, np).values())
        # unit i of a batch of shape (2, 3, units) is computed with pᵢ, like a row of (n, units)
        z = rng.uniform(-4, 4, (2, 3, UNITS))
        assert np.array_equal(g.derivative(z, p, np).reshape(6, UNITS), g.derivative(z.reshape(6, UNITS), p, np))


def gradient_in_parameters_matches(g, z, p, w, hand=None) -> None:
    """Σ over examples (and units, for a shared parameter) of w ⊙ ∂g/∂p, against jax.vjp in p:
    the reduction the module docstring describes, done here as the backward pass will do it."""
    hand = g.parameter_derivatives(z, p, np) if hand is None else hand
    with jax.enable_x64(True):
        expected = _pullback_in_parameters(g)(jnp.asarray(z), {k: jnp.asarray(v) for k, v in p.items()}, jnp.asarray(w))
    _, elementwise = autodiff_partials(g, z, p)
    size = scales(g, z, p)
    for name, value in p.items():
        axes = tuple(range(z.ndim - value.ndim))
        mine = np.sum(w * hand[name], axis=axes)
        assert mine.shape == value.shape, name
        magnitude = np.sum(np.abs(w) * (np.abs(elementwise[name]) + size[name]), axis=axes)
        allowed = (ULPS + z.size) * EPS * magnitude
        assert np.all(np.abs(mine - np.asarray(expected[name])) <= allowed), (name, mine, expected[name])


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_gradient_in_parameters_sums_examples_and_shared_units(name):
    g = PARAMETRIC[name]
    rng = np.random.default_rng(11)
    z = np.concatenate([rng.uniform(-5, 5, (30, UNITS)), z_for(g, rng)[:10]])
    w = rng.normal(size=z.shape)
    for _, p in parameter_sets(g, 11):
        gradient_in_parameters_matches(g, z, p, w)


# --- parametric: kinks, dtypes, finiteness, bind ------------------------------------------------


def test_kink_conventions():
    z = np.array([[0.0, -0.0, 1.0, -1.0]])
    prelu = PARAMETRIC["prelu"]
    p = {"a": np.asarray(0.25)}
    assert prelu.derivative(z, p, np).tolist() == [[1.0, 1.0, 1.0, 0.25]]
    assert prelu.parameter_derivatives(z, p, np)["a"].tolist() == [[0.0, 0.0, 0.0, -1.0]]
    pau = PARAMETRIC["pau"]
    p = {name: np.asarray(v) for name, v in pau.defaults(1).items()}
    p["b3"] = np.asarray(0.0)
    assert pau.derivative(z, p, np)[0, :2].tolist() == [float(p["a1"])] * 2  # a₁, the mean of a₁ ∓ a₀|b₁|
    assert not np.any(pau.parameter_derivatives(z, p, np)["b3"])  # sign(0) = 0 at b₃ = 0
    dz, dp = autodiff_partials(pau, z, p)
    assert dz[0, :2].tolist() == [float(p["a1"])] * 2 and not np.any(dp["b3"])


def test_jnp_abs_derivative_at_zero_is_one_here():
    """Why PAU writes |x| as x·sign(x): jax.grad(jnp.abs)(0) is 1 (select(x ≥ 0, 1, −1)) on the
    JAX this was written against, not sign(0) = 0. Should this fail on a newer JAX, the comment
    in manual/parametric.py is stale; PAU stays right either way."""
    with jax.enable_x64(True):
        assert float(jax.grad(jnp.abs)(0.0)) == 1.0
        assert float(jax.grad(lambda x: x * jnp.sign(x))(0.0)) == 0.0


def types_of(f, xp, *args):
    """The dtypes and shapes of what ``f(*args)`` returns: computed under NumPy, traced under
    jax.numpy (``jax.eval_shape``: JAX's type rules without compiling a program)."""
    return f(*args) if xp is np else jax.eval_shape(f, *args)


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax.numpy"])
def test_float32_stays_float32(name, xp):
    g = PARAMETRIC[name]
    rng = np.random.default_rng(5)
    z = rng.uniform(-5, 5, (4, UNITS)).astype(np.float32)
    with jax.enable_x64(True):  # so that a float64 parameter could promote under jax.numpy too
        for _, p in parameter_sets(g, 5):
            for values in (p, {k: v.astype(np.float32) for k, v in p.items()}):
                outputs = types_of(
                    lambda z, q: [
                        g.forward(z, q, xp),
                        g.derivative(z, q, xp),
                        *g.parameter_derivatives(z, q, xp).values(),
                    ],
                    xp,
                    z,
                    values,
                )
                assert all(out.dtype == np.float32 and out.shape == z.shape for out in outputs)


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_finite_and_quiet_up_to_1e3(name):
    """No overflow, invalid operation or division by zero in any branch (numpy.where evaluates
    both), at |z| up to 1e3 and parameters anywhere in their ranges, ends included."""
    g, z, sets = drawn(name, 9)
    for dtype in (np.float64, np.float32):
        for _, p in sets:
            with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
                outputs = [g.forward(z.astype(dtype), p, np), *hand_partials(g, z.astype(dtype), p).values()]
            assert all(np.all(np.isfinite(out)) for out in outputs)


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_bind_gives_a_plain_activation(name):
    g, z, sets = drawn(name, 13)
    for _, p in sets:
        bound = g.bind(p)
        assert isinstance(bound, Activation) and bound.name == f"{name}(bound)"
        assert bound.kinks == g.kinks and bound.kink_convention == g.kink_convention
        assert np.array_equal(bound.forward(z, np), g.forward(z, p, np))
        assert np.array_equal(bound.derivative(z, np), g.derivative(z, p, np))
        with jax.enable_x64(True):  # the bound forward is what the reference would differentiate
            dz = jax.jit(jax.vmap(jax.grad(lambda row, g=bound: jnp.sum(g.forward(row, jnp)))))(jnp.asarray(z))
        assert_agree(bound.derivative(z, np), np.asarray(dz), f"{name}(bound)′", scales(g, z, p)["z"], z)
        kept = {k: v.copy() for k, v in p.items()}
        for v in p.values():
            v[...] = 0.5  # later edits to the caller's arrays do not reach the bound activation
        assert np.array_equal(bound.forward(z, np), g.forward(z, kept, np))
    with pytest.raises(KeyError):
        g.bind({})


# --- parametric: negative controls --------------------------------------------------------------


def off_by_relative(value):
    return value * (1 + RELATIVE_ERROR)


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_control_partial_off_by_1e_6_is_rejected(name):
    """The comparison (scales included) rejects each partial in turn off by a relative 1e-6."""
    g, z, sets = drawn(name, 0)
    for _, p in sets:
        hand = hand_partials(g, z, p)
        dz, dp = autodiff_partials(g, z, p)
        expected, size = {"z": dz, **dp}, scales(g, z, p)
        for what in hand:
            assert agrees(hand[what], expected[what], size[what])
            assert not agrees(off_by_relative(hand[what]), expected[what], size[what]), what


@pytest.mark.parametrize("name", PARAMETRIC_NAMES)
def test_control_reduction_over_the_wrong_axes_is_rejected(name):
    """A per-unit parameter's gradient summed over units as well (the shared formula) is rejected,
    and a partial off by 1e-6 is rejected after the reduction too."""
    g = PARAMETRIC[name]
    rng = np.random.default_rng(1)
    z = rng.uniform(-5, 5, (30, UNITS))
    w = rng.normal(size=z.shape)
    p = per_unit(g, rng)
    wrong = {
        k: np.broadcast_to(np.sum(v, axis=-1, keepdims=True), z.shape) / UNITS
        for k, v in g.parameter_derivatives(z, p, np).items()
    }
    with pytest.raises(AssertionError):
        gradient_in_parameters_matches(g, z, p, w, hand=wrong)
    off = {k: off_by_relative(v) for k, v in g.parameter_derivatives(z, p, np).items()}
    with pytest.raises(AssertionError):
        gradient_in_parameters_matches(g, z, p, w, hand=off)


def test_control_wrong_kink_conventions_are_rejected():
    """PReLU with ∂g/∂z(0) = a (the left slope), and PAU with d|x|/dx = +1 at 0 (what jnp.abs
    would give): each disagrees with jax.grad exactly at the kink, and nowhere else."""
    z = np.array([[0.0, 1.0, -1.0, 2.5]])
    prelu = PARAMETRIC["prelu"]
    p = {"a": np.asarray(0.25)}
    dz, _ = autodiff_partials(prelu, z, p)
    left_slope = np.where(z > 0, 1.0, 0.25)
    assert agrees(prelu.derivative(z, p, np), dz)
    assert disagreement(left_slope, dz).tolist() == [[True, False, False, False]]

    pau = PARAMETRIC["pau"]
    p = {name: np.asarray(v) for name, v in pau.defaults(1).items()}
    p["b1"], p["b2"] = np.asarray(0.5), np.asarray(0.0)
    dz, dp = autodiff_partials(pau, z, p)
    hand = pau.derivative(z, p, np)
    right_slope = hand - np.where(z == 0, p["a0"] * abs(p["b1"]), 0.0)  # Q′(0) = +|b₁| instead of 0
    assert agrees(hand, dz)
    assert disagreement(right_slope, dz).tolist() == [[True, False, False, False]]
    # ∂g/∂b₂ at b₂ = 0 with sign(0) = +1 is −g|z|²/Q: the value just right of b₂ = 0
    plus_one = pau.parameter_derivatives(z, {**p, "b2": np.asarray(1e-300)}, np)["b2"]
    assert agrees(pau.parameter_derivatives(z, p, np)["b2"], dp["b2"])
    assert disagreement(plus_one, dp["b2"]).tolist() == [[False, True, True, True]]


# --- parametric: hand more exact than autodiff where SCALES widen -------------------------------


def _mp_partial(f, at: float) -> float:
    with mpmath.workdps(60):
        return float(mpmath.diff(f, mpmath.mpf(at)))


def _mp_sigma(x):
    return 1 / (1 + mpmath.exp(-x))


def test_hand_partials_are_exact_where_autodiff_rounds():
    """At points where the hand ∂g/∂β (z²σ(s)σ(−s)) and jax.grad differ beyond 64 ulps, the hand
    value is the exact one (60-digit numerical differentiation of the forward): autodiff's
    σ(s)(1 − σ(s)) loses the digits, which is why ``SCALES`` widens the comparison there."""
    g = PARAMETRIC["swish_beta"]
    z = np.array([451.6764149253491, 77.4263682681127, 30.0, 250.0])
    beta = np.array([0.08136175090811458, 0.3, 0.9, 0.1])
    hand = g.parameter_derivatives(z, {"beta": beta}, np)["beta"]
    _, dp = autodiff_partials(g, z, {"beta": beta})
    assert disagreement(hand, dp["beta"]).any()
    exact = np.array(
        [
            _mp_partial(lambda b, zz=zz: mpmath.mpf(zz) * _mp_sigma(b * mpmath.mpf(zz)), bb)
            for zz, bb in zip(z, beta, strict=True)
        ]
    )
    assert np.all(np.abs(hand - exact) <= 8 * EPS * np.abs(exact))


# --- vector activations -------------------------------------------------------------------------


def test_vector_catalogue():
    assert VECTOR_NAMES == ["geglu", "glu", "maxout2", "maxout3", "reglu", "swiglu"]
    for name, g in VECTOR_ACTIVATIONS.items():
        assert vector_activation(name) is g and g.name == name and repr(g) == f"VectorActivation({name!r})"
        assert "arXiv:" in g.paper and g.formula
    assert maxout(5).name == "maxout5" and maxout(5).group == maxout(5).shrink == 5
    with pytest.raises(KeyError, match="known: geglu, glu, maxout2, maxout3, reglu, swiglu"):
        vector_activation("softmax")
    with pytest.raises(ValueError):
        maxout(0)


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_width_refuses_a_wrong_width(name):
    g = VECTOR_ACTIVATIONS[name]
    k = g.group
    assert g.width(4 * k) == 4 * k // g.shrink and g.width(k) == k // g.shrink
    for units in (k + 1, 0, -k):
        with pytest.raises(ValueError, match=f"{name} needs an input width that is a positive multiple of {k}"):
            g.width(units)
    with pytest.raises(ValueError, match=name):
        g.forward(np.zeros((2, 2 * k + 1)), np)


JAX_GATES = {
    "glu": jax.nn.sigmoid,
    "reglu": jax.nn.relu,
    "geglu": lambda s: jax.nn.gelu(s, approximate=False),
    "swiglu": jax.nn.silu,
}


def rows(g: VectorActivation, rng, width: int) -> np.ndarray:
    """Random rows across magnitudes, with exact zeros (the ReLU gate's kink) and ties for maxout."""
    scale = rng.choice([1e-3, 1.0, 10.0, 1e3], size=(40, 1))
    z = np.concatenate(
        [
            scale * rng.normal(size=(40, width)),
            np.zeros((2, width)),
            rng.choice([-1e3, -1.0, -0.0, 0.0, 2.0, 1e3], size=(20, width)),
        ]
    )
    for row in z[:10]:  # sprinkle exact zeros
        row[rng.integers(width, size=3)] = 0.0
    z[-6:] = tie_rows(g.group, width, rng, 6) if g.name.startswith("maxout") else z[-6:]
    return z


def tie_rows(k: int, width: int, rng, n: int) -> np.ndarray:
    """Rows whose every group has 2 … k tied maxima."""
    out = rng.normal(size=(n, width))
    for row in out:
        for start in range(0, width, k):
            top = rng.normal() + 3
            tied = rng.choice(k, size=rng.integers(2, k + 1), replace=False)
            row[start + tied] = top
    return out


def rows_and_cotangents(g: VectorActivation, seed: int, groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``groups`` of g's groups (``rows``) and a cotangent v for g's output, from ``seed``."""
    rng = np.random.default_rng(seed)
    z = rows(g, rng, groups * g.group)
    return z, rng.normal(size=(z.shape[0], g.width(z.shape[1])))


def gate_scale(z, v, g):
    """The sizes J_gᵀv's halves are computed from: |v| on the value half, |v|·|u|·(1 + |s|·…) on
    the gate half; the σ′ inside SiLU and σ is rounded by JAX as for ``SCALES``."""
    m = z.shape[-1] // 2
    u, s = z[..., :m], z[..., m:]
    rounding = 1 + np.abs(s) * _sigma_prime_error(s) if g.name in ("glu", "swiglu") else 1 + 0 * s
    return np.concatenate([np.abs(v), np.abs(v) * np.abs(u) * rounding], axis=-1) + 1


def vjp_scale(g, z, v):
    return gate_scale(z, v, g) if g.group == 2 and not g.name.startswith("maxout") else 1.0


def autodiff_vjp(g: VectorActivation, z, v):
    return plain.vjp(g, z, v)  # the reference's J_gᵀv: jax.vjp of g's forward, compiled per shape


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vjp_equals_autodiff(name, seed):
    g = VECTOR_ACTIVATIONS[name]
    z, v = rows_and_cotangents(g, seed, 4)
    hand = g.vjp(z, v, np)
    assert hand.shape == z.shape and g.forward(z, np).shape == v.shape
    assert_agree(hand, autodiff_vjp(g, z, v), f"{name} Jᵀv", vjp_scale(g, z, v), z)


@pytest.mark.parametrize("name", [n for n in VECTOR_NAMES if not n.startswith("maxout")])
def test_glu_forwards_gate_the_second_half_as_jax_nn_glu(name):
    g = VECTOR_ACTIVATIONS[name]
    z = rows(g, np.random.default_rng(4), 8)
    u, s = z[:, :4], z[:, 4:]
    with jax.enable_x64(True):
        expected = np.asarray(_jitted(jax.nn.glu)(z) if name == "glu" else u * _jitted(JAX_GATES[name])(jnp.asarray(s)))
        for xp in (np, jnp):
            forward = (lambda x: g.forward(x, np)) if xp is np else jax.jit(lambda x: g.forward(x, jnp))
            assert_agree(np.asarray(forward(z)), expected, name, np.abs(u) + 1)


@pytest.mark.parametrize(
    "k, z, expected",
    [
        # [3, 3 | 1, 2] and [0, −0 | 7, 6]: 0.0 == −0.0, so those two tie as well
        (2, [[3.0, 3.0, 1.0, 2.0], [0.0, -0.0, 7.0, 6.0]], [[3.0, 3.0, 0.0, -3.0], [0.75, 0.75, 2.0, 0.0]]),
        # [3, 3, 3 | 1, 4, 4] and [0, −0, −1 | 2, 9, 2]: a tie below the maximum (2, 2) takes nothing
        (
            3,
            [[3.0, 3.0, 3.0, 1.0, 4.0, 4.0], [0.0, -0.0, -1.0, 2.0, 9.0, 2.0]],
            [[2.0, 2.0, 2.0, 0.0, -1.5, -1.5], [0.75, 0.75, 0.0, 0.0, 2.0, 0.0]],
        ),
    ],
)
def test_maxout_forward_and_equal_split_at_ties(k, z, expected):
    g = VECTOR_ACTIVATIONS[f"maxout{k}"]
    z = np.array(z)
    v = np.array([[6.0, -3.0], [1.5, 2.0]])
    assert np.array_equal(g.forward(z, np), np.max(z.reshape(2, 2, k), axis=-1))
    assert g.vjp(z, v, np).tolist() == expected
    assert autodiff_vjp(g, z, v).tolist() == expected  # jax.grad of jnp.max splits ties equally


@pytest.mark.parametrize("name", VECTOR_NAMES)
@pytest.mark.parametrize("xp", [np, jnp], ids=["numpy", "jax.numpy"])
def test_vector_float32_stays_float32(name, xp):
    g = VECTOR_ACTIVATIONS[name]
    z, v = (x.astype(np.float32) for x in rows_and_cotangents(g, 6, 2))
    with jax.enable_x64(True):
        a, back = types_of(lambda z, v: (g.forward(z, xp), g.vjp(z, v, xp)), xp, z, v)
    assert a.dtype == back.dtype == np.float32 and a.shape == v.shape and back.shape == z.shape


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_finite_and_quiet_up_to_1e3(name):
    g = VECTOR_ACTIVATIONS[name]
    z, v = rows_and_cotangents(g, 8, 2)
    for dtype in (np.float64, np.float32):
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            outputs = [g.forward(z.astype(dtype), np), g.vjp(z.astype(dtype), v.astype(dtype), np)]
        assert all(np.all(np.isfinite(out)) for out in outputs)


# --- vector activations: negative controls ------------------------------------------------------


def _first_half_gating(g: VectorActivation) -> VectorActivation:
    """The same gate on the FIRST half, consistent with itself (forward and vjp both swapped)."""

    def swap(x):
        m = x.shape[-1] // 2
        return np.concatenate([x[..., m:], x[..., :m]], axis=-1)

    return VectorActivation(
        g.name + "_swapped",
        lambda z, xp: g.forward(swap(z), xp),
        lambda z, v, xp: swap(g.vjp(swap(z), v, xp)),
        group=2,
        shrink=2,
    )


@pytest.mark.parametrize("name", [n for n in VECTOR_NAMES if not n.startswith("maxout")])
def test_control_glu_with_halves_swapped_is_rejected(name):
    g = VECTOR_ACTIVATIONS[name]
    rng = np.random.default_rng(2)
    z = rng.normal(size=(20, 8))
    v = rng.normal(size=(20, 4))
    swapped = _first_half_gating(g)
    expected = autodiff_vjp(g, z, v)
    assert agrees(g.vjp(z, v, np), expected, vjp_scale(g, z, v))
    assert not agrees(swapped.vjp(z, v, np), expected, vjp_scale(g, z, v))
    # and its forward is not jax.nn.glu's
    with jax.enable_x64(True):
        u, s = z[:, :4], z[:, 4:]
        reference = np.asarray(u * _jitted(JAX_GATES[name])(jnp.asarray(s)))
    assert agrees(g.forward(z, np), reference, np.abs(u) + 1)
    assert not agrees(swapped.forward(z, np), reference, np.abs(u) + 1)


def _one_hot_maxout(k: int) -> VectorActivation:
    """Maxout whose vjp sends each group's cotangent to its first maximum (argmax), as a hand
    derivation easily might: right without ties, wrong at every tie."""

    def vjp(z, v, xp):
        grouped = z.reshape(z.shape[:-1] + (-1, k))
        one_hot = np.eye(k)[np.argmax(grouped, axis=-1)]
        return (one_hot * v[..., None]).reshape(z.shape)

    return VectorActivation(f"maxout{k}_one_hot", maxout(k).forward, vjp, group=k, shrink=k)


@pytest.mark.parametrize("k", [2, 3])
def test_control_maxout_one_hot_at_ties_is_rejected(k):
    rng = np.random.default_rng(k)
    g, wrong = VECTOR_ACTIVATIONS[f"maxout{k}"], _one_hot_maxout(k)
    untied = rng.normal(size=(30, 4 * k))
    tied = tie_rows(k, 4 * k, rng, 10)
    for z in (untied, tied):
        v = rng.normal(size=(z.shape[0], 4))
        assert agrees(g.vjp(z, v, np), autodiff_vjp(g, z, v))
    v = rng.normal(size=(30, 4))
    assert agrees(wrong.vjp(untied, v, np), autodiff_vjp(g, untied, v))  # ties are what it gets wrong
    v = rng.normal(size=(10, 4))
    assert not agrees(wrong.vjp(tied, v, np), autodiff_vjp(g, tied, v))


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_control_vjp_off_by_1e_6_is_rejected(name):
    g = VECTOR_ACTIVATIONS[name]
    z, v = rows_and_cotangents(g, 3, 4)
    expected, scale = autodiff_vjp(g, z, v), vjp_scale(g, z, v)
    assert agrees(g.vjp(z, v, np), expected, scale)
    assert not agrees(off_by_relative(g.vjp(z, v, np)), expected, scale)


def test_control_reglu_with_relu_prime_one_at_zero_is_rejected():
    """ReGLU whose gate derivative is 1 at s = 0 (the other valid subgradient) disagrees with
    jax.grad exactly where the gate input is 0."""
    g = VECTOR_ACTIVATIONS["reglu"]
    z = np.array([[2.0, -3.0, 0.0, 1.0], [1.5, 4.0, -0.0, 0.0]])
    v = np.array([[1.0, 1.0], [2.0, -1.0]])
    u, s = z[:, :2], z[:, 2:]
    wrong = np.concatenate([v * np.maximum(s, 0), v * u * (s >= 0)], axis=-1)
    expected = autodiff_vjp(g, z, v)
    assert agrees(g.vjp(z, v, np), expected)
    assert disagreement(wrong, expected).tolist() == [[False, False, True, False], [False, False, True, True]]
