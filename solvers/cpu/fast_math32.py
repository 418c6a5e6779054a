"""Activations evaluated in float32, for the float32 kernels: every operation in float32, so
LLVM vectorizes them at twice the float64 vector width (16 lanes of a 512-bit register).

``exp`` follows the float64 ``exp`` of :mod:`solvers.cpu.fast_math` (both from
:func:`solvers.cpu.fast_math.cody_waite_exp`), sized for float32: Cody–Waite reduction
``x = n ln2 + r``, ``|r| ≤ ln2/2``, with ``ln2 = C₁ + C₂`` (``C₁ = 0.693359375`` has 9
significant bits, so ``n·C₁`` is exact), the degree-7 Taylor polynomial of ``e^r`` (truncation
< 6e-9 relative, a tenth of a float32 ulp) and ``2^n`` assembled from float32 exponent bits in
two halves, so subnormal results are rounded once. ``tanh`` and ``sigmoid`` (and their
derivatives) are rational expressions of this ``exp``; for
``|z| < 0.55`` ``tanh z = z·p(z²)`` with ``p`` the degree-5 interpolant of
``tanh(√u)/√u`` at the Chebyshev nodes of ``[0, 0.55²]`` (relative error 2.7e-9 with its
coefficients rounded to float32, computed in 40-digit arithmetic).

Each function is within a few float32 ulp of the exactly rounded value over the whole float32
range (the bound is asserted in ``tests/test_fast_math32.py``).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .fast_math import INLINED, cody_waite_exp

_LN2 = (0.693359375, -2.12194440e-4)  # C₁ (9 significant bits) and C₂ = ln 2 − C₁ to float32
_SHIFTER = 12582912.0  # 1.5·2^23: adding it rounds to an integer kept in the low bits
_SHIFTER_BITS = 0x4B400000
_LIMITS = (-104.0, 89.0)  # e^x rounds to 0 below −103.98 and overflows above 88.73
_TANH_SMALL = 0.55  # below it, tanh is the polynomial of _TANH_POLY
_TANH_POLY = (1.0, -0.3333331048488617, 0.13332456350326538, -0.053842321038246155,
              0.02103821560740471, -0.006233633495867252)  # float32 values


@intrinsic
def _times_two_to_the_integer_in(typingctx, p, t):
    """``p · 2^n`` for float32 ``p`` and ``t = n + 1.5·2^23`` (``|n| ≤ 150``), computed as
    ``p · 2^⌊n/2⌋ · 2^(n − ⌊n/2⌋)`` with 32-bit integers (numba would widen them to 64)."""

    def codegen(context, builder, sig, args):
        p_value, shifted = args
        i32, f32 = ir.IntType(32), ir.FloatType()
        k = builder.sub(builder.bitcast(shifted, i32), ir.Constant(i32, _SHIFTER_BITS))
        half = builder.ashr(k, ir.Constant(i32, 1))
        scales = [builder.bitcast(builder.shl(builder.add(part, ir.Constant(i32, 127)),
                                              ir.Constant(i32, 23)), f32)
                  for part in (half, builder.sub(k, half))]
        return builder.fmul(builder.fmul(p_value, scales[0]), scales[1])

    return types.float32(types.float32, types.float32), codegen


@intrinsic
def _times_two_to_at_most_one(typingctx, p, t):
    """``p · 2^(n+24)`` for float32 ``p`` and ``t = n + 1.5·2^23`` with ``−150 ≤ n ≤ 0``: with
    ``p`` the polynomial scaled by ``2^−24`` (exactly), one product rounds once to ``p·2^n``,
    as the two halves do (the same bits)."""

    def codegen(context, builder, sig, args):
        p_value, shifted = args
        i32, f32 = ir.IntType(32), ir.FloatType()
        k = builder.sub(builder.bitcast(shifted, i32), ir.Constant(i32, _SHIFTER_BITS))
        scale = builder.bitcast(builder.shl(builder.add(k, ir.Constant(i32, 127 + 24)),
                                            ir.Constant(i32, 23)), f32)
        return builder.fmul(p_value, scale)

    return types.float32(types.float32, types.float32), codegen


_TAYLOR = [1.0 / math.factorial(k) for k in range(8)]
#: ``e^x`` in float32 for a float32 ``x``, with ``exp(x < −104) = 0`` and overflow to ``inf``
exp = cody_waite_exp(np.float32, _LIMITS, 1.0 / math.log(2.0), _SHIFTER, _LN2, _TAYLOR,
                     _times_two_to_the_integer_in)
#: ``e^x`` for float32 ``x ≤ 0`` (the activations' ``exp(−|z|)``): the bits of ``exp``
exp_of_nonpositive = cody_waite_exp(np.float32, (_LIMITS[0], None), 1.0 / math.log(2.0),
                                    _SHIFTER, _LN2, [c * 2.0**-24 for c in _TAYLOR],
                                    _times_two_to_at_most_one)


_ZERO, _ONE, _TWO, _FOUR, _SMALL = (np.float32(c) for c in (0, 1, 2, 4, _TANH_SMALL))
_TANH_COEFFICIENTS = tuple(np.float32(c) for c in _TANH_POLY)


@njit(**INLINED)
def tanh_and_derivative(z):
    """``(tanh z, 1 − tanh² z)`` in float32 for a scalar ``z``: ``sign z · (1 − e)/(1 + e)``,
    ``e = exp(−2|z|)``, and for ``|z| < 0.55`` (where ``1 − e`` cancels) ``z·p(z²)``;
    ``tanh' = 4e/(1 + e)²`` (no cancellation at saturation)."""
    z = np.float32(z)
    a = abs(z)
    e = exp_of_nonpositive(-_TWO * a)
    q = _ONE / (_ONE + e)
    u = z * z
    p = _TANH_COEFFICIENTS[-1]
    for k in range(len(_TANH_COEFFICIENTS) - 2, -1, -1):
        p = p * u + _TANH_COEFFICIENTS[k]
    big = (_ONE - e) * q
    value = z * p if a < _SMALL else (big if z >= _ZERO else -big)
    return value, _FOUR * e * q * q


@njit(**INLINED)
def sigmoid_and_derivative(z):
    """``(s, s (1 − s))`` in float32 for a scalar ``z``: ``s = 1/(1 + e)`` for ``z ≥ 0`` and
    ``e/(1 + e)`` otherwise, ``e = exp(−|z|)``; ``s' = e/(1 + e)²``."""
    z = np.float32(z)
    e = exp_of_nonpositive(-abs(z))
    q = _ONE / (_ONE + e)
    return (q if z >= _ZERO else e * q), e * q * q
