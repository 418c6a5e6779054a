"""When a mirror's constraint set attracts: Ziyin's weight-decay threshold and the transverse
stability of ``E^G`` under the MF flow.

**Finite parameters.** For a loss ``L`` with an O-mirror symmetry and weight decay ``γ|θ|²``, at a
point ``θ`` of the constraint set ``Oᵀθ = 0`` the gradient has no component along ``O`` and the
Hessian has no block mixing ``O`` with its complement; the constrained point attracts in the
``O`` directions iff ``Oᵀ∇²L O + 2γI ≻ 0``, i.e. for ``γ > γ₀ = max(0, −λ_min(Oᵀ∇²L O)/2)``.

**MF flow.** For ``N`` particles of an SI law (every ``θ_i ∈ E^G``) the velocity
``v_i = −ς[∇_θ δR/δμ(μ)(θ_i) + 2τθ_i]`` has the Jacobian ``−ς(N∇²_Θ R(μ_Θ) + 2τI)``: the
self term ``∇²δR/δμ(μ)(θ_i)`` on the diagonal blocks plus the coupling through ``μ``
(``(1/N)∇_θ∇_θ' K``-like terms, ``K`` the interaction kernel) everywhere. Restricted to the
normal directions ``O`` of ``E^G`` (a basis of ``(E^G)^⊥``) at every particle it is
``−ς(A + 2τI)`` with ``A = (I_N ⊗ O)ᵀ N∇²R (I_N ⊗ O)`` ``(Nk, Nk)``, decoupled from the tangent
directions for symmetric data; the SI law attracts (linearly) for ``τ > τ₀ = max(0,
−λ_min(A)/2)``, and ``−ς(λ + 2τ)`` are the transverse growth rates.

Hessians are central finite differences of the hand-written gradients
(:func:`directional_hessian`) unless an exact one is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_particles, positive
from .network import NetworkLoss
from .reflections import Mirror, MirrorError, orthonormal_columns

#: central-difference step of the directional Hessians, relative to ``max(1, |θ|)``
FD_STEP = 1e-5
#: ``|Oᵀθ|`` tolerated for a point "on" the constraint set, relative to ``max(1, |θ|)``
CONSTRAINT_TOL = 1e-8


def directional_hessian(gradient, theta, directions, step: float = FD_STEP) -> np.ndarray:
    """``∇²L(θ) V`` by central differences of ``gradient``: ``(D, k)`` for ``directions V (D, k)``.

    Column ``j`` is ``[∇L(θ + hV_j) − ∇L(θ − hV_j)] / 2h`` with ``h = step·max(1, |θ|)``.
    """
    theta = np.asarray(theta, dtype=float)
    h = positive(step, "step") * max(1.0, float(np.linalg.norm(theta)))
    cols = [(np.asarray(gradient(theta + h * v)) - np.asarray(gradient(theta - h * v))) / (2 * h)
            for v in np.asarray(directions, dtype=float).T]
    return np.stack(cols, axis=1)


@dataclass(frozen=True)
class Threshold:
    """Ziyin's weight-decay threshold of one mirror at one point of its constraint set.

    Attributes
    ----------
    hessian : ndarray, shape (k, k)
        ``Oᵀ∇²L O`` (symmetrized).
    eigenvalues : ndarray, shape (k,)
        Its spectrum, ascending.
    gamma0 : float
        ``max(0, −λ_min/2)``: the constraint set attracts for ``γ > gamma0``.
    mixing : float
        ``max |P_⊥ ∇²L O|`` over the complement ``P_⊥ = I − OOᵀ`` (0 up to the differencing
        error when the mirror is a symmetry: the O block decouples).
    """

    hessian: np.ndarray
    eigenvalues: np.ndarray
    gamma0: float
    mixing: float


def _on_constraint(theta, O, name="theta"):
    off = float(np.linalg.norm(theta @ O))
    if off > CONSTRAINT_TOL * max(1.0, float(np.linalg.norm(theta))):
        raise MirrorError(f"{name} must lie on the constraint set Oᵀθ = 0 (|Oᵀθ| = {off:.3g}); "
                          f"project it first: θ − O(Oᵀθ)")


def _threshold(block: np.ndarray, O: np.ndarray) -> Threshold:
    hess = O.T @ block
    hess = 0.5 * (hess + hess.T)
    lam = np.linalg.eigvalsh(hess)
    mixing = float(np.abs(block - O @ (O.T @ block)).max())
    return Threshold(hess, lam, max(0.0, -float(lam[0]) / 2.0), mixing)


def mirror_threshold(gradient, theta, O, hessian=None, step: float = FD_STEP) -> Threshold:
    """``γ₀ = max(0, −λ_min(Oᵀ∇²L O)/2)`` at ``theta (D,)`` on the constraint set ``Oᵀθ = 0``.

    Parameters
    ----------
    gradient : callable
        ``θ (D,) -> ∇L(θ) (D,)`` (no weight decay).
    theta : array, shape (D,)
    O : array (D, k) or Mirror
    hessian : callable, optional
        ``θ -> ∇²L(θ) (D, D)``, exact; otherwise central differences of ``gradient``.
    """
    basis = O.O if isinstance(O, Mirror) else orthonormal_columns(O, np.size(theta))
    theta = np.asarray(theta, dtype=float).ravel()
    if theta.shape != (basis.shape[0],) or not np.all(np.isfinite(theta)):
        raise ValueError(f"theta must be a finite vector of length D = {basis.shape[0]} (the "
                         f"rows of O), got shape {np.shape(theta)}")
    _on_constraint(theta, basis)
    block = (np.asarray(hessian(theta), dtype=float) @ basis if hessian is not None
             else directional_hessian(gradient, theta, basis, step))
    return _threshold(block, basis)


@dataclass(frozen=True)
class TransverseSpectrum:
    """The linearised MF flow across ``E^G`` at an SI configuration ``θ (N, D)``.

    Attributes
    ----------
    operator : ndarray, shape (N·k, N·k)
        ``A = (I_N ⊗ O)ᵀ N∇²_Θ R (I_N ⊗ O)``, ``O (D, k)`` a basis of ``(E^G)^⊥``; particle-major.
    eigenvalues : ndarray, shape (N·k,)
        Its spectrum, ascending; the transverse growth rates are ``−ς(λ + 2τ)``.
    tau0 : float
        ``max(0, −λ_min/2)``: the SI law attracts for weight decay ``τ > tau0``.
    mixing : float
        Largest tangent component of ``N∇²R (I ⊗ O)`` (0 for symmetric data, up to rounding).
    basis : ndarray, shape (D, k)
        The normal directions ``O`` used.
    """

    operator: np.ndarray
    eigenvalues: np.ndarray
    tau0: float
    mixing: float
    basis: np.ndarray

    def margin(self, tau: float) -> float:
        """``λ_min + 2τ``: positive when the SI law attracts at weight decay ``τ``."""
        return float(self.eigenvalues[0]) + 2.0 * float(tau)


def normal_basis(symmetry) -> np.ndarray:
    """Orthonormal basis ``(D, D − dim E^G)`` of ``(E^G)^⊥``."""
    lam, vec = np.linalg.eigh(np.eye(symmetry.unit.dim) - symmetry.projector)
    return vec[:, lam > 0.5]


def transverse_spectrum(problem, theta, O=None, step: float = FD_STEP) -> TransverseSpectrum:
    """The spectrum of the MF flow linearised across ``E^G`` at the particles ``theta (N, D)``.

    Parameters
    ----------
    problem : Problem
        With data and (unless ``O`` is given) a symmetry.
    theta : array, shape (N, D)
        An SI configuration: ``Oᵀθ_i = 0`` for every particle.
    O : array (D, k) or Mirror, optional
        The normal directions; default :func:`normal_basis` of the problem's symmetry.
    """
    if O is None:
        if problem.symmetry is None:
            raise MirrorError("transverse_spectrum needs O, or a problem with a symmetry whose "
                              "E^G gives the normal directions")
        O = normal_basis(problem.symmetry)
    dim = problem.unit.dim
    basis = O.O if isinstance(O, Mirror) else orthonormal_columns(O, dim)
    theta = as_particles(theta, dim)
    n = theta.shape[0]
    lifted = np.kron(np.eye(n), basis)
    flat = theta.ravel()
    _on_constraint(flat, lifted)
    loss = NetworkLoss(problem, n)
    block = n * directional_hessian(loss.gradient, flat, lifted, step)
    result = _threshold(block, lifted)
    return TransverseSpectrum(result.hessian, result.eigenvalues, result.gamma0, result.mixing,
                              basis)
