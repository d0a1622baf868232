"""The convolutional examples: ``examples/train_shapes.py`` (a small CNN trained by hand and by
``jax.grad``) and ``examples/delta_flow.py`` (δ back through one convolution, step by step).
Each test has a way to fail: a negative control shows that what it compares can differ."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from manual.conv import Conv2D, crop

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    """An example script as a module, from ``examples/<name>.py``."""
    spec = importlib.util.spec_from_file_location(f"examples_{name}", ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def shapes_example():
    return load("train_shapes")


@pytest.fixture(scope="module")
def flow_example():
    return load("delta_flow")


def is_png(path: Path) -> bool:
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


# --- train_shapes ------------------------------------------------------------------------------


def test_the_images_are_bars_and_crosses_in_equal_numbers(shapes_example):
    x, y = shapes_example.shapes(20, seed=3)
    assert x.shape == (40, 1, 12, 12) and y.shape == (40, 1)
    assert y.sum() == 20
    clean, _ = shapes_example.shapes(20, seed=3, noise=0.0)
    assert set(np.unique(clean)) == {0.0, 1.0}
    # A cross has strokes both across and down; a bar only one way.
    across = (clean[:, 0] > 0).any(axis=2).sum(axis=1)  # rows with ink
    down = (clean[:, 0] > 0).any(axis=1).sum(axis=1)  # columns with ink
    strokes_in_both = (across > 2) & (down > 2)
    assert np.all(strokes_in_both[y[:, 0] == 1]) and not np.any(strokes_in_both[y[:, 0] == 0])


def test_hand_and_jax_loss_curves_agree_and_the_loss_falls(shapes_example):
    x, y = shapes_example.shapes(30, seed=1)
    _, by_hand = shapes_example.train_by_hand(shapes_example.network(2), x, y, 60)
    by_jax = shapes_example.train_with_jax(shapes_example.network(2), x, y, 60)
    assert len(by_hand) == len(by_jax) == 60
    assert np.max(np.abs(np.subtract(by_hand, by_jax))) < 1e-10
    assert by_hand[-1] < 0.85 * by_hand[0]


def test_an_unrotated_kernel_in_equation_2_splits_the_curves(shapes_example, monkeypatch):
    """Negative control: δ sent back through the second convolution with the kernel not rotated
    (the rotation undone before ``input_delta`` applies it) changes every later step by hand."""
    right = Conv2D.input_delta

    def unrotated(self, delta, a_prev, params):
        return right(self, delta, a_prev, {"W": params["W"][:, :, ::-1, ::-1], "b": params["b"]})

    x, y = shapes_example.shapes(30, seed=1)
    by_jax = shapes_example.train_with_jax(shapes_example.network(2), x, y, 20)
    monkeypatch.setattr(Conv2D, "input_delta", unrotated)
    _, by_hand = shapes_example.train_by_hand(shapes_example.network(2), x, y, 20)
    assert by_hand[0] == pytest.approx(by_jax[0], abs=1e-12)  # the same start …
    assert np.max(np.abs(np.subtract(by_hand, by_jax))) > 1e-4  # … and a different descent


def test_the_network_learns_to_tell_bars_from_crosses(shapes_example):
    x, y = shapes_example.shapes(60, seed=0)
    trained, curve = shapes_example.train_by_hand(shapes_example.network(1), x, y, 150)
    untrained = shapes_example.accuracy(shapes_example.network(1), x, y)
    assert shapes_example.accuracy(trained, x, y) >= 0.8 > untrained
    assert curve[-1] < 0.6 * curve[0]


def test_train_shapes_writes_its_figure(shapes_example, tmp_path, capsys):
    output = tmp_path / "shapes.png"
    shapes_example.main(["--steps", "5", "--output", str(output), "--seed", "4"])
    out = capsys.readouterr().out
    assert is_png(output)
    for line in ("by hand:", "jax.grad:", "largest difference", "accuracy"):
        assert line in out


# --- delta_flow --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [5, 6, 7, 8])
def test_delta_flow_equals_autodiff_and_input_delta(flow_example, size):
    a, W, delta = flow_example.example(size)
    f = flow_example.flow(delta, W, a.shape[2:])
    layer = Conv2D(1, 1, (3, 3), flow_example.STRIDE, flow_example.PADDING)
    assert f.full.shape[2:] == (size + 2, size + 2)  # the padded input's size
    assert np.max(np.abs(f.grad_a - flow_example.autodiff(a, W, delta))) < 1e-12
    assert np.max(np.abs(f.grad_a - layer.input_delta(delta, a, {"W": W, "b": np.zeros(1)}))) < 1e-12


def test_delta_flow_steps_are_the_ones_drawn(flow_example):
    a, W, delta = flow_example.example()
    f = flow_example.flow(delta, W, a.shape[2:])
    assert np.array_equal(f.spread[:, :, ::2, ::2], delta) and np.count_nonzero(f.spread) == delta.size
    assert np.array_equal(f.padded[:, :, 2:-2, 2:-2], f.spread) and np.count_nonzero(f.padded) == delta.size
    assert np.array_equal(f.rotated[0, 0], W[0, 0, ::-1, ::-1])


def test_delta_flow_negative_controls_differ_from_autodiff(flow_example):
    """An unrotated kernel, or a crop one row and column off, gives a different ∂E/∂a."""
    a, W, delta = flow_example.example()
    reference = flow_example.autodiff(a, W, delta)
    unrotated = flow_example.flow(delta, W, a.shape[2:], turn=lambda K: K.transpose(1, 0, 2, 3))
    assert np.max(np.abs(unrotated.grad_a - reference)) > 1
    right = flow_example.flow(delta, W, a.shape[2:])
    off_by_one = crop(right.full, (2, 2), a.shape[2:])
    assert np.max(np.abs(off_by_one - reference)) > 1


def test_delta_flow_writes_its_figure(flow_example, tmp_path, capsys):
    output = tmp_path / "delta-flow.png"
    flow_example.main(["--output", str(output)])
    assert is_png(output)
    assert "largest difference from jax.vjp: 0.00e+00" in capsys.readouterr().out
