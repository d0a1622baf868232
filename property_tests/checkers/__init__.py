"""From a network or a user's code to a verdict.

- ``verify``, ``verify_layers``: ``backprop-check verify`` over dense and layer networks.
- ``activation_check``, ``kinds_check``, ``loss_check``, ``layer_check``: the checkers of a
  user's activation (elementwise, parametric or mixing units), loss and layer, with
  ``second_look`` before any WRONG and ``loading`` of a ``module:NAME`` or ``file.py:NAME`` target.
"""
