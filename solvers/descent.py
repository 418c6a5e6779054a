"""Gradient descent on a finite-parameter loss with weight decay, for many copies at once.

``θ_{k+1} = θ_k − η [g(θ_k, k) + 2γ θ_k]`` for ``θ (D, C)`` (``C`` independent copies, one
column each), with per-copy step sizes ``η`` and weight decays ``γ`` broadcast over the
columns; ``g(θ, k)`` is the full gradient or the minibatch gradient of step ``k``. A copy that
becomes NaN/inf stops there (its later frames repeat the non-finite value) and is reported.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Descent(NamedTuple):
    """A recorded descent of ``C`` independent copies: step counts ``steps (F,)``, parameters
    ``theta (F, D, C)`` at the ``F`` recorded frames, and which copies ``diverged (C,)``."""

    steps: np.ndarray  # (F,) step counts of the recorded frames
    theta: np.ndarray  # (F, D, C)
    diverged: np.ndarray  # (C,) bool


def descend(gradient, theta0, lr, weight_decay, steps: int, record_every: int) -> Descent:
    """Run ``steps`` steps from ``theta0 (D, C)``; record every ``record_every`` steps.

    Parameters
    ----------
    gradient : callable
        ``(θ (D, C), k) -> (D, C)``.
    lr, weight_decay : float or array (C,)
    """
    theta = np.array(theta0, dtype=float)
    lr = np.broadcast_to(np.asarray(lr, dtype=float), theta.shape[1:])
    decay = np.broadcast_to(np.asarray(weight_decay, dtype=float), theta.shape[1:])
    frames, at = [theta.copy()], [0]
    live = np.ones(theta.shape[1:], dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            new = theta - lr * (gradient(theta, k) + 2.0 * decay * theta)
            ok = np.all(np.isfinite(new), axis=0)
            theta = np.where(live & ok, new, np.where(live, np.inf, theta))
            live &= ok
            if (k + 1) % record_every == 0 or k + 1 == steps:
                frames.append(theta.copy())
                at.append(k + 1)
    return Descent(np.array(at), np.stack(frames), ~live)
