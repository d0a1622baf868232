"""User-style losses, right and wrong, for ``backprop-check loss`` and its tests."""

from __future__ import annotations

from manual import Loss


def _logcosh(a, y, xp):
    r = a - y
    return xp.sum(xp.logaddexp(r, -r) - xp.log(2.0), axis=-1)


RIGHT_LOGCOSH = Loss("logcosh", _logcosh, lambda a, y, xp: xp.tanh(a - y))
"""log cosh(a − y), gradient tanh(a − y)."""

WRONG_LOGCOSH = Loss("logcosh_1e-6", _logcosh, lambda a, y, xp: xp.tanh(a - y) * (1 + 1e-6))
"""The same gradient off by a relative 1e-6."""

WRONG_MSE_TWICE_AVERAGED = Loss("mse_1_over_n_twice", lambda a, y, xp: 0.5 * xp.sum((a - y) ** 2, axis=-1),
                                lambda a, y, xp: (a - y) / a.shape[0])
"""The squared error with the 1/n of the mean applied again inside the gradient."""

UNUSABLE_SHAPE = Loss("summed", lambda a, y, xp: xp.sum((a - y) ** 2), lambda a, y, xp: 2 * (a - y))
"""The error returns one number for the whole batch instead of one per example."""
