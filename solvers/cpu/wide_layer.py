"""The first layer of a wide unit (many inputs ``d``) on a block of samples at once.

Per sample, the first layer's input term ``Σ_j W_{j,p} x_mj`` and its weight gradient
``g_p x_mj`` cost one load and one store of the accumulator per multiply–add, and every sample
reads the whole tile ``W (d, P)`` again: loads, not arithmetic, bound the pass. Here ``BLOCK``
samples go together, four samples by four inputs at a time: each lane vector of ``W`` (or of the
gradient) is loaded once for four samples and four inputs, an accumulator is loaded and stored
once per four multiply–adds, and four rows of ``W`` (or of the gradient) stay in L1 for the whole
block. Every element still gets the same chain of fused multiply–adds, in the same
order (inputs ``j`` in order for ``z``, samples ``m`` in order for the gradient), as the
per-sample passes of :mod:`solvers.cpu.tiles`: the results are bitwise the same.

Where numba compiles for AVX-512 (:data:`REGISTER_BLOCKS`), on the lanes of whole register
blocks (:func:`register_lanes`), the accumulators stay in vector registers instead: four
samples' ``z`` over every input, or four inputs' gradient rows over the whole block of samples,
each lane vector of ``W`` or of ``∂/∂z`` loaded once per four multiply–adds and no accumulator
loaded or stored inside the sum. The last lanes of a tile, past the register blocks, take the
four-by-four passes above.

A kernel's tile has a block buffer ``first (n_0, BLOCK, P)`` (:func:`first_block`). At the
first sample of a block, :func:`first_layer_block` fills it with the block's affine terms; the
generated passes of :mod:`solvers.cpu.tiles` copy a sample's row out of it and store its ``∂/∂z``
back; after the block's last sample, :func:`first_layer_gradient` adds the block's weight
gradient. Both read layer 0 of the :class:`~solvers.cpu.units.CompiledUnit`'s table as
compile-time constants. Units whose first layer has fewer than ``WIDE_MIN`` inputs have no
buffer (``first`` is ``None``): their kernels compile the per-sample passes alone.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from numba import carray, literally, njit, types
from numba.core import config, errors
from numba.extending import overload

from .fast_math import JIT, REFCOUNTED, stack_buffer

#: inputs of the first layer from which it runs on blocks of samples
WIDE_MIN = 8


def _vector_bytes() -> int:
    """Bytes of a vector register of the target numba compiles for: 64 with AVX-512, 32 with
    AVX, 16 otherwise; its features as numba takes them (``NUMBA_CPU_FEATURES``, none for
    ``NUMBA_CPU_NAME=generic``, else the host's)."""
    if config.CPU_FEATURES is not None:
        features = {f[1:] for f in config.CPU_FEATURES.split(",") if f.startswith("+")}
    else:
        features = {f for f, on in llvm.get_host_cpu_features().items() if on}
    return 64 if "avx512f" in features else 32 if "avx" in features else 16


#: bytes of a vector register of the target numba compiles for: 64 (AVX-512), 32 (AVX) or 16
VECTOR_BYTES = _vector_bytes()
#: whether the first layer runs on register blocks: with AVX-512 only. With AVX2 (timed as
#: AVX2 code on an AVX-512 core) the blocks were no faster than the four-by-four kernels in
#: float32 and up to 20 % slower in float64, whose blocks of 16 lanes fill all 16 registers
REGISTER_BLOCKS = VECTOR_BYTES == 64
#: samples per block: a multiple of four (the micro-kernels take four samples at a time); 16
#: with register blocks, whose gradient holds its rows over the block's samples
BLOCK = 16 if REGISTER_BLOCKS else 8


def register_lanes(dtype) -> int:
    """Lanes of a register block: two vectors of ``dtype`` per row of accumulators, eight vectors
    in all (enough independent multiply–add chains to cover their latency, a quarter of the
    register file): 16 float64 or 32 float32 lanes; 0 where the target has no register blocks
    (:data:`REGISTER_BLOCKS`)."""
    return 2 * VECTOR_BYTES // np.dtype(dtype).itemsize if REGISTER_BLOCKS else 0


def affine_registers(out, tt, w, bias, x, m, n_in, n, lanes):
    """:func:`affine_block` on the lanes of whole register blocks of ``lanes`` (a compile-time
    constant; 0: none) below ``n``, four samples' accumulators held over every input; returns
    the lanes it did. Compiled code only."""
    raise TypeError("affine_registers is called from compiled kernels only")


def gradient_registers(grad, w, g, x, m, n_in, n, lanes):
    """:func:`gradient_block` on the inputs ``j < n_in`` (a multiple of four) and the lanes of
    whole register blocks of ``lanes`` below ``n``, four rows of the gradient held over the
    block of samples; returns the lanes it did. Compiled code only."""
    raise TypeError("gradient_registers is called from compiled kernels only")


@njit(inline="always", **JIT)
def _add_outer(acc, row, x0, x1, x2, x3):
    """``acc[r, p] += row[p] x_r`` for ``r < 4``, ``p <`` the block's lanes: one multiply–add
    per accumulator (inlined where the block's lanes are a constant)."""
    for p in range(acc.shape[1]):
        v = row[p]
        acc[0, p] += v * x0
        acc[1, p] += v * x1
        acc[2, p] += v * x2
        acc[3, p] += v * x3


#: the register blocks' options: their accumulators are arrays over the stack (``numba.carray``),
#: which needs numba's reference counting
_REGISTER_OPTIONS = {**JIT, **REFCOUNTED}


def _constant_lanes(lanes) -> int:
    if not isinstance(lanes, types.IntegerLiteral):
        raise errors.TypingError("lanes of a register block must be a compile-time constant")
    return lanes.literal_value


@overload(affine_registers, jit_options=_REGISTER_OPTIONS, prefer_literal=True)
def _affine_registers(out, tt, w, bias, x, m, n_in, n, lanes):
    lanes = _constant_lanes(lanes)  # the lane loops unroll into registers
    if lanes == 0:
        return lambda out, tt, w, bias, x, m, n_in, n, lanes: 0
    size = 4 * lanes

    def affine(out, tt, w, bias, x, m, n_in, n, lanes):
        acc = carray(stack_buffer(out, size), (4, lanes))
        whole = n // lanes * lanes
        for q in range(0, BLOCK, 4):
            i = m + q
            for p0 in range(0, whole, lanes):
                x0, x1, x2, x3 = x[i, 0], x[i + 1, 0], x[i + 2, 0], x[i + 3, 0]
                row = tt[w, p0:p0 + lanes]
                if bias >= 0:
                    b = tt[bias, p0:p0 + lanes]
                    for p in range(lanes):
                        t = row[p]
                        acc[0, p], acc[1, p] = b[p] + t * x0, b[p] + t * x1
                        acc[2, p], acc[3, p] = b[p] + t * x2, b[p] + t * x3
                else:
                    for p in range(lanes):
                        t = row[p]
                        acc[0, p], acc[1, p] = t * x0, t * x1
                        acc[2, p], acc[3, p] = t * x2, t * x3
                for j in range(1, n_in):
                    _add_outer(acc, tt[w + j, p0:p0 + lanes],
                               x[i, j], x[i + 1, j], x[i + 2, j], x[i + 3, j])
                for s in range(4):
                    row = out[q + s, p0:p0 + lanes]
                    for p in range(lanes):
                        row[p] = acc[s, p]
        return whole
    return affine


@overload(gradient_registers, jit_options=_REGISTER_OPTIONS, prefer_literal=True)
def _gradient_registers(grad, w, g, x, m, n_in, n, lanes):
    lanes = _constant_lanes(lanes)
    if lanes == 0:
        return lambda grad, w, g, x, m, n_in, n, lanes: 0
    size = 4 * lanes

    def gradient(grad, w, g, x, m, n_in, n, lanes):
        acc = carray(stack_buffer(grad, size), (4, lanes))
        whole = n // lanes * lanes
        for p0 in range(0, whole, lanes):
            for j in range(0, n_in, 4):
                for r in range(4):
                    row = grad[w + j + r, p0:p0 + lanes]
                    for p in range(lanes):
                        acc[r, p] = row[p]
                for s in range(BLOCK):
                    i = m + s
                    _add_outer(acc, g[s, p0:p0 + lanes], x[i, j], x[i, j + 1], x[i, j + 2],
                               x[i, j + 3])
                for r in range(4):
                    row = grad[w + j + r, p0:p0 + lanes]
                    for p in range(lanes):
                        row[p] = acc[r, p]
        return whole
    return gradient


@njit(**JIT)
def affine_block(out, tt, w, bias, x, m, n_in, n, lanes):
    """``out[s, p] = b_p + Σ_j W_{j,p} x_{m+s, j}`` for the ``BLOCK`` samples from ``m``,
    ``W_{j,p} = tt[w + j, p]``, ``b_p = tt[bias, p]`` (``bias < 0``: no bias); ``out (BLOCK,
    P)``, the sum over ``j`` in order; register blocks of ``lanes`` (:func:`register_lanes`,
    compiled for each value; 0: none), the four-by-four kernels past them."""
    whole = affine_registers(out, tt, w, bias, x, m, n_in, n, literally(lanes))
    for q in range(0, BLOCK, 4):
        x0, x1, x2, x3 = x[m + q, 0], x[m + q + 1, 0], x[m + q + 2, 0], x[m + q + 3, 0]
        if bias >= 0:
            for p in range(whole, n):
                b, t = tt[bias, p], tt[w, p]
                out[q, p] = b + t * x0
                out[q + 1, p] = b + t * x1
                out[q + 2, p] = b + t * x2
                out[q + 3, p] = b + t * x3
        else:
            for p in range(whole, n):
                t = tt[w, p]
                out[q, p] = t * x0
                out[q + 1, p] = t * x1
                out[q + 2, p] = t * x2
                out[q + 3, p] = t * x3
    four = 1 + (n_in - 1) // 4 * 4  # inputs 1 ≤ j < four go by fours
    for j in range(1, four, 4):
        for q in range(0, BLOCK, 4):  # four rows of W, from L1 for the whole block
            i = m + q
            a0, a1, a2, a3 = x[i, j], x[i, j + 1], x[i, j + 2], x[i, j + 3]
            b0, b1, b2, b3 = x[i + 1, j], x[i + 1, j + 1], x[i + 1, j + 2], x[i + 1, j + 3]
            c0, c1, c2, c3 = x[i + 2, j], x[i + 2, j + 1], x[i + 2, j + 2], x[i + 2, j + 3]
            d0, d1, d2, d3 = x[i + 3, j], x[i + 3, j + 1], x[i + 3, j + 2], x[i + 3, j + 3]
            for p in range(whole, n):
                t0, t1 = tt[w + j, p], tt[w + j + 1, p]
                t2, t3 = tt[w + j + 2, p], tt[w + j + 3, p]
                out[q, p] = (((out[q, p] + t0 * a0) + t1 * a1) + t2 * a2) + t3 * a3
                out[q + 1, p] = (((out[q + 1, p] + t0 * b0) + t1 * b1) + t2 * b2) + t3 * b3
                out[q + 2, p] = (((out[q + 2, p] + t0 * c0) + t1 * c1) + t2 * c2) + t3 * c3
                out[q + 3, p] = (((out[q + 3, p] + t0 * d0) + t1 * d1) + t2 * d2) + t3 * d3
    for j in range(four, n_in):
        for s in range(BLOCK):
            xs = x[m + s, j]
            for p in range(whole, n):
                out[s, p] += tt[w + j, p] * xs


@njit(**JIT)
def gradient_block(grad, w, g, x, m, n_in, n, lanes):
    """``grad[w + j, p] += Σ_s g[s, p] x_{m+s, j}`` for ``j < n_in``, the ``BLOCK`` samples from
    ``m`` added in order; ``g (BLOCK, P)``: the first layer's ``∂/∂z`` of each sample;
    register blocks of ``lanes`` as in :func:`affine_block`."""
    four = n_in // 4 * 4  # inputs j < four go by fours
    whole = gradient_registers(grad, w, g, x, m, four, n, literally(lanes))
    for j in range(0, four, 4):
        for q in range(0, BLOCK, 4):  # four rows of the gradient, from L1 for the whole block
            i = m + q
            a0, a1, a2, a3 = x[i, j], x[i + 1, j], x[i + 2, j], x[i + 3, j]
            b0, b1, b2, b3 = x[i, j + 1], x[i + 1, j + 1], x[i + 2, j + 1], x[i + 3, j + 1]
            c0, c1, c2, c3 = x[i, j + 2], x[i + 1, j + 2], x[i + 2, j + 2], x[i + 3, j + 2]
            d0, d1, d2, d3 = x[i, j + 3], x[i + 1, j + 3], x[i + 2, j + 3], x[i + 3, j + 3]
            for p in range(whole, n):
                g0, g1, g2, g3 = g[q, p], g[q + 1, p], g[q + 2, p], g[q + 3, p]
                r0 = (((grad[w + j, p] + g0 * a0) + g1 * a1) + g2 * a2) + g3 * a3
                r1 = (((grad[w + j + 1, p] + g0 * b0) + g1 * b1) + g2 * b2) + g3 * b3
                r2 = (((grad[w + j + 2, p] + g0 * c0) + g1 * c1) + g2 * c2) + g3 * c3
                r3 = (((grad[w + j + 3, p] + g0 * d0) + g1 * d1) + g2 * d2) + g3 * d3
                grad[w + j, p], grad[w + j + 1, p] = r0, r1
                grad[w + j + 2, p], grad[w + j + 3, p] = r2, r3
    for j in range(four, n_in):
        for s in range(BLOCK):
            xs = x[m + s, j]
            for p in range(n):
                grad[w + j, p] += g[s, p] * xs


def first_block(unit, tile: int, dtype):
    """The block buffer ``first (n_0, BLOCK, P)`` of a tile for the
    :class:`~solvers.cpu.units.CompiledUnit` ``unit`` when its first layer is wide, else
    ``None``: the kernels then compile without the blocked passes."""
    n_out, n_in = unit.table[0][:2]
    return np.empty((n_out, BLOCK, tile), dtype) if n_in >= WIDE_MIN else None


def block_like(first):
    """A new block buffer like ``first``, or ``None`` when ``first`` is ``None``, decided when
    the caller compiles (a run-time branch would type the buffer as optional, which the
    overloads below treat as no buffer). Compiled code only."""
    raise TypeError("block_like is called from compiled kernels only")


def slot(first, m, n_samples):
    """The place ``s`` of sample ``m`` in its block, or −1 when it runs alone (``first`` is
    ``None``, or ``m`` is one of the last ``n_samples mod BLOCK`` samples). Compiled code
    only, as the two functions below."""
    raise TypeError("slot is called from compiled kernels only")


def first_layer_block(first, unit, tt, x, m, n):
    """``first[k, s, p] = b_k + Σ_j W_kj x_{m+s, j}``: the first layer's affine terms of the
    block of samples from ``m``, lanes ``p < n`` (nothing when ``first`` is ``None``)."""
    raise TypeError("first_layer_block is called from compiled kernels only")


def first_layer_gradient(first, unit, x, m, n, grad):
    """``grad[W_kj, p] += Σ_s first[k, s, p] x_{m+s, j}``: the first layer's weight gradient of
    the block of samples from ``m``, from their ``∂/∂z`` in ``first`` (nothing when ``first``
    is ``None``)."""
    raise TypeError("first_layer_gradient is called from compiled kernels only")


# Each compiles from the types of its arguments: with ``first`` ``None`` (a narrow unit), to a
# constant −1 or to nothing; otherwise with layer 0 of the unit's table as constants.


@overload(block_like, inline="always", jit_options=JIT)
def _block_like(first):
    if not isinstance(first, types.Array):
        return lambda first: None
    return lambda first: np.empty_like(first)


@overload(slot, inline="always", jit_options=JIT)
def _slot(first, m, n_samples):
    if not isinstance(first, types.Array):
        return lambda first, m, n_samples: -1
    return lambda first, m, n_samples: (m % BLOCK if m - m % BLOCK + BLOCK <= n_samples
                                        else -1)


@overload(first_layer_block, inline="always", jit_options=JIT)
def _first_layer_block(first, unit, tt, x, m, n):
    if not isinstance(first, types.Array):
        return lambda first, unit, tt, x, m, n: None
    n_out, n_in, w_off, b_off = unit.table[0][:4]
    lanes = register_lanes(first.dtype.name)

    def block(first, unit, tt, x, m, n):
        for k in range(n_out):
            affine_block(first[k], tt, w_off + k * n_in, b_off + k if b_off >= 0 else -1, x, m,
                         n_in, n, lanes)
    return block


@overload(first_layer_gradient, inline="always", jit_options=JIT)
def _first_layer_gradient(first, unit, x, m, n, grad):
    if not isinstance(first, types.Array):
        return lambda first, unit, x, m, n, grad: None
    n_out, n_in, w_off = unit.table[0][:3]
    lanes = register_lanes(first.dtype.name)

    def gradient(first, unit, x, m, n, grad):
        for k in range(n_out):
            gradient_block(grad, w_off + k * n_in, first[k], x, m, n_in, n, lanes)
    return gradient
