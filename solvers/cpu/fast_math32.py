"""Activations evaluated in float32, for the float32 kernels: every operation in float32, so
LLVM vectorizes them at twice the float64 vector width (16 lanes of a 512-bit register).

They follow the float64 ``tanh`` and ``sigmoid`` of :mod:`solvers.cpu.fast_math`, sized for
float32 (``_coth_form``): the Cody–Waite reduction ``x = n ln2 + r``, ``|r| ≤ ln2/2``, with
``ln2 = C₁ + C₂`` (``C₁ = 0.693359375`` has 9 significant bits, so ``n·C₁`` is exact), then
``e^r = (R + r)/(R − r)`` with ``R = r coth(r/2) = 2 + r² P(r²)``, ``P`` the degree-2 Taylor
polynomial ``1/6 − u/360 + u²/15120`` (the first term left out, ``u⁴/604800``, is below
2e-10 of ``R``: under 0.002 float32 ulp). Numerators and denominators are scaled by ``2^32``
(``2^(n+32)`` is one 32-bit shift of ``x log₂e + 1.5·2^23 + 159``), so a subnormal result is
rounded once:

- ``ε = σ(−|z|) = 2^n A/(B + 2^n A)``, ``σ(|z|) = 1 − ε``, ``σ' = ε − ε²``;
- ``tanh |z| = (R α − r β)/(R β − r α)`` with ``e^{−2|z|} = 2^n A/B``, ``α = 1 − 2^n``,
  ``β = 1 + 2^n``, and ``tanh' = 4 ε (1 − ε)``.

The argument of ``e`` is clamped to ``−106``, below which ``e^x`` and ``4 e^x`` round to 0 in
float32. Each function is within a few float32 ulp of the exactly rounded value over the whole
float32 range (the bound is asserted in ``tests/test_fast_math32.py``).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .fast_math import INLINED

_F = np.float32
_LOG2E = _F(1.0 / math.log(2.0))
_LN2_HI, _LN2_LO = _F(0.693359375), _F(-2.12194440e-4)  # C₁ (9 significant bits), ln 2 − C₁
#: ``1.5·2^23 + 159``: ``x log₂e`` plus it holds ``n + 159`` in its low bits
_SHIFTER_PLUS_BIAS = _F(12582912.0 + 159.0)
_LOWEST = _F(-106.0)  # e^x and 4 e^x round to 0 below it
_COTH_TAYLOR = (_F(1.0 / 6.0), _F(-1.0 / 360.0), _F(1.0 / 15120.0))  # P(u), increasing degree
_ZERO, _ONE, _TWO = _F(0.0), _F(1.0), _F(2.0)
_TWO_TO_32 = _F(2.0**32)
_TWO_TO_MINUS_32, _FOUR_TIMES_TWO_TO_MINUS_32 = _F(2.0**-32), _F(4.0 * 2.0**-32)


@intrinsic
def _exponent_of(typingctx, t):
    """``2^(n+32)`` for float32 ``t = n + 1.5·2^23 + 159``, ``−158 ≤ n ≤ 0``: ``t``'s bits
    shifted left by 23 in 32-bit integers, which leaves ``n + 159`` alone in the exponent
    field (numba's own integers would be 64-bit)."""

    def codegen(context, builder, sig, args):
        i32, f32 = ir.IntType(32), ir.FloatType()
        bits = builder.shl(builder.bitcast(args[0], i32), ir.Constant(i32, 23))
        return builder.bitcast(bits, f32)

    return types.float32(types.float32), codegen


@njit(**INLINED)
def _coth_form(x):
    """``(r, w, 2^(n+32))`` with ``e^x = 2^n (2 + w + r)/(2 + w − r)`` for a float32
    ``x ≤ 0`` (clamped to ``−106``): ``2 + w = r coth(r/2)``, ``w = r² P(r²)``."""
    x = _LOWEST if x < _LOWEST else x
    t = x * _LOG2E + _SHIFTER_PLUS_BIAS
    n = t - _SHIFTER_PLUS_BIAS
    r = (x - n * _LN2_HI) - n * _LN2_LO
    u = r * r
    p = (_COTH_TAYLOR[2] * u + _COTH_TAYLOR[1]) * u + _COTH_TAYLOR[0]
    return r, u * p, _exponent_of(t)


@njit(**INLINED)
def tanh_and_derivative(z):
    """``(tanh z, 1 − tanh² z)`` in float32 for a scalar ``z``, as the float64
    :func:`solvers.cpu.fast_math.tanh_and_derivative` (scaled by ``2^32``); the sign of ``z``
    (and of a zero) is kept."""
    z = _F(z)
    r, w, scale = _coth_form(-_TWO * abs(z))
    big_r = _TWO + w
    two_n = scale * _TWO_TO_MINUS_32
    alpha, beta = _ONE - two_n, _ONE + two_n
    den = big_r * beta - r * alpha
    scaled_eps = scale * (big_r + r) / den  # 2^32 ε
    derivative = (scaled_eps * (_ONE - scaled_eps * _TWO_TO_MINUS_32)) * \
        _FOUR_TIMES_TWO_TO_MINUS_32
    return math.copysign((big_r * alpha - r * beta) / den, z), derivative


@njit(**INLINED)
def sigmoid_and_derivative(z):
    """``(σ(z), σ'(z))`` in float32 for a scalar ``z``, as the float64
    :func:`solvers.cpu.fast_math.sigmoid_and_derivative` (scaled by ``2^32``)."""
    z = _F(z)
    r, w, scale = _coth_form(-abs(z))
    big_r = _TWO + w
    scaled_a = (big_r + r) * scale  # 2^(n+32) A
    eps = scaled_a / ((big_r - r) * _TWO_TO_32 + scaled_a)
    return (_ONE - eps if z >= _ZERO else eps), eps - eps * eps
