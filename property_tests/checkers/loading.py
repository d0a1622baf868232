"""Load a user's ``Activation`` (or ``Loss``) from ``path/to/file.py:NAME`` or ``package.module:NAME``.

Every way this can go wrong becomes a ``UsageError`` with one sentence naming the problem.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

# The judges' guard lives in the library; the checkers and the command import it from here too.
from property_tests.library.tolerances import InternalError, require_finite  # noqa: F401 (re-exported)


class UsageError(Exception):
    """Unusable input: reported as one sentence, exit code 2."""


def _last_frame(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}, line {frame.lineno})"


def _describe(error: BaseException) -> str:
    if isinstance(error, SyntaxError):
        return f"a syntax error at line {error.lineno}: {error.msg}"
    return f"{type(error).__name__}: {error}{_last_frame(error)}"


def _load_file(path: Path) -> ModuleType:
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    name = f"backprop_check_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as error:  # a user's file may raise anything while it loads
        del sys.modules[name]
        raise UsageError(f"{path} does not import: {_describe(error)}") from None
    return module


def _load_module(dotted: str) -> ModuleType:
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as error:
        if error.name and dotted.startswith(error.name):
            raise UsageError(f"no module named {dotted!r} can be found") from None
        raise UsageError(f"module {dotted!r} does not import: {_describe(error)}") from None
    except BaseException as error:
        raise UsageError(f"module {dotted!r} does not import: {_describe(error)}") from None


def load_object(target: str, kind: type | tuple[type, ...], what: str):
    """The object NAME of ``file.py:NAME`` or ``module:NAME``, which must be a ``kind`` (a type,
    or a tuple of types, the first named in the hint)."""
    where, sep, name = target.rpartition(":")
    if not sep or not where or not name:
        raise UsageError(f"TARGET must look like path/to/file.py:NAME or package.module:NAME, got {target!r}")
    module = _load_file(Path(where)) if where.endswith(".py") or "/" in where else _load_module(where)
    if not hasattr(module, name):
        raise UsageError(f"{where} has no attribute {name!r}")
    value = getattr(module, name)
    if not isinstance(value, kind):
        first = kind[0] if isinstance(kind, tuple) else kind
        raise UsageError(
            f"{where}:{name} is a {type(value).__name__}, not {what} (build one with {first.__name__}(name, ...))"
        )
    return value


def json_safe(value):
    """The value with every NaN or infinity (a hand value, never an error or tolerance) written
    as the string "nan", "inf" or "-inf", so that reports are valid JSON."""
    import math

    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
