"""δ flowing back through one convolution, in pictures: equation (2) for a 3×3 kernel moved with
stride 2 over a 1×7×7 input padded by 1, one step per panel, the numbers in the cells.

    python examples/delta_flow.py [--output docs/figures/delta-flow.png]

The steps are those of the full-correlation form derived in docs/convolution.md (which
``Conv2D.input_delta`` equals), with the helpers of ``manual/conv.py``: insert s − 1 zeros
between the elements of δ (``insert_zeros``), pad the result to the full size, correlate it with
the kernel rotated by 180° (``rotate180``, ``correlate``), and crop the padding off (``crop``).
The last panel is ∂E/∂a from ``jax.vjp`` (``reference.conv.conv2d_vjp``); the largest difference
is printed in its title. The error is E = Σ z·δ, so that δ = ∂E/∂z is whatever we choose: small
integers, to keep the sums readable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from manual.conv import Conv2D, correlate, crop, insert_zeros, rotate180
from reference.conv import conv2d_vjp

Pair = tuple[int, int]
KERNEL = np.array([[1, 2, 0], [-1, 0, 1], [0, -2, 1]], dtype=float)[None, None]
"""W, OIHW: one input channel, one output channel; no symmetry, so that rotating it matters."""
STRIDE, PADDING = (2, 2), (1, 1)


@dataclass(frozen=True)
class Flow:
    """Every intermediate of equation (2) as a full correlation, NCHW (one example, one channel here)."""

    delta: np.ndarray  # δ = ∂E/∂z, the output's shape
    spread: np.ndarray  # δ̂: s − 1 zeros between neighbouring elements
    padded: np.ndarray  # δ̃: δ̂ padded by k − 1 before and up to the full size after
    rotated: np.ndarray  # rot(W): the kernel turned by 180°, channels swapped (IOHW)
    full: np.ndarray  # δ̃ ⋆ rot(W): the full correlation, the size of the padded input
    grad_a: np.ndarray  # ∂E/∂a: the full correlation with the padding cropped off


def example(size: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An input a (1, 1, size, size), the kernel W and a δ of the output's shape, with nonzero
    integer entries (so that no entry of δ looks like an inserted zero)."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(1, 1, size, size))
    out = Conv2D(1, 1, (3, 3), STRIDE, PADDING).out_shape((1, size, size))
    delta = rng.choice([-3.0, -2.0, -1.0, 1.0, 2.0, 3.0], size=(1, *out))
    return a, KERNEL.copy(), delta


def flow(
    delta: np.ndarray,
    W: np.ndarray,
    in_size: Pair,
    stride: Pair = STRIDE,
    padding: Pair = PADDING,
    turn: Callable[[np.ndarray], np.ndarray] = rotate180,
) -> Flow:
    """Equation (2) up to its ⊙ g′, step by step (dilation 1): ∂Eₜ/∂a = crop(δ̃ ⋆ rot(W)).
    ``turn`` is the kernel's turn; anything but ``rotate180`` gives a wrong ∂E/∂a."""
    (h, w), (kh, kw), (ph, pw) = in_size, W.shape[2:], padding
    spread = insert_zeros(delta, stride)  # step 1: δ̂
    before = (kh - 1, kw - 1)
    after = (h + 2 * ph - spread.shape[2], w + 2 * pw - spread.shape[3])  # ≥ k − 1 when rows go unread
    padded = np.pad(spread, ((0, 0), (0, 0), (before[0], after[0]), (before[1], after[1])))  # step 2: δ̃
    rotated = turn(W)
    full = correlate(padded, rotated, (1, 1), (1, 1))  # step 2: a full correlation, (2)
    grad_a = crop(full, padding, (h, w))  # step 3
    return Flow(delta, spread, padded, rotated, full, grad_a)


def autodiff(
    a: np.ndarray, W: np.ndarray, delta: np.ndarray, stride: Pair = STRIDE, padding: Pair = PADDING
) -> np.ndarray:
    """∂E/∂a for E = Σ z·δ, z the convolution of a with W, from ``jax.vjp`` in float64."""
    grad_a, _, _ = conv2d_vjp(a, W, np.zeros(W.shape[0]), delta, stride, padding)
    return grad_a


def cells(ax, M: np.ndarray, title: str, side: int, faint: np.ndarray | None = None, box: tuple | None = None) -> None:
    """M drawn as a grid of coloured cells with its numbers written in them, centred in a
    ``side`` × ``side`` frame (so that a cell is the same size in every panel); ``faint`` marks the
    cells to write in grey (zeros added by a step), ``box`` = (row, col, height, width) is outlined."""
    from matplotlib.patches import Rectangle

    rows, cols = M.shape
    limit = 1.6 * max(np.max(np.abs(M)), 1e-12)  # pale colours: the numbers stay readable
    ax.imshow(M, cmap="RdBu_r", vmin=-limit, vmax=limit)
    for (r, c), value in np.ndenumerate(M):
        grey = faint is not None and faint[r, c]
        text = "0" if abs(value) < 5e-13 else f"{value:.3g}"
        ax.text(
            c,
            r,
            text,
            ha="center",
            va="center",
            fontsize=9,
            color="0.6" if grey else "black",
            fontweight="normal" if grey else "bold",
        )
    ax.hlines(np.arange(rows + 1) - 0.5, -0.5, cols - 0.5, color="0.75", linewidth=0.8)
    ax.vlines(np.arange(cols + 1) - 0.5, -0.5, rows - 0.5, color="0.75", linewidth=0.8)
    if box is not None:
        r, c, h, w = box
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor="black", linewidth=2.5))
    left, top = -0.5 - (side - cols) / 2, -0.5 - (side - rows) / 2
    ax.set_xlim(left, left + side)
    ax.set_ylim(top + side, top)
    ax.axis("off")
    ax.set_title(title, fontsize=10)


def draw(f: Flow, W: np.ndarray, reference: np.ndarray, output: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (h, w), (ph, pw) = f.grad_a.shape[2:], PADDING
    (kh, kw), sh = W.shape[2:], STRIDE[0]
    from_delta: np.ndarray = np.zeros(f.spread.shape[2:], bool)  # 2-D (NumPy's stubs type it 0-D)
    from_delta[:: STRIDE[0], :: STRIDE[1]] = True
    in_padded = np.zeros(f.padded.shape[2:], bool)
    in_padded[kh - 1 : kh - 1 + from_delta.shape[0], kw - 1 : kw - 1 + from_delta.shape[1]] = from_delta
    difference = np.max(np.abs(f.grad_a - reference))

    side = max(f.padded.shape[2:])
    fig, axes = plt.subplots(2, 4, figsize=(17, 9.5), layout="constrained")
    cells(axes[0, 0], W[0, 0], f"the kernel W (forward: z = W ⋆ pad(a), stride {sh})", side)
    cells(axes[0, 1], f.delta[0, 0], f"① δ = ∂E/∂z, the output's {f.delta.shape[2]}×{f.delta.shape[3]}", side)
    cells(axes[0, 2], f.spread[0, 0], f"② δ̂: s − 1 = {sh - 1} zero between neighbours", side, faint=~from_delta)
    cells(
        axes[0, 3],
        f.padded[0, 0],
        f"③ δ̃: δ̂ padded by k − 1 = {kh - 1} zeros, full size",
        side,
        faint=~in_padded,
        box=(kh - 1, kw - 1, *from_delta.shape),
    )
    cells(axes[1, 0], f.rotated[0, 0], "④ rot(W): the kernel turned by 180°", side)
    full_size = f"{f.full.shape[2]}×{f.full.shape[3]}"
    cells(axes[1, 1], f.full[0, 0], f"⑤ δ̃ ⋆ rot(W): {full_size}, the padded input's size", side, box=(ph, pw, h, w))
    cells(axes[1, 2], f.grad_a[0, 0], f"⑥ crop p = {ph}: ∂E/∂a by hand, {h}×{w}", side)
    cells(axes[1, 3], reference[0, 0], f"∂E/∂a by jax.vjp: max |difference| {difference:.1e}", side)
    fig.suptitle(
        f"δ flowing back through one convolution: input 1×{h}×{w}, kernel {kh}×{kw}, stride {STRIDE}, "
        f"padding {PADDING}, E = Σ z·δ\n"
        "(grey: zeros added by a step; box in ③: δ̂; box in ⑤: what the crop keeps)",
        fontsize=12,
    )
    fig.savefig(output, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="docs/figures/delta-flow.png")
    args = parser.parse_args(argv)
    a, W, delta = example()
    f = flow(delta, W, a.shape[2:])
    reference = autodiff(a, W, delta)
    draw(f, W, reference, args.output)
    print(f"∂E/∂a by hand (rows):\n{f.grad_a[0, 0]}")
    print(f"largest difference from jax.vjp: {np.max(np.abs(f.grad_a - reference)):.2e}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
