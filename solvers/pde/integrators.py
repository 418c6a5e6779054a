"""Time stepping of ``∂_t ρ = ς ∇·(ρ ∇ξ)`` on the grid, as an ``init``/``step`` pair over a
plain frozen state.

``ξ = field(ρ) + β log ρ + H'(ρ)``: ``field`` is a swappable callable giving the energy's
non-local and external part at the centres (``U + W ⋆ ρ``, or a risk's first variation);
the entropy ``β ∫ ρ log ρ`` and the porous-medium energy ``H(ρ) = ρ^m/(m − 1)`` are local and
taken here. ``log ρ`` is evaluated as ``log max(ρ, LOG_FLOOR)`` so that empty cells have a finite
chemical potential.

The step is a strong-stability-preserving Runge–Kutta method over stages ``E``, each a convex
combination of ``ρⁿ`` and a stage, so it keeps what every stage keeps (mass, ``ρ ≥ 0``):
``order=2`` (Heun, the default): ``ρ¹ = E(ρ)``, ``ρ' = ½ρ + ½E(ρ¹)``; ``order=3`` (Shu–Osher):
``ρ¹ = E(ρ)``, ``ρ² = ¾ρ + ¼E(ρ¹)``, ``ρ' = ⅓ρ + ⅔E(ρ²)``, for runs whose time error must be
far below the spatial one (the hybrid flux's exact moments, :mod:`solvers.pde`).

- ``diffusion="explicit"`` (``Equation.diffuse is None``): ``E(ρ) = ρ + Δt L(ρ)``, the explicit
  Euler step of the whole flux, ``β log ρ`` in ``ξ`` (the hybrid flux takes ``β Δρ``
  in the flux instead, and has its own bound, :mod:`solvers.pde`). Each stage keeps ``ρ ≥ 0`` when
  ``Δt ≤ 1/(2 Σ_i a_i/h_i)`` (``a_i`` the largest face speed on axis ``i``: the outflow of a cell
  is then at most its mass), and the diffusion is stable when ``Δt ≤ 1/(2 Σ_i D/h_i²)`` with
  ``D = β + m max ρ^{m−1}``. Second (or third) order in time.
- ``diffusion="implicit"``: the linear diffusion ``ς β Δρ`` leaves ``ξ`` and is taken by backward
  Euler after the explicit transport stage, ``E(ρ) = Π_i (I − λ_i D_i)⁻¹ (ρ + Δt L_d(ρ))`` with
  ``λ_i = ς β Δt/h_i²`` and ``D_i`` the no-flux second difference (one tridiagonal solve per line
  of cells, :func:`solvers.pde.grid.neumann_factors`; the factors commute). The solve keeps
  ``ρ ≥ 0`` and the mass for every ``Δt``, so only the transport bound above (with ``D`` its
  porous-medium part) limits the step: ``∝ h``, not ``h²``. First order in time where ``β > 0``
  (no linear scheme is both unconditionally positive and of order two: Bolley & Crouzeix,
  RAIRO Anal. Numér. 12, 1978); with ``β = 0`` it is the explicit scheme.

:func:`stable_dt` is the smaller bound. With ``dt=None`` the step is ``cfl`` times it, checked
again at every stage (and shortened, the step restarted, when a stage's bound is smaller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: ``log ρ`` is taken as ``log max(ρ, LOG_FLOOR)``
LOG_FLOOR = 1e-300
#: default fraction of the stable step
CFL = 0.5
#: Shu–Osher form of the SSP Runge–Kutta methods, by order: stage ``k`` is
#: ``ρ^{k+1} = c_k ρⁿ + (1 − c_k) E(ρ^k)``, these are the ``c_k``
SSP_KEEP = {2: (0.0, 0.5), 3: (0.0, 0.75, 1.0 / 3.0)}


class Equation(NamedTuple):
    """The terms of a grid gradient flow: the potential ``field(ρ)``, spacing ``h``, entropy weight
    ``β``, porous-medium exponent ``m`` (0: none), step scale ``ς``, and the transport (and
    implicit-diffusion) kernels."""
    field: Callable[[np.ndarray], np.ndarray]  # ρ -> U + W ⋆ ρ (+ data term), shape of ρ
    spacing: tuple[float, ...]  # h (k,)
    beta: float  # entropy weight β
    m: float  # porous-medium exponent m > 1, or 0 for none
    scale: float  # ς
    transport: Callable  # transport, or hybrid_transport (given β) of reference or compiled
    log: Callable  # ρ -> log max(ρ, LOG_FLOOR): reference.log_density or compiled.log_density
    diffuse: Callable | None = None  # implicit diffusion: reference.diffuse or compiled.diffuse
    flux: str = "upwind"  # "upwind" (β log ρ in ξ) or "hybrid" (transport takes β Δρ)


class GridState(NamedTuple):
    """The state of a grid flow: cell averages ``rho (n_1[, n_2])``, MF time ``t``, ``step``."""
    rho: np.ndarray  # (n_1[, n_2]) cell averages
    t: float  # MF time
    step: int  # steps taken


def init(rho, t: float = 0.0, step: int = 0) -> GridState:
    """The state at the cell averages ``rho`` (copied as float64), time ``t`` and step ``step``."""
    return GridState(np.array(rho, dtype=float), float(t), int(step))


def chemical_potential(eq: Equation, rho: np.ndarray) -> np.ndarray:
    """``ξ = field(ρ) + β log ρ + m ρ^{m−1}/(m − 1)`` at the centres (without ``β log ρ`` when
    the diffusion is implicit)."""
    xi = eq.field(rho)
    if eq.beta > 0 and eq.diffuse is None and eq.flux == "upwind":
        xi = xi + eq.beta * eq.log(rho)
    if eq.m:
        xi = xi + eq.m / (eq.m - 1.0) * rho ** (eq.m - 1.0)
    return xi


def local_energy(eq: Equation, rho: np.ndarray) -> tuple[float, float]:
    """``(∫ β ρ log ρ, ∫ H(ρ))`` over the grid, as sums over cells times ``|C|``."""
    volume = float(np.prod(eq.spacing))
    pos = rho[rho > 0]
    entropy = eq.beta * float(np.sum(pos * np.log(pos))) * volume if eq.beta > 0 else 0.0
    internal = float(np.sum(rho ** eq.m)) / (eq.m - 1.0) * volume if eq.m else 0.0
    return entropy, internal


def stable_dt(eq: Equation, rho: np.ndarray, speeds: np.ndarray) -> float:
    """The largest step keeping each explicit stage non-negative and its diffusion stable
    (the module; for the hybrid flux, :mod:`solvers.pde`)."""
    h = np.asarray(eq.spacing)
    porous = eq.m * float(rho.max()) ** (eq.m - 1.0) if eq.m else 0.0
    if eq.flux == "hybrid":
        rate = eq.scale * (2.5 * float(np.sum(speeds / h))
                           + 2.0 * (eq.beta + porous) * float(np.sum(h**-2)))
        return 1.0 / rate if rate > 0 else np.inf
    diffusion = (eq.beta if eq.diffuse is None else 0.0) + porous
    rate = eq.scale * max(2.0 * float(np.sum(speeds / h)), 2.0 * diffusion * float(np.sum(h**-2)))
    return 1.0 / rate if rate > 0 else np.inf


def _rate(eq: Equation, rho: np.ndarray):
    extra = (eq.beta,) if eq.flux == "hybrid" else ()
    rate, speeds = eq.transport(rho, chemical_potential(eq, rho), eq.spacing, *extra)
    return eq.scale * rate, stable_dt(eq, rho, speeds)


def _stage(eq: Equation, rho: np.ndarray, rate: np.ndarray, tau: float) -> np.ndarray:
    """``E(ρ)``: the explicit Euler stage, then the implicit diffusion solve if any. The solve
    conserves the mass in exact arithmetic; its rounding, the same in every line of cells (the
    factors are shared), would add up over steps, so the mass is restored by a scalar factor."""
    out = rho + tau * rate
    if eq.diffuse is None:
        return out
    solved = eq.diffuse(out, eq.scale * eq.beta * tau / np.asarray(eq.spacing) ** 2)
    return solved * (out.sum() / solved.sum())


def step(state: GridState, eq: Equation, dt: float | None = None, until: float = np.inf,
         cfl: float = CFL, order: int = 2) -> GridState:
    """One SSP Runge–Kutta step of ``order`` 2 or 3 and length ``dt`` (``None``: ``cfl`` × the
    stable step, checked again at every stage and shortened when a stage's bound is smaller),
    never past ``until``. A given ``dt`` above the stable step raises ``ValueError``."""
    rate0, limit = _rate(eq, state.rho)
    if dt is not None and dt > limit:
        raise ValueError(f"dt = {dt:.3g} exceeds the stable step {limit:.3g} at t = "
                         f"{state.t:.6g}; pass a smaller dt, or dt=None for an automatic step")
    tau = min(cfl * limit if dt is None else dt, until - state.t)
    keeps = SSP_KEEP[order]
    restart = True
    while restart:
        restart, rho, rate = False, state.rho, rate0
        for k, keep in enumerate(keeps):
            stage = _stage(eq, rho, rate, tau)
            rho = stage if keep == 0 else keep * state.rho + (1.0 - keep) * stage
            if k + 1 == len(keeps):
                break
            rate, limit_k = _rate(eq, rho)
            if dt is None and tau > limit_k:
                tau, restart = cfl * limit_k, True
                break
    t = until if tau == until - state.t else state.t + tau
    return GridState(rho, t, state.step + 1)
