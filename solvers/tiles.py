"""Per-tile forward and backward passes of a layered unit, for the compiled kernels.

A *tile* is up to ``P`` particles held transposed, ``tt (D, P)``, so that every inner loop runs
over the particle lanes ``p`` of contiguous rows and vectorizes. For one sample ``x_m`` the
forward pass fills, per layer ``l`` and output ``k``, the rows ``row_l + k`` of the buffers
``z`` (pre-activation), ``h`` (output) and ``dh`` (``σ'(z)``), all ``(R, P)`` with
``R = Σ_l n_l``; the backward pass accumulates ``J_θ σ_*(x_m, θ_p)ᵀ c_m`` into ``grad (D, P)``.
Sums over samples run in sample order, lane by lane, so a particle's result does not depend on
the tile it sits in.

The layer table ``layers (L, 6)`` holds, per layer, ``n_out, n_in, w_offset, b_offset
(−1: none), activated, row`` (see :class:`solvers.layered.Layer`).
"""

from __future__ import annotations

from numba import njit

from . import wide_layer
from .compiled_activations import activate
from .fast_math import JIT

N_OUT, N_IN, W_OFFSET, B_OFFSET, ACTIVATED, ROW = range(6)


@njit(inline="always", **JIT)
def _layer(layers, layer):
    """The table row of ``layer`` and the first buffer row of the layer before it."""
    e = layers[layer]
    prev = layers[layer - 1, ROW] if layer > 0 else 0
    return e[N_OUT], e[N_IN], e[W_OFFSET], e[B_OFFSET], e[ACTIVATED], e[ROW], prev


@njit(inline="always", **JIT)
def load_tile(theta, start, n, tt):
    """``tt[k, p] = θ_{start+p, k}`` for ``p < n``, and zero up to the next multiple of 8 lanes;
    returns that lane count: passes run over whole vectors (padded lanes are never read out)."""
    lanes = min(tt.shape[1], (n + 7) // 8 * 8)
    for k in range(theta.shape[1]):
        for p in range(n):
            tt[k, p] = theta[start + p, k]
        for p in range(n, lanes):
            tt[k, p] = 0.0
    return lanes


@njit(inline="always", **JIT)
def _affine_of_sample(acc, r, tt, w, bias, x, m, n_in, n):
    """``acc[r, p] = b_p + Σ_j W_{j,p} x_mj`` (``bias < 0``: no bias), first layer."""
    x0 = x[m, 0]
    if bias >= 0:
        for p in range(n):
            acc[r, p] = tt[bias, p] + tt[w, p] * x0
    else:
        for p in range(n):
            acc[r, p] = tt[w, p] * x0
    for j in range(1, n_in):
        xj = x[m, j]
        for p in range(n):
            acc[r, p] += tt[w + j, p] * xj


@njit(inline="always", **JIT)
def _affine_of_rows(acc, r, tt, w, bias, h, prev, n_in, n):
    """``acc[r, p] = b_p + Σ_j W_{j,p} h[prev + j, p]``, hidden layers."""
    if bias >= 0:
        for p in range(n):
            acc[r, p] = tt[bias, p] + tt[w, p] * h[prev, p]
    else:
        for p in range(n):
            acc[r, p] = tt[w, p] * h[prev, p]
    for j in range(1, n_in):
        for p in range(n):
            acc[r, p] += tt[w + j, p] * h[prev + j, p]


@njit(inline="always", **JIT)
def forward(layers, activation, tt, x, m, n, z, h, dh, first=None, s=-1):
    """Fill ``h`` (and ``z``, ``dh`` on activated layers) for sample ``x[m]`` and the first
    ``n`` lanes of the tile, with the :class:`~solvers.compiled_activations.CompiledActivation`
    ``activation``. The bias and the first input term are one pass, and a linear layer
    accumulates straight into ``h``. With ``s ≥ 0``, the first layer's affine terms were
    computed with those of other samples, into ``first[:, s]`` (:mod:`solvers.wide_layer`)."""
    for layer in range(layers.shape[0]):
        n_out, n_in, w_off, b_off, activated, row, prev = _layer(layers, layer)
        for k in range(n_out):
            r, w, bias = row + k, w_off + k * n_in, b_off + k if b_off >= 0 else -1
            acc = z if activated else h
            if layer == 0:
                if s < 0:
                    _affine_of_sample(acc, r, tt, w, bias, x, m, n_in, n)
                else:
                    wide_layer.row_from_block(first, s, k, acc, r, n)
            else:
                _affine_of_rows(acc, r, tt, w, bias, h, prev, n_in, n)
            if activated:
                activate(activation, z, h, dh, r, n)


@njit(inline="always", **JIT)
def lane_sum(buf, r, n):
    """``Σ_{p<n} buf[r, p]`` in a fixed order: eight interleaved partial sums, then a tree."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    full = n - n % 8
    for p in range(0, full, 8):
        s0 += buf[r, p]
        s1 += buf[r, p + 1]
        s2 += buf[r, p + 2]
        s3 += buf[r, p + 3]
        s4 += buf[r, p + 4]
        s5 += buf[r, p + 5]
        s6 += buf[r, p + 6]
        s7 += buf[r, p + 7]
    for p in range(full, n):
        s0 += buf[r, p]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@njit(**JIT)
def backpropagate(layers, tt, x, m, coef, n, h, dh, g, g_next, grad, first=None, s=-1):
    """``grad[:, p] += J_θ σ_*(x_m, θ_p)ᵀ coef`` from the forward pass's (:func:`forward`)
    ``h``, ``dh`` of sample ``m``; ``g``, ``g_next`` are ``(W, P)`` scratch rows, ``W`` the
    widest layer. ``g`` holds ``∂/∂z_l`` of the current layer: the factor ``σ'(z)`` is applied
    when ``g`` is formed. With ``s ≥ 0``, the first layer's weight gradient is left to
    :func:`solvers.wide_layer.first_layer_gradient`: its ``g`` goes to ``first[:, s]``."""
    top = layers.shape[0] - 1
    _, _, _, _, activated, row, _ = _layer(layers, top)
    for k in range(coef.shape[0]):
        if activated:
            for p in range(n):
                g[k, p] = coef[k] * dh[row + k, p]
        else:
            for p in range(n):
                g[k, p] = coef[k]
    for layer in range(top, -1, -1):
        n_out, n_in, w_off, b_off, _, _, prev = _layer(layers, layer)
        for k in range(n_out):
            if b_off >= 0:
                for p in range(n):
                    grad[b_off + k, p] += g[k, p]
            if layer == 0 and s >= 0:
                wide_layer.row_to_block(first, s, k, g, n)
                continue
            for j in range(n_in):
                w = w_off + k * n_in + j
                if layer == 0:
                    xj = x[m, j]
                    for p in range(n):
                        grad[w, p] += g[k, p] * xj
                else:
                    for p in range(n):
                        grad[w, p] += g[k, p] * h[prev + j, p]
        if layer > 0:
            below_activated = layers[layer - 1, ACTIVATED]
            for j in range(n_in):
                for k in range(n_out):
                    w = w_off + k * n_in + j
                    if k == 0:
                        for p in range(n):
                            g_next[j, p] = tt[w, p] * g[k, p]
                    else:
                        for p in range(n):
                            g_next[j, p] += tt[w, p] * g[k, p]
                if below_activated:
                    for p in range(n):
                        g_next[j, p] *= dh[prev + j, p]
            g, g_next = g_next, g
