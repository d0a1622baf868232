"""One full forward + backward step on an MLP 784-1024-1024-1024-10, batch 512, ReLU hidden
layers and an identity output under the squared error, in float32 and float64:

- manual_ms: ``manual.gradients`` (NumPy: the forward pass and equations (1), (2), (3));
- jax_jit_ms: ``jax.jit(jax.grad(E))`` of the same network, after compilation;
- roofline_ms: the step's matrix-multiply FLOPs divided by the GEMM throughput NumPy reaches on
  this machine, measured in the same run on a square product of the same dtype;
- gemm_only_ms: the step's own matrix products (its shapes and layouts) timed alone, back to
  back: the step without any elementwise work;
- manual_retained_heap_ms: ``manual.gradients`` again, in a child process whose C allocator
  keeps freed memory (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``). A step returns
  about 30 MB of fresh arrays (every z, a, δ and gradient); with glibc's defaults the memory of
  the previous step has gone back to the kernel, and touching it again costs about 8,000 page
  faults a step. XLA keeps its buffers. This figure shows the arithmetic alone; ``manual_ms``
  is the one the targets are judged by.

Each figure is the median of ``--repeats`` timed runs (after a warm-up).

    python benchmarks/mlp_step.py [--repeats 7] [--json]
"""

from __future__ import annotations

import resource

import jax
import jax.numpy as jnp
import numpy as np
from _common import manual_only_in_child, median_ms, step_results

import manual

WIDTHS = (784, 1024, 1024, 1024, 10)
BATCH = 512


def step_flops() -> float:
    """Forward: 2·n·in·out per layer. Backward: (3) costs the same per layer, (2) the same for
    every layer but the first (no δ is needed for the input)."""
    pairs = list(zip(WIDTHS[:-1], WIDTHS[1:], strict=True))
    forward = sum(2 * BATCH * i * o for i, o in pairs)
    weights = forward
    deltas = sum(2 * BATCH * i * o for i, o in pairs[1:])
    return forward + weights + deltas


def gemm_only_ms(dtype, repeats: int) -> float:
    """The step's own matrix products, with their shapes and layouts, timed back to back with
    nothing else: what the step would cost if all its elementwise work were free."""
    rng = np.random.default_rng(0)
    pairs = list(zip(WIDTHS[:-1], WIDTHS[1:], strict=True))
    a = [rng.standard_normal((BATCH, i)).astype(dtype) for i, _ in pairs]
    theta = [rng.standard_normal((o, i)).astype(dtype) for i, o in pairs]
    delta = [rng.standard_normal((BATCH, o)).astype(dtype) for _, o in pairs]

    def products():
        for k in range(len(pairs)):
            a[k] @ theta[k].T  # forward: z⁽ᵏ⁾
            delta[k].T @ a[k]  # (3): ∂E/∂Θ⁽ᵏ⁾
            if k > 0:
                delta[k] @ theta[k]  # (2): δ⁽ᵏ⁻¹⁾ before g′

    return median_ms(products, repeats)


def gemm_flops_per_second(dtype, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024)).astype(dtype)
    b = rng.standard_normal((1024, 1024)).astype(dtype)
    ms = median_ms(lambda: a @ b, repeats)
    return 2 * 1024**3 / (ms / 1e3)


RETAINED_HEAP = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**40)}


def problem(dtype):
    rng = np.random.default_rng(0)
    relu, identity = manual.CATALOGUE["relu"], manual.CATALOGUE["identity"]
    g = [relu] * (len(WIDTHS) - 2) + [identity]
    net = manual.init_network(WIDTHS, g, rng, dtype=dtype)
    x = rng.standard_normal((BATCH, WIDTHS[0])).astype(dtype)
    y = rng.standard_normal((BATCH, WIDTHS[-1])).astype(dtype)
    return net, x, y


def manual_only(dtype, repeats: int) -> dict:
    """The manual step's median time and its minor page faults per step."""
    net, x, y = problem(dtype)
    manual.gradients(net, x, y)
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ms = median_ms(lambda: manual.gradients(net, x, y), repeats)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / (repeats + 1)
    return {"ms": ms, "page_faults_per_step": faults}


def retained_heap(dtype, repeats: int) -> dict:
    """``manual_only`` in a child process whose C allocator keeps freed memory."""
    return manual_only_in_child(__file__, dtype, repeats, RETAINED_HEAP)


def measure(dtype, repeats: int) -> dict:
    net, x, y = problem(dtype)
    alone = manual_only(dtype, repeats)
    manual_ms = alone["ms"]

    with jax.enable_x64(dtype == np.float64):
        params = [(jnp.asarray(t), jnp.asarray(b)) for t, b in zip(net.theta[1:], net.b[1:], strict=True)]

        def error(params, x, y):
            a = x
            for k, (theta, b) in enumerate(params):
                z = a @ theta.T + b
                a = jax.nn.relu(z) if k < len(params) - 1 else z
            return jnp.mean(0.5 * jnp.sum((a - y) ** 2, axis=-1))

        step = jax.jit(jax.grad(error))
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        jax_ms = median_ms(lambda: jax.block_until_ready(step(params, xj, yj)), repeats)

    roofline_ms = 1e3 * step_flops() / gemm_flops_per_second(dtype, repeats)
    kept = retained_heap(dtype, repeats)
    return {
        "manual_ms": manual_ms,
        "jax_jit_ms": jax_ms,
        "roofline_ms": roofline_ms,
        "gemm_only_ms": gemm_only_ms(dtype, repeats),
        "manual_over_jax": manual_ms / jax_ms,
        "manual_over_roofline": manual_ms / roofline_ms,
        "page_faults_per_step": alone["page_faults_per_step"],
        "manual_retained_heap_ms": kept["ms"],
        "retained_heap_page_faults_per_step": kept["page_faults_per_step"],
        "retained_heap_over_jax": kept["ms"] / jax_ms,
        "retained_heap_over_roofline": kept["ms"] / roofline_ms,
    }


def main() -> None:
    done = step_results(__doc__.splitlines()[0], manual_only, measure)
    if done is None:  # --manual-only or --json: already printed
        return
    results, repeats = done
    print(f"MLP {'-'.join(map(str, WIDTHS))}, batch {BATCH}, ReLU; median of {repeats} runs")
    for name, r in results.items():
        print(
            f"{name}: manual {r['manual_ms']:.1f} ms, jax.jit(jax.grad) {r['jax_jit_ms']:.1f} ms, "
            f"GEMM roofline {r['roofline_ms']:.1f} ms  (manual/jax {r['manual_over_jax']:.2f}, "
            f"manual/roofline {r['manual_over_roofline']:.2f}); {r['page_faults_per_step']:.0f} page faults a step"
        )
        print(f"  the step's matrix products alone: {r['gemm_only_ms']:.1f} ms")
        print(
            f"  with freed memory kept by the allocator: manual {r['manual_retained_heap_ms']:.1f} ms "
            f"(manual/jax {r['retained_heap_over_jax']:.2f}, manual/roofline {r['retained_heap_over_roofline']:.2f})"
        )


if __name__ == "__main__":
    main()
