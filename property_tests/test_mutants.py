"""Every entry of the bank of broken backward passes is caught by the equation checks."""

import json

from .cli import main
from .mutants import MUTANTS, run_mutants


def test_every_mutant_is_caught_and_named():
    report = run_mutants()
    missed = [r.name for r in report.results if not r.caught]
    assert not missed, f"not caught: {missed}"
    assert report.caught == len(MUTANTS) >= 15
    assert all(r.equation in {"(1)", "(2)", "(3) Θ", "(3) b"} for r in report.results)
    assert len({m.name for m in MUTANTS}) == len(MUTANTS) and all(m.mistake for m in MUTANTS)


def test_the_correct_derivation_is_not_a_mutant():
    # The hunt itself must be able to come back empty-handed: the real equations survive it.
    from manual import EQUATIONS

    from .mutants import Mutant, hunt

    result = hunt(Mutant("correct", "nothing wrong", EQUATIONS), max_networks=64)
    assert not result.caught, result.detail


def test_cli_json_keys(capsys):
    assert main(["mutants", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["caught"] == report["total"] == len(MUTANTS)
    assert {"name", "caught", "equation", "seconds"} <= set(report["mutants"][0])
