"""Time stepping of ``∂_t ρ = ς ∇·(ρ ∇ξ)`` on the grid, as an ``init``/``step`` pair over a
plain frozen state.

``ξ = field(ρ) + β log ρ + H'(ρ)``: ``field`` is a swappable callable giving the energy's
non-local and external part at the centres (``U + W ⋆ ρ``, or a risk's first variation);
the entropy ``β ∫ ρ log ρ`` and the porous-medium energy ``H(ρ) = ρ^m/(m − 1)`` are local and
taken here. ``log ρ`` is evaluated as ``log max(ρ, LOG_FLOOR)`` so that empty cells have a finite
chemical potential.

The step is the strong-stability-preserving Runge–Kutta method of order 2 (Heun):
``ρ¹ = ρ + Δt L(ρ)``, ``ρ' = ½ρ + ½(ρ¹ + Δt L(ρ¹))``, a convex combination of explicit Euler
stages. Each stage keeps ``ρ ≥ 0`` when ``Δt ≤ 1/(2 Σ_i a_i/h_i)`` (``a_i`` the largest face
speed on axis ``i``: the outflow of a cell is then at most its mass), and the diffusion is
stable when ``Δt ≤ 1/(2 Σ_i D/h_i²)`` with ``D = β + m max ρ^{m−1}``: :func:`stable_dt` is
the smaller bound. With ``dt=None`` the step is ``cfl`` times it, checked again at the
predictor (and shortened when the predictor's bound is smaller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

#: ``log ρ`` is taken as ``log max(ρ, LOG_FLOOR)``
LOG_FLOOR = 1e-300
#: default fraction of the stable step
CFL = 0.5


class Equation(NamedTuple):
    field: Callable[[np.ndarray], np.ndarray]  # ρ -> U + W ⋆ ρ (+ data term), shape of ρ
    spacing: tuple[float, ...]  # h (k,)
    beta: float  # entropy weight β
    m: float  # porous-medium exponent m > 1, or 0 for none
    scale: float  # ς
    transport: Callable  # reference.transport or compiled.transport


class GridState(NamedTuple):
    rho: np.ndarray  # (n_1[, n_2]) cell averages
    t: float  # MF time
    step: int  # steps taken


def init(rho, t: float = 0.0, step: int = 0) -> GridState:
    return GridState(np.array(rho, dtype=float), float(t), int(step))


def chemical_potential(eq: Equation, rho: np.ndarray) -> np.ndarray:
    """``ξ = field(ρ) + β log ρ + m ρ^{m−1}/(m − 1)`` at the centres."""
    xi = eq.field(rho)
    if eq.beta > 0:
        xi = xi + eq.beta * np.log(np.maximum(rho, LOG_FLOOR))
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
    """The largest step keeping each Euler stage non-negative and its diffusion stable."""
    h = np.asarray(eq.spacing)
    diffusion = eq.beta + (eq.m * float(rho.max()) ** (eq.m - 1.0) if eq.m else 0.0)
    rate = eq.scale * max(2.0 * float(np.sum(speeds / h)), 2.0 * diffusion * float(np.sum(h**-2)))
    return 1.0 / rate if rate > 0 else np.inf


def _rate(eq: Equation, rho: np.ndarray):
    rate, speeds = eq.transport(rho, chemical_potential(eq, rho), eq.spacing)
    return eq.scale * rate, stable_dt(eq, rho, speeds)


def step(state: GridState, eq: Equation, dt: float | None = None, until: float = np.inf,
         cfl: float = CFL) -> GridState:
    """One SSP-RK2 step of length ``dt`` (``None``: ``cfl`` × the stable step), never past
    ``until``. A given ``dt`` above the stable step raises ``ValueError``."""
    rate0, limit = _rate(eq, state.rho)
    if dt is not None and dt > limit:
        raise ValueError(f"dt = {dt:.3g} exceeds the stable step {limit:.3g} at t = "
                         f"{state.t:.6g}; pass a smaller dt, or dt=None for an automatic step")
    tau = min(cfl * limit if dt is None else dt, until - state.t)
    while True:
        predictor = state.rho + tau * rate0
        rate1, limit1 = _rate(eq, predictor)
        if dt is not None or tau <= limit1:
            break
        tau = cfl * limit1
    rho = 0.5 * state.rho + 0.5 * (predictor + tau * rate1)
    t = until if tau == until - state.t else state.t + tau
    return GridState(rho, t, state.step + 1)
