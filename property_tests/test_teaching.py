"""``explain``, ``plot`` and the training example."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from .cli import main
from .teaching import explain

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "negative_log_likelihood"])
def test_explain_prints_all_three_equations_and_they_equal_autodiff(capsys, loss):
    assert main(["explain", "--widths", "2,3,3,2", "--loss", loss]) == 0
    out = capsys.readouterr().out
    for equation in ("Equation (1)", "Equation (2)", "Equation (3) Θ", "Equation (3) b", "Forward pass"):
        assert equation in out
    explained = explain([2, 3, 3, 2], "tanh", loss)
    for entry in explained.equations:
        assert np.allclose(entry["hand"], entry["autodiff"], rtol=1e-12, atol=1e-14), entry["equation"]
    assert explained.max_difference < 1e-12


def test_explain_json_for_notebooks(capsys):
    assert main(["explain", "--json", "--activation", "sigmoid"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["widths"] == [2, 3, 2] and {e["equation"] for e in data["equations"]} == {"(1)", "(2)", "(3) Θ", "(3) b"}


@pytest.mark.parametrize("args, phrase", [
    (["explain", "--widths", "3"], "at least two widths"),
    (["explain", "--activation", "nope"], "unknown activation"),
    (["explain", "--loss", "nope"], "unknown loss"),
    (["plot", "tanh", "--output", "x.jpg"], "must name a .png"),
    (["plot", "nope", "--output", "x.png"], "unknown activation"),
])
def test_teaching_commands_refuse_bad_input(capsys, args, phrase):
    assert main(args) == 2
    assert phrase in capsys.readouterr().err


@pytest.mark.parametrize("target", ["hard_silu", "property_tests.activation_bank:RIGHT_CLIP"])
def test_plot_writes_a_png(tmp_path, target):
    output = tmp_path / "figure.png"
    assert main(["plot", target, "--output", str(output)]) == 0
    data = output.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_training_example_loss_falls_and_the_curves_agree():
    spec = importlib.util.spec_from_file_location("train_spirals", ROOT / "examples" / "train_spirals.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    x, y = example.spirals(80)
    _, by_hand = example.train_by_hand(example.network(), x, y, 300)
    by_jax = example.train_with_jax(example.network(), x, y, 300)
    assert by_hand[-1] < 0.5 * by_hand[0]
    assert np.max(np.abs(np.subtract(by_hand, by_jax))) < 1e-10
