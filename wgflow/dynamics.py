"""``simulate``: the MF particle flow and finite-N SGD, under any scheme.

Each particle follows ``dθ = −ς(t) [∇_θ δR/δμ(μ_t)(θ) + τ ∇r(θ)] dt + sqrt(2βς(t)) dB``, the
expectation ``E_π`` taken by an expectation object (:mod:`wgflow.data`):

- ``dynamics="mf"``: the MF limit, with the population expectation by default (Gauss–Hermite
  quadrature for Gaussian data in ``d ≤ 3``), time step ``dt``.
- ``dynamics="sgd"``: finite-N SGD in MF scaling — online minibatches of ``batch_size`` fresh
  samples and ``dt = ε_N = 1/N``, so that step ``k`` is MF time ``k ε_N`` and the per-particle step
  is ``s = ε_N ς``; ``T·N`` steps reach MF time ``T``. This is Euler–Maruyama on the minibatch
  velocity: ``θ_i ← θ_i − s [J_θ σ_*ᵀ ∂₁ℓ + τ∇r] + sqrt(2βs) ξ_i``.

Noise ``ξ`` is projected onto ``E^G`` (``noise="EG"``), onto the span of given columns
(``noise=array (D, k)``), or left full (``"full"``); for EA it is always projected onto ``E^G``.
"""

from __future__ import annotations

import warnings

import numpy as np

from solvers.integrators import INTEGRATORS, init

from . import diagnostics
from ._checks import as_particles, choice, positive
from .data import FixedSample, GaussianData, Minibatch, OnlineSample
from .problem import Problem
from .result import Result
from .schemes import SCHEMES, augment, model_output, risk_gradient

BACKENDS = ("numpy",)
DYNAMICS = ("mf", "sgd")


def _noise_projector(problem, scheme, noise):
    sym = problem.symmetry
    if isinstance(noise, str):
        choice(noise, ("full", "EG"), "noise")
        if noise == "EG" and sym is None:
            raise ValueError("noise='EG' needs a problem with a symmetry")
        proj = None if noise == "full" else sym.projector
    else:
        basis = np.asarray(noise, dtype=float)
        if basis.ndim != 2 or basis.shape[0] != problem.unit.dim:
            raise ValueError(f"noise must be 'full', 'EG' or a basis array of shape (D, k) with "
                             f"D = {problem.unit.dim}, got shape {basis.shape}")
        q, _ = np.linalg.qr(basis)
        proj = q @ q.T
    if scheme == "EA":
        proj = sym.projector if proj is None else sym.projector @ proj @ sym.projector
    return proj


def _default_expectation(problem, dynamics, batch_size):
    data = problem.data
    if data is None:
        return None
    if dynamics == "mf":
        return problem.population()
    if isinstance(data, GaussianData):
        return OnlineSample(data, batch_size)
    return Minibatch(data, batch_size)


def _observe(problem, scheme, theta, names) -> dict:
    pop, out = problem.population(), {}
    if pop is not None:
        b = pop.batch
        phi = model_output(problem, scheme, theta, b.x)
        if "risk" in names:
            out["risk"] = float(b.w @ problem.loss_value(phi, b.y))
        if "teacher_l2" in names:
            out["teacher_l2"] = float(np.sqrt(b.w @ np.sum((phi - problem.teacher(b.x)) ** 2, 1)))
    sym = problem.symmetry
    if "distance_to_EG" in names:
        out["distance_to_EG"] = diagnostics.distance_to_subspace(theta, sym.projector).value
    if "distance_to_WI" in names:
        m = sym.action.matrices(sym.elements()[0])
        out["distance_to_WI"] = diagnostics.distance_to_orbit_average(theta, m).value
    return out


def default_observables(problem) -> tuple[str, ...]:
    names = []
    if problem.data is not None:
        names.append("risk")
    if problem.teacher is not None:
        names.append("teacher_l2")
    if problem.symmetry is not None:
        names.append("distance_to_EG")
        if problem.symmetry.group.is_finite:
            names.append("distance_to_WI")
    return tuple(names)


def simulate(problem: Problem, init_particles, *, scheme: str = "vanilla",
             dynamics: str = "mf", T: float = 1.0, dt: float | None = None,
             batch_size: int = 20, expectation=None, step_scale=1.0,
             integrator: str = "euler", noise="full", record_every: int | None = None,
             observables=None, seed=0, backend: str = "numpy") -> Result:
    """Integrate the particle system from ``init_particles (N, D)`` up to MF time ``T``.

    ``step_scale``: ς, a number or a function of ``t``; ``dt``: the MF time step (default
    ``1e-2`` for ``"mf"``, ``1/N`` for ``"sgd"``); ``expectation``: override the default
    (``FixedSample``, ``OnlineSample`` or ``Minibatch``); ``record_every``: steps between frames
    (default: 20 frames after the initial one); ``observables``: names among
    ``risk, teacher_l2, distance_to_EG, distance_to_WI`` (default: all that apply);
    ``seed``: an int or ``np.random.SeedSequence`` for the noise and the batches.
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a wgflow.Problem, got {type(problem).__name__}")
    choice(scheme, SCHEMES, "scheme")
    choice(dynamics, DYNAMICS, "dynamics")
    choice(integrator, INTEGRATORS, "integrator")
    choice(backend, BACKENDS, "backend")
    if scheme != "vanilla" and problem.symmetry is None:
        raise ValueError(f"scheme={scheme!r} needs a problem with a symmetry (Problem(symmetry=…))")
    theta = as_particles(init_particles, problem.unit.dim, "init_particles")
    n = theta.shape[0]
    T = positive(T, "T")
    dt = positive(dt if dt is not None else (1.0 / n if dynamics == "sgd" else 1e-2), "dt")
    n_steps = max(1, round(T / dt))
    if record_every is None:
        record_every = max(1, n_steps // 20)
    record_every = positive(record_every, "record_every", integer=True)
    expectation = expectation or _default_expectation(problem, dynamics, batch_size)
    if problem.data is not None and not isinstance(expectation,
                                                   (FixedSample, OnlineSample, Minibatch)):
        raise ValueError("expectation must be a FixedSample, OnlineSample or Minibatch")
    names = default_observables(problem) if observables is None else tuple(observables)
    for name in names:
        choice(name, default_observables(problem), "observables")
    scale = step_scale if callable(step_scale) else (lambda t, s=float(step_scale): s)
    noise_proj = _noise_projector(problem, scheme, noise)
    if scheme == "EA":
        theta = theta @ problem.symmetry.projector
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    data_rng, noise_rng = (np.random.default_rng(s) for s in seq.spawn(2))
    step_fn, proj = INTEGRATORS[integrator], problem.symmetry and problem.symmetry.projector

    def drift_on(batch):
        def drift(th, t):
            grad = 0.0 if batch is None else risk_gradient(problem, scheme, th, batch)
            v = -scale(t) * (grad + 2.0 * problem.tau * th)
            return v @ proj if scheme == "EA" else v
        return drift

    state = init(theta)
    frames = [(state.t, state.step, state.theta, _observe(problem, scheme, theta, names))]
    status = "complete"
    for k in range(1, n_steps + 1):
        batch = None
        if expectation is not None:
            batch = augment(scheme, expectation.draw(data_rng), problem.symmetry, data_rng)
        xi = None
        if problem.beta > 0:
            xi = np.sqrt(2.0 * problem.beta * scale(state.t) * dt) * noise_rng.standard_normal(
                state.theta.shape)
            xi = xi if noise_proj is None else xi @ noise_proj
        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
            state = step_fn(state, drift_on(batch), dt, xi)
        record = k % record_every == 0 or k == n_steps
        finite = bool(np.all(np.isfinite(state.theta)))
        obs = _observe(problem, scheme, state.theta, names) if record and finite else {}
        if not (finite and np.all(np.isfinite(list(obs.values())))):
            status = "diverged"
            warnings.warn(f"the particles or observables became NaN/inf at step {k} "
                          f"(t = {state.t:.4g}); the time step is probably too large for this "
                          "step_scale: reduce dt or step_scale. Frames up to the last good one "
                          "are kept.", stacklevel=2)
            break
        if record:
            frames.append((state.t, state.step, state.theta, obs))
    config = {"problem": problem.describe(), "scheme": scheme, "dynamics": dynamics, "T": T,
              "dt": dt, "batch_size": batch_size, "integrator": integrator,
              "step_scale": None if callable(step_scale) else float(step_scale),
              "noise": noise if isinstance(noise, str) else "subspace",
              "record_every": record_every, "backend": backend, "N": n,
              "expectation": None if expectation is None else expectation.describe()}
    return Result(
        times=np.array([f[0] for f in frames]), steps=np.array([f[1] for f in frames]),
        particles=np.stack([f[2] for f in frames]),
        observables={k: np.array([f[3][k] for f in frames]) for k in names},
        config=config, seeds={"entropy": seq.entropy, "spawn_key": list(seq.spawn_key)},
        teacher=None if problem.teacher is None else problem.teacher.particles, status=status)
