"""Traced programs kept on disk, in JAX's compilation cache folder.

JAX's persistent compilation cache skips XLA's compiling in a later run, but not tracing: the
padded program of ``reference.fast`` switches between some forty activations at every layer,
and tracing its forward and backward pass takes about a second each run, for each of its two
programs (the catalogue's and the newer kinds'). ``jax.export`` writes a traced program out
as StableHLO; a later run reads it back (milliseconds) and compiles it, which the compilation
cache then makes a load.

A stored program is used only where it is sure to be the program the code would trace today:

- only when JAX's compilation cache is on (``jax_compilation_cache_dir`` set, as the command
  sets it; ``BACKPROP_CHECK_CACHE=off`` leaves both off), in its subfolder ``programs``;
- only for programs made of the tables of ``manual`` (``fast._compiled`` decides): a user's own
  activation or loss is traced each time;
- under a name that is a hash of the source of every module of ``manual`` and ``reference``,
  the versions of JAX, jaxlib and NumPy, JAX's configuration, the program's branches, losses
  and padded shape, and the shapes and dtypes of its arguments. Any edit of the code gives
  another name, so an old program is never read for new code.

The program that runs is the exported one in every run, the first included (``jax.jit`` of
``Exported.call``), so a run that stores a program computes exactly what a run that reads it
does. A file that cannot be read or written, or a JAX that cannot serialize, falls back to the
program traced as usual.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jax
import numpy as np


def folder() -> Path | None:
    """``programs`` in JAX's compilation cache folder (whose own files JAX's eviction finds
    by their suffix, at the top level only), or ``None`` when the cache is off."""
    cache_dir = jax.config.values.get("jax_compilation_cache_dir")
    return Path(cache_dir) / "programs" if cache_dir else None


@cache
def _sources() -> bytes:
    """The digest of every module of ``manual`` and ``reference``, in a fixed order."""
    import manual

    digest = hashlib.sha256()
    for package in (Path(manual.__file__).parent, Path(__file__).parent):
        for path in sorted(package.rglob("*.py")):
            digest.update(str(path.relative_to(package.parent)).encode())
            digest.update(path.read_bytes())
    return digest.digest()


def digest(parts: tuple, files: tuple[Path, ...] = ()) -> str:
    """A hash of the sources of ``manual`` and ``reference`` (and of ``files``), the versions of
    JAX, jaxlib and NumPy, JAX's configuration, and ``parts``."""
    import jaxlib

    hashed = hashlib.sha256(_sources())
    for path in files:
        hashed.update(path.read_bytes())
    versions = (jax.__version__, jaxlib.__version__, np.__version__)
    config = sorted((key, repr(value)) for key, value in jax.config.values.items())
    hashed.update(repr((versions, config, parts)).encode())
    return hashed.hexdigest()[:40]


def name(parts: tuple, args: tuple) -> str:
    """The file name of a program: a hash of everything it depends on (see the module docstring)."""
    specs = tuple((np.shape(a), np.result_type(a).str) for a in args)
    return digest((parts, specs)) + ".jaxexport"


class Stored:
    """``jitted`` (a ``jax.jit`` function of arrays only) run through its exported form, read
    from ``folder()`` when a run before stored it. ``parts`` name what the program is made of;
    ``options`` are ``jax.jit``'s for the exported program."""

    def __init__(self, jitted: Any, parts: tuple, **options: Any) -> None:
        self.jitted, self.parts, self.options = jitted, parts, options
        self._run: Callable | None = None

    def __call__(self, *args: Any) -> Any:
        if self._run is None:
            self._run = self._program(args)
        return self._run(*args)

    def _program(self, args: tuple) -> Callable:
        directory = folder()
        if directory is None:
            return self.jitted
        path = directory / name(self.parts, args)
        exported = _read(path)
        if exported is None:
            try:
                exported = jax.export.export(self.jitted)(*args)
                write(path, exported.serialize())
            except ImportError:  # no flatbuffers: JAX cannot serialize here
                return self.jitted
        return jax.jit(exported.call, **self.options)


KEEP = 16
"""Programs kept in the folder: the most recently used; an edit of the code leaves the old
names unused, and they go first."""


def _read(path: Path) -> jax.export.Exported | None:
    try:
        exported = jax.export.deserialize(bytearray(path.read_bytes()))
        os.utime(path)  # used now: kept longest
        return exported
    except FileNotFoundError:
        return None
    except Exception:  # a damaged or foreign file: traced again, and written anew
        return None


def write(path: Path, data: bytes | bytearray, keep: int | None = None) -> None:
    """Write atomically (another process may read the same name), or not at all; then leave
    the ``keep`` (default ``KEEP``) most recently used files of the folder with its suffix."""
    keep = KEEP if keep is None else keep
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, path)
        kept = sorted(path.parent.glob("*" + path.suffix), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[keep:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass
