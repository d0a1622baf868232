"""Traced programs kept on disk (``reference.stored``): what is read back computes exactly
what was traced, and a program is never read for another program, other shapes or other code."""

from dataclasses import dataclass

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
    assert list(program._runs.values()) == [jitted]


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
    shape = fast.Shape(6, 16, 32)
    assert not isinstance(fast._compiled((CATALOGUE["identity"], stand_in), (MSE,), shape, False), stored.Stored)
    assert isinstance(fast._compiled(fast.catalogue_branches(), (MSE,), shape, False), stored.Stored)


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


def test_each_signature_of_the_arguments_has_its_own_program(programs):
    # reference.layers' oracle of one architecture meets every batch size.
    wider = (np.linspace(-1, 1, 20).reshape(5, 4), ARGS[1])
    with jax.enable_x64(True):
        program = stored.Stored(jax.jit(_program), ("tanh", 1), shelf="shelf", keep=8)
        results = [np.asarray(program(*args)) for args in (ARGS, wider, ARGS)]
        expected = [np.asarray(jax.jit(_program)(*args)) for args in (ARGS, wider, ARGS)]
        names = {stored.name(("tanh", 1), ARGS), stored.name(("tanh", 1), wider)}
    assert all(np.array_equal(r, e) for r, e in zip(results, expected, strict=True))
    assert len(program._runs) == 2
    assert {path.name for path in (programs / "shelf").iterdir()} == names


def _layer_network(g):
    from manual import MSE, init_layer_network
    from manual.layers import Dense
    from manual.norms import LayerNorm

    rng = np.random.default_rng(0)
    net = init_layer_network((3,), [(Dense(4), g), (LayerNorm(), None), (Dense(2), None)], rng)
    return net, rng.standard_normal((5, 3)), rng.standard_normal((5, 2)), MSE


def test_layer_oracles_of_table_entries_are_stored_and_read_back(programs):
    from manual import CATALOGUE
    from reference import layers

    net, x, y, loss = _layer_network(CATALOGUE["tanh"])
    layers._program.cache_clear()
    traced = layers.layer_autodiff(net, x, y, loss=loss)
    files = list((programs / "layers").iterdir())
    assert len(files) == 1
    layers._program.cache_clear()  # a later process: the program is read back, nothing new written
    read = layers.layer_autodiff(net, x, y, loss=loss)
    assert list((programs / "layers").iterdir()) == files
    for k in range(1, net.depth + 1):
        assert np.array_equal(read.delta[k], traced.delta[k])
        assert all(np.array_equal(read.params[k][q], traced.params[k][q]) for q in traced.params[k])


def test_a_layer_network_with_a_stand_in_is_traced_every_time(programs):
    from manual import CATALOGUE, Activation
    from manual.residual import Residual
    from reference import layers

    stand_in = Activation("tanh", lambda z, xp: xp.tanh(z), lambda z, xp: 1 - xp.tanh(z) ** 2)
    net, x, y, loss = _layer_network(stand_in)
    assert not isinstance(layers._program(net.layers, net.g, loss), stored.Stored)
    layers.layer_autodiff(net, x, y, loss=loss)
    assert not (programs / "layers").exists()
    # inside a residual block too
    assert layers._describe((None, Residual(4, stand_in))) is None
    assert layers._describe((None, Residual(4, CATALOGUE["tanh"]))) is not None


def test_a_controls_layer_shares_its_kinds_program_unless_it_has_other_settings() -> None:
    # The oracle reads a layer's kind and settings only: a subclass that changes a method (a
    # negative control) is named as its kind; one with a setting of its own is not stored.
    from manual import CATALOGUE
    from manual.residual import Residual
    from property_tests.banks.layer_controls import ResidualWithoutSkip
    from reference import layers

    tanh = CATALOGUE["tanh"]
    assert layers._describe((None, ResidualWithoutSkip(4, tanh))) == layers._describe((None, Residual(4, tanh)))

    @dataclass(frozen=True)
    class Scaled(Residual):
        scale: float = 2.0

    assert layers._describe((None, Scaled(4, tanh))) is None
