"""The CUDA backend: ``network_output``, ``vjp`` and ``advance`` with the signatures of the CPU
kernels (:mod:`solvers.cpu.layered`, :mod:`solvers.cpu.flow`), launching
:mod:`solvers.cuda.kernels`. Load it through :func:`solvers.cuda.backend`, which says what is
missing when no GPU is usable.

``advance`` takes the particles as a host array (updated in place, as on the CPU) or as a device
array (:func:`to_device`), which then stays on the device: :class:`ResidentParticles` keeps a
run's particles there, the host getting a copy once per chunk (at most a frame). A call uploads
its batches once, draws the noise on the device, double-buffers the particles and reads back one
flag at its end; a step that would leave non-finite particles is not applied, and no later step
of the call runs.
"""

from __future__ import annotations

import warnings

import numpy as np
from numba import config, cuda

from .. import checks
from .kernels import NO_FAILURE, kernels_for

# Small grids are intended here (the per-sample coefficients of a minibatch, small SGD runs):
# numba-cuda's warning for grids under 128 blocks (its text starts with a terminal escape)
# would only be noise.
warnings.filterwarnings("ignore", message=r".*Grid size \d+ will likely result in GPU under-")

#: threads per block of every launch (results do not depend on it); numba's simulator runs a
#: Python thread per GPU thread, so there small blocks waste less
THREADS_PER_BLOCK = 32 if config.ENABLE_CUDASIM else 128
#: The sums over particles (forward pass) and over samples (backward pass) run in chunks, one
#: thread per chunk and lane (sample or particle), the chunks' partial sums then added in order.
#: Chunks: enough for about ``TARGET_THREADS`` threads per launch (fewer on the simulator), of
#: ``MIN_CHUNK`` to ``MAX_CHUNK`` items, with partial sums of at most ``PARTIAL_BYTES``, and at
#: most ``MAX_CHUNKS`` (the limit of a grid's second dimension).
TARGET_THREADS = 1 if config.ENABLE_CUDASIM else 1 << 18
MIN_CHUNK, MAX_CHUNK, PARTIAL_BYTES, MAX_CHUNKS = 32, 4096, 1 << 28, 65535


def to_device(theta: np.ndarray):
    """A device copy of ``theta``."""
    return cuda.to_device(np.ascontiguousarray(theta))


def _on_device(theta):
    """``theta`` if it is a device array already, else a device copy."""
    return to_device(theta) if isinstance(theta, np.ndarray) else theta


def chunk_size(items: int, lanes: int, width: int, itemsize: int) -> int:
    """Items per chunk of a sum over ``items`` done for ``lanes`` lanes, with partials
    ``(chunks, lanes, width)``: a function of the sizes alone, never of the launch."""
    wanted = max(-(-TARGET_THREADS // max(1, lanes)), -(-items // MAX_CHUNK))
    fits = PARTIAL_BYTES // max(1, lanes * width * itemsize)
    chunks = max(1, min(-(-items // MIN_CHUNK), wanted, fits, MAX_CHUNKS))
    return max(1, -(-items // chunks))


def _blocks(count: int) -> int:
    return max(1, -(-count // THREADS_PER_BLOCK))


class _ChunkedSum:
    """A sum over ``items`` for ``lanes`` lanes: chunk size, partials ``(chunks, lanes, width)``
    (zeros for an empty sum) and the launch grid (lanes × chunks)."""

    def __init__(self, items, lanes, width, dtype):
        self.chunk = chunk_size(items, lanes, width, np.dtype(dtype).itemsize)
        shape = (max(1, -(-items // self.chunk)), lanes, width)
        self.partial = (cuda.device_array(shape, dtype) if items
                        else cuda.to_device(np.zeros(shape, dtype)))
        self.grid = (_blocks(lanes), shape[0])


def _kernels(spec, theta):
    return kernels_for(spec, np.dtype(theta.dtype).name)


def network_output(spec, theta, x) -> np.ndarray:
    """``Φ_μ(x_m) = (1/N) Σ_i σ_*(x_m, θ_i)``: ``(M, c)`` host array, in ``theta``'s dtype
    (``theta``: host or device array)."""
    theta_d = _on_device(theta)
    checks.samples(spec, theta_d, x)
    x_d = cuda.to_device(np.ascontiguousarray(x, dtype=theta_d.dtype)[None])
    kernels, (n, m) = _kernels(spec, theta_d), (theta_d.shape[0], x_d.shape[1])
    forward = _ChunkedSum(n, m, kernels.c, theta_d.dtype)
    kernels.forward_partials[forward.grid, THREADS_PER_BLOCK](theta_d, x_d, 0, forward.chunk,
                                                              forward.partial)
    model = cuda.device_array((m, kernels.c), theta_d.dtype)
    kernels.network_sum[_blocks(m), THREADS_PER_BLOCK](forward.partial, kernels.real(n), model)
    return model.copy_to_host()


def vjp(spec, theta, x, u, w) -> np.ndarray:
    """``Σ_m w_m J_θ σ_*(x_m, θ_i)ᵀ u_m`` for every particle: ``(N, D)`` host array
    (``theta``: host or device array)."""
    theta_d = _on_device(theta)
    checks.samples(spec, theta_d, x, u, w)
    x_d = cuda.to_device(np.ascontiguousarray(x, dtype=theta_d.dtype)[None])
    coef = cuda.to_device(np.ascontiguousarray(np.asarray(w)[:, None] * u, dtype=theta_d.dtype))
    kernels, out = _kernels(spec, theta_d), cuda.device_array_like(theta_d)
    backward = _ChunkedSum(x_d.shape[1], theta_d.shape[0], kernels.dim, theta_d.dtype)
    kernels.gradient_partials[backward.grid, THREADS_PER_BLOCK](theta_d, x_d, 0, coef,
                                                                backward.chunk, backward.partial)
    kernels.gradient[_blocks(theta_d.shape[0]), THREADS_PER_BLOCK](backward.partial, out)
    return out.copy_to_host()


class ResidentParticles:
    """This backend for one run, keeping the particles on the device: when a call gets back the
    host array that :meth:`advance` last returned, it uses the device copy instead of uploading
    it again. So a run uploads its particles once and downloads them once per chunk."""

    def __init__(self):
        self.host = self.device = None

    def particles(self, theta):
        """The device array of ``theta``."""
        if theta is not self.host:
            self.host, self.device = theta, to_device(theta)
        return self.device

    def network_output(self, spec, theta, x):
        """:func:`network_output` on the device copy of ``theta``."""
        return network_output(spec, self.particles(theta), x)

    def vjp(self, spec, theta, x, u, w):
        """:func:`vjp` on the device copy of ``theta``."""
        return vjp(spec, self.particles(theta), x, u, w)

    def advance(self, spec, theta, *arguments) -> tuple[np.ndarray, int]:
        """:func:`advance` on the device copy; returns the particles (a new host array)
        and the number of steps taken."""
        particles = self.particles(theta)
        done = advance(spec, particles, *arguments)
        self.host = particles.copy_to_host()
        return self.host, done


def _orbit_samples(batches, orbit, dtype):
    """``(ρ_g x_m)`` of every step's batch, ordered ``(g, m)``: ``(K, G·B, d)``, from the
    inputs and matrices rounded to ``dtype`` and summed in float64, as on the CPU."""
    xs, rho = (np.asarray(a, dtype=dtype).astype(np.float64) for a in (batches[0], orbit.rho_in))
    xo = np.einsum("gij,kmj->kgmi", rho, xs)
    return xo.reshape(xs.shape[0], -1, xs.shape[2]).astype(dtype)


def advance(spec, theta, batches, orbit, proj, tau, dt, scales, noise, heun: bool) -> int:
    """Take ``len(scales) − 1`` steps in place on ``theta (N, D)`` (host or device array);
    return the number taken. Arguments as :func:`solvers.cpu.flow.advance`."""
    checks.flow(spec, theta, batches, orbit, proj, scales, noise)
    on_host = isinstance(theta, np.ndarray)
    theta_d = _on_device(theta)
    dtype, (n, dim) = theta_d.dtype, theta_d.shape
    kernels = _kernels(spec, theta_d)
    xo = cuda.to_device(_orbit_samples(batches, orbit, dtype))
    ys, ws = (cuda.to_device(np.ascontiguousarray(a, dtype=dtype)) for a in batches[1:])
    rho_out, wg = (cuda.to_device(np.ascontiguousarray(a, dtype=dtype))
                   for a in (orbit.rho_out, orbit.weights))
    proj = cuda.to_device(np.zeros((0, 0), dtype) if proj is None
                          else np.ascontiguousarray(proj, dtype=dtype))
    key, first_step, basis, amps = noise or (0, 0, np.zeros((dim, 0)), np.zeros(len(scales) - 1))
    basis = cuda.to_device(np.ascontiguousarray(basis, dtype=np.float64))
    samples, b = xo.shape[1], ys.shape[1]
    forward = _ChunkedSum(n, samples, kernels.c, dtype)
    backward = _ChunkedSum(samples, n, dim, dtype)
    model, coef = (cuda.device_array((samples, kernels.c), dtype) for _ in range(2))
    buffers = (theta_d, cuda.device_array_like(theta_d))
    stage_point, v0 = cuda.device_array_like(theta_d), cuda.device_array_like(theta_d)
    failed = cuda.to_device(np.array([NO_FAILURE], dtype=np.int64))
    # launch configurations, built once: numba-cuda checks (and warns about) each one it builds
    forward_sum = kernels.forward_partials[forward.grid, THREADS_PER_BLOCK]
    upstream = kernels.coefficients[_blocks(b), THREADS_PER_BLOCK]
    backward_sum = kernels.gradient_partials[backward.grid, THREADS_PER_BLOCK]
    update = kernels.update[_blocks(n), THREADS_PER_BLOCK]
    n_real, average = kernels.real(n), bool(orbit.average)

    def velocity_stage(k, point, base, stage, out):
        s = k if xo.shape[0] > 1 else 0
        if samples:  # without a data term the gradient is zero (backward.partial)
            forward_sum(point, xo, s, forward.chunk, forward.partial)
            upstream(forward.partial, n_real, ys, ws, s, rho_out, wg, average, model, coef)
            backward_sum(point, xo, s, coef, backward.chunk, backward.partial)
        update(point, base, backward.partial, float(tau), float(scales[k + stage // 2]), proj,
               float(dt), np.uint64(key), int(first_step) + k, basis, float(amps[k]), stage, k,
               v0, out, failed)

    steps = len(scales) - 1
    for k in range(steps):
        current, following = buffers[k % 2], buffers[(k + 1) % 2]
        if heun:
            velocity_stage(k, current, current, 1, stage_point)
            velocity_stage(k, stage_point, current, 2, following)
        else:
            velocity_stage(k, current, current, 0, following)
    done = min(steps, int(failed.copy_to_host()[0]))
    if done % 2:
        theta_d.copy_to_device(buffers[1])
    if on_host:
        theta_d.copy_to_host(theta)
    return done
