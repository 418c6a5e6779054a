"""The price of strong invariance: the best risk over SI laws against the best over WI laws.

For symmetric data the MF flow from a WI law stays WI and decreases the free energy among WI
laws; from an SI law (equivalently, EA) it stays SI and decreases it among SI laws (Maass &
Fontbona). Long MF runs from both kinds of start estimate the two optima; the SI optimality gap
is ``Δ = R_SI − R_WI ≥ 0`` at the end of the runs. Every SI law is WI, so ``Δ = 0`` when the
best WI law can be matched by an SI one (the paper's SI teacher), and ``Δ > 0`` for a WI target
that SI units cannot represent (the paper's counterexample, :func:`counterexample`:
``σ(x₁) + σ(x₂)`` under the coordinate swap, which no ridge function of ``x₁ + x₂`` matches).

Each replicate ``k`` runs, with its own seed, the SI start ``(P_G)_# N(0, σ₀² I)`` under EA with
the noise on ``E^G`` and the orbit-closed (exactly WI) start ``{M_g θ_i}`` of ``N/|G|`` Gaussian
particles under vanilla with full noise: the MF particle flow, Heun, the population by
Gauss–Hermite quadrature (exactly symmetric for permutation groups).

The claim is about the unregularized optima, but the two runs minimise two different
regularized free energies: the SI run's entropy ``β`` acts on ``E^G``, the WI run's on all of
``R^D``, and the weight decay ``τ r`` pulls both off the teacher differently. So at ``β, τ > 0``
the final risks differ by a bias of order ``β + τ`` even when the unregularized optima coincide.
Each replicate therefore runs at several regularization scales ``s_j`` (``τ, β`` multiplied by
``s_j``, the same seeds at every scale) and its differences ``Δ_k(s_j) = R_SI,k − R_WI,k`` are
extrapolated linearly to ``s = 0`` (:func:`extrapolation_weights`); the gap is the mean of the
extrapolated ``Δ_k(0)`` with a Student-t confidence interval (``K − 1`` degrees of freedom).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .. import laws
from .._checks import positive
from ..data import GaussianData, Teacher
from ..dynamics import simulate, step_grid
from ..problem import Problem
from ..result import Result
from ..symmetry import Symmetry
from ..symmetry.groups import swap
from ..units import Perceptron
from .discovery import replicates_and_level

#: the counterexample's teacher particles ``(a, w₁, w₂)``: ``Φ*(x) = σ(x₁) + σ(x₂)``
COUNTEREXAMPLE_TEACHER = np.array([[2.0, 1.0, 0.0], [2.0, 0.0, 1.0]])


def counterexample(tau: float = 1e-4, beta: float = 1e-6, input_variance: float = 4.0,
                   quadrature_points: int | None = None) -> Problem:
    """The perceptron ``a·sigmoid(w·x)`` (``θ = (a, w₁, w₂)``, no bias) on ``x ~ N(0, v I₂)``
    learning ``σ(x₁) + σ(x₂)`` under the coordinate swap: ``E^G = {w₁ = w₂}``, so SI units are
    ridge functions of ``x₁ + x₂``, which cannot represent the (WI) teacher."""
    unit = Perceptron(2, 1, "sigmoid", bias=False)
    data = GaussianData(Teacher(unit, COUNTEREXAMPLE_TEACHER), cov=input_variance)
    return Problem(unit, data, Symmetry(swap(), unit), tau=tau, beta=beta,
                   quadrature_points=quadrature_points)


@dataclass(frozen=True)
class SIGap:
    """The SI optimality gap of a problem, estimated at the regularization ``scales (S,)``:
    ``si_risks (S, K)`` and ``wi_risks (S, K)``, the final population risks of the ``K``
    replicates from SI and WI starts at each scale (the same seeds at every scale); ``level``,
    the confidence level; ``si_run`` and ``wi_run``: the first replicate's runs at the smallest
    scale (their particles picture both optima); ``eg_basis (D, dim E^G)``; ``settings``: the
    options. The gaps follow from the risks: per scale (:attr:`gaps`, :attr:`intervals`) and
    extrapolated to ``s = 0`` (:attr:`gap`, :attr:`interval`)."""

    scales: np.ndarray
    si_risks: np.ndarray
    wi_risks: np.ndarray
    level: float
    si_run: Result = field(repr=False)
    wi_run: Result = field(repr=False)
    eg_basis: np.ndarray
    settings: dict

    @property
    def differences(self) -> np.ndarray:
        """``Δ_k(s_j) = R_SI,k(s_j) − R_WI,k(s_j)`` ``(S, K)``."""
        return self.si_risks - self.wi_risks

    @property
    def extrapolated(self) -> np.ndarray:
        """``Δ_k(0)`` ``(K,)``: each replicate's differences extrapolated to ``s = 0``
        (:func:`extrapolation_weights`; with one scale, its differences)."""
        return extrapolation_weights(self.scales) @ self.differences

    @property
    def gap(self) -> float:
        """The mean of :attr:`extrapolated`: the gap of the unregularized optima."""
        return mean_interval(self.extrapolated, self.level)[0]

    @property
    def interval(self) -> tuple[float, float]:
        """The Student-t confidence interval ``(low, high)`` of :attr:`gap` at ``level``."""
        return mean_interval(self.extrapolated, self.level)[1:]

    @property
    def gaps(self) -> np.ndarray:
        """The gap at each scale ``(S,)``: the mean of ``Δ_k(s_j)`` over the replicates."""
        return self.differences.mean(axis=1)

    @property
    def intervals(self) -> np.ndarray:
        """The confidence interval of the gap at each scale ``(S, 2)``."""
        return np.array([mean_interval(d, self.level)[1:] for d in self.differences])

    @property
    def positive(self) -> bool:
        """Whether the interval lies above 0."""
        return self.interval[0] > 0

    def summary(self) -> str:
        """Both optima (at the smallest scale), the gap at every scale and the gap with its
        interval, as one line of text."""
        low, high = self.interval
        smallest = int(np.argmin(self.scales))
        si, wi = self.si_risks[smallest], self.wi_risks[smallest]
        at = f" at s = {self.scales[smallest]:g}" if len(self.scales) > 1 else ""
        text = (f"best risk over SI laws{at} {si.mean():.4e} (± {_std(si):.1e}), over WI laws "
                f"{wi.mean():.4e} (± {_std(wi):.1e}), {si.size} replicates; ")
        if len(self.scales) > 1:
            per_scale = ", ".join(f"s = {s:g}: {g:.3e} [{lo:.3e}, {hi:.3e}]" for s, g, (lo, hi)
                                  in zip(self.scales, self.gaps, self.intervals, strict=True))
            text += f"gap at regularization scale {per_scale}; extrapolated to s = 0: "
        return (text + f"gap {self.gap:.4e}, {self.level:.0%} CI [{low:.4e}, {high:.4e}]")


def _std(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def mean_interval(values, level: float) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values (K,)``, ``K ≥ 2``, and its Student-t
    confidence interval at ``level``."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = float(special.stdtrit(len(values) - 1, 0.5 + level / 2) * _std(values)
                 / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def check_scales(scales) -> np.ndarray:
    """``regularization_scales`` checked: a non-empty sequence of distinct positive numbers,
    as an array ``(S,)``."""
    example = "such as (1.0, 0.5)"
    if isinstance(scales, (str, bytes)) or not hasattr(scales, "__iter__"):
        raise ValueError(f"regularization_scales must be a sequence of positive numbers "
                         f"{example}, got {scales!r}")
    values = [positive(s, "every entry of regularization_scales") for s in scales]
    if not values:
        raise ValueError(f"regularization_scales must hold at least one scale {example}; "
                         "(1.0,) runs the problem as given")
    if len(set(values)) < len(values):
        raise ValueError(f"regularization_scales must be distinct, got {list(values)}: a "
                         "repeated scale adds runs but nothing to the extrapolation")
    return np.array(values)


def extrapolation_weights(scales) -> np.ndarray:
    """Weights ``w (S,)`` with ``Σ_j w_j Δ(s_j)`` the value at ``s = 0`` of the least-squares
    line through the points ``(s_j, Δ(s_j))``: exact when ``Δ`` is linear in ``s``
    (``Σ_j w_j = 1``, ``Σ_j w_j s_j = 0``). Two scales give Richardson's
    ``Δ(0) = (s₁Δ(s₂) − s₂Δ(s₁)) / (s₁ − s₂)``; one scale, ``w = (1,)`` (no extrapolation).

    Parameters
    ----------
    scales : sequence of float
        Distinct positive scales ``s_j``, ``(S,)``.

    Returns
    -------
    numpy.ndarray
        ``(S,)``.
    """
    s = check_scales(scales)
    if len(s) == 1:
        return np.ones(1)
    return np.linalg.pinv(np.stack([np.ones_like(s), s], axis=1))[0]


def scaled(problem: Problem, scale: float) -> Problem:
    """``problem`` with its weight decay and entropy weight ``τ, β`` multiplied by ``scale``
    (``problem`` itself at ``scale = 1``)."""
    if scale == 1.0:
        return problem
    return Problem(problem.unit, problem.data, problem.symmetry, tau=problem.tau * scale,
                   beta=problem.beta * scale, loss=problem.loss,
                   quadrature_points=problem.quadrature_points)


def si_gap(problem: Problem, N: int, *, replicates: int = 5, seed=0, T: float = 50.0,
           dt: float = 0.05, step_scale: float = 1.0, init_std: float = 0.25,
           level: float = 0.95, backend: str = "numba",
           regularization_scales=(1.0, 0.5)) -> SIGap:
    """Estimate the SI optimality gap of ``problem`` (the module), extrapolated to vanishing
    regularization.

    Parameters
    ----------
    problem : Problem
        With data and a finite symmetry group (for the orbit-closed WI start).
    N : int
        Particles of every run (the WI start: ``N // |G|`` particles and their orbits).
    replicates : int
        ``K ≥ 2`` pairs of runs, each with its own seed.
    seed : int or SeedSequence
        Root of the replicates' seeds.
    T, dt, step_scale : float
        MF time, time step and step scale ς of the runs (Heun).
    init_std : float
        ``σ₀``: the starts' entries are ``N(0, σ₀²)`` before projection or orbit closure.
    level : float
        Confidence level of the interval, in ``(0, 1)``.
    backend : str
        As :func:`wgflow.simulate`.
    regularization_scales : sequence of float
        Distinct scales ``s_j > 0``: every replicate runs both starts at each, on ``problem``
        with ``τ, β`` multiplied by ``s_j``, with the same seeds (paired); the gap is that of
        the differences extrapolated linearly to ``s = 0`` (:func:`extrapolation_weights`).
        ``(1.0,)``: the gap of ``problem`` as given, with its regularization's bias. The
        weight decay relaxes the runs at a rate of order ``ς τ s``: ``T`` must let the
        smallest scale reach its floor (look at ``si_run`` and ``wi_run``'s risks).

    Returns
    -------
    SIGap
        Risks per scale and replicate, the gaps and their intervals, and the first replicate's
        runs at the smallest scale.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a wgflow.Problem, got {type(problem).__name__}")
    if problem.data is None or problem.symmetry is None or not problem.symmetry.group.is_finite:
        raise ValueError("problem must have data and a symmetry with a finite group (the WI "
                         "start is orbit-closed)")
    order = len(problem.symmetry.elements()[1])
    n = positive(N, "N", integer=True)
    if n < 2 * order:
        raise ValueError(f"N must be at least 2|G| = {2 * order} (the WI start holds N // |G| "
                         f"orbits), got {N!r}")
    replicates, level = replicates_and_level(replicates, level, "for a confidence interval")
    scales = check_scales(regularization_scales)
    if len(scales) > 1 and problem.tau == problem.beta == 0:
        raise ValueError("regularization_scales: the problem has tau = beta = 0, so every "
                         "scale runs the same problem; give one scale, (1.0,)")
    _, steps = step_grid(T, dt, "mf", n)
    options = dict(dynamics="mf", T=T, dt=dt, step_scale=step_scale, integrator="heun",
                   observables=("risk", "distance_to_EG", "distance_to_WI"),
                   record_every=max(1, steps // 10), backend=backend)
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    replicate_seeds = seq.spawn(replicates)
    risks = np.empty((2, len(scales), replicates))
    smallest = int(np.argmin(scales))
    for j, scale in enumerate(scales):
        at_scale = scaled(problem, scale)
        for k, rep in enumerate(replicate_seeds):
            # a fresh copy of the replicate's seed: the same streams at every scale
            fresh = np.random.SeedSequence(rep.entropy, spawn_key=rep.spawn_key,
                                           pool_size=rep.pool_size)
            init_seq, si_seq, wi_seq = fresh.spawn(3)
            si_start = laws.strongly_invariant(n, problem.symmetry, init_std, seed=init_seq)
            base = laws.gaussian(n // order, problem.unit.dim, init_std, seed=init_seq)
            runs = (simulate(at_scale, si_start, scheme="EA", noise="EG", seed=si_seq,
                             **options),
                    simulate(at_scale, laws.orbit_closed(base, problem.symmetry),
                             scheme="vanilla", noise="full", seed=wi_seq, **options))
            for i, run in enumerate(runs):
                if run.status != "complete":
                    raise ValueError("a run of the gap estimate diverged; lower dt or "
                                     "step_scale")
                risks[i, j, k] = run.observables["risk"][-1]
            if (j, k) == (smallest, 0):
                si_run, wi_run = runs
    settings = {"N": n, "replicates": replicates, "T": T, "dt": dt, "step_scale": step_scale,
                "init_std": init_std, "level": level, "backend": backend,
                "regularization_scales": scales.tolist()}
    return SIGap(scales, risks[0], risks[1], level, si_run, wi_run, problem.symmetry.basis,
                 settings)
