"""Training schemes: how the symmetry enters the velocity field.

For particles ``θ (N, D)`` and a batch ``(x_m, y_m, w_m)`` each scheme gives the model output and
``∇_θ δR/δμ(μ)(θ_i) = Σ_m w_m J_θ σ_*(x_m, θ_i)ᵀ ∂₁ℓ(Φ(x_m), y_m)``:

- ``vanilla``: free training, ``Φ = Φ_μ``.
- ``DA``: data augmentation, each sample replaced by ``(ρ_g x, ρ̂_g y)`` with ``g ~ Haar`` drawn
  afresh per sample and per draw.
- ``DA-orbit``: the loss averaged over the whole orbit of each sample (Haar nodes of a continuous
  group), summed inside the velocity.
- ``FA``: feature averaging, ``Φ^FA_μ(x) = ∫ ρ̂_g⁻¹ Φ_μ(ρ_g x) dg = Φ_{μ^G}(x)``; its first
  variation is ``∫ E⟨ρ̂_g ∂₁ℓ(Φ^FA(X), Y), σ_*(ρ_g X, θ)⟩ dg``.
- ``EA``: equivariant architecture, particles in ``E^G``: the velocity and the noise are
  projected by ``P_G``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from solvers import layered

from ..data import Batch, orbit_batch

SCHEMES = ("vanilla", "DA", "DA-orbit", "FA", "EA")


class OrbitTerms(NamedTuple):
    """A scheme's group sum inside the velocity, for the compiled kernels: the velocity is taken
    on the samples ``(ρ_g x_m)`` with weights ``w_g w_m``; with ``average`` (FA) the residual is
    ``Σ_g w_g ρ̂_gᵀ Φ(ρ_g x_m) − y_m`` sent back as ``ρ̂_g r_m``, otherwise (full-orbit DA) it
    is ``Φ(ρ_g x_m) − ρ̂_g y_m``. Schemes without a group sum have the one identity node."""

    rho_in: np.ndarray  # (G, d, d)
    rho_out: np.ndarray  # (G, c, c)
    weights: np.ndarray  # (G,)
    average: bool


def orbit_terms(problem, scheme: str) -> OrbitTerms:
    """The group elements a scheme sums over in the velocity: all of them (Haar nodes) for
    ``DA-orbit`` and ``FA``, the identity alone otherwise."""
    unit = problem.unit
    if scheme not in ("DA-orbit", "FA"):
        return OrbitTerms(np.eye(unit.d)[None], np.eye(unit.c)[None], np.ones(1), False)
    elements, wg = problem.symmetry.elements()
    rho, rho_out, _ = problem.symmetry.matrices(elements)
    return OrbitTerms(rho, rho_out, wg, scheme == "FA")


def augment(scheme: str, batch: Batch, symmetry, rng) -> Batch:
    """The batch the scheme draws: every sample moved by its own ``g ~ Haar`` for DA (any leading
    shape), unchanged otherwise (full-orbit DA and FA sum over the group in the velocity)."""
    if scheme != "DA":
        return batch
    lead = batch.w.shape
    rho, rho_out, _ = symmetry.matrices(symmetry.group.sample(rng, int(np.prod(lead))))
    rho, rho_out = rho.reshape(*lead, *rho.shape[1:]), rho_out.reshape(*lead, *rho_out.shape[1:])
    return Batch(np.einsum("...ij,...j->...i", rho, batch.x),
                 np.einsum("...ij,...j->...i", rho_out, batch.y), batch.w)


def _feature_average(problem, theta, batch: Batch, kernels):
    """``Φ^FA(x_m) (M, c)``, the orbit batch ``(ρ_g x_m)`` (ordered ``(g, m)``) and ``ρ̂_g``."""
    symmetry, unit = problem.symmetry, problem.unit
    orbit = orbit_batch(batch, symmetry)
    elements, wg = symmetry.elements()
    rho_out = symmetry.output.matrices(elements)
    out = kernels.network_output(unit.spec, theta, orbit.x).reshape(len(wg), len(batch.w), unit.c)
    return np.einsum("g,gji,gmj->mi", wg, rho_out, out), orbit, rho_out


def model_output(problem, scheme: str, theta, x, kernels=layered) -> np.ndarray:
    """The scheme's model at ``x (M, d)``: ``Φ^FA_μ`` for FA, ``Φ_μ`` otherwise; ``(M, c)``.
    ``kernels``: :mod:`solvers.layered` (numpy reference) or :mod:`solvers.cpu.layered`."""
    if scheme != "FA":
        return kernels.network_output(problem.unit.spec, theta, x)
    dummy = Batch(x, np.zeros((len(x), problem.unit.c)), np.full(len(x), 1.0 / len(x)))
    return _feature_average(problem, theta, dummy, kernels)[0]


def risk_gradient(problem, scheme: str, theta, batch: Batch, kernels=layered) -> np.ndarray:
    """``∇_θ δR/δμ(μ)(θ_i)`` of the scheme's risk on ``batch`` (DA moves already drawn):
    ``(N, D)``. For EA the caller projects the whole velocity (gradient and weight decay) by
    ``P_G``."""
    spec = problem.unit.spec
    if scheme == "DA-orbit":
        batch = orbit_batch(batch, problem.symmetry)
    if scheme != "FA":
        residual = problem.loss_gradient(kernels.network_output(spec, theta, batch.x), batch.y)
        return kernels.vjp(spec, theta, batch.x, residual, batch.w)
    phi, orbit, rho_out = _feature_average(problem, theta, batch, kernels)
    residual = problem.loss_gradient(phi, batch.y)
    upstream = np.einsum("gij,mj->gmi", rho_out, residual).reshape(-1, problem.unit.c)
    return kernels.vjp(spec, theta, orbit.x, upstream, orbit.w)
