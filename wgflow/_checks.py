"""Input validation shared by the public API: errors name the parameter and the fix."""

from __future__ import annotations

import numbers

import numpy as np


def numeric(value, name: str, shape: str) -> np.ndarray:
    """``value`` as a float array, or an error naming ``name`` and the expected ``shape``."""
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array of shape {shape}; could not convert "
                         f"it ({exc})") from None


def as_array2d(value, width: int, name: str, what: str) -> np.ndarray:
    """``value`` as a finite float array of shape ``(n, width)`` (a 1-D input is one row)."""
    arr = numeric(value, name, f"({what}s, {width})")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != width or arr.shape[0] == 0:
        raise ValueError(
            f"{name} must have shape ({what}, {width}), got {np.shape(value)}; "
            f"pass one row of length {width} per {what}"
        )
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} contains NaN or inf (first at index {tuple(bad.tolist())})")
    return arr


def as_particles(theta, dim: int, name: str = "theta") -> np.ndarray:
    """Particles ``(N, D)``."""
    return as_array2d(theta, dim, name, "particle")


def as_samples(x, dim: int, name: str) -> np.ndarray:
    """Samples ``(M, dim)``."""
    return as_array2d(x, dim, name, "sample")


def is_real(value) -> bool:
    """A real number (not a bool, a string or an array)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def positive(value, name: str, integer: bool = False):
    """``value`` if it is a finite positive number (integer if asked)."""
    ok = is_real(value) and np.isfinite(value) and value > 0
    if integer:
        ok = ok and float(value) == int(value)
    if not ok:
        kind = "a positive integer" if integer else "a positive finite number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value) if integer else float(value)


def nonnegative(value, name: str) -> float:
    if not (is_real(value) and np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value!r}")
    return float(value)


def choice(value, allowed, name: str):
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, got {value!r}")
    return value
