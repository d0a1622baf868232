"""The hand derivation refuses inputs that do not fit, in one sentence (ValueError)."""

import numpy as np
import pytest

import manual
from manual import CATALOGUE, SOFTMAX


def small():
    return manual.init_network([3, 2], [CATALOGUE["tanh"]], np.random.default_rng(0))


@pytest.mark.parametrize(
    "x, y, phrase",
    [
        (np.ones((2, 4)), np.ones((2, 2)), "network takes 3 inputs"),
        (np.ones(3), np.ones((1, 2)), "2-D NumPy array"),
        (np.full((2, 3), np.nan), np.ones((2, 2)), "NaN"),
        (np.ones((2, 3)), np.ones((2, 3)), "y must be an array of shape (2, 2)"),
        (np.ones((2, 3)), np.full((2, 2), np.inf), "y contains NaN"),
        (np.ones((2, 3), np.float32), np.ones((2, 2)), "x is float32 but the network is float64"),
    ],
)
def test_bad_inputs_are_refused(x, y, phrase):
    with pytest.raises(ValueError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        manual.gradients(small(), x, y)


def test_networks_that_do_not_fit_are_refused():
    rng = np.random.default_rng(0)
    net = manual.init_network([3, 2, 2], [CATALOGUE["tanh"], CATALOGUE["relu"]], rng)
    with pytest.raises(ValueError, match="layer 2: Θ has 3 columns but layer 1 has 2 units"):
        manual.Network(net.theta[:2] + (np.ones((2, 3)),), net.b, net.g)
    manual.Network(net.theta, net.b, (None, SOFTMAX, CATALOGUE["relu"]))  # softmax may sit in a hidden layer
    glu, prelu = manual.vector_activation("glu"), manual.parametric("prelu")
    with pytest.raises(ValueError, match="layer 2: Θ has 2 columns but layer 1 has 1 units"):
        manual.Network(net.theta, net.b, (None, glu, CATALOGUE["relu"]))  # a GLU halves its 2 units
    with pytest.raises(ValueError, match="positive multiple of 2"):
        manual.init_network([3, 3, 2], [glu, CATALOGUE["relu"]], rng)
    with pytest.raises(ValueError, match=r"prelu needs exactly the parameters \['a'\]"):
        manual.Network(net.theta, net.b, (None, prelu, CATALOGUE["relu"]))
    with pytest.raises(ValueError, match=r"parameter a must be a float64 array of shape \(\) or \(2,\)"):
        manual.Network(net.theta, net.b, (None, prelu, CATALOGUE["relu"]), (None, {"a": np.ones(3)}, None))
