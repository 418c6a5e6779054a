"""Time integrators of the particle flow ``dθ = f(θ, t) dt + dW``, as ``init``/``step`` pairs.

The state is a plain frozen record; the drift ``f(θ, t) -> (N, D)`` is a swappable callable and
the noise increment ``ΔW (N, D)`` (or ``None``) is drawn by the caller, so a step is a pure
function of its arguments.

- ``euler``: ``θ' = θ + Δt f(θ, t) + ΔW`` (explicit Euler; Euler–Maruyama when ``ΔW`` is given).
- ``heun``: predictor ``θ̃ = θ + Δt f(θ, t) + ΔW``, corrector
  ``θ' = θ + Δt/2 (f(θ, t) + f(θ̃, t + Δt)) + ΔW`` (order 2 for deterministic flows; with
  additive noise the same increment enters both stages).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

Drift = Callable[[np.ndarray, float], np.ndarray]


class FlowState(NamedTuple):
    """The state of a particle flow: particles ``theta (N, D)``, MF time ``t``, ``step`` (steps
    taken)."""
    theta: np.ndarray  # (N, D) particles
    t: float  # MF time
    step: int  # number of steps taken


def init(theta: np.ndarray, t: float = 0.0, step: int = 0) -> FlowState:
    """The state at ``theta (N, D)`` (copied), time ``t`` and step count ``step``."""
    return FlowState(np.array(theta), float(t), int(step))


def euler_step(state: FlowState, drift: Drift, dt: float, noise=None) -> FlowState:
    """One explicit Euler (Euler–Maruyama with ``noise`` ``ΔW (N, D)``) step of size ``dt``."""
    theta = state.theta + dt * drift(state.theta, state.t)
    if noise is not None:
        theta = theta + noise
    return FlowState(theta, state.t + dt, state.step + 1)


def heun_step(state: FlowState, drift: Drift, dt: float, noise=None) -> FlowState:
    """One Heun step of size ``dt`` (the module docstring), the same ``noise`` in both stages."""
    f0 = drift(state.theta, state.t)
    predictor = state.theta + dt * f0
    if noise is not None:
        predictor = predictor + noise
    theta = state.theta + 0.5 * dt * (f0 + drift(predictor, state.t + dt))
    if noise is not None:
        theta = theta + noise
    return FlowState(theta, state.t + dt, state.step + 1)


INTEGRATORS = {"euler": euler_step, "heun": heun_step}
