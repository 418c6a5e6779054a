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
from numba import njit, uint64

from .fast_math import INLINED, JIT, cos_sin_two_pi, log

_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_INV_2_53 = 2.0**-53
#: lanes of one vector of normals (the tiles' lanes are a multiple of it)
VECTOR = 8


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
def _noise_tile(key, step, basis, amp, n, start, lanes, z, out):
    """``out[:, p] (D, ·)`` for the particles ``start + p``, ``p < lanes``, of
    :func:`noise_on_tiles`, computed lane-wise in the scratch ``z (K, ≥ lanes)`` so that the loops
    vectorize. With ``K`` even, a particle's numbers are ``K/2`` whole pairs, each drawn once;
    with ``K`` odd, each number is drawn from its pair alone. The normals are drawn for whole
    vectors of ``VECTOR`` lanes as far as ``z`` has room (the numbers of the next particles'
    counters, unused): a tile of fewer lanes would draw them one at a time. Whole pairs are
    drawn in three lane loops (the uniforms, the radii, the rotations: the operations of
    :func:`normal_pair`, the same bits), whose short dependency chains overlap from lane to lane
    where one loop's long chain would stall."""
    dim, k = basis.shape[0], basis.shape[1]
    first = (step * n + start) * k
    drawn = min(z.shape[1], -(-lanes // VECTOR) * VECTOR)
    if k % 2 == 0:  # first is even: particle p's pairs are (first + p·K)/2 + l, l < K/2
        half = k // 2
        for pair in range(half):
            radius, angle = z[2 * pair], z[2 * pair + 1]
            for p in range(drawn):
                c = uint64(first // 2 + p * half + pair)
                radius[p], angle[p] = _uniform(key, c, 0), _uniform(key, c, 1)
            for p in range(drawn):
                radius[p] = np.sqrt(-2.0 * log(radius[p]))
            for p in range(drawn):
                cosine, sine = cos_sin_two_pi(angle[p])
                radius[p], angle[p] = radius[p] * cosine, radius[p] * sine
    else:
        for j in range(k):
            for p in range(drawn):
                c = first + p * k + j
                cosine, sine = normal_pair(key, uint64(c // 2))
                z[j, p] = cosine if c % 2 == 0 else sine
    for d in range(dim):  # Σ_j c_j z_j from 0 in index order; its first step c_0 z_0 + 0
        if k == 0:
            for p in range(lanes):
                out[d, p] = 0.0
            continue
        c = amp * basis[d, 0]
        for p in range(lanes):
            out[d, p] = c * z[0, p] + 0.0
        for j in range(1, k):
            c = amp * basis[d, j]
            for p in range(lanes):
                out[d, p] += c * z[j, p]


def noise_scratch(lanes: int, basis) -> np.ndarray:
    """The scratch ``z (K, lanes)`` of :func:`noise_on_tiles` for tiles of ``lanes`` (a
    multiple of ``VECTOR``) and ``basis (D, K)``."""
    return np.empty((basis.shape[1], lanes))


@njit(inline="always", **JIT)
def noise_on_tiles(key, step, basis, amp, n, out, first, last, z):
    """``out[t, :, p] = amp · Σ_j Z_{(step·N + i)·K + j} · basis[:, j]`` for every particle
    ``i = t P + p < n`` of the tiles ``first ≤ t < last`` of ``out (N_tiles, D, P)``,
    ``basis (D, K)`` (lanes past ``n`` are not written); ``z``: :func:`noise_scratch` of ``P``.
    Each tile's numbers are its particles', so how the tiles are shared among threads is
    irrelevant."""
    lanes = out.shape[2]
    for t in range(first, last):
        _noise_tile(key, step, basis, amp, n, t * lanes, min(lanes, n - t * lanes), z, out[t])
