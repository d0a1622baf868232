"""Layer networks checked with no autodiff at all: central differences of E against the hand
gradients, the dense path of ``manual.layers`` against the essay's ``manual.backprop``, and
the refusals of networks and batches that do not fit. Each property beside a control.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import manual
from manual.conv import Conv2D
from manual.layers import (
    Dense,
    LayerNetwork,
    init_layer_network,
    kind_of,
    layer_forward,
    layer_gradients,
)
from manual.norms import BatchNorm, LayerNorm, RMSNorm
from manual.pooling import Flatten, MaxPool2D
from manual.residual import Residual
from property_tests.banks.controls import rejects
from property_tests.banks.layer_controls import CONTROLS, NORM_CONTROLS, unchanged, with_mistake
from property_tests.library import profiles
from property_tests.library import tolerances as tol
from property_tests.library.layer_bounds import absolute, backward_bound, forward_bound
from property_tests.library.layer_strategies import LayerCase, layer_cases, mixed_layer_cases
from property_tests.library.strategies import unit_arrays


def mean_error(case: LayerCase, params: tuple) -> float:
    """E = (1/n) Σₜ Eₜ for the case's batch, with the given parameters."""
    net = LayerNetwork(case.network.in_shape, case.network.layers, params, case.network.g)
    fwd = layer_forward(net, case.x)
    g_L = net.g[-1]
    if g_L is not None and case.loss.fuses(g_L):
        fused_error = case.loss.fused_error
        assert fused_error is not None, f"{case.loss.name} fuses with {g_L.name} but has no fused error"
        return float(np.mean(fused_error(fwd.z[-1], case.y, np)))
    return float(np.mean(case.loss.error(fwd.a[-1], case.y, np)))


def error_rounding(case: LayerCase) -> float:
    """E's rounding bound in units of u, JAX-free: the forward half of ``layer_compare``'s
    analysis (``layer_bounds.forward_bound``) with the hand g′ as each activation's slope, then
    ∂E/∂a (or ∂E/∂z after a fused softmax) times the output's bound, and the loss's own terms."""
    net = case.network
    fwd = layer_forward(net, case.x)
    A, EA, EZ = np.abs(case.x), np.zeros(case.x.shape), None
    for k in range(1, net.depth + 1):
        layer = net.layers[k]
        if isinstance(layer, Residual):  # its inner g's slope by hand, not autodiff's profile
            Z, EZ = residual_forward_bound(layer, net.params[k], A, EA, fwd.a[k - 1])
        else:
            Z, EZ = forward_bound(layer, net.params[k], A, EA, fwd.a[k - 1])
        if net.g[k] is None:
            A, EA = Z, EZ
        elif k < net.depth or not isinstance(net.g[k], manual.VectorActivation):
            f = np.abs(net.g[k].derivative(fwd.z[k], np))
            A = np.abs(fwd.a[k]) + f * np.abs(fwd.z[k])
            EA = tol.ELEMENTARY_ULPS * A + f * EZ
    z_L, a_L, m = fwd.z[-1], fwd.a[-1], net.output_width
    if net.g[-1] is not None and case.loss.fuses(net.g[-1]):
        slope, size = np.abs(fwd.a[-1] - case.y), np.abs(z_L) + 1
        return float(np.mean(np.sum(slope * EZ, axis=1)) + tol.ELEMENTARY_ULPS * (m + 2) * np.max(size))
    slope = np.abs(case.loss.gradient(a_L, case.y, np))
    terms = np.abs(case.loss.error(a_L, case.y, np)) + np.sum(np.abs(a_L) + np.abs(case.y), axis=1) ** 2 / m
    return float(np.mean(np.sum(slope * EA, axis=1)) + (m + 2) * np.max(terms))


def residual_forward_bound(layer: Residual, params: dict, A: np.ndarray, EA: np.ndarray, a: np.ndarray):
    """(Z, EZ) of a residual block, as ``layer_bounds`` has it, with g′ by hand as the slope."""
    theta, P = params["theta"], absolute(params)
    u = a @ theta.T + params["b"]
    U = A @ P["theta"].T + P["b"]
    EU = (theta.shape[1] + 1) * U + EA @ P["theta"].T
    f = np.abs(layer.g.derivative(u, np))
    H = np.abs(layer.g.forward(u, np)) + f * np.abs(u)
    return A + H, EA + tol.ELEMENTARY_ULPS * H + f * EU + A + H


def central_difference(case: LayerCase, k: int, name: str, index: tuple, h: float) -> float:
    """(E(p + h) − E(p − h)) / (the step actually taken) along one parameter entry."""
    values = []
    for sign in (1, -1):
        params = [None] + [dict(p) for p in case.network.params[1:]]
        layer_params = params[k]
        assert layer_params is not None, f"layer {k} has no parameters"
        moved = layer_params[name].copy()
        moved[index] += sign * h
        layer_params[name] = moved
        values.append((mean_error(case, tuple(params)), moved[index]))
    (up, at_up), (down, at_down) = values
    return (up - down) / (at_up - at_down)


def differences_agree(case_and_entries) -> None:
    """Every drawn entry's hand ∂E/∂p within the central difference's own error bound."""
    case, entries = case_and_entries
    grads = layer_gradients(case.network, case.x, case.y, loss=case.loss)
    rounding = error_rounding(case)
    for k, name, index in entries:
        h = tol.finite_difference_step() * max(1.0, abs(float(case.network.params[k][name][index])))
        d_h, d_2h = central_difference(case, k, name, index, h), central_difference(case, k, name, index, 2 * h)
        allowed = tol.finite_difference_tolerance(np.float64(d_h), np.float64(d_2h), rounding, h)
        hand = grads.params[k][name][index]
        assert abs(hand - d_h) <= allowed, (
            f"∂E/∂{name}{index} of layer {k}: by hand {hand:.17g}, central "
            f"difference {d_h:.17g}, allowed {allowed:.3g}; {case.describe()}"
        )


def cases_and_entries(cases: st.SearchStrategy[LayerCase] | None = None) -> st.SearchStrategy:
    """A float64 case and one entry of every parameter of every layer."""

    @st.composite
    def draw(draw_):
        case = draw_(cases if cases is not None else layer_cases())
        entries = []
        for k, params in enumerate(case.network.params[1:], start=1):
            for name, value in params.items():
                entries.append((k, name, tuple(draw_(st.integers(0, s - 1)) for s in value.shape)))
        return case, entries

    return draw()


@profiles.fewer(1 / 2, 10)
@given(cases_and_entries())
def test_central_differences_agree(case_and_entries):
    differences_agree(case_and_entries)


@pytest.mark.parametrize(
    "mistake",
    ["kernel not rotated", "channels transposed in ∂E/∂W", "average pooling without 1/window", "dense Θ misread"],
)
def test_central_differences_reject_the_classic_mistakes(mistake):
    kind, wrong = CONTROLS[mistake]
    assert rejects(differences_agree, cases_and_entries(with_mistake(layer_cases(), kind, wrong)))


@profiles.fewer(1 / 2, 10)
@given(cases_and_entries(mixed_layer_cases()))
def test_central_differences_agree_through_norms_and_residual_blocks(case_and_entries):
    differences_agree(case_and_entries)


@pytest.mark.parametrize(
    "mistake",
    [
        "BatchNorm's statistics treated as constants",
        "LayerNorm without the path through σ",
        "residual block without the skip path",
    ],
)
def test_central_differences_reject_the_norm_mistakes(mistake):
    kind, wrong = NORM_CONTROLS[mistake]
    assert rejects(differences_agree, cases_and_entries(with_mistake(mixed_layer_cases(), kind, wrong)))


# --- BatchNorm: the compact backward is the graph's ---------------------------------------------


def graph_equals_compact(case: LayerCase, layer_class=BatchNorm) -> None:
    """BatchNorm's one-line ∂/∂x equals the node-by-node one, to the rounding of their sums."""
    rng = np.random.default_rng(case.n)
    x = case.x.reshape(case.n, -1)
    m = x.shape[1]
    params = {"gamma": rng.uniform(0.5, 1.5, m), "beta": rng.uniform(-1, 1, m)}
    delta = rng.uniform(-1, 1, x.shape)
    layer = layer_class()
    compact, graph = layer.input_delta(delta, x, params), BatchNorm.input_delta_graph(layer, delta, x, params)
    size = backward_bound(BatchNorm(), params, np.abs(delta), 0 * delta, 0 * delta, x, np.abs(x), 0 * x)[0]
    allowed = 2 * tol.scale(np.float64) * (case.n + 6) * size
    assert np.all(np.abs(compact - graph) <= allowed), f"largest difference {np.max(np.abs(compact - graph)):.3g}"


@given(mixed_layer_cases(conv_front=False).filter(lambda c: c.n >= 2))
def test_batch_norm_compact_equals_graph(case):
    graph_equals_compact(case)


def test_batch_norm_graph_rejects_constant_statistics():
    from property_tests.banks.layer_controls import BatchStatisticsAsConstants

    assert rejects(
        graph_equals_compact,
        mixed_layer_cases(conv_front=False).filter(lambda c: c.n >= 2),
        layer_class=BatchStatisticsAsConstants,
    )


def test_batch_norm_refuses_one_example_in_one_sentence():
    with pytest.raises(ValueError, match="at least 2 examples") as raised:
        BatchNorm().forward(np.ones((1, 3)), {"gamma": np.ones(3), "beta": np.zeros(3)})
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Residual(3, manual.CATALOGUE["tanh"]).out_shape((4,)), "skip path"),
        (lambda: Residual(3, manual.SOFTMAX), "elementwise"),  # type: ignore[arg-type]  # checks the refusal
        (lambda: LayerNorm().out_shape((2, 3, 3)), "Flatten"),
        (lambda: RMSNorm(eps=0.0), "eps"),
    ],
    ids=["residual-width", "residual-softmax", "norm-on-images", "eps"],
)
def test_norm_and_residual_misuse_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- the dense path of manual.layers is the essay's backprop -------------------------------------


@st.composite
def dense_pairs(draw):
    """The same dense network as a ``LayerNetwork`` of ``Dense`` layers and as a ``Network``."""
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    g = draw(
        st.lists(st.sampled_from(list(manual.CATALOGUE.values())), min_size=len(widths) - 1, max_size=len(widths) - 1)
    )
    n = draw(st.integers(1, 4))
    theta = [None] + [draw(unit_arrays((o, i))) for i, o in pairwise(widths)]
    b = [None] + [draw(unit_arrays((o,))) for o in widths[1:]]
    layers = LayerNetwork(
        (widths[0],),
        (None,) + tuple(Dense(o) for o in widths[1:]),
        (None,) + tuple({"theta": t, "b": v} for t, v in zip(theta[1:], b[1:], strict=True)),
        (None, *g),
    )
    return (
        layers,
        manual.Network(tuple(theta), tuple(b), (None, *g)),
        draw(unit_arrays((n, widths[0]))),
        draw(unit_arrays((n, widths[-1]))),
    )


def same_as_the_essay(pair, dense=Dense) -> None:
    layers, network, x, y = pair
    if dense is not Dense:
        layers = LayerNetwork(
            layers.in_shape, (None,) + tuple(dense(L.units) for L in layers.layers[1:]), layers.params, layers.g
        )
    by_layers, by_essay = layer_gradients(layers, x, y), manual.gradients(network, x, y)
    for k in range(1, network.depth + 1):
        delta, theta, b = by_essay.delta[k], by_essay.theta[k], by_essay.b[k]
        assert delta is not None and theta is not None and b is not None, f"the essay has no gradients at layer {k}"
        assert np.array_equal(by_layers.delta[k], delta), f"δ⁽{k}⁾ differs"
        assert np.array_equal(by_layers.params[k]["theta"], theta), f"∂E/∂Θ⁽{k}⁾ differs"
        assert np.array_equal(by_layers.params[k]["b"], b), f"∂E/∂b⁽{k}⁾ differs"


@given(dense_pairs())
def test_dense_layers_give_exactly_the_essays_gradients(pair):
    same_as_the_essay(pair)


def test_the_essay_comparison_rejects_a_misread_theta():
    assert rejects(
        same_as_the_essay, dense_pairs().filter(lambda p: p[1].depth > 1), dense=CONTROLS["dense Θ misread"][1]
    )


# --- refusals ------------------------------------------------------------------------------------


def _small(rng=None):
    rng = rng or np.random.default_rng(0)
    stack = [
        (Conv2D(1, 2, (3, 3)), manual.CATALOGUE["tanh"]),
        (MaxPool2D((2, 2)), None),
        (Flatten(), None),
        (Dense(2), None),
    ]
    return init_layer_network((1, 5, 5), stack, rng)


def _with_first(n: LayerNetwork, **params) -> LayerNetwork:
    """n with layer 1's parameters replaced by ``params``."""
    return LayerNetwork(n.in_shape, n.layers, (None, params) + n.params[2:], n.g)


def _dense_after_pooling(n: LayerNetwork) -> LayerNetwork:
    dense = {"theta": np.ones((2, 4)), "b": np.ones(2)}
    return LayerNetwork(n.in_shape, n.layers[:3] + (Dense(2),), n.params[:3] + (dense,), n.g[:3] + (None,))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda n: LayerNetwork(n.in_shape, n.layers[:3], n.params[:3], n.g[:3]), "last layer must give one row"),
        (lambda n: LayerNetwork((2, 5, 5), n.layers, n.params, n.g), "channels"),
        (lambda n: _with_first(n, W=n.params[1]["W"]), "needs the parameters"),
        (lambda n: _with_first(n, W=n.params[1]["W"][:1], b=n.params[1]["b"]), "shape"),
        (lambda n: _with_first(n, W=n.params[1]["W"] * np.nan, b=n.params[1]["b"]), "NaN"),
        (_dense_after_pooling, "Flatten"),
    ],
    ids=["no-row-out", "channels", "missing-parameter", "wrong-shape", "nan", "dense-on-images"],
)
def test_a_network_that_does_not_fit_is_refused_in_one_sentence(change, message):
    with pytest.raises(ValueError, match=message) as raised:
        change(_small())
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "x, y, message",
    [
        (np.zeros((2, 1, 4, 5)), np.zeros((2, 2)), "shape"),
        (np.full((2, 1, 5, 5), np.nan), np.zeros((2, 2)), "NaN"),
        (np.zeros((2, 1, 5, 5), np.float32), np.zeros((2, 2)), "float32"),
        (np.zeros((2, 1, 5, 5)), np.zeros((2, 3)), "y must be"),
        (np.zeros((2, 1, 5, 5)), np.full((2, 2), np.inf), "y contains"),
    ],
)
def test_a_batch_that_does_not_fit_is_refused_in_one_sentence(x, y, message):
    with pytest.raises(ValueError, match=message):
        layer_gradients(_small(), x, y)


@pytest.mark.parametrize("name", list(manual.LAYER_KINDS))
def test_a_subclass_is_of_its_nearest_registered_kind(name):
    # BatchNorm derives from LayerNorm: a subclass of it is batch_norm, found through its own
    # class first (a first-registered-match lookup said layer_norm).
    assert kind_of(object.__new__(unchanged(name))) == name
