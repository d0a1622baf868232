"""Layers without parameters for convolutional networks: max pooling, average pooling, flatten.

Arrays are NCHW: a⁽ᵏ⁻¹⁾ has shape (n, C, H, W), one example per leading index, and a layer's
output z⁽ᵏ⁾ has shape (n,) + ``out_shape((C, H, W))``. Such a layer has no weights and no
activation of its own, so backpropagation asks one thing of it: the factor of equation (2)
that comes before the ⊙ g′ of the layer below,

    ∂Eₜ/∂a⁽ᵏ⁻¹⁾ᵢ = Σⱼ δ⁽ᵏ⁾ⱼ ∂z⁽ᵏ⁾ⱼ/∂a⁽ᵏ⁻¹⁾ᵢ        (the (Θ⁽ᵏ⁾)ᵀδ⁽ᵏ⁾ of a dense layer)

after which δ⁽ᵏ⁻¹⁾ = ∂Eₜ/∂a⁽ᵏ⁻¹⁾ ⊙ g′(z⁽ᵏ⁻¹⁾) as always. That factor is ``input_delta``;
δ is ∂Eₜ/∂z per example, not divided by n. Equation (3) has nothing to compute here:
``parameter_gradients`` returns ``{}``.

A window (i, j) of a pooling layer reads the padded input ã at rows i·sh + r and columns
j·sw + q, for r < wh and q < ww. There are ⌊(H + 2ph − wh)/sh⌋ + 1 windows down and
⌊(W + 2pw − ww)/sw⌋ + 1 across: when the stride does not divide H + 2ph − wh, the last rows
(or columns) are read by no window and their ∂Eₜ/∂a is 0. Padding must be smaller than the
window, so that every window holds at least one input.

Each layer has a vectorized form (``forward``, ``input_delta``) and a loop form over every
window (``forward_loops``, ``input_delta_loops``) that reads like the equations; the property
tests check that both agree. Derivation: ``docs/pooling.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .conv import surround, windows

Pair = tuple[int, int]
Shape = tuple[int, int, int]
Params = Mapping[str, np.ndarray]


def output_size(size: int, window: int, stride: int, padding: int) -> int:
    """How many windows fit along one axis: ⌊(size + 2·padding − window) / stride⌋ + 1."""
    return (size + 2 * padding - window) // stride + 1


def _check_pair(name: str, value: Pair, minimum: int) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)
    ):
        raise ValueError(f"{name} must be a pair of integers of at least {minimum}, got {value!r}")


def _check_shape(in_shape: tuple[int, ...]) -> None:
    if (
        not isinstance(in_shape, tuple)
        or len(in_shape) != 3
        or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in in_shape)
    ):
        raise ValueError(f"in_shape must be (C, H, W), three positive integers, got {in_shape!r}")


def _check_input(layer, a_prev: np.ndarray) -> tuple:
    """The output shape for this a⁽ᵏ⁻¹⁾, after checking it is a floating (n, C, H, W) array."""
    if not isinstance(a_prev, np.ndarray) or a_prev.ndim != 4 or not np.issubdtype(a_prev.dtype, np.floating):
        raise ValueError(f"a_prev must be a floating-point array of shape (n, C, H, W), got {_describe(a_prev)}")
    return (a_prev.shape[0],) + layer.out_shape(a_prev.shape[1:])


def _check_delta(layer, delta: np.ndarray, a_prev: np.ndarray) -> None:
    expected = _check_input(layer, a_prev)
    if not isinstance(delta, np.ndarray) or delta.shape != expected:
        raise ValueError(f"delta must have the output's shape {expected}, got {_describe(delta)}")


def _describe(x) -> str:
    return f"shape {x.shape} and dtype {x.dtype}" if isinstance(x, np.ndarray) else type(x).__name__


def _maximum(windows: np.ndarray) -> np.ndarray:
    """The maximum of every window of a (…, wh, ww) view: wh·ww elementwise maxima of whole
    arrays, one offset (r, q) of every window at a time."""
    z = windows[..., 0, 0].copy()
    for r, q in np.ndindex(windows.shape[-2:]):
        np.maximum(z, windows[..., r, q], out=z)
    return z


@dataclass(frozen=True)
class _Pool2D:
    """What max and average pooling share: the windows, their shape rule, and the way back."""

    window: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)

    fill: ClassVar[float]
    """The value of ã outside the image."""

    def __post_init__(self) -> None:
        _check_pair("window", self.window, 1)
        _check_pair("stride", self.stride, 1)
        _check_pair("padding", self.padding, 0)
        if any(p >= w for p, w in zip(self.padding, self.window, strict=True)):
            raise ValueError(
                f"padding {self.padding} must be smaller than the window {self.window} on both axes, "
                f"so that every window holds at least one input"
            )

    def out_shape(self, in_shape: tuple[int, ...]) -> Shape:
        """(C, H, W) → (C, ⌊(H + 2ph − wh)/sh⌋ + 1, ⌊(W + 2pw − ww)/sw⌋ + 1)."""
        _check_shape(in_shape)
        C, H, W = in_shape
        (wh, ww), (sh, sw), (ph, pw) = self.window, self.stride, self.padding
        if H + 2 * ph < wh or W + 2 * pw < ww:
            raise ValueError(
                f"the window {self.window} does not fit in the padded image "
                f"{(H + 2 * ph, W + 2 * pw)} of an input {(H, W)} with padding {self.padding}"
            )
        return (C, output_size(H, wh, sh, ph), output_size(W, ww, sw, pw))

    def init(
        self, rng: np.random.Generator, in_shape: tuple[int, ...], dtype: np.dtype | type = np.float64
    ) -> dict[str, np.ndarray]:
        """No parameters: ``{}`` (after checking that ``in_shape`` fits)."""
        self.out_shape(in_shape)
        return {}

    def parameter_gradients(
        self, delta: np.ndarray, a_prev: np.ndarray, params: Params | None = None
    ) -> dict[str, np.ndarray]:
        """Equation (3) has no parameter to differentiate: ``{}``."""
        return {}

    def pad(self, a_prev: np.ndarray) -> np.ndarray:
        """ã: a⁽ᵏ⁻¹⁾ with ph rows above and below, pw columns left and right, of ``fill``."""
        (ph, pw) = self.padding
        return surround(a_prev, (ph, pw), (ph, pw), self.fill)

    def windows(self, a_prev: np.ndarray) -> np.ndarray:
        """A read-only view of shape (n, C, H_out, W_out, wh, ww): element [t, c, i, j, r, q] is
        ã[t, c, i·sh + r, j·sw + q]: ``conv.windows`` with dilation 1."""
        return windows(self.pad(a_prev), self.window, self.stride, (1, 1))

    def fold(self, pieces: np.ndarray, in_shape: tuple) -> np.ndarray:
        """The transpose of ``windows``: add each piece [t, c, i, j, r, q] back at the input it was
        read from, ã[t, c, i·sh + r, j·sw + q], summing where windows overlap, then crop the padding."""
        total = self._padded_zeros((*pieces.shape[:2], *in_shape[-2:]), pieces.dtype)
        slots = self._slots(total)
        for r, q in np.ndindex(self.window):  # one offset of every window at a time: no input twice
            slots[..., r, q] += pieces[..., r, q]  # overlapping windows accumulate, offset by offset
        return self._crop(total, in_shape)

    def _padded_zeros(self, shape: tuple, dtype: np.dtype) -> np.ndarray:
        """Zeros of the shape of ã, (n, C, H + 2ph, W + 2pw), for an a⁽ᵏ⁻¹⁾ of ``shape`` (n, C, H, W)."""
        (ph, pw), (n, C, H, W) = self.padding, shape
        return np.zeros((n, C, H + 2 * ph, W + 2 * pw), dtype)

    def _slots(self, total: np.ndarray) -> np.ndarray:
        """``windows`` of an array of ã's shape, writeable: [t, c, i, j, r, q] is total[t, c, i·sh + r,
        j·sw + q]. An input belongs to several windows when they overlap, but to at most one
        window at each offset (r, q): written one offset at a time, no element is written twice."""
        return windows(total, self.window, self.stride, (1, 1), writeable=True)

    def _crop(self, total: np.ndarray, in_shape: tuple) -> np.ndarray:
        """The inputs of an array of ã's shape: the padding cut off."""
        (ph, pw), (H, W) = self.padding, in_shape[-2:]
        return total[:, :, ph : ph + H, pw : pw + W]

    def _empty_output(self, a_prev: np.ndarray) -> np.ndarray:
        return np.empty(_check_input(self, a_prev), a_prev.dtype)


@dataclass(frozen=True)
class MaxPool2D(_Pool2D):
    """z⁽ᵏ⁾[c, i, j] = max over r < wh, q < ww of ã[c, i·sh + r, j·sw + q], ã padded with −∞.

    The way back: z⁽ᵏ⁾[c, i, j] moves with one input only, the maximum of its window, with slope
    1, so ∂z/∂a is 1 there and 0 elsewhere, and

        ∂Eₜ/∂a⁽ᵏ⁻¹⁾[c, y, x] = Σ over the windows (i, j) whose maximum is a[c, y, x] of δ⁽ᵏ⁾[c, i, j]   (2)

    An input that is the maximum of several overlapping windows (stride < window) receives the
    sum of their δ. Padding, being −∞, is never a maximum.

    Ties: where several inputs of a window share its maximum, the whole δ of that window goes to
    the FIRST of them in row-major order within the window (smallest r, then smallest q). This
    is what ``jax.grad`` (reverse mode) gives through ``jax.lax.reduce_window`` with ``lax.max``
    and −∞ init and padding, verified on deliberate ties, overlapping and padded windows, in
    float64 and float32 (``property_tests/tests/test_pooling.py``); ``np.argmax`` picks the same one.
    """

    fill: ClassVar[float] = -np.inf

    def forward(self, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """z = the maximum of every window of ã."""
        _check_input(self, a_prev)
        return _maximum(self.windows(a_prev))

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """(∂z/∂a)ᵀδ: each window's δ to its first maximum (row-major), summed over windows.

        ``fold(slope · δ)``, one offset (r, q) of every window at a time, in row-major order: the
        slope is 1 where ã equals the window's maximum z and no earlier offset has matched."""
        _check_delta(self, delta, a_prev)
        windows = self.windows(a_prev)
        z = _maximum(windows)
        total = self._padded_zeros(a_prev.shape, delta.dtype)
        slots = self._slots(total)
        unmatched = np.ones(z.shape, bool)  # the windows whose first maximum is still to come
        for r, q in np.ndindex(self.window):
            slope = (windows[..., r, q] == z) & unmatched  # ∂z[i, j]/∂ã[i·sh + r, j·sw + q]: 1 or 0
            unmatched &= ~slope
            slots[..., r, q] += slope * delta  # (2)
        return self._crop(total, a_prev.shape)

    def forward_loops(self, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """The same z, one window at a time."""
        z, padded = self._empty_output(a_prev), self.pad(a_prev)
        for t, c, i, j in np.ndindex(z.shape):
            y, x = self._first_maximum(padded[t, c], i, j)
            z[t, c, i, j] = padded[t, c, y, x]
        return z

    def input_delta_loops(self, delta: np.ndarray, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """The same ∂Eₜ/∂a, one window at a time: δ[t, c, i, j] added at the window's first maximum."""
        _check_delta(self, delta, a_prev)
        padded = self.pad(a_prev)
        grad = np.zeros(padded.shape, delta.dtype)
        for t, c, i, j in np.ndindex(delta.shape):
            y, x = self._first_maximum(padded[t, c], i, j)
            grad[t, c, y, x] += delta[t, c, i, j]  # (2)
        (ph, pw), (H, W) = self.padding, a_prev.shape[2:]
        return grad[:, :, ph : ph + H, pw : pw + W]

    def _first_maximum(self, image: np.ndarray, i: int, j: int) -> tuple[int, int]:
        """Where in the padded ``image`` window (i, j) has its first maximum in row-major order:
        a later value replaces the best so far only when strictly greater."""
        (wh, ww), (sh, sw) = self.window, self.stride
        best = (i * sh, j * sw)
        for r in range(wh):
            for q in range(ww):
                if image[i * sh + r, j * sw + q] > image[best]:
                    best = (i * sh + r, j * sw + q)
        return best


@dataclass(frozen=True)
class AvgPool2D(_Pool2D):
    """z⁽ᵏ⁾[c, i, j] = (1 / (wh·ww)) Σ over r < wh, q < ww of ã[c, i·sh + r, j·sw + q], ã padded with 0.

    Padding counts in the divisor (count_include_pad): a window that hangs over the edge still
    divides by wh·ww, as ``jax.lax.reduce_window`` with ``lax.add`` divided by the window size
    does. Every input of a window moves z with slope 1/(wh·ww), so

        ∂Eₜ/∂a⁽ᵏ⁻¹⁾[c, y, x] = Σ over the windows (i, j) holding a[c, y, x] of δ⁽ᵏ⁾[c, i, j] / (wh·ww)   (2)

    and the share that falls on padding is dropped.
    """

    fill: ClassVar[float] = 0.0

    @property
    def size(self) -> int:
        """wh·ww, the divisor of every window, padded or not."""
        return self.window[0] * self.window[1]

    def forward(self, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """z = the sum of every window of ã, over wh·ww."""
        _check_input(self, a_prev)
        windows = self.windows(a_prev)
        total = np.zeros(windows.shape[:4], windows.dtype)
        for r, q in np.ndindex(self.window):  # one offset of every window at a time: wh·ww whole-array steps
            total += windows[..., r, q]
        return total / self.size

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """(∂z/∂a)ᵀδ: δ / (wh·ww) to every input of each window, summed over windows."""
        _check_delta(self, delta, a_prev)
        share = delta / self.size  # ∂z[i, j]/∂ã = 1/(wh·ww) for every element of the window
        pieces = np.broadcast_to(share[..., None, None], share.shape + self.window)
        return self.fold(pieces, a_prev.shape)  # (2)

    def forward_loops(self, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """The same z, one window and one element at a time."""
        z, padded = self._empty_output(a_prev), self.pad(a_prev)
        (wh, ww), (sh, sw) = self.window, self.stride
        for t, c, i, j in np.ndindex(z.shape):
            total = padded.dtype.type(0)
            for r in range(wh):
                for q in range(ww):
                    total += padded[t, c, i * sh + r, j * sw + q]
            z[t, c, i, j] = total / self.size
        return z

    def input_delta_loops(self, delta: np.ndarray, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """The same ∂Eₜ/∂a, one window and one element at a time."""
        _check_delta(self, delta, a_prev)
        (wh, ww), (sh, sw), (ph, pw) = self.window, self.stride, self.padding
        (H, W) = a_prev.shape[2:]
        grad = np.zeros((*a_prev.shape[:2], H + 2 * ph, W + 2 * pw), delta.dtype)
        for t, c, i, j in np.ndindex(delta.shape):
            share = delta[t, c, i, j] / self.size
            for r in range(wh):
                for q in range(ww):
                    grad[t, c, i * sh + r, j * sw + q] += share  # (2)
        return grad[:, :, ph : ph + H, pw : pw + W]


@dataclass(frozen=True)
class Flatten:
    """(C, H, W) → C·H·W in C order: z[t, (c·H + y)·W + x] = a[t, c, y, x].

    Every output is one input with slope 1, so ∂z/∂a is a permutation and (∂z/∂a)ᵀδ puts each
    δ back where its input came from: the same reshape, backwards.
    """

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int]:
        """(C, H, W) → (C·H·W,)."""
        _check_shape(in_shape)
        C, H, W = in_shape
        return (C * H * W,)

    # No parameters, as _Pool2D's: written again rather than inherited, so that Flatten, which shares
    # nothing else with the pooling layers, states every method of the Layer protocol in its own body.
    def init(
        self, rng: np.random.Generator, in_shape: tuple[int, ...], dtype: np.dtype | type = np.float64
    ) -> dict[str, np.ndarray]:
        """No parameters: ``{}``."""
        self.out_shape(in_shape)
        return {}

    def parameter_gradients(
        self, delta: np.ndarray, a_prev: np.ndarray, params: Params | None = None
    ) -> dict[str, np.ndarray]:
        """Equation (3) has no parameter to differentiate: ``{}``."""
        return {}

    def forward(self, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """z = a⁽ᵏ⁻¹⁾ with every example's (C, H, W) laid out as one row, last axis fastest."""
        _check_input(self, a_prev)
        return a_prev.reshape(a_prev.shape[0], -1)

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """(∂z/∂a)ᵀδ: each row of δ laid back out as (C, H, W)."""
        _check_delta(self, delta, a_prev)
        return delta.reshape(a_prev.shape)  # (2)

    def forward_loops(self, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """The same z, one element at a time."""
        z = np.empty(_check_input(self, a_prev), a_prev.dtype)
        n, C, H, W = a_prev.shape
        for t, c, y, x in np.ndindex(a_prev.shape):
            z[t, (c * H + y) * W + x] = a_prev[t, c, y, x]
        return z

    def input_delta_loops(self, delta: np.ndarray, a_prev: np.ndarray, params: Params | None = None) -> np.ndarray:
        """The same ∂Eₜ/∂a, one element at a time."""
        _check_delta(self, delta, a_prev)
        n, C, H, W = a_prev.shape
        grad = np.empty(a_prev.shape, delta.dtype)
        for t, c, y, x in np.ndindex(a_prev.shape):
            grad[t, c, y, x] = delta[t, (c * H + y) * W + x]  # (2)
        return grad
