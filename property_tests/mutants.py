"""A bank of broken backward passes: each is the real derivation with one piece replaced by a
mistake people make when they derive backpropagation by hand, and each must be caught.

``run_mutants`` feeds every entry the same seeded stream of random networks that ``verify``
uses, judged by the same comparisons, and records for each the first equation and layer that
disagreed with autodiff and how long that took.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from manual import CATALOGUE, EQUATIONS, LOSSES, MSE, SOFTMAX, Equations, Loss, backprop

from . import broken
from . import tolerances as tol
from .compare import compare_case, first_failure
from .verify import design, make_case, references

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


@dataclass(frozen=True)
class Mutant:
    """One broken backward pass: what it gets wrong, in one line, and how to build it."""

    name: str
    mistake: str
    equations: Equations = EQUATIONS
    losses: tuple[Loss, ...] = (MSE,)
    output: object | None = None
    activation_swap: tuple[str, object] | None = None


MUTANTS: list[Mutant] = [
    Mutant("g_prime_at_a", "g′ evaluated at a = g(z) instead of at z, in (1) and (2)", broken.G_PRIME_AT_A),
    Mutant("theta_not_transposed", "Θ⁽ᵏ⁺¹⁾ instead of (Θ⁽ᵏ⁺¹⁾)ᵀ in (2)", broken.MISSING_TRANSPOSE),
    Mutant("g_prime_missing_in_2", "(2) without its factor g_k′(z⁽ᵏ⁾)",
           dataclasses.replace(EQUATIONS, hidden_delta=lambda th, d, z, g: d @ th)),
    Mutant("layer_input_from_wrong_layer", "(3) pairs δ⁽ᵏ⁾ with a⁽ᵏ⁾ instead of a⁽ᵏ⁻¹⁾",
           dataclasses.replace(EQUATIONS, layer_operands=lambda delta, a, k: (delta[k], a[k]))),
    Mutant("bias_summed", "the bias gradient summed over the examples, not averaged", broken.BIAS_SUMMED),
    Mutant("one_over_n_twice", "the 1/n of the mean applied twice in (3)",
           dataclasses.replace(EQUATIONS, parameter_gradients=lambda d, a: tuple(
               v / d.shape[0] for v in backprop.parameter_gradients(d, a)))),
    Mutant("no_averaging", "(3) sums over the examples and never divides by n",
           dataclasses.replace(EQUATIONS, parameter_gradients=lambda d, a: tuple(
               v * d.shape[0] for v in backprop.parameter_gradients(d, a)))),
    Mutant("grad_a_sign_flipped", "∇ₐE taken as y − a instead of a − y in (1)",
           dataclasses.replace(EQUATIONS, output_delta=lambda grad, z, g: backprop.output_delta(-grad, z, g))),
    Mutant("delta_from_wrong_layer", "(3) uses the δ of the layer above, δ⁽ᵏ⁺¹⁾, in place of δ⁽ᵏ⁾",
           dataclasses.replace(EQUATIONS, layer_operands=lambda delta, a, k: (
               delta[min(k + 1, len(delta) - 1)], a[k - 1]))),
    Mutant("softmax_diagonal_jacobian", "softmax's Jacobian without its off-diagonal terms in (1)",
           broken.SOFTMAX_WITHOUT_OFF_DIAGONAL, losses=(MSE, LOSSES["huber"]), output=SOFTMAX),
    Mutant("derivative_wrong_in_last_layer", "g′ off by 0.1% in the output layer only",
           dataclasses.replace(EQUATIONS, output_delta=_output(lambda g, z: 1.001 * _g_prime(g, z)))),
    Mutant("derivative_wrong_for_negative_z", "g′ off by 1% for z < 0 only, in (1) and (2)",
           dataclasses.replace(EQUATIONS, output_delta=_output(_only_negative), hidden_delta=_hidden(_only_negative))),
    Mutant("sigmoid_prime_hardwired", "σ′ used for every layer whatever its activation (Nielsen's flaw)",
           dataclasses.replace(EQUATIONS, output_delta=_output(_sigmoid_everywhere),
                               hidden_delta=_hidden(_sigmoid_everywhere))),
    Mutant("bias_gradient_forgotten", "the bias gradient left at zero",
           dataclasses.replace(EQUATIONS, parameter_gradients=lambda d, a: (
               backprop.parameter_gradients(d, a)[0], np.zeros(d.shape[1])))),
    Mutant("weight_gradient_transposed", "∂E/∂Θ⁽ᵏ⁾ built as aᵀδ, the transpose of the right shape",
           dataclasses.replace(EQUATIONS, parameter_gradients=lambda d, a: (
               (a.T @ d / d.shape[0]).reshape(d.shape[1], a.shape[1]), d.sum(axis=0) / d.shape[0]))),
    Mutant("examples_misaligned", "(3) pairs δ of example t with a of example t − 1", broken.MISALIGNED_EXAMPLES),
    Mutant("tanh_prime_off_by_1e_6", "tanh′ off by a relative 1e-6 (a catalogue entry, not the equations)",
           activation_swap=("tanh", broken.off_by(CATALOGUE["tanh"], 1e-6))),
]


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
        return {"caught": self.caught, "total": len(self.results), "median_seconds": self.median_seconds,
                "mutants": [r.as_dict() for r in self.results]}


def _cases(mutant: Mutant, count: int, seed: int):
    rng = np.random.default_rng(seed)
    pool = list(CATALOGUE.values())
    if mutant.activation_swap is not None:
        name, replacement = mutant.activation_swap
        pool = [replacement if g.name == name else g for g in pool]
    forced = [mutant.output] * count if mutant.output is not None else None
    plans = design(count, rng, pool, forced)
    return [make_case(plan, rng, mutant.losses[i % len(mutant.losses)]) for i, plan in enumerate(plans)]


def hunt(mutant: Mutant, *, max_networks: int = 512, batch: int = 32, seed: int = 0) -> MutantResult:
    """Random networks, a batch at a time, until a comparison disagrees (or ``max_networks``)."""
    start = time.perf_counter()
    equations = mutant.equations
    cases = _cases(mutant, max_networks, seed)
    for begin in range(0, max_networks, batch):
        chunk = cases[begin : begin + batch]
        for i, (case, ref) in enumerate(zip(chunk, references(chunk))):
            failure = first_failure(compare_case(case, ref, equations)[0])
            if failure is not None:
                return MutantResult(mutant.name, mutant.mistake, True, failure.equation, failure.layer,
                                    begin + i + 1, time.perf_counter() - start, failure.describe())
    return MutantResult(mutant.name, mutant.mistake, False, None, None, max_networks, time.perf_counter() - start)


def run_mutants(mutants: list[Mutant] | None = None, *, seed: int = 0) -> MutantsReport:
    """Hunt every mutant of the bank; see the module docstring."""
    # Before any clock starts: compile the reference and measure every activation's tolerance
    # figures (slope scale, autodiff's noise), which every later check reuses.
    references([make_case([CATALOGUE["tanh"]], np.random.default_rng(0))])
    for g in CATALOGUE.values():
        tol.profile(g)
    return MutantsReport([hunt(m, seed=seed) for m in (mutants or MUTANTS)])
