"""Distances between particle measures: W₂, the relative measure distance, distances to SI / WI.

Concepts
--------
A *measure* here is an empirical law ``μ = Σ_i a_i δ_{θ_i}`` on ``R^D``, given by its atoms
``theta`` of shape ``(n, D)`` and its weights ``a`` of shape ``(n,)`` (``a_i ≥ 0``, ``Σ a_i = 1``;
uniform ``a_i = 1/n`` when omitted).

* Second moment, in the papers' convention (note the factor 2): ``M₂(μ) = 2 E_μ|θ|²``.
* Quadratic Wasserstein distance ``W₂(μ, ν)² = min_π Σ_ij π_ij |θ_i − θ'_j|²`` over couplings
  ``π`` of ``a`` and ``b``. Computed *exactly* with POT's network simplex (``ot.emd2``; small
  uniform measures whose sizes divide one another as an assignment problem), or
  approximated by the *sliced* distance ``SW₂² = mean_k W₂²(⟨u_k, ·⟩_#μ, ⟨u_k, ·⟩_#ν)`` over
  random unit directions ``u_k`` (``ot.sliced_wasserstein_distance``), a lower bound on ``W₂``;
  for uniform measures whose sizes divide one another (the distance to WI) by sorting the
  projections, on the same directions.
* Relative measure distance ``RMD(μ, ν)² = W₂²(μ, ν) / (M₂(μ) + M₂(ν))`` (``0`` when both
  measures are ``δ₀``): a scale-free distance, ``RMD(μ, δ₀) = 1/√2`` for every ``μ ≠ δ₀``.
  It is computed on the atoms scaled by a power of two that brings the largest coordinate near
  1: the same bits, and atoms whose squares would overflow or underflow keep their value.
* Distance to SI (strongly invariant laws, supported on the fixed subspace ``E^G``):
  ``RMD(μ, P_#μ)`` with ``P = P_G`` the orthogonal projector onto ``E^G``. In closed form, since
  ``θ ↦ Pθ`` is an optimal transport map (the gradient of the convex ``½|Pθ|²``):
  ``W₂²(μ, P_#μ) = E_μ|θ − Pθ|²``.
* Distance to WI (weakly invariant laws, ``(M_g)_#μ = μ`` for all ``g``): ``RMD(μ, μ^G)`` with
  the symmetrized law ``μ^G = Σ_g w_g (M_g)_#μ``, whose atoms are ``M_g θ_i`` with weights
  ``w_g a_i``.

Every function takes plain arrays and returns plain values; W₂-based ones return a
:class:`Distance`, which records how the value was obtained.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ._checks import numeric

__all__ = [
    "ASSIGNMENT_MAX",
    "EXACT_MAX",
    "METHODS",
    "Distance",
    "distance_to_orbit_average",
    "distance_to_subspace",
    "pairwise_rmd",
    "rmd",
    "second_moment",
    "wasserstein2",
]

#: Above this many atoms in either measure, ``method="auto"`` uses the sliced distance.
EXACT_MAX = 3000

#: Uniform measures of at most this many atoms, one size a multiple of the other, get their exact
#: ``W₂`` from an assignment problem rather than POT: the same value up to rounding, in about the
#: same time there, and no POT import (0.7–0.9 s with the ``scipy.stats`` it loads) for a run's
#: small distances; above it POT's network simplex is the faster (4× at 1000 against 2000 atoms).
ASSIGNMENT_MAX = 256

#: Allowed values of the ``method`` argument.
METHODS = ("auto", "exact", "sliced")

_WEIGHT_SUM_TOL = 1e-9  # |Σ a_i − 1| allowed for weights
_PROJECTOR_TOL = 1e-8  # ‖P − Pᵀ‖, ‖P² − P‖ allowed, relative to max(1, ‖P‖)


class Distance(NamedTuple):
    """A distance value and how it was computed.

    ``value`` is the distance itself (not squared); ``method`` is ``"exact"`` (POT ``ot.emd2``, or
    an assignment problem for small uniform measures: :data:`ASSIGNMENT_MAX`),
    ``"sliced"`` (POT sliced W₂) or ``"closed-form"`` (no solver). ``float(d) == d.value``.
    """

    value: float
    method: str

    def __float__(self) -> float:
        return float(self.value)


# ---------------------------------------------------------------------------------------------
# input checking


def _atoms(theta: ArrayLike, name: str, dim: int | None = None, dim_from: str = "") -> np.ndarray:
    """``theta`` as a finite float array ``(n, D)`` with ``n ≥ 1`` (and ``D == dim`` if given)."""
    arr = numeric(theta, name, "(n, D)")
    if arr.ndim != 2:
        hint = (
            "; for n points on the line use .reshape(-1, 1), for one point in R^D use [None, :]"
            if arr.ndim == 1
            else ""
        )
        raise ValueError(
            f"{name} must be a 2-D array of shape (n, D) (one row per atom), got shape "
            f"{arr.shape}{hint}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} must have at least one atom and one coordinate, got shape {arr.shape}"
        )
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(
            f"{name} must have D = {dim} columns like {dim_from}, got shape {arr.shape}; "
            f"all measures must live in the same R^D"
        )
    if not np.all(np.isfinite(arr)):
        bad = tuple(np.argwhere(~np.isfinite(arr))[0].tolist())
        raise ValueError(f"{name} contains NaN or inf (first at index {bad}); pass finite values")
    return arr


def _weights(weights: ArrayLike | None, n: int, name: str) -> np.ndarray:
    """Probability weights ``(n,)``: uniform if ``None``; validated and renormalized otherwise."""
    if weights is None:
        return np.full(n, 1.0 / n)
    w = numeric(weights, name, f"({n},)")
    if w.shape != (n,):
        raise ValueError(
            f"{name} must have shape (n,) = ({n},), got {w.shape}; pass one weight per atom"
        )
    if not np.all(np.isfinite(w)):
        bad = int(np.argwhere(~np.isfinite(w))[0][0])
        raise ValueError(f"{name} contains NaN or inf (first at index {bad}); pass finite weights")
    if np.any(w < 0):
        bad = int(np.argwhere(w < 0)[0][0])
        raise ValueError(
            f"{name} must be nonnegative, got {name}[{bad}] = {w[bad]!r}; weights are probabilities"
        )
    total = float(w.sum())
    if abs(total - 1.0) > _WEIGHT_SUM_TOL:
        raise ValueError(
            f"{name} must sum to 1 (within {_WEIGHT_SUM_TOL:g}), got sum {total!r}; "
            f"divide by the sum to normalize"
        )
    return w / total


def _method(method: str) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


def _n_projections(n_projections: int) -> int:
    ok = (
        isinstance(n_projections, int | np.integer)
        and not isinstance(n_projections, bool)
        and n_projections > 0
    )
    if not ok:
        raise ValueError(
            f"n_projections must be a positive integer, got {n_projections!r}"
        )
    return int(n_projections)


def _seed(seed: int | None) -> int | None:
    ok = seed is None or (
        isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0
    )
    if not ok:
        raise ValueError(f"seed must be a nonnegative integer or None, got {seed!r}")
    return None if seed is None else int(seed)


def _resolve(method: str, n: int, m: int) -> str:
    """The solver used for measures of ``n`` and ``m`` atoms."""
    if method == "auto":
        return "exact" if max(n, m) <= EXACT_MAX else "sliced"
    return method


# ---------------------------------------------------------------------------------------------
# kernels on validated arrays


def _m2(theta: np.ndarray, a: np.ndarray) -> float:
    return 2.0 * float(a @ np.einsum("nd,nd->n", theta, theta))


def _w2_squared(x: np.ndarray, a: np.ndarray, y: np.ndarray, b: np.ndarray,
                method: str, n_projections: int, seed: int | None,
                blocks: tuple[bool, ...] = ()) -> float:
    """``W₂²`` (exact) or ``SW₂²`` (sliced) between validated measures; ``method`` resolved;
    ``blocks`` as in :func:`_sliced_sorted`."""
    # uniform measures whose sizes divide one another: an assignment, or sorted projections
    matched = max(len(x), len(y)) % min(len(x), len(y)) == 0 and _uniform(a) and _uniform(b)
    if method == "exact":
        # cdist differences coordinates before squaring: exact zeros for coincident atoms
        # (the expansion |x|² + |y|² − 2⟨x, y⟩ would leave rounding residue of order |x|² eps).
        cost = np.ascontiguousarray(cdist(x, y, metric="sqeuclidean"))
        if not np.all(np.isfinite(cost)):
            return np.inf  # |θ_i − θ'_j|² overflows float64: the distance is not representable
        n, m = cost.shape
        if matched and max(n, m) <= ASSIGNMENT_MAX:
            return _assignment_w2_squared(cost)
        import ot  # POT loads scipy.stats: seconds that commands without a transport problem save

        value, log = ot.emd2(a, b, cost, numItermax=max(100_000, 50 * n * m), log=True)
        if log["warning"] is not None:
            raise RuntimeError(
                f"exact W2 solver (ot.emd2) did not reach optimality: {log['warning']}; "
                f"use method='sliced' for large measures"
            )
        return max(float(value), 0.0)
    if matched:
        return _sliced_sorted(x, y, n_projections, seed, blocks)
    import ot

    value = ot.sliced_wasserstein_distance(
        x, y, a, b, n_projections=n_projections, p=2, seed=seed
    )
    return max(float(value), 0.0) ** 2


def _assignment_w2_squared(cost: np.ndarray) -> float:
    """``W₂²`` between the uniform measures whose pairwise costs are ``cost (n, m)``, one size a
    multiple ``k`` of the other: with each atom of the smaller measure repeated ``k`` times both
    have ``max(n, m)`` atoms of equal mass, and an optimal plan is then a permutation
    (Birkhoff–von Neumann), found by ``scipy.optimize.linear_sum_assignment``."""
    if cost.shape[0] > cost.shape[1]:
        cost = cost.T
    square = np.repeat(cost, cost.shape[1] // cost.shape[0], axis=0)
    rows, cols = linear_sum_assignment(square)
    return float(square[rows, cols].sum()) / square.shape[0]


def _uniform(weights: np.ndarray) -> bool:
    return bool(np.all(weights == weights[0]))


def _sliced_sorted(x: np.ndarray, y: np.ndarray, n_projections: int, seed: int | None,
                   blocks: tuple[bool, ...] = ()) -> float:
    """``SW₂²`` between the uniform measures on the atoms ``x (n, D)`` and ``y (m, D)`` when
    one size divides the other, on POT's random directions for ``seed``: two sorts per
    direction (:func:`solvers.cpu.sliced.gap_sums`), the value of ``ot.sliced_wasserstein_distance``
    up to rounding. ``blocks``: ``y`` as ``len(blocks)`` equal blocks of ``n`` atoms (``μ^G``: a
    block ``M_g x`` per element), sorted apart and merged, ``blocks[b]`` true where block ``b``
    is ``x`` itself (the identity's), whose sorted projections are those of ``x``; ``()``: one
    block. Memory ``O(n + m)`` per thread."""
    from ot.sliced import get_random_projections

    from solvers.cpu import sliced

    if len(x) > len(y):
        x, y = y, x
    is_x = np.array(blocks or (False,))
    directions = get_random_projections(x.shape[1], n_projections, seed)  # (D, K)
    sums = sliced.gap_sums(np.ascontiguousarray(x, float),
                           np.ascontiguousarray(y, float).reshape(len(is_x), -1, x.shape[1]),
                           is_x, directions)
    return float(np.sum(sums)) / (len(y) * n_projections)


def _checked_pair(mu, nu, mu_weights, nu_weights, method, n_projections, seed):
    """Validated atoms and weights of two measures, and the solver options."""
    x = _atoms(mu, "mu")
    y = _atoms(nu, "nu", x.shape[1], "mu")
    a = _weights(mu_weights, x.shape[0], "mu_weights")
    b = _weights(nu_weights, y.shape[0], "nu_weights")
    return x, a, y, b, _method(method), _n_projections(n_projections), _seed(seed)


def _unit_scale(*atoms: np.ndarray) -> float:
    """``2^−e`` that brings the largest ``|coordinate|`` of ``atoms`` into ``[1/2, 1)``: RMD is
    scale-free, and a power of two scales every product and sum exactly, so the value is the
    same bits, but squares of atoms beyond ``1e154`` no longer overflow."""
    largest = max(float(np.max(np.abs(x))) for x in atoms)
    return float(np.ldexp(1.0, -np.frexp(largest)[1])) if largest > 0.0 else 1.0


def _rmd(x: np.ndarray, a: np.ndarray, y: np.ndarray, b: np.ndarray,
         method: str, n_projections: int, seed: int | None,
         blocks: tuple[bool, ...] = ()) -> Distance:
    scale = _unit_scale(x, y)
    x, y = x * scale, y * scale
    solver = _resolve(method, x.shape[0], y.shape[0])
    denom = _m2(x, a) + _m2(y, b)
    if denom == 0.0:
        return Distance(0.0, solver)
    w2sq = _w2_squared(x, a, y, b, solver, n_projections, seed, blocks)
    return Distance(float(np.sqrt(w2sq / denom)), solver)


# ---------------------------------------------------------------------------------------------
# public API


def second_moment(theta: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Second moment ``M₂(μ) = 2 E_μ|θ|² = 2 Σ_i a_i |θ_i|²`` (the papers' factor 2).

    ``theta``: atoms ``(n, D)``; ``weights``: ``(n,)`` summing to 1, uniform if ``None``.

    Examples
    --------
    >>> second_moment([[1.0, 0.0], [0.0, 2.0]])      # 2 · (1 + 4) / 2
    5.0
    """
    x = _atoms(theta, "theta")
    return _m2(x, _weights(weights, x.shape[0], "weights"))


def wasserstein2(mu: ArrayLike, nu: ArrayLike, *, mu_weights: ArrayLike | None = None,
                 nu_weights: ArrayLike | None = None, method: str = "auto",
                 n_projections: int = 256, seed: int | None = 0) -> Distance:
    """Quadratic Wasserstein distance ``W₂(μ, ν)`` with cost ``|θ − θ'|²``.

    ``mu``: atoms ``(n, D)``, ``nu``: atoms ``(m, D)``; ``mu_weights`` ``(n,)`` and
    ``nu_weights`` ``(m,)`` sum to 1 (uniform if ``None``).

    ``method``: ``"exact"`` → ``sqrt(ot.emd2(a, b, C))`` with ``C_ij = |θ_i − θ'_j|²`` (the
    same value, up to rounding, from an assignment problem for uniform measures of at most
    :data:`ASSIGNMENT_MAX` atoms whose sizes divide one another);
    ``"sliced"`` → POT's sliced distance ``sqrt(mean_k W₂²(⟨u_k,·⟩_#μ, ⟨u_k,·⟩_#ν))`` over
    ``n_projections`` random unit directions drawn with ``seed`` (a lower bound on ``W₂``,
    equal to it when ``D = 1``); ``"auto"`` → exact when ``n, m ≤ EXACT_MAX``, else sliced.
    The returned :class:`Distance` records the method actually used.
    """
    x, a, y, b, method, n_projections, seed = _checked_pair(
        mu, nu, mu_weights, nu_weights, method, n_projections, seed)
    solver = _resolve(method, x.shape[0], y.shape[0])
    w2sq = _w2_squared(x, a, y, b, solver, n_projections, seed)
    return Distance(float(np.sqrt(w2sq)), solver)


def rmd(mu: ArrayLike, nu: ArrayLike, *, mu_weights: ArrayLike | None = None,
        nu_weights: ArrayLike | None = None, method: str = "auto", n_projections: int = 256,
        seed: int | None = 0) -> Distance:
    """Relative measure distance ``RMD(μ, ν) = sqrt(W₂²(μ, ν) / (M₂(μ) + M₂(ν)))``.

    ``0`` when ``M₂(μ) + M₂(ν) = 0`` (both measures are ``δ₀``). Arguments and ``method`` as in
    :func:`wasserstein2`; with ``"sliced"`` the numerator is ``SW₂²``.

    Examples
    --------
    >>> d = rmd([[1.0, 2.0], [3.0, -1.0]], [[0.0, 0.0]])   # against δ₀: always 1/√2
    >>> round(d.value, 12), d.method
    (0.707106781187, 'exact')
    """
    x, a, y, b, method, n_projections, seed = _checked_pair(
        mu, nu, mu_weights, nu_weights, method, n_projections, seed)
    return _rmd(x, a, y, b, method, n_projections, seed)


def distance_to_subspace(theta: ArrayLike, projector: ArrayLike,
                         weights: ArrayLike | None = None) -> Distance:
    """Distance to SI: ``RMD(μ, P_#μ)`` in closed form (no solver).

    ``W₂²(μ, P_#μ) = E_μ|θ − Pθ|²`` exactly, because ``θ ↦ Pθ`` is an optimal map for an
    orthogonal projector ``P``; hence
    ``RMD² = E|θ − Pθ|² / (2 E|θ|² + 2 E|Pθ|²)``, and ``0`` when ``μ = δ₀``.

    ``theta``: atoms ``(n, D)``; ``projector``: ``(D, D)`` symmetric idempotent (e.g. ``P_G``);
    ``weights``: ``(n,)`` summing to 1, uniform if ``None``. ``method == "closed-form"``.
    """
    x = _atoms(theta, "theta")
    d = x.shape[1]
    p = numeric(projector, "projector", f"({d}, {d})")
    if p.shape != (d, d):
        raise ValueError(
            f"projector must have shape (D, D) = ({d}, {d}) to act on theta, got {p.shape}"
        )
    if not np.all(np.isfinite(p)):
        raise ValueError("projector contains NaN or inf; pass a finite (D, D) matrix")
    scale = max(1.0, float(np.linalg.norm(p)))
    if np.linalg.norm(p - p.T) > _PROJECTOR_TOL * scale:
        raise ValueError(
            "projector must be symmetric (an orthogonal projector), got ‖P − Pᵀ‖ = "
            f"{np.linalg.norm(p - p.T):.3g}; symmetrize it or build it as Q Qᵀ with orthonormal Q"
        )
    if np.linalg.norm(p @ p - p) > _PROJECTOR_TOL * scale:
        raise ValueError(
            "projector must be idempotent (P² = P), got ‖P² − P‖ = "
            f"{np.linalg.norm(p @ p - p):.3g}; build it as Q Qᵀ with orthonormal Q"
        )
    a = _weights(weights, x.shape[0], "weights")
    x = x * _unit_scale(x)
    px = x @ p.T
    r = x - px
    num = float(a @ np.einsum("nd,nd->n", r, r))
    denom = _m2(x, a) + _m2(px, a)
    if denom == 0.0:
        return Distance(0.0, "closed-form")
    return Distance(float(np.sqrt(num / denom)), "closed-form")


def distance_to_orbit_average(theta: ArrayLike, actions: ArrayLike,
                              action_weights: ArrayLike | None = None,
                              weights: ArrayLike | None = None, *, method: str = "auto",
                              n_projections: int = 256, seed: int | None = 0) -> Distance:
    """Distance to WI: ``RMD(μ, μ^G)`` with the symmetrized law ``μ^G = Σ_g w_g (M_g)_#μ``.

    ``μ^G`` has the ``n·G`` atoms ``M_g θ_i`` with weights ``w_g a_i``; it equals ``μ`` iff
    ``μ`` is invariant under every ``M_g`` (for a group acting with uniform ``w``).

    ``theta``: atoms ``(n, D)``; ``actions``: ``(G, D, D)`` matrices ``M_g`` (orthogonal in the
    intended use, not checked); ``action_weights``: ``(G,)`` summing to 1, uniform if ``None``;
    ``weights``: ``(n,)`` summing to 1, uniform if ``None``. ``method`` as in :func:`rmd`,
    applied to sizes ``n`` and ``n·G``.
    """
    method = _method(method)
    n_projections = _n_projections(n_projections)
    seed = _seed(seed)
    x = _atoms(theta, "theta")
    n, d = x.shape
    mats = numeric(actions, "actions", f"(G, {d}, {d})")
    if mats.ndim != 3 or mats.shape[1:] != (d, d) or mats.shape[0] == 0:
        hint = "; for a single matrix use actions[None]" if mats.ndim == 2 else ""
        raise ValueError(
            f"actions must have shape (G, D, D) = (G, {d}, {d}) with G ≥ 1, got {mats.shape}"
            f"{hint}"
        )
    if not np.all(np.isfinite(mats)):
        raise ValueError("actions contains NaN or inf; pass finite (G, D, D) matrices")
    g = mats.shape[0]
    w = _weights(action_weights, g, "action_weights")
    a = _weights(weights, n, "weights")
    images = np.einsum("gde,ne->gnd", mats, x).reshape(g * n, d)
    image_weights = np.outer(w, a).ravel()
    identity = tuple(bool(np.array_equal(m, np.eye(d))) for m in mats)
    return _rmd(x, a, images, image_weights, method, n_projections, seed, identity)


def pairwise_rmd(measures: Sequence[ArrayLike], *,
                 weights: Sequence[ArrayLike | None] | None = None, method: str = "auto",
                 n_projections: int = 256, seed: int | None = 0) -> np.ndarray:
    """Matrix ``R_kl = RMD(μ_k, μ_l)`` between ``K`` measures (e.g. one run per scheme).

    ``measures``: ``K`` atom arrays ``(n_k, D)`` with a common ``D``; ``weights``: ``None``
    (all uniform) or ``K`` entries, each ``(n_k,)`` or ``None``. Returns a symmetric ``(K, K)``
    array with zero diagonal; ``method``, ``n_projections``, ``seed`` as in :func:`rmd`
    (``"auto"`` decides per pair).
    """
    method = _method(method)
    n_projections = _n_projections(n_projections)
    seed = _seed(seed)
    if isinstance(measures, np.ndarray) or not isinstance(measures, Sequence):
        raise ValueError(
            "measures must be a list or tuple of (n_k, D) arrays, got "
            f"{type(measures).__name__}; wrap the arrays in a list"
        )
    k = len(measures)
    if k == 0:
        raise ValueError("measures must contain at least one (n, D) array, got an empty sequence")
    xs = [_atoms(measures[0], "measures[0]")]
    d = xs[0].shape[1]
    xs += [_atoms(measures[i], f"measures[{i}]", d, "measures[0]") for i in range(1, k)]
    if weights is None:
        weights = [None] * k
    elif isinstance(weights, np.ndarray) or not isinstance(weights, Sequence) \
            or len(weights) != k:
        raise ValueError(
            f"weights must be None or a list of K = {k} entries (one (n_k,) array or None per "
            "measure)"
        )
    ws = [_weights(wk, xk.shape[0], f"weights[{i}]")
          for i, (xk, wk) in enumerate(zip(xs, weights, strict=True))]
    out = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            out[i, j] = out[j, i] = _rmd(xs[i], ws[i], xs[j], ws[j], method, n_projections,
                                         seed).value
    return out
