"""Traced programs kept on disk, in JAX's compilation cache folder.

JAX's persistent compilation cache skips XLA's compiling in a later run, but not tracing: the
padded program of ``reference.fast`` switches between some forty activations at every layer,
and tracing its forward and backward pass takes about a second each run, for each of its two
programs (the catalogue's and the newer kinds'). ``jax.export`` writes a traced program out
as StableHLO; a later run reads it back (milliseconds) and compiles it, which the compilation
cache then makes a load. The plain oracle of layer networks (``reference.layers``) is stored
the same way, one program per architecture and batch size: a run meets the same fixed networks
again (``verify``'s extremes, the mutant hunts, ``explain``), and tracing them again cost about
2 s of the quick test tier's time on those tests.

A stored program is used only where it is sure to be the program the code would trace today:

- only when JAX's compilation cache is on (``jax_compilation_cache_dir`` set: the command sets
  it unless ``BACKPROP_CHECK_CACHE=off``), in its subfolder ``programs`` (``layers`` below it
  for the layer oracles, each folder keeping its own most recently used files);
- only for programs made of the entries of ``manual``'s tables as imported (``kept``,
  ``is_table_entry``) and, for a layer network, of the registered layer kinds themselves: a
  user's own activation, loss or layer, or an entry swapped into a table later, is traced
  each time;
- under a name that is a hash of the source of every module of ``manual`` and ``reference``
  as this process imported it, the versions of JAX, jaxlib and NumPy, JAX's backend and
  configuration, the program's parts (branches, losses and padded shape; a layer network's
  kinds, settings and activations by name), and the structure, shapes and dtypes of its
  arguments. Any edit of the code gives another name, so an old program is never read for
  new code; and a process whose code was edited after it started stores nothing (``fresh``).

The program that runs is the exported one in every run, the first included (``jax.jit`` of
``Exported.call``), so a run that stores a program computes exactly what a run that reads it
does. A file that cannot be read or written, a JAX that cannot serialize, or an exported program
that fails to run falls back to the program traced as usual.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np


def folder() -> Path | None:
    """``programs`` in JAX's compilation cache folder (whose own files JAX's eviction finds
    by their suffix, at the top level only), or ``None`` when the cache is off."""
    cache_dir = jax.config.values.get("jax_compilation_cache_dir")
    return Path(cache_dir) / "programs" if cache_dir else None


def _source_files() -> list[Path]:
    import manual

    return [
        path
        for package in (Path(manual.__file__).parent, Path(__file__).parent)
        for path in sorted(package.rglob("*.py"))
    ]


def _hash_sources() -> bytes:
    """The digest of every module of ``manual`` and ``reference``, in a fixed order."""
    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(str(path.relative_to(path.parent.parent)).encode())
        digest.update(path.read_bytes())
    return digest.digest()


_IMPORTED = time.time()
_SOURCES = _hash_sources()  # the code this process runs: hashed when it is imported


def _sources() -> bytes:
    return _SOURCES


def fresh() -> bool:
    """Is the code on disk still the code this process imported? A run outlived by an edit
    must not store what it made under the edited code's name."""
    try:
        return all(path.stat().st_mtime <= _IMPORTED for path in _source_files())
    except OSError:
        return False


def _table_entries() -> frozenset[int]:
    from manual import CATALOGUE, LOSSES, OUTPUT_MAPS, PARAMETRIC, VECTOR_ACTIVATIONS

    tables = (CATALOGUE, PARAMETRIC, VECTOR_ACTIVATIONS, OUTPUT_MAPS, LOSSES)
    return frozenset(id(entry) for table in tables for entry in table.values())


_TABLES = _table_entries()


def is_table_entry(obj: object) -> bool:
    """Is ``obj`` an entry of manual's tables as they were when this module was imported? An
    entry put in a table later (a test's stand-in) is not: its program is traced every time."""
    return id(obj) in _TABLES


def digest(parts: tuple, files: tuple[Path, ...] = ()) -> str:
    """A hash of the sources of ``manual`` and ``reference`` (and of ``files``), the versions of
    JAX, jaxlib and NumPy, JAX's configuration, and ``parts``."""
    import jaxlib

    hashed = hashlib.sha256(_sources())
    hashed.update(jax.default_backend().encode())
    for path in files:
        hashed.update(path.read_bytes())
    versions = (jax.__version__, jaxlib.__version__, np.__version__)
    config = sorted((key, repr(value)) for key, value in jax.config.values.items())
    hashed.update(repr((versions, config, parts)).encode())
    return hashed.hexdigest()[:40]


def signature(args: tuple) -> tuple:
    """The structure of ``args`` (lists and dicts of arrays may nest) and each array's shape and
    dtype: what one traced program is specialised to."""
    leaves, structure = jax.tree_util.tree_flatten(args)
    return str(structure), tuple((np.shape(a), _dtype(a).str) for a in leaves)


def _dtype(leaf: Any) -> np.dtype:
    return np.dtype(leaf.dtype) if hasattr(leaf, "dtype") else np.result_type(leaf)


def name(parts: tuple, args: tuple) -> str:
    """The file name of a program: a hash of everything it depends on (see the module docstring).
    ``args`` may be nested (lists and dicts of arrays): their structure is part of the name."""
    return digest((parts, *signature(args))) + ".jaxexport"


class Stored:
    """``jitted`` (a ``jax.jit`` function of arrays, or of lists and dicts of them) run through
    its exported form, read from ``folder()`` when a run before stored it: one program for each
    signature of its arguments (``signature``). ``parts`` name what the program is made of;
    ``shelf`` is the subfolder it is kept in, with the ``keep`` most recently used programs of
    that subfolder (``KEEP`` by default); ``options`` are ``jax.jit``'s for the exported program."""

    def __init__(self, jitted: Any, parts: tuple, *, shelf: str = "", keep: int | None = None, **options: Any) -> None:
        self.jitted, self.parts, self.options = jitted, parts, options
        self.shelf, self.keep = shelf, keep
        self._runs: dict[tuple, Callable] = {}

    def __call__(self, *args: Any) -> Any:
        key = signature(args)
        run = self._runs.get(key)
        if run is None:
            program = self._program(args)
            if program is not self.jitted:
                try:
                    result = program(*args)
                except Exception:  # an exported program that will not run here: trace as usual
                    program = self.jitted
                else:
                    self._runs[key] = program
                    return result
            self._runs[key] = run = program
        return run(*args)

    def _program(self, args: tuple) -> Callable:
        directory = folder()
        if directory is None:
            return self.jitted
        path = directory / self.shelf / name(self.parts, args)
        exported = _read(path)
        if exported is None:
            try:
                exported = jax.export.export(self.jitted)(*args)
                if fresh():
                    write(path, exported.serialize(), keep=self.keep)
            except Exception:  # no flatbuffers, or a program JAX cannot export: traced as usual
                return self.jitted
        return jax.jit(exported.call, **self.options)


def kept(jitted: Any, parts: tuple, entries: Sequence[object], **settings: Any) -> Any:
    """``Stored(jitted, parts, **settings)`` when every one of ``entries`` (the activations and
    losses the program is made of) is an entry of manual's tables as imported; else ``jitted``,
    traced in every process as usual."""
    return Stored(jitted, parts, **settings) if all(is_table_entry(entry) for entry in entries) else jitted


KEEP = 16
"""Programs kept in the folder: the most recently used; an edit of the code leaves the old
names unused, and they go first."""


def _read(path: Path) -> jax.export.Exported | None:
    try:
        exported = jax.export.deserialize(bytearray(path.read_bytes()))
    except Exception:  # none yet, or a damaged or foreign file: traced again, and written anew
        return None
    touch(path)
    return exported


def touch(path: Path) -> None:
    """Mark a file used now (kept longest), where the folder allows it."""
    try:
        os.utime(path)
    except OSError:
        pass


def write(path: Path, data: bytes | bytearray, keep: int | None = None) -> None:
    """Write atomically (another process may read the same name), or not at all; then leave
    the ``keep`` (default ``KEEP``) most recently used files of the folder with its suffix."""
    keep = KEEP if keep is None else keep
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".part", delete=False) as handle:
            temporary = Path(handle.name)
            handle.write(data)
        os.replace(temporary, path)
        kept = sorted(path.parent.glob("*" + path.suffix), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[keep:]:
            old.unlink(missing_ok=True)
    except OSError:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
