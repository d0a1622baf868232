"""Train a small network on two interleaved spirals by gradient descent, twice from the same
start: once with the hand-derived gradients of ``manual``, once with ``jax.grad``. The two loss
curves coincide to rounding; the figure shows both and the decision boundary learned by hand.

    python examples/train_spirals.py [--steps 3000] [--output spirals.png]

Prints the first and last loss of each run and the largest difference between the curves.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import manual

WIDTHS = (2, 24, 24, 1)
LEARNING_RATE = 0.5


def spirals(n_per_arm: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals in the plane: x of shape (2n, 2), labels y in {0, 1}, shape (2n, 1)."""
    rng = np.random.default_rng(seed)
    t = np.sqrt(rng.uniform(0.05, 1, n_per_arm)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.02, (2 * n_per_arm, 2))
    y = np.concatenate([np.zeros(n_per_arm), np.ones(n_per_arm)])[:, None]
    return x, y


def network(seed: int = 1) -> manual.Network:
    tanh, sigmoid = manual.CATALOGUE["tanh"], manual.CATALOGUE["sigmoid"]
    return manual.init_network(WIDTHS, [tanh, tanh, sigmoid], np.random.default_rng(seed), scale=1.5)


def train_by_hand(net: manual.Network, x, y, steps: int) -> tuple[manual.Network, list[float]]:
    """Gradient descent with equations (1), (2), (3): Θ⁽ᵏ⁾ ← Θ⁽ᵏ⁾ − η ∂E/∂Θ⁽ᵏ⁾."""
    loss, curve = manual.BINARY_CROSS_ENTROPY, []
    fused_error = loss.fused_error  # Eₜ from the logits z⁽ᴸ⁾, for sigmoid and cross-entropy
    assert fused_error is not None
    theta, b = list(net.theta), list(net.b)
    for _ in range(steps):
        net = manual.Network(tuple(theta), tuple(b), net.g)
        fwd = manual.forward(net, x)
        curve.append(float(np.mean(fused_error(fwd.z[-1], y, np))))
        grads = manual.backward(net, fwd.z, fwd.a, y, loss=loss)
        for k in range(1, net.depth + 1):
            theta_k, b_k, d_theta, d_b = theta[k], b[k], grads.theta[k], grads.b[k]
            assert theta_k is not None and b_k is not None and d_theta is not None and d_b is not None  # k ≥ 1
            theta[k] = theta_k - LEARNING_RATE * d_theta
            b[k] = b_k - LEARNING_RATE * d_b
    return manual.Network(tuple(theta), tuple(b), net.g), curve


def train_with_jax(net: manual.Network, x, y, steps: int) -> list[float]:
    """The same descent with ``jax.grad`` of the same error, in float64."""
    loss = manual.BINARY_CROSS_ENTROPY
    g = net.g

    def error(params, x, y):
        a = x
        for k, (theta, bias) in enumerate(params, start=1):
            z = a @ theta.T + bias
            a = g[k].forward(z, jnp)
        return jnp.mean(loss.fused_error(z, y, jnp))

    @jax.jit
    def step(params, x, y):
        value, grads = jax.value_and_grad(error)(params, x, y)
        return [
            (t - LEARNING_RATE * gt, c - LEARNING_RATE * gc) for (t, c), (gt, gc) in zip(params, grads, strict=True)
        ], value

    curve = []
    with jax.enable_x64(True):
        params = [(jnp.asarray(t), jnp.asarray(c)) for t, c in zip(net.theta[1:], net.b[1:], strict=True)]
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        for _ in range(steps):
            params, value = step(params, xj, yj)
            curve.append(float(value))
    return curve


def draw(net, x, y, by_hand, by_jax, output: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    # The loss-curve panel of train_shapes.py too: each example is one self-contained script, to read and run
    # alone (the tests load it by its path), so the two share no module.
    left.semilogy(by_hand, label="gradients by hand (manual)", linewidth=3, alpha=0.5)
    left.semilogy(by_jax, label="gradients by jax.grad", linestyle="--")
    left.set_xlabel("step")
    left.set_ylabel("E (binary cross-entropy)")
    left.set_title(f"largest gap between the curves: {np.max(np.abs(np.subtract(by_hand, by_jax))):.1e}")
    left.legend()
    grid = np.linspace(-1.2, 1.2, 200)
    gx, gy = np.meshgrid(grid, grid)
    p = manual.forward(net, np.stack([gx.ravel(), gy.ravel()], axis=1)).a[-1].reshape(gx.shape)
    right.contourf(gx, gy, p, levels=20, cmap="RdBu", alpha=0.6)
    right.contour(gx, gy, p, levels=[0.5], colors="k")
    right.scatter(x[:, 0], x[:, 1], c=y[:, 0], cmap="RdBu", edgecolors="k", s=12)
    right.set_title("decision boundary learned with the hand-derived gradients")
    right.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--output", default="spirals.png")
    args = parser.parse_args()
    start = time.perf_counter()
    x, y = spirals()
    trained, by_hand = train_by_hand(network(), x, y, args.steps)
    by_jax = train_with_jax(network(), x, y, args.steps)
    accuracy = np.mean((manual.forward(trained, x).a[-1] > 0.5) == (y > 0.5))
    # The same report as train_shapes.py's, written again because each example stands alone (see draw).
    draw(trained, x, y, by_hand, by_jax, args.output)
    print(f"by hand:  loss {by_hand[0]:.4f} → {by_hand[-1]:.4f}; accuracy {accuracy:.1%}")
    print(f"jax.grad: loss {by_jax[0]:.4f} → {by_jax[-1]:.4f}")
    print(f"largest difference between the two curves: {np.max(np.abs(np.subtract(by_hand, by_jax))):.2e}")
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
