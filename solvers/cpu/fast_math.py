"""Activations for the compiled kernels, written so that LLVM vectorizes them.

PyPI's llvmlite has no vector math library, so ``math.exp``/``math.tanh`` in a loop stay scalar
calls. Here ``exp`` is built from arithmetic only — Cody–Waite reduction ``x = n ln2 + r``,
``|r| ≤ ln2/2``, the degree-13 Taylor polynomial of ``e^r`` (truncation < 1e-17 relative) and
``2^n`` assembled from exponent bits in two halves (so subnormal results round correctly).
``exp_of_nonpositive`` serves arguments ``x ≤ 0`` (also within 1 ulp): there the polynomial is a
degree-11 Chebyshev fit scaled by ``2^−64``, and one product by ``2^(n+64)`` rounds once, as the
two halves do; no upper clamp.

``tanh`` and ``sigmoid`` take fewer operations from the same reduction and
``e^r = (R + r)/(R − r)`` with ``R = r coth(r/2) = 2 + r² P(r²)``, ``P`` of degree 4
(:func:`coth_activations`): with ``e^{−a} = 2^n A/B``, ``A = R + r``, ``B = R − r``, each is one
quotient of such terms, and no ``1 − e`` cancels:

- ``ε = σ(−|z|) = e/(1 + e) = 2^n A/(B + 2^n A)`` (``e = e^{−|z|}``); ``σ(|z|) = 1 − ε``
  (``ε ≤ ½``: no cancellation) and ``σ' = ε (1 − ε) = ε − ε²`` (one multiply–add);
- ``tanh |z| = (1 − e)/(1 + e) = (R α − r β)/(R β − r α)`` with ``e = e^{−2|z|}``,
  ``α = 1 − 2^n``, ``β = 1 + 2^n`` (exact), which at ``n = 0`` is ``−2r/(2R)`` (``r = −2|z|``
  exactly); ``tanh' = 4 ε (1 − ε)`` with ``ε = e/(1 + e)`` (no cancellation at saturation).

``erf`` and ``softplus`` need ``erf``/``log1p`` and call the scalar C library (not vectorized);
their derivatives use the vectorized ``exp``. Every function here agrees with the numpy reference
(:mod:`solvers.activations`) to a few ulp over the whole range, tested in
``tests/test_fast_math.py``. Values are computed in float64 (a float32 input is widened first);
:mod:`solvers.cpu.fast_math32` has the float32 ``tanh`` and ``sigmoid`` of the float32 kernels,
the same ``r coth(r/2)`` form sized for float32.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.cpu import CPUTargetOptions
from numba.extending import intrinsic

from ..activations import ACTIVATIONS

#: compile options shared by every compiled kernel: on-disk cache, no Python division checks
#: (they would block vectorization), fused multiply–add allowed (``contract`` only, no
#: reassociation: sums keep their written order), GIL released.
JIT = {"cache": True, "error_model": "numpy", "nogil": True, "fastmath": {"contract"}}
#: the options of a kernel part that LLVM inlines into each caller (``alwaysinline``): it is
#: compiled once per signature, rather than copied into every call site by numba's typing, and
#: is cached on disk only within its callers
INLINED = {**JIT, "cache": False, "forceinline": True}
#: options of the kernels that run a step's passes, which allocate nothing: no reference
#: counting. Numba counts the references to an array's memory in every view it makes and every
#: array it passes on, two atomic updates of a shared counter each: a fifth of a step on a few
#: particles, and a cache line that threads updating the same arrays' counts pass to and fro.
#: The arrays outlive the kernels (their callers hold them), and a kernel so compiled that
#: would allocate fails to compile ("NRT required but not enabled"). The kernels these call
#: inherit the option unless they set their own (:data:`REFCOUNTED`). (``_nrt`` is numba's
#: option name; were it gone, the kernels would count references as before.)
NO_REFCOUNTS = {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}
#: the option of a kernel that allocates and is called from one without reference counting
REFCOUNTED = {"_nrt": True} if NO_REFCOUNTS else {}
#: parallel options: only the explicit ``prange`` loops run in parallel (numba would otherwise
#: turn every array expression into a parallel region, each with a launch cost)
PARALLEL = {"prange": True, "numpy": False, "reduction": False, "setitem": False,
            "stencil": False, "fusion": False, "comprehension": False}

#: the integer code of each activation inside the CUDA kernels (:mod:`solvers.cuda.kernels`)
ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
TANH, SIGMOID, RELU, ERF, SOFTPLUS, IDENTITY, QUADRATIC = (
    ACTIVATION_CODES[n]
    for n in ("tanh", "sigmoid", "relu", "erf", "softplus", "identity", "quadratic")
)


@intrinsic
def stack_buffer(typingctx, like, size):
    """A pointer to ``size`` (a literal) elements of the array ``like``'s dtype on the stack
    (``numba.carray`` makes it an array): indexed by constants only, as in unrolled loops, LLVM
    keeps its elements in registers."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    dtype, count = like.dtype, size.literal_value

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once(builder, context.get_value_type(dtype), size=count)
    return types.CPointer(dtype)(like, size), codegen


@intrinsic
def _bits_to_float(typingctx, bits):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@intrinsic
def _float_to_bits(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 with its last 32 bits zero: n·_LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_SHIFTER = 6755399441055744.0  # 1.5·2^52: adding it rounds to an integer kept in the low bits
_SHIFTER_BITS = 0x4338000000000000
_INV_FACTORIAL = tuple(1.0 / math.factorial(k) for k in range(14))
_SQRT2 = math.sqrt(2.0)
_TWO_PI = 2.0 * math.pi
_ATANH_SERIES = tuple(1.0 / (2 * k + 1) for k in range(12))
_COS_SERIES = tuple((-1.0) ** k / math.factorial(2 * k) for k in range(9))
_SIN_SERIES = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(9))


def cody_waite_exp(real, limits, log2e, shifter, ln2, coefficients, times_two_to):
    """``exp(x)`` for a scalar ``x`` in the precision ``real``: ``x`` clamped to ``limits =
    (lowest, highest)`` (below which ``e^x`` rounds to 0, above which it overflows), ``n`` the
    nearest integer to ``x log₂e`` (``t = x log₂e + shifter`` holds it in its low bits),
    ``r = (x − n C₁) − n C₂`` with ``ln2 = (C₁, C₂)``, ``p(r)`` the polynomial of
    ``coefficients`` (increasing degree) and ``times_two_to(p, t) = p·2^n``. ``highest``
    ``None``: no upper clamp, for arguments ``x ≤ 0`` only."""
    bounded = limits[1] is not None
    lowest, highest, log2e, shifter, ln2_hi, ln2_lo = (
        real(c) for c in (limits[0], limits[1] if bounded else 0, log2e, shifter, *ln2))
    poly = tuple(real(c) for c in coefficients)
    top = len(poly) - 1

    @njit(**INLINED)
    def exp(x):
        """``e^x`` for a scalar ``x`` (see :func:`cody_waite_exp`)."""
        x = lowest if x < lowest else x
        if bounded:
            x = highest if x > highest else x
        t = x * log2e + shifter
        n = t - shifter
        r = (x - n * ln2_hi) - n * ln2_lo
        p = poly[top]
        for k in range(top - 1, -1, -1):
            p = p * r + poly[k]
        return times_two_to(p, t)

    return exp


@njit(**INLINED)
def _times_two_to(p, t):
    """``p·2^n`` for ``t = n + 1.5·2^52``, in two halves ``2^⌊n/2⌋ · 2^(n − ⌊n/2⌋)``."""
    k = _float_to_bits(t) - _SHIFTER_BITS
    half = k >> 1
    return p * _bits_to_float((half + 1023) << 52) * _bits_to_float((k - half + 1023) << 52)


#: ``e^x`` in float64 to within 1 ulp, with ``exp(x ≤ −746) = 0`` and overflow to ``inf``
exp = cody_waite_exp(np.float64, (-746.0, 710.0), _LOG2E, _SHIFTER, (_LN2_HI, _LN2_LO),
                     _INV_FACTORIAL, _times_two_to)

#: the scale of the polynomial of :data:`exp_of_nonpositive`
_NONPOSITIVE_SCALE = 2.0**-64


@njit(**INLINED)
def _times_two_to_at_most_one(p, t):
    """``p·2^(n+64)`` for ``t = n + 1.5·2^52`` and ``−1086 ≤ n ≤ 0``: with ``p`` the polynomial
    scaled by ``2^−64`` (exactly: a power of two), one product rounds once to ``p·2^n``, as the
    two halves of ``_times_two_to`` round ``p·2^n``."""
    k = _float_to_bits(t) - _SHIFTER_BITS
    return p * _bits_to_float((k + 1087) << 52)


#: the degree-11 Chebyshev fit of ``e^r`` on ``|r| ≤ 1.0001 · ln2/2`` (50-digit arithmetic;
#: relative error 1.6e-17 with the coefficients rounded to float64), increasing degree
_EXP_FIT = (1.0, 1.0, 0.5000000000000019, 0.1666666666666668, 0.04166666666648795,
            0.008333333333319589, 0.0013888888952352863, 0.00019841269890076403,
            2.4801485441561313e-05, 2.755724088722987e-06, 2.763265472252779e-07,
            2.5110049204818658e-08)
#: ``e^x`` for ``x ≤ 0`` (the activations' ``exp(−|z|)``), within 1 ulp as ``exp``: no upper
#: clamp, the fit ``_EXP_FIT`` (two degrees fewer than the Taylor polynomial) and ``2^n`` in one
#: product
exp_of_nonpositive = cody_waite_exp(np.float64, (-746.0, None), _LOG2E, _SHIFTER,
                                    (_LN2_HI, _LN2_LO),
                                    [c * _NONPOSITIVE_SCALE for c in _EXP_FIT],
                                    _times_two_to_at_most_one)


@njit(**INLINED)
def log(x):
    """``ln x`` for normal ``x > 0`` (within a few ulp): ``x = m·2^e`` with ``m ∈ [√½, √2)``,
    ``ln m = 2 atanh s = 2s Σ_k s^{2k}/(2k+1)``, ``s = (m − 1)/(m + 1)``, ``|s| ≤ 0.172``."""
    bits = _float_to_bits(x)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _bits_to_float((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = 0.5 * m if big else m
    e = e + 1 if big else e
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = _ATANH_SERIES[11]
    for k in range(10, -1, -1):
        p = p * s2 + _ATANH_SERIES[k]
    ef = np.float64(e)
    return ef * _LN2_HI + (2.0 * s * p + ef * _LN2_LO)


@njit(**INLINED)
def cos_sin_two_pi(u):
    """``(cos 2πu, sin 2πu)`` for ``|u| < 2⁵¹``: ``u`` reduced exactly to ``r ∈ [−⅛, ⅛]`` and
    a quadrant ``q``, then the Taylor polynomials of ``cos``/``sin`` on ``[−π/4, π/4]`` (degree
    16/17)."""
    v = u - ((u + _SHIFTER) - _SHIFTER)
    q = (4.0 * v + _SHIFTER) - _SHIFTER
    x = _TWO_PI * (v - 0.25 * q)
    x2 = x * x
    c = _COS_SERIES[8]
    for k in range(7, -1, -1):
        c = c * x2 + _COS_SERIES[k]
    sn = _SIN_SERIES[8]
    for k in range(7, -1, -1):
        sn = sn * x2 + _SIN_SERIES[k]
    sn = sn * x
    quadrant = q + 4.0 if q < 0.0 else q  # 0, 1, 2, 3 or 4 (= 0): the angle is x + qπ/2
    odd = quadrant == 1.0 or quadrant == 3.0
    cosine, sine = (sn, c) if odd else (c, sn)
    return (-cosine if (quadrant == 1.0 or quadrant == 2.0) else cosine,
            -sine if (quadrant == 2.0 or quadrant == 3.0) else sine)


def coth_activations(real, lowest, ln2, coefficients, scale_exponent, exponent_of) -> tuple:
    """``(tanh_and_derivative, sigmoid_and_derivative)`` in the precision ``real``
    (``np.float64`` or ``np.float32``), from the ``r coth(r/2)`` form of the module docstring.

    The reduction ``x = n ln2 + r`` of ``x = −|z|`` (``−2|z|`` for tanh) clamped to ``lowest``
    (below which ``e^x`` and ``4e^x`` round to 0), with ``ln2 = (C₁, C₂)``;
    ``R = 2 + r² P(r²)`` with ``P`` of ``coefficients`` (increasing degree). Numerators and
    denominators are scaled by ``2^k``, ``k = scale_exponent``, so that a subnormal result is
    rounded once: ``exponent_of(t)`` is ``2^(n+k)`` for ``t = x log₂e + 1.5·2^m + b + k``
    (``m`` mantissa bits, ``b`` the exponent bias: ``t`` holds ``n + b + k`` in its low bits).
    Each returned function maps a scalar ``z`` to a pair of ``real`` values; every constant is
    a ``real``, so a float32 evaluation has no float64 arithmetic."""
    info = np.finfo(real)
    zero, one, two = real(0.0), real(1.0), real(2.0)
    lowest, log2e, ln2_hi, ln2_lo = real(lowest), real(1.0 / math.log(2.0)), real(ln2[0]), \
        real(ln2[1])
    shifter = real(1.5 * 2.0**info.nmant + info.maxexp - 1 + scale_exponent)
    poly = tuple(real(c) for c in coefficients)
    top = len(poly) - 1
    scale_up, scale_down = real(2.0**scale_exponent), real(2.0**-scale_exponent)
    four_scale_down = real(4.0 * 2.0**-scale_exponent)

    @njit(**INLINED)
    def coth_form(x):
        """``(r, R, 2^(n+k))`` with ``e^x = 2^n (R + r)/(R − r)``, ``R = r coth(r/2)``, for a
        scalar ``x ≤ 0``."""
        x = lowest if x < lowest else x
        t = x * log2e + shifter
        n = t - shifter
        r = (x - n * ln2_hi) - n * ln2_lo
        u = r * r
        p = poly[top]
        for k in range(top - 1, -1, -1):
            p = p * u + poly[k]
        return r, two + u * p, exponent_of(t)

    @njit(**INLINED)
    def sigmoid_and_derivative(z):
        """``(σ(z), σ'(z))`` for a scalar ``z``: ``ε = σ(−|z|) = 2^n A/(B + 2^n A)`` with
        ``e^{−|z|} = 2^n A/B``, ``A = R + r``, ``B = R − r`` (numerator and denominator scaled
        by ``2^k``), ``σ(|z|) = 1 − ε``, ``σ' = ε − ε²``."""
        z = real(z)
        r, big_r, scale = coth_form(-abs(z))
        scaled_a = (big_r + r) * scale  # 2^(n+k) A
        eps = scaled_a / ((big_r - r) * scale_up + scaled_a)
        return (one - eps if z >= zero else eps), eps - eps * eps

    @njit(**INLINED)
    def tanh_and_derivative(z):
        """``(tanh z, 1 − tanh² z)`` for a scalar ``z``: with ``e^{−2|z|} = 2^n A/B``,
        ``tanh |z| = (B − 2^n A)/(B + 2^n A)`` written as ``(R α − r β)/(R β − r α)``,
        ``α = 1 − 2^n``, ``β = 1 + 2^n``, and ``tanh' = 4 ε (1 − ε)`` with
        ``ε = 2^n A/(B + 2^n A)`` (scaled by ``2^k``); the sign of ``z`` (and of a zero) is
        kept."""
        z = real(z)
        r, big_r, scale = coth_form(-two * abs(z))
        two_n = scale * scale_down  # 1 ± 2^n is exact down to 2^−m−1, then rounds to 1
        alpha, beta = one - two_n, one + two_n
        den = big_r * beta - r * alpha
        scaled_eps = scale * (big_r + r) / den  # 2^k ε
        derivative = (scaled_eps * (one - scaled_eps * scale_down)) * four_scale_down
        return math.copysign((big_r * alpha - r * beta) / den, z), derivative

    return tanh_and_derivative, sigmoid_and_derivative


@njit(**INLINED)
def _two_to_n_plus_64(t):
    """``2^(n+64)`` for ``t = x log₂e + 1.5·2^52 + 1087``, ``n ≥ −1079``: ``t``'s bits shifted
    left by 52, which leaves ``n + 1087`` alone in the exponent field."""
    return _bits_to_float(_float_to_bits(t) << 52)


#: ``(R(r) − 2)/r²`` with ``R(r) = r coth(r/2)``, as a polynomial ``P(u)`` in ``u = r²``: the
#: degree-4 interpolant at the Chebyshev nodes of ``[0, (1.0001 · ln2/2)²]`` (50-digit
#: arithmetic; the relative error it gives ``e^r`` is below 1.2e-18), increasing degree
_COTH_FIT = (0.1666666666666666, -0.0027777777777564404, 6.613756471622828e-05,
             -1.6534060033836456e-06, 4.1437662804024295e-08)
#: float64 ``tanh`` and ``sigmoid`` with their derivatives, within 3 ulp of the exactly rounded
#: values: clamped at ``x ≥ −748``, scaled by ``2^64``
tanh_and_derivative, sigmoid_and_derivative = coth_activations(
    np.float64, -748.0, (_LN2_HI, _LN2_LO), _COTH_FIT, 64, _two_to_n_plus_64)


@njit(**INLINED)
def softplus_and_derivative(z):
    """``(log(1 + e^z), 1/(1 + e^{−z}))`` for a scalar ``z``, without overflow."""
    z = np.float64(z)
    e = exp_of_nonpositive(-abs(z))
    q = 1.0 / (1.0 + e)
    return max(z, 0.0) + math.log1p(e), (q if z >= 0.0 else e * q)
