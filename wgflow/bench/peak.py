"""The multiply–add peak of the numba threads, measured: the yardstick of the bench's ``% peak``.

Each thread runs fused multiply–adds on a register block of accumulators (as the wide layer's
micro-kernels hold them, :func:`solvers.cpu.wide_layer.register_lanes`), with no load or store
inside the loop: the rate is the cores' multiply–add throughput at their present clock, for the
vector width numba compiles for. A flop count of ``2`` per multiply–add.
"""

from __future__ import annotations

import time

import numba
import numpy as np
from numba import carray, njit, prange
from numba.extending import overload

from solvers.cpu.fast_math import JIT, PARALLEL, stack_buffer
from solvers.cpu.wide_layer import register_lanes

#: loop trips of one thread in a timed call (each: 4 × lanes multiply–adds)
TRIPS = 1 << 20
#: timed calls; the fastest counts
REPEATS = 7


def _multiply_adds(start, trips, a, b):
    """``trips`` rounds of ``acc ← acc·a + b`` on a register block started at ``start``;
    returns the sum of the block (so that the loop is not optimized away). Compiled code only."""
    raise TypeError("_multiply_adds is called from compiled code only")


@overload(_multiply_adds, jit_options=JIT)
def _multiply_adds_of(start, trips, a, b):
    lanes = register_lanes(start.dtype.name)
    size = 4 * lanes

    def run(start, trips, a, b):
        acc = carray(stack_buffer(start, size), (4, lanes))
        for r in range(4):
            for p in range(lanes):
                acc[r, p] = start[p]
        for _ in range(trips):
            for p in range(lanes):
                acc[0, p] = acc[0, p] * a + b
                acc[1, p] = acc[1, p] * a + b
                acc[2, p] = acc[2, p] * a + b
                acc[3, p] = acc[3, p] * a + b
        total = 0.0
        for r in range(4):
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
    lanes, threads = register_lanes(dtype), numba.get_num_threads()
    start, out = np.full(lanes, 0.5, dtype), np.empty(threads)
    a, b = dtype.type(0.999), dtype.type(1e-3)  # a contraction: the block stays finite
    on_every_thread(start, 16, a, b, out)  # compile, or load the cache
    best = np.inf
    for _ in range(REPEATS):
        tic = time.perf_counter()
        on_every_thread(start, TRIPS, a, b, out)
        best = min(best, time.perf_counter() - tic)
    return 2 * 4 * lanes * TRIPS * threads / best / 1e9
