"""Property-based proof that the hand derivation in ``manual`` equals autodiff in ``reference``.

- ``strategies``: Hypothesis strategies for networks, batches and cases (reusable).
- ``tolerances``: every tolerance and its reasoning, in one place.
- ``compare``: manual against autodiff, equation by equation, with reports.
- ``verify`` and ``cli``: the ``backprop-check`` command.
- ``profiles``: the Hypothesis profiles ``default``, ``ci`` and ``thorough``.
"""
