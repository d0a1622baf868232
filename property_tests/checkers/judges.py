"""``verify`` on two cores: a second process judges networks while the first draws them and runs
the reference.

Judging a network (``compare_case``: the bounds and the comparisons of every equation) is many
small NumPy operations, bound to one core by Python, and it is most of ``verify``'s time. With
two cores, ``run_verify`` hands judgeable networks (cases and autodiff's values), 64 at a time,
to a worker process while it draws, tames and runs the reference for the next ones, and judges
a piece itself whenever the worker already has ``WAITING`` unfinished; at the end it takes back
the pieces the worker has not started (``reclaim``). Results are tallied in order,
whoever judged them, so a run's report is the same with one process or two (``test_judges``).
The worker first takes the networks of layers (``run_layer_verify``), which compile their own
programs.

What crosses between the processes is pickled here, with the activations, output maps and
losses of manual's tables sent by name (a ``dispatch_table`` of their types), so that the worker
judges with its own table entries, the very objects its profiles and identity checks know. A
chunk that cannot be pickled (a mutant's equations written as lambdas, a user's activation whose
forward is a local function) is judged in the first process.
"""

from __future__ import annotations

import concurrent.futures
import copyreg
import io
import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from manual import CATALOGUE, EQUATIONS, LOSSES, OUTPUT_MAPS, PARAMETRIC, VECTOR_ACTIVATIONS, Equations
from property_tests.library.compare import Comparison, compare_case

TABLES: dict[str, dict] = {
    "CATALOGUE": CATALOGUE,
    "PARAMETRIC": PARAMETRIC,
    "VECTOR_ACTIVATIONS": VECTOR_ACTIVATIONS,
    "OUTPUT_MAPS": OUTPUT_MAPS,
    "LOSSES": LOSSES,
}
WAITING = 8
"""Pieces the worker may have unfinished before the first process judges the next one itself:
enough to keep it busy while the first process draws a chunk and runs its reference (256
networks, some 0.3 s, against 0.1 s for the worker to judge a piece of 64). With two, the
worker waited for work after every chunk, and the default ``verify`` took 18.4 s instead of
16.6 s (medians of four runs each, alternated)."""

Judged = list[tuple[list[Comparison], str | None]]


def judge_pairs(pairs: Sequence[tuple], equations: Equations = EQUATIONS) -> Judged:
    """``compare_case`` for every (case, autodiff) pair: its comparisons and its kink doubt."""
    return [compare_case(case, ref, equations) for case, ref in pairs]


JOBS_VARIABLE = "BACKPROP_CHECK_JOBS"


def cpus() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_jobs() -> int:
    """``verify``'s processes when ``--jobs`` is not given: ``$BACKPROP_CHECK_JOBS`` if set (the
    test suite sets 1: pytest's workers have the cores already), else 2 with two cores or more."""
    value = os.environ.get(JOBS_VARIABLE, "").strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    return min(2, cpus())


def _entry(table_name: str, name: str) -> Any:
    """The entry ``name`` of manual's table ``table_name``: how a table entry is unpickled."""
    return TABLES[table_name][name]


_BY_ID = {id(entry): (table_name, name) for table_name, table in TABLES.items() for name, entry in table.items()}


def _reduce_entry(obj: Any) -> tuple:
    """A table entry pickles as its table and name; any other object of the same type as usual."""
    where = _BY_ID.get(id(obj))
    return (_entry, where) if where is not None else obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)


_DISPATCH = {**copyreg.dispatch_table, **{type(e): _reduce_entry for t in TABLES.values() for e in t.values()}}


def dumps(obj: Any) -> bytes:
    """``obj`` pickled, manual's table entries by name."""
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(obj)
    return buffer.getvalue()


UNPICKLABLE = (pickle.PicklingError, AttributeError, TypeError)
"""What pickling raises for an object it cannot send (a lambda, a local function)."""


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def shippable(obj: Any) -> bool:
    """Can ``obj`` be sent to the worker? (Asked once of a run's activations, losses and
    equations; ``Judges.submit`` still judges here a piece that fails to pickle.)"""
    try:
        dumps(obj)
    except UNPICKLABLE:
        return False
    return True


def _start() -> None:
    """The worker's set-up: one BLAS thread (as in the first process, so that every product
    is summed in the same order), the compilation cache, and every catalogue profile."""
    from threadpoolctl import threadpool_limits

    from property_tests.library import runtime
    from property_tests.library import tolerances as tol

    threadpool_limits(limits=1, user_api="blas")
    runtime.use_compilation_cache()
    tol.prepare(CATALOGUE.values())


def _judge(payload: bytes) -> bytes:
    pairs, equations = loads(payload)
    return dumps(judge_pairs(pairs, equations))


def _layers(seed: int, shard: tuple[int, int]) -> bytes:
    from property_tests.checkers.verify_layers import run_layer_verify

    return dumps(run_layer_verify(seed, shard=shard))


class Judges:
    """One worker process that judges chunks of networks (and runs the networks of layers).
    Use as a context manager; ``submit`` returns a future of the chunk's ``Judged`` list."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")  # JAX's threads do not survive a fork
        self._pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=context, initializer=_start)
        self._waiting: list[concurrent.futures.Future] = []

    def __enter__(self) -> Judges:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def busy(self) -> bool:
        """Does the worker already have ``WAITING`` jobs not yet done?"""
        self._waiting = [f for f in self._waiting if not f.done()]
        return len(self._waiting) >= WAITING

    def submit(self, pairs: Sequence[tuple], equations: Equations) -> Pending | Done:
        """The pairs judged in the worker, or here at once if they cannot be pickled."""
        try:
            payload = dumps((list(pairs), equations))
        except UNPICKLABLE:
            return Done(judge_pairs(pairs, equations))
        future = self._pool.submit(_judge, payload)
        return self._track(Pending(future, lambda: judge_pairs(pairs, equations)))

    def layers(self, seed: int, shard: tuple[int, int]) -> Pending:
        """``run_layer_verify(seed, shard=shard)`` in the worker."""
        from property_tests.checkers.verify_layers import run_layer_verify

        return self._track(
            Pending(self._pool.submit(_layers, seed, shard), lambda: run_layer_verify(seed, shard=shard))
        )

    def _track(self, pending: Pending) -> Pending:
        self._waiting.append(pending.future)
        return pending


def reclaim(job: Pending | Done, pairs: Sequence[tuple], equations: Equations) -> Pending | Done:
    """The job, or, if the worker has not started it yet, the same pairs judged here: at the
    end of a run the first process takes back what would otherwise keep it waiting."""
    if isinstance(job, Pending) and job.future.cancel():
        return Done(judge_pairs(pairs, equations))
    return job


@dataclass
class Pending:
    """A job in the worker: ``result()`` waits for it and unpickles what it returned. If the
    worker could not do it (it died, or could not import what a case refers to), the job is done
    here instead (``here``), so a failure of the worker never changes a verdict; an error of
    the judging itself is raised here again, as it would be without the worker."""

    future: concurrent.futures.Future
    here: Callable[[], Any]

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> Any:
        try:
            return loads(self.future.result())
        except Exception:  # whatever went wrong in the worker: do the job here
            return self.here()


@dataclass
class Done:
    """A chunk judged in the first process, in ``Pending``'s shape."""

    judged: Judged

    def done(self) -> bool:
        return True

    def result(self) -> Judged:
        return self.judged
