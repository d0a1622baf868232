"""``explain --conv`` and ``explain --norm``: the three equations through a tiny convolutional
network, and through one with a LayerNorm, a residual block and a BatchNorm, by hand beside
autodiff; a wrong derivation shows up as a difference."""

from __future__ import annotations

import json

import pytest

from property_tests.banks.layer_controls import CONTROLS
from property_tests.command.cli import main
from property_tests.teaching.conv import explain_conv

STEPS = {
    "conv": (
        "conv2d(1→2, kernel 2×2) → tanh",
        "with s − 1 zeros inserted",
        "rotated by 180°",
        "full correlation",
        "cropped",
        "first maximum",
        "laid back out",
        "Equation (3) W",
        "Equation (3) theta",
        "Every number by hand equals autodiff's",
    ),
    "norm": (
        "layer_norm",
        "batch_norm",
        "residual",
        "mean(g ⊙ x̂)",
        "skip path: δ",
        "dense path",
        "n·∂E/∂z",
        "Equation (3) gamma",
        "Every number by hand equals autodiff's",
    ),
}
"""What ``explain --conv`` and ``explain --norm`` must print: each step of (2) and (3) through
their layers (the paths of a norm and a residual block), and the verdict."""


@pytest.mark.parametrize("network", list(STEPS))
def test_explain_prints_every_step_and_equals_autodiff(network, capsys):
    assert main(["explain", f"--{network}"]) == 0
    out = capsys.readouterr().out
    for phrase in STEPS[network]:
        assert phrase in out, phrase
    explained = explain_conv("tanh", 0, network=network)
    assert [e["equation"] for e in explained.equations][:5] == ["(1)", "(2)", "(2)", "(2)", "(2)"]
    assert explained.max_difference < 1e-12


def test_explain_conv_json(capsys):
    assert main(["explain", "--conv", "--json", "--activation", "sigmoid", "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"][0].endswith("sigmoid") and report["max_difference"] < 1e-12
    assert {"(1)", "(2)", "(3) W", "(3) b", "(3) theta"} <= {e["equation"] for e in report["equations"]}


@pytest.mark.parametrize(
    "mistake",
    [
        "kernel not rotated",
        "stride zeros not inserted",
        "max pooling to the last tied maximum",
        "channels transposed in ∂E/∂W",
    ],
)
def test_explain_conv_shows_a_wrong_derivation(mistake):
    wrong = explain_conv("tanh", 0, mistake=CONTROLS[mistake])
    if mistake.startswith("max pooling"):  # no tie in the tiny network: the last maximum is the first
        assert wrong.max_difference < 1e-12
    else:
        assert wrong.max_difference > 1e-3, mistake


def test_explain_conv_refuses_a_map_that_mixes_units(capsys):
    assert main(["explain", "--conv", "--activation", "softmax"]) == 2
    err = capsys.readouterr().err
    assert "elementwise activation" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "mistake",
    [
        "BatchNorm's statistics treated as constants",
        "LayerNorm without the path through σ",
        "residual block without the skip path",
    ],
)
def test_explain_norm_shows_a_wrong_derivation(mistake):
    from property_tests.banks.layer_controls import NORM_CONTROLS

    assert explain_conv("tanh", 0, network="norm", mistake=NORM_CONTROLS[mistake]).max_difference > 1e-3
