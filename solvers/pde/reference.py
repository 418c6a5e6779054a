"""The grid scheme's kernels in plain numpy: the reference the compiled ones
(:mod:`solvers.pde.compiled`, same calls) are tested against.

- :func:`transport`: the finite-volume divergence ``∇_h·(ρ ∇_h ξ)`` of the upwind scheme
  described in :mod:`solvers.pde`, and the largest face speed ``max |u|`` per axis;
  :func:`hybrid_transport`: the same with the hybrid flux and the linear diffusion ``β Δ_h ρ``.
- :func:`diffuse`: the implicit diffusion step, ``x = Π_i (I − λ_i D_i)⁻¹ ρ`` (``D_i`` the
  no-flux second difference along axis ``i``, :func:`solvers.pde.grid.neumann_factors`).
- :func:`weighted_output`: ``Σ_i a_i σ_*(x_m, θ_i)`` ``(M, c)``: the model of the law with
  atoms ``θ_i`` (cell centres) of masses ``a_i``.
- :func:`first_variation`: ``Σ_m ⟨q_m, σ_*(x_m, θ_i)⟩`` ``(N,)``; with ``q_m = w_m ∂₁ℓ(Φ(x_m),
  y_m)`` it is ``δR/δμ(θ_i)``.
"""

from __future__ import annotations

import numpy as np

from ..layered import unit_outputs
from .grid import neumann_factors
from .integrators import LOG_FLOOR

#: particle–sample–output numbers held at once by the unit contractions
_BLOCK_ELEMENTS = 1 << 22


def half_jumps(rho: np.ndarray, axis: int) -> np.ndarray:
    """``s_j = minmod(ρ_j − ρ_{j−1}, (ρ_{j+1} − ρ_{j−1})/4, ρ_{j+1} − ρ_j)`` along ``axis``
    (zero in the first and last cells), so that the face values ``ρ_j ± s_j`` lie between
    the neighbouring averages: non-negative when ``ρ`` is."""
    r = np.moveaxis(rho, axis, 0)
    a, b = r[1:-1] - r[:-2], r[2:] - r[1:-1]
    size = np.minimum(np.minimum(np.abs(a), np.abs(b)), 0.25 * np.abs(a + b))
    s = np.where(a * b > 0, np.sign(a) * size, 0.0)
    s = np.pad(s, [(1, 1)] + [(0, 0)] * (r.ndim - 1))
    return np.moveaxis(s, 0, axis)


def log_density(rho: np.ndarray) -> np.ndarray:
    """``log max(ρ, LOG_FLOOR)``, the shape of ``rho``."""
    return np.log(np.maximum(rho, LOG_FLOOR))


def _upwind(rho: np.ndarray, xi: np.ndarray, axis: int, h: float):
    """``(F, u)`` through the interior faces along ``axis``: the upwind flux of the
    reconstructions, ``F = u⁺ ρ^E_j + u⁻ ρ^W_{j+1}``, and the face velocity
    ``u = −(ξ_{j+1} − ξ_j)/h``."""
    s = half_jumps(rho, axis)
    n = rho.shape[axis]
    east = np.take(rho + s, np.arange(n - 1), axis=axis)
    west = np.take(rho - s, np.arange(1, n), axis=axis)
    u = -np.diff(xi, axis=axis) / h
    return np.maximum(u, 0.0) * east + np.minimum(u, 0.0) * west, u


def _divergence(flux: np.ndarray, axis: int, h: float) -> np.ndarray:
    """``−(F_{j+½} − F_{j−½})/h`` per cell, no flux through the walls."""
    pad = [(0, 0)] * flux.ndim
    pad[axis] = (1, 1)
    return -np.diff(np.pad(flux, pad), axis=axis) / h


def node_velocities(xi: np.ndarray, axis: int, h: float) -> np.ndarray:
    """``u_j = −(ξ_{j+1} − ξ_{j−1})/(2h)`` at the centres along ``axis``, one-sided
    (``−(ξ_1 − ξ_0)/h``) in the first and last cells."""
    x = np.moveaxis(xi, axis, 0)
    u = np.empty_like(x)
    u[1:-1] = (x[:-2] - x[2:]) / (2.0 * h)
    u[0], u[-1] = (x[0] - x[1]) / h, (x[-2] - x[-1]) / h
    return np.moveaxis(u, 0, axis)


def transport(rho: np.ndarray, xi: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """``∇_h·(ρ ∇_h ξ)`` (shape of ``rho``, ``(n_1[, n_2])``) with no flux through the box's
    boundary, and the face speeds ``max |u|`` per axis ``(k,)``."""
    rate, speeds = np.zeros_like(rho), []
    for axis, h in enumerate(spacing):
        flux, u = _upwind(rho, xi, axis, h)
        rate += _divergence(flux, axis, h)
        speeds.append(float(np.abs(u).max(initial=0.0)))
    return rate, np.array(speeds)


def hybrid_transport(rho: np.ndarray, xi: np.ndarray, spacing,
                     beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``∇_h·(ρ ∇_h ξ) + β Δ_h ρ`` by the hybrid flux (:mod:`solvers.pde`): through a face
    ``j + ½`` with ``u_j ≥ −2β/h`` and ``u_{j+1} ≤ 2β/h`` (node velocities,
    :func:`node_velocities`) the central ``½(ρ_j u_j + ρ_{j+1} u_{j+1})``, elsewhere the upwind
    flux of :func:`transport`; minus ``β (ρ_{j+1} − ρ_j)/h`` everywhere. Returns the rate and
    ``max |u|`` per axis over faces and centres ``(k,)``."""
    rate, speeds = np.zeros_like(rho), []
    for axis, h in enumerate(spacing):
        upwind, u = _upwind(rho, xi, axis, h)
        n = rho.shape[axis]
        node = node_velocities(xi, axis, h)
        first, rest = np.arange(n - 1), np.arange(1, n)
        left, right = np.take(node, first, axis=axis), np.take(node, rest, axis=axis)
        r_left, r_right = np.take(rho, first, axis=axis), np.take(rho, rest, axis=axis)
        central = (left >= -2.0 * beta / h) & (right <= 2.0 * beta / h)
        flux = np.where(central, 0.5 * (r_left * left + r_right * right), upwind)
        rate += _divergence(flux - beta * (r_right - r_left) / h, axis, h)
        speeds.append(float(max(np.abs(u).max(initial=0.0), np.abs(node).max())))
    return rate, np.array(speeds)


def diffuse(rho: np.ndarray, lam) -> np.ndarray:
    """``Π_i (I − λ_i D_i)⁻¹ ρ`` for ``rho (n_1[, n_2])`` and ``lam (k,)``, one axis after the
    other (the factors commute), every line of an axis swept at once."""
    x = np.array(rho, dtype=float)
    for axis, lam_i in enumerate(lam):
        r = np.moveaxis(x, axis, 0)  # a view: the sweeps write into x
        inv_pivot, ratio = neumann_factors(float(lam_i), r.shape[0])
        r[0] *= inv_pivot[0]
        for j in range(1, r.shape[0]):
            r[j] = (r[j] + lam_i * r[j - 1]) * inv_pivot[j]
        for j in range(r.shape[0] - 2, -1, -1):
            r[j] += ratio[j] * r[j + 1]
    return x


def _blocks(n: int, m: int, c: int):
    step = max(1, _BLOCK_ELEMENTS // max(1, m * c))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def weighted_output(spec, theta, weights, x) -> np.ndarray:
    """``Σ_i a_i σ_*(x_m, θ_i)``: ``(M, c)`` for ``theta (N, D)``, ``weights (N,)``,
    ``x (M, d)``."""
    out = 0.0
    for blk in _blocks(len(theta), len(x), spec.layers[-1].n_out):
        out = out + np.einsum("i,imk->mk", weights[blk], unit_outputs(spec, theta[blk], x))
    return out


def first_variation(spec, theta, x, coef) -> np.ndarray:
    """``Σ_m ⟨q_m, σ_*(x_m, θ_i)⟩``: ``(N,)`` for ``theta (N, D)``, ``x (M, d)``,
    ``coef (M, c)``."""
    return np.concatenate([np.einsum("mk,imk->i", coef, unit_outputs(spec, theta[blk], x))
                           for blk in _blocks(len(theta), len(x), coef.shape[1])])
