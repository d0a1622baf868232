"""The convolution layer's forward pass, equation (2) and equation (3) against autodiff
(``reference.conv``: ``jax.lax.conv_general_dilated`` and ``jax.vjp``, in float64), each with
its negative controls. Every comparison is elementwise within ``rounding_bound``: 8·u·(terms + 2)
times the same sums on absolute values, the absolute sums computed by the reference too.

JAX compiles once per shape and configuration (a fraction of a second each), and Hypothesis
draws a new one nearly every example, so the budgets here are small; the loop forms, the
finite differences and everything else that needs no oracle are in
``test_conv_without_autodiff.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from manual.conv import Conv2D
from property_tests.banks.controls import rejects
from property_tests.library import profiles
from property_tests.library.conv_strategies import (
    ConvCase,
    bias_summed,
    channels_transposed,
    conv_cases,
    crop_off_by_one,
    kernel_flipped_forward,
    kernel_not_rotated,
    rounding_bound,
    stride_zeros_missing,
)
from reference.conv import conv2d, conv2d_vjp

BUDGET = profiles.fewer(1 / 3, 3)
"""A third of the profile's examples: each compiles the reference for its shapes (≈ 0.15 s for
z, 0.3 s for the vjp), so the ci profile's 30 become 10, the quick default's 10 become 3 and
``thorough``'s 10,000 3,333."""


def _config(case: ConvCase) -> tuple:
    L = case.layer
    return L.stride, L.padding, L.dilation


def _forward_reference(case: ConvCase) -> tuple[np.ndarray, np.ndarray]:
    """z from autodiff's library, and the same sums on absolute values."""
    x, W, b = case.a_prev, case.params["W"], case.params["b"]
    return conv2d(x, W, b, *_config(case)), conv2d(abs(x), abs(W), abs(b), *_config(case))


def _vjp_reference(case: ConvCase) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """∂/∂x, ∂/∂W, ∂/∂b of Σ z·δ from ``jax.vjp``, and the same sums on absolute values."""
    x, W, b, delta = case.a_prev, case.params["W"], case.params["b"], case.delta
    return (conv2d_vjp(x, W, b, delta, *_config(case)), conv2d_vjp(abs(x), abs(W), abs(b), abs(delta), *_config(case)))


def _close(what: str, manual: np.ndarray, reference: np.ndarray, allowed: np.ndarray, case: ConvCase) -> None:
    assert manual.shape == reference.shape, (
        f"{what}: shape {manual.shape}, autodiff's {reference.shape}; {case.describe()}"
    )
    assert manual.dtype == case.a_prev.dtype, f"{what}: {manual.dtype} from {case.a_prev.dtype} inputs"
    error = np.abs(manual.astype(np.float64) - reference)
    worst = np.unravel_index(np.argmax(error - allowed), error.shape)
    assert np.all(error <= allowed), (
        f"{what} differs from autodiff by {error[worst]:.3g} at {worst}, "
        f"allowed {allowed[worst]:.3g}; {case.describe()}"
    )


def forward_matches_reference(case: ConvCase, forward=Conv2D.forward) -> None:
    """z = W ⋆ x + b, as lax computes it."""
    L, (c_in, kh, kw) = case.layer, case.params["W"].shape[1:]
    z, size = _forward_reference(case)
    _close(
        "z", forward(L, case.a_prev, case.params), z, rounding_bound(case.a_prev.dtype, c_in * kh * kw + 1, size), case
    )


def equation_2_holds(case: ConvCase, input_delta=Conv2D.input_delta) -> None:
    """(2) up to its ⊙ g′: ∂Eₜ/∂a_prev per example equals autodiff's ∂(Σ z·δ)/∂x."""
    L, (c_out, _, kh, kw) = case.layer, case.params["W"].shape
    (grad_x, _, _), (size, _, _) = _vjp_reference(case)
    _close(
        "∂Eₜ/∂a_prev (2)",
        input_delta(L, case.delta, case.a_prev, case.params),
        grad_x,
        rounding_bound(case.a_prev.dtype, c_out * kh * kw, size),
        case,
    )


def equation_3_holds(case: ConvCase, parameter_gradients=Conv2D.parameter_gradients) -> None:
    """(3): ∂E/∂W and ∂E/∂b equal autodiff's ∂(Σ z·δ)/∂W and ∂/∂b divided by n."""
    n, positions = case.n, case.delta[0, 0].size
    (_, grad_W, grad_b), (_, size_W, size_b) = _vjp_reference(case)
    grads = parameter_gradients(case.layer, case.delta, case.a_prev, case.params)
    for name, reference, size in (("W", grad_W, size_W), ("b", grad_b, size_b)):
        _close(
            f"∂E/∂{name} (3)",
            grads[name],
            reference / n,
            rounding_bound(case.a_prev.dtype, n * positions, size / n),
            case,
        )


@BUDGET
@given(conv_cases())
def test_forward_matches_reference(case):
    forward_matches_reference(case)


def test_forward_rejects_a_true_convolution():
    assert rejects(forward_matches_reference, conv_cases(), forward=kernel_flipped_forward)


@BUDGET
@given(conv_cases())
def test_equation_2_input_delta(case):
    equation_2_holds(case)


@pytest.mark.parametrize("wrong", [kernel_not_rotated, stride_zeros_missing, crop_off_by_one], ids=lambda f: f.__name__)
def test_equation_2_rejects(wrong):
    assert rejects(equation_2_holds, conv_cases(), input_delta=wrong)


@BUDGET
@given(conv_cases())
def test_equation_3_parameter_gradients(case):
    equation_3_holds(case)


@pytest.mark.parametrize("wrong", [channels_transposed, bias_summed], ids=lambda f: f.__name__)
def test_equation_3_rejects(wrong):
    assert rejects(equation_3_holds, conv_cases(), parameter_gradients=wrong)


def float32_holds(case: ConvCase, input_delta=Conv2D.input_delta) -> None:
    """float32 in, float32 out, within float32's rounding of the float64 reference."""
    forward_matches_reference(case)
    equation_2_holds(case, input_delta=input_delta)
    equation_3_holds(case)


@BUDGET
@given(conv_cases(dtype=np.float32))
def test_float32_keeps_float32(case):
    float32_holds(case)


def test_float32_rejects_crop_off_by_one():
    assert rejects(float32_holds, conv_cases(dtype=np.float32), input_delta=crop_off_by_one)


def test_unread_rows_get_no_gradient_from_autodiff_either():
    # Rows: H = 8, k = 3, s = 3: windows start at rows 0 and 3, so rows 6 and 7 are read by none.
    # Columns: W = 9 padded by 1 to 11, k = 3, s = 3: windows start at 0, 3, 6 and read padded
    # columns 0–8, so input column 8 (padded column 9) is read by none.
    layer = Conv2D(2, 3, (3, 3), stride=(3, 3), padding=(0, 1))
    rng = np.random.default_rng(0)
    a_prev = rng.uniform(-1, 1, (4, 2, 8, 9))
    params = layer.init(rng, (2, 8, 9))
    delta = rng.uniform(-1, 1, (4, *layer.out_shape((2, 8, 9))))
    case = ConvCase(layer, a_prev, params, delta)
    equation_2_holds(case)
    equation_3_holds(case)
    by_autodiff = conv2d_vjp(a_prev, params["W"], params["b"], delta, *_config(case))[0]
    by_hand = layer.input_delta(delta, a_prev, params)
    for grad_x in (by_autodiff, by_hand):
        assert np.all(grad_x[:, :, 6:, :] == 0) and np.all(grad_x[:, :, :, 8] == 0)
        assert np.all(grad_x[:, :, :6, :8] != 0)
