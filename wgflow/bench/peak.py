"""The multiply–add peak of the numba threads, measured: the yardstick of the bench's ``% peak``.

Each thread runs fused multiply–adds on a block of accumulators held in vector registers
(:func:`peak_block`), with no load or store inside the loop: the rate is the cores'
multiply–add throughput at their present clock, for the vector width numba compiles for
(:data:`solvers.cpu.wide_layer.VECTOR_BYTES`). A flop count of ``2`` per multiply–add.
"""

from __future__ import annotations

import time

import numba
import numpy as np
from numba import carray, njit, prange
from numba.extending import overload

from solvers.cpu.fast_math import JIT, PARALLEL, stack_buffer
from solvers.cpu.wide_layer import VECTOR_BYTES

#: loop trips of one thread in a timed call (each: rows × lanes multiply–adds)
TRIPS = 1 << 20
#: timed calls; the fastest counts
REPEATS = 7


def peak_block(dtype) -> tuple[int, int]:
    """``(rows, lanes)`` of the accumulator block: eight vectors in all (enough independent
    chains to cover the multiply–add latency), rows of at least 16 lanes (LLVM unrolls a lane
    loop of 8 whole before it vectorizes loops, and then leaves it scalar)."""
    itemsize = np.dtype(dtype).itemsize
    lanes = max(16, 2 * VECTOR_BYTES // itemsize)
    return max(1, 8 * VECTOR_BYTES // (lanes * itemsize)), lanes


def _multiply_adds(start, trips, a, b):
    """``trips`` rounds of ``acc ← acc·a + b`` on the block (:func:`peak_block`), each row
    started at ``start (lanes,)``; returns the sum of the block (so that the loop is not
    optimized away). Compiled code only."""
    raise TypeError("_multiply_adds is called from compiled code only")


@overload(_multiply_adds, jit_options=JIT)
def _multiply_adds_of(start, trips, a, b):
    rows, lanes = peak_block(start.dtype.name)
    size = rows * lanes

    def run(start, trips, a, b):
        acc = carray(stack_buffer(start, size), (rows, lanes))
        for r in range(rows):
            for p in range(lanes):
                acc[r, p] = start[p]
        for _ in range(trips):
            for r in range(rows):
                for p in range(lanes):
                    acc[r, p] = acc[r, p] * a + b
        total = 0.0
        for r in range(rows):
            for p in range(lanes):
                total += acc[r, p]
        return total
    return run


@njit(parallel=PARALLEL, **JIT)
def on_every_thread(start, trips, a, b, out):
    """``out[k]``: the sum of a register block after ``trips`` rounds of ``acc ← acc·a + b``
    from ``start (lanes,)``, one ``k`` per thread (``out (threads,)``)."""
    for k in prange(out.shape[0]):
        out[k] = _multiply_adds(start, trips, a, b)


def fma_peak(dtype) -> float:
    """GFLOP/s of all numba threads together on fused multiply–adds of ``dtype`` (fastest of
    :data:`REPEATS` calls, each thread :data:`TRIPS` rounds of a register block)."""
    dtype = np.dtype(dtype)
    (rows, lanes), threads = peak_block(dtype), numba.get_num_threads()
    start, out = np.full(lanes, 0.5, dtype), np.empty(threads)
    a, b = dtype.type(0.999), dtype.type(1e-3)  # a contraction: the block stays finite
    on_every_thread(start, 16, a, b, out)  # compile, or load the cache
    best = np.inf
    for _ in range(REPEATS):
        tic = time.perf_counter()
        on_every_thread(start, TRIPS, a, b, out)
        best = min(best, time.perf_counter() - tic)
    return 2 * rows * lanes * TRIPS * threads / best / 1e9
