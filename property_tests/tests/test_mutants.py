"""Every entry of the bank of broken backward passes is caught by the equation checks."""

import dataclasses
import json

import pytest

from manual import EQUATIONS, PARAMETRIC
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.banks.mutants import LAYER_MUTANTS, MUTANTS, LayerMutant, Mutant, hunt, hunt_layers, run_mutants
from property_tests.command.cli import main
from property_tests.library import properties
from property_tests.library.strategies import mixed_cases

KINDS_MUTANTS = [m for m in MUTANTS if m.pool]
"""The mistakes of the newer kinds, hunted on networks drawn from those kinds."""


def test_every_mutant_is_caught_and_named(capsys):
    # One run of the whole bank, through the command line (``backprop-check mutants --json``):
    # every entry caught, exit 0, and the JSON report's keys. (Two runs, one through
    # ``run_mutants`` and one through the CLI, cost twice as long and checked the same.)
    assert main(["mutants", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    results = report["mutants"]
    missed = [r["name"] for r in results if not r["caught"]]
    assert not missed, f"not caught: {missed}"
    assert report["caught"] == report["total"] == len(MUTANTS) + len(LAYER_MUTANTS) >= 36
    assert {"name", "caught", "equation", "layer", "networks", "seconds", "detail"} <= set(results[0])
    assert [r["name"] for r in results] == [m.name for m in MUTANTS] + [m.name for m in LAYER_MUTANTS]
    assert all(r["equation"] in {"(1)", "(2)", "(3) Θ", "(3) b", "(3) p", "(3) W", "(3) theta"} for r in results)
    assert len({m.name for m in MUTANTS}) == len(MUTANTS) and all(m.mistake for m in MUTANTS)
    by_name = {r["name"]: r for r in results}
    caught_in = {
        # each convolutional mistake in the equation it breaks
        "conv_kernel_not_rotated": "(2)",
        "conv_stride_zeros_missing": "(2)",
        "conv_crop_off_by_one": "(2)",
        "max_pool_every_tied_maximum": "(2)",
        "avg_pool_without_one_over_window": "(2)",
        "conv_weight_channels_transposed": "(3) W",
        "conv_bias_summed": "(3) b",
        # each parameter mistake where it lives, in the parameter gradient (the one about
        # ∂Eₜ/∂a⁽ᵏ⁾ on networks that end in tanh, so in a hidden layer)
        "prelu_partial_off_by_1e_6": "(3) p",
        "parameter_summed_over_units": "(3) p",
        "per_unit_treated_as_shared": "(3) p",
        "parameter_gradient_from_delta": "(3) p",
        # softmax in a hidden layer with only the diagonal of its Jacobian, in (2)
        "hidden_softmax_diagonal_jacobian": "(2)",
    }
    for name, equation in caught_in.items():
        assert by_name[name]["equation"] == equation, (name, by_name[name]["detail"])


def test_run_mutants_reports_what_it_hunted():
    # The Python entry point, on two entries (the CLI test above runs the whole bank).
    chosen = [MUTANTS[0], next(m for m in MUTANTS if m.name == "glu_halves_swapped")]
    report = run_mutants(chosen)
    assert [r.name for r in report.results] == [m.name for m in chosen] and report.caught == 2
    assert report.as_dict()["total"] == 2 and report.median_seconds > 0


def test_the_correct_derivation_is_not_a_mutant():
    # The hunt itself must be able to come back empty-handed: the real equations survive it.
    result = hunt(Mutant("correct", "nothing wrong", EQUATIONS), max_networks=64)
    assert not result.caught, result.detail


@pytest.mark.parametrize("mutant", KINDS_MUTANTS, ids=lambda m: m.name)
def test_the_correct_derivation_survives_each_new_hunt(mutant):
    # The same networks (kinds, tied maxout units, forced outputs) with the mistake taken out:
    # what catches the mutant is its mistake, not the networks it is hunted on.
    right = dataclasses.replace(mutant, name="correct", equations=EQUATIONS, swaps=(), activation_swap=None)
    result = hunt(right, max_networks=32)
    assert not result.caught, result.detail


@pytest.mark.parametrize("kind", ["conv2d", "max_pool", "avg_pool", "flatten", "dense"])
def test_the_correct_layers_survive_the_convolutional_hunt(kind):
    # The hunt's networks with a layer kind "replaced" by itself: nothing is caught.
    from manual.layers import LAYER_KINDS

    result = hunt_layers(LayerMutant("correct", "nothing wrong", kind, LAYER_KINDS[kind]))
    assert not result.caught, result.detail


def test_maxout_one_hot_is_only_wrong_at_ties():
    # Away from ties the one-hot Jᵀv is the right one: without tied units the hunt must come
    # back empty-handed, which is why the bank ties them.
    mutant = next(m for m in MUTANTS if m.name == "maxout_one_hot_at_ties")
    result = hunt(dataclasses.replace(mutant, ties=False), max_networks=32)
    assert not result.caught, result.detail


def test_swapped_entries_must_keep_their_forward():
    # autodiff differentiates the real network: a swap that changed the forward would be judged
    # against the wrong function, so it is refused.
    prelu = PARAMETRIC["prelu"]
    wrong = dataclasses.replace(prelu, forward=lambda z, p, xp: 2 * prelu.forward(z, p, xp))
    with pytest.raises(ValueError, match="keep the real forward"):
        hunt(Mutant("bad", "changes g", pool=("prelu",), swaps=(("prelu", wrong),)), max_networks=1)


def test_parameter_gradient_from_delta_is_rejected():
    # The negative control added for the bank's parameter_gradient_from_delta, against the
    # property that test_kinds_equations runs with the real derivation.
    hidden = [PARAMETRIC[name] for name in ("prelu", "snake", "acon_c")]
    assert rejects(
        properties.parameter_gradients_hold,
        mixed_cases(kinds=hidden, elementwise=["tanh"], max_depth=3),
        equations=broken.PARAMETERS_FROM_DELTA,
    )
