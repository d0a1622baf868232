"""Property-based proof that the hand derivation in ``manual`` equals autodiff in ``reference``.

The package is laid out by role (``docs/architecture.md`` draws which uses which):

- ``library``: the reusable test library: Hypothesis strategies, tolerances and their reasoning,
  comparisons equation by equation, rounding bounds, the recorded ``jax.grad`` conventions, the
  properties and the Hypothesis profiles (``default``, ``ci``, ``thorough``).
- ``checkers``: ``verify`` and the checkers of a user's activation, loss and layer.
- ``command``: the ``backprop-check`` command (argument parsing and printing only).
- ``teaching``: ``explain`` and ``plot``, for dense and convolutional networks.
- ``banks``: deliberately wrong (and right) code: negative controls, the mutant bank, the banks
  of user activations, losses and layers, and the fuzzer that generates more.
- ``tests``: the pytest suite.

Modules used to sit directly in ``property_tests``; their old names (``property_tests.strategies``,
``property_tests.activation_check``, ``property_tests.activation_bank:RIGHT_SMOOTH`` as a target,
...) still import, as the very same module objects, through ``MOVED`` below.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

MOVED = {
    **{
        name: f"library.{name}"
        for name in (
            "strategies",
            "conv_strategies",
            "layer_strategies",
            "tolerances",
            "compare",
            "layer_compare",
            "layer_bounds",
            "conventions",
            "properties",
            "profiles",
        )
    },
    **{
        name: f"checkers.{name}"
        for name in (
            "activation_check",
            "loss_check",
            "kinds_check",
            "layer_check",
            "second_look",
            "loading",
            "verify",
            "verify_layers",
        )
    },
    **{
        name: f"banks.{name}"
        for name in (
            "activation_bank",
            "kinds_bank",
            "layer_bank",
            "loss_bank",
            "fuzz",
            "broken",
            "controls",
            "layer_controls",
            "mutants",
        )
    },
    "cli": "command.cli",
    "teaching_conv": "teaching.conv",
}
"""Old module name (directly under ``property_tests``) → where it lives now."""


class _OldNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``property_tests.<old name>`` as the module it moved to (the same object, so a
    monkeypatch through either name is seen through both)."""

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001 (finder protocol)
        package, _, old = fullname.rpartition(".")
        if package != __name__ or old not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(f"{__name__}.{MOVED[spec.name.rpartition('.')[2]]}")

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module was imported under its new name."""


sys.meta_path.append(_OldNames())
