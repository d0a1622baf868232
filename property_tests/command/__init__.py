"""The ``backprop-check`` command: argument parsing, printing and exit codes (``cli``). Every
verdict comes from ``checkers``, every explanation from ``teaching``."""
