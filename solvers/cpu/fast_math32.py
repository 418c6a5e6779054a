"""Activations evaluated in float32, for the float32 kernels: every operation in float32, so
LLVM vectorizes them at twice the float64 vector width (16 lanes of a 512-bit register).

They are the float64 ``tanh`` and ``sigmoid`` of :mod:`solvers.cpu.fast_math`, built by the
same :func:`~solvers.cpu.fast_math.coth_activations` sized for float32: the Cody–Waite
reduction ``x = n ln2 + r``, ``|r| ≤ ln2/2``, with ``ln2 = C₁ + C₂`` (``C₁ = 0.693359375`` has
9 significant bits, so ``n·C₁`` is exact), then
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

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from .fast_math import coth_activations


@intrinsic
def _two_to_n_plus_32(typingctx, t):
    """``2^(n+32)`` for float32 ``t = x log₂e + 1.5·2^23 + 159``, ``−158 ≤ n ≤ 0``: ``t``'s
    bits shifted left by 23 in 32-bit integers, which leaves ``n + 159`` alone in the exponent
    field (numba's own integers would be 64-bit)."""

    def codegen(context, builder, sig, args):
        i32, f32 = ir.IntType(32), ir.FloatType()
        bits = builder.shl(builder.bitcast(args[0], i32), ir.Constant(i32, 23))
        return builder.bitcast(bits, f32)

    return types.float32(types.float32), codegen


#: ``1/6 − u/360 + u²/15120``: ``P`` of ``R = 2 + r² P(r²)``, increasing degree
_COTH_TAYLOR = (1.0 / 6.0, -1.0 / 360.0, 1.0 / 15120.0)
#: float32 ``tanh`` and ``sigmoid`` with their derivatives: ``ln2 = C₁ + C₂`` with
#: ``C₁ = 0.693359375`` (9 significant bits), clamped at ``x ≥ −106``, scaled by ``2^32``
tanh_and_derivative, sigmoid_and_derivative = coth_activations(
    np.float32, -106.0, (0.693359375, -2.12194440e-4), _COTH_TAYLOR, 32, _two_to_n_plus_32)
