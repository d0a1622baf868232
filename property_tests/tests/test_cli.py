"""``backprop-check``: exit codes, JSON keys, and one clear sentence for bad usage."""

import json
import shutil
import subprocess
import sys

import pytest

from manual import CATALOGUE, LOSSES, MSE, OUTPUT_MAPS, PARAMETRIC, VECTOR_ACTIVATIONS
from manual.conv import Conv2D
from manual.layers import layer_config
from property_tests.banks import broken
from property_tests.checkers import verify, verify_layers
from property_tests.checkers.verify import run_verify
from property_tests.command.cli import main
from property_tests.tests.sweeps import SWEEP


def backprop_check(*args):
    """Run the installed console script (the module itself when not installed)."""
    script = shutil.which("backprop-check")
    command = [script] if script else [sys.executable, "-m", "property_tests.command.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600)


@SWEEP
def test_verify_json_reports_success(capsys):
    assert main(["verify", "--examples", "600", "--seed", "3", "--json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert report["verified"] is True and report["examples"] == 600
    assert isinstance(report["seconds"], float)
    kinds = [*PARAMETRIC, *VECTOR_ACTIVATIONS, *OUTPUT_MAPS]
    assert sorted(report["activations"]) == sorted([*CATALOGUE, *kinds])
    assert report["coverage_complete"] is True
    assert {f"(3) p {name}.{q.name}" for name, g in PARAMETRIC.items() for q in g.parameters} <= set(
        report["by_activation"]
    )
    assert {f"(2) {name}" for name in kinds} <= set(report["by_activation"])
    for equation in ("(1)", "(2)", "(3) Θ", "(3) b", "(3) p"):
        entry = report["equations"][equation]
        assert 0 <= entry["max_error"] <= entry["tolerance"] or entry["max_error"] == 0
    assert sorted(report["losses"]) == sorted(LOSSES)
    assert all(entry["verified"] and entry["networks"] > 0 for entry in report["losses"].values())
    assert report["networks"] == "all" and report["conv"]["verified"] is True
    assert err == ""


def test_verify_table(monkeypatch, capsys):
    monkeypatch.setattr(verify, "LOSSES", {"mse": MSE})  # one loss: one compilation
    assert main(["verify", "--examples", "60", "--networks", "dense"]) == 0
    out = capsys.readouterr().out
    assert "VERIFIED" in out and "(3) Θ" in out and "sigmoid" in out and "mse" in out


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["verify", "--examples", "-5"], "must be at least 1"),
        (["verify", "--examples", "many"], "expected a whole number"),
        (["verify", "--seed", "-1"], "must be 0 or more"),
        (["verify", "--colour"], "unrecognized arguments"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_usage_is_one_sentence_and_exit_2(args, phrase, capsys):
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert phrase in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_installed_script_exits_2_on_bad_usage():
    done = backprop_check("verify", "--examples", "many")
    assert done.returncode == 2 and done.stdout == ""
    assert "expected a whole number" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_help_documents_exit_codes(capsys):
    # In this process: the installed script itself is run by the test above.
    with pytest.raises(SystemExit) as done:
        main(["verify", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0
    assert "exit codes" in out and "2  bad usage" in out


def test_verify_finds_a_wrong_derivative_and_shrinks_it():
    wrong_tanh = broken.off_by(CATALOGUE["tanh"], 1e-6)
    report = run_verify(40, 0, activations=[wrong_tanh, CATALOGUE["relu"]])
    assert not report.verified
    ce = report.counterexample
    assert ce is not None and ce["activation"] == "tanh"
    assert len(ce["x"]) == 1, "the counterexample is cut down to one example"


def test_verify_exit_code_1_on_mismatch(monkeypatch, capsys):
    monkeypatch.setattr(verify, "LOSSES", {"mse": MSE})
    monkeypatch.setitem(CATALOGUE, "sigmoid", broken.off_by(CATALOGUE["sigmoid"], 1e-6))
    assert main(["verify", "--examples", "30", "--networks", "dense", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is False and report["counterexample"]["activation"] == "sigmoid"


def test_verify_conv_has_a_row_per_layer_kind_and_extreme(capsys):
    assert main(["verify", "--networks", "conv", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verified"] is True and "equations" not in report, "no dense networks were asked for"
    rows = report["conv"]["rows"]
    for kind in ("conv2d", "max_pool", "avg_pool", "flatten", "dense"):
        assert any(key.endswith(kind) or f" {kind} " in key for key in rows), kind
    for label, _, _ in verify_layers.EXTREMES:
        assert any(key.endswith(label) for key in rows), label
    assert all(0 <= row["max_error"] <= row["tolerance"] for row in rows.values())
    assert len(report["conv"]["activations"]) >= len(CATALOGUE) - 2


def test_verify_conv_exit_code_1_on_a_kernel_not_rotated(monkeypatch, capsys):
    from property_tests.banks.layer_controls import KernelNotRotated

    label, shape, stack = verify_layers.EXTREMES[5]  # its second convolution is 3×3: rotation shows
    wrong = [(KernelNotRotated(**layer_config(layer)) if isinstance(layer, Conv2D) else layer, g) for layer, g in stack]
    monkeypatch.setattr(verify_layers, "EXTREMES", [(label, shape, wrong)])
    assert main(["verify", "--networks", "conv"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "(2)" in out and "conv2d" in out
