"""Traced programs kept on disk (``reference.stored``): what is read back computes exactly
what was traced, and a program is never read for another program, other shapes or other code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reference import stored


def _program(x, w):
    return jax.grad(lambda w: jnp.sum(jnp.tanh(x @ w) ** 2))(w)


@pytest.fixture
def programs(tmp_path, monkeypatch):
    folder = tmp_path / "cache" / "programs"
    folder.mkdir(parents=True)
    monkeypatch.setattr(stored, "folder", lambda: folder)
    return folder


ARGS = (np.linspace(-1, 1, 12).reshape(3, 4), np.linspace(0.5, -0.5, 8).reshape(4, 2))


def test_a_stored_program_is_read_back_and_computes_what_was_traced(programs):
    with jax.enable_x64(True):
        traced = np.asarray(jax.jit(_program)(*ARGS))
        first = np.asarray(stored.Stored(jax.jit(_program), ("tanh", 1))(*ARGS))
        files = list(programs.iterdir())
        assert len(files) == 1
        again = stored.Stored(jax.jit(lambda x, w: _program(x, w) * 0), ("tanh", 1))  # another body, same name
        read = np.asarray(again(*ARGS))
    assert np.array_equal(first, traced)
    # The name alone picked the file: what ran is the stored program, not the body given here.
    assert np.array_equal(read, traced) and np.any(read != 0)


def test_other_parts_shapes_or_dtypes_get_other_names():
    base = stored.name(("tanh", 1), ARGS)
    assert stored.name(("tanh", 2), ARGS) != base
    assert stored.name(("tanh", 1), (ARGS[0][:2], ARGS[1])) != base
    assert stored.name(("tanh", 1), (ARGS[0].astype(np.float32), ARGS[1])) != base
    assert stored.name(("tanh", 1), ARGS) == base


def _nested(params, data):
    return {"grad": _program(data["x"], params[0]), "sum": jnp.sum(params[1]["b"])}


NESTED = ([ARGS[1], {"b": np.arange(3.0)}], {"x": ARGS[0]})


def test_a_program_of_lists_and_dicts_is_read_back_and_named_by_its_structure(programs):
    # conv_fast's programs take their parameters and data as lists and dicts of arrays.
    with jax.enable_x64(True):
        traced = jax.jit(_nested)(*NESTED)
        stored.Stored(jax.jit(_nested), ("nested", 1))(*NESTED)
        read = stored.Stored(
            jax.jit(lambda p, d: jax.tree_util.tree_map(jnp.zeros_like, _nested(p, d))), ("nested", 1)
        )(*NESTED)
    assert np.array_equal(read["grad"], traced["grad"]) and float(read["sum"]) == float(traced["sum"]) == 3.0
    params, data = NESTED
    renamed = ([params[0], {"c": params[1]["b"]}], data)  # the same leaves under another key
    assert stored.name(("nested", 1), renamed) != stored.name(("nested", 1), NESTED)


def test_a_change_of_the_code_gets_another_name(monkeypatch):
    base = stored.name(("tanh", 1), ARGS)
    monkeypatch.setattr(stored, "_sources", lambda: b"an edited module")
    assert stored.name(("tanh", 1), ARGS) != base


def test_a_damaged_file_is_traced_again_and_replaced(programs):
    with jax.enable_x64(True):
        path = programs / stored.name(("tanh", 1), ARGS)
        path.write_bytes(b"not a program")
        result = np.asarray(stored.Stored(jax.jit(_program), ("tanh", 1))(*ARGS))
        assert np.array_equal(result, np.asarray(jax.jit(_program)(*ARGS)))
    assert path.read_bytes() != b"not a program"


def test_without_the_compilation_cache_the_program_is_traced_as_usual(monkeypatch):
    monkeypatch.setattr(stored, "folder", lambda: None)
    jitted = jax.jit(_program)
    program = stored.Stored(jitted, ("tanh", 1))
    with jax.enable_x64(True):
        program(*ARGS)
    assert program._run is jitted


def test_a_process_outlived_by_an_edit_stores_nothing(programs, monkeypatch):
    monkeypatch.setattr(stored, "_IMPORTED", 0.0)  # every source file is newer than the import
    assert not stored.fresh()
    with jax.enable_x64(True):
        result = np.asarray(stored.Stored(jax.jit(_program), ("tanh", 1))(*ARGS))
        assert np.array_equal(result, np.asarray(jax.jit(_program)(*ARGS)))
    assert not any(programs.iterdir())


def test_only_the_tables_entries_as_imported_are_stored(programs):
    from manual import CATALOGUE, MSE, Activation
    from reference import fast

    assert stored.is_table_entry(CATALOGUE["tanh"]) and stored.is_table_entry(MSE)
    stand_in = Activation("tanh", lambda z, xp: xp.tanh(z), lambda z, xp: 1 - xp.tanh(z) ** 2, formula="")
    assert not stored.is_table_entry(stand_in)
    assert not fast._tables_only((CATALOGUE["identity"], stand_in), (MSE,))
    assert fast._tables_only(fast.catalogue_branches(), (MSE,))


def test_only_the_most_recently_used_programs_are_kept(programs, monkeypatch):
    monkeypatch.setattr(stored, "KEEP", 2)
    with jax.enable_x64(True):
        for tag in range(4):
            stored.Stored(jax.jit(_program), ("tanh", tag))(*ARGS)
        newest = {stored.name(("tanh", 2), ARGS), stored.name(("tanh", 3), ARGS)}
    assert {path.name for path in programs.iterdir()} == newest


def _fresh_profiles(monkeypatch):
    from property_tests.library import tolerances as tol

    monkeypatch.setattr(tol, "_PROFILES", {})
    monkeypatch.setattr(tol, "_ON_GRID", {})
    return tol


def test_a_stored_profile_is_the_measured_one(programs, monkeypatch):
    from manual import CATALOGUE

    tol = _fresh_profiles(monkeypatch)
    g = CATALOGUE["gelu_tanh"]
    tol.prepare([g])
    measured, on_grid = tol._PROFILES[g], tol._ON_GRID[g]
    assert len(list(programs.with_name("profiles").iterdir())) == 1
    tol = _fresh_profiles(monkeypatch)
    monkeypatch.setattr(tol, "measure_profile", None)  # measuring again would raise
    tol.prepare([g])
    read = tol._PROFILES[g]
    for part in ("slope", "noise"):
        for side in ("right", "left"):
            assert np.array_equal(getattr(getattr(read, part), side), getattr(getattr(measured, part), side))
    assert read.slope.start == measured.slope.start and read.finite == measured.finite
    assert np.array_equal(tol._ON_GRID[g], on_grid)


def test_a_users_activation_has_no_stored_profile(programs, monkeypatch):
    from manual import Activation

    tol = _fresh_profiles(monkeypatch)
    mine = Activation("tanh", lambda z, xp: xp.tanh(z), lambda z, xp: 1 - xp.tanh(z) ** 2, formula="")
    tol.prepare([mine])
    assert mine in tol._PROFILES and not programs.with_name("profiles").exists()
