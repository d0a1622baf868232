"""The fast reference against the plain oracle, and how the reference treats JAX's settings."""

import dataclasses
import subprocess
import sys
from typing import TypedDict

import numpy as np
import pytest
from hypothesis import given

from manual import CATALOGUE, PARAMETRIC, VECTOR_ACTIVATIONS, VectorActivation
from manual.network import init_network
from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import profiles, properties
from property_tests.library.strategies import cases, loss_cases
from reference import fast, plain


class Sizes(TypedDict):
    """The size limits of ``cases`` that the properties below fix."""

    max_depth: int
    max_width: int
    max_examples: int


# The plain oracle compiles once per architecture (0.1–0.7 s), so this property runs fewer
# examples than the others unless the thorough profile asks for many.
PLAIN = Sizes(max_depth=4, max_width=8, max_examples=8)
PLAIN_EXAMPLES = profiles.fewer(2 / 5, 4)


@PLAIN_EXAMPLES
@given(cases(**PLAIN))
def test_fast_reference_equals_plain(case):
    properties.fast_reference_equals_plain(case)


@PLAIN_EXAMPLES
@given(loss_cases(**PLAIN))
def test_fast_reference_equals_plain_for_every_loss(case):
    # One compiled program switches between all catalogue losses: each network still gets its own.
    properties.fast_reference_equals_plain(case, fast_autodiff=lambda n, x, y: fast.autodiff(n, x, y, loss=case.loss))


def test_fast_reference_property_rejects_padding_leak():
    assert rejects(
        properties.fast_reference_equals_plain, cases(**PLAIN), fast_autodiff=broken.fast_reference_with_padding_leak
    )


def test_importing_reference_leaves_jax_in_float32_mode():
    code = (
        "import reference, jax.numpy as jnp, numpy as np, manual;"
        "assert jnp.zeros(1).dtype == jnp.float32;"
        "net = manual.init_network([2, 2], [manual.CATALOGUE['tanh']], np.random.default_rng(0));"
        "r = reference.autodiff(net, np.ones((1, 2)), np.ones((1, 2)));"
        "assert r.theta[1].dtype == np.float64;"
        "assert jnp.zeros(1).dtype == jnp.float32"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_manual_never_imports_jax():
    code = "import sys, manual; assert 'jax' not in sys.modules, 'manual imported JAX'"
    subprocess.run([sys.executable, "-c", code], check=True)


TABLE_ENTRIES = [*CATALOGUE.values(), *PARAMETRIC.values(), *VECTOR_ACTIVATIONS.values()]


@pytest.mark.parametrize("g", TABLE_ENTRIES, ids=lambda g: g.name)
def test_a_copy_with_another_hand_derivative_stands_in_for_its_entry(g):
    """Autodiff reads forwards only: a copy that differs in its name and hand derivatives (the
    negative controls' copies) is differentiated through its table entry's program."""
    hand = {f.name: getattr(g, f.name) for f in dataclasses.fields(g) if f.name in plain.HAND_FIELDS}
    changed = {name: (lambda *args: None) if callable(v) else v for name, v in hand.items()}
    copy = dataclasses.replace(g, **{**changed, "name": g.name + "_copy"})
    assert plain.stand_in(copy) is g
    assert plain.stand_in(g) is g


@pytest.mark.parametrize("g", TABLE_ENTRIES[:3] + TABLE_ENTRIES[-3:], ids=lambda g: g.name)
def test_a_copy_with_another_forward_stands_for_itself(g):
    """The control: the same maths behind another function object (a user's own) is not taken
    for the entry, nor is the entry with a layout of its own."""
    forward = g.forward
    own = dataclasses.replace(g, forward=lambda *args: forward(*args))
    assert plain.stand_in(own) is own
    if isinstance(g, VectorActivation):
        regrouped = dataclasses.replace(g, group=g.group + 1)
        assert plain.stand_in(regrouped) is regrouped


def test_a_table_entry_swapped_for_a_copy_keeps_the_shared_programs(monkeypatch):
    """A mutant or a negative control that swaps a catalogue entry for a copy with another hand
    derivative leaves the shared programs' branches as they were: no program of its own."""
    before = fast.catalogue_branches(), fast.kinds_branches()
    copy = broken.off_by(CATALOGUE["sigmoid"], 1e-6)
    monkeypatch.setitem(CATALOGUE, "sigmoid", copy)
    assert (fast.catalogue_branches(), fast.kinds_branches()) == before
    assert fast.branches_for_pool([copy, CATALOGUE["tanh"]]) == before[0]
    plain._g_primes.clear_cache()
    plain.derivatives([copy], np.linspace(-3, 3, 7))
    compiled = plain._g_primes._cache_size()
    plain.derivatives([CATALOGUE["tanh"]], np.linspace(-3, 3, 7))
    assert plain._g_primes._cache_size() == compiled == 1, "g′ of the swapped entry: the whole catalogue's program"


def test_a_table_entry_swapped_for_another_forward_changes_the_programs(monkeypatch):
    """The control: an entry swapped for the same maths behind another function is its own."""
    before = fast.catalogue_branches(), fast.kinds_branches()
    sigmoid = CATALOGUE["sigmoid"]
    own = dataclasses.replace(sigmoid, forward=lambda z, xp: sigmoid.forward(z, xp))
    monkeypatch.setitem(CATALOGUE, "sigmoid", own)
    assert own in fast.catalogue_branches() and fast.catalogue_branches() != before[0]
    assert own in fast.kinds_branches() and fast.kinds_branches() != before[1]


def test_a_network_with_a_copy_gets_the_entrys_gradients():
    rng = np.random.default_rng(0)
    tanh = CATALOGUE["tanh"]
    net = init_network([3, 4, 2], [tanh, CATALOGUE["identity"]], rng)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    copy = dataclasses.replace(net, g=(None, broken.off_by(tanh), net.g[2]))
    for autodiff in (plain.autodiff, fast.autodiff):
        ours, theirs = autodiff(net, x, y), autodiff(copy, x, y)
        assert all(np.array_equal(u, v) for u, v in zip(ours.delta[1:], theirs.delta[1:], strict=True))


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (70, 3)], ids=str)
def test_a_losss_gradient_by_autodiff_compiled_or_not_is_the_hand_gradient(shape):
    # reference.loss_gradient(_compiled) sizes the bounds of a loss outside the catalogue
    # (compare.sizing_gradient): both forms agree with a right hand gradient, and not with a
    # wrong one (the negative control: off by 1e-6). tanh(a − y) by hand and autodiff's of
    # log cosh differ by a few ulps; 1e-13 is some 450 ulps, 1e-6 far beyond it.
    from property_tests.banks import loss_bank

    rng = np.random.default_rng(0)
    a, y = rng.uniform(-3, 3, shape), rng.uniform(-3, 3, shape)
    right, wrong = loss_bank.RIGHT_LOGCOSH, loss_bank.WRONG_LOGCOSH
    by_autodiff = plain.loss_gradient(right, a, y)
    assert np.allclose(plain.loss_gradient_compiled(right, a, y), by_autodiff, rtol=1e-14, atol=1e-15)
    assert np.allclose(right.gradient(a, y, np), by_autodiff, rtol=1e-13, atol=1e-15)
    assert not np.allclose(wrong.gradient(a, y, np), by_autodiff, rtol=1e-13, atol=1e-15)
