"""Every tolerance of the suite, and why it is what it is.

The hand derivation and autodiff compute the same real numbers with different roundings, so
they may differ by the rounding error of each, and by nothing more. Each comparison is
elementwise,

    |manual − autodiff| ≤ (1 + u₆₄/u) · u · E  +  2 · N  +  floor,

where u = eps/2 is the unit roundoff of the dtype under test, and:

- E is a *running error bound* in units of u (Higham, *Accuracy and Stability of Numerical
  Algorithms*, §3.1 and §3.3), carried through the forward and backward pass beside the values
  (``property_tests.library.compare.error_bounds``). Its ingredients:
  - a sum of m products is off by at most m·u times the sum of the absolute products (γ_m);
  - one evaluation of g, or of g′, is off by at most ``ELEMENTARY_ULPS``·u times the size of
    the terms it is computed from. For g that size is |g(z)| + f_g|z|, f_g = max|g′| being the
    slope scale (½z(1 + tanh u) is tiny for z ≪ 0 but its terms are not). For g′ it is
    f_g(1 + |z|): many g′ are sums such as h(z) + z·h′(z) (SiLU, GELU, Mish, hard SiLU), where
    the rounding of h′ — often taken from a rounded h near saturation, as 1 − σ(z) — is
    multiplied by |z|;
  - an error Δz in z moves g′(z) by |g″|Δz ≤ 2·f_g·Δz (the largest max|g″| / max|g′| over the
    catalogue is soft_sign's, 2);
  - the factor (1 + u₆₄/u) counts the reference's own rounding (float64) beside the manual
    one: 2 in float64, 1 in float32.
- N is the rounding noise of autodiff's own g′, measured per activation
  (``profile``) and carried through the same sums. ``jax.grad`` differentiates the
  forward's program, and a forward such as ½z(1 + tanh u) turns into ½z·u′(1 − tanh²u), whose
  error near saturation is many ulps of |z·u′| (about 4e-14 at |z| ≈ 7): measured, not guessed.
- floor is a few smallest normal numbers: XLA on the CPU flushes subnormal results to zero
  while NumPy keeps them.

Sensitivity: a derivative off by a relative 1e-6 must fail in float64. Relative to the
magnitude M of each quantity (the same sums on absolute values), the float64 bound is typically
1e-14 to 1e-11 for the suite's networks (depth ≤ 6, width ≤ 16); ``backprop-check verify``
prints it beside every error, and the negative controls in ``test_equations.py`` and
``test_catalogue.py`` show a derivative off by a relative 1e-6 failing.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import overload

import numpy as np

ELEMENTARY_ULPS = 8
"""Rounding of one g or g′ evaluation, in units of u: NumPy/SciPy and XLA elementary functions
are within 1–4 ulps, and a catalogue entry composes at most three of them."""


SECOND_DERIVATIVE_RATIO = 2
"""max|g″| / max|g′| over the catalogue (soft_sign's); bounds how far an error in z moves g′."""

NOISE_SAFETY = 2
"""The oracle's measured noise is counted twice: the grid may miss its worst point."""

NOISE_NEIGHBOURS = 4
"""Noise is the spread of the oracle over the 2·4 + 1 floats nearest each grid point."""

REFERENCE_DTYPE = np.dtype(np.float64)


@cache
@cache
def unit_roundoff(dtype: np.dtype | type) -> float:
    """u = eps/2: the largest relative error of one rounding (remembered per dtype: every
    tolerance asks for it)."""
    return float(np.finfo(dtype).eps) / 2


def both_sides(dtype: np.dtype | type) -> float:
    """Both computations round: the manual one in ``dtype``, the reference in float64."""
    return 1 + unit_roundoff(REFERENCE_DTYPE) / unit_roundoff(dtype)


def scale(dtype: np.dtype | type) -> float:
    """What one unit of a running error bound E is worth: (1 + u₆₄/u)·u."""
    return both_sides(dtype) * unit_roundoff(dtype)


def floor(dtype: np.dtype | type, terms: int) -> float:
    """Absolute slack for underflow, per term: smallest normal / eps (2e-292 in float64, 1e-31 in
    float32). XLA on the CPU flushes subnormal results to zero and NumPy keeps them, so an
    intermediate below the smallest normal may be off by all of itself; a result built from it
    is off by that much times what multiplies it afterwards, and below smallest normal / eps no
    result has a digit that can be trusted to 1 ulp whenever an intermediate underflowed
    (4e5·e^{−z²/4}·sin z at z ≈ −30 is 1e-299 by NumPy and 3e-301 by XLA)."""
    return _smallest_normal(dtype) / (2 * unit_roundoff(dtype)) * (terms + 2)


def derivative_floor(dtype: np.dtype | type, z: np.ndarray) -> np.ndarray:
    """``floor`` for one g′ at z: an intermediate flushed to zero (below the smallest normal)
    may be multiplied by z, as in z·φ(z) of GELU′, so the slack grows with 1 + |z|."""
    return floor(dtype, 1) * (1 + np.abs(z))


@cache
def _smallest_normal(dtype: np.dtype | type) -> float:
    return float(np.finfo(dtype).smallest_normal)


def derivative_bound(g_scale: float | np.ndarray, z: np.ndarray) -> np.ndarray:
    """Error of one g′ evaluation at z, in units of u: ELEMENTARY_ULPS · f_g · (1 + |z|)."""
    with np.errstate(over="ignore"):
        return ELEMENTARY_ULPS * g_scale * (1 + np.abs(z))


@cache
def _grid() -> np.ndarray:
    """Dense on [−50, 50], then logarithmic out to ±1e3 (one read-only array)."""
    tail = np.logspace(np.log10(50), 3, 400)[1:]
    grid = np.concatenate([-tail[::-1], np.linspace(-50, 50, 20_001), tail])
    grid.flags.writeable = False
    return grid


REACH = 1.0
"""Scales at z are the largest over the grid points between the origin and z, one unit past
each: over [z − 1, 1] for z < 0 and [−1, z + 1] for z ≥ 0. A bounded activation whose g′ peaks
near 0 keeps that peak as its scale in both tails, as its autodiff keeps terms of that size
there (GELU′ by tanh goes through 1 − tanh² of a tanh rounded to ±1 for z ≲ −13, and is off by
about u there, not by u·|g′|); a growing one is judged against its size near z (e²⁰⁰ at
z = 200), and on its decaying side against its size near the origin (1 for eᶻ at z = −200),
never against its size at the far end of the grid."""


@dataclass(frozen=True)
class _TowardOrigin:
    """max(values) over the grid points between the origin and z, ``REACH`` past each end."""

    grid: np.ndarray
    right: np.ndarray  # right[i]: the largest over [−REACH, grid[start + i]]
    left: np.ndarray  # left[i]: the largest over [grid[i], REACH]
    start: int

    @classmethod
    def of(cls, grid: np.ndarray, values: np.ndarray) -> _TowardOrigin:
        start = int(np.searchsorted(grid, -REACH))
        stop = int(np.searchsorted(grid, REACH, side="right"))
        return cls(grid, np.maximum.accumulate(values[start:]), np.maximum.accumulate(values[:stop][::-1])[::-1], start)

    def indices(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where z ≥ 0 reads ``right`` and z < 0 reads ``left``."""
        up = np.searchsorted(self.grid, z + REACH, side="right") - 1 - self.start
        down = np.searchsorted(self.grid, z - REACH)
        return np.clip(up, 0, self.right.size - 1), np.clip(down, 0, self.left.size - 1)

    def at(self, z) -> np.ndarray:
        z = np.asarray(z, np.float64)
        up, down = self.indices(z)
        return np.where(z >= 0, self.right[up], self.left[down])


@dataclass(frozen=True)
class Profile:
    """Autodiff's g′ over the scale grid, made into the two scales every tolerance uses.

    ``slope_at(z)`` is f, the size of the terms a g′ is computed from: the largest |g′| over
    the grid points between the origin and z (``REACH``).
    ``noise_at(z)`` is autodiff's own rounding noise, the largest over the same points. Points
    where g or g′ is not finite take no part in either (``finite`` counts those that do), so a
    few overflowing far points can never make a tolerance infinite or NaN. ``deviation``, when
    set, raises the noise (``allow_deviation``)."""

    slope: _TowardOrigin
    noise: _TowardOrigin
    finite: int
    deviation: Callable[[np.ndarray], np.ndarray] | None = None

    def slope_at(self, z) -> np.ndarray:
        return self.slope.at(z)

    def noise_at(self, z) -> np.ndarray:
        noise = self.noise.at(z)
        return noise if self.deviation is None else np.maximum(noise, self.deviation(np.asarray(z, np.float64)))

    def at(self, z) -> tuple[np.ndarray, np.ndarray]:
        """(``slope_at(z)``, ``noise_at(z)``), the grid looked up once."""
        z = np.asarray(z, np.float64)
        up, down = self.slope.indices(z)
        positive = z >= 0
        slope = np.where(positive, self.slope.right[up], self.slope.left[down])
        noise = np.where(positive, self.noise.right[up], self.noise.left[down])
        return slope, noise if self.deviation is None else np.maximum(noise, self.deviation(z))

    @property
    def slope_scale(self) -> float:
        """The largest f over the whole finite grid."""
        return float(max(self.slope.right[-1], self.slope.left[0]))


SLOPE_MINIMUM = float(np.finfo(np.float64).tiny)
"""f is never exactly zero, so that relative figures stay finite for a constant g."""


_PROFILES: dict = {}


def profile(g) -> Profile:
    """g's ``Profile``, measured once per activation (see ``measure_profile``). A caller that
    needs many (``verify``) measures them together first with ``prepare``."""
    if id(g) in _ALLOWED:
        return _ALLOWED[id(g)]
    if g not in _PROFILES:
        prepare([g])
    return _PROFILES[g]


def prepare(gs: Iterable) -> None:
    """Measure the ``Profile`` of every elementwise activation of ``gs`` (each with a
    ``forward(z, xp)``) not yet measured,
    their autodiff derivatives taken by one compiled program (``reference.derivatives``)."""
    from reference import derivatives

    todo = [g for g in dict.fromkeys(gs) if g not in _PROFILES and not _read_profile(g)]
    if todo:
        z = _neighbourhoods()
        for g, r in zip(todo, derivatives(todo, z), strict=True):
            _PROFILES[g] = measure_profile(g, r)
            _ON_GRID[g] = r[:, NOISE_NEIGHBOURS].copy()
            _write_profile(g)


# A catalogue entry's profile is the same in every run of the same code: where JAX's compilation
# cache is on (the command's runs), it is kept in that cache folder beside the stored programs
# (``reference.stored``), under a hash of the sources of manual, reference and this module, the
# versions and JAX's configuration, and read back instead of measured (about 1 s a process).
_FIELDS = ("slope_right", "slope_left", "noise_right", "noise_left", "on_grid")


def _profile_path(g):
    """Where g's profile is kept, or ``None`` when the cache is off or g is not one of manual's
    table entries as imported (a user's activation, a stand-in put in the catalogue later)."""
    from reference import stored

    folder = stored.folder()
    if folder is None or not stored.is_table_entry(g):
        return None
    return folder.parent / "profiles" / (stored.digest(("profile", g.name), (Path(__file__),)) + ".npz")


KEPT_PROFILES = 64
"""Profiles kept on disk, the most recently used: the catalogue's twice over, and more."""


def _read_profile(g) -> bool:
    """Read g's stored profile, if there is one; returns whether it was read."""
    from reference import stored

    path = _profile_path(g)
    if path is None:
        return False
    try:
        with np.load(path) as data:
            arrays = {name: data[name] for name in _FIELDS}
            start, finite = int(data["start"]), int(data["finite"])
    except Exception:  # none yet, or a damaged file: measured again, and written anew
        return False
    stored.touch(path)
    grid = _grid()
    _PROFILES[g] = Profile(
        slope=_TowardOrigin(grid, arrays["slope_right"], arrays["slope_left"], start),
        noise=_TowardOrigin(grid, arrays["noise_right"], arrays["noise_left"], start),
        finite=finite,
    )
    _ON_GRID[g] = arrays["on_grid"]
    return True


def _write_profile(g) -> None:
    from reference import stored

    path = _profile_path(g)
    if path is None or not stored.fresh():
        return
    found = _PROFILES[g]
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        slope_right=found.slope.right,
        slope_left=found.slope.left,
        noise_right=found.noise.right,
        noise_left=found.noise.left,
        on_grid=_ON_GRID[g],
        start=np.asarray(found.slope.start),
        finite=np.asarray(found.finite),
    )
    stored.write(path, buffer.getvalue(), keep=KEPT_PROFILES)


def grid_derivative(g) -> np.ndarray:
    """Autodiff's g′ at the points of ``_grid()``, as measured for g's profile."""
    profile(g)
    return _ON_GRID[g]


_ON_GRID: dict = {}


class Allowance:
    """``deviation(z)`` for ``allow_deviation``, remembered for z arrays measured together
    beforehand (``prefetch``): one network stage asks about every layer's z of every network,
    and one call on all of them at once costs what one call on a single layer does. Each
    remembered z is held, so that its identity cannot pass to another array."""

    def __init__(self, deviation: Callable[[np.ndarray], np.ndarray]) -> None:
        self.deviation = deviation
        self.known: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def prefetch(self, zs: Sequence[np.ndarray]) -> None:
        zs = [z for z in zs if id(z) not in self.known]
        if not zs:
            return
        values = self.deviation(np.concatenate([np.ravel(z) for z in zs]))
        for z, part in zip(zs, np.split(values, np.cumsum([z.size for z in zs])[:-1]), strict=True):
            self.known[id(z)] = (z, part.reshape(z.shape))

    def __call__(self, z: np.ndarray) -> np.ndarray:
        hit = self.known.get(id(z))
        return hit[1] if hit is not None and hit[0] is z else self.deviation(z)


def prefetch_deviations(pairs: Iterable[tuple[object, np.ndarray]]) -> None:
    """Measure together, for every (g, z) whose g has an allowance (``allow_deviation``), the
    allowances at those z (float64 arrays, looked up later by identity)."""
    wanted: dict[int, list[np.ndarray]] = {}
    for g, z in pairs:
        if id(g) in _ALLOWED:
            wanted.setdefault(id(g), []).append(z)
    for key, zs in wanted.items():
        allowance = _ALLOWED[key].deviation
        if isinstance(allowance, Allowance):
            allowance.prefetch(zs)


def allow_deviation(g, like, deviation) -> None:
    """Give g the profile of ``like`` with an allowance for the hand g′ itself: ``noise_at(z)``
    becomes at least ``deviation(z)``, the deviation |hand − autodiff| of g′ at exactly those z
    when the pointwise check accepts it (``activation_check.accepted_deviation``). The network
    stage of ``backprop-check activation`` judges its activation this way: a right formula that
    loses digits at some z (reported by the pointwise stage) must not fail the equations there,
    while a g′ applied wrongly in the chain (to the wrong axis of a batch, say) still does."""
    _ALLOWED[id(g)] = replace(profile(like), deviation=Allowance(deviation))


def forget_deviation(g) -> None:
    """Undo ``allow_deviation`` once g's network stage is over."""
    _ALLOWED.pop(id(g), None)


_ALLOWED: dict[int, Profile] = {}
"""Profiles with an allowance, by the identity of the activation object they were given to
(an activation equal to another by value must not share its allowance)."""


_LOSS_UNITS: dict[int, float] = {}


def loss_units(loss) -> float:
    """How many units of the loss's gradient one unit of its inputs a and y is worth, for the
    size of the terms its gradient is computed from: 1 for the catalogue's losses, and for a
    user's loss what ``backprop-check loss`` measured (``allow_loss_units``), so that a loss
    scaled by 1e-10 is judged at its own scale inside networks too."""
    return _LOSS_UNITS.get(id(loss), 1.0)


def allow_loss_units(loss, units: float | None) -> None:
    """Set (a float) or forget (``None``) ``loss_units`` for this loss object."""
    if units is None:
        _LOSS_UNITS.pop(id(loss), None)
    else:
        _LOSS_UNITS[id(loss)] = units


def _neighbourhoods() -> np.ndarray:
    """Each point of ``_grid()`` (the middle column) with the ``NOISE_NEIGHBOURS`` floats on
    either side of it."""
    grid = _grid()
    steps = np.arange(-NOISE_NEIGHBOURS, NOISE_NEIGHBOURS + 1)
    return grid[:, None] + steps[None, :] * np.spacing(np.abs(grid))[:, None]


def measure_profile(g, r: np.ndarray | None = None) -> Profile:
    """The slope and noise profile of g's autodiff derivative (see ``Profile``); ``r``, when
    given, is that derivative on ``_neighbourhoods()`` already. The noise at a
    grid point is measured as Moré and Wild do (*Estimating computational noise*, SIAM J. Sci.
    Comput. 33, 2011): evaluate the oracle at the nine floats nearest the point, where the true
    g′ barely moves, and take the spread. Rows that straddle a declared kink are left out, and
    so are rows that are a step (``is_step``): a jump of g′ that nobody declared is not noise,
    and counting it as noise would make every tolerance as wide as the jump. A row with a
    non-finite value is left out of both scales."""
    grid = _grid()
    z = _neighbourhoods()
    if r is None:
        from reference import derivative

        r = derivative(g, z)
    with np.errstate(all="ignore"):
        a = np.asarray(g.forward(grid, np), np.float64)
    finite = np.all(np.isfinite(r), axis=1) & np.isfinite(a)
    rows = np.where(finite[:, None], r, 0.0)
    spread = np.max(rows, axis=1) - np.min(rows, axis=1)
    for kink in g.kinks:
        spread[(z.min(axis=1) <= kink) & (z.max(axis=1) >= kink)] = 0.0
    spread[is_step(rows)] = 0.0
    terms = np.where(finite, np.abs(rows[:, NOISE_NEIGHBOURS]), 0.0)
    return Profile(
        slope=_TowardOrigin.of(grid, np.maximum(terms, SLOPE_MINIMUM)),
        noise=_TowardOrigin.of(grid, np.where(finite, spread, 0.0)),
        finite=int(np.sum(finite)),
    )


def slope_scale(g) -> float:
    """f_g = max |g′| over the finite points of the grid, from ``jax.grad`` of g's forward
    (never from the hand derivative under test)."""
    return profile(g).slope_scale


STEP_FLATNESS = 1e-3
"""A row of neighbouring g′ values is a step when each side varies by at most this fraction of
the whole row's spread; rounding noise scatters instead."""

STEP_MINIMUM = 1e-9
"""...and when the two sides lie at least this far apart, relative to the row's largest |g′|.
Autodiff's rounding noise stays below 1e-12 of it (the largest measured in the catalogue is
about 260 ulps, 6e-14), so a difference a thousand times that is a jump, never rounding."""


def is_step(rows: np.ndarray) -> np.ndarray:
    """For each row of values at consecutive floats: is it a jump rather than noise? True when
    the row splits into a left and a right part, each flat (``STEP_FLATNESS``) and at levels
    at least half the row's spread and ``STEP_MINIMUM`` apart, with at most one point between
    them (the value at a kink may lie between the one-sided slopes). A lone outlier in a flat
    row is not a step, and nor is a staircase of a few ulps."""
    rows = np.asarray(rows, np.float64)
    total = np.max(rows, axis=1) - np.min(rows, axis=1)
    flat = STEP_FLATNESS * total
    jump = np.maximum(total / 2, STEP_MINIMUM * np.max(np.abs(rows), axis=1))
    # The spread of every left part rows[:, :s] and every right part rows[:, s:], by running
    # maxima and minima from each end; a split s leaves the left part rows[:, :s] and the right
    # part rows[:, s + gap:], for s = 1 … width − 1 and a gap of 0 or 1 points.
    left_spread = np.maximum.accumulate(rows, axis=1) - np.minimum.accumulate(rows, axis=1)
    backwards = rows[:, ::-1]
    right_spread = (np.maximum.accumulate(backwards, axis=1) - np.minimum.accumulate(backwards, axis=1))[:, ::-1]
    left_flat = left_spread <= flat[:, None]  # column s − 1: the left part of split s
    right_flat = right_spread <= flat[:, None]  # column j: the right part starting at j
    apart = np.abs(rows - rows[:, :1]) >= jump[:, None]  # column j: the right part's first value
    step = np.zeros(rows.shape[0], bool)
    for gap in (0, 1):
        splits = rows.shape[1] - 1 - gap  # s = 1 … width − 1 − gap leave a right part
        start = slice(1 + gap, 1 + gap + splits)
        both = left_flat[:, :splits] & right_flat[:, start] & apart[:, start]
        step |= np.any(both, axis=1)
    return step & (total > 0)


FINITE_DIFFERENCE_SAFETY = 4
"""Central differences are trusted to within 4× their own a-posteriori error estimate."""


def finite_difference_step(dtype: np.dtype | type = np.float64) -> float:
    """h = u^(1/3) balances truncation (∝ h²) against rounding (∝ u/h) in a central difference."""
    return unit_roundoff(dtype) ** (1 / 3)


@overload
def finite_difference_tolerance(
    d_h: np.ndarray,
    d_2h: np.ndarray | float,
    error_bound: np.ndarray | float,
    h: np.ndarray | float,
    dtype: np.dtype | type = ...,
) -> np.ndarray: ...


@overload
def finite_difference_tolerance(
    d_h: float, d_2h: float, error_bound: float, h: float, dtype: np.dtype | type = ...
) -> float: ...


def finite_difference_tolerance(
    d_h: np.ndarray | float,
    d_2h: np.ndarray | float,
    error_bound: np.ndarray | float,
    h: np.ndarray | float,
    dtype: np.dtype | type = np.float64,
) -> np.ndarray | float:
    """Error bound of the central difference D(h) = (E(θ+h) − E(θ−h)) / 2h.

    Truncation: D(h) − E′ ≈ c·h², so D(2h) − D(h) ≈ 3c·h² estimates it (Richardson).
    Rounding: each E is off by at most u·``error_bound``, and the difference divides by 2h.
    Both, times FINITE_DIFFERENCE_SAFETY."""
    truncation = np.abs(d_2h - d_h) / 3
    rounding = unit_roundoff(dtype) * error_bound / h
    return FINITE_DIFFERENCE_SAFETY * (truncation + rounding)


class InternalError(RuntimeError):
    """A NaN or an infinity reached an error or a tolerance: a bug of the checker, reported as
    such (exit code 4), never as a verdict."""


def require_finite(what: str, *values) -> None:
    """Raise ``InternalError`` unless every value is finite: no error or tolerance may be NaN or ∞."""
    for value in values:
        if value is not None and not np.isfinite(value).all():
            raise InternalError(f"{what} is not finite; please report this as a bug of backprop-check")
