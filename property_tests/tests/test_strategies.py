"""The strategies draw what they promise and refuse nonsense with a clear InvalidArgument."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis.errors import InvalidArgument

from manual import CATALOGUE
from property_tests.library.strategies import Architecture, architectures, batches, cases, networks, unit_arrays


@given(cases())
def test_cases_are_well_formed(case):
    net = case.network
    assert 1 <= net.depth <= 6 and all(1 <= w <= 16 for w in net.widths)
    assert 1 <= case.n <= 32 and case.x.shape == (case.n, net.widths[0])
    assert case.y.shape == (case.n, net.widths[-1])
    for array in [case.x, case.y, *net.theta[1:], *net.b[1:]]:
        assert array.dtype == np.float64 and np.all(np.isfinite(array))
        nonzero = np.abs(array[array != 0])
        assert np.all(nonzero >= np.finfo(np.float64).smallest_normal), "subnormal drawn"
        # All elements distinct: never mostly one repeated value.
        assert len(np.unique(array)) == array.size


@given(
    cases(dtype=np.float32, min_depth=2, max_depth=2, min_width=3, max_width=3, activations=["relu", CATALOGUE["tanh"]])
)
def test_cases_respect_their_arguments(case):
    assert case.network.depth == 2 and set(case.network.widths) == {3}
    assert case.network.dtype == np.float32 and case.x.dtype == np.float32
    assert {g.name for g in case.network.g[1:]} <= {"relu", "tanh"}


@pytest.mark.parametrize(
    "make",
    [
        lambda: architectures(min_depth=0),
        lambda: architectures(min_depth=3, max_depth=2),
        lambda: architectures(min_width=5, max_width=4),
        lambda: architectures(activations=[]),
        lambda: architectures(activations=["no_such_activation"]),
        lambda: batches(0),
        lambda: batches(3, min_examples=0),
        lambda: batches(3, scale=-1.0),
        lambda: unit_arrays((2,), dtype=np.int32),
        lambda: networks(Architecture((2, 2), (CATALOGUE["tanh"],)), weight_scale=0.0),
        lambda: cases(weight_scale=(2.0, 1.0)),
        lambda: cases(min_examples=5, max_examples=2),
    ],
)
def test_nonsense_requests_are_refused(make):
    with pytest.raises(InvalidArgument):
        make()  # refused when the strategy is built, before anything is drawn


def test_large_float32_arrays_are_distinct_too():
    # 300,000 uniform float32 draws repeat a few hundred values (float32 has about 3e7 values of
    # that magnitude); those are drawn again until none repeats.
    from property_tests.library.strategies import _seeded_unit_array

    raw = np.random.default_rng(7).uniform(-1, 1, 300_000).astype(np.float32)
    assert len(np.unique(raw)) < raw.size, "the raw draw does repeat: the check below can fail"
    u = _seeded_unit_array((300_000,), np.dtype(np.float32), 7)
    assert u.dtype == np.float32 and len(np.unique(u)) == u.size
    assert np.all(np.abs(u) <= 1) and np.all((u == 0) | (np.abs(u) >= 1e-6))
