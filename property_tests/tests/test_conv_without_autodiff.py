"""The convolution layer checked without autodiff: the loop forms equal the vectorized forms,
central differences of Σ z·δ agree with (2) and (3), rows read by no window get no gradient,
and the layer refuses what does not fit. Like ``test_without_autodiff``, this module never
imports JAX, so mutation testing of ``manual/`` can run it quickly."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from manual.conv import Conv2D
from property_tests.banks.controls import rejects
from property_tests.library import tolerances as tol

# The same controls as test_conv.py imports: each file rejects every one with its own property.
from property_tests.library.conv_strategies import (
    ConvCase,
    bias_summed,
    channels_transposed,
    conv_cases,
    crop_off_by_one,
    kernel_flipped_forward,
    kernel_not_rotated,
    leftover,
    rounding_bound,
    stride_zeros_missing,
)


def _absolute(case: ConvCase) -> ConvCase:
    """The same case on absolute values: its sums are the magnitudes rounding is relative to."""
    return ConvCase(case.layer, abs(case.a_prev), {k: abs(v) for k, v in case.params.items()}, abs(case.delta))


def _terms(case: ConvCase) -> dict[str, int]:
    """How many products each sum adds up: z (with the bias), ∂Eₜ/∂a_prev, ∂E/∂W and ∂E/∂b."""
    n, (f, c, kh, kw), positions = case.n, case.params["W"].shape, case.delta[0, 0].size
    return {"z": c * kh * kw + 1, "a_prev": f * kh * kw, "W": n * positions, "b": n * positions}


def _close(what: str, got: np.ndarray, expected: np.ndarray, allowed: np.ndarray, case: ConvCase) -> None:
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}; {case.describe()}"
    assert got.dtype == expected.dtype == case.a_prev.dtype, f"{what}: {got.dtype}, {expected.dtype}"
    error = np.abs(got.astype(np.float64) - expected)
    assert np.all(error <= allowed), f"{what}: off by {np.max(error - allowed):.3g} past the bound; {case.describe()}"


# The loop forms, straight from the index formulas, equal the vectorized forms.


def loops_equal_vectorized(case: ConvCase, input_delta=Conv2D.input_delta, forward=Conv2D.forward) -> None:
    L, a, p, d = case.layer, case.a_prev, case.params, case.delta
    size, terms, dtype = _absolute(case), _terms(case), case.a_prev.dtype
    _close(
        "z",
        L.forward_loops(a, p),
        forward(L, a, p),
        rounding_bound(dtype, terms["z"], L.forward(size.a_prev, size.params)),
        case,
    )
    _close(
        "∂Eₜ/∂a_prev (2)",
        L.input_delta_loops(d, a, p),
        input_delta(L, d, a, p),
        rounding_bound(dtype, terms["a_prev"], L.input_delta(size.delta, size.a_prev, size.params)),
        case,
    )
    loops, vectorized = L.parameter_gradients_loops(d, a, p), L.parameter_gradients(d, a, p)
    sizes = L.parameter_gradients(size.delta, size.a_prev, size.params)
    for name in ("W", "b"):
        _close(f"∂E/∂{name} (3)", loops[name], vectorized[name], rounding_bound(dtype, terms[name], sizes[name]), case)


@given(st.sampled_from([np.float64, np.float32]).flatmap(lambda dtype: conv_cases(dtype=dtype)))
def test_loop_forms_equal_vectorized_forms(case):
    loops_equal_vectorized(case)


@pytest.mark.parametrize("wrong", [kernel_not_rotated, stride_zeros_missing, crop_off_by_one], ids=lambda f: f.__name__)
def test_loop_forms_reject_a_wrong_equation_2(wrong):
    assert rejects(loops_equal_vectorized, conv_cases(), input_delta=wrong)


def test_loop_forms_reject_a_true_convolution():
    assert rejects(loops_equal_vectorized, conv_cases(), forward=kernel_flipped_forward)


# Central differences of S = Σₜ Σ z·δ, an opinion independent of the derivation. S is linear in
# W, in b and in a_prev, so a central difference has no truncation error at any step: the step
# is large (1, the size of the drawn values) to keep the rounding, divided by the step, small.
# Its derivatives: ∂S/∂a_prev is (2)'s ∂Eₜ/∂a_prev, and ∂S/∂W, ∂S/∂b are n times (3)'s.

STEP = 1.0


def _surrogate(case: ConvCase, name: str, value: np.ndarray) -> float:
    a_prev = value if name == "a_prev" else case.a_prev
    params = {k: (value if k == name else v) for k, v in case.params.items()}
    return float(np.sum(case.layer.forward(a_prev, params) * case.delta))


def _array(case: ConvCase, name: str) -> np.ndarray:
    return case.a_prev if name == "a_prev" else case.params[name]


def central_difference(case: ConvCase, name: str, index: tuple) -> tuple[float, float, float]:
    """D(h), D(2h) of S along one entry of a_prev, W or b, each over the step actually taken."""
    array = _array(case, name)
    quotients = []
    for h in (STEP, 2 * STEP):
        up, down = array.copy(), array.copy()
        up[index] += h
        down[index] -= h
        quotients.append((_surrogate(case, name, up) - _surrogate(case, name, down)) / (up[index] - down[index]))
    return quotients[0], quotients[1], STEP


def surrogate_rounding(case: ConvCase, name: str, index: tuple) -> float:
    """S's rounding bound in units of u, at the farthest point the differences visit: the number
    of products in S (those of z, then the sum over every z·δ) times S on absolute values."""
    size = _absolute(case)
    moved = _array(size, name).copy()
    moved[index] += 2 * STEP
    magnitude = _surrogate(size, name, moved)
    return (_terms(case)["z"] + case.delta.size + 2) * magnitude


def differences_agree(
    case_and_entries, input_delta=Conv2D.input_delta, parameter_gradients=Conv2D.parameter_gradients
) -> None:
    case, entries = case_and_entries
    L, a, p, d, n = case.layer, case.a_prev, case.params, case.delta, case.n
    size, terms = _absolute(case), _terms(case)
    grads, sizes = parameter_gradients(L, d, a, p), L.parameter_gradients(size.delta, size.a_prev, size.params)
    by_hand = {
        "a_prev": (input_delta(L, d, a, p), L.input_delta(size.delta, size.a_prev, size.params)),
        "W": (n * grads["W"], n * sizes["W"]),
        "b": (n * grads["b"], n * sizes["b"]),
    }
    for name, index in entries:
        hand, magnitude = by_hand[name]
        assert hand.shape == _array(case, name).shape, f"∂S/∂{name}: shape {hand.shape}; {case.describe()}"
        d_h, d_2h, h = central_difference(case, name, index)
        allowed = tol.finite_difference_tolerance(
            np.float64(d_h), np.float64(d_2h), surrogate_rounding(case, name, index), h
        ) + rounding_bound(np.float64, terms[name], magnitude[index])
        assert abs(hand[index] - d_h) <= allowed, (
            f"∂S/∂{name}{index}: by hand {hand[index]:.17g}, central "
            f"difference {d_h:.17g}, allowed {allowed:.3g}; {case.describe()}"
        )


@st.composite
def cases_and_entries(draw, **kwargs):
    """A float64 case and a few entries to difference: two of a_prev, two of W, one of b."""
    case = draw(conv_cases(**kwargs))

    def entry(name):
        return name, tuple(draw(st.integers(0, s - 1)) for s in _array(case, name).shape)

    return case, [entry("a_prev"), entry("a_prev"), entry("W"), entry("W"), entry("b")]


# Same shape as test_conv.py's tests of (2) and (3): there autodiff judges, here central differences,
# each property beside the same negative controls, stated where it is tested.
@given(cases_and_entries())
def test_central_differences_agree(case_and_entries):
    differences_agree(case_and_entries)


@pytest.mark.parametrize("wrong", [kernel_not_rotated, stride_zeros_missing, crop_off_by_one], ids=lambda f: f.__name__)
def test_central_differences_reject_a_wrong_equation_2(wrong):
    assert rejects(differences_agree, cases_and_entries(), input_delta=wrong)


@pytest.mark.parametrize("wrong", [channels_transposed, bias_summed], ids=lambda f: f.__name__)
def test_central_differences_reject_a_wrong_equation_3(wrong):
    assert rejects(differences_agree, cases_and_entries(), parameter_gradients=wrong)


# Rows and columns that no window reads get no gradient: a stride that does not divide
# H + 2p − d(k − 1) − 1 leaves the last ones unread, and a stride or dilation wider than one
# leaves gaps between the taps.


def _read(size: int, out: int, k: int, s: int, p: int, d: int) -> np.ndarray:
    """Which of the input's ``size`` rows some window reads: padded row s·i + d·u, minus p."""
    read = np.zeros(size, bool)
    for i in range(out):
        for u in range(k):
            row = s * i + d * u - p
            if 0 <= row < size:
                read[row] = True
    return read


@given(conv_cases())
def test_rows_read_by_no_window_get_no_gradient(case):
    L, (h, w) = case.layer, case.a_prev.shape[2:]
    _, h_out, w_out = L.out_shape(case.a_prev.shape[1:])
    rows = _read(h, h_out, L.kernel[0], L.stride[0], L.padding[0], L.dilation[0])
    cols = _read(w, w_out, L.kernel[1], L.stride[1], L.padding[1], L.dilation[1])
    grad = L.input_delta(case.delta, case.a_prev, case.params)
    assert np.all(grad[:, :, ~rows, :] == 0) and np.all(grad[:, :, :, ~cols] == 0)
    last = L.stride[0] * (h_out - 1) + L.dilation[0] * (L.kernel[0] - 1)  # the last padded row read
    assert h + 2 * L.padding[0] - 1 - last == leftover(h, L.kernel[0], L.stride[0], L.padding[0], L.dilation[0])


def test_the_strategy_draws_what_it_promises():
    # The first found, not shrunk; derandomized, so that a rare corner missed by one random run
    # cannot fail the quick tier now and then: the same 500 draws every run.
    budget = settings(max_examples=500, database=None, phases=[Phase.generate], derandomize=True)
    ragged = find(
        conv_cases(),
        lambda c: (
            leftover(c.a_prev.shape[2], c.layer.kernel[0], c.layer.stride[0], c.layer.padding[0], c.layer.dilation[0])
            > c.layer.padding[0]
        ),
        settings=budget,
    )
    assert ragged.layer.stride[0] > 1
    every_size = find(
        conv_cases(), lambda c: len({c.n, *c.params["W"].shape, *c.a_prev.shape[2:]}) == 7, settings=budget
    )
    assert every_size.layer.in_channels != every_size.layer.out_channels
    for padding, dilation in (((0, 0), (1, 1)), ((2, 2), (2, 2))):
        find(
            conv_cases(),
            lambda c, p=padding, d=dilation: c.layer.padding == p and c.layer.dilation == d,
            settings=budget,
        )


@given(conv_cases())
def test_confusable_sizes_differ(case):
    n, c_in, h, w = case.a_prev.shape
    c_out, _, kh, kw = case.params["W"].shape
    assert len({n, c_in, c_out}) == 3 and h != w and (kh != kw or kh == 1)


# Shapes, dtypes and refusals.


def test_out_shape_counts_the_windows():
    for size, k, s, p, d in np.ndindex(9, 5, 4, 3, 3):
        if min(size, k, s, d) == 0:
            continue
        layer = Conv2D(1, 2, (k, 1), stride=(s, 1), padding=(p, 0), dilation=(d, 1))
        starts = [i for i in range(0, size + 2 * p, s) if i + d * (k - 1) < size + 2 * p]  # windows that fit
        if not starts:
            with pytest.raises(ValueError, match="larger than the padded input"):
                layer.out_shape((1, size, 3))
        else:
            assert layer.out_shape((1, size, 3)) == (2, len(starts), 3), (size, k, s, p, d)


def test_float32_in_float32_out():
    layer = Conv2D(3, 2, (2, 3), stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    rng = np.random.default_rng(0)
    params = layer.init(rng, (3, 7, 6), dtype=np.float32)
    a_prev = rng.uniform(-1, 1, (4, 3, 7, 6)).astype(np.float32)
    z = layer.forward(a_prev, params)
    delta = rng.uniform(-1, 1, z.shape).astype(np.float32)
    results = [z, layer.input_delta(delta, a_prev, params), *layer.parameter_gradients(delta, a_prev, params).values()]
    assert params["W"].shape == (2, 3, 2, 3) and params["b"].shape == (2,)
    assert all(r.dtype == np.float32 for r in [params["W"], params["b"], *results])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Conv2D(0, 1, (1, 1)), "in_channels"),
        (lambda: Conv2D(1, 1, (3,)), "kernel"),  # type: ignore[arg-type]  # one number, to check the refusal
        (lambda: Conv2D(1, 1, (3, 3), stride=(0, 1)), "stride"),
        (lambda: Conv2D(1, 1, (3, 3), padding=(-1, 0)), "padding"),
        (lambda: Conv2D(1, 1, (3, 3), dilation=(1, 0)), "dilation"),
        (lambda: Conv2D(1, 1, (3, 3), dilation=(2, 1)).out_shape((1, 4, 4)), "larger than the padded input"),
        (lambda: Conv2D(2, 1, (1, 1)).out_shape((3, 4, 4)), "channels"),
    ],
)
def test_a_layer_that_does_not_fit_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_arrays_that_do_not_fit_are_refused():
    layer = Conv2D(2, 3, (2, 2))
    rng = np.random.default_rng(0)
    params, a_prev = layer.init(rng, (2, 5, 5)), rng.uniform(-1, 1, (1, 2, 5, 5))
    with pytest.raises(ValueError, match="4-D"):
        layer.forward(a_prev[0], params)
    with pytest.raises(ValueError, match="OIHW"):
        layer.forward(a_prev, {"W": params["W"].transpose(1, 0, 2, 3), "b": params["b"]})
    with pytest.raises(ValueError, match="dtype"):
        layer.forward(a_prev.astype(np.float32), params)
    with pytest.raises(ValueError, match="δ must be"):
        layer.input_delta(np.zeros((1, 3, 5, 5)), a_prev, params)
