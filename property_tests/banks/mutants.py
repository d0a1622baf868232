"""A bank of broken backward passes: each is the real derivation with one piece replaced by a
mistake people make when they derive backpropagation by hand, and each must be caught.

The classic mistakes of networks of layers (``LAYER_MUTANTS``: a kernel not rotated, the
stride's zeros not inserted, the padding cropped off by one, channels transposed, the pooling
tie conventions, BatchNorm's statistics taken as constants, LayerNorm without its path through
σ, a residual block without its skip path, …) are hunted on the networks of layers of
``verify`` (``verify_layers``), each layer of the mistaken kind replaced by its wrong version,
and judged the same way.

``run_mutants`` feeds every entry the same seeded stream of random networks that ``verify``
uses, judged by the same comparisons, and records for each the first equation and layer that
disagreed with autodiff and how long that took. The classic mistakes of the newer kinds
(activations with trainable parameters, maps that mix units) are hunted on networks drawn from
those kinds (``Mutant.pool``), with tied maxout units where the mistake lives at a tie.

A mistake in one activation's hand derivatives (``Mutant.swaps``) is put into the hand side
only: autodiff differentiates the real network, whose forward is the very same function (the
swapped entry keeps it), so every compiled reference is shared and the judge is never the
broken code.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

# A long list, as in verify: each mutant names manual's pieces (EQUATIONS, backprop, the catalogues)
# bare, so that an entry reads like the derivation it breaks.
from manual import (
    CATALOGUE,
    EQUATIONS,
    LOSSES,
    MSE,
    OUTPUT_MAPS,
    PARAMETRIC,
    SOFTMAX,
    VECTOR_ACTIVATIONS,
    Activation,
    AnyActivation,
    Equations,
    Loss,
    Network,
    backprop,
)
from property_tests.banks import broken
from property_tests.banks.layer_controls import CONTROLS, NORM_CONTROLS, has_kind, mistaken
from property_tests.checkers.verify import design, make_case
from property_tests.library import tolerances as tol
from property_tests.library.compare import Comparison, compare_case, first_failure
from property_tests.library.strategies import tied
from reference import fast

SIGMOID = CATALOGUE["sigmoid"]


def _g_prime(g, z):
    return g.derivative(z, np)


def _hidden(mutate):
    """hidden_delta with its g′ factor replaced by ``mutate(g_k, z_k)``."""

    def hidden_delta(theta_next, delta_next, z_k, g_k):
        return (delta_next @ theta_next) * mutate(g_k, z_k)  # (2), mutated

    return hidden_delta


def _output(mutate):
    def output_delta(grad_a_E, z_L, g_L):
        if not hasattr(g_L, "derivative"):  # softmax and log_softmax keep their own J_gᵀv
            return backprop.output_delta(grad_a_E, z_L, g_L)
        return grad_a_E * mutate(g_L, z_L)  # (1), mutated

    return output_delta


def _only_negative(g, z):
    return np.where(z < 0, 1.01, 1.0) * _g_prime(g, z)


def _sigmoid_everywhere(g, z):
    return SIGMOID.derivative(z, np)


PER_UNIT = ("prelu", "swish_beta", "snake", "acon_c", "tanh")
"""Activations whose parameters are per unit by default (``make_case`` draws them shared half the
time, one per unit otherwise), and tanh between them."""
GLU_FAMILY = ("glu", "reglu", "geglu", "swiglu")
MAXOUT = ("maxout2", "maxout3")


@dataclass(frozen=True)
class Mutant:
    """One broken backward pass: what it gets wrong, in one line, and how to build it."""

    name: str
    mistake: str
    equations: Equations = EQUATIONS
    losses: tuple[Loss, ...] = (MSE,)
    output: AnyActivation | None = None
    activation_swap: tuple[str, AnyActivation] | None = None
    pool: tuple[str, ...] = ()
    """The activations the networks are drawn from, by name (the catalogue when empty)."""
    swaps: tuple[tuple[str, AnyActivation], ...] = ()
    """(name, wrong entry) pairs: the hand side uses the wrong entry wherever the network has
    ``name``; autodiff keeps the real one (same forward). ``activation_swap`` is one such pair."""
    ties: bool = False
    """Make the first two units of every maxout group twins (``strategies.tied``)."""


MUTANTS: list[Mutant] = [
    Mutant("g_prime_at_a", "g′ evaluated at a = g(z) instead of at z, in (1) and (2)", broken.G_PRIME_AT_A),
    Mutant("theta_not_transposed", "Θ⁽ᵏ⁺¹⁾ instead of (Θ⁽ᵏ⁺¹⁾)ᵀ in (2)", broken.MISSING_TRANSPOSE),
    Mutant(
        "g_prime_missing_in_2",
        "(2) without its factor g_k′(z⁽ᵏ⁾)",
        dataclasses.replace(EQUATIONS, hidden_delta=lambda th, d, z, g: d @ th),
    ),
    Mutant(
        "layer_input_from_wrong_layer",
        "(3) pairs δ⁽ᵏ⁾ with a⁽ᵏ⁾ instead of a⁽ᵏ⁻¹⁾",
        dataclasses.replace(EQUATIONS, layer_operands=lambda delta, a, k: (delta[k], a[k])),
    ),
    Mutant("bias_summed", "the bias gradient summed over the examples, not averaged", broken.BIAS_SUMMED),
    Mutant(
        "one_over_n_twice",
        "the 1/n of the mean applied twice in (3)",
        dataclasses.replace(
            EQUATIONS,
            parameter_gradients=lambda d, a: tuple(v / d.shape[0] for v in backprop.parameter_gradients(d, a)),
        ),
    ),
    Mutant(
        "no_averaging",
        "(3) sums over the examples and never divides by n",
        dataclasses.replace(
            EQUATIONS,
            parameter_gradients=lambda d, a: tuple(v * d.shape[0] for v in backprop.parameter_gradients(d, a)),
        ),
    ),
    Mutant(
        "grad_a_sign_flipped",
        "∇ₐE taken as y − a instead of a − y in (1)",
        dataclasses.replace(EQUATIONS, output_delta=lambda grad, z, g: backprop.output_delta(-grad, z, g)),
    ),
    Mutant(
        "delta_from_wrong_layer",
        "(3) uses the δ of the layer above, δ⁽ᵏ⁺¹⁾, in place of δ⁽ᵏ⁾",
        dataclasses.replace(
            EQUATIONS, layer_operands=lambda delta, a, k: (delta[min(k + 1, len(delta) - 1)], a[k - 1])
        ),
    ),
    Mutant(
        "softmax_diagonal_jacobian",
        "softmax's Jacobian without its off-diagonal terms in (1)",
        broken.SOFTMAX_WITHOUT_OFF_DIAGONAL,
        losses=(MSE, LOSSES["huber"]),
        output=SOFTMAX,
    ),
    Mutant(
        "derivative_wrong_in_last_layer",
        "g′ off by 0.1% in the output layer only",
        dataclasses.replace(EQUATIONS, output_delta=_output(lambda g, z: 1.001 * _g_prime(g, z))),
    ),
    Mutant(
        "derivative_wrong_for_negative_z",
        "g′ off by 1% for z < 0 only, in (1) and (2)",
        dataclasses.replace(EQUATIONS, output_delta=_output(_only_negative), hidden_delta=_hidden(_only_negative)),
    ),
    Mutant(
        "sigmoid_prime_hardwired",
        "σ′ used for every layer whatever its activation (Nielsen's flaw)",
        dataclasses.replace(
            EQUATIONS, output_delta=_output(_sigmoid_everywhere), hidden_delta=_hidden(_sigmoid_everywhere)
        ),
    ),
    Mutant(
        "bias_gradient_forgotten",
        "the bias gradient left at zero",
        dataclasses.replace(
            EQUATIONS, parameter_gradients=lambda d, a: (backprop.parameter_gradients(d, a)[0], np.zeros(d.shape[1]))
        ),
    ),
    Mutant(
        "weight_gradient_transposed",
        "∂E/∂Θ⁽ᵏ⁾ built as aᵀδ, the transpose of the right shape",
        dataclasses.replace(
            EQUATIONS,
            parameter_gradients=lambda d, a: (
                (a.T @ d / d.shape[0]).reshape(d.shape[1], a.shape[1]),
                d.sum(axis=0) / d.shape[0],
            ),
        ),
    ),
    Mutant("examples_misaligned", "(3) pairs δ of example t with a of example t − 1", broken.MISALIGNED_EXAMPLES),
    Mutant(
        "tanh_prime_off_by_1e_6",
        "tanh′ off by a relative 1e-6 (a catalogue entry, not the equations)",
        activation_swap=("tanh", broken.off_by(CATALOGUE["tanh"], 1e-6)),
    ),
    # --- activations with trainable parameters, and maps that mix units ------------------------
    Mutant(
        "prelu_partial_off_by_1e_6",
        "prelu's ∂g/∂a off by a relative 1e-6 (a catalogue entry, not the equations)",
        pool=("prelu", "tanh"),
        swaps=(("prelu", broken.parameter_partial_off_by(PARAMETRIC["prelu"], "a", 1e-6)),),
    ),
    Mutant(
        "parameter_summed_over_units",
        "a per-unit parameter's gradient summed over the units, not the examples",
        broken.PARAMETERS_WRONG_AXIS,
        pool=PER_UNIT,
    ),
    Mutant(
        "per_unit_treated_as_shared",
        "every unit of a per-unit parameter given the whole layer's gradient",
        broken.PER_UNIT_AS_SHARED,
        pool=PER_UNIT,
    ),
    Mutant(
        "parameter_gradient_from_delta",
        "∂E/∂p⁽ᵏ⁾ of a hidden layer from δ⁽ᵏ⁾ instead of ∂Eₜ/∂a⁽ᵏ⁾ = δ⁽ᵏ⁺¹⁾Θ⁽ᵏ⁺¹⁾",
        broken.PARAMETERS_FROM_DELTA,
        pool=(*PARAMETRIC, "tanh"),
        output=CATALOGUE["tanh"],
    ),
    Mutant(
        "glu_halves_swapped",
        "a GLU's J_gᵀv with its halves swapped (the first half taken as the gate)",
        pool=(*GLU_FAMILY, "tanh"),
        swaps=tuple((name, broken.halves_swapped(VECTOR_ACTIVATIONS[name])) for name in GLU_FAMILY),
    ),
    Mutant(
        "maxout_one_hot_at_ties",
        "maxout's J_gᵀv sends a tied group's gradient to its first maximum only",
        pool=(*MAXOUT, "tanh"),
        ties=True,
        swaps=tuple((name, broken.one_hot_at_ties(VECTOR_ACTIVATIONS[name])) for name in MAXOUT),
    ),
    Mutant(
        "hidden_softmax_diagonal_jacobian",
        "a hidden softmax's J_g replaced by its diagonal a ⊙ (1 − a) in (2)",
        broken.HIDDEN_JACOBIAN_DIAGONAL,
        pool=("softmax", "tanh"),
    ),
]


@dataclass(frozen=True)
class LayerMutant:
    """A classic mistake of one layer kind: every layer of ``kind`` becomes ``wrong``."""

    name: str
    mistake: str
    kind: object
    wrong: type


LAYER_MUTANT_NAMES = {
    "kernel not rotated": "conv_kernel_not_rotated",
    "stride zeros not inserted": "conv_stride_zeros_missing",
    "padding cropped off by one": "conv_crop_off_by_one",
    "channels transposed in ∂E/∂W": "conv_weight_channels_transposed",
    "bias gradient summed, not averaged": "conv_bias_summed",
    "convolution's (2) off by 1e-6": "conv_input_delta_off_by_1e_6",
    "max pooling to the last tied maximum": "max_pool_last_tied_maximum",
    "max pooling to every tied maximum": "max_pool_every_tied_maximum",
    "average pooling without 1/window": "avg_pool_without_one_over_window",
    "average pooling off by 1e-6": "avg_pool_off_by_1e_6",
    "flatten laid back in Fortran order": "flatten_back_in_fortran_order",
    "dense Θ misread": "dense_theta_misread",
    "BatchNorm's statistics treated as constants": "batch_norm_statistics_as_constants",
    "LayerNorm without the path through σ": "layer_norm_without_sigma_path",
    "ε outside the square root": "norm_epsilon_outside_the_root",
    "RMSNorm's (2) off by 1e-6": "rms_norm_off_by_1e_6",
    "residual block without the skip path": "residual_without_skip_path",
    "residual block's g′ at its output": "residual_g_prime_at_output",
}
"""A short name for each mistake of ``layer_controls.CONTROLS``."""

LAYER_MUTANTS: list[LayerMutant] = [
    LayerMutant(LAYER_MUTANT_NAMES[mistake], mistake, kind, wrong)
    for mistake, (kind, wrong) in {**CONTROLS, **NORM_CONTROLS}.items()
]
"""The mistakes of ``layer_controls.CONTROLS``, hunted on convolutional networks."""


@dataclass
class MutantResult:
    name: str
    mistake: str
    caught: bool
    equation: str | None
    layer: int | None
    networks: int
    seconds: float
    detail: str = ""

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MutantsReport:
    results: list[MutantResult] = field(default_factory=list)

    @property
    def caught(self) -> int:
        return sum(r.caught for r in self.results)

    @property
    def median_seconds(self) -> float:
        return float(np.median([r.seconds for r in self.results])) if self.results else 0.0

    def as_dict(self) -> dict:
        return {
            "caught": self.caught,
            "total": len(self.results),
            "median_seconds": self.median_seconds,
            "mutants": [r.as_dict() for r in self.results],
        }


def resolve(name: str) -> AnyActivation:
    """An activation of any kind by name: catalogue, parametric, mixing units, output map."""
    for table in (CATALOGUE, PARAMETRIC, VECTOR_ACTIVATIONS, OUTPUT_MAPS):
        if name in table:
            return table[name]
    raise KeyError(f"unknown activation {name!r}")


def pool_of(mutant: Mutant) -> list[AnyActivation]:
    return [resolve(name) for name in mutant.pool] if mutant.pool else list(CATALOGUE.values())


def _swaps(mutant: Mutant) -> dict[str, AnyActivation]:
    swaps = dict(mutant.swaps)
    if mutant.activation_swap is not None:
        swaps[mutant.activation_swap[0]] = mutant.activation_swap[1]
    for name, wrong in swaps.items():
        if wrong.forward is not resolve(name).forward:
            raise ValueError(
                f"{mutant.name}: a swapped {name} must keep the real forward, which autodiff differentiates"
            )
    return swaps


def _hand_side(network: Network, swaps: dict[str, AnyActivation]) -> Network:
    """The same network with every swapped activation replaced by its wrong entry."""
    if not any(g.name in swaps for g in network.g[1:] if g is not None):
        return network
    return Network(
        network.theta,
        network.b,
        (None,) + tuple(swaps.get(g.name, g) for g in network.g[1:] if g is not None),
        network.p,
    )


def _cases(mutant: Mutant, count: int, seed: int) -> Iterator[tuple]:
    """(the case the hand side sees, the case autodiff differentiates) for up to ``count``
    networks; they differ only where ``mutant`` swaps an activation's hand derivatives. Each
    network is drawn when the hunt asks for it (most hunts end in their first batch), in the
    order and from the random stream that drawing all of them first would use."""
    rng = np.random.default_rng(seed)
    forced = [mutant.output] * count if mutant.output is not None else None
    plans = design(count, rng, pool_of(mutant), forced)
    swaps = _swaps(mutant)
    for i, plan in enumerate(plans):
        real = make_case(plan, rng, mutant.losses[i % len(mutant.losses)])
        if mutant.ties:
            real = dataclasses.replace(real, network=tied(real.network))
        yield dataclasses.replace(real, network=_hand_side(real.network, swaps)), real


def _references(cases: list, branches: tuple) -> list:
    """Autodiff for every case, one network per call: the program the properties use too (one
    compilation serves both in a process), and no slower than the vmapped one for a few dozen
    networks, which is all a hunt ever needs."""
    return fast.autodiff_many(
        [(c.network, c.x, c.y) for c in cases], losses=[c.loss for c in cases], branches=branches, batched=False
    )


def _caught(mutant: Mutant | LayerMutant, failure: Comparison, networks: int, start: float) -> MutantResult:
    """A hunt's result once ``failure`` disagreed with autodiff: where, after how many networks,
    and the seconds since ``start``."""
    return MutantResult(
        mutant.name,
        mutant.mistake,
        True,
        failure.equation,
        failure.layer,
        networks,
        time.perf_counter() - start,
        failure.describe(),
    )


def hunt(mutant: Mutant, *, max_networks: int = 512, batch: int = 32, seed: int = 0) -> MutantResult:
    """Random networks, a batch at a time, until a comparison disagrees (or ``max_networks``)."""
    start = time.perf_counter()
    equations = mutant.equations
    cases = _cases(mutant, max_networks, seed)
    branches = fast.branches_for_pool(pool_of(mutant))  # one compiled program for every batch
    for begin in range(0, max_networks, batch):
        chunk = list(itertools.islice(cases, batch))
        for i, ((hand, _real), ref) in enumerate(
            zip(chunk, _references([real for _, real in chunk], branches), strict=True)
        ):
            failure = first_failure(compare_case(hand, ref, equations)[0])
            if failure is not None:
                return _caught(mutant, failure, begin + i + 1, start)
    return MutantResult(mutant.name, mutant.mistake, False, None, None, max_networks, time.perf_counter() - start)


def hunt_layers(mutant: LayerMutant, *, draws: int = 3, seed: int = 0) -> MutantResult:
    """The convolutional networks of ``verify`` (``draws`` of each architecture), with every
    layer of the mutant's kind made wrong, until an equation disagrees with autodiff."""
    from property_tests.checkers.verify_layers import EXTREMES, build, draw_case
    from property_tests.library import layer_compare
    from property_tests.library.layer_strategies import LayerCase
    from reference.layers import layer_autodiff

    start, rng, networks = time.perf_counter(), np.random.default_rng(seed), 0
    activations = list(CATALOGUE.values())
    for i, (label, in_shape, stack) in enumerate(EXTREMES):

        def turn(i: int = i) -> Activation:
            return activations[i % len(activations)]

        layers, loss = build(label, in_shape, stack, turn, "softmax" in label)
        for _ in range(draws):
            real = draw_case(in_shape, layers, loss, rng, "ties" in label, "near-constant" in label)
            networks += 1
            if not has_kind(real.network, mutant.kind):
                continue  # no layer of that kind here
            hand = LayerCase(mistaken(real.network, mutant.kind, mutant.wrong), real.x, real.y, real.loss)
            ref = layer_autodiff(real.network, real.x, real.y, loss=real.loss)
            failure = first_failure(layer_compare.equation_by_equation(hand, ref))
            if failure is not None:
                return _caught(mutant, failure, networks, start)
    return MutantResult(mutant.name, mutant.mistake, False, None, None, networks, time.perf_counter() - start)


def run_mutants(
    mutants: list[Mutant] | None = None, *, seed: int = 0, layer_mutants: list[LayerMutant] | None = None
) -> MutantsReport:
    """Hunt every mutant of the bank; see the module docstring. With ``mutants`` given, only
    those (and the ``layer_mutants`` given, none by default); else the whole bank."""
    if mutants is None and layer_mutants is None:
        layer_mutants = LAYER_MUTANTS
    chosen = mutants if mutants is not None else MUTANTS
    # Before any clock starts: compile the references the hunts use (one program per pool of
    # activations) and measure every activation's tolerance figures (slope scale, autodiff's
    # noise), which every later check reuses.
    rng = np.random.default_rng(0)
    for branches in dict.fromkeys(fast.branches_for_pool(pool_of(m)) for m in chosen):
        # a network the program is chosen for: one of its own activations if it has any
        g = next((g for g in branches if g not in fast.catalogue_branches()), CATALOGUE["tanh"])
        _references([make_case([g], rng)], branches)
    for g in CATALOGUE.values():
        tol.profile(g)
    results = [hunt(m, seed=seed) for m in chosen]
    return MutantsReport(results + [hunt_layers(m, seed=seed) for m in layer_mutants or []])
