"""``explain``, ``plot`` and the training example."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from manual import EQUATIONS, PARAMETRIC, VECTOR_ACTIVATIONS, Equations
from property_tests.banks import broken
from property_tests.command.cli import main
from property_tests.teaching.dense import explain, resolve_activation

ROOT = Path(__file__).resolve().parents[2]


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
    assert data["widths"] == [2, 3, 2] and {e["equation"] for e in data["equations"]} == {
        "(1)",
        "(2)",
        "(3) Θ",
        "(3) b",
    }


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["explain", "--widths", "3"], "at least two widths"),
        (["explain", "--activation", "nope"], "unknown activation"),
        (["explain", "--loss", "nope"], "unknown loss"),
        (["explain", "--activation", "tanh", "--parameters", "shared"], "tanh has none"),
        (["explain", "--activation", "prelu", "--parameters", "both"], "invalid choice"),
        (["plot", "tanh", "--output", "x.jpg"], "must name a .png"),
        (["plot", "nope", "--output", "x.png"], "unknown activation"),
    ],
)
def test_teaching_commands_refuse_bad_input(capsys, args, phrase):
    assert main(args) == 2
    assert phrase in capsys.readouterr().err


# --- the newer kinds: activations with trainable parameters, maps that mix units --------------


def _agrees(entry) -> bool:
    hand, autodiff = np.asarray(entry["hand"]), np.asarray(entry["autodiff"])
    return hand.shape == autodiff.shape and np.allclose(hand, autodiff, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["prelu", "pau", "snake", "glu", "swiglu", "maxout3", "softmax", "log_softmax"])
def test_explain_every_kind_equals_autodiff(name):
    g = resolve_activation(name)
    explained = explain([3, 5, 4, 2], name)
    assert all(_agrees(entry) for entry in explained.equations), name
    assert explained.max_difference < 1e-12
    by_equation = [entry["equation"] for entry in explained.equations]
    if name in PARAMETRIC:  # one parameter gradient per parameter and layer, each beside autodiff's
        assert by_equation.count("(3) p") == 3 * len(g.parameters)
    else:  # (2) in its general form, J_g shown for every example: output units × units of z
        assert by_equation.count("(3) p") == 0
        for entry in explained.equations[:3]:
            assert "J_g" in entry["formula"]
            z = np.asarray(explained.forward[entry["layer"] - 1]["z"])
            a = np.asarray(explained.forward[entry["layer"] - 1]["a"])
            jacobian = np.asarray(next(v for key, v in entry["parts"].items() if key.startswith("J_g")))
            assert jacobian.shape == (z.shape[0], a.shape[1], z.shape[1])


def test_explain_a_glu_halves_the_width_and_says_so(capsys):
    assert main(["explain", "--activation", "glu"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # notes are wrapped to the terminal
    assert "the widths 2-3-2 became 2-4-2." in out and "Θ⁽2⁾ has 2 columns" in out
    explained = explain([2, 3, 2], "glu")
    assert explained.widths == [2, 4, 2] and len(explained.notes) == 1
    layer_1, layer_2 = explained.forward
    assert np.shape(layer_1["z"]) == (2, 4) and np.shape(layer_1["a"]) == (2, 2)
    assert np.shape(layer_2["theta"]) == (2, 2)  # Θ⁽²⁾: a row per unit of z⁽²⁾, a column per unit of a⁽¹⁾
    (two,) = [e for e in explained.equations if e["equation"] == "(2)"]
    assert np.shape(two["parts"]["(Θ⁽2⁾)ᵀδ⁽2⁾"]) == (2, 2) and np.shape(two["hand"]) == (2, 4)
    # J_gᵀ(Θᵀδ), by the numbers shown: the shown J_g and Θᵀδ multiply to the shown δ⁽¹⁾
    shown = np.einsum("tji,tj->ti", np.asarray(two["parts"]["J_g(z⁽1⁾)"]), np.asarray(two["parts"]["(Θ⁽2⁾)ᵀδ⁽2⁾"]))
    assert np.allclose(shown, two["hand"], rtol=1e-12, atol=1e-15)
    assert explain([2, 4, 2], "glu").notes == []  # widths that fit are left alone


@pytest.mark.parametrize("shape", ["shared", "per-unit"])
def test_explain_parameter_gradient_reduces_its_shown_terms(capsys, shape):
    assert main(["explain", "--activation", "prelu", "--widths", "2,3,3,2", "--parameters", shape]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("shared by the layer" if shape == "shared" else "is per unit") in out
    explained = explain([2, 3, 3, 2], "prelu", parameters=shape)
    entries = [e for e in explained.equations if e["equation"] == "(3) p"]
    assert len(entries) == 3 and all(_agrees(e) for e in entries)
    for entry in entries:
        G = np.asarray(entry["parts"]["G"])
        n, units = G.shape
        right = G.sum() / n if shape == "shared" else G.sum(axis=0) / n
        assert np.allclose(right, entry["hand"], rtol=1e-12, atol=1e-15)
        assert np.shape(entry["hand"]) == (() if shape == "shared" else (units,))
        w = next(key for key in entry["parts"] if key.startswith("∂Eₜ/∂a"))
        assert ("∇ₐE" in w) == (entry["layer"] == 3)  # ∇ₐE at the output, (Θ⁽ᵏ⁺¹⁾)ᵀδ⁽ᵏ⁺¹⁾ below
        if shape == "per-unit":  # the other reduction is no gradient of anything
            assert not np.allclose(np.full(units, G.sum() / n), entry["autodiff"], rtol=1e-6)


def _swapped_halves(theta_next, delta_next, z_k, g_k):
    return broken.halves_swapped(g_k).vjp(z_k, delta_next @ theta_next, np)


@pytest.mark.parametrize(
    "name, equations, equation",
    [
        ("prelu", broken.PER_UNIT_AS_SHARED, "(3) p"),
        ("prelu", broken.PARAMETERS_WRONG_AXIS, "(3) p"),
        ("snake", broken.PARAMETERS_FROM_DELTA, "(3) p"),
        ("swiglu", Equations(hidden_delta_general=_swapped_halves), "(2)"),
        ("softmax", broken.HIDDEN_JACOBIAN_DIAGONAL, "(2)"),
    ],
    ids=["per_unit_as_shared", "wrong_axis", "from_delta", "halves_swapped", "diagonal_jacobian"],
)
def test_explain_shows_a_wrong_derivation_as_a_difference(name, equations, equation):
    # Negative control: explain's check against autodiff can fail. A classic mistake in the new
    # gradients shows up in the entry it belongs to, and the right derivation shows none.
    wrong = explain([3, 4, 4, 2], name, equations=equations)
    right = explain([3, 4, 4, 2], name, equations=EQUATIONS)
    assert any(e["max_difference"] > 1e-6 for e in wrong.equations if e["equation"] == equation)
    assert right.max_difference < 1e-12


def test_every_kind_resolves_by_name():
    for name in [*PARAMETRIC, *VECTOR_ACTIVATIONS, "softmax", "log_softmax", "tanh", "swish"]:
        assert resolve_activation(name).name in (name, "silu")


@pytest.mark.parametrize("target", ["hard_silu", "property_tests.banks.activation_bank:RIGHT_CLIP"])
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
