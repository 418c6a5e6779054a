"""Activations σ and their derivatives σ', looked up by name (numpy reference versions).

Every entry maps ``z ↦ σ(z)`` and ``z ↦ σ'(z)`` elementwise on arrays of any shape. ``odd`` records
whether ``σ(−z) = −σ(z)`` (signed-permutation symmetries of hidden layers need odd activations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.special


class Activation(NamedTuple):
    """An activation ``σ`` by name: ``value(z)``, ``derivative(z)`` (numpy, elementwise), and
    whether it is ``odd``."""
    name: str
    value: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[np.ndarray], np.ndarray]
    odd: bool


def _sigmoid_derivative(z):
    e = np.exp(-np.abs(z))  # e/(1+e)² has no cancellation where σ saturates (σ(1−σ) has)
    return e / (1.0 + e) ** 2


def _tanh_derivative(z):
    e = np.exp(-2.0 * np.abs(z))  # 4e/(1+e)² = 1 − tanh², without its cancellation
    return 4.0 * e / (1.0 + e) ** 2


_TWO_OVER_SQRT_PI = 2.0 / np.sqrt(np.pi)

ACTIVATIONS = {
    a.name: a
    for a in (
        Activation("tanh", np.tanh, _tanh_derivative, odd=True),
        Activation("sigmoid", scipy.special.expit, _sigmoid_derivative, odd=False),
        Activation("relu", lambda z: np.maximum(z, 0.0), lambda z: (z > 0).astype(z.dtype), False),
        Activation("erf", scipy.special.erf, lambda z: _TWO_OVER_SQRT_PI * np.exp(-z * z), True),
        Activation("softplus", lambda z: np.logaddexp(0.0, z), scipy.special.expit, odd=False),
        Activation("identity", lambda z: z, np.ones_like, odd=True),
        Activation("quadratic", lambda z: z * z, lambda z: 2.0 * z, odd=False),
    )
}


def get_activation(name: str) -> Activation:
    """The activation called ``name``; raises with the list of known names otherwise."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}"
        ) from None
