"""numba.cuda kernels of the particle flow, the GPU counterpart of :mod:`solvers.cpu.tiles`,
:mod:`solvers.cpu.layered` and :mod:`solvers.cpu.flow` (launched by
:mod:`solvers.cuda.driver`).

Scalar code, one thread per work item; the GPU runs threads side by side as the CPU runs lanes:

- ``forward_partials`` (grid: samples × particle chunks): thread ``(m, q)`` sums
  ``σ_*(x_m, θ_i)`` over the particles ``i`` of chunk ``q``, in index order, into
  ``partial[q, m] (c,)``;
- ``network_sum``: ``Φ(x_m) = (1/N) Σ_q partial[q, m]``, chunks in order;
- ``coefficients`` (one thread per batch sample ``m``): the model on the orbit samples
  ``ρ_g x_m``, the residual and the upstream coefficients ``coef[gB + m] (c,)`` of the scheme's
  group sum, exactly as in :mod:`solvers.cpu.flow`;
- ``gradient_partials`` (grid: particles × sample chunks): thread ``(i, q)`` sums
  ``J_θ σ_*(x_s, θ_i)ᵀ coef_s`` over the samples of chunk ``q``, in order;
- ``gradient`` adds the chunks in order; ``update`` (one thread per particle) does too, then
  forms the velocity ``v = −ς(∇ + 2τθ)`` (times ``P`` for the equivariant architecture), draws
  the counter-based noise (:mod:`solvers.cpu.counter_rng`), takes one Euler or Heun stage and
  records the first step that leaves non-finite particles.

Every sum runs in an order fixed by the problem's sizes (the chunk partitions depend on ``N``
and the number of samples only), never by the block size: results do not depend on the launch
configuration. Kernels are built per unit and dtype (:func:`kernels_for`): the layer table,
sizes and activation are compile-time constants, so every per-thread buffer is a local array.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np
from numba import cuda, from_dtype, uint64

from ..cpu.counter_rng import _GAMMA, _INV_2_53, _M1, _M2
from ..cpu.fast_math import ACTIVATION_CODES, ERF, IDENTITY, RELU, SIGMOID, SOFTPLUS, TANH
from ..cpu.units import ACTIVATED, B_OFFSET, N_IN, N_OUT, ROW, W_OFFSET, compiled_unit
from ..layered import UnitSpec
from ..sample_terms import sample_coefficients

_TWO_PI = 2.0 * math.pi
_sample_coefficients = cuda.jit(device=True, inline=True)(sample_coefficients)
#: ``failed[0]`` while every step so far left finite particles
NO_FAILURE = 1 << 62


@cuda.jit(device=True, inline=True)
def _mix(z):
    z = (z ^ (z >> uint64(30))) * uint64(_M1)
    z = (z ^ (z >> uint64(27))) * uint64(_M2)
    return z ^ (z >> uint64(31))


@cuda.jit(device=True, inline=True)
def _uniform(key, counter, s):
    bits = _mix(key ^ _mix(counter * uint64(2) + uint64(s) + uint64(_GAMMA)))
    return (float(bits >> uint64(11)) + 0.5) * _INV_2_53


@cuda.jit(device=True, inline=True)
def normal(key, counter):
    """``Z_counter`` of stream ``key`` (both ``uint64``), as
    :func:`solvers.cpu.counter_rng.normals`: the cosine (even counter) or sine (odd) number of
    Box–Muller pair ``⌊counter/2⌋``."""
    pair = counter >> uint64(1)
    u0, u1 = _uniform(key, pair, 0), _uniform(key, pair, 1)
    angle = _TWO_PI * u1
    trig = math.sin(angle) if counter & uint64(1) else math.cos(angle)
    return math.sqrt(-2.0 * math.log(u0)) * trig


def _activation(code: int, real):
    """Device function ``z ↦ (σ(z), σ'(z))`` in the precision ``real`` (``np.float32/64``),
    in the cancellation-free forms of :mod:`solvers.activations`."""
    zero, one, two, four = real(0), real(1), real(2), real(4)
    two_over_sqrt_pi = real(2.0 / math.sqrt(math.pi))

    @cuda.jit(device=True, inline=True)
    def activation(z):
        if code == TANH:
            e = math.exp(-two * abs(z))
            return math.tanh(z), four * e / ((one + e) * (one + e))
        if code == SIGMOID or code == SOFTPLUS:
            e = math.exp(-abs(z))
            q = one / (one + e)
            sigmoid = q if z >= zero else e * q
            if code == SIGMOID:
                return sigmoid, e * q * q
            return max(z, zero) + math.log1p(e), sigmoid
        if code == RELU:
            return max(z, zero), one if z > zero else zero
        if code == ERF:
            return math.erf(z), two_over_sqrt_pi * math.exp(-z * z)
        if code == IDENTITY:
            return z, one
        return z * z, two * z  # quadratic

    return activation


@functools.lru_cache(maxsize=32)
def kernels_for(spec: UnitSpec, dtype: str) -> SimpleNamespace:
    """The kernels of unit ``spec`` in precision ``dtype`` (``"float32"`` or ``"float64"``)."""
    real = np.dtype(dtype).type
    scalar = from_dtype(np.dtype(dtype))
    layers = np.array(compiled_unit(spec).table, dtype=np.int64)  # (L, 6)
    n_layers, dim, c = layers.shape[0], spec.dim, spec.layers[-1].n_out
    rows = int(layers[-1, ROW] + layers[-1, N_OUT])
    width = int(max(layers[:, N_OUT].max(), layers[:, N_IN].max()))
    out_row, top = int(layers[-1, ROW]), n_layers - 1
    zero = real(0)
    activation = _activation(ACTIVATION_CODES[spec.activation], real)

    @cuda.jit(device=True, inline=True)
    def forward(th, x, m, h, dh):
        """``h`` (outputs) and ``dh`` (``σ'``) of every layer for sample ``x[m]``, ``th (D,)``."""
        for layer in range(n_layers):
            n_out, n_in, row = layers[layer, N_OUT], layers[layer, N_IN], layers[layer, ROW]
            w_off, b_off = layers[layer, W_OFFSET], layers[layer, B_OFFSET]
            prev = layers[layer - 1, ROW] if layer > 0 else 0
            for k in range(n_out):
                acc = th[b_off + k] if b_off >= 0 else zero
                for j in range(n_in):
                    acc += th[w_off + k * n_in + j] * (x[m, j] if layer == 0 else h[prev + j])
                if layers[layer, ACTIVATED]:
                    h[row + k], dh[row + k] = activation(acc)
                else:
                    h[row + k] = acc

    @cuda.jit(device=True, inline=True)
    def add_gradient(th, x, m, coef, h, dh, g, g_next, grad):
        """``grad (D,) += J_θ σ_*(x_m, θ)ᵀ coef[m]``; ``g``, ``g_next (W,)`` hold ``∂/∂z_l``."""
        forward(th, x, m, h, dh)
        for k in range(c):
            g[k] = coef[m, k] * dh[out_row + k] if layers[top, ACTIVATED] else coef[m, k]
        for layer in range(top, -1, -1):
            n_out, n_in = layers[layer, N_OUT], layers[layer, N_IN]
            w_off, b_off = layers[layer, W_OFFSET], layers[layer, B_OFFSET]
            prev = layers[layer - 1, ROW] if layer > 0 else 0
            for k in range(n_out):
                if b_off >= 0:
                    grad[b_off + k] += g[k]
                for j in range(n_in):
                    grad[w_off + k * n_in + j] += g[k] * (x[m, j] if layer == 0
                                                          else h[prev + j])
            if layer > 0:
                for j in range(n_in):
                    acc = zero
                    for k in range(n_out):
                        acc += th[w_off + k * n_in + j] * g[k]
                    g_next[j] = acc * dh[prev + j] if layers[layer - 1, ACTIVATED] else acc
                for j in range(n_in):
                    g[j] = g_next[j]

    @cuda.jit
    def gradient_partials(theta, xs, step, coef, chunk, partial):
        """``partial[q, i] = Σ_{s ∈ chunk q} J_θ σ_*(x_s, θ_i)ᵀ coef_s``, samples in order,
        ``x = xs[step]``."""
        i, q = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, cuda.blockIdx.y
        if i >= theta.shape[0]:
            return
        x = xs[step]
        th, grad = cuda.local.array(dim, scalar), cuda.local.array(dim, scalar)
        h, dh = cuda.local.array(rows, scalar), cuda.local.array(rows, scalar)
        g, g_next = cuda.local.array(width, scalar), cuda.local.array(width, scalar)
        for k in range(dim):
            th[k] = theta[i, k]
            grad[k] = zero
        for s in range(q * chunk, min(x.shape[0], (q + 1) * chunk)):
            add_gradient(th, x, s, coef, h, dh, g, g_next, grad)
        for k in range(dim):
            partial[q, i, k] = grad[k]

    @cuda.jit(device=True, inline=True)
    def gradient_at(partial, i, k):
        """``Σ_q partial[q, i, k]``, chunks in order."""
        acc = zero
        for q in range(partial.shape[0]):
            acc += partial[q, i, k]
        return acc

    @cuda.jit(device=True, inline=True)
    def model_at(partial, s, n, model):
        for k in range(c):
            acc = zero
            for q in range(partial.shape[0]):
                acc += partial[q, s, k]
            model[s, k] = acc / n

    @cuda.jit
    def forward_partials(theta, xs, step, chunk, partial):
        """``partial[q, m] = Σ_{i ∈ chunk q} σ_*(x_m, θ_i)``, ``x = xs[step]``."""
        m, q = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x, cuda.blockIdx.y
        x = xs[step]
        if m >= x.shape[0]:
            return
        h, dh = cuda.local.array(rows, scalar), cuda.local.array(rows, scalar)
        acc = cuda.local.array(c, scalar)
        for k in range(c):
            acc[k] = zero
        for i in range(q * chunk, min(theta.shape[0], (q + 1) * chunk)):
            forward(theta[i], x, m, h, dh)
            for k in range(c):
                acc[k] += h[out_row + k]
        for k in range(c):
            partial[q, m, k] = acc[k]

    @cuda.jit
    def network_sum(partial, n, model):
        s = cuda.grid(1)
        if s < model.shape[0]:
            model_at(partial, s, n, model)

    @cuda.jit
    def coefficients(partial, n, ys, ws, step, rho_out, wg, average, model, coef):
        """The upstream ``coef`` of batch ``(ys[step], ws[step])``: the model from the chunk
        partials, then :func:`solvers.sample_terms.sample_coefficients`, as on the CPU."""
        y, w = ys[step], ws[step]
        m, b, n_nodes = cuda.grid(1), y.shape[0], wg.shape[0]
        if m >= b:
            return
        for g in range(n_nodes):
            model_at(partial, g * b + m, n, model)
        residual = cuda.local.array(c, np.float64)
        _sample_coefficients(m, y, w, rho_out, wg, average, model, residual, coef, 0, n_nodes)

    @cuda.jit
    def gradient(partial, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            for k in range(dim):
                out[i, k] = gradient_at(partial, i, k)

    @cuda.jit
    def update(theta, base, partial, tau, scale, proj, dt, key, noise_step, basis, amp, stage,
               step, v0, out, failed):
        """Stage 0 (Euler): ``out = base + dt·v(θ) + ξ``; stage 1 (Heun predictor): the same,
        keeping ``v0 = v(θ)``; stage 2 (Heun corrector): ``out = base + dt(v0 + v(θ))/2 + ξ``.
        The noise ``ξ = amp · basis Z`` (``basis (D, K)``) is drawn for global step
        ``noise_step``; ``step`` counts the call's steps: a step after a failed one does
        nothing."""
        i, n = cuda.grid(1), theta.shape[0]
        if i >= n or failed[0] < step:
            return
        grad, v = cuda.local.array(dim, scalar), cuda.local.array(dim, scalar)
        z = cuda.local.array(dim, np.float64)
        for k in range(dim):
            grad[k] = -scale * (gradient_at(partial, i, k) + 2.0 * tau * theta[i, k])
        for k in range(dim):
            if proj.shape[0] > 0:
                acc = zero
                for j in range(dim):
                    acc += grad[j] * proj[j, k]
                v[k] = acc
            else:
                v[k] = grad[k]
        n_dirs = basis.shape[1]
        for j in range(n_dirs):
            z[j] = normal(key, uint64((noise_step * n + i) * n_dirs + j))
        finite = True
        for k in range(dim):
            xi = 0.0
            for j in range(n_dirs):
                xi += amp * basis[k, j] * z[j]
            xi = real(xi)
            if stage == 2:
                new = base[i, k] + 0.5 * dt * (v0[i, k] + v[k]) + xi
            else:
                new = base[i, k] + dt * v[k] + xi
            if stage == 1:
                v0[i, k] = v[k]
            stored = real(new)  # the value checked is the one stored (float32 may overflow)
            out[i, k] = stored
            finite = finite and math.isfinite(stored)
        if stage != 1 and not finite:
            cuda.atomic.min(failed, 0, step)

    return SimpleNamespace(forward_partials=forward_partials, network_sum=network_sum,
                           coefficients=coefficients, gradient_partials=gradient_partials,
                           gradient=gradient, update=update, dim=dim, c=c, real=real)
