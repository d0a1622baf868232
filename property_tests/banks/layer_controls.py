"""Wrong derivations for layer networks: each is a layer kind with one method replaced by a
mistake people make when they derive it by hand (no JAX here: the pooling controls serve the
JAX-free tests too). The reference reads only a layer's settings,
so a network holding one of these still has the right autodiff; the properties must tell.

``with_mistake`` turns a strategy of cases into one whose every layer of a kind is the wrong
version, for the negative controls of ``test_layer_networks``. ``unchanged`` is the same swap
without a mistake: the properties must accept it, so that a control is rejected for its
mistake and not for being a subclass (which once sent a BatchNorm subclass to LayerNorm's oracle).
``scaled`` is a derivation broken beyond any tolerance (NaN, or 1e300 times too large): the
properties must reject it as a mismatch, without an error or a warning of the checker's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from hypothesis import strategies as st

from manual.conv import Conv2D
from manual.layers import LAYER_KINDS, Dense, LayerNetwork, layer_config
from manual.norms import BatchNorm, LayerNorm, RMSNorm
from manual.pooling import AvgPool2D, Flatten, MaxPool2D
from manual.residual import Residual
from property_tests.library.conv_strategies import (
    bias_summed,
    channels_transposed,
    crop_off_by_one,
    kernel_not_rotated,
    stride_zeros_missing,
)
from property_tests.library.layer_strategies import LayerCase


# The controls below share one shape, a class per mistake: each states its one mistake in full, so
# a reader sees it without following a helper, and each table entry names its own class.
@dataclass(frozen=True)
class KernelNotRotated(Conv2D):
    """(2) with the kernel's channels swapped but its taps not turned by 180°."""

    def input_delta(self, delta, a_prev, params):
        return kernel_not_rotated(self, delta, a_prev, params)


@dataclass(frozen=True)
class StrideZerosMissing(Conv2D):
    """(2) without the s − 1 zeros between the elements of δ."""

    def input_delta(self, delta, a_prev, params):
        return stride_zeros_missing(self, delta, a_prev, params)


@dataclass(frozen=True)
class CropOffByOne(Conv2D):
    """(2) with the padding cropped one row and column too far."""

    def input_delta(self, delta, a_prev, params):
        return crop_off_by_one(self, delta, a_prev, params)


@dataclass(frozen=True)
class ChannelsTransposed(Conv2D):
    """(3) with ∂E/∂W summed as (C_in, C_out, …) and reshaped, not transposed."""

    def parameter_gradients(self, delta, a_prev, params):
        return channels_transposed(self, delta, a_prev, params)


@dataclass(frozen=True)
class BiasSummed(Conv2D):
    """(3) with ∂E/∂b summed over the examples instead of averaged."""

    def parameter_gradients(self, delta, a_prev, params):
        return bias_summed(Conv2D(**layer_config(self)), delta, a_prev, params)


# Same shape as AvgOffByOnePerMillion and RMSNormOffByOnePerMillion: one class per layer kind, so
# that each is a layer of that kind (layer_config rebuilds it) and its entry names it.
@dataclass(frozen=True)
class ConvOffByOnePerMillion(Conv2D):
    """(2) off by a relative 1e-6: what a derived tolerance must still catch in float64."""

    def input_delta(self, delta, a_prev, params):
        return super().input_delta(delta, a_prev, params) * (1 + 1e-6)


@dataclass(frozen=True)
class DenseWeightsNotTransposed(Dense):
    """(2) through a dense layer with δ multiplied by Θ read the other way round, where the
    shapes allow it (a square Θ), else by its first columns."""

    def input_delta(self, delta, a_prev, params):
        theta = params["theta"]
        wrong = theta.T if theta.shape[0] == theta.shape[1] else np.roll(theta, 1, axis=1)
        return delta @ wrong


@dataclass(frozen=True)
class EveryTiedMaximum(MaxPool2D):
    """Wrong: δ to every input equal to its window's maximum, so a tie hands δ on twice."""

    def input_delta(self, delta, a_prev, params=None):
        windows = self.windows(a_prev)
        slope = windows == windows.max(axis=(-2, -1), keepdims=True)
        return self.fold(slope * delta[..., None, None], a_prev.shape)


@dataclass(frozen=True)
class SplitAmongTied(MaxPool2D):
    """Wrong here: δ split equally among the tied maxima (what ``jnp.max`` over a window does)."""

    def input_delta(self, delta, a_prev, params=None):
        windows = self.windows(a_prev)
        slope = windows == windows.max(axis=(-2, -1), keepdims=True)
        return self.fold(slope / slope.sum(axis=(-2, -1), keepdims=True) * delta[..., None, None], a_prev.shape)


@dataclass(frozen=True)
class LastMaximum(MaxPool2D):
    """Wrong: δ to the last of the tied maxima in row-major order."""

    def input_delta(self, delta, a_prev, params=None):
        windows = self.windows(a_prev)
        flat = windows.reshape(windows.shape[:4] + (-1,))
        last = flat.shape[-1] - 1 - flat[..., ::-1].argmax(axis=-1)
        slope = (np.arange(flat.shape[-1]) == last[..., None]).reshape(windows.shape)
        return self.fold(slope * delta[..., None, None], a_prev.shape)

    def _first_maximum(self, image, i, j):
        (wh, ww), (sh, sw) = self.window, self.stride
        best = (i * sh, j * sw)
        for r in range(wh):
            for q in range(ww):
                if image[i * sh + r, j * sw + q] >= image[best]:  # ≥: a later tie takes over
                    best = (i * sh + r, j * sw + q)
        return best


@dataclass(frozen=True)
class AvgWithoutDivisor(AvgPool2D):
    """Wrong: the whole δ to every input of the window, without 1/(wh·ww)."""

    def input_delta(self, delta, a_prev, params=None):
        return self.fold(np.broadcast_to(delta[..., None, None], delta.shape + self.window), a_prev.shape)


@dataclass(frozen=True)
class AvgOffByOnePerMillion(AvgPool2D):
    """Wrong by a relative 1e-6: what a derived tolerance must still catch."""

    def input_delta(self, delta, a_prev, params=None):
        return super().input_delta(delta, a_prev, params) * (1 + 1e-6)


@dataclass(frozen=True)
class FortranFlatten(Flatten):
    """Wrong: flattened and unflattened in Fortran order (first axis fastest)."""

    def forward(self, a_prev, params=None):
        return a_prev.reshape(a_prev.shape[0], -1, order="F")

    def input_delta(self, delta, a_prev, params=None):
        return delta.reshape(a_prev.shape, order="F")


@dataclass(frozen=True)
class FortranFlattenBack(Flatten):
    """Wrong: flattened in C order, δ laid back in Fortran order."""

    def input_delta(self, delta, a_prev, params=None):
        return delta.reshape(a_prev.shape, order="F")


@dataclass(frozen=True)
class BatchStatisticsAsConstants(BatchNorm):
    """(2) through BatchNorm per example, the batch's μ and σ treated as constants: γδ/σ."""

    def input_delta(self, delta, a_prev, params):
        return params["gamma"] * delta / self.normalized(a_prev)[1]


@dataclass(frozen=True)
class LayerNormWithoutSigmaPath(LayerNorm):
    """(2) through LayerNorm without the path through σ, the − x̂ ⊙ mean(γδ ⊙ x̂) term."""

    def input_delta(self, delta, a_prev, params):
        x_hat, sigma = self.normalized(a_prev)
        g = params["gamma"] * delta
        return (g - self.mean(g)) / sigma


@dataclass(frozen=True)
class EpsilonOutsideTheRoot(LayerNorm):
    """σ = √v + ε instead of √(v + ε), in the hand pass (forward and backward)."""

    def normalized(self, a_prev):
        centred = a_prev - self.mean(a_prev)
        sigma = np.sqrt(self.mean(centred * centred)) + self.eps
        return centred / sigma, sigma


@dataclass(frozen=True)
class RMSNormOffByOnePerMillion(RMSNorm):
    """(2) through RMSNorm off by a relative 1e-6."""

    def input_delta(self, delta, a_prev, params):
        return super().input_delta(delta, a_prev, params) * (1 + 1e-6)


@dataclass(frozen=True)
class ResidualWithoutSkip(Residual):
    """(2) through a residual block without the skip path's δ: Θᵀ(δ ⊙ g′(u)) alone."""

    def input_delta(self, delta, a_prev, params):
        return self.inner_delta(delta, a_prev, params) @ params["theta"]


@dataclass(frozen=True)
class ResidualGPrimeAtOutput(Residual):
    """(2) and (3) of a residual block with g′ taken at the block's output z instead of at u."""

    def inner_delta(self, delta, a_prev, params):
        return delta * self.g.derivative(self.forward(a_prev, params), np)


NORM_CONTROLS = {
    "BatchNorm's statistics treated as constants": (BatchNorm, BatchStatisticsAsConstants),
    "LayerNorm without the path through σ": (LayerNorm, LayerNormWithoutSigmaPath),
    "ε outside the square root": (LayerNorm, EpsilonOutsideTheRoot),
    "RMSNorm's (2) off by 1e-6": (RMSNorm, RMSNormOffByOnePerMillion),
    "residual block without the skip path": (Residual, ResidualWithoutSkip),
    "residual block's g′ at its output": (Residual, ResidualGPrimeAtOutput),
}
"""The classic mistakes of normalization and residual layers."""


# Same shape as NORM_CONTROLS: two tables, because the norm controls are rejected on networks of
# their own (mixed_layer_cases, test_norm_layers) and these on convolutional ones (layer_cases).
CONTROLS = {
    "kernel not rotated": (Conv2D, KernelNotRotated),
    "stride zeros not inserted": (Conv2D, StrideZerosMissing),
    "padding cropped off by one": (Conv2D, CropOffByOne),
    "channels transposed in ∂E/∂W": (Conv2D, ChannelsTransposed),
    "bias gradient summed, not averaged": (Conv2D, BiasSummed),
    "convolution's (2) off by 1e-6": (Conv2D, ConvOffByOnePerMillion),
    "max pooling to the last tied maximum": ("max_pool", LastMaximum),
    "max pooling to every tied maximum": ("max_pool", EveryTiedMaximum),
    "average pooling without 1/window": ("avg_pool", AvgWithoutDivisor),
    "average pooling off by 1e-6": ("avg_pool", AvgOffByOnePerMillion),
    "flatten laid back in Fortran order": ("flatten", FortranFlattenBack),
    "dense Θ misread": (Dense, DenseWeightsNotTransposed),
}
"""Each classic mistake: the kind of layer it replaces, and the wrong layer."""


def _matches(layer, kind) -> bool:
    from manual.layers import kind_of

    return layer is not None and (kind_of(layer) == kind if isinstance(kind, str) else type(layer) is kind)


def has_kind(network: LayerNetwork, kind) -> bool:
    """Does the network hold a layer of ``kind`` (a class or a registered name)?"""
    return any(_matches(layer, kind) for layer in network.layers)


def mistaken(network: LayerNetwork, kind, wrong: type) -> LayerNetwork:
    """The network with every layer of ``kind`` (a class or a registered name) made ``wrong``."""
    layers = tuple(wrong(**layer_config(layer)) if _matches(layer, kind) else layer for layer in network.layers)
    return LayerNetwork(network.in_shape, layers, network.params, network.g)


def with_mistake(cases: st.SearchStrategy[LayerCase], kind, wrong: type) -> st.SearchStrategy[LayerCase]:
    """``cases`` with every layer of ``kind`` replaced by ``wrong``."""
    return cases.map(lambda case: LayerCase(mistaken(case.network, kind, wrong), case.x, case.y, case.loss))


@cache
def unchanged(kind: type | str) -> type:
    """A subclass of ``kind`` (a class or a registered name) that changes nothing."""
    parent = LAYER_KINDS[kind] if isinstance(kind, str) else kind
    return dataclass(frozen=True)(type(f"Unchanged{parent.__name__}", (parent,), {"__module__": __name__}))


@cache
def scaled(kind: str, factor: float) -> type:
    """A subclass of the registered ``kind`` whose (2) and (3) are ``factor`` times the right
    ones: NaN everywhere (``factor`` NaN) or far too large (1e300), a derivation broken beyond any
    tolerance, which the properties must call a mismatch, never an error or a warning of the
    checker (its bounds do not take the layer's values, and a huge error ranks as ∞)."""
    parent = LAYER_KINDS[kind]

    def input_delta(self, delta, a_prev, params=None):
        return factor * parent.input_delta(self, delta, a_prev, params)

    def parameter_gradients(self, delta, a_prev, params=None):
        return {name: factor * v for name, v in parent.parameter_gradients(self, delta, a_prev, params).items()}

    name = f"Scaled{parent.__name__}"
    methods = {"__module__": __name__, "input_delta": input_delta, "parameter_gradients": parameter_gradients}
    return dataclass(frozen=True)(type(name, (parent,), methods))
