"""Activations as compile-time constants of the compiled kernels.

A kernel receives the activation as a :class:`CompiledActivation` argument, whose numba type
names the activation: numba compiles (and caches) each kernel once per activation it is called
with, and :func:`activate` resolves, while the kernel is typed, to the evaluation of that
activation in that storage dtype at one lane: a function compiled once per signature that LLVM
inlines into the caller's loop over the lanes (:data:`solvers.cpu.fast_math.INLINED`), which then
vectorizes. A run compiles its own activation only, and no kernel branches on the activation
at run time.

The lane evaluations use the vectorizable activations of :mod:`solvers.cpu.fast_math` (float64) and,
on float32 buffers, of :mod:`solvers.cpu.fast_math32` (float32, twice the vector width): the
activation's ``precision`` ``"storage"`` (the default) evaluates in the buffers' dtype,
``"float64"`` in float64 whatever the storage. ``erf`` and ``softplus`` are evaluated in float64
either way; ``relu``, ``identity`` and ``quadratic`` give the same bits in both precisions.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.extending import NativeValue, models, overload, register_model, unbox

from ..activations import ACTIVATIONS
from . import fast_math32
from .fast_math import (
    INLINED,
    exp_of_nonpositive,
    sigmoid_and_derivative,
    softplus_and_derivative,
    tanh_and_derivative,
)

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

#: how the compiled kernels evaluate the activations: in the storage dtype, or in float64
ACTIVATION_PRECISIONS = ("storage", "float64")


class ActivationType(types.Type):
    """The numba type of :class:`CompiledActivation` ``name`` evaluated at ``precision``: one
    type per activation and precision, with no run-time value."""

    def __init__(self, name: str, precision: str = "storage"):
        self.activation, self.precision = name, precision
        suffix = "" if precision == "storage" else f", {precision}"
        super().__init__(name=f"CompiledActivation({name}{suffix})")


register_model(ActivationType)(models.OpaqueModel)


@unbox(ActivationType)
def _unbox_activation(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


class CompiledActivation:
    """The activation ``name`` evaluated at ``precision`` (one of
    :data:`ACTIVATION_PRECISIONS`) as a kernel argument (see the module docstring)."""

    def __init__(self, name: str, precision: str = "storage"):
        self.name, self.precision = name, precision
        # read by numba's dispatch, without a lookup
        self._numba_type_ = ActivationType(name, precision)

    def __repr__(self):
        return f"CompiledActivation({self.name!r}, {self.precision!r})"


def _pair_lane(pair):
    """The lane evaluation of a scalar ``z ↦ (σ(z), σ'(z))``."""
    def lane(z, h, dh, r, p):
        h[r, p], dh[r, p] = pair(z)

    return njit(**INLINED)(lane)


def _erf_lane(z, h, dh, r, p):
    zp = np.float64(z)
    h[r, p] = math.erf(zp)
    dh[r, p] = _TWO_OVER_SQRT_PI * exp_of_nonpositive(-zp * zp)


def _piecewise_polynomial_lanes(real) -> dict:
    """The lane evaluations of ``relu``, ``identity`` and ``quadratic`` with constants of the
    storage dtype ``real`` (exact in either precision). A lane evaluation maps the value ``z``
    to ``h[r, p]`` and ``dh[r, p]``."""
    zero, one, two = real(0), real(1), real(2)

    def relu_lane(z, h, dh, r, p):
        h[r, p] = max(z, zero)
        dh[r, p] = one if z > zero else zero

    def identity_lane(z, h, dh, r, p):
        h[r, p] = z
        dh[r, p] = one

    def quadratic_lane(z, h, dh, r, p):
        h[r, p] = z * z
        dh[r, p] = two * z

    return {name: njit(**INLINED)(lane) for name, lane in (
        ("relu", relu_lane), ("identity", identity_lane), ("quadratic", quadratic_lane))}


#: the lane evaluations in float64, by activation
_LANES = {"tanh": _pair_lane(tanh_and_derivative), "sigmoid": _pair_lane(sigmoid_and_derivative),
          "erf": njit(**INLINED)(_erf_lane),
          "softplus": _pair_lane(softplus_and_derivative),
          **_piecewise_polynomial_lanes(np.float64)}
#: the lane evaluations of float32 buffers at precision ``"storage"``
_FLOAT32_LANES = {**_LANES, "tanh": _pair_lane(fast_math32.tanh_and_derivative),
                  "sigmoid": _pair_lane(fast_math32.sigmoid_and_derivative),
                  **_piecewise_polynomial_lanes(np.float32)}
#: the activations whose float32 evaluation differs from their float64 one
FLOAT32_EVALUATED = ("tanh", "sigmoid")

#: every activation of ``solvers.activations.ACTIVATIONS``, as a kernel argument
COMPILED_ACTIVATIONS = {name: CompiledActivation(name) for name in ACTIVATIONS}
_FLOAT64_EVALUATED = {name: CompiledActivation(name, "float64") for name in FLOAT32_EVALUATED}


def compiled_activation(name: str, dtype, precision: str = "storage") -> CompiledActivation:
    """The kernel argument of activation ``name`` for buffers of ``dtype`` evaluated at
    ``precision``: the float64 flavour only where it changes the result (float32 buffers,
    :data:`FLOAT32_EVALUATED`), so no other call compiles a kernel twice."""
    if precision not in ACTIVATION_PRECISIONS:
        raise ValueError(f"activation_precision must be one of {ACTIVATION_PRECISIONS}, got "
                         f"{precision!r}")
    if precision == "float64" and np.dtype(dtype) == np.float32 and name in FLOAT32_EVALUATED:
        return _FLOAT64_EVALUATED[name]
    return COMPILED_ACTIVATIONS[name]


def activate(activation, z, h, dh, row, p):
    """``h[row, p] = σ(z[row, p])`` and ``dh[row, p] = σ'(z[row, p])`` for the
    :class:`CompiledActivation` ``activation``; ``h``, ``dh`` are ``(rows, lanes)`` tile
    buffers, ``z`` one too or the value ``z[row, p]`` itself (in the buffers' dtype).
    Compiled code only: numba replaces the call by the activation's evaluation at one lane
    (the caller's loop over the lanes vectorizes, see :func:`solvers.cpu.tiles.forward`)."""
    raise TypeError("activate is called from compiled kernels only")


@overload(activate, jit_options=INLINED)
def _activate_lane(activation, z, h, dh, row, p):
    if isinstance(activation, ActivationType):
        float32 = activation.precision == "storage" and h.dtype == types.float32
        lane = (_FLOAT32_LANES if float32 else _LANES)[activation.activation]
        if isinstance(z, types.Array):
            def impl(activation, z, h, dh, row, p):
                lane(z[row, p], h, dh, row, p)
        else:
            def impl(activation, z, h, dh, row, p):
                lane(z, h, dh, row, p)

        return impl
    return None
