"""Layer networks by hand against autodiff, equation by equation and end to end.

The tolerances are the dense suite's running rounding-error analysis (``compare``,
``tolerances``), carried through each layer by the layer's own operations on absolute values:
a convolution, a dense or an average-pooling layer is linear, so the size of the terms of its
z is the same layer applied to the sizes of its inputs with |W| and |b|, and its rounding adds
(terms + 1) times that; its ``input_delta`` on absolute values does the same for equation (2).
Max pooling selects one input per window, so it adds no rounding and its error is at most the
largest error in the window; flatten moves numbers without changing them.

Where rounding alone legitimately changes a derivative, the end-to-end comparison is not made
(``in_doubt`` says why): a z on the other side of an activation's kink by hand than in
autodiff, or a pooling window whose maximum is another element by hand than in autodiff.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from manual import CATALOGUE
from manual.layers import (
    LayerGradients,
    delta_through,
    kind_of,
    last_delta,
    layer_backward,
    layer_forward,
)
from manual.pooling import MaxPool2D
from property_tests.library import tolerances as tol
from property_tests.library.compare import KINK_ULPS, Comparison, by_hand, judge, output_layer, scales
from property_tests.library.layer_bounds import (
    backward_bound,
    backward_terms,
    forward_bound,
    gradient_bounds,
    gradient_terms,
)
from property_tests.library.layer_strategies import LayerCase
from reference import conv_fast
from reference.layers import LayerReference, layer_autodiff

IDENTITY = CATALOGUE["identity"]


@dataclass
class LayerBounds:
    """For every δ⁽ᵏ⁾ and parameter gradient: the size of its terms M, its running rounding
    error E (units of u) and autodiff's noise N, keyed ("delta", k) and ("param", k, name)."""

    M: dict
    E: dict
    N: dict

    def allowed(self, key: tuple, dtype: np.dtype, terms: int) -> np.ndarray:
        return tol.scale(dtype) * self.E[key] + tol.NOISE_SAFETY * self.N[key] + tol.floor(dtype, terms)


def _output_case(case: LayerCase):
    """What ``compare.output_layer`` reads of a dense case, for a layer network's last layer."""
    net, L = case.network, case.network.depth
    g = (None,) * L + (net.g[L] or IDENTITY,)
    network = SimpleNamespace(g=g, depth=L, widths=(net.output_width,), p=(None,) * (L + 1))
    return SimpleNamespace(network=network, loss=case.loss, y=case.y, n=case.n)


def activation_sizes(g, z: np.ndarray, a: np.ndarray, Z: np.ndarray, EZ: np.ndarray):
    """A, EA, f, η after an elementwise g (or none)."""
    if g is None:
        return Z, EZ, None, None
    f, eta = scales(g, z)
    A = np.abs(a) + f * np.abs(z)
    return A, tol.ELEMENTARY_ULPS * A + f * EZ, f, eta


def layer_bounds(case: LayerCase, ref: LayerReference) -> LayerBounds:
    """The running error analysis of forward, (1), (2) and (3), on autodiff's values (float64),
    each layer kind's part from ``layer_bounds``."""
    net, L = case.network, case.network.depth
    A, EA = [np.abs(ref.a[0])], [np.zeros_like(ref.a[0])]
    EZ: list = [None]  # index 0, the input, has no z; f and η are None too where a layer has no g
    f: list = [None]
    eta: list = [None]
    for k in range(1, L + 1):
        Z, EZ_k = forward_bound(net.layers[k], net.params[k], A[k - 1], EA[k - 1], ref.a[k - 1])
        EZ.append(EZ_k)
        A_k, EA_k, f_k, eta_k = activation_sizes(net.g[k], ref.z[k], ref.a[k], Z, EZ_k)
        for column, value in ((A, A_k), (EA, EA_k), (f, f_k), (eta, eta_k)):
            column.append(value)
    M: dict[tuple, np.ndarray] = {}
    E: dict[tuple, np.ndarray] = {}
    N: dict[tuple, np.ndarray] = {}
    M["delta", L], E["delta", L], N["delta", L] = output_layer(_output_case(case), ref, EA[L], EZ[L])
    for k in range(L - 1, 0, -1):
        M_back, E_back, N_back = backward_bound(
            net.layers[k + 1],
            net.params[k + 1],
            M["delta", k + 1],
            E["delta", k + 1],
            N["delta", k + 1],
            ref.a[k],
            A[k],
            EA[k],
        )
        if net.g[k] is None:
            M["delta", k], E["delta", k], N["delta", k] = M_back, E_back, N_back
            continue
        g_prime_error = tol.derivative_bound(f[k], ref.z[k]) + tol.SECOND_DERIVATIVE_RATIO * f[k] * EZ[k]
        M["delta", k] = M_back * f[k]
        E["delta", k] = E_back * f[k] + M_back * g_prime_error
        N["delta", k] = N_back * f[k] + M_back * eta[k]
    for k in range(1, L + 1):
        parts = gradient_bounds(
            net.layers[k], net.params[k], M["delta", k], E["delta", k], N["delta", k], ref.a[k - 1], A[k - 1], EA[k - 1]
        )
        for name, (Mp, Ep, Np) in parts.items():
            M["param", k, name], E["param", k, name], N["param", k, name] = Mp, Ep, Np
    return LayerBounds(M, E, N)


def _name(case: LayerCase, k: int) -> str:
    g = case.network.g[k]
    return kind_of(case.network.layers[k]) + ("" if g is None else f"→{g.name}")


def in_doubt(case: LayerCase, ref: LayerReference, z_manual: tuple, a_manual: tuple) -> str | None:
    """Where rounding alone may change a derivative between the two computations, say where:
    a z on the other side of an activation's kink (or, beside one, a different z: a forward may
    shift z before it meets the kink), or a max-pooling window whose first maximum is another
    element by hand than in autodiff. ``None`` when there is no such place."""
    net = case.network
    for k in range(1, net.depth + 1):
        layer, g = net.layers[k], net.g[k]
        if isinstance(layer, MaxPool2D):
            by_hand = _first_maxima(layer, a_manual[k - 1].astype(np.float64))
            if np.any(by_hand != _first_maxima(layer, ref.a[k - 1])):
                return f"a window of max pooling in layer {k} has its maximum elsewhere by hand than in autodiff"
        for kink in g.kinks if g is not None else ():
            z_m = z_manual[k].astype(np.float64)
            near = KINK_ULPS * np.spacing(np.asarray(max(abs(kink), 1.0), z_manual[k].dtype))
            flipped = np.sign(z_m - kink) != np.sign(ref.z[k] - kink)
            flipped |= (z_m != ref.z[k]) & (np.minimum(np.abs(z_m - kink), np.abs(ref.z[k] - kink)) <= near)
            if np.any(flipped):
                return (
                    f"a z of layer {k} lies on the other side of {g.name}'s kink at {kink:g} by hand than in autodiff"
                )
    return None


def _first_maxima(layer: MaxPool2D, a_prev: np.ndarray) -> np.ndarray:
    """The row-major index of each window's first maximum (the windows of ``MaxPool2D``'s own
    method: a doubt must not move with a subclass under test)."""
    windows = MaxPool2D.windows(layer, a_prev)
    return np.argmax(windows.reshape(*windows.shape[:4], -1), axis=-1)


def end_to_end(case: LayerCase, ref: LayerReference, bounds: LayerBounds, grads: LayerGradients) -> list[Comparison]:
    """Every δ⁽ᵏ⁾ and parameter gradient by hand (in the case's dtype, forward included)
    against ``jax.grad`` in float64, each within its running bound."""
    net, dtype, out = case.network, case.dtype, []
    for k in range(net.depth, 0, -1):
        terms = backward_terms(net.layers[k], net.params[k]) + 1
        out.append(
            judge(
                "(1)" if k == net.depth else "(2)",
                k,
                _name(case, k),
                grads.delta[k],
                ref.delta[k],
                bounds.M["delta", k],
                bounds.allowed(("delta", k), dtype, terms),
            )
        )
    for k in range(1, net.depth + 1):
        for name, r in ref.params[k].items():
            key = ("param", k, name)
            m = grads.params[k].get(name, np.full(np.shape(r), np.nan))
            out.append(
                judge(
                    f"(3) {name}",
                    k,
                    _name(case, k),
                    m,
                    r,
                    bounds.M[key],
                    bounds.allowed(key, dtype, gradient_terms(net.layers[k], ref.delta[k]) + 1),
                )
            )
    return out


def equation_by_equation(case: LayerCase, ref: LayerReference, backward=None) -> list[Comparison]:
    """Each equation on its own, on autodiff's inputs (float64): (1) on autodiff's z⁽ᴸ⁾ and
    a⁽ᴸ⁾; (2) at layer k on autodiff's δ⁽ᵏ⁺¹⁾, a⁽ᵏ⁾ and z⁽ᵏ⁾; (3) on autodiff's δ⁽ᵏ⁾ and
    a⁽ᵏ⁻¹⁾. Only the equation's own rounding counts. ``backward`` swaps in a wrong
    derivation's ``delta_through`` (a negative control)."""
    through = backward or delta_through
    net, L, f64 = case.network, case.network.depth, np.dtype(np.float64)
    params = {k: {name: v.astype(np.float64) for name, v in net.params[k].items()} for k in range(1, L + 1)}
    y = case.y.astype(np.float64)
    out = []
    M, E, N = output_layer(_output_case(case), ref)
    with by_hand():
        m = last_delta(net.g[L], ref.z[L], ref.a[L], y, case.loss)
    out.append(
        judge(
            "(1)",
            L,
            _name(case, L),
            m,
            ref.delta[L],
            M,
            tol.scale(f64) * E + tol.NOISE_SAFETY * N + tol.floor(f64, net.output_width),
        )
    )
    for k in range(L - 1, 0, -1):
        layer, g = net.layers[k + 1], net.g[k]
        with by_hand():
            m = through(layer, ref.delta[k + 1], ref.a[k], params[k + 1], ref.z[k], g)
        zero = np.zeros_like(ref.delta[k + 1])
        back, E_back, N_back = backward_bound(
            layer,
            params[k + 1],
            np.abs(ref.delta[k + 1]),
            zero,
            zero,
            ref.a[k],
            np.abs(ref.a[k]),
            np.zeros_like(ref.a[k]),
        )
        terms = backward_terms(layer, params[k + 1])
        if g is None:
            M, E, N = back, E_back, N_back
        else:
            f, eta = scales(g, ref.z[k])
            M, E, N = back * f, E_back * f + back * tol.derivative_bound(f, ref.z[k]), N_back * f + back * eta
        out.append(
            judge(
                "(2)",
                k,
                _name(case, k),
                m,
                ref.delta[k],
                M,
                tol.scale(f64) * E + tol.NOISE_SAFETY * N + tol.floor(f64, terms),
            )
        )
    for k in range(1, L + 1):
        layer = net.layers[k]
        with by_hand():
            m = layer.parameter_gradients(ref.delta[k], ref.a[k - 1], params[k])
        zero = np.zeros_like(ref.delta[k])
        parts = gradient_bounds(
            layer,
            params[k],
            np.abs(ref.delta[k]),
            zero,
            zero,
            ref.a[k - 1],
            np.abs(ref.a[k - 1]),
            np.zeros_like(ref.a[k - 1]),
        )
        count = gradient_terms(layer, ref.delta[k])
        for name, r in ref.params[k].items():
            M, E, N = parts[name]
            out.append(
                judge(
                    f"(3) {name}",
                    k,
                    _name(case, k),
                    m.get(name, np.full(np.shape(r), np.nan)),
                    r,
                    M,
                    tol.scale(f64) * E + tol.NOISE_SAFETY * N + tol.floor(f64, count),
                )
            )
    return out


def manual_pass(case: LayerCase) -> tuple:
    """The hand-derived forward and backward pass in the case's dtype: (z, a, gradients)."""
    with by_hand():
        fwd = layer_forward(case.network, case.x)
        return fwd.z, fwd.a, layer_backward(case.network, fwd.z, fwd.a, case.y, loss=case.loss)


def failures(comparisons: list[Comparison]) -> list[Comparison]:
    return [c for c in comparisons if not c.passed]


TEMPLATE = conv_fast.STANDARD[-1]
"""The largest standard template of ``reference.conv_fast``: it holds every network that
``layer_strategies.layer_cases()`` draws (``test_conv_fast``)."""


def autodiff(case: LayerCase) -> LayerReference:
    """``jax.grad``'s values for the case, in float64: from ``reference.conv_fast`` when its
    largest standard template holds the network (one program for every architecture, compiled
    once and read back in later runs), else from ``reference.layers`` (a program for each
    architecture, about half a second to compile). ``test_conv_fast`` shows that the two agree
    to within float64 rounding, as ``test_reference`` does for the dense oracles."""
    try:
        conv_fast.check_fits(case.network, case.n, case.loss, TEMPLATE)
    except ValueError:
        return layer_autodiff(case.network, case.x, case.y, loss=case.loss)
    return conv_fast.layer_autodiff(case.network, case.x, case.y, loss=case.loss, template=TEMPLATE)
