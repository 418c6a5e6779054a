"""Numba ``network_output`` and ``vjp`` of layered units: same calls, shapes and meaning as the
numpy reference :mod:`solvers.layered`, with memory ``O((N + M)·D)``.

Particles are cut into tiles of ``P`` lanes (:mod:`solvers.cpu.tiles`); the partition depends only
on ``N`` and the unit, never on the thread count, and every sum runs in a fixed order, so results
are bitwise reproducible under any ``NUMBA_NUM_THREADS``. The kernels read the particles as
tiles, ``tts (N_tiles, D, P)`` (:func:`tiled`), and write the gradient as tiles of float64 sums:
the compiled flow keeps its particles so from step to step, and ``network_output``/``vjp``
transpose once per call.

- ``network_output``: at most ``MAX_CHUNKS`` chunks of whole tiles, in parallel; each chunk sums
  its tiles' outputs into its own ``(M, c)`` partial; the partials are added in chunk order.
- ``vjp``: tiles in parallel; each particle's sum over samples runs in sample order.

Small problems (fewer than ``PARALLEL_MIN_WORK`` particle–sample pairs) run the same partition on
one thread, avoiding the cost of starting threads.

What compiles is what a call runs: the kernels are compiled per activation (a
:class:`~solvers.cpu.activations.CompiledActivation` argument) and carry no parallel code:
the Python-level ``network_output`` and ``vjp`` run them in Python threads, the compiled flow
(:mod:`solvers.cpu.flow`) on its threads' runs of tiles, with the same argument types.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

from .. import checks
from ..layered import UnitSpec
from . import tiles, wide_layer
from .activations import compiled_activation
from .fast_math import INLINED, JIT, NO_REFCOUNTS
from .units import compiled_unit

#: upper bound on the parallel chunks of ``network_output`` (each holds an ``(M, c)`` partial)
MAX_CHUNKS = 64
#: particle–sample pairs below which a call runs on one thread
PARALLEL_MIN_WORK = 1 << 15
#: target size of one tile's working set (``theta``, activations, gradients), in bytes: stays in L2
TILE_BYTES = 256 * 1024
MAX_TILE = 256
#: the most bytes of forward passes kept for the backward pass (:func:`make_kept`): the flow
#: then takes its samples in blocks whose passes fit; when not even ``ROW_STEP`` samples fit,
#: the backward pass recomputes them (memory stays ``O((N + M)·D)``)
KEEP_BYTES = 16 << 20
#: samples per block of kept forward passes come in multiples of this (a multiple of
#: ``SAMPLE_BLOCK``, so a float32 gradient's sample blocks end on their ends)
ROW_STEP = 64
#: samples per block of a float32 gradient sum (``_vjp_tile``): each block is summed in
#: float32, the blocks in float64, so the rounding error does not grow with ``M``; a multiple of
#: :data:`solvers.cpu.wide_layer.BLOCK`
SAMPLE_BLOCK = 64


def tile_size(spec: UnitSpec, dtype) -> int:
    """Lanes per tile: the largest multiple of 8 and of the register block's lanes
    (:func:`~solvers.cpu.wide_layer.register_lanes`; at most ``MAX_TILE``, at least one of them)
    whose working set per sample fits ``TILE_BYTES``: ``tt`` and ``grad`` (``D`` rows), ``z``,
    ``h``, ``dh`` (``R``) and ``g``, ``g_next`` (``W``). The other ``3W`` rows of ``g`` and
    ``g_next`` serve only the four-sample backward pass of narrow units (``D ≤ 16``, where
    ``MAX_TILE`` binds), and the float64 total is touched once per block of samples, so neither
    counts."""
    unit = compiled_unit(spec)  # the buffers' rows and width (see make_scratch)
    per_lane = np.dtype(dtype).itemsize * (2 * spec.dim + 3 * unit.rows + 2 * unit.width)
    lanes = max(8, wide_layer.register_lanes(dtype))
    return int(min(MAX_TILE, max(lanes, TILE_BYTES // per_lane // lanes * lanes)))


def _tile_buffers(unit, dim, tile, dtype):
    rows, width = unit.rows, unit.width * tiles.SAMPLES  # g, g_next: a row per sample too
    return (np.empty((dim, tile), dtype), np.empty((rows, tile), dtype),
            np.empty((rows, tile), dtype), np.empty((rows, tile), dtype),
            np.empty((width, tile), dtype), np.empty((width, tile), dtype),
            np.empty((dim, tile), dtype), np.empty((dim, tile), np.float64))


_compiled_tile_buffers = njit(inline="always", **JIT)(_tile_buffers)


def scratch_buffers(unit, dim, tile, dtype):
    """One tile's buffers for the :class:`~solvers.cpu.units.CompiledUnit` ``unit``:
    ``tt (D, P)``, ``z, h, dh (R, P)``, ``g, g_next (W, P)``, ``grad (D, P)`` (see
    :mod:`solvers.cpu.tiles`), the float64 total of the gradient's sample blocks ``(D, P)``, and
    the first layer's block buffer ``(n_0, BLOCK, P)`` of a wide first layer or ``None``
    (:func:`solvers.cpu.wide_layer.first_block`). Plain numpy for callers in Python;
    :func:`make_scratch` in compiled code."""
    return (*_tile_buffers(unit, dim, tile, dtype), wide_layer.first_block(unit, tile, dtype))


@njit(**JIT)
def make_scratch(unit, dim, tile, dtype, first=None):
    """:func:`scratch_buffers` in compiled code, the block buffer a new one like ``first`` (or
    ``None``, :func:`solvers.cpu.wide_layer.block_like`)."""
    # a tuple sum: numba compiles no starred tuple of mixed types
    return _compiled_tile_buffers(unit, dim, tile, dtype) + (  # noqa: RUF005
        wide_layer.block_like(first),)


def make_kept(unit, n, n_samples, tile, dtype, limit=None, whole=False):
    """``(kept_h, kept_dh)``: what the backward pass reads of the forward passes of every tile
    and of a block of ``M_b`` samples: the outputs of the layers below the top,
    ``(N_tiles, M_b, out_row, P)``, and ``σ'(z)``, ``(N_tiles, M_b, R, P)``. ``M_b`` is all
    ``n_samples`` when they fit in ``limit`` bytes (default :data:`KEEP_BYTES`), else (unless
    ``whole``: the caller needs every sample's output before any backward pass) the most
    samples, a multiple of :data:`ROW_STEP`, that fit; when none fit, ``(0, 0, 0, 0)`` arrays
    (the backward pass recomputes them). The unit's own outputs are not kept: the backward
    pass never reads them."""
    tiles_, below = -(-n // tile), unit.out_row
    per_sample = tiles_ * (below + unit.rows) * tile * np.dtype(dtype).itemsize
    room = (KEEP_BYTES if limit is None else limit) // max(per_sample, 1)
    rows = n_samples if room >= n_samples else (0 if whole else room // ROW_STEP * ROW_STEP)
    if rows == 0:
        tiles_ = below = 0
    return (np.empty((tiles_, rows, below, tile), dtype),
            np.empty((tiles_, rows, unit.rows if tiles_ else 0, tile), dtype))


def scratch_lanes(tile: int, n: int) -> int:
    """Lanes of the tiles of ``n`` particles (:func:`tiled`), of their scratch and of the kept
    forward passes: a whole tile, or its first ``8⌈n/8⌉`` lanes when one tile holds every
    particle (no pass touches more, so small ``N`` clears and keeps no idle lanes)."""
    return min(tile, -(-n // 8) * 8)


def tiled(theta: np.ndarray, lanes: int) -> np.ndarray:
    """``theta (N, D)`` as tiles ``(⌈N/P⌉, D, P)`` of ``P = lanes`` particles:
    ``tts[t, k, p] = θ_{tP+p, k}``, the lanes past ``N`` zero. (Once per call, so in numpy:
    a compiled copy would add its compile to a first run.)"""
    n, dim = theta.shape
    tts = np.zeros((-(-n // lanes), dim, lanes), theta.dtype)
    full = n // lanes
    tts[:full] = theta[:full * lanes].reshape(full, lanes, dim).transpose(0, 2, 1)
    if full < tts.shape[0]:
        tts[full, :, :n - full * lanes] = theta[full * lanes:].T
    return tts


def untile(tts: np.ndarray, out: np.ndarray) -> None:
    """``out (N, D)`` from the tiles ``tts (n_tiles, D, P)``: ``out[t P + p] = tts[t, :, p]``
    (in ``out``'s dtype)."""
    n, lanes = out.shape[0], tts.shape[2]
    full = n // lanes
    rows = tts.transpose(0, 2, 1)  # (n_tiles, P, D)
    out[:full * lanes] = rows[:full].reshape(full * lanes, out.shape[1])
    if full < tts.shape[0]:
        out[full * lanes:] = rows[full, :n - full * lanes]


@njit(inline="always", **JIT)
def _tile_of(tts, s, n):
    """The tile of the ``n`` particles from ``s`` (a multiple of the tile's lanes) and the
    lanes its passes run over: ``n`` up to a multiple of 8 (lanes past ``N`` are zero, and no
    pass reads them out)."""
    return tts[s // tts.shape[2]], min(tts.shape[2], (n + 7) // 8 * 8)


@njit(inline="always", **JIT)
def _forward_chunk(unit, activation, tts, x, start, stop, partial, scratch, kept):
    """``partial[m] = Σ_{start ≤ i < stop} σ_*(x_m, θ_i)`` tile by tile of ``tts`` (``start`` a
    multiple of its lanes); the passes are written into ``kept`` (:func:`make_kept`) when it is
    not empty."""
    _, z, h, dh, _, _, _, _, first = scratch
    kept_h, kept_dh = kept
    keep = kept_dh.shape[0] > 0
    out_row, tile = unit.out_row, tts.shape[2]
    for m in range(x.shape[0]):  # a block of samples fills the first rows alone
        for k in range(partial.shape[1]):
            partial[m, k] = 0.0
    for s in range(start, stop, tile):
        n = min(tile, stop - s)
        tt, lanes = _tile_of(tts, s, n)
        for m in range(x.shape[0]):
            dhm = kept_dh[s // tile, m] if keep else dh
            slot = wide_layer.slot(first, m, x.shape[0])  # wide first layer: blocks of samples
            if slot == 0:
                wide_layer.first_layer_block(first, unit, tt, x, m, lanes)
            tiles.forward(unit, activation, tt, x, m, lanes, z, h, dhm, first, slot)
            for k in range(partial.shape[1]):
                partial[m, k] += tiles.lane_sum(h, out_row + k, n)
            if keep:
                for r in range(out_row):
                    for p in range(lanes):
                        kept_h[s // tile, m, r, p] = h[r, p]


@njit(**INLINED)
def add_into(total, part):
    """``total += part`` entry by entry over ``total``'s 2-D shape (``part`` may have more
    rows)."""
    for m in range(total.shape[0]):
        for k in range(total.shape[1]):
            total[m, k] += part[m, k]


@njit(**JIT, **NO_REFCOUNTS)
def network_sum(unit, activation, tts, n, x, chunk, scratch, partial, total, kept):
    """``total (M, c) = Σ_i σ_*(x_m, θ_i)`` over the ``n`` particles of the tiles ``tts``
    (:func:`tiled`) on one thread, chunk partials (in ``partial (M, c)``, passes in
    ``scratch``, :func:`make_scratch`) added in chunk order. The forward passes go to ``kept``
    when it is not empty (:func:`make_kept`)."""
    total[:] = 0.0
    for i in range((n + chunk - 1) // chunk):
        _forward_chunk(unit, activation, tts, x, i * chunk, min(n, (i + 1) * chunk), partial,
                       scratch, kept)
        add_into(total, partial)


@njit(inline="always", **JIT)
def _vjp_tile(unit, activation, tts, x, coef, start, n, scratch, kept, sums, resume,
              by_samples):
    """``sums[t] (D, P) = Σ_m J_θ σ_*(x_m, θ)ᵀ coef_m`` in float64 for the ``n`` particles of
    tile ``t`` (from particle ``start``), from the forward passes in ``kept`` unless it is
    empty; with ``resume``, the sums go on from ``sums[t]`` (the tile's sums over earlier blocks
    of samples): calls on consecutive blocks of samples give the bits of one call on all of
    them (a float64 chain of multiply–adds goes on; float32 blocks end on the calls' ends,
    :data:`ROW_STEP`). In float32 the sum runs in blocks of ``SAMPLE_BLOCK`` samples, each
    block's sum added to a float64 total (float64: one block). Lanes past ``n`` of ``sums`` are
    not written. ``by_samples`` (``True``, or ``None``: not compiled) lets a narrow unit's kept
    passes go ``tiles.SAMPLES`` samples at a time, the same bits: only the compiled flow's
    parallel runs compile it (:func:`tiles.by_samples`), which large problems run, and a first
    run on a small one compiles less."""
    _, z, h, dh, g, g_next, grad, total, first = scratch
    kept_h, kept_dh = kept
    block = x.shape[0] if grad.itemsize == 8 else SAMPLE_BLOCK
    if grad.itemsize != 8:  # a float64 sum is one chain: no block total
        total[:] = 0.0
    grad[:] = 0.0
    tt, lanes = _tile_of(tts, start, n)
    t, m, n_samples = start // tts.shape[2], 0, x.shape[0]
    if resume:
        _load_sums(sums[t], n, grad, total)
    while m < n_samples:
        if m % block == 0 and m > 0:
            add_into(total, grad)
            grad[:] = 0.0
        slot = wide_layer.slot(first, m, n_samples)  # wide first layer: blocks of samples
        if by_samples is not None:
            if first is None and kept_dh.shape[0] > 0 and m + tiles.SAMPLES <= n_samples:
                # kept passes of a narrow unit: SAMPLES at once (blocks end on multiples of it)
                rows = slice(m, m + tiles.SAMPLES)
                tiles.backpropagate_samples(unit, tt, x, m, coef[rows], lanes, kept_h[t, rows],
                                            kept_dh[t, rows], g, g_next, grad, first)
                m += tiles.SAMPLES
                continue
        if kept_dh.shape[0] > 0:
            hm, dhm = kept_h[t, m], kept_dh[t, m]
        else:
            if slot == 0:
                wide_layer.first_layer_block(first, unit, tt, x, m, lanes)
            tiles.forward(unit, activation, tt, x, m, lanes, z, h, dh, first, slot)
            hm, dhm = h, dh
        tiles.backpropagate(unit, tt, x, m, coef[m], lanes, hm, dhm, g, g_next, grad, first,
                            slot)
        if slot == wide_layer.BLOCK - 1:
            wide_layer.first_layer_gradient(first, unit, x, m - slot, lanes, grad)
        m += 1
    _store_sums(grad, total, n, sums[t])


@njit(**JIT)
def _load_sums(carried, n, grad, total):
    """The running sums of a tile's ``n`` lanes from its ``carried (D, P)``: into the float64
    chain ``grad`` in float64, into the block total ``total`` in float32 (``grad`` then
    starts a new block)."""
    for k in range(carried.shape[0]):
        for p in range(n):
            if grad.itemsize == 8:
                grad[k, p] = carried[k, p]
            else:
                total[k, p] = carried[k, p]


@njit(**JIT)
def _store_sums(grad, total, n, carried):
    """The running sums of a tile's ``n`` lanes back to its ``carried (D, P)``: the chain
    ``grad`` in float64, the block total plus the last block's sum in float32."""
    if grad.itemsize != 8:
        add_into(total, grad)
    for k in range(carried.shape[0]):
        for p in range(n):
            carried[k, p] = grad[k, p] if grad.itemsize == 8 else total[k, p]


@njit(**JIT, **NO_REFCOUNTS)
def vjp_into(unit, activation, tts, n, x, coef, scratch, kept, sums, resume, by_samples):
    """``sums (N_tiles, D, P) = Σ_m J_θ σ_*(x_m, θ_i)ᵀ coef_m`` in float64, as tiles like
    ``tts`` (the ``n`` particles' tiles, :func:`tiled`), on one thread, tile by tile in
    ``scratch`` (:func:`make_scratch`); ``kept``: the forward passes of :func:`network_sum` on
    the same particles and ``x``, or empty (:func:`make_kept`); ``resume``: go on from the sums
    of earlier blocks of samples in ``sums``; ``by_samples``: ``True`` or ``None`` (see
    ``_vjp_tile``)."""
    tile = tts.shape[2]
    for i in range(tts.shape[0]):
        _vjp_tile(unit, activation, tts, x, coef, i * tile, min(tile, n - i * tile), scratch,
                  kept, sums, resume, by_samples)


def kernel_arguments(spec: UnitSpec, theta: np.ndarray):
    """``(unit, activation, tile, chunk)`` for ``theta``'s size and dtype; ``activation``: the
    unit's :class:`~solvers.cpu.activations.CompiledActivation`."""
    tile = tile_size(spec, theta.dtype)
    n_tiles = -(-theta.shape[0] // tile)
    chunk = tile * -(-n_tiles // MAX_CHUNKS)
    activation = compiled_activation(spec.activation, theta.dtype, spec.activation_precision)
    return compiled_unit(spec), activation, tile, chunk


def _parallel(theta, x) -> bool:
    return theta.shape[0] * x.shape[0] >= PARALLEL_MIN_WORK


@functools.lru_cache(maxsize=4)
def _pool(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="wgflow-kernels")


os.register_at_fork(after_in_child=_pool.cache_clear)  # a forked child has none of the threads


def _in_threads(task, count: int) -> None:
    """``task(i)`` for every ``i < count``, spread over numba's thread count of Python threads
    (the compiled kernels release the GIL). Called from Python, this needs no parallel compiled
    code: only the compiled flow compiles its parallel paths, and only a run that uses them."""
    threads = min(numba.get_num_threads(), count)
    if threads > 1:
        list(_pool(threads).map(task, range(count)))
    else:
        for i in range(count):
            task(i)


def network_output(spec: UnitSpec, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``Φ_μ(x_m) = (1/N) Σ_i σ_*(x_m, θ_i)``: ``(M, c)``, in ``theta``'s dtype: the chunks of
    :func:`network_sum` on one thread, or their partials in parallel (``_in_threads``),
    then added in chunk order (the same sums either way)."""
    theta = np.ascontiguousarray(theta)
    checks.samples(spec, theta, x)
    x = np.ascontiguousarray(x, dtype=theta.dtype)
    unit, activation, tile, chunk = kernel_arguments(spec, theta)
    n, dim, dtype = theta.shape[0], theta.shape[1], theta.dtype
    lanes = scratch_lanes(tile, n)
    tts = tiled(theta, lanes)
    total = np.empty((x.shape[0], spec.layers[-1].n_out), dtype)
    no_kept = make_kept(unit, 0, 0, lanes, dtype, limit=0)
    if _parallel(theta, x):  # each chunk's sum on its own, then added in chunk order
        parts = np.empty((-(-n // chunk), *total.shape), dtype)
        per_chunk = chunk // lanes  # tiles (several chunks: lanes = tile divides chunk)
        _in_threads(lambda i: network_sum(
            unit, activation, tts[i * per_chunk:(i + 1) * per_chunk], min(chunk, n - i * chunk),
            x, chunk, scratch_buffers(unit, dim, lanes, dtype), np.empty_like(total), parts[i],
            no_kept),
            len(parts))
        total[:] = 0.0
        for part in parts:
            total += part
    else:
        network_sum(unit, activation, tts, n, x, chunk, scratch_buffers(unit, dim, lanes, dtype),
                    np.empty_like(total), total, no_kept)
    return total / dtype.type(n)


def vjp(spec: UnitSpec, theta, x, u, w) -> np.ndarray:
    """``Σ_m w_m J_θ σ_*(x_m, θ_i)ᵀ u_m`` for every particle: ``(N, D)``; in parallel, each
    thread runs :func:`vjp_into` on its own run of whole tiles."""
    theta = np.ascontiguousarray(theta)
    checks.samples(spec, theta, x, u, w)
    x = np.ascontiguousarray(x, dtype=theta.dtype)
    coef = np.ascontiguousarray(np.asarray(w)[:, None] * u, dtype=theta.dtype)
    unit, activation, tile, _ = kernel_arguments(spec, theta)
    n, dim, dtype = theta.shape[0], theta.shape[1], theta.dtype
    lanes = scratch_lanes(tile, n)
    tts = tiled(theta, lanes)
    sums = np.empty(tts.shape)
    no_kept = make_kept(unit, 0, 0, lanes, dtype, limit=0)
    n_tiles = tts.shape[0]
    runs = min(n_tiles, numba.get_num_threads()) if _parallel(theta, x) else 1
    bounds = [n_tiles * r // runs for r in range(runs + 1)]
    _in_threads(lambda r: vjp_into(
        unit, activation, tts[bounds[r]:bounds[r + 1]],
        min(n, bounds[r + 1] * lanes) - bounds[r] * lanes, x, coef,
        scratch_buffers(unit, dim, lanes, dtype), no_kept, sums[bounds[r]:bounds[r + 1]], False,
        None),
        runs)
    out = np.empty_like(theta)
    untile(sums, out)
    return out
