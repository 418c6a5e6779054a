"""The corollaries of mirror symmetries as computations: sparsity, low rank, identical units.

- :func:`lasso_by_dcs` (rescaling → sparsity): the lasso
  ``min_β ‖y − Xβ‖²/(2n) + α‖β‖₁`` solved through the reparametrisation ``β = u ⊙ v`` with
  weight decay ``(α/2)(|u|² + |v|²)`` (Ziyin's DCS, "spred"): ``min_{u⊙v=β} (|u|² + |v|²)/2 =
  ‖β‖₁``, so both problems have the same minimisers, and the smooth one is minimised by
  L-BFGS. Each pair ``(u_i, v_i) ↦ −(u_i, v_i)`` is a mirror whose constraint ``u_i = v_i = 0``
  attracts exactly when lasso's KKT condition ``|X_iᵀr|/n < α`` holds (Ziyin's
  ``γ₀ = |X_iᵀr|/(2n)`` with ``γ = α/2``): the pairs that collapse are set to 0 once below
  :data:`DCS_ZERO` (or :data:`DCS_MARGINAL` at the marginal ``γ = γ₀``).
- :func:`factorised_regression` (rotation → low rank): ``W = UVᵀ`` fitted to a target ``W*``
  with weight decay ``γ(|U|² + |V|²)``, minimising ``½‖W − W*‖²_F + 2γ‖W‖_*``: the singular
  values are soft-thresholded, ``s_i(W) = max(0, s_i(W*) − 2γ)``. The residual model
  ``W = U(I + Vᵀ)`` has no rotation symmetry and keeps full rank.
- :func:`count_atoms` (permutation → identical units): the number of distinct particles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
from scipy.cluster.hierarchy import fcluster, linkage

from solvers.descent import descend

from .._checks import as_particles, nonnegative, numeric, positive

#: ``|u_i v_i|`` below which a DCS coordinate counts as collapsed onto its constraint set,
#: relative to ``max(1, max|β|)``: L-BFGS reaches it on the collapsing pairs (exponentially
#: attracting) while an active coordinate of the lasso path stays far above
DCS_ZERO = 1e-9
#: at a penalty where a coordinate enters the path (``|X_iᵀr|/n = α``: the pair is marginal,
#: ``γ = γ₀``) the collapse is algebraic, not exponential: a pair whose constraint set attracts
#: or is marginal (``|X_iᵀr|/n ≤ α(1 + DCS_MARGINAL)``) and whose ``|u_i v_i|`` is below
#: ``DCS_MARGINAL`` (relative) is set to 0 as well
DCS_MARGINAL = 1e-6
#: L-BFGS stopping tolerances of the DCS objective (gradient and relative decrease)
DCS_GTOL = 1e-13
DCS_FTOL = 1e-15
#: offset of ``u`` that moves a warm start off every constraint set (a pair at exactly
#: u_i = v_i = 0 never leaves it: it is stationary); ``v`` keeps the sign of ``β``, so that a
#: pair can grow with either sign (a balanced start ``u = v`` stays balanced, ``β_i ≥ 0``)
DCS_OFFSET = 1e-2


def _design(X, y):
    X = numeric(X, "X", "(n, d)")
    y = numeric(y, "y", "(n,)")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X must be a design matrix of shape (n, d), got shape {X.shape}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have shape (n,) = ({X.shape[0]},) to match X with n = "
                         f"{X.shape[0]} rows, got shape {y.shape}")
    for name, arr in (("X", X), ("y", y)):
        if not np.all(np.isfinite(arr)):
            bad = tuple(np.argwhere(~np.isfinite(arr))[0].tolist())
            raise ValueError(f"{name} contains NaN or inf (first at index {bad}); remove or "
                             "impute those samples")
    return X, y


def dcs_objective(z, gram, xty, alpha: float) -> tuple[float, np.ndarray]:
    """The DCS objective and its gradient at ``z = (u, v)`` ``(2d,)``:
    ``½βᵀGβ − bᵀβ + (α/2)(|u|² + |v|²)`` with ``β = u ⊙ v``, ``G = XᵀX/n`` ``(d, d)`` and
    ``b = Xᵀy/n`` ``(d,)`` (the lasso's loss up to the constant ``|y|²/2n``)."""
    d = len(xty)
    u, v = z[:d], z[d:]
    beta = u * v
    grad_beta = gram @ beta - xty
    value = 0.5 * beta @ gram @ beta - xty @ beta + 0.5 * alpha * (u @ u + v @ v)
    return value, np.concatenate([grad_beta * v + alpha * u, grad_beta * u + alpha * v])


def lasso_by_dcs(X, y, alphas) -> np.ndarray:
    """The lasso path by the DCS reparametrisation ``β = u ⊙ v`` (module docstring).

    Parameters
    ----------
    X : array, shape (n, d)
    y : array, shape (n,)
    alphas : array, shape (P,)
        Penalties ``α > 0`` (scikit-learn's objective, no intercept); solved from the largest
        down, each warm-started from the previous solution.

    Returns
    -------
    ndarray, shape (P, d)
        ``β`` at each penalty, in the order of ``alphas``; exact zeros where the pair collapsed.
    """
    X, y = _design(X, y)
    alphas = numeric(alphas, "alphas", "(P,)")
    if alphas.ndim != 1 or len(alphas) == 0:
        raise ValueError(f"alphas must be a 1-D array of penalties, got shape {alphas.shape}")
    for a in alphas.tolist():
        positive(a, "alphas (each penalty)")
    n, d = X.shape
    gram, xty = X.T @ X / n, X.T @ y / n
    out = np.zeros((len(alphas), d))
    beta = np.zeros(d)
    for k in np.argsort(-alphas):
        root = np.sqrt(np.abs(beta))
        z0 = np.concatenate([root + DCS_OFFSET, np.sign(beta) * root])  # any sign reachable
        fit = scipy.optimize.minimize(dcs_objective, z0, args=(gram, xty, alphas[k]), jac=True,
                                      method="L-BFGS-B",
                                      options={"gtol": DCS_GTOL, "ftol": DCS_FTOL,
                                               "maxiter": 50_000, "maxcor": 30})
        beta = fit.x[:d] * fit.x[d:]
        scale = max(1.0, np.abs(beta).max())
        attracted = np.abs(X.T @ (y - X @ beta)) / n <= alphas[k] * (1.0 + DCS_MARGINAL)
        beta[(np.abs(beta) < DCS_ZERO * scale)
             | (attracted & (np.abs(beta) < DCS_MARGINAL * scale))] = 0.0
        out[k] = beta
    return out


@dataclass(frozen=True)
class FactorisedFit:
    """A factorised linear model fitted by gradient descent with weight decay.

    Attributes
    ----------
    steps : ndarray, shape (F,)
    singular_values : ndarray, shape (F, r)
        Of ``W`` at each recorded step, descending.
    W : ndarray, shape (m, r)
        The final product.
    rank : int
        Singular values above ``RANK_TOL`` times the largest, at the end.
    """

    steps: np.ndarray
    singular_values: np.ndarray
    W: np.ndarray
    rank: int


#: a singular value counts towards the rank above this fraction of the largest
RANK_TOL = 1e-6


def factorised_regression(target, weight_decay: float, residual: bool = False,
                          lr: float = 0.05, steps: int = 4000, record_every: int = 100,
                          init_std: float = 0.1, seed=0) -> FactorisedFit:
    """Gradient descent on ``½‖W − W*‖²_F + γ(|U|² + |V|²)`` for ``W = UVᵀ`` (or the residual
    ``W = U(I + Vᵀ)``), ``U, V (r, r)`` from ``N(0, init_std²)``; ``target W* (r, r)``."""
    target = numeric(target, "target", "(r, r)")
    if target.ndim != 2 or target.shape[0] != target.shape[1] or not np.all(
            np.isfinite(target)):
        raise ValueError(f"target must be a finite square matrix (r, r), got shape "
                         f"{target.shape}")
    r = target.shape[0]
    gamma = nonnegative(weight_decay, "weight_decay")
    eye = np.eye(r) if residual else np.zeros((r, r))
    rng = np.random.default_rng(seed)
    theta0 = nonnegative(init_std, "init_std") * rng.standard_normal((2 * r * r, 1))

    def product(theta):
        u, v = theta[: r * r, 0].reshape(r, r), theta[r * r:, 0].reshape(r, r)
        return u, v, u @ (eye + v.T)

    def gradient(theta, k):
        u, v, w = product(theta)
        g = w - target
        return np.concatenate([(g @ (eye + v)).ravel(), (g.T @ u).ravel()])[:, None]

    run = descend(gradient, theta0, positive(lr, "lr"), gamma,
                  positive(steps, "steps", integer=True),
                  positive(record_every, "record_every", integer=True))
    if run.diverged[0]:
        raise ValueError(f"gradient descent diverged at lr = {lr}: lower lr")
    svals = np.stack([np.linalg.svd(product(th)[2], compute_uv=False) for th in run.theta])
    final = svals[-1]
    return FactorisedFit(run.steps, svals, product(run.theta[-1])[2],
                         int(np.sum(final > RANK_TOL * max(final[0], 1e-300))))


def count_atoms(theta, tol: float) -> int:
    """Number of distinct atoms among the particles ``theta (N, D)``: clusters of single
    linkage at distance ``tol`` (particles closer than ``tol``, in chains, are one atom)."""
    theta = as_particles(theta, np.shape(theta)[-1] if np.ndim(theta) == 2 else 0)
    tol = positive(tol, "tol")
    if len(theta) == 1:
        return 1
    return int(fcluster(linkage(theta, "single"), tol, criterion="distance").max())
