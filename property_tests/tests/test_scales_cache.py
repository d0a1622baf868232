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
