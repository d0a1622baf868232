"""The main job: the three equations against autodiff on many random networks.

Networks are drawn from a seed with NumPy (bulk numbers are cheap that way), and the activation
at each layer is chosen so that, across the run, every activation of the catalogue sits at
every layer position k = 1 … 6 and in the output layer. The losses take turns, network by
network; a loss that needs its own output layer gets it (cross-entropy after softmax, binary
cross-entropy after sigmoid, negative log-likelihood after log_softmax), and every eighth
network of the other catalogue losses ends in softmax or log_softmax. The reference is
``reference.fast`` (one compilation for the whole run). A mismatch is reported with the smallest
counterexample found: the smallest failing network, cut down to the single example that fails.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cache

import numpy as np

import manual

# A long list, as in strategies, mutants and reference.fast: the drawing and judging below use
# manual's catalogues and types bare, so each line reads like the equations it checks.
from manual import (
    CATALOGUE,
    EQUATIONS,
    LOSSES,
    MSE,
    OUTPUT_MAPS,
    PARAMETRIC,
    VECTOR_ACTIVATIONS,
    Activation,
    AnyActivation,
    Equations,
    Loss,
    ParametricActivation,
    VectorActivation,
)
from property_tests.checkers.judges import Done, Judges, Pending, judge_pairs, reclaim, shippable
from property_tests.checkers.loading import json_safe
from property_tests.library import tolerances as tol
from property_tests.library.compare import Comparison, compare_case, error_bounds, first_failure
from property_tests.library.strategies import Case, activation_at, at_layer, make_targets
from reference import fast

DEFAULT_EXAMPLES = 5000
MAX_DEPTH, MAX_WIDTH, MAX_BATCH = 6, 16, 32
CHUNK = 256
"""Cases per reference call: bounds memory however many examples are asked for."""
PIECE = 64
"""Cases judged at a time, here or in the second process (``checkers.judges``)."""

EQUATION_ORDER = ("(1)", "(2)", "(3) Θ", "(3) b", "(3) p")


@dataclass
class Tally:
    """The largest error seen for one equation (or one equation and activation)."""

    comparisons: int = 0
    max_error: float = 0.0
    tolerance: float = 0.0
    failures: int = 0
    excused: int = 0

    def add(self, c: Comparison, excused: bool = False) -> None:
        self.comparisons += 1
        if excused and not c.passed:
            self.excused += 1  # its error is past the bound by rounding: not a figure of the bound
            return
        self.failures += not c.passed
        if c.error is not None and c.error >= self.max_error:
            self.max_error, self.tolerance = c.error, c.tolerance

    def as_dict(self) -> dict:
        return {**asdict(self), "verified": self.failures == 0}


@dataclass
class Report:
    """What ``verify`` found; ``as_dict`` is the ``--json`` object."""

    examples: int
    seed: int
    activations: list[str]
    seconds: float = 0.0
    by_equation: dict[str, Tally] = field(default_factory=dict)
    by_activation: dict[tuple[str, str], Tally] = field(default_factory=dict)
    skipped_at_kinks: int = 0
    skipped_overflow: int = 0
    coverage_complete: bool = False
    counterexample: dict | None = None
    by_loss: dict[str, dict[str, Tally]] = field(default_factory=dict)
    networks_per_loss: dict[str, int] = field(default_factory=dict)
    excused: int = 0
    excuse: str | None = None
    shard: tuple[int, int] = (1, 1)
    fingerprints: list[str] = field(default_factory=list)
    """One short name per network checked (``fingerprint``), to show what a shard covered."""

    @property
    def verified(self) -> bool:
        return all(t.failures == 0 for t in self.by_equation.values()) and bool(self.by_equation)

    @property
    def checked(self) -> int:
        """Networks whose equations were compared (the others overflowed)."""
        return self.examples - self.skipped_overflow

    def add(self, comparisons: Sequence[Comparison], loss: Loss = MSE, excused: bool = False) -> None:
        """Tally one network's comparisons; an ``excused`` network's mismatches are counted as
        excused, not as failures (see ``run_verify``'s ``excuse``)."""
        self.networks_per_loss[loss.name] = self.networks_per_loss.get(loss.name, 0) + 1
        per_loss = self.by_loss.setdefault(loss.name, {})
        for c in comparisons:
            self.by_equation.setdefault(c.equation, Tally()).add(c, excused)
            self.by_activation.setdefault((c.equation, c.activation), Tally()).add(c, excused)
            per_loss.setdefault(c.equation, Tally()).add(c, excused)

    def as_dict(self) -> dict:
        return {
            "verified": self.verified,
            "examples": self.examples,
            "seed": self.seed,
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "seconds": round(self.seconds, 3),
            "activations": self.activations,
            "coverage_complete": self.coverage_complete,
            "skipped_at_kinks": self.skipped_at_kinks,
            "skipped_overflow": self.skipped_overflow,
            "excused": self.excused,
            "excuse": self.excuse,
            "equations": {eq: self.by_equation[eq].as_dict() for eq in EQUATION_ORDER if eq in self.by_equation},
            "by_activation": {f"{eq} {name}": t.as_dict() for (eq, name), t in sorted(self.by_activation.items())},
            "losses": {
                name: {
                    "networks": self.networks_per_loss[name],
                    "verified": all(t.failures == 0 for t in tallies.values()),
                    "equations": {eq: tallies[eq].as_dict() for eq in EQUATION_ORDER if eq in tallies},
                }
                for name, tallies in self.by_loss.items()
            },
            "counterexample": json_safe(self.counterexample),
        }


def design(
    examples: int,
    rng: np.random.Generator,
    pool: Sequence[AnyActivation],
    forced_outputs: Sequence[AnyActivation | None] | None = None,
) -> list[list[AnyActivation]]:
    """Activations per layer for every network, covering each (activation, position) slot.

    Positions are the layer indices k = 1 … MAX_DEPTH and "output". Each network takes a depth
    at random, then fills each layer with an activation not yet seen at that position (and, for
    its last layer, not yet seen as output) when there is one, at random otherwise. Where
    ``forced_outputs[i]`` is set, network i's output layer is that one instead."""
    forced_outputs = forced_outputs or [None] * examples
    unseen = {pos: list(pool) for pos in list(range(1, MAX_DEPTH + 1)) + ["output"]}
    plans = []
    for i in range(examples):
        depth = int(rng.integers(1, MAX_DEPTH + 1))
        plan: list[AnyActivation] = []
        forced = forced_outputs[i]
        for k in range(1, depth + 1):
            if k == depth and forced is not None:
                plan.append(forced)
                break
            wanted = [g for g in unseen[k] if k < depth or g in unseen["output"]] or unseen[k]
            if k == depth and not wanted:
                wanted = unseen["output"]
            g = wanted[rng.integers(len(wanted))] if wanted else pool[int(rng.integers(len(pool)))]
            plan.append(g)
            for pos in (k, "output") if k == depth else (k,):
                if g in unseen[pos]:
                    unseen[pos].remove(g)
        plans.append(plan)
    return plans


def loss_plan(examples: int, losses: Sequence[Loss]) -> tuple[list[Loss], list[AnyActivation | None]]:
    """The loss of every network (taking turns) and the output layer it forces, if any."""
    chosen: list[Loss] = []
    forced: list[AnyActivation | None] = []
    maps = list(OUTPUT_MAPS.values())
    for i in range(examples):
        loss = losses[i % len(losses)]
        chosen.append(loss)
        if loss.outputs:
            name = loss.outputs[(i // len(losses)) % len(loss.outputs)]
            forced.append(OUTPUT_MAPS.get(name) or CATALOGUE[name])
        elif (i // len(losses)) % 8 == 7 and loss in LOSSES.values():
            forced.append(maps[(i // (8 * len(losses))) % len(maps)])
        else:
            forced.append(None)
    return chosen, forced


def covered(plans: Sequence[Sequence[AnyActivation]], pool: Sequence[AnyActivation]) -> bool:
    """Did every activation appear at every position k = 1 … MAX_DEPTH and as output?"""
    seen: set[tuple[int | str, AnyActivation]] = {(k, g) for plan in plans for k, g in enumerate(plan[:-1], 1)}
    seen |= {(len(plan), plan[-1]) for plan in plans}
    seen |= {("output", plan[-1]) for plan in plans}
    positions = list(range(1, MAX_DEPTH + 1)) + ["output"]
    return all((pos, g) in seen for pos in positions for g in pool)


def make_case(plan: Sequence[AnyActivation], rng: np.random.Generator, loss: Loss = MSE) -> Case:
    """Weights, inputs and targets for one planned network, at a random scale. A layer whose g
    mixes units gets a width it can split (a multiple of two for a GLU, of k for maxout); an
    activation's parameters are drawn across their ranges, shared or one per unit."""
    depth = len(plan)
    widths = [int(w) for w in rng.integers(1, MAX_WIDTH + 1, depth + 1)]
    for k, g in enumerate(plan, 1):
        if isinstance(g, VectorActivation) and g.mixes is None:  # fills the padded row (reference.fast)
            widths[k] = MAX_WIDTH // g.group * g.group
        elif isinstance(g, VectorActivation) and g.group > 1:
            widths[k] = min(-(-widths[k] // g.group), MAX_WIDTH // g.group) * g.group
    network = manual.init_network(widths, plan, rng, scale=float(rng.uniform(0.25, 2.0)))
    if any(isinstance(g, ParametricActivation) for g in plan):
        network = replace(
            network,
            p=(None,)
            + tuple(
                draw_parameters(g, w, rng) if isinstance(g, ParametricActivation) else None
                for g, w in zip(plan, widths[1:], strict=True)
            ),
        )
    n = int(rng.integers(1, MAX_BATCH + 1))
    x = rng.uniform(-1, 1, (n, widths[0])) * rng.uniform(0.1, 4.0)
    return Case(network, x, make_targets(loss, (n, network.output_width), rng), loss)


def draw_parameters(g: ParametricActivation, units: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Values for g's parameters, uniform over each one's range: one per unit (all different)
    or, half the time, one shared by the layer."""
    shared = rng.uniform() < 0.5
    return {q.name: rng.uniform(q.low, q.high, () if shared else (units,)) for q in g.parameters}


KINDS: list[AnyActivation] = [*PARAMETRIC.values(), *VECTOR_ACTIVATIONS.values(), *OUTPUT_MAPS.values()]
"""The newer kinds ``verify`` covers by default beside the elementwise catalogue: activations
with parameters, and maps that mix units (softmax and log_softmax in hidden layers too)."""

KINDS_NETWORKS = 160
"""Networks drawn from ``KINDS`` in a run that also checks elementwise activations (fewer if
fewer are asked for): enough for every entry at every position (128 were for 20 seeds of 20
tried). Their reference is a program of its own."""


TAME_ATTEMPTS = 5
"""Tries at keeping a network finite, each with every layer's |z| held 8× lower than the last."""

HEADROOM = 2.0**-40
"""Values must stay below the dtype's largest float times this: the error bounds add up sums of
up to a few thousand such values."""

LARGE = 1e100
"""...and below this, whatever the dtype: the error bounds (in float64) multiply up to three
such magnitudes (a δ, a Θ and a slope scale)."""


def biggest(dtype: np.dtype) -> float:
    """The largest magnitude a network's values and slopes may reach in ``dtype``."""
    return min(float(np.finfo(dtype).max) * HEADROOM, LARGE)


@cache
def finite_radius(g, dtype: np.dtype) -> float:
    """Where a network may take g: the smaller of the two points, one on each side of the
    origin, beyond which g (in ``dtype``) or autodiff's g′ is not below ``biggest(dtype)`` at
    any point of the scale grid (an overflowing tail); at most 1e3. Isolated points inside are
    ignored: autodiff of a `where` whose other branch is 0/0 at z = 0 is NaN there and nowhere
    else, and a network's z is never exactly there."""
    if not isinstance(g, Activation):
        return 1e3
    grid = tol._grid()
    with np.errstate(all="ignore"):
        a = np.asarray(g.forward(grid.astype(dtype), np), np.float64)
    r = tol.grid_derivative(g)
    with np.errstate(invalid="ignore"):
        ok = (np.abs(a) <= biggest(dtype)) & (np.abs(r) <= biggest(dtype))
    reach = [1e3]
    for side in (grid >= 0, grid <= 0):
        w, fine = np.abs(grid[side]), ok[side]
        order = np.argsort(w)
        w, fine = w[order], fine[order]
        if fine.size and not fine[-1]:  # a tail: from just past the last good point on
            last = np.flatnonzero(fine)
            reach.append(float(w[last[-1]]) if last.size else 0.0)
    return min(reach)


def held(case: Case, limits: Sequence[float]) -> Case:
    """The same network with every layer's Θ⁽ᵏ⁾ and b⁽ᵏ⁾ scaled down, where needed, so that
    |z⁽ᵏ⁾| ≤ limits[k − 1] on this batch (computed in float64)."""
    net = case.network
    theta, b = list(net.theta), list(net.b)
    a = case.x.astype(np.float64)
    for k in range(1, net.depth + 1):
        theta_k, b_k = at_layer(theta, k), at_layer(b, k)
        z = a @ theta_k.T + b_k
        top = float(np.max(np.abs(z))) if z.size else 0.0
        if top > limits[k - 1]:
            s = limits[k - 1] / top
            theta[k], b[k], z = theta_k * s, b_k * s, z * s
        with np.errstate(all="ignore"):
            a = np.asarray(manual.activate(activation_at(net, k), z, net.p[k]), np.float64)
    return replace(case, network=replace(net, theta=tuple(theta), b=tuple(b)))


def fits(case: Case) -> bool:
    """Does the manual pass stay finite, with headroom, in the case's dtype?"""
    top = biggest(case.network.dtype)
    with np.errstate(all="ignore"):
        fwd = manual.forward(case.network, case.x)
        if not all(np.all(np.abs(v) <= top) for v in fwd.a):
            return False
        grads = manual.backward(case.network, fwd.z, fwd.a, case.y, loss=case.loss)
    return all(np.all(np.abs(v) <= top) for v in (*grads.theta[1:], *grads.b[1:]) if v is not None)


GROWTH_LIMIT = 10.0
"""An activation whose |g′| stays below this on the whole grid, and which is finite there, cannot
take a network of ``make_case`` (depth ≤ 6, width ≤ 16, weights of scale ≤ 2) anywhere near
``biggest``: |z| grows at most some 80-fold a layer. Networks of such activations (the whole
catalogue) are not held."""


@cache
def needs_holding(g, dtype: np.dtype) -> bool:
    return isinstance(g, Activation) and (finite_radius(g, dtype) < 1e3 or tol.profile(g).slope_scale > GROWTH_LIMIT)


def tame(case: Case, dtype: np.dtype | type) -> Case | None:
    """Keep a network finite in ``dtype``: every layer's |z| held within the range where its
    activation and g′ are finite (``finite_radius``), then 8× lower on each further try if the
    manual pass still overflows; ``None`` when it overflows all the same. A network that
    already fits is returned as it is (the catalogue's always do)."""
    dtype = np.dtype(dtype)
    if any(not isinstance(g, Activation) for g in case.network.g[1:]):
        return scaled_until_it_fits(case, dtype)
    if not any(needs_holding(g, dtype) for g in case.network.g[1:]):
        return case.astype(dtype)
    limits = [finite_radius(g, dtype) for g in case.network.g[1:]]
    for _ in range(TAME_ATTEMPTS):
        tried = held(case, limits).astype(dtype)
        if fits(tried):
            return tried
        limits = [limit / 8 for limit in limits]
    return None


def scaled_until_it_fits(case: Case, dtype: np.dtype) -> Case | None:
    """For a network with activations of the newer kinds (whose finite range is not profiled):
    the network as it is when its manual pass fits ``dtype``, else with every Θ⁽ᵏ⁾ and b⁽ᵏ⁾ 8×
    smaller on each further try (``TAME_ATTEMPTS``); ``None`` when it overflows all the same."""
    net = case.network
    for attempt in range(TAME_ATTEMPTS + 1):
        s = 8.0**-attempt
        tried = replace(
            case,
            network=replace(
                net,
                theta=(None,) + tuple(t * s for t in net.theta[1:] if t is not None),
                b=(None,) + tuple(b * s for b in net.b[1:] if b is not None),
            ),
        ).astype(dtype)
        if fits(tried):
            return tried
    return None


def judgeable(case: Case, ref) -> bool:
    """Are autodiff's values finite, and small enough that the error bounds of every
    comparison stay finite? A network that fails this overflowed: it is skipped and counted."""
    values = (*ref.z[1:], *ref.a, *ref.delta[1:], *ref.theta[1:], *ref.b[1:])
    if not all(np.all(np.isfinite(v)) for v in values):
        return False
    small = max(float(np.max(np.abs(v), initial=0.0)) for v in values) < LARGE / 1e6
    if small and all(_tamed(g) for g in case.network.g[1:]):
        return True
    # A user's activation may have a slope scale that overflows where its values do not (e^{e^{eᶻ}}
    # one unit past z): its bounds are computed here, and a network they overflow in is skipped.
    with np.errstate(all="ignore"):
        bounds = error_bounds(case, ref)
    return all(np.all(np.isfinite(v)) for part in (bounds.M, bounds.E, bounds.N) for v in part.values())


def _tamed(g) -> bool:
    """Is g an entry of the project's own tables, whose slope scales stay finite wherever verify's
    networks (held by ``tame``) take them?"""
    return any(
        g is entry for table in (CATALOGUE, PARAMETRIC, VECTOR_ACTIVATIONS, OUTPUT_MAPS) for entry in table.values()
    )


def smallest_counterexample(
    failing: list[tuple[Case, Comparison]], equations: Equations, branches: tuple | None = None
) -> dict:
    """The smallest failing network, cut down to the single example that still fails."""
    case, comparison = min(failing, key=lambda cc: (cc[0].network.depth, sum(cc[0].network.widths), cc[0].n))
    singles = [case.rows([row]) for row in range(case.n)]
    refs = fast.autodiff_many([(s.network, s.x, s.y) for s in singles], loss=case.loss, batched=True, branches=branches)
    for single, ref in zip(singles, refs, strict=True):
        again = first_failure(compare_case(single, ref, equations)[0])
        if again is not None:
            case, comparison = single, again
            break
    net = case.network
    return {
        "equation": comparison.equation,
        "layer": comparison.layer,
        "activation": comparison.activation,
        "summary": comparison.describe(),
        "case": case.describe(),
        "index": list(comparison.index),
        "hand": comparison.manual_value,
        "autodiff": comparison.autodiff_value,
        "widths": list(net.widths),
        "activations": [g.name for g in net.g[1:] if g is not None],
        "loss": case.loss.name,
        "theta": [t.tolist() for t in net.theta[1:] if t is not None],
        "b": [b.tolist() for b in net.b[1:] if b is not None],
        "x": case.x.tolist(),
        "y": case.y.tolist(),
    }


def references(cases: Sequence[Case], branches: tuple | None = None) -> list:
    """Autodiff for every case, each with its own loss, from ``reference.fast`` (``branches``
    as in ``fast.autodiff_many``)."""
    return fast.autodiff_many([(c.network, c.x, c.y) for c in cases], losses=[c.loss for c in cases], branches=branches)


def run_verify(
    examples: int = DEFAULT_EXAMPLES,
    seed: int = 0,
    *,
    activations: Sequence[AnyActivation] | None = None,
    equations: Equations = EQUATIONS,
    losses: Sequence[Loss] | None = None,
    dtype: np.dtype | type = np.float64,
    progress: Callable[[int, int], None] | None = None,
    excuse: Callable[[Case, object], str | None] | None = None,
    shard: tuple[int, int] = (1, 1),
    judges: Judges | None = None,
) -> Report:
    """Check equations (1), (2), (3) on ``examples`` random networks; see the module docstring.
    With ``judges`` (``checkers.judges.Judges``) a second process judges chunks of networks
    while this one draws the next; the report is the same.
    With ``shard`` = (K, N) only the networks whose index is K − 1 modulo N are checked: every
    network is still drawn, so the N shards of a seed check disjoint parts of the same run and
    together all of it (``Report.examples`` is then the shard's count).
    With ``dtype=float32`` the networks are rounded to float32 and equation (3) is checked end
    to end in float32 (equations (1) and (2) always run on autodiff's float64 values).

    ``excuse(case, ref)``, asked only about a network that fails, may return why the failure is
    rounding and not a mistake (``activation_check.rounding_explains``); such a network is
    counted in ``excused`` with the first reason, not as a failure."""
    start = time.perf_counter()
    chosen: list[AnyActivation] = list(activations) if activations is not None else [*CATALOGUE.values(), *KINDS]
    elementwise = [g for g in chosen if isinstance(g, Activation)]
    tol.prepare(elementwise)  # every profile the run needs, from one compiled program
    kinds = [g for g in chosen if not isinstance(g, Activation)]
    if losses is None:  # every catalogue loss, unless the activations were chosen by the caller
        losses = list(LOSSES.values()) if activations is None else [MSE]
    rng = np.random.default_rng(seed)
    n_kinds = 0 if not kinds else examples if not elementwise else min(examples // 2, KINDS_NETWORKS)
    report = Report(examples=examples, seed=seed, activations=[g.name for g in chosen], shard=shard)
    failing: list[tuple[Case, Comparison]] = []
    coverage, offset, mine = [], 0, 0
    for pool, count, pool_losses in (
        (elementwise, examples - n_kinds, list(losses)),
        (kinds, n_kinds, [loss for loss in losses if not loss.outputs] or [MSE]),
    ):
        if count:
            ours = [i for i in range(count) if in_shard(offset + i, shard)]
            coverage.append(
                _run(
                    report,
                    failing,
                    pool,
                    count,
                    pool_losses,
                    rng,
                    equations,
                    dtype,
                    progress,
                    excuse,
                    set(ours),
                    judges,
                )
            )
            offset, mine = offset + count, mine + len(ours)
    report.examples = mine
    report.coverage_complete = all(coverage)
    if failing:
        report.counterexample = smallest_counterexample(failing, equations, fast.branches_for_pool(chosen))
    report.seconds = time.perf_counter() - start
    return report


def in_shard(index: int, shard: tuple[int, int]) -> bool:
    """Does network ``index`` of a run belong to shard (K, N): index ≡ K − 1 (mod N)?"""
    k, n = shard
    return index % n == k - 1


def fingerprint(case) -> str:
    """A short name for one network and batch, the same wherever it is drawn (for the shards):
    a hash of x and of every weight (Θ of a dense network, every parameter of a layer network)."""
    digest = hashlib.sha1(case.x.tobytes())
    net = case.network
    for weights in net.theta[1:] if hasattr(net, "theta") else [v for p in net.params[1:] for v in p.values()]:
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]


def judgeable_pairs(cases: list, branches: tuple, dtype, report: Report) -> list[tuple]:
    """(case, autodiff) for every case that can be judged. A network whose error bounds overflow
    though its values do not (a user's activation whose slope scale, taken a unit past z, is near
    the largest float) is tried again with its weights and biases 8× smaller, up to
    ``TAME_ATTEMPTS`` times, as ``tame`` does for values; one that never fits is skipped and
    counted in ``skipped_overflow``."""
    judged, pending = [], list(cases)
    for attempt in range(TAME_ATTEMPTS + 1):
        retry, refs = [], references(pending, branches) if pending else []
        # An activation given an allowance (``backprop-check activation``) has it measured at
        # every layer's z of every network at once, not once per layer.
        tol.prefetch_deviations(
            (g, ref.z[k]) for case, ref in zip(pending, refs, strict=True) for k, g in enumerate(case.network.g) if k
        )
        for case, ref in zip(pending, refs, strict=True):
            if judgeable(case, ref):
                judged.append((case, ref))
            elif attempt < TAME_ATTEMPTS and not all(_tamed(g) for g in case.network.g[1:]):
                retry.append(_shrunk(case, dtype))
            else:
                report.skipped_overflow += 1
        pending = [case for case in retry if case is not None]
        report.skipped_overflow += len(retry) - len(pending)
    return judged


def _shrunk(case: Case, dtype) -> Case | None:
    """The network with every Θ⁽ᵏ⁾ and b⁽ᵏ⁾ 8× smaller, if its manual pass fits ``dtype``."""
    net = case.network
    tried = replace(
        case,
        network=replace(
            net,
            theta=(None,) + tuple(t / 8 for t in net.theta[1:] if t is not None),
            b=(None,) + tuple(b / 8 for b in net.b[1:] if b is not None),
        ),
    ).astype(dtype)
    return tried if fits(tried) else None


def _run(
    report: Report,
    failing: list,
    pool: list,
    examples: int,
    losses: list,
    rng: np.random.Generator,
    equations: Equations,
    dtype,
    progress,
    excuse,
    ours: set[int],
    judges: Judges | None = None,
) -> bool:
    """``examples`` networks from ``pool``, tallied into ``report`` (failures into ``failing``),
    of which those whose index is in ``ours`` are checked (all are drawn, so that the random
    stream is the same in every shard); returns whether every activation of the pool sat at
    every position in the networks checked."""
    chosen_losses, forced = loss_plan(examples, losses)
    plans = design(examples, rng, pool, forced)
    branches = fast.branches_for_pool(pool)  # one compiled program for every chunk
    ship = judges is not None and shippable((pool, losses, equations))
    queue: list[tuple[list, Pending | Done]] = []  # pieces in order, judged there or here
    for begin in range(0, examples, CHUNK):
        numbered = [  # every network is drawn (the random stream), only this shard's are held
            (i, make_case(plan, rng, loss))
            for i, (plan, loss) in enumerate(
                zip(plans[begin : begin + CHUNK], chosen_losses[begin : begin + CHUNK], strict=True), begin
            )
        ]
        drawn = [tame(case, dtype) for i, case in numbered if i in ours]
        cases = [case for case in drawn if case is not None]
        report.fingerprints += [fingerprint(case) for case in cases]
        report.skipped_overflow += len(drawn) - len(cases)
        pairs = judgeable_pairs(cases, branches, dtype, report)
        for piece in (pairs[i : i + PIECE] for i in range(0, len(pairs), PIECE)):
            if judges is not None and ship and not judges.busy():
                queue.append((piece, judges.submit(piece, equations)))
            else:
                queue.append((piece, Done(judge_pairs(piece, equations))))
        while queue and queue[0][1].done():  # tallied in order, whoever judged them
            _tally(report, failing, *queue.pop(0), excuse)
        if progress is not None:
            progress(min(begin + CHUNK, examples), examples)
    if judges is not None:  # pieces the worker has not started are judged here, not waited for
        queue = [(pairs, reclaim(judged, pairs, equations)) for pairs, judged in queue]
    for pairs, judged in queue:
        _tally(report, failing, pairs, judged, excuse)
    return covered([plan for i, plan in enumerate(plans) if i in ours], pool)


def _tally(report: Report, failing: list, pairs: list, judged, excuse) -> None:
    """Add one chunk's judgements to ``report``, in order; failures go to ``failing``."""
    for (case, ref), (comparisons, doubt) in zip(pairs, judged.result(), strict=True):
        report.skipped_at_kinks += doubt is not None
        failure = first_failure(comparisons)
        reason = None if failure is None or excuse is None else excuse(case, ref)
        report.add(comparisons, case.loss, excused=reason is not None)
        if reason is not None:
            report.excused += 1
            report.excuse = report.excuse or reason
        elif failure is not None:
            failing.append((case, failure))
