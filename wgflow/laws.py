"""Initial laws of the particles ``θ_i ∈ R^D``, as particle arrays ``(N, D)``.

- :func:`gaussian`: i.i.d. ``N(mean, std² I)``.
- :func:`strongly_invariant`: a Gaussian sample projected onto ``E^G`` (an SI law: ``μ(E^G) = 1``).
- :func:`orbit_closed`: ``{M_g θ_i}`` over a finite group: exactly weakly invariant
  (``(M_g)_# μ = μ``), ``N·|G|`` particles.
- :func:`given`: user particles, validated.
"""

from __future__ import annotations

import numpy as np

from ._checks import as_particles, nonnegative, positive


def gaussian(n: int, dim: int, std: float = 1.0, mean=0.0, seed=0) -> np.ndarray:
    """``n`` i.i.d. ``N(mean, std² I_D)`` particles: ``(n, dim)``."""
    n = positive(n, "N", integer=True)
    dim = positive(dim, "D", integer=True)
    std = nonnegative(std, "std")
    rng = np.random.default_rng(seed)
    return np.asarray(mean, dtype=float) + std * rng.standard_normal((n, dim))


def project(theta, projector) -> np.ndarray:
    """``P θ_i`` for every particle (``projector`` ``(D, D)``, e.g. ``symmetry.projector``)."""
    projector = np.asarray(projector, dtype=float)
    return as_particles(theta, projector.shape[0]) @ projector.T


def strongly_invariant(n: int, symmetry, std: float = 1.0, seed=0) -> np.ndarray:
    """``n`` particles of ``(P_G)_# N(0, std² I)``, supported on ``E^G``."""
    return project(gaussian(n, symmetry.unit.dim, std, seed=seed), symmetry.projector)


def orbit_closed(theta, symmetry) -> np.ndarray:
    """``{M_g θ_i}`` ordered ``(g, i)``: ``(|G|·N, D)``; needs a finite group."""
    if not symmetry.group.is_finite:
        raise ValueError("orbit_closed needs a finite group; SO(2) orbits are not finite")
    theta = as_particles(theta, symmetry.unit.dim)
    m = symmetry.action.matrices(symmetry.elements()[0])
    return np.einsum("gij,nj->gni", m, theta).reshape(-1, theta.shape[1])


def given(theta, dim: int) -> np.ndarray:
    """User particles, checked: shape ``(N, dim)``, finite."""
    return as_particles(theta, dim, "init").copy()
