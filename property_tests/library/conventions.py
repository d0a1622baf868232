"""What ``jax.grad`` returns at each catalogue kink, recorded as data.

The autodiff tests check this record: ``test_catalogue.py`` against ``jax.grad`` of the
``jax.nn`` function, ``test_losses.py`` against ``jax.grad`` of the loss's own error; the tests
that run without JAX (``test_without_autodiff.py``, the suite that mutation testing runs) check
the hand derivatives against the record. A new kinked activation or loss therefore needs its
line here, and the autodiff test says which value.
"""

from __future__ import annotations

SELU_LAMBDA_ALPHA = 1.0507009873554804934193349852946 * 1.6732632423543772848170429916717

ACTIVATION_KINK_SLOPES: dict[str, dict[float, float]] = {
    "relu": {0.0: 0.0},
    "leaky_relu": {0.0: 1.0},
    "selu": {0.0: SELU_LAMBDA_ALPHA},
    "relu6": {0.0: 0.0, 6.0: 0.0},
    "hard_tanh": {-1.0: 1.0, 1.0: 1.0},
    "hard_sigmoid": {-3.0: 0.0, 3.0: 0.0},
    "hard_silu": {-3.0: 0.0, 3.0: 1.0},
    "sparse_sigmoid": {-1.0: 0.25, 1.0: 0.25},
}
"""g′ at each declared kink, as ``jax.grad`` of the ``jax.nn`` function gives it."""

LOSS_KINK_SLOPES: dict[str, dict[float, float]] = {
    "mae": {0.0: 1.0},
}
"""∂Eₜ/∂aⱼ where the residual aⱼ − yⱼ sits on a declared kink, as ``jax.grad`` gives it."""
