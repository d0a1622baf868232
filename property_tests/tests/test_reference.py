"""The fast reference against the plain oracle, and how the reference treats JAX's settings."""

import subprocess
import sys
from typing import TypedDict

from hypothesis import given, settings

from property_tests.banks import broken
from property_tests.banks.controls import rejects
from property_tests.library import properties
from property_tests.library.strategies import cases, loss_cases
from reference import fast


class Sizes(TypedDict):
    """The size limits of ``cases`` that the properties below fix."""

    max_depth: int
    max_width: int
    max_examples: int


# The plain oracle compiles once per architecture (0.1–0.7 s), so this property runs fewer
# examples than the others unless the thorough profile asks for many.
PLAIN = Sizes(max_depth=4, max_width=8, max_examples=8)
PLAIN_EXAMPLES = settings(max_examples=max(4, settings().max_examples * 2 // 5))


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
