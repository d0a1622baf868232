"""The same gradients from automatic differentiation: ``jax.grad`` of a plainly written forward
pass, in float64. Nothing here calls ``manual``'s backward code; it reads a ``manual.Network``'s
weights and uses each activation's ``forward`` and each loss's ``error`` with ``xp=jax.numpy``.

- ``reference.plain``: the oracle, one network at a time, one compilation per architecture.
- ``reference.fast``: the same program padded to fixed shapes, compiled once for all
  architectures and mapped over many networks; checked against ``plain`` by the property suite.

float64 is switched on only inside these functions (``jax.enable_x64(True)`` as a context
manager), so importing this package leaves a user's JAX in whatever mode it was.
"""

from . import fast, plain
from .plain import JAX_NN, Reference, autodiff, derivative, derivatives, loss_gradient

__all__ = ["Reference", "autodiff", "derivative", "derivatives", "loss_gradient", "JAX_NN", "plain", "fast"]
