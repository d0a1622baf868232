"""Hypothesis strategies for convolution layers, the rounding bound their properties use, and
the wrong derivations their negative controls feed them. Imports NumPy, Hypothesis and
``manual`` only, never JAX.

``conv_cases`` draws a valid configuration of ``manual.conv.Conv2D`` (image sides 1–12,
channels 1–4, kernel sides 1–5, strides 1–3, padding 0–2, dilation 1–2, batch 1–4), then the
input, the weights, the biases and a δ for its output, each from ``unit_arrays``. Image sides
are drawn first, over their whole range; kernels among those that fit. Half the time each
kernel is chosen (where one can be) so that its stride does not divide H + 2p − d(k − 1) − 1,
leaving the last rows or columns unread by every window. The sizes that could be mistaken for
each other are kept different: H ≠ W and n, C_in, C_out all different, always; kh ≠ kw unless
the image is so small that both must be 1; and, where the ranges allow, all of these and the
output's H_out, W_out different from each other, so that an array read along the wrong axis
fails by its shape or its values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from manual.conv import Conv2D, correlate, crop, insert_zeros, pad, rotate180, windows
from property_tests.library.strategies import unit_arrays


@dataclass(frozen=True, eq=False)
class ConvCase:
    """One layer with its parameters, a batch a_prev (NCHW) and a δ = ∂Eₜ/∂z for its output."""

    layer: Conv2D
    a_prev: np.ndarray
    params: dict[str, np.ndarray]
    delta: np.ndarray

    @property
    def n(self) -> int:
        return self.a_prev.shape[0]

    def astype(self, dtype: np.dtype | type) -> ConvCase:
        return ConvCase(
            self.layer,
            self.a_prev.astype(dtype),
            {name: v.astype(dtype) for name, v in self.params.items()},
            self.delta.astype(dtype),
        )

    def describe(self) -> str:
        """A short, replayable description of the configuration and the shapes."""
        L = self.layer
        return (
            f"{self.a_prev.shape} → {self.delta.shape}, kernel {L.kernel}, stride {L.stride}, "
            f"padding {L.padding}, dilation {L.dilation}, {self.a_prev.dtype}"
        )


def leftover(size: int, k: int, s: int, p: int, d: int) -> int:
    """How many of the last rows of the padded input no window reads: (H + 2p − d(k − 1) − 1) mod s."""
    return (size + 2 * p - d * (k - 1) - 1) % s


def _prefer(candidates: Iterable[int], *wishes: Callable[[int], bool]) -> list[int]:
    """The candidates meeting as many wishes as can be met together, the earlier wishes first."""
    chosen = list(candidates)
    for wish in wishes:
        kept = [c for c in chosen if wish(c)]
        chosen = kept or chosen
    return chosen


def conv_cases(
    *,
    dtype: np.dtype | type = np.float64,
    max_examples: int = 4,
    max_channels: int = 4,
    max_size: int = 12,
    max_kernel: int = 5,
    max_stride: int = 3,
    max_padding: int = 2,
    max_dilation: int = 2,
) -> st.SearchStrategy[ConvCase]:
    """A valid convolution case (see the module's docstring), every array from ``unit_arrays``."""

    @st.composite
    def draw(draw_) -> ConvCase:
        stride = (draw_(st.integers(1, max_stride)), draw_(st.integers(1, max_stride)))
        padding = (draw_(st.integers(0, max_padding)), draw_(st.integers(0, max_padding)))
        dilation = (draw_(st.integers(1, max_dilation)), draw_(st.integers(1, max_dilation)))
        used: set[int] = set()

        def one_of(candidates: Iterable[int], *wishes: Callable[[int], bool]) -> int:
            value = draw_(st.sampled_from(_prefer(candidates, *wishes)))
            used.add(value)
            return value

        def unused(v: int) -> bool:
            return v not in used

        h = one_of(range(1, max_size + 1))
        w = one_of(range(1, max_size + 1), unused)
        ragged = draw_(st.booleans())
        kernel: list[int] = []
        outs: list[int] = []
        for size, s, p, d in zip((h, w), stride, padding, dilation, strict=True):

            def out(k: int, size=size, s=s, p=p, d=d) -> int:
                return (size + 2 * p - d * (k - 1) - 1) // s + 1

            def ragged_if_asked(k: int, size=size, s=s, p=p, d=d) -> bool:
                return not ragged or s == 1 or leftover(size, k, s, p, d) > 0

            fits = [k for k in range(1, max_kernel + 1) if d * (k - 1) + 1 <= size + 2 * p]
            k = one_of(
                fits,
                lambda k: k not in kernel,
                ragged_if_asked,
                lambda k: out(k) not in outs,
                unused,
                lambda k: out(k) not in used,
            )
            kernel.append(k)
            outs.append(out(k))
        kh, kw = kernel
        used |= set(outs)
        n = one_of(range(1, max_examples + 1), unused)
        c_in = one_of(range(1, max_channels + 1), lambda c: c != n, unused)
        c_out = one_of(range(1, max_channels + 1), lambda c: c not in (n, c_in), unused)
        sides = (h, w)
        layer = Conv2D(c_in, c_out, (kh, kw), stride, padding, dilation)
        out_shape = layer.out_shape((c_in, *sides))
        return ConvCase(
            layer=layer,
            a_prev=draw_(unit_arrays((n, c_in, *sides), dtype=dtype)),
            params={
                "W": draw_(unit_arrays((c_out, c_in, kh, kw), dtype=dtype)),
                "b": draw_(unit_arrays((c_out,), dtype=dtype)),
            },
            delta=draw_(unit_arrays((n, *out_shape), dtype=dtype)),
        )

    return draw()


def rounding_bound(dtype: np.dtype | type, terms: int, magnitude: np.ndarray) -> np.ndarray:
    """How far two computations of the same sums may differ by rounding alone, elementwise:

        8 · u · (terms + 2) · magnitude

    A sum of m products, each rounded, in any order, is off by at most about (m + 1)·u times the
    sum of the absolute products (Higham, §3.1), ``magnitude``: the same sums on absolute values;
    + 2 covers the bias added and the division by n; 8 covers both sides rounding, with room.
    u = eps/2 of the dtype the manual code computes in."""
    return 8 * (float(np.finfo(dtype).eps) / 2) * (terms + 2) * np.asarray(magnitude)


# Wrong derivations: the real code with one piece replaced by a mistake people make when they
# derive the convolution's backward pass by hand. Each takes (layer, δ, a_prev, params), as the
# unbound methods ``Conv2D.input_delta`` and ``Conv2D.parameter_gradients`` do.


def _full(layer: Conv2D, spread: np.ndarray, a_prev: np.ndarray) -> np.ndarray:
    """``spread`` padded by d(k − 1) before and up to the padded input's size (plus d(k − 1)) after."""
    (h, w), (dh, dw), (kh, kw), (ph, pw) = a_prev.shape[2:], layer.dilation, layer.kernel, layer.padding
    before = (dh * (kh - 1), dw * (kw - 1))
    after = (h + 2 * ph - spread.shape[2], w + 2 * pw - spread.shape[3])
    return np.pad(spread, ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))


def kernel_not_rotated(layer, delta, a_prev, params):
    """(2) with the channels of W swapped but its taps not turned by 180°."""
    full = _full(layer, insert_zeros(delta, layer.stride), a_prev)
    grad = correlate(full, params["W"].transpose(1, 0, 2, 3), (1, 1), layer.dilation)
    return crop(grad, layer.padding, a_prev.shape[2:])


def stride_zeros_missing(layer, delta, a_prev, params):
    """(2) with δ padded out to the right size but no s − 1 zeros inserted between its elements."""
    full = _full(layer, delta, a_prev)
    grad = correlate(full, rotate180(params["W"]), (1, 1), layer.dilation)
    return crop(grad, layer.padding, a_prev.shape[2:])


def crop_off_by_one(layer, delta, a_prev, params):
    """(2) with the padding cropped one row and one column too far (p + 1 instead of p)."""
    full = _full(layer, insert_zeros(delta, layer.stride), a_prev)
    grad = correlate(full, rotate180(params["W"]), (1, 1), layer.dilation)
    grad = np.pad(grad, ((0, 0), (0, 0), (0, 1), (0, 1)))  # room for the shifted crop
    (ph, pw), (h, w) = layer.padding, a_prev.shape[2:]
    return grad[:, :, ph + 1 : ph + 1 + h, pw + 1 : pw + 1 + w]


def kernel_flipped_forward(layer, a_prev, params):
    """The forward pass as a true convolution (kernel turned by 180°), not a cross-correlation."""
    return (
        correlate(pad(a_prev, layer.padding), params["W"][:, :, ::-1, ::-1], layer.stride, layer.dilation)
        + params["b"][:, None, None]
    )


def channels_transposed(layer, delta, a_prev, params):
    """(3) summed into (C_in, C_out, kh, kw) and reshaped to W's shape instead of transposed."""
    n = delta.shape[0]
    x = windows(pad(a_prev, layer.padding), layer.kernel, layer.stride, layer.dilation)
    grad_W = np.einsum("nfij,ncijuv->cfuv", delta, x).reshape(params["W"].shape) / n
    return {"W": grad_W, "b": delta.sum(axis=(0, 2, 3)) / n}


def bias_summed(layer, delta, a_prev, params):
    """(3) with the bias gradient summed over the examples instead of averaged."""
    grads = layer.parameter_gradients(delta, a_prev, params)
    return {"W": grads["W"], "b": delta.sum(axis=(0, 2, 3))}
