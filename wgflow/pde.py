"""The MF flow as a PDE on a grid: ``∂_t ρ = ς ∇·(ρ ∇ξ)`` for the density ``ρ`` of ``μ``, solved
by the finite-volume scheme of :mod:`solvers.pde` — an independent route to the limit the
particles approximate, in parameter spaces of dimension 1 or 2.

- :func:`solve`: a :class:`~wgflow.Problem` with the squared loss, ``ξ = δR/δμ + τ r + β log ρ``
  with ``δR/δμ(θ) = E_π⟨Φ_ρ(X) − Y, σ_*(X, θ)⟩ = (K ⋆ ρ − V)(θ)``. The model
  ``Φ_ρ(x_m) = Σ_c ρ_c |C| σ_*(x_m, θ_c)`` and the first variation at the centres ``θ_c`` are
  the particle kernels' contractions with the cells as atoms weighted by their masses, on the
  problem's population sample: ``O(cells × samples)`` per evaluation, no ``cells × cells``
  matrix. ``coordinates="EG"`` solves on ``E^G`` for SI laws of any problem with
  ``dim E^G ≤ 2``: ``θ = B z`` with ``B = problem.symmetry.basis`` and ``z`` on the grid. It is
  the MF limit of EA and FA from an SI start (noise on ``E^G``) for any data, and of every
  scheme when the data are G-invariant (the free flow from an SI law then stays SI).
- :func:`solve_energy`: a general gradient flow, ``ξ = U + W ⋆ ρ + β log ρ + H'(ρ)`` with
  ``H(ρ) = ρ^m/(m − 1)`` (porous medium), ``W ⋆ ρ`` by FFT on the grid.

Both return a :class:`PDEResult`. :func:`prepare` (or :func:`prepare_energy`) gives
``(run, first_frame)`` instead, to step a run frame by frame from a plain state
(:func:`frames` from ``cursor(run, frame)``, a :class:`solvers.pde.integrators.GridState`: the
density, time and step), as files and checkpoints do (:mod:`wgflow.runner`); ``solve`` collects
those frames. ``initial`` is a density callable (of grid coordinates
``z (P, k)``, returning ``(P,)``; normalized on the grid), a Gaussian ``(mean (k,), cov
(k, k) or a variance)`` in grid coordinates, or particles ``(N, D)`` binned into the cells
(those outside the box, a fraction ``outside_tol`` at most, are dropped).
``box``: ``(low, high)`` for every axis or one such pair per axis; ``cells``: an integer or one
per axis (at least 3). ``dt=None`` takes ``cfl`` times the stable step at every step;
``record_every``: MF time between frames (default ``T/20``). ``diffusion``: ``"explicit"``
(second order in time, step ``∝ h²`` where diffusion dominates) or ``"implicit"`` (backward
Euler for ``β Δρ``, first order in time, step ``∝ h``): :mod:`solvers.pde.integrators`.
``flux``: ``"upwind"`` (free energy decreasing at every step) or ``"hybrid"`` (central where the
cell Péclet number is at most 1, so that moments are exact in space there; explicit diffusion
only): :mod:`solvers.pde`. ``integrator``: ``"ssp-rk2"`` or ``"ssp-rk3"``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from solvers.pde import grid as grids
from solvers.pde import integrators, reference

from ._checks import as_array2d, choice, is_real, nonnegative, positive
from .dynamics import Interrupted, _next_chunk
from .problem import Problem
from .result import Recorded

BACKENDS = ("numba", "numpy")
DIFFUSION = ("explicit", "implicit")
FLUXES = ("upwind", "hybrid")
#: the time steppers, by name: their order (:mod:`solvers.pde.integrators`)
INTEGRATORS = {"ssp-rk2": 2, "ssp-rk3": 3}
#: mass of the initial law allowed outside the box (and in the outermost cells for a callable)
OUTSIDE_TOL = 1e-6
#: ``|θ − P_G θ| / (1 + |θ|)`` tolerated for initial particles given to ``coordinates="EG"``
EG_TOL = 1e-8


@dataclass(frozen=True)
class PDEResult(Recorded):
    """A density trajectory on a grid.

    ``times (F,)``, ``steps (F,)``; ``centers``: the cell centres of each axis ``(n_i,)``;
    ``cell_volume`` ``|C|``; ``density (F, n_1[, n_2])`` cell averages with
    ``Σ density[f]·|C| = 1``; ``observables[name]``: ``(F,)`` (``mass``, ``free_energy`` and its
    parts, ``risk``, ``min_density``, ``boundary_mass``: the mass in the outermost cells),
    ``mean (F, k)``, ``second_moment (F, k, k)`` (``∫ z zᵀ ρ``, grid coordinates); ``basis``:
    ``B (D, k)`` with ``θ = B z`` for ``coordinates="EG"``, else ``None``; ``config``: every
    option, JSON-able; ``status``: ``"complete"``, or ``"diverged"`` or ``"running"`` for a
    file (:func:`wgflow.load`) whose run diverged or has not finished.
    """

    times: np.ndarray
    steps: np.ndarray
    centers: tuple
    cell_volume: float
    density: np.ndarray
    observables: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    basis: np.ndarray | None = None
    status: str = "complete"

    @property
    def final(self) -> np.ndarray:
        """The density at the last recorded frame, ``(n_1[, n_2])``."""
        return self.density[-1]

    def method(self, name: str) -> str:
        """How the observable ``name`` was computed (:func:`observable_methods`)."""
        return observable_methods(self.config, [name])[name]

    def points(self) -> np.ndarray:
        """Every cell centre ``(cells, k)``, in the order of ``density[f].ravel()``."""
        mesh = np.meshgrid(*self.centers, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


def observable_methods(config: dict, names) -> dict:
    """``{name: method}`` for the observables of a run with ``config`` (``PDEResult.config``):
    the population expectation's method for the risk (``quadrature``, ``monte-carlo``, …),
    ``grid`` (sums over the cells) for the others."""
    population = (config.get("population") or {}).get("method") or "unknown"
    return {name: population if name == "risk" else "grid" for name in names}


def _kernels(backend):
    choice(backend, BACKENDS, "backend")
    if backend == "numpy":
        return reference
    from solvers.pde import compiled

    return compiled


def _equation(field, grid, beta, m, step_scale, kernels, diffusion, flux):
    """The :class:`~solvers.pde.integrators.Equation` of a run, its options checked."""
    implicit = choice(diffusion, DIFFUSION, "diffusion") == "implicit"
    if choice(flux, FLUXES, "flux") == "hybrid" and implicit:
        raise ValueError("flux='hybrid' carries the diffusion in its flux and needs "
                         "diffusion='explicit'; pass one of them only")
    transport = kernels.hybrid_transport if flux == "hybrid" else kernels.transport
    return integrators.Equation(field, tuple(grid.spacing), beta, m,
                                positive(step_scale, "step_scale"), transport,
                                kernels.log_density, kernels.diffuse if implicit else None, flux)


def _grid(box, cells, k: int) -> grids.Grid:
    box = np.asarray(box, dtype=float)
    box = np.broadcast_to(box, (k, 2)) if box.shape == (2,) else box
    if box.shape != (k, 2) or not np.all(np.isfinite(box)) or np.any(box[:, 1] <= box[:, 0]):
        raise ValueError(f"box must be (low, high) or {k} such pairs with low < high, got "
                         f"{np.asarray(box).tolist()}")
    cells = np.broadcast_to(np.asarray(cells), (k,))
    if not all(is_real(n) and float(n) == int(n) and n >= 3 for n in cells.tolist()):
        raise ValueError(f"cells must be an integer ≥ 3 or {k} of them, got {cells.tolist()}")
    return grids.Grid(tuple(box[:, 0].tolist()), tuple(box[:, 1].tolist()),
                      tuple(int(n) for n in cells))


def _finite(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} is not finite at {int(np.sum(~np.isfinite(values)))} cell "
                         "centres; give a finite function on the box (or shrink the box)")
    return values


def _initial(initial, grid: grids.Grid, basis, outside_tol: float) -> np.ndarray:
    """Cell averages ``(n_1[, n_2])`` of the initial law, with ``Σ ρ |C| = 1``."""
    points, volume, k = grid.points(), grid.cell_volume, len(grid.shape)
    where = f"the box {list(zip(grid.lower, grid.upper, strict=True))}"
    if isinstance(initial, tuple) and len(initial) == 2:
        mean = as_array2d(np.atleast_1d(initial[0]), k, "initial mean", "mean")[0]
        cov = np.asarray(initial[1], dtype=float) * (np.eye(k) if np.ndim(initial[1]) == 0 else 1)
        if cov.shape != (k, k) or np.any(np.linalg.eigvalsh(cov) <= 0):
            raise ValueError(f"initial cov must be a positive variance or a positive definite "
                             f"({k}, {k}) matrix, got {np.asarray(initial[1]).tolist()}")
        dz = points - mean
        values = np.exp(-0.5 * np.einsum("pi,ij,pj->p", dz, np.linalg.inv(cov), dz))
        values /= np.sqrt(np.linalg.det(2 * np.pi * cov))
        lost = abs(1.0 - values.sum() * volume)
        if lost > outside_tol:
            raise ValueError(f"initial: the Gaussian has mass {lost:.2g} outside {where} or "
                             f"unresolved by the cells (tolerance outside_tol = {outside_tol:g})"
                             "; enlarge the box, or refine the cells")
    elif callable(initial):
        values = _finite(initial(points), "the initial density").reshape(-1)
    else:
        theta = np.asarray(initial, dtype=float)
        z = as_array2d(theta, k if basis is None else basis.shape[0], "initial", "particle")
        if basis is not None:
            z = z @ basis
            off = np.linalg.norm(theta - z @ basis.T, axis=1) / (1 + np.linalg.norm(theta, axis=1))
            if off.max() > EG_TOL:
                raise ValueError(f"initial particles are not in E^G (relative distance "
                                 f"{off.max():.2g}); project them (wgflow.laws.project)")
        edges = [np.linspace(a, b, n + 1) for a, b, n in
                 zip(grid.lower, grid.upper, grid.shape, strict=True)]
        inside = np.all((z >= grid.lower) & (z <= grid.upper), axis=1)
        if 1.0 - inside.mean() > outside_tol:
            raise ValueError(f"initial: a fraction {1 - inside.mean():.2g} of the particles lies "
                             f"outside {where} (tolerance outside_tol = {outside_tol:g}); "
                             "enlarge the box")
        values = np.histogramdd(z[inside], bins=edges)[0].ravel()
    values = values.reshape(grid.shape)
    total = values.sum() * volume
    if np.any(values < 0) or not total > 0:
        raise ValueError(f"initial density must be non-negative with a positive, finite mass on "
                         f"the grid (min {values.min():.3g}, mass {total:.3g})")
    rho = values / total
    if callable(initial) and _boundary_mass(rho, volume) > outside_tol:
        raise ValueError(f"initial density has mass {_boundary_mass(rho, volume):.2g} in the "
                         f"outermost cells of {where} (tolerance outside_tol = {outside_tol:g}): "
                         "the box cuts the law; enlarge it")
    return rho


def _boundary_mass(rho, volume) -> float:
    inner = rho[(slice(1, -1),) * rho.ndim]
    return float(rho.sum() - inner.sum()) * volume


class _Risk:
    """``ρ ↦ δR/δμ(θ_c) + τ|θ_c|²`` at the centres ``θ_c (cells, D)``, with the model
    ``Φ_ρ(x_m) = Σ_c ρ_c |C| σ_*(x_m, θ_c)`` on the population sample."""

    def __init__(self, problem: Problem, theta, grid, kernels):
        self.problem, self.theta, self.kernels = problem, theta, kernels
        self.shape, self.volume = grid.shape, grid.cell_volume
        self.decay = problem.tau * np.sum(theta**2, axis=1)
        pop = problem.population()
        self.batch = None if pop is None else pop.batch

    def _model(self, rho):
        return self.kernels.weighted_output(self.problem.unit.spec, self.theta,
                                            rho.ravel() * self.volume, self.batch.x)

    def __call__(self, rho):
        xi = self.decay
        if self.batch is not None:
            x, y, w = self.batch
            coef = w[:, None] * self.problem.loss_gradient(self._model(rho), y)
            xi = xi + self.kernels.first_variation(self.problem.unit.spec, self.theta, x, coef)
        return xi.reshape(self.shape)

    def energy(self, rho) -> dict:
        risk = 0.0
        if self.batch is not None:
            risk = float(self.batch.w @ self.problem.loss_value(self._model(rho), self.batch.y))
        return {"risk": risk, "weight_decay": float(self.decay @ rho.ravel()) * self.volume}


class _Energy:
    """``ρ ↦ U + W ⋆ ρ`` at the centres (``potential`` the array ``U``, ``conv`` or ``None``)."""

    def __init__(self, potential, conv, volume):
        self.potential, self.conv, self.volume = potential, conv, volume

    def __call__(self, rho):
        if self.conv is None:
            return self.potential
        return self.potential + grids.convolve(self.conv, rho)

    def energy(self, rho) -> dict:
        parts = {"potential_energy": float(np.sum(self.potential * rho)) * self.volume}
        if self.conv is not None:
            parts["interaction_energy"] = 0.5 * float(
                np.sum(grids.convolve(self.conv, rho) * rho)) * self.volume
        return parts


def _observables(eq, field, rho, points, volume) -> dict:
    entropy, internal = integrators.local_energy(eq, rho)
    parts = {**field.energy(rho), "entropy": entropy}
    if eq.m:
        parts["internal_energy"] = internal
    mass = rho.ravel() * volume
    mean = points.T @ mass
    return {"mass": float(mass.sum()), "free_energy": sum(parts.values()), **parts,
            "mean": mean, "second_moment": (points.T * mass) @ points,
            "min_density": float(rho.min()), "boundary_mass": _boundary_mass(rho, volume)}


class DensityFrame(NamedTuple):
    """One recorded frame of a PDE run: MF time ``t``, ``step``, cell averages ``rho (n_1[, n_2])``,
    ``observables``."""
    t: float  # MF time
    step: int  # steps taken
    rho: np.ndarray  # (n_1[, n_2]) cell averages
    observables: dict


def _prepare(eq, field, rho0, grid, T, dt, record_every, cfl, integrator, config, basis):
    """The run description that :func:`frames` steps, and its initial frame."""
    order = INTEGRATORS[choice(integrator, tuple(INTEGRATORS), "integrator")]
    T = positive(T, "T")
    if dt is not None:
        dt = positive(dt, "dt")
    every = T / 20 if record_every is None else positive(record_every, "record_every")
    cfl = positive(cfl, "cfl")
    if cfl >= 1:
        raise ValueError(f"cfl must be in (0, 1), got {cfl}")
    points = grid.points()
    config = {**config, "box": [list(b) for b in zip(grid.lower, grid.upper, strict=True)],
              "cells": list(grid.shape), "T": T, "dt": dt, "record_every": every, "cfl": cfl,
              "flux": eq.flux, "integrator": integrator}
    run = SimpleNamespace(
        eq=eq, field=field, grid=grid, points=points, basis=basis, dt=dt, cfl=cfl, T=T,
        order=order,
        targets=np.append(np.arange(1, int(np.ceil(T / every - 1e-9))) * every, T),
        n_steps=None, config=config, status="complete", message="")
    state = integrators.init(rho0)
    return run, DensityFrame(state.t, state.step, state.rho, _observe(run, state.rho))


def _observe(run, rho) -> dict:
    return _observables(run.eq, run.field, rho, run.points, run.grid.cell_volume)


def cursor(run, frame: DensityFrame) -> integrators.GridState:
    """The checkpointable state of ``run`` at ``frame``: density, time and step."""
    return integrators.GridState(frame.rho, frame.t, frame.step)


def frames(run, start: integrators.GridState, stop=None):
    """Yield the frames of ``run`` after ``start`` (a :func:`cursor`), one per ``record_every``
    of MF time and at ``T``. A density or free energy that turns non-finite warns, sets
    ``run.status = "diverged"`` and stops. ``stop``: a callable asked between chunks of steps
    (about every :data:`~wgflow.dynamics.CHUNK_SECONDS`); when it returns true,
    :class:`~wgflow.dynamics.Interrupted` is raised with the state to continue from. The steps
    do not depend on the chunking, so a run continued from that state equals an uninterrupted
    one bit for bit."""
    state = start
    i = int(np.searchsorted(run.targets, state.t, side="right"))
    steps = 1  # grows towards CHUNK_SECONDS of work
    while i < len(run.targets):
        if stop is not None and stop():
            raise Interrupted(state)
        target, taken, tic = run.targets[i], 0, time.perf_counter()
        while taken < steps and state.t < target:
            state = integrators.step(state, run.eq, run.dt, until=target, cfl=run.cfl,
                                     order=run.order)
            taken += 1
        steps = _next_chunk(steps, (time.perf_counter() - tic) * steps / max(taken, 1))
        if state.t < target:
            continue
        obs = _observe(run, state.rho)
        if not (np.all(np.isfinite(state.rho)) and np.isfinite(obs["free_energy"])):
            run.status = "diverged"
            run.message = (f"the density or the free energy became non-finite by t = "
                           f"{state.t:.6g} (step {state.step}); lower cfl or dt. Frames up to "
                           "the last good one are kept.")
            warnings.warn(run.message, stacklevel=2)
            return
        yield DensityFrame(state.t, state.step, state.rho, obs)
        i += 1


def result_of(run, recorded: list) -> PDEResult:
    """The :class:`PDEResult` of ``run`` from its recorded frames."""
    grid = run.grid
    return PDEResult(np.array([f.t for f in recorded]), np.array([f.step for f in recorded]),
                     grid.centers(), grid.cell_volume, np.array([f.rho for f in recorded]),
                     {name: np.array([f.observables[name] for f in recorded])
                      for name in recorded[0].observables}, run.config, run.basis, run.status)


def _collect(run, first) -> PDEResult:
    recorded = [first, *frames(run, cursor(run, first))]
    if run.status == "diverged":
        raise FloatingPointError(run.message)
    return result_of(run, recorded)


def solve(problem: Problem, initial, **options) -> PDEResult:
    """The MF flow of ``problem`` (squared loss, population expectation) from ``initial`` up to
    time ``T``, as a density on ``cells`` cells of ``box``: ``D = problem.unit.dim ≤ 2``, or
    ``coordinates="EG"`` (``dim E^G ≤ 2``; ``initial`` particles must lie in ``E^G``).
    ``step_scale``: a constant ς. Options as :func:`prepare`; see the module."""
    return _collect(*prepare(problem, initial, **options))


def prepare(problem: Problem, initial, *, box, cells, T, dt=None, coordinates=None,
            record_every=None, step_scale=1.0, cfl=integrators.CFL, outside_tol=OUTSIDE_TOL,
            backend="numba", diffusion="explicit", flux="upwind", integrator="ssp-rk2"):
    """Check the options of :func:`solve` and return ``(run, first_frame)``: the run that
    :func:`frames` steps from ``cursor(run, first_frame)``, and the initial frame."""
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a wgflow.Problem, got {type(problem).__name__}")
    if problem.loss != "squared":
        raise ValueError(f"problem.loss must be 'squared' for the PDE solver, got {problem.loss}")
    dim = problem.unit.dim
    choice(coordinates, (None, "EG"), "coordinates")
    basis = None
    if coordinates == "EG":
        if problem.symmetry is None or not 1 <= problem.symmetry.dim_EG <= 2:
            raise ValueError("coordinates='EG' needs a problem with a symmetry and "
                             "1 ≤ dim E^G ≤ 2, got dim E^G = "
                             f"{None if problem.symmetry is None else problem.symmetry.dim_EG}")
        basis = problem.symmetry.basis
    elif dim > 2:
        raise ValueError(f"coordinates: the parameter space has dimension D = {dim} > 2; the "
                         "grid solver runs in 1 or 2 dimensions: pass coordinates='EG' for an SI "
                         "law (dim E^G ≤ 2)")
    k = dim if basis is None else basis.shape[1]
    grid = _grid(box, cells, k)
    kernels = _kernels(backend)
    theta = grid.points() if basis is None else grid.points() @ basis.T
    field = _Risk(problem, np.ascontiguousarray(theta), grid, kernels)
    rho0 = _initial(initial, grid, basis, nonnegative(outside_tol, "outside_tol"))
    eq = _equation(field, grid, problem.beta, 0.0, step_scale, kernels, diffusion, flux)
    config = {"kind": "problem", "problem": problem.describe(), "coordinates": coordinates,
              "step_scale": eq.scale, "backend": backend, "diffusion": diffusion,
              "population": {"method": problem.population_method,
                             "size": None if field.batch is None else len(field.batch.w)}}
    return _prepare(eq, field, rho0, grid, T, dt, record_every, cfl, integrator, config, basis)


def solve_energy(potential=None, interaction=None, **options) -> PDEResult:
    """The gradient flow of ``F`` (:func:`prepare_energy`) as one :class:`PDEResult`."""
    return _collect(*prepare_energy(potential, interaction, **options))


def prepare_energy(potential=None, interaction=None, *, initial, beta, m=None, box, cells, T,
                   dt=None, record_every=None, step_scale=1.0, cfl=integrators.CFL,
                   outside_tol=OUTSIDE_TOL, backend="numba", diffusion="explicit",
                   flux="upwind", integrator="ssp-rk2"):
    """``(run, first_frame)`` of the gradient flow of
    ``F(ρ) = ∫ U ρ + ½ ∫∫ W(z − z') ρ ρ' + β ∫ ρ log ρ + ∫ H(ρ)``,
    ``H(ρ) = ρ^m/(m − 1)`` (``m > 1``, or ``None``), on a grid of dimension ``k = 1, 2``
    (the length of ``box`` when it holds one pair per axis, else 1). ``potential`` ``U`` and
    ``interaction`` ``W``: callables of ``z (P, k)`` returning ``(P,)``, or ``None``."""
    box_arr = np.asarray(box, dtype=float)
    k = box_arr.shape[0] if box_arr.ndim == 2 else 1
    if k not in (1, 2):
        raise ValueError(f"box must describe 1 or 2 axes, got {box_arr.tolist()}")
    grid = _grid(box, cells, k)
    beta = nonnegative(beta, "beta")
    if m is not None and not (is_real(m) and m > 1 and np.isfinite(m)):
        raise ValueError(f"m must be a number > 1 (porous medium) or None, got {m!r}")
    points = grid.points()
    u = np.zeros(len(points)) if potential is None else _finite(potential(points), "potential")
    conv = None if interaction is None else grids.convolution(grid, interaction)
    field = _Energy(u.reshape(grid.shape), conv, grid.cell_volume)
    rho0 = _initial(initial, grid, None, nonnegative(outside_tol, "outside_tol"))
    kernels = _kernels(backend)
    eq = _equation(field, grid, beta, float(m or 0.0), step_scale, kernels, diffusion, flux)
    config = {"kind": "energy", "beta": beta, "m": m, "step_scale": eq.scale, "backend": backend,
              "diffusion": diffusion}
    return _prepare(eq, field, rho0, grid, T, dt, record_every, cfl, integrator, config, None)


def w2_1d(result: PDEResult, particles, frame: int = -1) -> float:
    """Exact ``W₂`` between the particles ``(N,)`` or ``(N, 1)`` (grid coordinates) and the
    density of ``frame`` of a 1-D result, from the quantile functions: ``W₂² = ∫₀¹ |Q_N(u) −
    Q_ρ(u)|² du``, ``Q_N`` a step function, ``Q_ρ`` piecewise linear (``ρ`` is constant on
    each cell); integrated exactly on the union of their breakpoints."""
    if len(result.centers) != 1:
        raise ValueError("w2_1d needs a 1-D result")
    z = np.sort(np.asarray(particles, dtype=float).reshape(-1))
    centers, h = result.centers[0], result.centers[0][1] - result.centers[0][0]
    mass = result.density[frame] * h
    cdf = np.concatenate([[0.0], np.cumsum(mass)])
    cdf /= cdf[-1]
    knots = np.unique(np.concatenate([cdf, np.arange(len(z) + 1) / len(z)]))
    mid = 0.5 * (knots[1:] + knots[:-1])
    cell = np.clip(np.searchsorted(cdf, mid, side="right") - 1, 0, len(mass) - 1)
    left_edge = centers[cell] - 0.5 * h
    slope = h / (cdf[cell + 1] - cdf[cell])  # mid lies inside a cell of positive mass
    atom = z[np.minimum((mid * len(z)).astype(int), len(z) - 1)]
    fa = left_edge + (knots[:-1] - cdf[cell]) * slope - atom
    fb = left_edge + (knots[1:] - cdf[cell]) * slope - atom
    return float(np.sqrt(np.sum(np.diff(knots) * (fa * fa + fa * fb + fb * fb) / 3.0)))


def w2_grid(particles, result: PDEResult, frame: int = -1) -> float:
    """Exact ``W₂`` between particles ``(N, k)`` in grid coordinates (``z = θ B`` for
    ``coordinates="EG"``) and the density of ``frame`` as atoms at the cell centres weighted by
    their masses ``ρ|C|`` (empty cells left out), by POT's ``emd2`` on the ``N × cells`` cost:
    for moderate sizes. The atoms stand for cells of side ``h``: a floor of about
    ``h (k/12)^{1/2}`` against the piecewise-constant density."""
    from .diagnostics import wasserstein2

    mass = result.density[frame].ravel() * result.cell_volume
    keep = mass > 0
    return wasserstein2(particles, result.points()[keep], nu_weights=mass[keep] / mass[keep].sum(),
                        method="exact").value
