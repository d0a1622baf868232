"""``reference.conv_fast`` (one compiled program for many convolutional architectures) against
``reference.layers`` (one program per architecture): the same z, a, δ and parameter gradients
on random networks of ``layer_strategies.layer_cases``, to within float64 rounding; beside it,
two deliberately wrong padded programs that the same property must reject.

The tolerance is derived, not tuned. Both oracles evaluate the same expressions in float64;
the padded one adds exact zeros and multiplies by exact ones, so the two differ only by the
order in which the same terms are summed. Each is therefore within the running rounding-error
bound of the exact values, and the suite already computes that bound for a float64 evaluation
of these equations against autodiff: ``layer_compare.layer_bounds`` (δ and gradients, its
``allowed``, which counts both computations' rounding and autodiff's noise in g′) and, for z
and a, the forward half of the same analysis (``forward_allowed``). Where rounding alone may
change a derivative (a z beside a kink, a max-pooling window whose first maximum moved), the
example is set aside (``layer_compare.in_doubt``), never failed.

Every example is judged with the largest standard template, which holds every network
``layer_cases()`` draws: one compilation (about 10 s; a later process reads the traced program
back, ``reference.stored``, and its compiled form from JAX's cache), then about a millisecond a
network. The same template is the conv layer properties' oracle (``layer_compare.autodiff``).
"""

from __future__ import annotations

from collections.abc import Callable
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings

from manual import CATALOGUE, MSE, Activation, VectorActivation
from manual.conv import Conv2D
from manual.layers import Dense, Layer, LayerGradients, init_layer_network, kind_of
from manual.pooling import Flatten, MaxPool2D
from property_tests.banks.controls import rejects
from property_tests.library import layer_compare as lc
from property_tests.library import profiles
from property_tests.library import tolerances as tol
from property_tests.library.compare import Comparison, judge
from property_tests.library.layer_bounds import forward_bound, forward_terms
from property_tests.library.layer_strategies import LayerCase, layer_cases
from reference import conv_fast
from reference.layers import LayerReference, layer_autodiff

TEMPLATE = lc.TEMPLATE
"""The largest standard template, the one ``layer_compare.autodiff`` takes as the conv
properties' oracle: it holds every network of ``layer_cases()``."""

BUDGET = profiles.fewer(1 / 3, 3)
"""A third of the profile's examples: each compiles the plain reference for its architecture."""

FastReference = Callable[[LayerCase], LayerReference]


def fast_reference(case: LayerCase) -> LayerReference:
    return conv_fast.layer_autodiff(case.network, case.x, case.y, loss=case.loss, template=TEMPLATE)


def forward_allowed(case: LayerCase, ref: LayerReference) -> tuple[list, list]:
    """|fast − plain| allowed for every z⁽ᵏ⁾ and a⁽ᵏ⁾: the forward half of
    ``layer_compare.layer_bounds``. A linear layer's z is off by at most its number of terms
    times u times the same layer on absolute values, plus its inputs' errors carried through
    it; max pooling and flatten select and move (no rounding of their own); g adds
    ``ELEMENTARY_ULPS``·u of its terms and carries the error of z with its slope scale. One
    unit is worth ``tolerances.scale(float64)`` = 2u: both programs round."""
    net, f64 = case.network, np.dtype(np.float64)
    A, EA = np.abs(ref.a[0]), np.zeros_like(ref.a[0])
    z_allowed, a_allowed = [None], [None]
    for k in range(1, net.depth + 1):
        layer = net.layers[k]
        Z, EZ = forward_bound(layer, net.params[k], A, EA, ref.a[k - 1])
        if isinstance(net.g[k], VectorActivation):  # softmax: |Δaᵢ| = aᵢ|Δzᵢ − Σⱼ aⱼΔzⱼ| ≤ 2 max Δz
            z, a = ref.z[k], ref.a[k]
            conditioning = tol.ELEMENTARY_ULPS * (1 + np.abs(z) + np.max(np.abs(z), axis=-1, keepdims=True))
            A, EA = np.abs(a), (conditioning + z.shape[-1]) * np.abs(a) + 2 * np.max(EZ, axis=-1, keepdims=True)
        else:
            A, EA, _, _ = lc.activation_sizes(net.g[k], ref.z[k], ref.a[k], Z, EZ)
        terms = forward_terms(layer, net.params[k]) + 1
        z_allowed.append(tol.scale(f64) * EZ + tol.floor(f64, terms))
        a_allowed.append(tol.scale(f64) * EA + tol.floor(f64, terms))
    return z_allowed, a_allowed


def _label(case: LayerCase, k: int) -> str:
    g = case.network.g[k]
    return kind_of(case.network.layers[k]) + ("" if g is None else f"→{g.name}")


def _require(comparisons: list[Comparison], case: LayerCase) -> None:
    bad = lc.failures(comparisons)
    assert not bad, "; ".join(c.describe() for c in bad[:3]) + f"; {case.describe()}"


def fast_equals_plain(case: LayerCase, fast: FastReference = fast_reference) -> None:
    """The padded program's z, a, δ and parameter gradients equal the plain program's, each
    within its rounding bound (module docstring). The forward values are always compared (g
    and the maximum are continuous); the derivatives only where rounding cannot have moved a z
    across a kink or a window's first maximum elsewhere."""
    plain = layer_autodiff(case.network, case.x, case.y, loss=case.loss)
    quick = fast(case)
    z_allowed, a_allowed = forward_allowed(case, plain)
    _require(
        [
            judge(f"fast {name}", k, _label(case, k), got, want, np.abs(want), allowed)
            for k in range(1, case.network.depth + 1)
            for name, got, want, allowed in (
                ("z", quick.z[k], plain.z[k], z_allowed[k]),
                ("a", quick.a[k], plain.a[k], a_allowed[k]),
            )
        ],
        case,
    )
    assume(lc.in_doubt(case, plain, quick.z, quick.a) is None)
    grads = LayerGradients(delta=quick.delta, params=quick.params)
    _require(lc.end_to_end(case, plain, lc.layer_bounds(case, plain), grads), case)


@BUDGET
@given(layer_cases())
def test_fast_conv_reference_equals_plain(case):
    fast_equals_plain(case)


# --- negative controls: the same property against deliberately wrong padded programs ---------


_EMBED_KERNEL, _TAP_ROWS = conv_fast.embed_kernel, conv_fast.tap_rows


def _flipped_kernel(W: np.ndarray, template: conv_fast.Template) -> np.ndarray:
    """A wrong padding: the kernel embedded turned by 180° (a convolution, not a correlation)."""
    return _EMBED_KERNEL(W[:, :, ::-1, ::-1], template)


def _shifted_taps(size, out, taps, stride, padding, dilation, template_taps, side):
    """A wrong gather: every window read one row (and column) further on, s·i + d·u − p + 1."""
    return _TAP_ROWS(size, out, taps, stride, padding - 1, dilation, template_taps, side)


def _with(name: str, wrong) -> FastReference:
    """``fast_reference`` with one of ``conv_fast``'s padding functions (host-side NumPy, so
    the compiled program is the same one) swapped for ``wrong``."""

    def reference(case: LayerCase) -> LayerReference:
        with mock.patch.object(conv_fast, name, wrong):
            return fast_reference(case)

    return reference


def test_fast_conv_property_rejects_a_flipped_kernel():
    assert rejects(fast_equals_plain, layer_cases(), fast=_with("embed_kernel", _flipped_kernel))


def test_fast_conv_property_rejects_windows_read_off_by_one():
    assert rejects(fast_equals_plain, layer_cases(), fast=_with("tap_rows", _shifted_taps))


# --- what the template holds ------------------------------------------------------------------


@settings(max_examples=200)
@given(layer_cases())
def test_the_largest_standard_template_holds_every_drawn_network(case):
    conv_fast.check_fits(case.network, case.n, case.loss, TEMPLATE)


@settings(max_examples=100)
@given(layer_cases(ties=True))
def test_a_three_block_template_holds_every_tied_network(case):
    conv_fast.check_fits(case.network, case.n, case.loss, conv_fast.Template(blocks=3, side=26))


def _three_blocks() -> tuple:
    tanh, rng = CATALOGUE["tanh"], np.random.default_rng(0)
    stack: list[tuple[Layer, Activation | None]] = [
        (Conv2D(1, 2, (3, 3), padding=(1, 1)), tanh),
        (MaxPool2D((2, 2), (2, 2)), None),
        (Conv2D(2, 2, (1, 1)), tanh),
        (Conv2D(2, 2, (1, 1)), tanh),
        (Flatten(), None),
        (Dense(2), None),
    ]
    net = init_layer_network((1, 6, 6), stack, rng)
    return net, rng.uniform(-1, 1, (2, 1, 6, 6)), rng.uniform(-1, 1, (2, 2))


def test_a_network_the_template_cannot_hold_is_refused_in_one_sentence():
    net, x, y = _three_blocks()
    with pytest.raises(ValueError) as refusal:
        conv_fast.layer_autodiff(net, x, y, loss=MSE)
    message = str(refusal.value)
    assert message == "the template holds at most 2 convolution blocks, but this network has 3"
    assert "\n" not in message and ". " not in message
