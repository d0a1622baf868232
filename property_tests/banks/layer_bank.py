"""A bank of user layers for ``backprop-check layer``: right ones, each a different shape of
hand-written backward pass, and wrong ones, each one classic mistake in one of them.

Every entry follows the contract of ``property_tests.checkers.layer_check``: ``out_shape``, ``init``,
``forward(a_prev, params, xp=np)`` written with the namespace ``xp`` (so that ``jax.numpy`` can
be passed in), and a hand-written backward as a vector-Jacobian product: ``input_delta`` =
(∂z/∂a)ᵀδ per example, ``parameter_gradients`` = (1/n)·∂(Σ z·δ)/∂(each parameter).

    RIGHT       verified: scaled tanh, a LayerNorm fused differently, a gated layer, a
                log-softmax with a temperature (sums over units), a centring over the batch,
                a mixing of the rows of (C, L) examples
    WRONG       caught: a missing term, a transposed weight gradient, a gradient not averaged
                over the batch, a sign flipped in one term, off by a relative 1e-6 everywhere,
                wrong only for negative inputs, the batch path of a batch statistic missing
    FAR_OFF     caught, without a warning: Dense and Conv2D with one method 1e300 or 1e-300 times
                the right value, ±∞ or NaN
    IMPRECISE   right, but cancelling: loses digits in float32 (and in float64 beyond the bound)
    INCONCLUSIVE right, but its forward is NaN on most random inputs
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from manual.conv import Conv2D
from manual.layers import Dense

Shape = tuple[int, ...]


def _sigmoid(u, xp=np):
    return 1 / (1 + xp.exp(-u))


# --- right layers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaledTanh:
    """z = s ⊙ tanh(a), one learnable scale per input element (any in_shape).

    ∂/∂a:  δ ⊙ s ⊙ (1 − tanh²a)        ∂/∂s:  (1/n) Σₜ δₜ ⊙ tanh aₜ
    """

    # Same shape as examples/my_layer.py's ScaledTanh: a bank entry stands whole, as a user writes it,
    # so that the checker is tried on exactly the code a user would hand it.
    example_shapes = ((4,), (2, 3))

    def out_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype=np.float64) -> dict:
        return {"scale": (1 + 0.5 * rng.standard_normal(in_shape)).astype(dtype)}

    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        return params["scale"] * xp.tanh(a_prev)

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        t = np.tanh(a_prev)
        return delta * params["scale"] * (1 - t * t)

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        return {"scale": (delta * np.tanh(a_prev)).sum(axis=0) / delta.shape[0]}


@dataclass(frozen=True)
class FusedLayerNorm:
    """LayerNorm over each example's units, its backward fused into one expression:

    z = γ ⊙ x̂ + β,  x̂ = (a − μ)·r,  r = 1/√(v + ε)
    ∂/∂a = (r/m)·(m·g − Σg − x̂·Σ(g ⊙ x̂)),  g = γ ⊙ δ   (sums over the m units)
    """

    eps: float = 1e-5
    example_shapes = ((4,), (7,))

    def out_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype=np.float64) -> dict:
        return {"gamma": np.ones(in_shape, dtype), "beta": np.zeros(in_shape, dtype)}

    def normalized(self, a_prev: np.ndarray, xp=np) -> tuple:
        centred = a_prev - xp.mean(a_prev, axis=-1, keepdims=True)
        r = 1 / xp.sqrt(xp.mean(centred * centred, axis=-1, keepdims=True) + self.eps)
        return centred * r, r

    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        return params["gamma"] * self.normalized(a_prev, xp)[0] + params["beta"]

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        x_hat, r = self.normalized(a_prev)
        g, m = params["gamma"] * delta, a_prev.shape[-1]
        return (r / m) * (m * g - g.sum(axis=-1, keepdims=True) - x_hat * (g * x_hat).sum(axis=-1, keepdims=True))

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        n, x_hat = delta.shape[0], self.normalized(a_prev)[0]
        return {"gamma": (delta * x_hat).sum(axis=0) / n, "beta": delta.sum(axis=0) / n}


@dataclass(frozen=True)
class GatedLayer:
    """z = a ⊙ σ(a W): each unit gated by a sigmoid of all the units (W is m × m).

    u = aW, s = σ(u), q = δ ⊙ a ⊙ s(1 − s)
    ∂/∂a = δ ⊙ s + q Wᵀ        ∂/∂W = (1/n) aᵀq
    """

    example_shapes = ((4,), (7,))

    def out_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype=np.float64) -> dict:
        (m,) = in_shape
        return {"w": (rng.standard_normal((m, m)) / np.sqrt(m)).astype(dtype)}

    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        return a_prev * _sigmoid(a_prev @ params["w"], xp)

    def gate(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> tuple:
        s = _sigmoid(a_prev @ params["w"])
        return s, delta * a_prev * s * (1 - s)

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        s, q = self.gate(delta, a_prev, params)
        return delta * s + q @ params["w"].T

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        return {"w": a_prev.T @ self.gate(delta, a_prev, params)[1] / delta.shape[0]}


@dataclass(frozen=True)
class TemperedLogSoftmax:
    """z = t·a − logsumexp(t·a) over each example's units, with one learnable temperature t
    (a 0-d parameter): sums over units in the forward and in both gradients.

        p = softmax(t·a)      ∂/∂a = t·(δ − p·Σδ)      ∂/∂t = (1/n) Σₜ Σᵢ δᵢ(aᵢ − Σⱼ pⱼaⱼ)
    """

    example_shapes = ((4,), (7,))

    def out_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype=np.float64) -> dict:
        return {"t": np.asarray(1.0, dtype)}

    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        u = params["t"] * a_prev
        top = xp.max(u, axis=-1, keepdims=True)
        return u - top - xp.log(xp.sum(xp.exp(u - top), axis=-1, keepdims=True))

    def softmax(self, a_prev: np.ndarray, params: dict) -> np.ndarray:
        u = params["t"] * a_prev
        e = np.exp(u - u.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        p = self.softmax(a_prev, params)
        return params["t"] * (delta - p * delta.sum(axis=-1, keepdims=True))

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        p = self.softmax(a_prev, params)
        centred = a_prev - (p * a_prev).sum(axis=-1, keepdims=True)
        return {"t": np.asarray((delta * centred).sum() / delta.shape[0])}


@dataclass(frozen=True)
class BatchCentre:
    """z = γ ⊙ (a − mean over the batch of a): example t's output depends on every example, so
    (∂z/∂a)ᵀδ sums over the batch (δ is ∂(Σₛ Eₛ)/∂z, as ``manual.norms`` explains).

        ∂/∂a = γ ⊙ δ − mean over the batch of γ ⊙ δ        ∂/∂γ = (1/n) Σₜ δₜ ⊙ (aₜ − μ)
    """

    example_shapes = ((4,),)  # one shape: a layer that mixes the batch is compiled once per batch size

    def out_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype=np.float64) -> dict:
        return {"gamma": np.ones(in_shape, dtype)}

    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        return params["gamma"] * (a_prev - xp.mean(a_prev, axis=0, keepdims=True))

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        g = params["gamma"] * delta
        return g - g.mean(axis=0, keepdims=True)

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        centred = a_prev - a_prev.mean(axis=0, keepdims=True)
        return {"gamma": (delta * centred).sum(axis=0) / delta.shape[0]}


@dataclass(frozen=True)
class RowMix:
    """Examples of shape (C, L); z = W a, mixing the C rows with a C × C matrix (square, so that
    a transposed gradient has the right shape and only the values can give it away).

        ∂/∂a = Wᵀδ        ∂/∂W = (1/n) Σₜ δₜ aₜᵀ
    """

    example_shapes = ((3, 4), (2, 5))

    def out_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 2:
            raise ValueError(f"RowMix takes (C, L) examples, not {in_shape}")
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype=np.float64) -> dict:
        c = in_shape[0]
        return {"w": (rng.standard_normal((c, c)) / np.sqrt(c)).astype(dtype)}

    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        return xp.einsum("ij,njl->nil", params["w"], a_prev)

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        return np.einsum("ij,nil->njl", params["w"], delta)

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        return {"w": np.einsum("nil,njl->ij", delta, a_prev) / delta.shape[0]}


RIGHT = [ScaledTanh(), FusedLayerNorm(), GatedLayer(), TemperedLogSoftmax(), BatchCentre(), RowMix()]
"""Right hand-written backward passes: each must be VERIFIED."""


# --- wrong layers: one mistake each ------------------------------------------------------------


@dataclass(frozen=True)
class LayerNormMissingTerm(FusedLayerNorm):
    """Mistake: the path through σ dropped (no x̂·Σ(g ⊙ x̂) term)."""

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        _, r = self.normalized(a_prev)
        g, m = params["gamma"] * delta, a_prev.shape[-1]
        return (r / m) * (m * g - g.sum(axis=-1, keepdims=True))


@dataclass(frozen=True)
class RowMixTransposedGradient(RowMix):
    """Mistake: ∂E/∂W transposed (a δ aᵀ written as a δᵀ)."""

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        return {"w": np.einsum("nil,njl->ji", delta, a_prev) / delta.shape[0]}


@dataclass(frozen=True)
class ScaledTanhNotAveraged(ScaledTanh):
    """Mistake: ∂E/∂s summed over the batch but not divided by n (right for one example only)."""

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        return {"scale": (delta * np.tanh(a_prev)).sum(axis=0)}


@dataclass(frozen=True)
class GatedLayerSignFlipped(GatedLayer):
    """Mistake: the gate's path subtracted instead of added (δ ⊙ s − qWᵀ)."""

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        s, q = self.gate(delta, a_prev, params)
        return delta * s - q @ params["w"].T


@dataclass(frozen=True)
class LogSoftmaxOffByMillionth(TemperedLogSoftmax):
    """Mistake: (∂z/∂a)ᵀδ off by a relative 1e-6 everywhere (a constant rounded to 7 digits)."""

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        return super().input_delta(delta, a_prev, params) * (1 + 1e-6)


@dataclass(frozen=True)
class ScaledTanhWrongForNegative(ScaledTanh):
    """Mistake: 1 − tanh a instead of 1 − tanh²a, in the branch for negative inputs only."""

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        t = np.tanh(a_prev)
        return delta * params["scale"] * np.where(a_prev >= 0, 1 - t * t, 1 - t)


@dataclass(frozen=True)
class BatchCentreNoBatchPath(BatchCentre):
    """Mistake: the mean over the batch treated as a constant (no −mean(γ ⊙ δ) term)."""

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        return params["gamma"] * delta


WRONG = [
    LayerNormMissingTerm(),
    RowMixTransposedGradient(),
    ScaledTanhNotAveraged(),
    GatedLayerSignFlipped(),
    LogSoftmaxOffByMillionth(),
    ScaledTanhWrongForNegative(),
    BatchCentreNoBatchPath(),
]
"""Wrong hand-written backward passes: each must be WRONG, with a counterexample."""


# --- wrong beyond any tolerance: the project's own layers, one method scaled ----------------------


def _far_off(parent: type, method: str, label: str, factor: float, **settings) -> object:
    """A subclass of a project layer whose ``method`` (``input_delta`` or ``parameter_gradients``)
    returns ``factor`` times the right value: a derivation off by a factor no rounding comes near
    (1e300, 1e-300) or not a number at all (±∞, NaN), where the right value is of order 1. It must
    be WRONG with a counterexample, with no warning of the checker's own (an error that dwarfs its
    bound ranks as ∞) and every reported figure finite."""

    def input_delta(self, delta, a_prev, params):
        return factor * parent.input_delta(self, delta, a_prev, params)

    def parameter_gradients(self, delta, a_prev, params):
        return {name: factor * v for name, v in parent.parameter_gradients(self, delta, a_prev, params).items()}

    name = f"{parent.__name__}{method.title().replace('_', '')}Times{label}"
    methods = {"input_delta": input_delta, "parameter_gradients": parameter_gradients}
    body = {"__module__": __name__, "__qualname__": name, method: methods[method]}
    if parent is Conv2D:
        body["example_shapes"] = ((2, 5, 5),)  # a convolution takes (C, H, W) examples
    kind: type = dataclass(frozen=True)(type(name, (parent,), body))
    return kind(**settings)


DENSE_INPUT_DELTA_TIMES_1E300 = _far_off(Dense, "input_delta", "1e300", 1e300, units=3)
"""Dense whose (Θ)ᵀδ is 1e300 times too large."""

DENSE_INPUT_DELTA_TIMES_1E_300 = _far_off(Dense, "input_delta", "1eMinus300", 1e-300, units=3)
"""Dense whose (Θ)ᵀδ is 1e300 times too small."""

DENSE_INPUT_DELTA_INF = _far_off(Dense, "input_delta", "Inf", math.inf, units=3)
"""Dense whose (Θ)ᵀδ is ±∞ (∞ times the right value)."""

DENSE_INPUT_DELTA_NAN = _far_off(Dense, "input_delta", "Nan", math.nan, units=3)
"""Dense whose (Θ)ᵀδ is NaN everywhere."""

CONV_GRADIENTS_TIMES_1E300 = _far_off(
    Conv2D, "parameter_gradients", "1e300", 1e300, in_channels=2, out_channels=3, kernel=(2, 2)
)
"""Conv2D whose ∂E/∂W and ∂E/∂b are 1e300 times too large."""

CONV_GRADIENTS_TIMES_1E_300 = _far_off(
    Conv2D, "parameter_gradients", "1eMinus300", 1e-300, in_channels=2, out_channels=3, kernel=(2, 2)
)
"""Conv2D whose ∂E/∂W and ∂E/∂b are 1e300 times too small."""

CONV_GRADIENTS_MINUS_INF = _far_off(
    Conv2D, "parameter_gradients", "MinusInf", -math.inf, in_channels=2, out_channels=3, kernel=(2, 2)
)
"""Conv2D whose parameter gradients are −∞ times the right ones."""

CONV_GRADIENTS_NAN = _far_off(
    Conv2D, "parameter_gradients", "Nan", math.nan, in_channels=2, out_channels=3, kernel=(2, 2)
)
"""Conv2D whose parameter gradients are NaN everywhere."""

FAR_OFF = [
    DENSE_INPUT_DELTA_TIMES_1E300,
    DENSE_INPUT_DELTA_TIMES_1E_300,
    DENSE_INPUT_DELTA_INF,
    DENSE_INPUT_DELTA_NAN,
    CONV_GRADIENTS_TIMES_1E300,
    CONV_GRADIENTS_TIMES_1E_300,
    CONV_GRADIENTS_MINUS_INF,
    CONV_GRADIENTS_NAN,
]
"""Wrong beyond any tolerance; kept out of ``WRONG`` (their own test runs them under warnings as errors)."""


# --- right, but imprecise; right, but rarely finite -------------------------------------------


@dataclass(frozen=True)
class CancellingSquare:
    """z = w ⊙ a²/2, with ∂/∂a = w ⊙ δ ⊙ a computed as ((a + K)² − K² − a²)/(2K), K = 2¹⁶: equal
    to a in exact arithmetic, but (a + K)² is about 4e9, so float32 keeps no digit of a and
    float64 some 12: a right formula that loses digits (IMPRECISE under --strict)."""

    example_shapes = ((4,),)
    K = 2.0**16

    def out_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype=np.float64) -> dict:
        return {"w": (1 + 0.5 * rng.standard_normal(in_shape)).astype(dtype)}

    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        return params["w"] * a_prev * a_prev / 2

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        k = np.asarray(self.K, a_prev.dtype)
        slope = ((a_prev + k) * (a_prev + k) - k * k - a_prev * a_prev) / (2 * k)
        return params["w"] * delta * slope

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        return {"w": (delta * a_prev * a_prev / 2).sum(axis=0) / delta.shape[0]}


@dataclass(frozen=True)
class NarrowDomain:
    """z = w ⊙ √(¼ − a²): right, but NaN wherever some |a| > ½, which is nearly every random
    input at scales 1 and 4 (INCONCLUSIVE); ordinary inputs in (−½, ½) are fine."""

    example_shapes = ((4,),)

    def out_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def init(self, rng: np.random.Generator, in_shape: Shape, dtype=np.float64) -> dict:
        return {"w": (1 + 0.5 * rng.standard_normal(in_shape)).astype(dtype)}

    def forward(self, a_prev: np.ndarray, params: dict, xp=np) -> np.ndarray:
        return params["w"] * xp.sqrt(0.25 - a_prev * a_prev)

    def input_delta(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> np.ndarray:
        return -params["w"] * delta * a_prev / np.sqrt(0.25 - a_prev * a_prev)

    def parameter_gradients(self, delta: np.ndarray, a_prev: np.ndarray, params: dict) -> dict:
        return {"w": (delta * np.sqrt(0.25 - a_prev * a_prev)).sum(axis=0) / delta.shape[0]}


IMPRECISE = CancellingSquare()
INCONCLUSIVE = NarrowDomain()
