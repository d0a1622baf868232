"""A 2-D convolution layer and its backward pass, derived by hand: equations (2) and (3) when
the weighted input is a convolution instead of a matrix product (docs/convolution.md).

Layouts: inputs and outputs are NCHW (examples, channels, height, width), kernels OIHW (output
channels, input channels, kernel height, kernel width). "Convolution" means cross-correlation,
as deep-learning libraries define it: the kernel is not flipped in the forward pass. With
stride s, zero padding p and dilation d on each axis, and x the input padded by p:

    z_f,ij = b_f + Σ_c Σ_u Σ_v W_fcuv · x_c,(s·i + d·u),(s·j + d·v)                (forward)

    ∂E/∂W_fcuv = (1/n) Σₜ Σ_ij δ_f,ij · x_c,(s·i + d·u),(s·j + d·v)                     (3)
    ∂E/∂b_f    = (1/n) Σₜ Σ_ij δ_f,ij                                                  (3)
    ∂Eₜ/∂a_c,rq = Σ_f Σ_uv W_fcuv · δ_f,ij,  (i, j) the window with s·i + d·u = r + p_h and
                                             s·j + d·v = q + p_w (no term where there is none)   (2)

δ = ∂Eₜ/∂z per example, not divided by n; the 1/n of E = (1/n) Σₜ Eₜ is applied once, in (3).
``input_delta`` is the part of (2) before the ⊙ g′(z) of the layer below. Each equation comes
twice: vectorized (the windows, a strided view of the input, copied into one matrix per example,
im2col, so that each sum is a matrix product) and as plain loops over the indices (``*_loops``),
which the tests show equal.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .network import FLOAT_DTYPES

Pair = tuple[int, int]
Params = Mapping[str, np.ndarray]


def pad(x: np.ndarray, padding: Pair) -> np.ndarray:
    """x with ``padding`` = (p_h, p_w) zeros added on both sides of its last two axes."""
    return surround(x, padding, padding)


def surround(x: np.ndarray, before: Pair, after: Pair, fill: float = 0.0) -> np.ndarray:
    """x with rows and columns of ``fill`` added to its last two axes: ``before`` = (rows above,
    columns left), ``after`` = (rows below, columns right). What ``np.pad`` does in constant
    mode, written out (one allocation and one copy: it runs for every layer of every check)."""
    if before == (0, 0) and after == (0, 0):
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, before[0] + h + after[0], before[1] + w + after[1]), fill, x.dtype)
    out[:, :, before[0] : before[0] + h, before[1] : before[1] + w] = x
    return out


def windows(x: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, *, writeable: bool = False) -> np.ndarray:
    """im2col as a view: ``windows(x)[t, c, i, j, u, v]`` = x_t,c,(s·i + d·u),(s·j + d·v), shape
    (n, C, H_out, W_out, kh, kw); every window that fits, nothing copied. The index formula is
    the strides: a step of i moves s rows of x, a step of u moves d rows (read-only unless asked,
    as ``sliding_window_view`` gives, without its checks: this runs for every layer of every
    check). A writeable view has elements that share memory where windows overlap: write one
    offset (u, v) of every window at a time."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    n, c, h, w = x.shape
    h_out, w_out = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1  # windows that fit
    t_step, c_step, row, column = x.strides
    return as_strided(
        x,
        (n, c, h_out, w_out, kh, kw),
        (t_step, c_step, sh * row, sw * column, dh * row, dw * column),
        writeable=writeable,
    )


def im2col(x: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """``windows`` copied into one matrix per example: ``im2col(x)[t, (c, u, v), (i, j)]`` =
    x_t,c,(s·i + d·u),(s·j + d·v), shape (n, C·kh·kw, H_out·W_out). Row (c, u, v) lines up with
    column (c, u, v) of W reshaped to (F, C·kh·kw), so that the sums over c, u, v (or over i, j)
    become matrix products (BLAS), one per example."""
    return columns(windows(x, kernel, stride, dilation))


def columns(view: np.ndarray) -> np.ndarray:
    """The windows (n, C, H_out, W_out, kh, kw) copied into im2col's matrices."""
    n, c, h_out, w_out, kh, kw = view.shape
    return view.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, h_out * w_out)


def correlate(x: np.ndarray, K: np.ndarray, stride: Pair, dilation: Pair) -> np.ndarray:
    """Valid cross-correlation of x (N, C, H, W) with K (F, C, kh, kw):
    out_t,f,ij = Σ_c Σ_uv K_fcuv · x_t,c,(s·i + d·u),(s·j + d·v)."""
    view = windows(x, K.shape[2:], stride, dilation)  # built once: its shape is the output's
    out = K.reshape(K.shape[0], -1) @ columns(view)  # Σ_c Σ_uv: one product per example
    return out.reshape(x.shape[0], K.shape[0], *view.shape[2:4])


def insert_zeros(delta: np.ndarray, stride: Pair) -> np.ndarray:
    """δ with s − 1 zeros between neighbouring elements on each axis: element (i, j) moves to
    (s_h·i, s_w·j), where the forward pass read the window it came from."""
    sh, sw = stride
    n, f, h, w = delta.shape
    spread = np.zeros((n, f, (h - 1) * sh + 1, (w - 1) * sw + 1), delta.dtype)
    spread[:, :, ::sh, ::sw] = delta
    return spread


def rotate180(W: np.ndarray) -> np.ndarray:
    """W turned by 180° in its spatial axes, with its channel axes swapped: OIHW → IOHW, so that
    correlating δ (one channel per output map) with it gives one map per input channel."""
    return W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)


def crop(x: np.ndarray, padding: Pair, size: Pair) -> np.ndarray:
    """The ``size`` = (H, W) block of x that starts after ``padding``: what the padding added is
    cut off. Written start:start + size, never p:−p, which is empty for p = 0."""
    (ph, pw), (h, w) = padding, size
    return x[:, :, ph : ph + h, pw : pw + w]


def checks_input(equation: Callable[[Any, np.ndarray, Params], Any]) -> Callable[[Any, np.ndarray, Params], Any]:
    """A layer's method of (a_prev, params), after the layer's ``check`` of them. The equation
    alone stays reachable as ``__wrapped__``, for arrays that are known to fit (as the sizes that
    ``property_tests.library.layer_bounds`` carries through the layer: absolute values of checked
    arrays, on which the checks would be a third of the work)."""

    @functools.wraps(equation)
    def checked(self, a_prev: np.ndarray, params: Params) -> Any:
        self.check(a_prev, params)
        return equation(self, a_prev, params)

    return checked


def checks_delta(
    equation: Callable[[Any, np.ndarray, np.ndarray, Params], Any],
) -> Callable[[Any, np.ndarray, np.ndarray, Params], Any]:
    """``checks_input`` for a method of (delta, a_prev, params): δ is checked too."""

    @functools.wraps(equation)
    def checked(self, delta: np.ndarray, a_prev: np.ndarray, params: Params) -> Any:
        self.check(a_prev, params, delta)
        return equation(self, delta, a_prev, params)

    return checked


@dataclass(frozen=True)
class Conv2D:
    """A convolution layer: ``out_channels`` kernels of ``in_channels`` × kh × kw weights, moved
    in steps of ``stride`` = (s_h, s_w) over the input padded by ``padding`` = (p_h, p_w) zeros,
    the kernel's taps spaced ``dilation`` = (d_h, d_w) apart. Parameters live outside the layer,
    in a dict: "W" (OIHW) and "b" (one per output channel)."""

    in_channels: int
    out_channels: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)

    def __post_init__(self) -> None:
        for name, low in (("in_channels", 1), ("out_channels", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer of at least {low}, got {value!r}")
        for name, low in (("kernel", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
            value = getattr(self, name)
            if (
                not isinstance(value, (tuple, list))
                or len(value) != 2
                or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= low for v in value)
            ):
                raise ValueError(f"{name} must be a pair of integers of at least {low}, got {value!r}")
            object.__setattr__(self, name, (int(value[0]), int(value[1])))

    def out_shape(self, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
        """(C_out, H_out, W_out) per example for an input of (C_in, H, W) per example, with on
        each axis  H_out = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1.  When s does not divide
        H + 2p − d(k − 1) − 1, the last rows of the input are read by no window."""
        if len(in_shape) != 3 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in in_shape):
            raise ValueError(f"in_shape must be three positive integers (C, H, W), got {in_shape!r}")
        c, h, w = in_shape
        if c != self.in_channels:
            raise ValueError(f"the input has {c} channels but the layer takes {self.in_channels}")
        sizes = []
        for axis, size, k, s, p, d in zip(
            ("height", "width"), (h, w), self.kernel, self.stride, self.padding, self.dilation, strict=True
        ):
            span = d * (k - 1) + 1
            if size + 2 * p < span:
                raise ValueError(
                    f"the dilated kernel's {axis}, {span}, is larger than the padded input's, {size + 2 * p}"
                )
            sizes.append((size + 2 * p - span) // s + 1)
        return (self.out_channels, sizes[0], sizes[1])

    def init(
        self, rng: np.random.Generator, in_shape: tuple[int, ...], dtype: np.dtype | type = np.float64
    ) -> dict[str, np.ndarray]:
        """W ~ N(0, 1/fan_in) and b ~ N(0, 1/fan_in), fan_in = C_in·kh·kw (as ``init_network``
        does for a dense layer), after checking that the layer fits ``in_shape``."""
        self.out_shape(in_shape)
        if np.dtype(dtype) not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
        kh, kw = self.kernel
        std = 1 / np.sqrt(self.in_channels * kh * kw)
        return {
            "W": (std * rng.standard_normal((self.out_channels, self.in_channels, kh, kw))).astype(dtype),
            "b": (std * rng.standard_normal(self.out_channels)).astype(dtype),
        }

    # The vectorized forms.

    @checks_input
    def forward(self, a_prev: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """z_f,ij = b_f + Σ_c Σ_uv W_fcuv · x_c,(s·i + d·u),(s·j + d·v) for every example, x the
        input padded with zeros; shape (n, C_out, H_out, W_out)."""
        z = correlate(pad(a_prev, self.padding), params["W"], self.stride, self.dilation)
        z += params["b"][:, None, None]  # one bias per output channel, at every position
        return z

    @checks_delta
    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Equation (2) up to its ⊙ g′: ∂Eₜ/∂a_prev per example, the full correlation of δ with
        the kernel rotated by 180°:

            ∂Eₜ/∂x_c,rq = Σ_f Σ_uv rot(W)_cfuv · δ̃_f,(r + d·u),(q + d·v)

        rot(W)_cfuv = W_f,c,(kh−1−u),(kw−1−v), and δ̃ is δ with s − 1 zeros between its elements,
        padded by d(k − 1) zeros before and up to the padded input's size after (more than
        d(k − 1) when s leaves rows unread: they get 0); the padding p is then cropped off, as
        it is no input. The steps are derived in docs/convolution.md.

        """
        (h, w), (dh, dw) = a_prev.shape[2:], self.dilation
        (kh, kw), (ph, pw) = self.kernel, self.padding
        spread = insert_zeros(delta, self.stride)
        before = (dh * (kh - 1), dw * (kw - 1))
        after = (h + 2 * ph - spread.shape[2], w + 2 * pw - spread.shape[3])
        full = surround(spread, before, after)
        grad_x = correlate(full, rotate180(params["W"]), (1, 1), self.dilation)  # (2), a full correlation
        return crop(grad_x, self.padding, (h, w))

    @checks_delta
    def parameter_gradients(
        self, delta: np.ndarray, a_prev: np.ndarray, params: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Equation (3), averaged over the n examples: a valid correlation of the padded input
        with δ,

            ∂E/∂W_fcuv = (1/n) Σₜ Σ_ij δ_f,ij · x_c,(s·i + d·u),(s·j + d·v)
            ∂E/∂b_f    = (1/n) Σₜ Σ_ij δ_f,ij
        """
        n, f = delta.shape[:2]
        x = im2col(pad(a_prev, self.padding), self.kernel, self.stride, self.dilation)  # (n, C·kh·kw, H_out·W_out)
        per_example = delta.reshape(n, f, -1) @ x.transpose(0, 2, 1)  # Σ_ij δ_f,ij · x_c,…: (n, F, C·kh·kw)
        grad_W = per_example.sum(axis=0).reshape(params["W"].shape) / n  # (3)
        grad_b = delta.sum(axis=(0, 2, 3)) / n  # (3), every position's bias input is 1
        return {"W": grad_W, "b": grad_b}

    # The loop forms: the index formulas as written, one number at a time.

    def _padded(self, a_prev: np.ndarray, t: int, c: int, row: int, col: int) -> float:
        """x_t,c,row,col of the padded input: a_prev's element, or 0 in the padding."""
        ph, pw = self.padding
        r, q = row - ph, col - pw
        inside = 0 <= r < a_prev.shape[2] and 0 <= q < a_prev.shape[3]
        return a_prev[t, c, r, q] if inside else 0.0

    @checks_input
    def forward_loops(self, a_prev: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """``forward`` as loops: z_f,ij = b_f + Σ_c Σ_uv W_fcuv · x_c,(s·i + d·u),(s·j + d·v)."""
        W, b = params["W"], params["b"]
        (sh, sw), (dh, dw) = self.stride, self.dilation
        n, (f_out, h_out, w_out) = a_prev.shape[0], self.out_shape(a_prev.shape[1:])
        z = np.zeros((n, f_out, h_out, w_out), a_prev.dtype)
        for t, f, i, j in np.ndindex(z.shape):
            total = b[f]
            for c, u, v in np.ndindex(W.shape[1:]):
                total += W[f, c, u, v] * self._padded(a_prev, t, c, sh * i + dh * u, sw * j + dw * v)
            z[t, f, i, j] = total
        return z

    @checks_delta
    def input_delta_loops(self, delta: np.ndarray, a_prev: np.ndarray, params: Mapping[str, np.ndarray]) -> np.ndarray:
        """``input_delta`` as loops, straight from the chain rule: z_f,ij reads x at
        (s·i + d·u, s·j + d·v) with weight W_fcuv, so δ_f,ij · W_fcuv flows back there (and is
        dropped when that position is padding)."""
        W = params["W"]
        (sh, sw), (dh, dw), (ph, pw) = self.stride, self.dilation, self.padding
        h, w = a_prev.shape[2:]
        grad_x = np.zeros(a_prev.shape, a_prev.dtype)
        for t, f, i, j in np.ndindex(delta.shape):
            for c, u, v in np.ndindex(W.shape[1:]):
                r, q = sh * i + dh * u - ph, sw * j + dw * v - pw  # the input it was read from
                if 0 <= r < h and 0 <= q < w:
                    grad_x[t, c, r, q] += delta[t, f, i, j] * W[f, c, u, v]  # (2)
        return grad_x

    @checks_delta
    def parameter_gradients_loops(
        self, delta: np.ndarray, a_prev: np.ndarray, params: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """``parameter_gradients`` as loops: for each weight, the sum over examples and
        positions of δ_f,ij times the input the weight multiplied there; then 1/n."""
        (sh, sw), (dh, dw) = self.stride, self.dilation
        n, f_out, h_out, w_out = delta.shape
        grad_W = np.zeros(params["W"].shape, a_prev.dtype)
        grad_b = np.zeros(params["b"].shape, a_prev.dtype)
        for f, c, u, v in np.ndindex(grad_W.shape):
            terms = (
                delta[t, f, i, j] * self._padded(a_prev, t, c, sh * i + dh * u, sw * j + dw * v)
                for t, i, j in np.ndindex(n, h_out, w_out)
            )
            grad_W[f, c, u, v] = sum(terms) / n  # (3)
        for f in range(f_out):
            grad_b[f] = sum(delta[t, f, i, j] for t, i, j in np.ndindex(n, h_out, w_out)) / n  # (3)
        return {"W": grad_W, "b": grad_b}

    # Checks.

    def check(self, a_prev: np.ndarray, params: Mapping[str, np.ndarray], delta: np.ndarray | None = None) -> None:
        """Raise ``ValueError`` with one clear sentence if a_prev, the parameters or δ do not fit
        the layer or each other (shapes, one float dtype, finite values)."""
        if not isinstance(a_prev, np.ndarray) or a_prev.ndim != 4:
            raise ValueError("a_prev must be a 4-D NumPy array in NCHW layout (examples, channels, height, width)")
        out = self.out_shape(a_prev.shape[1:])
        kh, kw = self.kernel
        W, b = params.get("W"), params.get("b")
        if not isinstance(W, np.ndarray) or W.shape != (self.out_channels, self.in_channels, kh, kw):
            raise ValueError(
                f"W must be an array of shape {(self.out_channels, self.in_channels, kh, kw)} (OIHW), "
                f"got {() if W is None else np.shape(W)}"
            )
        if not isinstance(b, np.ndarray) or b.shape != (self.out_channels,):
            raise ValueError(
                f"b must be an array of shape {(self.out_channels,)}, got {() if b is None else np.shape(b)}"
            )
        arrays = [a_prev, W, b]
        if delta is not None:
            if not isinstance(delta, np.ndarray) or delta.shape != (a_prev.shape[0],) + out:
                raise ValueError(f"δ must be an array of shape {(a_prev.shape[0],) + out}, got {np.shape(delta)}")
            arrays.append(delta)
        if a_prev.dtype not in FLOAT_DTYPES or any(x.dtype != a_prev.dtype for x in arrays):
            raise ValueError("a_prev, W, b (and δ) must share one dtype, float32 or float64")
        if not all(np.isfinite(x).all() for x in arrays):
            raise ValueError("a_prev, W, b or δ contains NaN or infinity")
