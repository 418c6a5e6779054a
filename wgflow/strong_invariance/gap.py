"""The price of strong invariance: the best risk over SI laws against the best over WI laws.

For symmetric data the MF flow from a WI law stays WI and decreases the free energy among WI
laws; from an SI law (equivalently, EA) it stays SI and decreases it among SI laws (Maass &
Fontbona). Long MF runs from both kinds of start estimate the two optima; the SI optimality gap
is ``Δ = R_SI − R_WI ≥ 0`` at the end of the runs. Every SI law is WI, so ``Δ = 0`` when the
best WI law can be matched by an SI one (the paper's SI teacher), and ``Δ > 0`` for a WI target
that SI units cannot represent (the paper's counterexample, :func:`counterexample`:
``σ(x₁) + σ(x₂)`` under the coordinate swap, which no ridge function of ``x₁ + x₂`` matches).

Each replicate ``k`` runs, with its own seed, the SI start ``(P_G)_# N(0, s² I)`` under EA with
the noise on ``E^G`` and the orbit-closed (exactly WI) start ``{M_g θ_i}`` of ``N/|G|`` Gaussian
particles under vanilla with full noise: the MF particle flow, Heun, the population by
Gauss–Hermite quadrature (exactly symmetric for permutation groups). The gap is the mean of the
paired differences ``Δ_k = R_SI,k − R_WI,k`` with a Student-t confidence interval (``K − 1``
degrees of freedom).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from .. import laws
from .._checks import positive
from ..data import GaussianData, Teacher
from ..dynamics import simulate, step_grid
from ..groups import swap
from ..problem import Problem
from ..result import Result
from ..symmetry import Symmetry
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
    """The SI optimality gap of a problem: ``si_risks (K,)`` and ``wi_risks (K,)``, the final
    population risks of the ``K`` replicates from SI and WI starts; ``gap``, the mean of
    ``si_risks − wi_risks``, with its confidence ``interval (low, high)`` at ``level``;
    ``si_run`` and ``wi_run``: the first replicate's runs (their particles picture both optima);
    ``eg_basis (D, dim E^G)``; ``settings``: the options."""

    si_risks: np.ndarray
    wi_risks: np.ndarray
    gap: float
    interval: tuple
    level: float
    si_run: Result = field(repr=False)
    wi_run: Result = field(repr=False)
    eg_basis: np.ndarray
    settings: dict

    @property
    def positive(self) -> bool:
        """Whether the interval lies above 0."""
        return self.interval[0] > 0

    def summary(self) -> str:
        """Both optima, the gap and its interval, as one line of text."""
        return (f"best risk over SI laws {self.si_risks.mean():.4e} (± {_std(self.si_risks):.1e}), "
                f"over WI laws {self.wi_risks.mean():.4e} (± {_std(self.wi_risks):.1e}), "
                f"{len(self.si_risks)} replicates; gap {self.gap:.4e}, {self.level:.0%} CI "
                f"[{self.interval[0]:.4e}, {self.interval[1]:.4e}]")


def _std(values) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def mean_interval(values, level: float) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values (K,)``, ``K ≥ 2``, and its Student-t
    confidence interval at ``level``."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + level / 2, len(values) - 1) * _std(values)
                 / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def si_gap(problem: Problem, N: int, *, replicates: int = 5, seed=0, T: float = 50.0,
           dt: float = 0.05, step_scale: float = 1.0, init_std: float = 0.25,
           level: float = 0.95, backend: str = "numba") -> SIGap:
    """Estimate the SI optimality gap of ``problem`` (the module).

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
        ``s``: the starts' entries are ``N(0, s²)`` before projection or orbit closure.
    level : float
        Confidence level of the interval, in ``(0, 1)``.
    backend : str
        As :func:`wgflow.simulate`.

    Returns
    -------
    SIGap
        Risks per replicate, the gap and its interval, and the first replicate's runs.
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
    _, steps = step_grid(T, dt, "mf", n)
    options = dict(dynamics="mf", T=T, dt=dt, step_scale=step_scale, integrator="heun",
                   observables=("risk", "distance_to_EG", "distance_to_WI"),
                   record_every=max(1, steps // 10), backend=backend)
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    si_runs, wi_runs = [], []
    for rep in seq.spawn(replicates):
        init_seq, si_seq, wi_seq = rep.spawn(3)
        si_start = laws.strongly_invariant(n, problem.symmetry, init_std, seed=init_seq)
        base = laws.gaussian(n // order, problem.unit.dim, init_std, seed=init_seq)
        si_runs.append(simulate(problem, si_start, scheme="EA", noise="EG", seed=si_seq,
                                **options))
        wi_runs.append(simulate(problem, laws.orbit_closed(base, problem.symmetry),
                                scheme="vanilla", noise="full", seed=wi_seq, **options))
    for run in si_runs + wi_runs:
        if run.status != "complete":
            raise ValueError("a run of the gap estimate diverged; lower dt or step_scale")
    si_risks = np.array([r.observables["risk"][-1] for r in si_runs])
    wi_risks = np.array([r.observables["risk"][-1] for r in wi_runs])
    gap, low, high = mean_interval(si_risks - wi_risks, level)
    settings = {"N": n, "replicates": replicates, "T": T, "dt": dt, "step_scale": step_scale,
                "init_std": init_std, "level": level, "backend": backend}
    return SIGap(si_risks, wi_risks, gap, (low, high), level, si_runs[0], wi_runs[0],
                 problem.symmetry.basis, settings)
