"""The reusable test library: what a property needs to state "the hand derivation equals
autodiff" and to be able to fail.

- ``strategies``, ``conv_strategies``, ``layer_strategies``: Hypothesis strategies for dense,
  convolutional and mixed-layer networks, batches, targets and losses.
- ``tolerances``: every tolerance per dtype, with its derivation.
- ``compare``, ``layer_compare``: manual against autodiff, equation by equation, with reports;
  ``layer_bounds``: the rounding bounds carried through each layer kind.
- ``conventions``: what ``jax.grad`` gives at each kink, recorded.
- ``properties``: the properties as plain functions, for users' own suites.
- ``profiles``: the Hypothesis profiles ``default``, ``ci`` and ``thorough``.
"""
