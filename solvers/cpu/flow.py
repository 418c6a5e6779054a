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

A call runs in parallel when ``N·G·B ≥ PARALLEL_MIN_WORK`` (forward and backward passes, noise,
projection), else on one thread; the two cases are compiled apart (``parts=None``, see
:func:`solvers.cpu.layered.chunk_partials`), so a small run compiles no parallel code.

The steps keep the particles as tiles ``(N_tiles, D, P)`` (:func:`solvers.cpu.layered.tiled`),
the layout of the passes, and so are the gradient sums, velocities and noise: a step
transposes nothing, and a call transposes ``θ`` once each way. The lanes past ``N`` stay zero.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

from .. import checks
from ..sample_terms import sample_coefficients
from .counter_rng import noise_into, noise_on_one_thread, noise_scratch
from .fast_math import JIT, PARALLEL
from .layered import (
    PARALLEL_MIN_WORK,
    chunk_partials,
    kernel_arguments,
    make_kept,
    network_sum,
    network_sum_in_parallel,
    scratch_buffers,
    scratch_lanes,
    tiled,
    untile,
    vjp_in_parallel,
    vjp_into,
)

_sample_coefficients = njit(inline="always", **JIT)(sample_coefficients)
#: tiles per block of the parallel projection ``v P`` (EA)
PROJECT_TILES = 4


def _workspace(kernel, tts, n_samples, d, c, basis):
    """Every array a step needs, allocated once per call: orbit samples ``xo``, upstream
    ``coef``, model outputs, chunk partial ``(G·B, ·)``, residual ``(c,)``; the unprojected
    velocity, the velocities, candidate and noise increment as tiles like ``tts``, zero (their
    lanes past ``N`` stay so); the scratch of one tile and the noise's
    (:func:`solvers.cpu.counter_rng.noise_scratch`)."""
    unit = kernel[0]
    dtype = tts.dtype
    return (np.empty((n_samples, d), dtype), np.empty((n_samples, c), dtype),
            np.empty((n_samples, c), dtype), np.empty((n_samples, c), dtype),
            np.empty(c), np.zeros_like(tts), np.zeros_like(tts), np.zeros_like(tts),
            np.zeros_like(tts), np.zeros_like(tts),
            scratch_buffers(unit, tts.shape[1], tts.shape[2], dtype),
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


@njit(parallel=PARALLEL, **JIT)
def _project_in_parallel(v, proj, out):
    n_tiles = v.shape[0]
    for b in prange((n_tiles + PROJECT_TILES - 1) // PROJECT_TILES):
        _project(v, proj, b * PROJECT_TILES, min(n_tiles, (b + 1) * PROJECT_TILES), out)


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
def _velocity(kernel, tts, n, x, y, w, orbit, proj, tau, scale, work, parts, threads, kept,
              sums, out):
    """``out = v(θ)`` as tiles for the ``n`` particles of the tiles ``tts`` and one batch
    ``x (B, d)``, ``y (B, c)``, ``w (B,)``, in parallel with room for the chunk partials
    ``parts`` on ``threads`` threads, on one thread with ``parts=None`` (see
    :func:`solvers.cpu.layered.chunk_partials`); ``kept``: room for the forward passes of a
    block of ``M_b`` orbit samples (:func:`solvers.cpu.layered.make_kept`), or empty;
    ``sums``: room for the float64 gradient sums, tiles like ``tts`` (lanes past ``n`` zero).

    The orbit samples go in blocks of ``M_b``: the forward passes of a block, its upstream
    coefficients, then its backward pass from the kept passes, the gradient sums going on from
    block to block; the same sums in the same order as one block of all samples. Without kept
    passes, one block, and the backward pass recomputes them."""
    unit, activation, _, chunk = kernel
    rho_in, rho_out, wg, average = orbit
    xo, coef, model, partial, residual, grad, _, _, _, _, scratch, _ = work
    n_nodes, b = wg.shape[0], x.shape[0]
    n_rows = n_nodes * b
    _orbit_samples(rho_in, x, xo)
    rows = kept[1].shape[1] if kept[1].shape[0] > 0 else n_rows
    for start in range(0, max(n_rows, 1), max(rows, 1)):  # once without samples (no data)
        stop = min(n_rows, start + rows)
        block, block_model = xo[start:stop], model[start:stop]
        if parts is None:
            network_sum(unit, activation, tts, n, block, chunk, scratch, partial, block_model,
                        kept)
        else:
            network_sum_in_parallel(unit, activation, tts, n, block, chunk, parts, block_model,
                                    kept, scratch[8], threads)
        block_model /= n
        # FA: a sample's terms read its whole orbit (one block, make_kept's whole); otherwise
        # each orbit sample's row alone
        for r in range(0 if average else start, b if average else stop):
            g = 0 if average else r // b
            _sample_coefficients(r % b, y, w, rho_out, wg, average, model, residual, coef, g,
                                 n_nodes if average else g + 1)
        if parts is None:
            vjp_into(unit, activation, tts, n, block, coef[start:stop], scratch, kept, sums,
                     start > 0)
        else:
            vjp_in_parallel(unit, activation, tts, n, block, coef[start:stop], kept, sums,
                            start > 0, scratch[8], threads)
    unprojected = _flat(out if proj.shape[0] == 0 else grad)  # without P, straight into out
    flat_sums, flat_theta = _flat(sums), _flat(tts)
    for i in range(flat_sums.size):
        unprojected[i] = flat_sums[i]  # the gradient in the particles' dtype
        unprojected[i] = -scale * (unprojected[i] + 2.0 * tau * flat_theta[i])
    if proj.shape[0] == 0:
        return
    if parts is not None:
        _project_in_parallel(grad, proj, out)
    else:  # a literal first tile would compile a second specialization of _project
        _project(grad, proj, np.intp(0), tts.shape[0], out)


@njit(**JIT)
def _advance(kernel, tts, n, xs, ys, ws, orbit, proj, tau, dt, scales, noise, heun, work, parts,
             threads, kept, sums):
    key, first_step, basis, amps = noise
    v0, v1, new, xi = work[6], work[7], work[8], work[9]
    for k in range(scales.shape[0] - 1):
        s = k if xs.shape[0] > 1 else 0
        if amps.shape[0] > 0:  # the noise increment of this step, drawn before the velocity
            if parts is None:
                noise_on_one_thread(key, first_step + k, basis, amps[k], n, xi, work[11])
            else:
                noise_into(key, first_step + k, basis, amps[k], n, xi, work[11])
        for stage in range(2 if heun else 1):  # Euler (or Heun's predictor), Heun's corrector
            at, v = (tts, v0) if stage == 0 else (new, v1)
            _velocity(kernel, at, n, xs[s], ys[s], ws[s], orbit, proj, tau, scales[k + stage],
                      work, parts, threads, kept, sums, v)
            finite = True  # a reduction without branches: the loops vectorize
            nw, th, u0, u1, noise_step = _flat(new), _flat(tts), _flat(v0), _flat(v1), _flat(xi)
            if stage == 0:
                for i in range(nw.size):
                    nw[i] = th[i] + dt * u0[i] + noise_step[i]
                    finite &= np.isfinite(nw[i])
            else:
                for i in range(nw.size):
                    nw[i] = th[i] + 0.5 * dt * (u0[i] + u1[i]) + noise_step[i]
                    finite &= np.isfinite(nw[i])
        if not finite:
            return k
        _copy(new, tts)
    return scales.shape[0] - 1


def advance(spec, theta, batches, orbit, proj, tau, dt, scales, noise, heun: bool):
    """Take ``len(scales) − 1`` steps in place on ``theta (N, D)``; return the number of steps
    taken (fewer when a step would leave non-finite particles, which are then not applied).

    ``batches``: ``(x (K, B, d), y (K, B, c), w (K, B))``, or a leading axis of 1 for one fixed
    batch; ``orbit``: :class:`wgflow.symmetry.schemes.OrbitTerms`; ``proj``: ``(D, D)`` or ``None``;
    ``scales``: ``ς`` at the ``K + 1`` step times; ``noise``: ``None`` or
    ``(key, first_step, basis (D, k), amplitudes (K,))``: step ``j`` adds
    ``amplitudes[j] · Σ_l Z_c basis[:, l]`` drawn by :func:`solvers.cpu.counter_rng.noise_into`
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
    proj = np.zeros((0, 0), dtype) if proj is None else np.ascontiguousarray(proj, dtype=dtype)
    if noise is None:
        noise = (0, 0, np.zeros((theta.shape[1], 0)), np.zeros(0))
    key, first_step, basis, amps = noise
    noise = (np.uint64(key), int(first_step), np.ascontiguousarray(basis, dtype=np.float64),
             np.asarray(amps, dtype=np.float64))
    n, n_samples = theta.shape[0], orbit[2].shape[0] * xs.shape[1]
    parts = chunk_partials(n, kernel[3], n_samples, ys.shape[2], dtype,
                           n * n_samples >= PARALLEL_MIN_WORK)
    tts = tiled(theta, scratch_lanes(kernel[2], n))
    kept = make_kept(kernel[0], n, n_samples, tts.shape[2], dtype, whole=orbit[3])
    work = _workspace(kernel, tts, n_samples, xs.shape[2], ys.shape[2], noise[2])
    taken = _advance(kernel, tts, n, xs, ys, ws, orbit, proj, float(tau), float(dt),
                     np.asarray(scales, dtype=np.float64), noise, bool(heun), work, parts,
                     numba.get_num_threads(), kept, np.zeros(tts.shape))
    untile(tts, theta)
    return taken
