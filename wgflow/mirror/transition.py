"""The collapse onto a mirror's constraint set, observed: sweeps across the predicted threshold.

Each sweep runs the dynamics from a start off the constraint set at every value of one knob
(weight decay, step size or batch size), measures the distance to the constraint set at the end
relative to the start, and compares the values where it collapsed with the prediction:

- :func:`rescaling_decay_sweep`: gradient descent on :class:`~wgflow.mirror.models.ScalarRescaling`
  with weight decay ``γ``; predicted: collapse for ``γ > γ₀ = |c|/2``.
- :func:`rescaling_noise_sweep`: minibatch SGD on the same model below ``γ₀`` ("stochastic
  collapse"); the origin attracts almost surely when both Lyapunov exponents of the linearised
  random map ``θ ↦ (1 − 2ηγ ± ηĉ) θ`` (along ``(1, ±1)/√2``, ``ĉ`` the minibatch ``E xy``)
  are negative: ``Λ± = E log|1 − 2ηγ ± ηĉ| < 0``, estimated on fresh minibatches.
- :func:`mf_decay_sweep`: the MF particle flow of a problem with a symmetry; at each ``τ`` the
  EA flow from an SI start settles to an SI law ``μ*_τ``, whose transverse spectrum predicts
  collapse when ``λ_min + 2τ > 0`` (:mod:`~wgflow.mirror.thresholds`); the free flow then
  starts from ``μ*_τ`` pushed off ``E^G`` in a random normal direction, and the ratio of its
  RMS distances ``(E_μ|Oᵀθ|²)^{1/2}`` to ``E^G`` at ``T`` and ``T/2`` measures the slowest
  transverse mode (the faster stable ones have decayed by ``T/2``): it is
  ``exp(−ς(λ_min + 2τ)T/2)`` while the push stays small. (Far from the law, the flow may still
  land on another SI law: the prediction is local.)

The predicted threshold is interpolated linearly between the two swept values where the
prediction changes; the observed one is bracketed by the neighbouring swept values where the
observation changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.descent import descend

from .. import laws
from .._checks import as_particles, nonnegative, positive
from ..dynamics import simulate
from ..problem import Problem
from .models import ScalarRescaling
from .thresholds import normal_basis, transverse_spectrum

#: final distance / initial distance below which a gradient-descent or SGD run has collapsed
#: onto the constraint set (a run that converges elsewhere stays at a distance of order one;
#: a diverged run has ratio ``inf``)
COLLAPSE_RATIO = 1e-6
#: minibatches drawn to estimate a Lyapunov exponent of the stochastic-collapse prediction
LYAPUNOV_SAMPLES = 200_000


@dataclass(frozen=True)
class TransitionSweep:
    """One sweep of a knob across a predicted collapse threshold.

    Attributes
    ----------
    knob : str
        ``"weight decay"``, ``"step size"`` or ``"batch size"``.
    values : ndarray, shape (P,)
        The swept values, ascending.
    ratio : ndarray, shape (P,)
        Distance to the constraint set at the end over the distance at the start (median over
        copies; ``inf`` for a diverged run); for the MF flow, at ``T`` over ``T/2``.
    collapsed : ndarray of bool, shape (P,)
        The observation: ``ratio < COLLAPSE_RATIO``; for the MF flow ``ratio < 1`` (the
        distance shrinks at late times).
    margin : ndarray, shape (P,)
        The prediction's signed margin, positive where collapse is predicted (``γ − γ₀``,
        ``−max(Λ₊, Λ₋)`` or ``λ_min + 2τ``).
    predicted : float
        Interpolated root of ``margin`` (NaN if it keeps one sign).
    observed : tuple of float
        ``(lo, hi)``: the swept values around the first change of ``collapsed``
        (``(nan, nan)`` if it never changes).
    problem : str
        What was swept, in words.
    criterion : float
        The ratio below which a run counts as collapsed.
    """

    knob: str
    values: np.ndarray
    ratio: np.ndarray
    collapsed: np.ndarray
    margin: np.ndarray
    predicted: float
    observed: tuple
    problem: str
    criterion: float = COLLAPSE_RATIO

    @property
    def agrees(self) -> bool:
        """Prediction and observation agree at every swept value, and the predicted threshold
        lies in the observed bracket."""
        lo, hi = self.observed
        return bool(np.array_equal(self.collapsed, self.margin > 0)
                    and lo <= self.predicted <= hi)

    def as_record(self) -> dict:
        """JSON-able: ``problem``, ``knob``, ``predicted``, ``observed``, ``agrees``,
        ``criterion`` and one row
        ``{"value", "ratio", "collapsed", "margin"}`` per swept value."""
        rows = [{"value": float(v), "ratio": float(r), "collapsed": bool(c), "margin": float(m)}
                for v, r, c, m in zip(self.values, self.ratio, self.collapsed, self.margin,
                                      strict=True)]
        return {"problem": self.problem, "knob": self.knob, "predicted": self.predicted,
                "observed": list(self.observed), "agrees": self.agrees,
                "criterion": self.criterion, "rows": rows}


def _sweep(knob, values, ratio, margin, problem, below=COLLAPSE_RATIO) -> TransitionSweep:
    values, ratio, margin = (np.asarray(a, dtype=float) for a in (values, ratio, margin))
    collapsed = ratio < below
    predicted, observed = np.nan, (np.nan, np.nan)
    flips = np.flatnonzero(np.diff(np.sign(margin)) != 0)
    if len(flips):
        i = flips[0]
        predicted = float(values[i] - margin[i] * (values[i + 1] - values[i])
                          / (margin[i + 1] - margin[i]))
    changes = np.flatnonzero(np.diff(collapsed.astype(int)) != 0)
    if len(changes):
        observed = (float(values[changes[0]]), float(values[changes[0] + 1]))
    return TransitionSweep(knob, values, ratio, collapsed, margin, predicted, observed, problem,
                           below)


def _ascending(values, name, check):
    """``values`` checked one by one with ``check(value, name)``, at least two, increasing."""
    vals = [check(v, name) for v in np.atleast_1d(values).tolist()]
    if len(vals) < 2 or np.any(np.diff(vals) <= 0):
        raise ValueError(f"{name} must be at least two increasing values, got {vals}")
    return np.array(vals, dtype=float)


def _batch_size(value, name):
    return positive(value, name, integer=True)


def rescaling_decay_sweep(model: ScalarRescaling, gammas, start=(0.3, 0.2), lr: float = 0.05,
                          steps: int = 20_000) -> TransitionSweep:
    """Gradient descent on ``model`` + ``γ|θ|²`` from ``start (2,)`` at every ``γ``."""
    gammas = _ascending(gammas, "gammas", nonnegative)
    theta0 = np.repeat(np.asarray(start, dtype=float)[:, None], len(gammas), axis=1)
    run = descend(lambda th, k: model.gradient(th), theta0, positive(lr, "lr"), gammas,
                  positive(steps, "steps", integer=True), steps)
    ratio = np.linalg.norm(run.theta[-1], axis=0) / np.linalg.norm(theta0, axis=0)
    return _sweep("weight decay", gammas, np.where(run.diverged, np.inf, ratio),
                  gammas - model.gamma0, f"scalar rescaling model (c = {model.c:g})")


def lyapunov_exponents(model: ScalarRescaling, lr: float, batch: int, gamma: float,
                       seed=0) -> tuple[float, float]:
    """``(Λ₊, Λ₋)`` of SGD linearised at the origin (module docstring), from
    :data:`LYAPUNOV_SAMPLES` minibatches."""
    _, c = model.sample_moments(np.random.default_rng(seed), LYAPUNOV_SAMPLES, batch)
    base = 1.0 - 2.0 * lr * gamma
    return (float(np.mean(np.log(np.abs(base + lr * c)))),
            float(np.mean(np.log(np.abs(base - lr * c)))))


def rescaling_noise_sweep(model: ScalarRescaling, knob: str, values, *, lr: float = 1.0,
                          batch: int = 1, gamma: float = 0.25, start: float = 1e-3,
                          steps: int = 3000, copies: int = 32, seed=0) -> TransitionSweep:
    """Minibatch SGD on ``model`` + ``γ|θ|²`` (``γ`` below ``γ₀``) over ``knob`` ∈
    ``{"step size", "batch size"}`` (the other one fixed at ``lr`` or ``batch``); ``copies``
    independent runs from ``start·(1, 1)/√2`` (the unstable direction of full-batch descent)."""
    if knob not in ("step size", "batch size"):
        raise ValueError(f"knob must be 'step size' or 'batch size', got {knob!r}")
    values = _ascending(values, knob, _batch_size if knob == "batch size" else positive)
    gamma = nonnegative(gamma, "gamma")
    ratios, margins = [], []
    seeds = np.random.SeedSequence(seed).spawn(len(values))
    for value, sub in zip(values, seeds, strict=True):
        eta, b = (value, batch) if knob == "step size" else (lr, int(value))
        rng = np.random.default_rng(sub)
        s2, c = model.sample_moments(rng, steps, b, copies)
        theta0 = np.full((2, copies), positive(start, "start") / np.sqrt(2.0))
        run = descend(lambda th, k, s2=s2, c=c: model.gradient(th, s2[k], c[k]), theta0, eta,
                      gamma, steps, steps)
        ratio = np.linalg.norm(run.theta[-1], axis=0) / np.linalg.norm(theta0, axis=0)
        ratios.append(float(np.median(np.where(run.diverged, np.inf, ratio))))
        margins.append(-max(lyapunov_exponents(model, eta, b, gamma, seed=rng)))
    return _sweep(knob, values, ratios, margins,
                  f"scalar rescaling model, SGD (γ = {gamma:g} < γ₀ = {model.gamma0:g})")


def with_weight_decay(problem: Problem, tau: float) -> Problem:
    """``problem`` with weight decay ``tau`` and no noise (same unit, data and symmetry)."""
    return Problem(problem.unit, problem.data, problem.symmetry, tau=tau, beta=0.0,
                   loss=problem.loss, quadrature_points=problem.quadrature_points)


def mf_decay_sweep(problem: Problem, taus, init, *, settle: float = 20.0, T: float = 10.0,
                   dt: float = 0.01, step_scale: float = 1.0, push: float = 1e-9, seed=0,
                   backend: str = "numpy") -> TransitionSweep:
    """The MF flow of ``problem`` across the weight decay predicted by the transverse spectrum.

    Parameters
    ----------
    problem : Problem
        With data and a symmetry (its ``tau`` and ``beta`` are replaced).
    taus : array (P,)
        Increasing weight decays.
    init : array (N, D)
        Particles, projected onto ``E^G`` for the settling EA run.
    settle, T, dt, step_scale : float
        MF times of the EA run and of the free run, their time step and ``ς``.
    push : float
        Size of the random push off ``E^G``, relative to the particles' RMS norm (at least 1):
        small enough for the linearisation to hold up to ``T``.
    """
    taus = _ascending(taus, "taus", nonnegative)
    if problem.symmetry is None:
        raise ValueError("problem needs a symmetry: the sweep measures the distance to E^G")
    start = laws.project(as_particles(init, problem.unit.dim, "init"), problem.symmetry.projector)
    basis = normal_basis(problem.symmetry)
    rng = np.random.default_rng(seed)
    kick = rng.standard_normal((len(start), basis.shape[1])) @ basis.T
    ratios, margins = [], []
    for tau in taus:
        prob = with_weight_decay(problem, tau)
        settled = simulate(prob, start, scheme="EA", T=settle, dt=dt, backend=backend,
                           step_scale=step_scale,
                           observables=(), record_every=round(settle / dt)).final
        margins.append(transverse_spectrum(prob, settled, basis).margin(tau))
        scale = push * max(1.0, float(np.sqrt(np.mean(np.sum(settled**2, axis=1)))))
        run = simulate(prob, settled + scale * kick, T=T, dt=dt, backend=backend,
                       step_scale=step_scale, observables=(), record_every=round(T / dt / 2))
        off = np.sqrt(np.mean(np.sum((run.particles @ basis) ** 2, axis=2), axis=1))
        ratios.append(np.inf if run.status != "complete" else float(off[-1] / off[1]))
    return _sweep("weight decay", taus, ratios, margins,
                  f"MF flow, {problem.unit.kind} unit ({problem.unit.activation}), "
                  f"{problem.symmetry.group.name}, N = {len(start)}", below=1.0)
