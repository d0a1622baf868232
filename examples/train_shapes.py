"""Train a small convolutional network to tell bars from crosses by gradient descent, twice from
the same start: once with the hand-derived gradients of ``manual.layer_gradients``, once with
``jax.grad`` of a plain JAX forward pass. The two loss curves coincide to rounding; the figure
shows both and a few images with the labels the hand-trained network gives them.

    python examples/train_shapes.py [--steps 400] [--output shapes.png] [--seed 0]

The network: conv 1→4 3×3 tanh, max pool 2×2, conv 4→4 3×3 tanh, max pool 3×3 (over the whole
3×3 map: where a stroke is does not matter), flatten, dense → 1 sigmoid, with binary
cross-entropy. The second convolution makes δ flow back through a convolution (equation (2),
the rotated kernel) and through max pooling, not only into a kernel (3). The step size is small
enough for the descent to be smooth: with a large one the loss jumps up and down, and such a
descent amplifies the rounding differences between the two runs until the curves part.
Prints the first and last loss of each run, the largest difference between the curves and the
training accuracy.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import manual
from manual.conv import Conv2D
from manual.layers import Dense, Layer, LayerNetwork, kind_of
from manual.pooling import Flatten, MaxPool2D
from reference.layers import FORWARD

SIDE = 12
LEARNING_RATE = 0.1
LABELS = ("bar", "cross")
LOSS = manual.BINARY_CROSS_ENTROPY


def bar(rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """One straight stroke, horizontal or vertical, of random length, thickness and position."""
    image = np.zeros((side, side))
    length, thickness = rng.integers(5, side - 1), rng.integers(1, 3)
    r, c = rng.integers(0, side - thickness + 1), rng.integers(0, side - length + 1)
    image[r : r + thickness, c : c + length] = 1.0
    return image if rng.random() < 0.5 else image.T


def cross(rng: np.random.Generator, side: int = SIDE) -> np.ndarray:
    """A horizontal and a vertical stroke that cross, arms of random length, at a random place."""
    image = np.zeros((side, side))
    thickness = rng.integers(1, 3)
    r, c = rng.integers(2, side - 2 - thickness + 1, size=2)  # where the strokes meet
    up, down, left, right = rng.integers(2, 5, size=4)
    image[r : r + thickness, max(c - left, 0) : c + thickness + right] = 1.0
    image[max(r - up, 0) : r + thickness + down, c : c + thickness] = 1.0
    return image


def shapes(n_per_class: int = 120, seed: int = 0, noise: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Bars (label 0) and crosses (label 1) with Gaussian noise: x of shape (2n, 1, 12, 12), y (2n, 1)."""
    rng = np.random.default_rng(seed)
    images = [bar(rng) for _ in range(n_per_class)] + [cross(rng) for _ in range(n_per_class)]
    x = np.stack(images)[:, None] + rng.normal(0, noise, (2 * n_per_class, 1, SIDE, SIDE))
    y = np.concatenate([np.zeros(n_per_class), np.ones(n_per_class)])[:, None]
    return x, y


def network(seed: int = 1) -> LayerNetwork:
    """conv 1→4 3×3 tanh (12×12 → 10×10), max pool 2 (→ 5×5), conv 4→4 3×3 tanh (→ 3×3),
    max pool 3 (→ 1×1), flatten (→ 4), dense → 1 sigmoid."""
    tanh, sigmoid = manual.CATALOGUE["tanh"], manual.CATALOGUE["sigmoid"]
    # init_layer_network's (layer, activation) form, as benchmarks/lenet_step.py writes LeNet: another
    # network, so each lists its own layers.
    stack: list[tuple[Layer, manual.Activation | None]] = [
        (Conv2D(1, 4, (3, 3)), tanh),
        (MaxPool2D((2, 2), (2, 2)), None),
        (Conv2D(4, 4, (3, 3)), tanh),
        (MaxPool2D((3, 3), (3, 3)), None),
        (Flatten(), None),
        (Dense(1), sigmoid),
    ]
    return manual.init_layer_network((1, SIDE, SIDE), stack, np.random.default_rng(seed))


def with_params(net: LayerNetwork, params: list) -> LayerNetwork:
    """The same layers and activations with other parameters."""
    return LayerNetwork(net.in_shape, net.layers, tuple(params), net.g)


def train_by_hand(net: LayerNetwork, x, y, steps: int) -> tuple[LayerNetwork, list[float]]:
    """Gradient descent with equations (1), (2), (3) through the layers: θ ← θ − η ∂E/∂θ for every
    parameter θ (kernels W, biases b, the dense layer's Θ)."""
    curve, theta = [], list(net.params)
    fused_error = LOSS.fused_error  # Eₜ from the logits z⁽ᴸ⁾, for sigmoid and cross-entropy
    assert fused_error is not None
    for _ in range(steps):
        net = with_params(net, theta)
        fwd = manual.layer_forward(net, x)
        curve.append(float(np.mean(fused_error(fwd.z[-1], y, np))))
        grads = manual.layer_backward(net, fwd.z, fwd.a, y, loss=LOSS)
        for k in range(1, net.depth + 1):
            theta[k] = {name: value - LEARNING_RATE * grads.params[k][name] for name, value in theta[k].items()}
    return with_params(net, theta), curve


def train_with_jax(net: LayerNetwork, x, y, steps: int) -> list[float]:
    """The same descent with ``jax.grad`` of the same error, in float64; each layer's forward pass
    is ``reference.layers.FORWARD`` (lax.conv_general_dilated, lax.reduce_window, reshape, @)."""
    layers, g = net.layers, net.g

    def error(params, x, y):
        a = x
        for k in range(1, len(layers)):
            z = FORWARD[kind_of(layers[k])](a, params[k - 1], layers[k])
            a = z if g[k] is None else g[k].forward(z, jnp)
        return jnp.mean(LOSS.fused_error(z, y, jnp))

    @jax.jit
    def step(params, x, y):
        value, grads = jax.value_and_grad(error)(params, x, y)
        return jax.tree_util.tree_map(lambda p, dp: p - LEARNING_RATE * dp, params, grads), value

    curve = []
    with jax.enable_x64(True):
        params = [{name: jnp.asarray(v) for name, v in p.items()} for p in net.params[1:]]
        xj, yj = jnp.asarray(x), jnp.asarray(y)
        for _ in range(steps):
            params, value = step(params, xj, yj)
            curve.append(float(value))
    return curve


def predict(net: LayerNetwork, x: np.ndarray) -> np.ndarray:
    """The probability of a cross for each image, a⁽ᴸ⁾, shape (n,)."""
    return manual.layer_forward(net, x).a[-1][:, 0]


def accuracy(net: LayerNetwork, x: np.ndarray, y: np.ndarray) -> float:
    """The fraction of images whose label the network gets right (a cross when a⁽ᴸ⁾ > ½)."""
    return float(np.mean((predict(net, x) > 0.5) == (y[:, 0] > 0.5)))


def draw(net, x, y, by_hand, by_jax, output: str, samples: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(13, 4.5))
    grid = fig.add_gridspec(2, 2 + samples // 2, width_ratios=[3, 0.3] + [1] * (samples // 2))
    left = fig.add_subplot(grid[:, 0])
    # The loss-curve panel of train_spirals.py too: each example is one self-contained script, to read and run
    # alone (the tests load it by its path), so the two share no module.
    left.semilogy(by_hand, label="gradients by hand (manual)", linewidth=3, alpha=0.5)
    left.semilogy(by_jax, label="gradients by jax.grad", linestyle="--")
    left.set_xlabel("step")
    left.set_ylabel("E (binary cross-entropy)")
    left.set_title(f"largest gap between the curves: {np.max(np.abs(np.subtract(by_hand, by_jax))):.1e}")
    left.legend()
    chosen = np.random.default_rng(0).choice(len(x), samples, replace=False)
    p = predict(net, x[chosen])
    for m, t in enumerate(chosen):
        ax = fig.add_subplot(grid[m // (samples // 2), 2 + m % (samples // 2)])
        ax.imshow(x[t, 0], cmap="gray_r")
        right = (p[m] > 0.5) == (y[t, 0] > 0.5)
        ax.set_title(f"{LABELS[int(p[m] > 0.5)]} ({p[m]:.2f})", color="black" if right else "red", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        "predicted by the hand-trained network (probability of a cross; red: wrong)", x=0.68, y=0.98, fontsize=10
    )
    fig.tight_layout()
    fig.savefig(output, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--output", default="shapes.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    x, y = shapes(seed=args.seed)
    trained, by_hand = train_by_hand(network(args.seed + 1), x, y, args.steps)
    by_jax = train_with_jax(network(args.seed + 1), x, y, args.steps)
    # The same report as train_spirals.py's, written again because each example stands alone (see draw).
    draw(trained, x, y, by_hand, by_jax, args.output)
    print(f"by hand:  loss {by_hand[0]:.4f} → {by_hand[-1]:.4f}; accuracy {accuracy(trained, x, y):.1%}")
    print(f"jax.grad: loss {by_jax[0]:.4f} → {by_jax[-1]:.4f}")
    print(f"largest difference between the two curves: {np.max(np.abs(np.subtract(by_hand, by_jax))):.2e}")
    print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
