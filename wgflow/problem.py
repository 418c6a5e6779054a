"""A learning problem: unit, data law, symmetry, loss and the regularization of the free energy.

``F(μ) = R(μ) + τ ∫ r dμ + β ∫ μ log μ`` with ``R(μ) = E_π ℓ(Φ_μ(X), Y)``, ``r(θ) = |θ|²``.
The squared loss is ``ℓ(ŷ, y) = ½|ŷ − y|²`` (so ``∂₁ℓ = ŷ − y``; for ``c = 2`` this has the
same gradient as the mean over components of ``|ŷ − y|²``).
"""

from __future__ import annotations

import numpy as np

from ._checks import choice, nonnegative
from .data import FixedSample, GaussianData, gauss_hermite
from .symmetry import Symmetry
from .units import LayeredUnit

LOSSES = {
    "squared": (
        lambda yhat, y: 0.5 * np.sum((yhat - y) ** 2, axis=-1),
        lambda yhat, y: yhat - y,
    ),
}

#: Gauss–Hermite points per dimension used for population expectations, by input dimension.
QUADRATURE_POINTS = {1: 64, 2: 32, 3: 12}
#: Size of the fixed Monte Carlo sample standing in for the population when ``d > 3``.
POPULATION_SAMPLE = 20_000


class Problem:
    """``unit`` trained on ``data`` (a :class:`GaussianData` law, a :class:`FixedSample`, or
    ``None`` for no data term), optionally under ``symmetry``, with weight decay ``tau`` and
    entropy weight (temperature) ``beta``."""

    def __init__(self, unit: LayeredUnit, data=None, symmetry: Symmetry | None = None,
                 tau: float = 0.0, beta: float = 0.0, loss: str = "squared"):
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
        self._population = None

    @property
    def teacher(self):
        return getattr(self.data, "teacher", None)

    def loss_value(self, yhat, y):
        return LOSSES[self.loss][0](yhat, y)

    def loss_gradient(self, yhat, y):
        """``∂₁ℓ(ŷ, y)``, shape of ``yhat``."""
        return LOSSES[self.loss][1](yhat, y)

    def population(self) -> FixedSample | None:
        """The fixed sample standing for ``E_π``: Gauss–Hermite quadrature for Gaussian data with
        ``d ≤ 3``, otherwise a Monte Carlo sample of size ``POPULATION_SAMPLE`` (seed 0); the
        sample itself for fixed data; ``None`` without data."""
        if self._population is None and self.data is not None:
            if isinstance(self.data, FixedSample):
                self._population = self.data
            elif self.data.d in QUADRATURE_POINTS:
                self._population = gauss_hermite(self.data, QUADRATURE_POINTS[self.data.d])
            else:
                b = self.data.sample(np.random.default_rng(0), POPULATION_SAMPLE)
                self._population = FixedSample(b.x, b.y, b.w)
        return self._population

    def describe(self) -> dict:
        return {"unit": self.unit.describe(),
                "data": None if self.data is None else self.data.describe(),
                "symmetry": None if self.symmetry is None else self.symmetry.describe(),
                "tau": self.tau, "beta": self.beta, "loss": self.loss}
