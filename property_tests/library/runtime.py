"""How a run of ``backprop-check`` (or of the test suite) sets up its process.

Three settings, about speed and memory, none about what is computed:

- **JAX's compilation cache on disk.** The padded reference programs take seconds to compile
  (``reference.fast``: some 2 s of XLA for the catalogue's program, as much for the newer kinds'),
  and every run compiles the same ones. JAX can keep compiled programs on disk and reuse them
  in the next run of the same JAX, jaxlib and program (its own cache key). ``BACKPROP_CHECK_CACHE``
  picks the folder, or switches the cache off with ``off``; by default it is
  ``$XDG_CACHE_HOME/backprop-check/jax`` (``~/.cache/...``), kept under ``CACHE_BYTES`` by JAX's
  own least-recently-used eviction (which locks the folder with ``filelock``).
- **Two malloc arenas.** glibc gives every thread that allocates its own arena (up to eight per
  core), and XLA's compiler threads leave freed memory behind in theirs: a run of ``verify``
  with its worker peaked at 1.03 GB, and at 0.90 GB with two arenas (``benchmarks/verify_time.py``).
  ``fewer_malloc_arenas`` sets this for the process and, through ``MALLOC_ARENA_MAX``, for the
  processes it starts.
- **One BLAS thread.** NumPy's products here are small (16 × 32 matrices); OpenBLAS's threads
  spin on them and, with the second core busy (pytest's other worker, the other half of
  ``verify``), wait on each other. ``threadpoolctl`` limits them for the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CACHE_VARIABLE = "BACKPROP_CHECK_CACHE"
OFF = ("0", "off", "no", "false")
CACHE_BYTES = 256 * 2**20
MIN_COMPILE_SECONDS = 0.05
"""Programs that compile faster than this are not worth a file (reading one back costs about
0.01 s). Between 0.05 and 0.2 s lie the per-architecture oracles of small networks, which
random draws meet again run after run: with them kept, a run of the quick test tier whose cache
a run before filled took 79 and 89 s against 86 and 105 s at a 0.2 s threshold, alternating
(on an empty cache, 157 against 148 s: more files written)."""


def cache_directory() -> Path | None:
    """Where compiled programs are kept, or ``None`` when ``BACKPROP_CHECK_CACHE`` is off."""
    value = os.environ.get(CACHE_VARIABLE, "").strip()
    if value.lower() in OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "backprop-check" / "jax"


def use_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at ``cache_directory()``; returns the folder,
    or ``None`` when the cache is off or the folder cannot be made (a read-only home), in which
    case every program is compiled as usual."""
    directory = cache_directory()
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_compilation_cache_max_size", CACHE_BYTES)
    return directory


MALLOC_ARENAS = 2
M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter number for the most arenas (``malloc.h``)."""


def fewer_malloc_arenas() -> None:
    """At most ``MALLOC_ARENAS`` malloc arenas here and in the processes started from here (on
    glibc; elsewhere nothing changes). A value the user set in ``MALLOC_ARENA_MAX`` is kept."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    os.environ["MALLOC_ARENA_MAX"] = str(MALLOC_ARENAS)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):  # not glibc
        pass


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """NumPy's BLAS limited to one thread inside the block."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
