"""Discovering the largest subspace that supports SI laws, from training alone (the heuristic of
Maass & Fontbona).

Step ``j`` holds a subspace ``E_j`` of ``R^D`` (orthonormal basis ``B_j (D, k)``, projector
``P_j = B_j B_jᵀ``; ``E_0 = {0}`` or a given start). Particles drawn from ``N(0, s² I)`` projected
onto ``E_j`` are trained freely (vanilla: no group is used, only the problem's unit and data),
with the noise on ``E_j``, up to the horizon ``T``, ``R`` times from the same start with
independent batches and noise. The residuals ``o_i^r = (I − P_j) θ_i^r(T)`` split into a
systematic part, the replicate mean ``ō_i``, and the finite-N noise ``o_i^r − ō_i``.

- **Escape statistic**: ``e_j = RMD(ν_j, (P_j)_# ν_j)`` of the ``R·N`` final particles
  (closed form, :func:`wgflow.diagnostics.distance_to_subspace`).
- **Noise level**: the escape the noise alone produces, ``n_j² = σ̂² / (M₂(ν_j) + M₂(P_# ν_j))``
  with ``σ̂² = (1/N) Σ_i (1/(R−1)) Σ_r |o_i^r − ō_i|²`` (unbiased for ``E|o|²`` when ``E_j``
  carries the MF flow, whatever the drift: the replicate mean is removed).
- **Threshold**: if ``E_j`` carries the MF flow, the residuals are noise symmetric about 0 and
  ``F = R·mean_i|ō_i|² / σ̂²`` follows an ``F(p, p(R−1))`` law, ``p = D − k`` (one degree of
  freedom per escape direction: the particles share the batches, so they are not counted as
  independent, which makes the test conservative). The particles escape when
  ``F > F_level``, its ``level`` quantile, i.e. when
  ``e_j > d_j = n_j sqrt((F_level + R − 1) / R)``: the threshold is the noise level at the same
  N and horizon, times a factor set by the confidence level and the replicates.
- **Escape directions**: the eigenvectors ``u`` of ``C = (1/N) Σ_i ō_i ō_iᵀ`` whose eigenvalue
  exceeds the noise floor ``F₁ · uᵀ S u / R`` (``S``: the noise covariance estimated like
  ``σ̂²``, ``F₁`` the ``level`` quantile of ``F(1, R−1)``); at least the leading one.

``E_{j+1} = E_j ⊕ span(added)``; the search stops when the particles stay or ``E_j = R^D``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, special

from .. import laws
from .._checks import choice, is_real, numeric, positive
from ..diagnostics import distance_to_subspace
from ..dynamics import ORTHONORMAL_TOLERANCE, simulate, step_grid
from ..problem import Problem
from ..result import Result

DYNAMICS = ("sgd", "mf")
#: the paper's MF time of a run, the default horizon
DEFAULT_HORIZON = 20.0


@dataclass(frozen=True)
class DiscoveryStep:
    """One step of the search: the subspace ``E_j`` (``basis (D, k)``), the escape statistic
    ``escape = RMD(ν_j, (P_j)_# ν_j)`` at the horizon, the noise level ``noise_level`` (the escape
    the finite-N noise alone produces), the threshold ``threshold = d_j``, whether the particles
    ``escaped`` (``escape > threshold``), the orthonormal directions ``added (D, a)`` to ``E_j``
    (``a = 0`` when they stayed) and ``run``: the first replicate (frames at the start and at the
    horizon)."""

    basis: np.ndarray
    escape: float
    noise_level: float
    threshold: float
    escaped: bool
    added: np.ndarray
    run: Result = field(repr=False)

    @property
    def dim(self) -> int:
        """``dim E_j``."""
        return self.basis.shape[1]


@dataclass(frozen=True)
class Discovery:
    """The result of :func:`discover_subspace`: ``basis (D, k)``, an orthonormal basis of the
    final subspace; ``steps``, one :class:`DiscoveryStep` per step; ``principal_angles (m,)``:
    the principal angles (radians, decreasing) between the final subspace and ``E^G`` when the
    problem has a symmetry (``m = min(k, dim E^G)``), else ``None``; ``eg_basis``: ``E^G``'s
    basis or ``None``; ``settings``: the options of the search."""

    basis: np.ndarray
    steps: tuple
    principal_angles: np.ndarray | None
    eg_basis: np.ndarray | None
    settings: dict

    @property
    def dim(self) -> int:
        """``k``, the dimension of the subspace found."""
        return self.basis.shape[1]

    @property
    def whole_space(self) -> bool:
        """Whether the search found nothing smaller than ``R^D``."""
        return self.dim == self.basis.shape[0]

    def summary(self) -> str:
        """One line per step and the outcome, as plain text."""
        lines = [f"step {j}: dim E_{j} = {s.dim}, escape {s.escape:.3e} "
                 f"{'>' if s.escaped else '≤'} threshold {s.threshold:.3e} (noise level "
                 f"{s.noise_level:.3e}), {s.added.shape[1]} direction(s) added"
                 for j, s in enumerate(self.steps)]
        lines.append(f"found a subspace of dimension {self.dim} of R^{self.basis.shape[0]}"
                     + (" (nothing smaller than the whole space)" if self.whole_space else ""))
        if self.principal_angles is not None:
            lines.append(f"dim E^G = {self.eg_basis.shape[1]}; principal angles to E^G (rad): "
                         + ", ".join(f"{a:.3g}" for a in self.principal_angles))
        return "\n".join(lines)


def free_problem(problem: Problem) -> Problem:
    """The problem without its symmetry (the search must not use the group)."""
    return Problem(problem.unit, problem.data, None, tau=problem.tau, beta=problem.beta,
                   loss=problem.loss, quadrature_points=problem.quadrature_points)


def check_start(start, dim: int) -> np.ndarray:
    """``start`` as an orthonormal basis ``(D, k)``, ``1 ≤ k ≤ D``; ``None`` is ``E_0 = {0}``
    (``(D, 0)``)."""
    if start is None:
        return np.zeros((dim, 0))
    basis = numeric(start, "start", f"(D, k) with D = {dim}")
    if basis.ndim == 1:
        basis = basis[:, None]
    if basis.ndim != 2 or basis.shape[0] != dim or not 1 <= basis.shape[1] <= dim:
        raise ValueError(f"start must be an orthonormal basis of shape (D, k) with D = {dim} "
                         f"(the unit's parameters) and 1 ≤ k ≤ D, got shape {basis.shape}")
    defect = (np.abs(basis.T @ basis - np.eye(basis.shape[1])).max()
              if np.all(np.isfinite(basis)) else np.inf)
    if defect > ORTHONORMAL_TOLERANCE:
        raise ValueError(f"start must have orthonormal columns, but max |BᵀB − I| = "
                         f"{defect:.3g}; orthonormalize it first, e.g. start=np.linalg.qr(B)[0]")
    return basis


def replicates_and_level(replicates, level, purpose: str) -> tuple[int, float]:
    """``replicates`` checked to be an integer ≥ 2 (needed ``purpose``) and ``level`` a number
    in ``(0, 1)``."""
    replicates = positive(replicates, "replicates", integer=True)
    if replicates < 2:
        raise ValueError(f"replicates must be at least 2 {purpose}, got {replicates}")
    if not (is_real(level) and 0 < level < 1):
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    return replicates, float(level)


def random_line(dim: int, seed=0) -> np.ndarray:
    """A uniformly random line of ``R^dim``: its unit basis vector ``(dim, 1)``, a start
    for units whose parameter ``0`` is stationary (``a·σ(w·x)``: no gradient at ``θ = 0``)."""
    v = np.random.default_rng(seed).standard_normal((positive(dim, "dim", integer=True), 1))
    return v / np.linalg.norm(v)


def _check_horizon(horizon, dynamics: str, n: int, dt) -> float:
    horizon = positive(DEFAULT_HORIZON if horizon is None else horizon, "horizon")
    step = dt if dt is not None else (1.0 / n if dynamics == "sgd" else 1e-2)
    if horizon < step * (1 - 1e-9):
        raise ValueError(f"horizon = {horizon:.6g} is shorter than one step ({step:.6g}): too "
                         "short for the finite-N noise to act, so no threshold can be "
                         "calibrated; lengthen horizon")
    try:
        step_grid(horizon, dt, dynamics, n)
    except ValueError as err:
        raise ValueError(f"horizon: {err}") from None
    return horizon


def _noise_statistics(residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C, S)``: the second moment of the replicate mean ``C = (1/N) Σ_i ō_i ō_iᵀ`` and the
    noise covariance ``S = (1/N) Σ_i (1/(R−1)) Σ_r (o_i^r − ō_i)(o_i^r − ō_i)ᵀ`` of the
    residuals ``(R, N, D)``; both ``(D, D)``."""
    r, n, _ = residuals.shape
    mean = residuals.mean(axis=0)
    spread = (residuals - mean).reshape(r * n, -1)
    return mean.T @ mean / n, spread.T @ spread / (n * (r - 1))


def escape_directions(residuals: np.ndarray, basis: np.ndarray, level: float) -> np.ndarray:
    """The orthonormal escape directions ``(D, a)``, ``a ≥ 1``, of the residuals
    ``(R, N, D)`` orthogonal to ``basis (D, k)``: the eigenvectors of ``C`` above the noise
    floor (see the module), by decreasing eigenvalue."""
    c, s = _noise_statistics(residuals)
    r, dim = residuals.shape[0], basis.shape[0]
    complement = np.eye(dim) - basis @ basis.T
    lam, vec = np.linalg.eigh(complement @ c @ complement)
    order = np.argsort(lam)[::-1][:dim - basis.shape[1]]
    lam, vec = lam[order], vec[:, order]
    floor = special.fdtri(1, r - 1, level) * np.einsum("dk,de,ek->k", vec, s, vec) / r
    keep = lam > floor
    keep[0] = True
    added = complement @ vec[:, keep]
    return np.linalg.qr(added)[0]


def escape_test(problem: Problem, basis: np.ndarray, n: int, *, seed=0, dynamics: str = "sgd",
                horizon: float | None = None, replicates: int = 4, level: float = 0.99,
                init_std: float = 0.25, **options) -> DiscoveryStep:
    """One step of the search from the subspace spanned by the orthonormal ``basis (D, k)``
    (``k = 0``: the law ``δ₀``, trained without noise); ``problem`` is trained freely (its
    symmetry is dropped); the other arguments as in :func:`discover_subspace`.
    ``options`` go to :func:`wgflow.simulate` (``step_scale``, ``batch_size``, ``dt``,
    ``integrator``, ``backend``, …). Returns the step, with its directions if the particles
    escaped."""
    problem = free_problem(problem)
    dim = problem.unit.dim
    basis = check_start(basis if np.shape(basis)[-1:] != (0,) else None, dim)
    k = basis.shape[1]
    if k == dim:
        raise ValueError("basis spans the whole space: there is nothing to escape to")
    horizon = _check_horizon(horizon, dynamics, n, options.get("dt"))
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    init_seq, *run_seqs = seq.spawn(1 + replicates)
    start = laws.project(laws.gaussian(n, dim, init_std, seed=init_seq), basis @ basis.T)
    if k == 0:
        problem = Problem(problem.unit, problem.data, None, tau=problem.tau, beta=0.0,
                          loss=problem.loss, quadrature_points=problem.quadrature_points)
    noise = basis if k else "full"
    _, steps = step_grid(horizon, options.get("dt"), dynamics, n)
    runs = [simulate(problem, start, dynamics=dynamics, T=horizon, noise=noise, seed=s,
                     record_every=steps, observables=(), **options)
            for s in run_seqs]
    diverged = [r for r in runs if r.status != "complete"]
    if diverged:
        raise ValueError(f"a run of the search diverged ({diverged[0].status}); lower "
                         "step_scale or the time step dt")
    final = np.stack([r.final for r in runs])  # (R, N, D)
    projector = basis @ basis.T
    residuals = final - final @ projector
    pooled = final.reshape(-1, dim)
    escape = distance_to_subspace(pooled, projector).value
    moved = pooled @ projector
    denominator = 2.0 * (np.mean(np.sum(pooled**2, 1)) + np.mean(np.sum(moved**2, 1)))
    if not np.any(residuals):  # exactly on E_j: a stationary law, no threshold needed
        return DiscoveryStep(basis, 0.0, 0.0, 0.0, False, np.zeros((dim, 0)), runs[0])
    _, s = _noise_statistics(residuals)
    sigma2 = float(np.trace(s))
    if not sigma2 > 0:
        raise ValueError(f"the {replicates} replicates ended identical at horizon = "
                         f"{horizon:.6g}: no finite-N noise to calibrate the threshold against; "
                         "lengthen horizon, or use dynamics='sgd' or a problem with beta > 0")
    noise_level = float(np.sqrt(sigma2 / denominator))
    p = dim - k
    factor = (special.fdtri(p, p * (replicates - 1), level) + replicates - 1) / replicates
    threshold = noise_level * float(np.sqrt(factor))
    escaped = escape > threshold
    added = (escape_directions(residuals, basis, level) if escaped else np.zeros((dim, 0)))
    return DiscoveryStep(basis, float(escape), noise_level, threshold, bool(escaped), added,
                         runs[0])


def discover_subspace(problem: Problem, N: int, *, seed=0, start=None, dynamics: str = "sgd",
                      horizon: float | None = None, replicates: int = 4, level: float = 0.99,
                      init_std: float = 0.25, max_steps: int | None = None,
                      **options) -> Discovery:
    """Search the largest subspace of ``R^D`` supporting SI laws of ``problem`` (the module).

    Parameters
    ----------
    problem : Problem
        Its unit, data, ``tau`` and ``beta`` are used; its symmetry, if any, only to report the
        principal angles between the result and ``E^G``.
    N : int
        Particles per run, ``N ≥ 2``.
    seed : int or SeedSequence
        Root of every start and run of the search.
    start : array (D, k) or None
        Orthonormal basis of ``E_0``; ``None``: ``E_0 = {0}``.
    dynamics : {"sgd", "mf"}
        Finite-N SGD (default) or the MF particle flow (its noise is the entropy's, ``beta``).
    horizon : float
        MF time of each run (default :data:`DEFAULT_HORIZON`).
    replicates : int
        Runs per step from the same start, ``R ≥ 2``: they calibrate the threshold.
    level : float
        Confidence level of the escape test and the noise floor, in ``(0, 1)``.
    init_std : float
        ``s``: the start law is ``N(0, s² I)`` projected onto ``E_j``.
    max_steps : int or None
        At most this many steps (default ``D + 1``).
    **options
        Passed to :func:`wgflow.simulate` (``step_scale``, ``batch_size``, ``dt``,
        ``integrator``, ``backend``, ``dtype``, ``activation_precision``).

    Returns
    -------
    Discovery
        The final ``basis (D, k)``, the ``steps`` and the principal angles to ``E^G``.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a wgflow.Problem, got {type(problem).__name__}")
    if problem.data is None:
        raise ValueError("problem has no data: the search needs a data term to train on")
    n = positive(N, "N", integer=True)
    if n < 2:
        raise ValueError(f"N must be at least 2 particles, got {N!r}")
    choice(dynamics, DYNAMICS, "dynamics")
    replicates, level = replicates_and_level(replicates, level, "to calibrate the threshold")
    init_std = positive(init_std, "init_std")
    dim = problem.unit.dim
    max_steps = dim + 1 if max_steps is None else positive(max_steps, "max_steps", integer=True)
    basis = check_start(start, dim)
    horizon = _check_horizon(horizon, dynamics, n, options.get("dt"))
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    steps = []
    for step_seq in seq.spawn(max_steps):
        if basis.shape[1] == dim:
            break
        step = escape_test(problem, basis, n, seed=step_seq, dynamics=dynamics,
                           horizon=horizon, replicates=replicates, level=level,
                           init_std=init_std, **options)
        steps.append(step)
        if not step.escaped:
            break
        basis = np.linalg.qr(np.concatenate([basis, step.added], axis=1))[0]
    eg = None if problem.symmetry is None else problem.symmetry.basis
    angles = None
    if eg is not None and eg.shape[1] and basis.shape[1]:
        angles = linalg.subspace_angles(basis, eg)
    settings = {"N": n, "dynamics": dynamics, "horizon": horizon, "replicates": replicates,
                "level": level, "init_std": init_std, "max_steps": max_steps,
                "start_dim": check_start(start, dim).shape[1],
                **{k: v for k, v in options.items() if isinstance(v, (int, float, str))}}
    return Discovery(basis, tuple(steps), angles, eg, settings)
