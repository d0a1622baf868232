"""One full forward + backward step (every parameter's gradient, no update) of a LeNet-sized
network, batch 64, in float32 and float64:

    x (1×28×28) → conv 6@5×5, tanh → max pool 2×2, stride 2 → conv 16@5×5, tanh
                → max pool 2×2, stride 2 → flatten (256) → dense 120, tanh → dense 84, tanh
                → dense 10 (identity), under the squared error (``manual.MSE``)

- manual_ms: ``manual.layers.layer_gradients`` (NumPy: ``Conv2D``, ``MaxPool2D``, ``Flatten``,
  ``Dense`` and equations (1), (2), (3));
- jax_jit_ms: ``jax.jit(jax.grad(E))`` of the same network written plainly with
  ``lax.conv_general_dilated`` and ``lax.reduce_window``, compiled before timing, each run
  ended by ``block_until_ready``;
- ratio: manual_ms / jax_jit_ms, both measured in the same run;
- manual_one_blas_thread_ms (and one_blas_thread_ratio): ``manual_ms`` again, in a child process
  with ``OPENBLAS_NUM_THREADS=1``. OpenBLAS splits the dense layers' products (64×256 by 256×120
  and smaller) over both cores; when the other core is busy with another program, each product
  waits for its second thread to be scheduled, milliseconds each time (the convolutions' products,
  one per example, are small enough to stay on one thread). This figure shows the step without
  that wait; ``manual_ms`` is the one the targets are judged by.

Each figure is the median of ``--repeats`` timed runs (after a warm-up).

Before timing, every gradient of the hand step is checked once against jax's, so that the
benchmark never times a wrong computation. The check is relative to each gradient array's
largest entry: ``max|manual − jax| ≤ TOLERANCE_EPS · eps · max|jax|``, eps the dtype's machine
epsilon. Both sides sum the same terms in different orders (the longest sum, the first
convolution's weight gradient, has 64·24·24 = 36,864 terms), so they differ by rounding only:
measured with three data seeds, the largest difference is 6 eps, in float32 and in float64.
TOLERANCE_EPS = 256 (3.1e-5 in float32, 5.7e-14 in float64) leaves a margin of 40 for other
data and summation orders, while a mistake in a derivative (a wrong index, a missing 1/n, a
kernel not rotated) is off by a relative O(1) and fails.

    python benchmarks/lenet_step.py [--repeats 7] [--json]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import numpy as np
from _common import manual_only_in_child, median_ms, step_results
from jax import lax

import manual
from manual.conv import Conv2D
from manual.layers import Dense, init_layer_network, layer_gradients
from manual.pooling import Flatten, MaxPool2D

BATCH = 64
IN_SHAPE = (1, 28, 28)
OUTPUTS = 10
TANH = manual.CATALOGUE["tanh"]
TOLERANCE_EPS = 256
"""The check's tolerance in units of the dtype's eps, relative to each gradient's largest entry."""
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1"}


def problem(dtype):
    rng = np.random.default_rng(0)
    # LeNet as the docstring draws it, in init_layer_network's (layer, activation) form, the form
    # examples/train_shapes.py uses for its own, smaller network: the form is shared, not the layers.
    stack = [
        (Conv2D(1, 6, (5, 5)), TANH),
        (MaxPool2D((2, 2), (2, 2)), None),
        (Conv2D(6, 16, (5, 5)), TANH),
        (MaxPool2D((2, 2), (2, 2)), None),
        (Flatten(), None),
        (Dense(120), TANH),
        (Dense(84), TANH),
        (Dense(OUTPUTS), None),
    ]
    net = init_layer_network(IN_SHAPE, stack, rng, dtype=dtype)
    x = rng.standard_normal((BATCH, *IN_SHAPE)).astype(dtype)
    y = rng.standard_normal((BATCH, OUTPUTS)).astype(dtype)
    return net, x, y


def conv(a, W, b):
    z = lax.conv_general_dilated(
        a, W, window_strides=(1, 1), padding="VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
    )
    return z + b[None, :, None, None]


def max_pool(a):
    return lax.reduce_window(a, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")


def error(params, x, y):
    """E = (1/n) Σₜ Eₜ of the same network, written with JAX's operations."""
    (W1, b1), (W2, b2), (T3, b3), (T4, b4), (T5, b5) = params
    a = max_pool(TANH.forward(conv(x, W1, b1), jnp))
    a = max_pool(TANH.forward(conv(a, W2, b2), jnp))
    a = a.reshape(a.shape[0], -1)
    a = TANH.forward(a @ T3.T + b3, jnp)
    a = TANH.forward(a @ T4.T + b4, jnp)
    return jnp.mean(manual.MSE.error(a @ T5.T + b5, y, jnp))


def as_pairs(params) -> list[tuple[np.ndarray, np.ndarray]]:
    """Parameters (or their gradients) by layer, index 0 ``None``, in ``error``'s order: (W, b) of
    each convolution, (Θ, b) of each dense layer; the pooling and flatten layers have none."""
    return [(p.get("W", p.get("theta")), p["b"]) for p in params[1:] if p]


def check_gradients(manual_grads: list, jax_grads: list, dtype) -> None:
    """Raise ``AssertionError`` unless every hand gradient is jax's up to rounding (module docstring)."""
    eps = float(np.finfo(dtype).eps)
    for k, (mine, theirs) in enumerate(zip(manual_grads, jax_grads, strict=True), start=1):
        for name, m, j in zip(("W", "b"), mine, theirs, strict=True):
            j = np.asarray(j)
            assert m.dtype == j.dtype == dtype, f"parameter layer {k} {name}: {m.dtype} vs {j.dtype}"
            worst = float(np.max(np.abs(m - j)))
            bound = TOLERANCE_EPS * eps * float(np.max(np.abs(j)))
            assert worst <= bound, f"parameter layer {k} {name}: max |manual − jax| {worst:.3g} > {bound:.3g}"


def manual_only(dtype, repeats: int) -> float:
    """The manual step's median time, in this process's BLAS setting."""
    net, x, y = problem(dtype)
    return median_ms(lambda: layer_gradients(net, x, y, loss=manual.MSE), repeats)


def one_blas_thread(dtype, repeats: int) -> float:
    """``manual_only`` in a child process whose OpenBLAS runs on one thread."""
    return manual_only_in_child(__file__, dtype, repeats, ONE_BLAS_THREAD)


def measure(dtype, repeats: int) -> dict:
    net, x, y = problem(dtype)
    with jax.enable_x64(dtype == np.float64):
        params = [(jnp.asarray(w), jnp.asarray(b)) for w, b in as_pairs(net.params)]
        step = jax.jit(jax.grad(error))
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        grads = step(params, xj, yj)
        check_gradients(as_pairs(layer_gradients(net, x, y, loss=manual.MSE).params), grads, dtype)
        manual_ms = manual_only(dtype, repeats)
        jax_ms = median_ms(lambda: jax.block_until_ready(step(params, xj, yj)), repeats)
    one_thread_ms = one_blas_thread(dtype, repeats)
    return {
        "manual_ms": manual_ms,
        "jax_jit_ms": jax_ms,
        "ratio": manual_ms / jax_ms,
        "manual_one_blas_thread_ms": one_thread_ms,
        "one_blas_thread_ratio": one_thread_ms / jax_ms,
    }


def main() -> None:
    done = step_results(__doc__.splitlines()[0], manual_only, measure)
    if done is None:  # --manual-only or --json: already printed
        return
    results, repeats = done
    print(
        f"LeNet {IN_SHAPE[0]}×{IN_SHAPE[1]}×{IN_SHAPE[2]} → conv 6@5×5 → pool 2 → conv 16@5×5 → pool 2 "
        f"→ 120 → 84 → {OUTPUTS}, tanh, batch {BATCH}; median of {repeats} runs"
    )
    for name, r in results.items():
        print(
            f"{name}: manual {r['manual_ms']:.2f} ms, jax.jit(jax.grad) {r['jax_jit_ms']:.2f} ms "
            f"(manual/jax {r['ratio']:.2f})"
        )
        print(
            f"  with NumPy's BLAS on one thread: manual {r['manual_one_blas_thread_ms']:.2f} ms "
            f"(manual/jax {r['one_blas_thread_ratio']:.2f})"
        )


if __name__ == "__main__":
    main()
