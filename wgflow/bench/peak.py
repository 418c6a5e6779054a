"""The multiply–add peak of the numba threads, measured: the yardstick of the bench's ``% peak``.

Each thread runs fused multiply–adds on float32 accumulators held in vector registers, with no
load or store inside the loop: the rate is the cores' multiply–add throughput at their present
clock, for the vector width numba compiles for (:data:`solvers.cpu.wide_layer.VECTOR_BYTES`).
The float64 peak is half the float32 one: the same multiply–add instructions per cycle, on half
as many lanes. (It is derived rather than timed because LLVM leaves some float64 accumulator
loops scalar, e.g. for AVX2 targets, which would understate it.) A flop count of ``2`` per
multiply–add.
"""

from __future__ import annotations

import functools
import time

import numba
import numpy as np
from numba import carray, njit, prange
from numba.extending import overload

from solvers.cpu.fast_math import JIT, PARALLEL, stack_buffer
from solvers.cpu.wide_layer import VECTOR_BYTES

#: loop trips of one thread in a timed call (each: a multiply–add on every accumulator)
TRIPS = 1 << 20
#: timed calls; the fastest counts
REPEATS = 7
#: lanes of each of the two rows of float32 accumulators: four vectors (eight in all, enough
#: independent chains to cover the multiply–add latency; and at least 16 lanes, since LLVM
#: unrolls a lane loop of 8 whole before it vectorizes loops, and then leaves it scalar)
LANES = VECTOR_BYTES


def _multiply_adds(start, trips, a, b):
    """``trips`` rounds of ``acc ← acc·a + b`` on two rows of :data:`LANES` accumulators, each
    started at ``start (LANES,)``; returns their sum (so that the loop is not optimized away).
    Compiled code only."""
    raise TypeError("_multiply_adds is called from compiled code only")


@overload(_multiply_adds, jit_options=JIT)
def _multiply_adds_of(start, trips, a, b):
    lanes, size = LANES, 2 * LANES  # constants: the lane loops unroll into registers

    def run(start, trips, a, b):
        acc = carray(stack_buffer(start, size), (2, lanes))
        for r in range(2):
            for p in range(lanes):
                acc[r, p] = start[p]
        for _ in range(trips):
            for p in range(lanes):
                acc[0, p] = acc[0, p] * a + b
                acc[1, p] = acc[1, p] * a + b
        total = 0.0
        for r in range(2):
            for p in range(lanes):
                total += acc[r, p]
        return total
    return run


@njit(parallel=PARALLEL, **JIT)
def on_every_thread(start, trips, a, b, out):
    """``out[k]``: the sum of the accumulators after ``trips`` rounds of ``acc ← acc·a + b``
    from ``start (LANES,)``, one ``k`` per thread (``out (threads,)``)."""
    for k in prange(out.shape[0]):
        out[k] = _multiply_adds(start, trips, a, b)


@functools.cache
def _float32_peak() -> float:
    threads = numba.get_num_threads()
    start, out = np.full(LANES, 0.5, np.float32), np.empty(threads)
    a, b = np.float32(0.999), np.float32(1e-3)  # a contraction: the accumulators stay finite
    on_every_thread(start, 16, a, b, out)  # compile, or load the cache
    best = np.inf
    for _ in range(REPEATS):
        tic = time.perf_counter()
        on_every_thread(start, TRIPS, a, b, out)
        best = min(best, time.perf_counter() - tic)
    return 2 * 2 * LANES * TRIPS * threads / best / 1e9


def fma_peak(dtype) -> float:
    """GFLOP/s of all numba threads together on fused multiply–adds of ``dtype`` (float32:
    the fastest of :data:`REPEATS` calls, each thread :data:`TRIPS` rounds, timed once per
    process; float64: half)."""
    peak = _float32_peak()
    return peak if np.dtype(dtype) == np.float32 else peak / 2
