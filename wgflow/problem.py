"""A learning problem: unit, data law, symmetry, loss and the regularization of the free energy.

``F(μ) = R(μ) + τ ∫ r dμ + β ∫ μ log μ`` with ``R(μ) = E_π ℓ(Φ_μ(X), Y)``, ``r(θ) = |θ|²``.
The squared loss is ``ℓ(ŷ, y) = ½|ŷ − y|²`` (so ``∂₁ℓ = ŷ − y``; for ``c = 2`` this has the
same gradient as the mean over components of ``|ŷ − y|²``).

The population expectation ``E_π`` (the risk, and the MF velocity field) is taken on a fixed
weighted sample (:meth:`Problem.population`): tensor Gauss–Hermite quadrature with ``n`` points
per dimension for Gaussian data (exact only when the integrand is a polynomial of degree
``< 2n`` in each coordinate: identity and quadratic activations), a Monte Carlo sample in higher
dimension, or the data itself for a fixed sample. :func:`quadrature_error` estimates the error of
the quadrature against a rule with twice the points; :func:`population_record` does so once per
run and warns above :data:`QUADRATURE_TOL`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from solvers import layered

from ._checks import choice, nonnegative, positive
from .data import MAX_QUADRATURE_POINTS, FixedSample, GaussianData, gauss_hermite
from .symmetry import Symmetry
from .symmetry.schemes import model_output, risk_gradient
from .units import LayeredUnit

LOSSES = {
    "squared": (
        lambda yhat, y: 0.5 * np.sum((yhat - y) ** 2, axis=-1),
        lambda yhat, y: yhat - y,
    ),
}

#: Gauss–Hermite points per dimension used for population expectations, by input dimension
#: (the default of ``Problem(quadrature_points=None)``).
QUADRATURE_POINTS = {1: 64, 2: 32, 3: 12}
#: Size of the fixed Monte Carlo sample standing in for the population when ``d > 3``.
POPULATION_SAMPLE = 20_000
#: Estimated relative error of the quadrature (risk or velocity field) above which a run warns.
QUADRATURE_TOL = 1e-4
#: Particle–node interactions (``N × nodes × group elements``) the error estimate may cost; above
#: it the estimate is taken on an evenly strided subset of the particles.
ESTIMATE_INTERACTIONS = 10**8


class QuadratureWarning(UserWarning):
    """The population quadrature is estimated to be less accurate than :data:`QUADRATURE_TOL`."""


class Problem:
    """``unit`` trained on ``data`` (a :class:`GaussianData` law, a :class:`FixedSample`, or
    ``None`` for no data term), optionally under ``symmetry``, with weight decay ``tau`` and
    entropy weight (temperature) ``beta``. ``quadrature_points``: Gauss–Hermite points per
    dimension ``n`` of the population expectation for Gaussian data (``n^d`` nodes, at most
    ``MAX_QUADRATURE_POINTS``); ``None``: ``QUADRATURE_POINTS[d]`` for ``d ≤ 3``, a Monte Carlo
    sample of size ``POPULATION_SAMPLE`` above."""

    def __init__(self, unit: LayeredUnit, data=None, symmetry: Symmetry | None = None,
                 tau: float = 0.0, beta: float = 0.0, loss: str = "squared",
                 quadrature_points: int | None = None):
        if not isinstance(unit, LayeredUnit):
            raise ValueError(f"unit must be a wgflow unit (Perceptron, MatrixUnit, MLPUnit), "
                             f"got {type(unit).__name__}")
        if data is not None:
            if not isinstance(data, (GaussianData, FixedSample)):
                raise ValueError("data must be a GaussianData law, a FixedSample or None")
            if (data.d, data.c) != (unit.d, unit.c):
                raise ValueError(f"data has (d, c) = ({data.d}, {data.c}) but the unit expects "
                                 f"({unit.d}, {unit.c}); make the dimensions agree")
        if symmetry is not None and symmetry.unit is not unit:
            raise ValueError("symmetry was built for another unit: pass the same unit object")
        self.unit, self.data, self.symmetry = unit, data, symmetry
        self.tau, self.beta = nonnegative(tau, "tau"), nonnegative(beta, "beta")
        self.loss = choice(loss, LOSSES, "loss")
        if quadrature_points is not None:
            quadrature_points = positive(quadrature_points, "quadrature_points", integer=True)
            if not isinstance(data, GaussianData):
                raise ValueError("quadrature_points applies to GaussianData only (a fixed sample "
                                 "is its own population); leave it None")
            if quadrature_points**data.d > MAX_QUADRATURE_POINTS:
                raise ValueError(f"quadrature_points = {quadrature_points} gives "
                                 f"{quadrature_points}^{data.d} nodes (> {MAX_QUADRATURE_POINTS})"
                                 "; use fewer points")
        self.quadrature_points = quadrature_points
        self._population = None

    @property
    def teacher(self):
        """The teacher network of the data law, or ``None``."""
        return getattr(self.data, "teacher", None)

    def loss_value(self, yhat, y):
        """``ℓ(ŷ, y)`` per sample: ``yhat``, ``y`` of shape ``(..., c)`` → ``(...)``."""
        return LOSSES[self.loss][0](yhat, y)

    def loss_gradient(self, yhat, y):
        """``∂₁ℓ(ŷ, y)``, shape of ``yhat``."""
        return LOSSES[self.loss][1](yhat, y)

    @property
    def points_per_dim(self) -> int | None:
        """Gauss–Hermite points per dimension of the population, ``None`` when it is not a
        quadrature."""
        if not isinstance(self.data, GaussianData):
            return None
        return self.quadrature_points or QUADRATURE_POINTS.get(self.data.d)

    @property
    def population_method(self) -> str | None:
        """How :meth:`population` takes ``E_π``: ``"quadrature"`` (Gauss–Hermite),
        ``"monte-carlo"`` (a fixed random sample of a Gaussian law) or ``"fixed-sample"`` (the
        data is that sample); ``None`` without data."""
        if self.data is None:
            return None
        if isinstance(self.data, FixedSample):
            return "fixed-sample"
        return "quadrature" if self.points_per_dim else "monte-carlo"

    def population(self) -> FixedSample | None:
        """The fixed sample standing for ``E_π``: Gauss–Hermite quadrature with
        :attr:`points_per_dim` points per dimension for Gaussian data (by default for
        ``d ≤ 3``), otherwise a Monte Carlo sample of size ``POPULATION_SAMPLE`` (seed 0); the
        sample itself for fixed data; ``None`` without data."""
        if self._population is None and self.data is not None:
            if isinstance(self.data, FixedSample):
                self._population = self.data
            elif self.points_per_dim:
                self._population = gauss_hermite(self.data, self.points_per_dim)
            else:
                b = self.data.sample(np.random.default_rng(0), POPULATION_SAMPLE)
                self._population = FixedSample(b.x, b.y, b.w)
        return self._population

    def describe(self) -> dict:
        """A JSON-able description of the problem: unit, data, symmetry, ``τ``, ``β``, loss,
        quadrature points."""
        return {"unit": self.unit.describe(),
                "data": None if self.data is None else self.data.describe(),
                "symmetry": None if self.symmetry is None else self.symmetry.describe(),
                "tau": self.tau, "beta": self.beta, "loss": self.loss,
                "quadrature_points": self.quadrature_points}


def _relative(approx, reference) -> float:
    """``‖approx − reference‖ / ‖reference‖`` (Frobenius); 0 when both vanish."""
    num, den = float(np.linalg.norm(approx - reference)), float(np.linalg.norm(reference))
    return num / den if den > 0 else (0.0 if num == 0 else math.inf)


def _risk_and_velocity(problem, scheme, theta, batch, kernels):
    """``R(μ)`` of the scheme's model and its data velocity ``∇_θ δR/δμ(μ)(θ_i)`` ``(N, D)``
    (projected by ``P_G`` for EA) on ``batch``."""
    phi = model_output(problem, scheme, theta, batch.x, kernels).astype(float)
    risk = float(batch.w @ problem.loss_value(phi, batch.y))
    velocity = risk_gradient(problem, "DA-orbit" if scheme == "DA" else scheme, theta, batch,
                             kernels)
    return risk, (velocity @ problem.symmetry.projector if scheme == "EA" else velocity)


def quadrature_error(problem: Problem, theta, scheme: str = "vanilla",
                     kernels=layered) -> dict | None:
    """Estimated relative error of the population quadrature at the particles ``theta (N, D)``.

    With ``μ = (1/N) Σ_i δ_{θ_i}``, ``R_n`` the scheme's risk and ``V_n = ∇_θ δR/δμ(μ)(θ_i)``
    ``(N, D)`` its data velocity (:func:`wgflow.symmetry.schemes.risk_gradient`; the expected
    velocity over the orbit for DA, projected by ``P_G`` for EA) on the tensor rule with ``n``
    points per dimension, and ``R_m``, ``V_m`` on the rule with ``m = 2n`` points (or the largest
    ``m > n`` with ``m^d ≤ MAX_QUADRATURE_POINTS``):
    ``risk = |R_n − R_m| / |R_m|``, ``velocity = ‖V_n − V_m‖_F / ‖V_m‖_F``; for smooth integrands
    the finer rule is far more accurate, so these estimate the ``n``-point rule's error. Above
    ``ESTIMATE_INTERACTIONS`` particle–node interactions the particles are an evenly strided
    subset of ``theta`` (their own empirical law). ``kernels``: :mod:`solvers.layered` or
    :mod:`solvers.cpu.layered`.

    Returns ``{"points_per_dim": n, "reference_points_per_dim": m, "particles", "risk",
    "velocity"}`` (errors to two significant digits), ``{..., "reference_points_per_dim": None}``
    when no finer rule is affordable, or ``None`` when the population is not a quadrature.
    """
    n = problem.points_per_dim
    if n is None:
        return None
    d = problem.data.d
    m = min(2 * n, round(MAX_QUADRATURE_POINTS ** (1.0 / d)))
    while m**d > MAX_QUADRATURE_POINTS:
        m -= 1
    record = {"points_per_dim": n, "reference_points_per_dim": None, "particles": None,
              "risk": None, "velocity": None}
    if m <= n:
        return record
    theta = np.asarray(theta, dtype=float)
    group = 1 if scheme not in ("FA", "DA", "DA-orbit") else len(problem.symmetry.elements()[1])
    keep = max(1, ESTIMATE_INTERACTIONS // (m**d * group))
    if len(theta) > keep:
        theta = theta[np.unique(np.linspace(0, len(theta) - 1, keep).round().astype(int))]
    coarse = _risk_and_velocity(problem, scheme, theta, problem.population().batch, kernels)
    fine = _risk_and_velocity(problem, scheme, theta, gauss_hermite(problem.data, m).batch,
                              kernels)
    record.update(reference_points_per_dim=m, particles=len(theta),
                  risk=float(f"{_relative(coarse[0], fine[0]):.2g}"),
                  velocity=float(f"{_relative(coarse[1], fine[1]):.2g}"))
    return record


def population_record(problem: Problem, theta, scheme: str = "vanilla", kernels=layered,
                      estimate: bool = True) -> dict | None:
    """How a run takes ``E_π``: ``{"method", "size"}`` (nodes or samples; for a quadrature also
    ``"points_per_dim"``, and, when ``estimate``, the :func:`quadrature_error` at
    ``theta (N, D)`` under ``"error"``); ``None`` without data. Warns
    (:class:`QuadratureWarning`) when an estimated error exceeds :data:`QUADRATURE_TOL` or no
    finer rule is affordable to estimate it."""
    pop = problem.population()
    if pop is None:
        return None
    record = {"method": problem.population_method, "size": len(pop.batch.w)}
    if problem.population_method != "quadrature":
        return record
    record["points_per_dim"] = problem.points_per_dim
    if not estimate:
        return record
    error = quadrature_error(problem, theta, scheme, kernels)
    record["error"] = error
    n, d = error["points_per_dim"], problem.data.d
    if error["reference_points_per_dim"] is None:
        warnings.warn(f"the Gauss–Hermite population quadrature ({n} points per dimension, "
                      f"{n}^{d} nodes) has no affordable finer rule to estimate its error; "
                      "its accuracy is unknown", QuadratureWarning, stacklevel=4)
    elif max(error["risk"], error["velocity"]) > QUADRATURE_TOL:
        warnings.warn(f"the Gauss–Hermite population quadrature ({n} points per dimension) has an "
                      f"estimated relative error {error['risk']:.1e} on the risk and "
                      f"{error['velocity']:.1e} on the velocity field at the initial particles "
                      f"(tolerance QUADRATURE_TOL = {QUADRATURE_TOL:g}); raise the points per "
                      f"dimension, now {n}: Problem(quadrature_points=...), config key "
                      "problem.quadrature_points", QuadratureWarning,
                      stacklevel=4)
    return record
