"""Many steps of the particle flow in compiled code: Python is touched once per call.

Each step moves the particles by the velocity
``v(θ) = −ς [∇_θ δR/δμ(θ) + 2τθ]`` (projected by ``P`` when one is given, the equivariant
architecture), with the squared loss, on the step's batch and with a group sum given by
orbit terms ``(ρ_g, ρ̂_g, w_g, average)`` (see :class:`wgflow.symmetry.schemes.OrbitTerms`):

- the model on the orbit samples ``ρ_g x_m``: ``out_gm = Φ_N(ρ_g x_m)``;
- ``average`` (feature averaging): ``r_m = Σ_g w_g ρ̂_gᵀ out_gm − y_m`` and upstream
  ``u_gm = ρ̂_g r_m``; otherwise (full-orbit augmentation) ``u_gm = out_gm − ρ̂_g y_m``;
- ``∇_θ δR/δμ(θ_i) = Σ_{g,m} w_g w_m J_θ σ_*(ρ_g x_m, θ_i)ᵀ u_gm``.

Integrators as in :mod:`solvers.integrators` (explicit Euler / Euler–Maruyama, and Heun with
the same noise increment in both stages); the noise increments, batches and step scales are
drawn by the caller, so the steps are a pure function of their inputs.

The backward pass reads the forward passes kept from the model's evaluation
(:func:`solvers.cpu.layered.make_kept`): when those of all ``G·B`` orbit samples do not fit
in ``KEEP_BYTES``, the samples go in blocks that do (the forward passes of a block, its
coefficients, its backward pass), except for feature averaging, whose coefficients need every
sample's output first; when not even ``ROW_STEP`` samples fit, the backward pass recomputes
them. Blocks change no bit of the result.

A call runs in parallel when ``N·G·B ≥ PARALLEL_MIN_WORK``, else on one thread; the two cases
are compiled apart (``threads=None``), so a small run compiles no parallel code. In parallel,
each thread owns a run of whole chunks of tiles for the whole call, and one parallel region
both finishes a block of samples on the thread's tiles (the backward pass; after the
evaluation's last block the velocity, projection and update) and starts the next (the noise,
the forward passes): a step of one block wakes the threads once. Between regions, one thread
adds the chunks' partial sums in chunk order and forms the upstream coefficients.

The steps keep the particles as tiles ``(N_tiles, D, P)`` (:func:`solvers.cpu.layered.tiled`),
the layout of the passes, and so are the gradient sums, velocities and noise: a step
transposes nothing, and a call transposes ``θ`` once each way. The lanes past ``N`` stay zero.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from .. import checks
from ..sample_terms import sample_coefficients
from . import tiles
from .counter_rng import noise_on_tiles, noise_scratch
from .fast_math import JIT, NO_REFCOUNTS, PARALLEL, REFCOUNTED
from .layered import (
    PARALLEL_MIN_WORK,
    add_into,
    kernel_arguments,
    make_kept,
    make_scratch,
    network_sum,
    scratch_buffers,
    scratch_lanes,
    tiled,
    untile,
    vjp_into,
)

_sample_coefficients = njit(inline="always", **JIT)(sample_coefficients)


class Workspace(NamedTuple):
    """Every array the steps need, allocated once per call (tiles like the particles', zero:
    their lanes past ``N`` stay so)."""
    samples: np.ndarray  #: orbit samples ``ρ_g x_m`` of two consecutive steps, ``(2, G·B, d)``
    coef: np.ndarray  #: upstream coefficients ``(G·B, c)``
    model: np.ndarray  #: model outputs ``Φ_N(ρ_g x_m)``, ``(G·B, c)``
    partial: np.ndarray  #: one chunk's partial sums ``(G·B, c)`` (one thread)
    parts: np.ndarray  #: the chunks' partial sums ``(n_chunks, G·B, c)``
    residual: np.ndarray  #: float64 ``(c,)``
    unprojected: np.ndarray  #: ``v`` before the projection ``P`` (EA), tiles; without ``P`` empty
    v0: np.ndarray  #: the velocity (Heun: the predictor's), tiles
    v1: np.ndarray  #: Heun's corrector velocity, tiles
    noise: np.ndarray  #: the step's noise increment, tiles
    normals: np.ndarray  #: the noise's scratch (:func:`solvers.cpu.counter_rng.noise_scratch`)


class Pass(NamedTuple):
    """One block of orbit samples of one velocity evaluation: its forward passes start a
    parallel region, its backward pass (and, at the evaluation's last block, the velocity and
    the integrator's update) open the next one. The update is none while more blocks follow,
    Euler's step or Heun's predictor (1), or Heun's corrector (2)."""
    active: bool  #: ``False``: no pass (before the first, after the last)
    at: int  #: the evaluated particles: buffer 0 or 1 of :func:`_advance`
    base: int  #: the particles ``θ_k`` the update starts from
    batch: int  #: the step's batch: ``xs[batch]``, ``ys[batch]``, ``ws[batch]``
    samples: int  #: the step's orbit samples: ``Workspace.samples[samples]``
    start: int  #: the block's first orbit sample
    stop: int  #: one past its last
    scale: float  #: ``ς`` of the evaluation
    update: int  #: after the block: 0 none, 1 ``θ_k + dt v + ξ``, 2 ``θ_k + dt (v₀ + v₁)/2 + ξ``
    noise: int  #: the step whose noise increment is drawn before the forward passes, or −1


_NO_PASS = Pass(False, 0, 0, 0, 0, 0, 0, 0.0, 0, -1)


def _workspace(kernel, tts, n, n_samples, d, c, basis, projected):
    """The :class:`Workspace` of a call on the tiles ``tts`` of ``n`` particles with
    ``n_samples`` orbit samples per step, inputs ``(d,)``, outputs ``(c,)``, noise ``basis``
    and, when ``projected``, a projection."""
    chunk = kernel[3]
    dtype, n_chunks = tts.dtype, -(-n // chunk)
    return Workspace(np.empty((2, n_samples, d), dtype), np.empty((n_samples, c), dtype),
                     np.empty((n_samples, c), dtype), np.empty((n_samples, c), dtype),
                     np.empty((n_chunks, n_samples, c), dtype), np.empty(c),
                     np.zeros_like(tts) if projected else np.zeros((0, 0, 0), dtype),
                     np.zeros_like(tts), np.zeros_like(tts), np.zeros_like(tts),
                     noise_scratch(tts.shape[2], basis))


@njit(**JIT)
def _project(v, proj, first, last, out):
    """``out[t, :, p] = v[t, :, p] P`` for the tiles ``first ≤ t < last``, each sum in index
    order and in ``v``'s dtype (as the GPU kernel), so no result depends on the thread that
    computes it."""
    for t in range(first, last):
        for k in range(proj.shape[1]):
            c = proj[0, k]
            for p in range(v.shape[2]):
                out[t, k, p] = v[t, 0, p] * c
            for j in range(1, proj.shape[0]):
                c = proj[j, k]
                for p in range(v.shape[2]):
                    out[t, k, p] += v[t, j, p] * c


@njit(inline="always", **JIT)
def _flat(a):
    """The C-contiguous ``a`` as a 1-D view: loops over ``(N, D)`` arrays run over all ``N·D``
    entries at once and vectorize (a loop over ``D = 4`` columns would run scalar)."""
    return a.reshape(a.size)


@njit(inline="always", **JIT)
def _copy(src, dst):
    """``dst[:] = src`` for ``(N, D)`` arrays, as a loop: numba's array assignment would compile
    its shape-mismatch error message."""
    flat_src, flat_dst = _flat(src), _flat(dst)
    for i in range(flat_src.size):
        flat_dst[i] = flat_src[i]


@njit(**JIT)
def _orbit_samples(rho_in, x, xo):
    """``xo[g·B + m] = ρ_g x_m`` for ``rho_in (G, d, d)``, ``x (B, d)``: each entry
    ``Σ_j ρ_g[i, j] x_mj`` summed from ``0`` in index order, and ``0 + x_mi`` (the same bits for
    finite ``x``) where ``ρ_g`` is the identity, without its ``d²`` multiply–adds per sample."""
    n_nodes, b, d = rho_in.shape[0], x.shape[0], x.shape[1]
    for g in range(n_nodes):
        identity = True
        for i in range(d):
            for j in range(d):
                identity = identity and rho_in[g, i, j] == (1.0 if i == j else 0.0)
        for m in range(b):
            for i in range(d):
                if identity:
                    xo[g * b + m, i] = 0.0 + x[m, i]
                    continue
                acc = 0.0
                for j in range(d):
                    acc += rho_in[g, i, j] * x[m, j]
                xo[g * b + m, i] = acc


@njit(inline="always", **JIT)
def _finish_tiles(at, base, new, sums, proj, tau, dt, done, work, first, last):
    """The tiles ``first ≤ t < last`` of the velocity ``v = −ς (∇ + 2τθ)`` (projected by ``P``
    unless ``proj`` is ``None``) of the particles ``at``, from their float64 gradient sums, and
    the update of :class:`Pass` ``done`` into ``new``; whether every value of ``new`` is finite
    (a reduction without branches: the loops vectorize)."""
    v = work.v1 if done.update == 2 else work.v0
    target = v if proj is None else work.unprojected  # without P, straight into v
    u0, u1, xi = work.v0, work.v1, work.noise
    finite = True
    for t in range(first, last):
        for k in range(at.shape[1]):
            for p in range(at.shape[2]):
                target[t, k, p] = sums[t, k, p]  # the gradient in the particles' dtype
                target[t, k, p] = -done.scale * (target[t, k, p] + 2.0 * tau * at[t, k, p])
        if proj is not None:  # a compile-time branch: without P, no projection is compiled
            _project(work.unprojected, proj, t, t + 1, v)
        for k in range(at.shape[1]):
            if done.update == 1:
                for p in range(at.shape[2]):
                    new[t, k, p] = base[t, k, p] + dt * u0[t, k, p] + xi[t, k, p]
                    finite &= np.isfinite(new[t, k, p])
            else:
                for p in range(at.shape[2]):
                    new[t, k, p] = base[t, k, p] + 0.5 * dt * (u0[t, k, p] + u1[t, k, p]) + \
                        xi[t, k, p]
                    finite &= np.isfinite(new[t, k, p])
    return finite


@njit(inline="always", **JIT)
def _run(kernel, particles, n, proj, tau, dt, noise, done, following, work, kept, sums,
         chunks, scratch, partial, normals, by_samples):
    """One thread's part of a parallel region: the chunks ``chunks = (first, last)`` of whole
    tiles. It finishes :class:`Pass` ``done`` on its tiles (the backward pass into ``sums``,
    then the velocity and the update when ``done.update``), then draws the noise of
    ``following`` and runs its forward passes, each chunk's partial sums into its row of
    ``work.parts``; whether the update's values are finite. ``scratch``, ``partial``,
    ``normals``: the thread's buffers (see :class:`Workspace`); ``by_samples``: see
    :func:`solvers.cpu.layered.vjp_into`."""
    unit, activation, _, chunk = kernel
    key, first_step, basis, amps = noise
    per_chunk = chunk // particles[0].shape[2]
    n_tiles = particles[0].shape[0]
    first, last = chunks[0] * per_chunk, min(n_tiles, chunks[1] * per_chunk)
    lanes = particles[0].shape[2]
    count = min(n, last * lanes) - first * lanes
    kept_h, kept_dh = kept
    finite = True
    if done.active:
        at = particles[done.at]
        vjp_into(unit, activation, at[first:last], count,
                 work.samples[done.samples, done.start:done.stop],
                 work.coef[done.start:done.stop], scratch,
                 (kept_h[first:last], kept_dh[first:last]), sums[first:last], done.start > 0,
                 by_samples)
        if done.update > 0:
            finite = _finish_tiles(at, particles[done.base], particles[1 - done.base], sums,
                                   proj, tau, dt, done, work, first, last)
    if following.active:
        if following.noise >= 0:
            noise_on_tiles(key, first_step + following.noise, basis, amps[following.noise], n,
                           work.noise, first, last, normals)
        at, rows = particles[following.at], following.stop - following.start
        x = work.samples[following.samples, following.start:following.stop]
        for i in range(chunks[0], chunks[1]):
            tiles_ = slice(i * per_chunk, (i + 1) * per_chunk)
            network_sum(unit, activation, at[tiles_], min(chunk, n - i * chunk), x, chunk,
                        scratch, partial, work.parts[i, :rows],
                        (kept_h[tiles_], kept_dh[tiles_]))
    return finite


@njit(parallel=PARALLEL, **JIT, **REFCOUNTED)  # it allocates the threads' buffers
def _region_in_parallel(kernel, particles, n, proj, tau, dt, noise, done, following, work,
                        kept, sums, first, threads):
    """:func:`_run` on even runs of chunks, one per thread of ``threads``, each with its own
    buffers (a block buffer like ``first``, see :func:`solvers.cpu.layered.make_scratch`): one
    parallel region per pass."""
    unit, n_chunks = kernel[0], work.parts.shape[0]
    tts = particles[0]
    runs = max(1, min(threads, n_chunks))
    finite = np.ones(runs, np.bool_)
    for r in prange(runs):
        scratch = make_scratch(unit, tts.shape[1], tts.shape[2], tts.dtype, first)
        finite[r] = _run(kernel, particles, n, proj, tau, dt, noise, done, following, work,
                         kept, sums, (n_chunks * r // runs, n_chunks * (r + 1) // runs),
                         scratch, np.empty_like(work.partial), np.empty_like(work.normals),
                         tiles.by_samples(unit))
    return finite.all()


@njit(inline="always", **JIT)
def _coefficients(following, ys, ws, orbit, n, work):
    """The model on the block of :class:`Pass` ``following`` from its chunks' partial sums
    (added in chunk order), and the block's upstream coefficients (feature averaging: one
    block of every orbit sample)."""
    _, rho_out, wg, average = orbit
    model = work.model[following.start:following.stop]
    model[:] = 0.0
    for i in range(work.parts.shape[0]):
        add_into(model, work.parts[i])
    model /= n
    y, w, b = ys[following.batch], ws[following.batch], ys.shape[1]
    # FA: a sample's terms read its whole orbit (one block, make_kept's whole); otherwise
    # each orbit sample's row alone
    for r in range(0 if average else following.start, b if average else following.stop):
        g = 0 if average else r // b
        _sample_coefficients(r % b, y, w, rho_out, wg, average, work.model, work.residual,
                             work.coef, g, wg.shape[0] if average else g + 1)


@njit(**JIT, **NO_REFCOUNTS)
def _advance(kernel, particles, n, xs, ys, ws, orbit, proj, tau, dt, scales, noise, heun, work,
             scratch, threads, kept, sums):
    """The steps on the tiles ``particles = (θ, other)``: ``θ_k`` is buffer ``k mod 2``;
    returns the steps taken (see :func:`advance`), ``θ`` of the last one in buffer 0.

    Each velocity evaluation goes over its orbit samples in blocks of ``M_b`` (the rows of
    ``kept``, or all of them without kept passes, when the backward pass recomputes them): the
    forward passes of a block, its upstream coefficients, its backward pass from the kept
    passes, the gradient sums going on from block to block: the same sums in the same order as
    one block of all samples. A parallel region (``threads``; ``None``: one thread, compiled
    without parallel code) finishes one block and starts the next, so a step of one block takes
    one region."""
    rho_in, wg = orbit[0], orbit[2]
    n_rows = wg.shape[0] * xs.shape[1]
    rows = max(1, kept[1].shape[1] if kept[1].shape[0] > 0 else n_rows)
    blocks = max(1, -(-n_rows // rows))
    stages = 2 if heun else 1
    steps = scales.shape[0] - 1
    done = _NO_PASS
    for j in range(steps * stages * blocks + 1):
        following = _NO_PASS
        if j < steps * stages * blocks:
            k, stage, block = j // (stages * blocks), j // blocks % stages, j % blocks
            start = block * rows
            following = Pass(True, (k + stage) % 2, k % 2, k if xs.shape[0] > 1 else 0, k % 2,
                             start, min(n_rows, start + rows), scales[k + stage],
                             0 if block < blocks - 1 else stage + 1,
                             k if stage == 0 and block == 0 and noise[3].shape[0] > 0 else -1)
            if stage == 0 and block == 0:
                _orbit_samples(rho_in, xs[following.batch], work.samples[k % 2])
        if threads is None:
            finite = _run(kernel, particles, n, proj, tau, dt, noise, done, following, work,
                          kept, sums, (0, work.parts.shape[0]), scratch, work.partial,
                          work.normals, None)
        else:
            finite = _region_in_parallel(kernel, particles, n, proj, tau, dt, noise, done,
                                         following, work, kept, sums, scratch[8], threads)
        if done.update == stages and not finite:  # the step is not applied
            k = (j - 1) // (stages * blocks)
            if k % 2 == 1:
                _copy(particles[1], particles[0])
            return k
        if following.active:
            _coefficients(following, ys, ws, orbit, n, work)
        done = following
    if steps % 2 == 1:
        _copy(particles[1], particles[0])
    return steps


def advance(spec, theta, batches, orbit, proj, tau, dt, scales, noise, heun: bool):
    """Take ``len(scales) − 1`` steps in place on ``theta (N, D)``; return the number of steps
    taken (fewer when a step would leave non-finite particles, which are then not applied).

    ``batches``: ``(x (K, B, d), y (K, B, c), w (K, B))``, or a leading axis of 1 for one fixed
    batch; ``orbit``: :class:`wgflow.symmetry.schemes.OrbitTerms`; ``proj``: ``(D, D)`` or ``None``;
    ``scales``: ``ς`` at the ``K + 1`` step times; ``noise``: ``None`` or
    ``(key, first_step, basis (D, k), amplitudes (K,))``: step ``j`` adds
    ``amplitudes[j] · Σ_l Z_c basis[:, l]`` drawn by :func:`solvers.cpu.counter_rng.noise_on_tiles`
    for global step ``first_step + j``. Wrong shapes or dtypes raise ``ValueError``
    (:func:`solvers.checks.flow`).
    """
    checks.flow(spec, theta, batches, orbit, proj, scales, noise)
    dtype = theta.dtype
    kernel = kernel_arguments(spec, theta)
    xs, ys, ws = (np.ascontiguousarray(a, dtype=dtype) for a in batches)
    orbit = (np.ascontiguousarray(orbit.rho_in, dtype=dtype),
             np.ascontiguousarray(orbit.rho_out, dtype=dtype),
             np.ascontiguousarray(orbit.weights, dtype=dtype), bool(orbit.average))
    proj = None if proj is None else np.ascontiguousarray(proj, dtype=dtype)
    if noise is None:
        noise = (0, 0, np.zeros((theta.shape[1], 0)), np.zeros(0))
    key, first_step, basis, amps = noise
    noise = (np.uint64(key), int(first_step), np.ascontiguousarray(basis, dtype=np.float64),
             np.asarray(amps, dtype=np.float64))
    n, n_samples = theta.shape[0], orbit[2].shape[0] * xs.shape[1]
    tts = tiled(theta, scratch_lanes(kernel[2], n))
    kept = make_kept(kernel[0], n, n_samples, tts.shape[2], dtype, whole=orbit[3])
    work = _workspace(kernel, tts, n, n_samples, xs.shape[2], ys.shape[2], noise[2],
                      proj is not None)
    # one thread below PARALLEL_MIN_WORK: compiled apart (threads=None), without parallel code
    threads = numba.get_num_threads() if n * n_samples >= PARALLEL_MIN_WORK else None
    taken = _advance(kernel, (tts, np.zeros_like(tts)), n, xs, ys, ws, orbit, proj, float(tau),
                     float(dt), np.asarray(scales, dtype=np.float64), noise, bool(heun), work,
                     scratch_buffers(kernel[0], tts.shape[1], tts.shape[2], dtype), threads, kept,
                     np.zeros(tts.shape))
    untile(tts, theta)
    return taken
