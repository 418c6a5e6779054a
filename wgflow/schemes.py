"""Training schemes: how the symmetry enters the velocity field.

For particles ``θ (N, D)`` and a batch ``(x_m, y_m, w_m)`` each scheme gives the model output and
``∇_θ δR/δμ(μ)(θ_i) = Σ_m w_m J_θ σ_*(x_m, θ_i)ᵀ ∂₁ℓ(Φ(x_m), y_m)``:

- ``vanilla``: free training, ``Φ = Φ_μ``.
- ``DA``: data augmentation, each sample replaced by ``(ρ_g x, ρ̂_g y)`` with ``g ~ Haar`` drawn
  afresh per sample and per draw.
- ``DA-orbit``: the loss averaged over the whole orbit of each sample (Haar nodes of a continuous
  group).
- ``FA``: feature averaging, ``Φ^FA_μ(x) = ∫ ρ̂_g⁻¹ Φ_μ(ρ_g x) dg = Φ_{μ^G}(x)``; its first
  variation is ``∫ E⟨ρ̂_g ∂₁ℓ(Φ^FA(X), Y), σ_*(ρ_g X, θ)⟩ dg``.
- ``EA``: equivariant architecture, particles in ``E^G``: the velocity and the noise are
  projected by ``P_G``.
"""

from __future__ import annotations

import numpy as np

from .data import Batch, orbit_batch

SCHEMES = ("vanilla", "DA", "DA-orbit", "FA", "EA")


def augment(scheme: str, batch: Batch, symmetry, rng) -> Batch:
    """The batch the scheme trains on: randomly moved (DA), orbit-expanded (DA-orbit), or as is."""
    if scheme == "DA":
        rho, rho_out, _ = symmetry.matrices(symmetry.group.sample(rng, len(batch.w)))
        return Batch(np.einsum("mij,mj->mi", rho, batch.x),
                     np.einsum("mij,mj->mi", rho_out, batch.y), batch.w)
    if scheme == "DA-orbit":
        return orbit_batch(batch, symmetry)
    return batch


def _feature_average(problem, theta, batch: Batch):
    """``Φ^FA(x_m) (M, c)``, the orbit batch ``(ρ_g x_m)`` (ordered ``(g, m)``) and ``ρ̂_g``."""
    symmetry, unit = problem.symmetry, problem.unit
    orbit = orbit_batch(batch, symmetry)
    elements, wg = symmetry.elements()
    rho_out = symmetry.output.matrices(elements)
    out = unit.network(theta, orbit.x).reshape(len(wg), len(batch.w), unit.c)
    return np.einsum("g,gji,gmj->mi", wg, rho_out, out), orbit, rho_out


def model_output(problem, scheme: str, theta, x) -> np.ndarray:
    """The scheme's model at ``x (M, d)``: ``Φ^FA_μ`` for FA, ``Φ_μ`` otherwise; ``(M, c)``."""
    if scheme != "FA":
        return problem.unit.network(theta, x)
    dummy = Batch(x, np.zeros((len(x), problem.unit.c)), np.full(len(x), 1.0 / len(x)))
    return _feature_average(problem, theta, dummy)[0]


def risk_gradient(problem, scheme: str, theta, batch: Batch) -> np.ndarray:
    """``∇_θ δR/δμ(μ)(θ_i)`` of the scheme's risk on ``batch`` (already augmented): ``(N, D)``.
    For EA the caller projects the whole velocity (gradient and weight decay) by ``P_G``."""
    unit = problem.unit
    if scheme != "FA":
        residual = problem.loss_gradient(unit.network(theta, batch.x), batch.y)
        return unit.vjp(theta, batch.x, residual, batch.w)
    phi, orbit, rho_out = _feature_average(problem, theta, batch)
    residual = problem.loss_gradient(phi, batch.y)
    upstream = np.einsum("gij,mj->gmi", rho_out, residual).reshape(-1, unit.c)
    return unit.vjp(theta, orbit.x, upstream, orbit.w)
