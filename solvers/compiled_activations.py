"""Activations as compile-time constants of the compiled kernels.

A kernel receives the activation as a :class:`CompiledActivation` argument, whose numba type
names the activation: numba compiles (and caches) each kernel once per activation it is called
with, and :func:`activate` resolves, while the kernel is typed, to the one row loop of that
activation. A run compiles its own activation only, and no kernel branches on the activation
at run time.

The row loops evaluate the vectorizable activations of :mod:`solvers.fast_math`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import NativeValue, models, overload, register_model, unbox

from .activations import ACTIVATIONS
from .fast_math import (
    JIT,
    exp,
    sigmoid_and_derivative,
    softplus_and_derivative,
    tanh_and_derivative,
)

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


class ActivationType(types.Type):
    """The numba type of :class:`CompiledActivation` ``name``: one type per activation, with no
    run-time value."""

    def __init__(self, name: str):
        self.activation = name
        super().__init__(name=f"CompiledActivation({name})")


register_model(ActivationType)(models.OpaqueModel)


@unbox(ActivationType)
def _unbox_activation(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


class CompiledActivation:
    """The activation ``name`` as a kernel argument (see the module docstring)."""

    def __init__(self, name: str):
        self.name = name
        self._numba_type_ = ActivationType(name)  # read by numba's dispatch, without a lookup

    def __repr__(self):
        return f"CompiledActivation({self.name!r})"


#: every activation of ``solvers.activations.ACTIVATIONS``, as a kernel argument
COMPILED_ACTIVATIONS = {name: CompiledActivation(name) for name in ACTIVATIONS}


def _tanh_row(z, h, dh, row, n):
    for p in range(n):
        h[row, p], dh[row, p] = tanh_and_derivative(z[row, p])


def _sigmoid_row(z, h, dh, row, n):
    for p in range(n):
        h[row, p], dh[row, p] = sigmoid_and_derivative(z[row, p])


def _relu_row(z, h, dh, row, n):
    for p in range(n):
        h[row, p] = max(z[row, p], 0.0)
        dh[row, p] = 1.0 if z[row, p] > 0.0 else 0.0


def _erf_row(z, h, dh, row, n):
    for p in range(n):
        zp = np.float64(z[row, p])
        h[row, p] = math.erf(zp)
        dh[row, p] = _TWO_OVER_SQRT_PI * exp(-zp * zp)


def _softplus_row(z, h, dh, row, n):
    for p in range(n):
        h[row, p], dh[row, p] = softplus_and_derivative(z[row, p])


def _identity_row(z, h, dh, row, n):
    for p in range(n):
        h[row, p] = z[row, p]
        dh[row, p] = 1.0


def _quadratic_row(z, h, dh, row, n):
    for p in range(n):
        h[row, p] = z[row, p] * z[row, p]
        dh[row, p] = 2.0 * z[row, p]


_ROWS = {name: njit(inline="always", **JIT)(row) for name, row in (
    ("tanh", _tanh_row), ("sigmoid", _sigmoid_row), ("relu", _relu_row), ("erf", _erf_row),
    ("softplus", _softplus_row), ("identity", _identity_row), ("quadratic", _quadratic_row))}


def activate(activation, z, h, dh, row, n):
    """``h[row, :n] = σ(z[row, :n])`` and ``dh[row, :n] = σ'(z[row, :n])`` for the
    :class:`CompiledActivation` ``activation``; ``z``, ``h``, ``dh`` are ``(rows, lanes)`` tile
    buffers. Compiled code only: numba replaces the call by the activation's row loop."""
    raise TypeError("activate is called from compiled kernels only")


@overload(activate, inline="always")
def _activate_rows(activation, z, h, dh, row, n):
    if isinstance(activation, ActivationType):
        rows = _ROWS[activation.activation]

        def impl(activation, z, h, dh, row, n):
            rows(z, h, dh, row, n)

        return impl
    return None
