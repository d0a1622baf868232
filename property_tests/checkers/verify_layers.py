"""``verify``'s part for networks of layers (convolution, pooling, flatten, dense, the norms and
residual blocks): the three equations, one row per layer kind and configuration extreme.

Each architecture of ``EXTREMES`` pushes one layer kind to an edge the derivation must survive
(a stride that leaves rows unread, padding 2, dilation 2, a 1×1 kernel and a 5-wide one, a
1×1 image, overlapping and padded pooling windows, exact ties in max pooling, softmax after
the dense layers, a norm on rows of nearly equal values, BatchNorm's batch statistics, two
residual blocks in a row). The activations of its convolution and dense layers take turns through the
catalogue, so that over the run each of them sits in a convolutional network. Every
architecture is drawn ``DRAWS`` times (new weights and images, the same compiled reference),
and each network is judged equation by equation on autodiff's inputs and end to end from the
hand forward pass (``layer_compare``), as the dense networks are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from manual import CATALOGUE, CROSS_ENTROPY, MSE, SOFTMAX
from manual.conv import Conv2D
from manual.layers import Dense, LayerNetwork, kind_of
from manual.norms import BatchNorm, LayerNorm, RMSNorm
from manual.pooling import AvgPool2D, Flatten, MaxPool2D
from manual.residual import Residual
from property_tests.checkers.verify import Tally, fingerprint, in_shard
from property_tests.library import layer_compare as lc
from property_tests.library import tolerances as tol
from property_tests.library.compare import Comparison
from property_tests.library.layer_strategies import LayerCase
from property_tests.library.strategies import at_layer
from reference.layers import layer_autodiff

DRAWS = 3
"""Networks per architecture: new weights and images through the same compiled reference."""

G = object()
"""In ``EXTREMES``, where an activation of the catalogue goes (they take turns)."""

EXTREMES: list[tuple[str, tuple[int, ...], list]] = [
    (
        "conv2d kernel 5, padding 2",
        (2, 12, 11),
        [(Conv2D(2, 3, (5, 5), padding=(2, 2)), G), (MaxPool2D((2, 2), (2, 2)), None)],
    ),
    (
        "conv2d stride 3, rows unread",
        (1, 10, 12),
        [
            (Conv2D(1, 4, (3, 2), stride=(3, 3)), G),
            (AvgPool2D((3, 3), (1, 1), (1, 1)), None),
            (Conv2D(4, 2, (1, 1)), G),
        ],
    ),
    (
        "conv2d dilation 2, stride 2",
        (3, 9, 8),
        [
            (Conv2D(3, 2, (2, 3), stride=(2, 2), padding=(1, 0), dilation=(2, 2)), G),
            (MaxPool2D((3, 3), (2, 2), (1, 1)), None),
        ],
    ),
    ("conv2d kernel 1×1 on a 1×1 image", (4, 1, 1), [(Conv2D(4, 3, (1, 1)), G)]),
    (
        "conv2d kernel 1×5, stride 1×3, dilation 2×1",
        (2, 7, 11),
        [
            (Conv2D(2, 3, (1, 5), stride=(1, 3), padding=(0, 2), dilation=(2, 1)), G),
            (AvgPool2D((2, 3), (2, 1), (1, 0)), None),
        ],
    ),
    (
        "conv2d twice, stride 2",
        (2, 12, 12),
        [(Conv2D(2, 4, (3, 3), stride=(2, 2), padding=(1, 1)), G), (Conv2D(4, 4, (3, 3), stride=(2, 2)), G)],
    ),
    (
        "max_pool exact ties",
        (1, 8, 7),
        [
            (Conv2D(1, 2, (1, 1)), CATALOGUE["relu"]),
            (MaxPool2D((2, 3), (1, 2), (1, 1)), None),
            (Conv2D(2, 2, (2, 2)), G),
        ],
    ),
    (
        "dense softmax output, cross-entropy",
        (1, 6, 6),
        [(Conv2D(1, 2, (3, 3), padding=(1, 1)), G), (MaxPool2D((2, 2), (2, 2)), None)],
    ),
    ("layer_norm after a dense layer", (5,), [(Dense(6), None), (LayerNorm(), G)]),
    ("layer_norm on near-constant rows", (7,), [(Dense(6), None), (LayerNorm(), G), (Dense(4), G)]),
    ("rms_norm on near-constant rows", (6,), [(Dense(5), None), (RMSNorm(), G), (Dense(4), G)]),
    ("batch_norm, training mode", (4,), [(Dense(5), None), (BatchNorm(), G)]),
    ("batch_norm after a convolution", (1, 5, 5), [(Conv2D(1, 2, (3, 3)), G), (Flatten(), None), (BatchNorm(), None)]),
    (
        "residual blocks, two in a row",
        (5,),
        [(Residual(5, CATALOGUE["tanh"]), None), (Residual(5, CATALOGUE["gelu"]), G)],
    ),
]
"""(label, one image's shape, the layers before Flatten with their activations)."""


@dataclass
class LayerReport:
    """What the convolutional part found; ``as_dict`` is ``--json``'s "conv" object."""

    networks: int = 0
    seconds: float = 0.0
    rows: dict[tuple[str, str], Tally] = field(default_factory=dict)
    skipped_in_doubt: int = 0
    activations: set[str] = field(default_factory=set)
    counterexample: dict | None = None
    fingerprints: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.rows) and all(r.failures == 0 for r in self.rows.values())

    def add(self, key: tuple[str, str], c: Comparison) -> None:
        self.rows.setdefault(key, Tally()).add(c)

    def as_dict(self) -> dict:
        return {
            "verified": self.verified,
            "networks": self.networks,
            "seconds": round(self.seconds, 3),
            "skipped_in_doubt": self.skipped_in_doubt,
            "activations": sorted(self.activations),
            "rows": {f"{eq} {label}": row.as_dict() for (eq, label), row in sorted(self.rows.items())},
            "counterexample": self.counterexample,
        }


def build(label: str, in_shape: tuple, stack: list, turn: Callable[[], object], loss_softmax: bool) -> tuple:
    """The whole stack: the extreme's layers, Flatten (where they end on images), a hidden dense
    layer, the output layer."""
    layers = [(layer, turn() if g is G else g) for layer, g in stack]
    shape = tuple(in_shape)
    for layer, _ in layers:
        shape = layer.out_shape(shape)
    flatten = [(Flatten(), None)] if len(shape) == 3 else []
    if loss_softmax:
        return layers + flatten + [(Dense(4), turn()), (Dense(3), SOFTMAX)], CROSS_ENTROPY
    return layers + flatten + [(Dense(3), turn()), (Dense(2), turn())], MSE


def draw_case(
    in_shape: tuple, stack: list, loss, rng: np.random.Generator, ties: bool, flat_rows: bool = False
) -> LayerCase:
    """Weights uniform in ±1/√fan_in (biases too), a norm's γ in [0.5, 1.5] and β in ±1, inputs
    uniform in ±1 (five levels with ``ties``), a batch of 3, targets uniform in ±1 or one-hot.
    With ``flat_rows`` the first layer, a dense one, has every row of Θ and every b the same up
    to 1e-6, so that each example's output units are nearly equal: a variance far below the
    ε of the norm that follows."""
    params: list[dict[str, np.ndarray] | None] = [None]  # index 0, the input layer, has none
    shape = in_shape
    for layer, _ in stack:
        template = layer.init(rng, shape)
        if isinstance(layer, (LayerNorm, RMSNorm)):  # BatchNorm is a LayerNorm too
            params.append(
                {
                    name: (1 if name == "gamma" else 0)
                    + rng.uniform(-0.5, 0.5, v.shape) * (1 if name == "gamma" else 2)
                    for name, v in template.items()
                }
            )
        else:
            fan_in = int(np.prod(next(iter(template.values())).shape[1:])) if template else 1
            params.append({name: rng.uniform(-1, 1, v.shape) / np.sqrt(fan_in) for name, v in template.items()})
        shape = layer.out_shape(shape)
    if flat_rows:
        first = at_layer(params, 1)
        first["theta"] = first["theta"][:1] + 1e-6 * rng.uniform(-1, 1, first["theta"].shape)
        first["b"] = first["b"][:1] + 1e-6 * rng.uniform(-1, 1, first["b"].shape)
    network = LayerNetwork(
        in_shape, (None,) + tuple(s[0] for s in stack), tuple(params), (None,) + tuple(s[1] for s in stack)
    )
    x = rng.uniform(-1, 1, (3, *in_shape))
    if ties:
        x = np.round(x * 2) / 2
    y = np.eye(shape[0])[rng.integers(0, shape[0], 3)] if loss is CROSS_ENTROPY else rng.uniform(-1, 1, (3, shape[0]))
    return LayerCase(network, x, y, loss)


def tested_layer(case: LayerCase, c: Comparison) -> object:
    """The layer whose hand derivation a comparison tests: for (2) at layer k, layer k + 1's."""
    return case.network.layers[c.layer + 1 if c.equation == "(2)" else c.layer]


def label_of(layer, extreme: str) -> str:
    """A row's name: the layer kind, with the extreme when the layer is the one it is about."""
    kind = kind_of(layer)
    return extreme if extreme.startswith(kind) else kind


def run_layer_verify(
    seed: int = 0,
    *,
    draws: int = DRAWS,
    progress: Callable[[int, int], None] | None = None,
    shard: tuple[int, int] = (1, 1),
) -> LayerReport:
    """Every architecture of ``EXTREMES``, ``draws`` times each, judged by ``layer_compare``;
    with ``shard`` = (K, N) only the networks whose index is K − 1 modulo N (all are drawn)."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    activations = list(CATALOGUE.values())
    tol.prepare(activations)  # their profiles from one compiled program
    order = iter(np.resize(rng.permutation(len(activations)), 10 * len(activations) * len(EXTREMES)))
    report = LayerReport()
    for i, (label, in_shape, stack) in enumerate(EXTREMES):
        layers, loss = build(label, in_shape, stack, lambda: activations[next(order)], "softmax" in label)
        report.activations |= {g.name for _, g in layers if g is not None}
        for j in range(draws):
            case = draw_case(in_shape, layers, loss, rng, "ties" in label, "near-constant" in label)
            if in_shard(i * draws + j, shard):
                report.fingerprints.append(fingerprint(case))
                _judge(report, case, label)
        if progress is not None:
            progress(i + 1, len(EXTREMES))
    report.seconds = time.perf_counter() - start
    return report


def _judge(report: LayerReport, case: LayerCase, extreme: str) -> None:
    ref = layer_autodiff(case.network, case.x, case.y, loss=case.loss)
    report.networks += 1
    z, a, grads = lc.manual_pass(case)
    judged = [("", lc.equation_by_equation(case, ref))]
    if lc.in_doubt(case, ref, z, a) is None:
        judged.append((" end to end", lc.end_to_end(case, ref, lc.layer_bounds(case, ref), grads)))
    else:
        report.skipped_in_doubt += 1
    for how, comparisons in judged:
        for c in comparisons:
            report.add((c.equation + how, label_of(tested_layer(case, c), extreme)), c)
            if not c.passed and report.counterexample is None:
                report.counterexample = {"summary": c.describe() + how, "case": case.describe()}
