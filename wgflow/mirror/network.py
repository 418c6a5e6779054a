"""The loss of a finite network of ``N`` units, as a function of all its parameters at once.

``Θ = (θ_1, …, θ_N) ∈ R^{N·D}`` (unit ``i`` is ``Θ[iD:(i+1)D]``), ``μ_Θ = (1/N) Σ_i δ_{θ_i}``
and ``L(Θ) = R(μ_Θ) = E_π ℓ(Φ_N(X), Y)`` with ``E_π`` the problem's population expectation.
Its gradient is ``∇_{θ_i} L = (1/N) ∇_θ δR/δμ(μ_Θ)(θ_i)``, so the MF velocity field of particle
``i`` is ``−N ∇_{θ_i} L`` (weight decay aside): the Hessian ``N ∇²L`` is the linearisation of the
particle flow, the coupling through ``μ`` included.
"""

from __future__ import annotations

import numpy as np

from .._checks import positive
from ..problem import Problem
from ..symmetry.schemes import risk_gradient
from .reflections import MirrorError


class NetworkLoss:
    """``L(Θ) = R(μ_Θ)`` of ``n_units`` units of ``problem`` (squared loss, no weight decay).

    Parameters
    ----------
    problem : Problem
        Needs data (its population expectation stands for ``E_π``).
    n_units : int
        ``N``; ``Θ`` has ``N·D`` entries.
    """

    def __init__(self, problem: Problem, n_units: int):
        if not isinstance(problem, Problem):
            raise TypeError(f"problem must be a wgflow.Problem, got {type(problem).__name__}")
        if problem.data is None:
            raise MirrorError("problem has no data: a mirror symmetry of the loss needs a data "
                              "term; build the Problem with data=GaussianData(...) or a "
                              "FixedSample")
        self.problem = problem
        self.n_units = positive(n_units, "n_units", integer=True)
        self.dim = problem.unit.dim * self.n_units

    def _units(self, theta) -> np.ndarray:
        flat = np.asarray(theta, dtype=float)
        if flat.shape != (self.dim,):
            raise ValueError(f"theta must be a flat vector of N·D = {self.dim} parameters, got "
                             f"shape {flat.shape}")
        return flat.reshape(self.n_units, self.problem.unit.dim)

    def value(self, theta) -> float:
        """``L(Θ)`` for ``theta (N·D,)``."""
        batch = self.problem.population().batch
        phi = self.problem.unit.network(self._units(theta), batch.x)
        return float(batch.w @ self.problem.loss_value(phi, batch.y))

    def gradient(self, theta) -> np.ndarray:
        """``∇L(Θ) (N·D,)``: ``(1/N) ∇_θ δR/δμ(μ_Θ)(θ_i)`` stacked over the units."""
        units = self._units(theta)
        grad = risk_gradient(self.problem, "vanilla", units, self.problem.population().batch)
        return grad.ravel() / self.n_units
