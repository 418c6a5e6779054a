"""Problems whose mirror thresholds are known in closed form.

- :func:`quadratic_swap_problem`: the quadratic perceptron ``σ_*(x, θ) = a (w·x)²`` on
  ``x ~ N(0, s² I₂)`` under the coordinate swap, teacher ``Y = t₊ z₊² + t₋ z₋²`` with
  ``z± = x·e±``, ``e± = (1, ±1)/√2``. ``E^G = {w ∥ e₊}`` and ``(E^G)^⊥ = span(0, e₋)``.
  For particles ``θ_i = (a_i, u_i e₊)`` (:func:`quadratic_swap_operator`) the transverse
  operator of :func:`~wgflow.mirror.thresholds.transverse_spectrum` is
  ``A_ij = (4s⁴/N) g_i g_j + δ_ij 2s⁴ a_i (Ā − t₊ − 3t₋)`` with ``g_i = a_i u_i`` and
  ``Ā = (1/N) Σ a_i u_i²`` (second order in the ``e₋`` components ``v_i`` of
  ``R = ½E(Φ − Y)²``, with ``E z⁴ = 3s⁴``): a rank-one coupling through ``μ`` plus a self term.
- :func:`two_neuron_problem`: a tanh perceptron student of a two-neuron teacher, where weight
  decay merges the particles into a few atoms (the permutation symmetry's identical units).
- :class:`ScalarRescaling`: Ziyin's rescaling model ``L(u, v) = ½E(uvx − y)²`` with
  ``E x² = s²``, ``E xy = c``: the mirror ``(u, v) ↦ −(u, v)`` has ``γ₀ = |c|/2`` at the origin.
  Its minibatch gradient drives the stochastic-collapse experiment.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_particles, positive
from ..data import GaussianData, Teacher
from ..problem import Problem
from ..symmetry import Symmetry
from ..symmetry.groups import swap
from ..units import Perceptron

E_PLUS = np.array([1.0, 1.0]) / np.sqrt(2.0)
E_MINUS = np.array([1.0, -1.0]) / np.sqrt(2.0)


def quadratic_swap_problem(t_plus: float = 1.0, t_minus: float = 0.5, variance: float = 1.0,
                           tau: float = 0.0) -> Problem:
    """The quadratic perceptron under the swap of its two inputs (module docstring).

    ``θ = (a, w₁, w₂)``; the teacher is the two particles ``(2t₊, e₊)`` and ``(2t₋, e₋)``,
    exactly swap-invariant; the population is Gauss–Hermite quadrature, exact for this
    polynomial integrand.
    """
    unit = Perceptron(2, 1, "quadratic", bias=False)
    teacher = Teacher(unit, [[2.0 * t_plus, *E_PLUS], [2.0 * t_minus, *E_MINUS]])
    data = GaussianData(teacher, cov=positive(variance, "variance"))
    return Problem(unit, data, Symmetry(swap(), unit), tau=tau)


def two_neuron_problem(tau: float = 0.0) -> Problem:
    """``σ_*(x, θ) = a·tanh(w·x)`` on ``x ~ N(0, I₂)``, teacher ``(2, (1, 0.5))`` and
    ``(−2, (−0.3, 1))``, weight decay ``tau``."""
    unit = Perceptron(2, 1, "tanh", bias=False)
    teacher = Teacher(unit, [[2.0, 1.0, 0.5], [-2.0, -0.3, 1.0]])
    return Problem(unit, GaussianData(teacher), tau=tau)


def quadratic_swap_operator(theta, t_plus: float = 1.0, t_minus: float = 0.5,
                            variance: float = 1.0) -> np.ndarray:
    """The closed-form transverse operator ``A (N, N)`` of :func:`quadratic_swap_problem` at SI
    particles ``theta (N, 3)`` (``w_i ∥ e₊``), in the normal direction ``(0, e₋)``."""
    theta = as_particles(theta, 3)
    a, u = theta[:, 0], theta[:, 1:] @ E_PLUS
    s4, n = positive(variance, "variance") ** 2, len(theta)
    g = a * u
    mean = float(np.mean(a * u * u))
    return 4.0 * s4 / n * np.outer(g, g) + np.diag(2.0 * s4 * a * (mean - t_plus - 3.0 * t_minus))


class ScalarRescaling:
    """``L(u, v) = ½E(uvx − y)² = ½s²(uv)² − c·uv + ½E y²`` for ``θ = (u, v)``.

    Parameters
    ----------
    correlation : float
        ``c = E xy``.
    variance : float
        ``s² = E x²``.
    """

    def __init__(self, correlation: float = 1.0, variance: float = 1.0):
        self.c = float(correlation)
        if not np.isfinite(self.c):
            raise ValueError(f"correlation must be finite, got {correlation!r}")
        self.s2 = positive(variance, "variance")

    @property
    def gamma0(self) -> float:
        """Ziyin's threshold at the origin: ``|c|/2``."""
        return abs(self.c) / 2.0

    def value(self, theta) -> float:
        """``L(θ)`` without the constant ``½E y²``."""
        u, v = np.asarray(theta, dtype=float)
        return 0.5 * self.s2 * (u * v) ** 2 - self.c * u * v

    def gradient(self, theta, s2=None, c=None) -> np.ndarray:
        """``∇L (2, ...)``; ``s2``, ``c``: the moments of a minibatch instead of the law's."""
        u, v = np.asarray(theta, dtype=float)
        s2 = self.s2 if s2 is None else s2
        c = self.c if c is None else c
        r = s2 * u * v - c
        return np.stack([r * v, r * u])

    def sample_moments(self, rng, steps: int, batch: int, copies: int = 1):
        """Minibatch moments ``(ŝ², ĉ)``, each ``(steps, copies)``, for ``x ~ N(0, s²)`` and
        ``y = (c/s²) x + ε`` with ``ε ~ N(0, 1)`` independent."""
        batch = positive(batch, "batch", integer=True)
        x = np.sqrt(self.s2) * rng.standard_normal((steps, copies, batch))
        y = (self.c / self.s2) * x + rng.standard_normal((steps, copies, batch))
        return np.mean(x * x, axis=-1), np.mean(x * y, axis=-1)

