"""``compare.scales`` remembers a lookup per profile and z object; an allowance given to an
activation after a first lookup (``tolerances.allow_deviation``) must still be seen."""

import numpy as np

from manual import CATALOGUE
from property_tests.library import compare
from property_tests.library import tolerances as tol


def test_scales_follow_an_allowance_given_after_a_first_lookup() -> None:
    g, z = CATALOGUE["tanh"], np.linspace(-2, 2, 9)
    _, before = compare.scales(g, z)
    tol.allow_deviation(g, g, lambda s: np.ones(np.shape(s)))
    try:
        _, during = compare.scales(g, z)  # the same z object: a cache on z alone would miss it
    finally:
        tol.forget_deviation(g)
    _, after = compare.scales(g, z)
    assert np.all(np.asarray(before) < 1.0), "the allowance must be visible against the measured noise"
    assert np.all(np.asarray(during) >= 1.0)
    assert np.array_equal(before, after)


def _counting(calls: list) -> tol.Allowance:
    """An allowance that depends on z elementwise (z² + 1) and counts its calls."""

    def deviation(z: np.ndarray) -> np.ndarray:
        calls.append(np.size(z))
        return np.asarray(z, np.float64) ** 2 + 1

    return tol.Allowance(deviation)


def test_prefetched_allowances_equal_their_one_by_one_values_from_one_call() -> None:
    calls: list = []
    allowance = _counting(calls)
    zs = [np.linspace(-3, 3, 7).reshape(7, 1), np.arange(12.0).reshape(3, 4), np.array([[0.5]])]
    allowance.prefetch(zs)
    assert calls == [20], "every z measured together, once"
    for z in zs:
        assert np.array_equal(allowance(z), z**2 + 1), "each z gets its own part, in its own shape"
    assert calls == [20], "a prefetched z is looked up, not measured again"
    other = zs[1].copy()  # equal values, another object: measured on its own
    assert np.array_equal(allowance(other), other**2 + 1) and calls == [20, 12]


def test_prefetch_reaches_only_activations_given_an_allowance() -> None:
    tanh, relu = CATALOGUE["tanh"], CATALOGUE["relu"]
    calls: list = []

    def deviation(z: np.ndarray) -> np.ndarray:
        calls.append(np.size(z))
        return np.zeros(np.shape(z))

    tol.allow_deviation(tanh, tanh, deviation)
    try:
        z_tanh, z_relu = np.ones((2, 3)), np.ones((4, 5))
        tol.prefetch_deviations([(tanh, z_tanh), (relu, z_relu), (None, np.ones(2))])
        assert calls == [6], "only tanh's z, measured once"
        compare.scales(tanh, z_tanh)
        assert calls == [6]
    finally:
        tol.forget_deviation(tanh)
