"""Code that is wrong on purpose, and code that is right but hard, to show each check can fail
and does not fail falsely.

- ``broken``, ``controls``, ``layer_controls``: the negative controls of the properties.
- ``mutants``: the mutant bank (the real backward passes with one classic mistake each).
- ``activation_bank``, ``kinds_bank``, ``loss_bank``, ``layer_bank``: right and wrong user code
  for the checkers; ``fuzz``: a strategy that generates more of it from sympy expressions.
"""
