"""The sliced W₂ of uniform measures by sorted projections, compiled.

For uniform measures on the atoms ``x (n, D)`` and ``y (m, D)`` with ``m = k n``, the quantile
functions of ``⟨u, ·⟩_#μ`` and ``⟨u, ·⟩_#ν`` are step functions on the grid ``j/m``, so
``W₂²(⟨u, ·⟩_#μ, ⟨u, ·⟩_#ν) = (1/m) Σ_j (x^u_(⌊j/k⌋) − y^u_(j))²`` with the sorted projections
``x^u_(i)``, ``y^u_(j)``. :func:`gap_sums` returns ``Σ_j (x^u_(⌊j/k⌋) − y^u_(j))²`` for each
direction ``u``.

``y`` comes as equal blocks, ``(B, m/B, D)``, the union of their atoms: the symmetrized law
``μ^G`` of the distance to WI has a block ``M_g x`` per group element. Each block's projections
are sorted apart and the sorted runs merged, and a block marked as ``x`` itself (the identity's)
takes the projections of ``x``, already sorted: at ``G = 2`` a direction costs two sorts of
``n`` numbers instead of sorts of ``n`` and ``2n``.

Sorting is a least-significant-digit radix sort over the bytes of an order-preserving integer
key of each float64 (:func:`radix_sort`): no data-dependent branches, so its time does not
depend on the order of the numbers (a comparison sort of fresh random projections loses most
of its time to mispredicted branches).
"""

import numpy as np
from numba import njit, prange

_SIGN = np.uint64(1 << 63)
_BYTE = np.uint64(255)
#: radix passes: one per byte of a 64-bit key
_PASSES = 8


@njit(cache=True)
def _key(bits):
    """The uint64 key of a float64's bits that orders as the floats do (``−0`` before ``+0``):
    negative numbers' bits inverted, positive ones' sign bit set."""
    return ~bits if bits & _SIGN else bits | _SIGN


@njit(cache=True)
def _bits(key):
    """The float64 bits of a :func:`_key`."""
    return key ^ _SIGN if key & _SIGN else ~key


@njit(cache=True)
def radix_sort(values, keys, spare, counts):
    """Sort the float64 ``values (n,)`` in place, by the bytes of their keys, least significant
    first, in ``keys`` and ``spare`` (``uint64``, at least ``n`` long) and ``counts (8, 256)``
    (int64); a pass whose byte is the same for every key is skipped."""
    n = values.shape[0]
    bits = values.view(np.uint64)
    counts[:] = 0
    for i in range(n):
        key = _key(bits[i])
        keys[i] = key
        for p in range(_PASSES):
            counts[p, (key >> np.uint64(8 * p)) & _BYTE] += 1
    src, dst = keys, spare
    for p in range(_PASSES):
        shift, count = np.uint64(8 * p), counts[p]
        if n == 0 or count[(src[0] >> shift) & _BYTE] == n:
            continue
        start = 0
        for digit in range(256):
            start, count[digit] = start + count[digit], start
        for i in range(n):
            key = src[i]
            digit = (key >> shift) & _BYTE
            dst[count[digit]] = key
            count[digit] += 1
        src, dst = dst, src
    for i in range(n):
        bits[i] = _bits(src[i])


@njit(cache=True)
def _project(atoms, u, out):
    """``out[i] = ⟨u, atoms[i]⟩``, summed over the coordinates in order."""
    for i in range(atoms.shape[0]):
        s = 0.0
        for d in range(atoms.shape[1]):
            s += atoms[i, d] * u[d]
        out[i] = s


@njit(cache=True)
def _merge(src, dst, first, middle, last):
    """``dst[first:last]``: the sorted runs ``src[first:middle]`` (not empty) and
    ``src[middle:last]`` merged, without data-dependent branches."""
    i, j = first, middle
    for out in range(first, last):
        a, b = src[min(i, middle - 1)], src[min(j, last - 1)]
        take_a = (i < middle) & ((j >= last) | (a <= b))
        dst[out] = a if take_a else b
        i += take_a
        j += 1 - take_a


@njit(cache=True)
def _sorted_union(blocks, is_x, u, x_sorted, runs, spare, keys, key_spare, counts):
    """The projections ``⟨u, ·⟩`` of the atoms of ``blocks (B, m_b, D)``, sorted, in ``runs`` or
    ``spare (B·m_b,)`` (returned): each block sorted apart (a block marked in ``is_x`` copies
    ``x_sorted``; the others by :func:`radix_sort` in ``keys``, ``key_spare`` and ``counts``),
    then the runs merged pairwise, doubling their length."""
    width = blocks.shape[1]
    for b in range(blocks.shape[0]):
        run = runs[b * width:(b + 1) * width]
        if is_x[b]:
            run[:] = x_sorted
        else:
            _project(blocks[b], u, run)
            radix_sort(run, keys, key_spare, counts)
    total = runs.shape[0]
    while width < total:
        for first in range(0, total, 2 * width):
            middle, last = min(first + width, total), min(first + 2 * width, total)
            _merge(runs, spare, first, middle, last)
        runs, spare = spare, runs
        width *= 2
    return runs


@njit(parallel=True, cache=True)
def gap_sums(x, blocks, is_x, directions):
    """``out (K,)``: ``Σ_j (x^u_(⌊j/k⌋) − y^u_(j))²`` for the directions ``u = directions[:, q]``
    (``(D, K)``), with ``y`` the union of the atoms of ``blocks (B, m_b, D)``, ``k = B·m_b / n``,
    and the blocks marked in ``is_x (B,)`` equal to ``x (n, D)``. The directions run in
    parallel; each sum is in order, so the result does not depend on the thread count."""
    n, m = x.shape[0], blocks.shape[0] * blocks.shape[1]
    repeats = m // n
    out = np.empty(directions.shape[1])
    for q in prange(directions.shape[1]):
        u = np.ascontiguousarray(directions[:, q])
        longest = max(n, blocks.shape[1])  # the most numbers one radix sort takes
        keys, key_spare = np.empty(longest, np.uint64), np.empty(longest, np.uint64)
        counts = np.empty((_PASSES, 256), np.int64)
        x_sorted = np.empty(n)
        _project(x, u, x_sorted)
        radix_sort(x_sorted, keys, key_spare, counts)
        y_sorted = _sorted_union(blocks, is_x, u, x_sorted, np.empty(m), np.empty(m), keys,
                                 key_spare, counts)
        s = 0.0
        for i in range(n):
            for j in range(i * repeats, (i + 1) * repeats):
                gap = x_sorted[i] - y_sorted[j]
                s += gap * gap
        out[q] = s
    return out
