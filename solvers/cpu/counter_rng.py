"""Counter-based standard normals: number ``c`` of stream ``key`` is a pure function of
``(key, c)``, so any backend, thread or device draws any part of a stream and gets the same
numbers, and the compiled flow draws each step's noise inside its loop.

``u_s(i) = (⌊h(key ⊕ h(2i + s + γ)) / 2¹¹⌋ + ½) · 2⁻⁵³ ∈ (0, 1)`` with ``h`` the SplitMix64
finalizer and ``γ`` its increment, and the Box–Muller pair ``i``,
``(Z_{2i}, Z_{2i+1}) = sqrt(−2 ln u₀(i)) · (cos 2πu₁(i), sin 2πu₁(i))``: one logarithm, square
root and angle give two numbers. The noise of step ``k``, particle ``i`` and basis direction
``j`` (of ``K``) is ``Z_c`` with ``c = (k·N + i)·K + j``. :func:`normals` is the numpy
reference; :func:`normal_pair` the compiled version (vectorizable ``log``, ``cos``/``sin`` of
:mod:`solvers.cpu.fast_math`), equal to it within a few ulp.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

from .fast_math import INLINED, JIT, PARALLEL, cos_sin_two_pi, log

_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_INV_2_53 = 2.0**-53
#: particles per block when noise is drawn in parallel, and the pairs below which it is serial
NOISE_BLOCK = 256
#: lanes of one vector of normals (``NOISE_BLOCK`` is a multiple of it)
VECTOR = 8
PARALLEL_MIN_NUMBERS = 1 << 14


def _mix_np(z):
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def _uniform_np(key, counters, s):
    bits = _mix_np(np.uint64(key) ^ _mix_np(counters * np.uint64(2) + np.uint64(s + _GAMMA)))
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * _INV_2_53


def normals(key: int, start: int, count: int) -> np.ndarray:
    """``Z_start, …, Z_{start+count−1}`` of stream ``key`` (numpy reference): ``(count,)``."""
    first = start // 2
    pairs = np.arange(first, (start + count + 1) // 2, dtype=np.uint64)
    radius = np.sqrt(-2.0 * np.log(_uniform_np(key, pairs, 0)))
    angle = 2.0 * np.pi * _uniform_np(key, pairs, 1)
    z = np.empty(2 * len(pairs))
    z[0::2], z[1::2] = radius * np.cos(angle), radius * np.sin(angle)
    return z[start - 2 * first:start - 2 * first + count]


def stream_key(seed_sequence: np.random.SeedSequence) -> int:
    """A 64-bit stream key drawn from a ``SeedSequence``."""
    return int(seed_sequence.generate_state(1, np.uint64)[0])


@njit(**INLINED)
def _mix(z):
    z = (z ^ (z >> uint64(30))) * uint64(_M1)
    z = (z ^ (z >> uint64(27))) * uint64(_M2)
    return z ^ (z >> uint64(31))


@njit(**INLINED)
def _uniform(key, counter, s):
    bits = _mix(key ^ _mix(counter * uint64(2) + uint64(s) + uint64(_GAMMA)))
    return (np.float64(bits >> uint64(11)) + 0.5) * _INV_2_53


@njit(**INLINED)
def normal_pair(key, pair):
    """``(Z_{2·pair}, Z_{2·pair+1})`` of stream ``key`` (both ``uint64``)."""
    radius = np.sqrt(-2.0 * log(_uniform(key, pair, 0)))
    cosine, sine = cos_sin_two_pi(_uniform(key, pair, 1))
    return radius * cosine, radius * sine


@njit(**JIT)
def _noise_block(key, step, basis, amp, start, stop, out, z, xi):
    """Rows ``start:stop`` of :func:`noise_into`, computed lane-wise over the block's particles
    in the scratch ``z (K, ≥ P)``, ``ξ (D, ≥ P)`` (``P = stop − start``) so that the loops
    vectorize. With ``K`` even, a particle's numbers are ``K/2`` whole pairs, each drawn once;
    with ``K`` odd, each number is drawn from its pair alone. The normals are drawn for whole
    vectors of ``VECTOR`` lanes as far as ``z`` has room (the numbers of the next particles'
    counters, unused): a block of fewer lanes would draw them one at a time."""
    n, dim, k, lanes = out.shape[0], basis.shape[0], basis.shape[1], stop - start
    first = (step * n + start) * k
    drawn = min(z.shape[1], -(-lanes // VECTOR) * VECTOR)
    if k % 2 == 0:  # first is even: particle p's pairs are (first + p·K)/2 + l, l < K/2
        half = k // 2
        for pair in range(half):
            for p in range(drawn):
                z[2 * pair, p], z[2 * pair + 1, p] = normal_pair(
                    key, uint64(first // 2 + p * half + pair))
    else:
        for j in range(k):
            for p in range(drawn):
                c = first + p * k + j
                cosine, sine = normal_pair(key, uint64(c // 2))
                z[j, p] = cosine if c % 2 == 0 else sine
    for d in range(dim):
        for p in range(lanes):
            xi[d, p] = 0.0
    for d in range(dim):
        for j in range(k):
            c = amp * basis[d, j]
            for p in range(lanes):
                xi[d, p] += c * z[j, p]
    for p in range(lanes):
        for d in range(dim):
            out[start + p, d] = xi[d, p]


@njit(parallel=PARALLEL, **JIT)
def _noise_in_parallel(key, step, basis, amp, out):
    n, dim, k = out.shape[0], basis.shape[0], basis.shape[1]
    for b in prange((n + NOISE_BLOCK - 1) // NOISE_BLOCK):
        _noise_block(key, step, basis, amp, b * NOISE_BLOCK, min(n, (b + 1) * NOISE_BLOCK), out,
                     np.empty((k, NOISE_BLOCK)), np.empty((dim, NOISE_BLOCK)))


@njit(inline="always", **JIT)
def _parallel_noise(n, basis):
    """Whether :func:`noise_into` draws the noise of ``n`` particles in parallel."""
    return n * basis.shape[1] >= PARALLEL_MIN_NUMBERS


def noise_scratch(n, basis, serial=False):
    """The scratch ``(z, ξ)`` of :func:`noise_into` (or, ``serial``, of
    :func:`noise_on_one_thread`) for ``n`` particles: ``(K, n')`` (``n' = VECTOR⌈n/VECTOR⌉``,
    see ``_noise_block``) and ``(D, n)`` where the draw is serial, empty where it is
    parallel (its blocks allocate their own) and without directions (``K = 0``: no noise to
    draw)."""
    serial = serial or not _parallel_noise.py_func(n, basis)
    lanes = n if basis.shape[1] > 0 and serial else 0
    return (np.empty((basis.shape[1], -(-lanes // VECTOR) * VECTOR)),
            np.empty((basis.shape[0], lanes)))


@njit(inline="always", **JIT)
def noise_on_one_thread(key, step, basis, amp, out, scratch):
    """:func:`noise_into` on one thread, for callers compiled without parallel code;
    ``scratch``: :func:`noise_scratch` with ``serial=True``."""
    # a literal first row would compile a second specialization of _noise_block
    _noise_block(key, step, basis, amp, np.intp(0), out.shape[0], out, *scratch)


@njit(**JIT)
def noise_into(key, step, basis, amp, out, scratch):
    """``out[i] = amp · Σ_j Z_{(step·N + i)·K + j} · basis[:, j]`` for every particle:
    ``out (N, D)``, ``basis (D, K)``; ``scratch``: :func:`noise_scratch` of ``N`` and ``basis``
    (a step allocates nothing below the parallel threshold). Blocks are independent, so the
    thread count is irrelevant."""
    if _parallel_noise(out.shape[0], basis):
        _noise_in_parallel(key, step, basis, amp, out)
    else:
        noise_on_one_thread(key, step, basis, amp, out, scratch)
