"""Teaching: ``explain`` and ``plot`` for dense networks and activations (``dense``), and
``explain --conv`` / ``--norm`` for networks of layers (``conv``)."""
