"""Normalization layers (LayerNorm, RMSNorm, BatchNorm) and residual blocks by hand, in
networks that mix them with dense and convolutional layers, against ``jax.grad``: equation by
equation and end to end, in float64 and float32, with inputs whose rows are (nearly) constant;
each property beside the classic mistakes it must reject (``layer_controls.NORM_CONTROLS``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from property_tests.banks.controls import rejects
from property_tests.banks.layer_controls import NORM_CONTROLS, unchanged, with_mistake
from property_tests.library.layer_strategies import mixed_layer_cases
from property_tests.tests.sweeps import SWEEP, first_then_sweep
from property_tests.tests.test_layer_networks import (
    BUDGET,
    each_equation_matches_autodiff,
    whole_network_matches_autodiff,
)


# Same shape as test_layer_networks' tests: thin @given wrappers of the same properties, each file
# drawing from its own strategy (mixed_layer_cases here), so a failure names the networks it came from.
@BUDGET
@given(mixed_layer_cases())
def test_each_equation_matches_autodiff(case):
    each_equation_matches_autodiff(case)


@pytest.mark.parametrize("dtype", [np.float64, pytest.param(np.float32, marks=SWEEP)], ids=["float64", "float32"])
@BUDGET
@given(data=mixed_layer_cases(dtype=np.float64))
def test_whole_network_matches_autodiff(dtype, data):
    whole_network_matches_autodiff(data.astype(dtype))


@pytest.mark.parametrize("dtype", [np.float64, pytest.param(np.float32, marks=SWEEP)], ids=["float64", "float32"])
@BUDGET
@given(data=mixed_layer_cases(dtype=np.float64, flat_rows=True, conv_front=False))
def test_near_constant_rows_match_autodiff(dtype, data):
    # a variance far below ε (or exactly 0): x − μ cancels, and the bound must carry it
    whole_network_matches_autodiff(data.astype(dtype))


@pytest.mark.parametrize("mistake", list(NORM_CONTROLS))
def test_each_equation_rejects_the_classic_mistakes(mistake):
    kind, wrong = NORM_CONTROLS[mistake]
    assert rejects(each_equation_matches_autodiff, with_mistake(mixed_layer_cases(), kind, wrong))


@pytest.mark.parametrize(
    "mistake",
    [
        "BatchNorm's statistics treated as constants",
        "ε outside the square root",
        "RMSNorm's (2) off by 1e-6",
        "residual block without the skip path",
    ],
)
def test_whole_network_rejects_the_classic_mistakes(mistake):
    kind, wrong = NORM_CONTROLS[mistake]
    assert rejects(whole_network_matches_autodiff, with_mistake(mixed_layer_cases(), kind, wrong))


@pytest.mark.parametrize(
    "kind", first_then_sweep(list(dict.fromkeys(kind for kind, _ in NORM_CONTROLS.values()))), ids=lambda k: k.__name__
)
@BUDGET
@given(data=st.data())
def test_a_control_is_rejected_for_its_mistake_not_for_being_a_subclass(kind, data):
    # Each control above is a subclass of the kind it replaces; one that changes nothing passes.
    # BatchNorm first: it derives from LayerNorm, and its subclasses once met LayerNorm's oracle.
    each_equation_matches_autodiff(data.draw(with_mistake(mixed_layer_cases(), kind, unchanged(kind))))
