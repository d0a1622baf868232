"""``backprop-check loss`` and ``check_loss``: right losses verified, wrong ones caught, bad
input refused in one sentence."""

import json

import pytest

from manual import LOSSES

from . import loss_bank as bank
from .cli import main
from .loss_check import check_loss


@pytest.mark.parametrize("loss", [bank.RIGHT_LOGCOSH, LOSSES["huber"], LOSSES["mae"]], ids=lambda l: l.name)
def test_right_losses_are_verified(loss):
    report = check_loss(loss, examples=10)
    assert report.verdict == "verified", report.message()


@pytest.mark.parametrize("loss", [bank.WRONG_LOGCOSH, bank.WRONG_MSE_TWICE_AVERAGED], ids=lambda l: l.name)
def test_wrong_losses_are_caught(loss):
    report = check_loss(loss, examples=10)
    assert report.verdict == "wrong" and report.counterexample is not None, report.message()


def test_cli_exit_codes_for_right_and_wrong(capsys):
    assert main(["loss", "property_tests.loss_bank:RIGHT_LOGCOSH", "--examples", "20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "verified"
    assert main(["loss", "property_tests.loss_bank:WRONG_MSE_TWICE_AVERAGED", "--examples", "20"]) == 1
    assert "WRONG GRADIENT" in capsys.readouterr().out



@pytest.mark.parametrize("args, phrase", [
    (["loss", "property_tests.loss_bank:UNUSABLE_SHAPE"], "returns shape ()"),
    (["loss", "property_tests.activation_bank:RIGHT_ABS"], "not a Loss"),
    (["loss", "nowhere/at/all.py:L"], "does not exist"),
    (["loss", "property_tests.loss_bank:RIGHT_LOGCOSH", "--examples", "0"], "must be at least 1"),
])
def test_unusable_loss_input_exits_2(capsys, args, phrase):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert phrase in err and len(err.strip().splitlines()) == 1
