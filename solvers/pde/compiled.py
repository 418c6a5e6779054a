"""The grid scheme's kernels in Numba, parallel and allocation-light: same calls, shapes and
meaning as the numpy reference :mod:`solvers.pde.reference`.

- :func:`transport` and :func:`hybrid_transport`: blocks of rows of cells in parallel
  (``prange``), one pass: each face's flux is computed once within a block and used by both its
  cells (a block's first face again by the block above, the same arithmetic, so the same bits),
  so the scheme conserves mass. One kernel source, the flux fixed at compile time.
- :func:`diffuse`: the implicit diffusion step, lines of cells in parallel (blocks of
  columns for axis 0, rows for axis 1), each line swept in order.
- :func:`weighted_output`: blocks of samples in parallel, each owning its rows of the output,
  tiles of particles (:mod:`solvers.cpu.tiles`) summed in order.
- :func:`first_variation`: tiles of particles in parallel, samples summed in order.

Every sum runs in a fixed order, so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import checks
from ..cpu import tiles
from ..cpu.fast_math import JIT, PARALLEL
from ..cpu.layered import kernel_arguments, make_scratch
from .grid import neumann_factors
from .integrators import LOG_FLOOR

#: samples per parallel block of ``weighted_output``
SAMPLE_BLOCK = 8
#: rows per parallel block of ``transport``
ROW_BLOCK = 8
#: columns per parallel block of the diffusion sweeps along axis 0
COLUMN_BLOCK = 16


@njit(inline="always", **JIT)
def _min(a, b):
    return a if a < b else b


@njit(inline="always", **JIT)
def _max(a, b):
    return a if a > b else b


@njit(inline="always", **JIT)
def _minmod(a, b):
    """``minmod(a, (a + b)/4, b)`` as selects (so that the loops vectorize)."""
    c = 0.25 * (a + b)
    return _max(0.0, _min(_min(a, b), c)) + _min(0.0, _max(_max(a, b), c))


@njit(inline="always", **JIT)
def _flux(u, left, right):
    """``u⁺ ρ^E_left + u⁻ ρ^W_right``."""
    return _max(u, 0.0) * left + _min(u, 0.0) * right


@njit(inline="always", **JIT)
def _max_of(values, n, start):
    """``max(start, values[:n])`` with four independent chains (a latency-bound reduction)."""
    s0 = s1 = s2 = s3 = start
    j = 0
    while j + 4 <= n:
        s0, s1 = _max(s0, values[j]), _max(s1, values[j + 1])
        s2, s3 = _max(s2, values[j + 2]), _max(s3, values[j + 3])
        j += 4
    for k in range(j, n):
        s0 = _max(s0, values[k])
    return _max(_max(s0, s1), _max(s2, s3))


@njit(inline="always", **JIT)
def _node_velocity(x_lo, x_hi, span, h):
    """``−(ξ_hi − ξ_lo)/(span·h)``: the velocity at a centre from its neighbours ``span`` cells
    apart (2 inside, 1 in the first and last cells)."""
    return (x_lo - x_hi) / (span * h)


@njit(inline="always", **JIT)
def _hybrid(upwind, r_b, r_c, u_b, u_c, beta, h):
    """The hybrid flux through the face between cells ``b`` and ``c`` (node velocities
    ``u_b``, ``u_c``): central where both cells' coefficients stay non-negative, else
    ``upwind``; minus the linear diffusion ``β (ρ_c − ρ_b)/h``."""
    bound = 2.0 * beta / h
    central = 0.5 * (r_b * u_b + r_c * u_c)
    flux = central if (u_b >= -bound and u_c <= bound) else upwind
    return flux - beta * (r_c - r_b) / h


@njit(inline="always", **JIT)
def _face_across(rho, xi, i, h0, beta, hybrid, flux, speed):
    """``flux[j]``: the flux through the face between rows ``i − 1`` and ``i`` over ``h0``;
    ``speed[j]``: its ``|u|`` (with the hybrid flux, the largest of the face's and the two
    centres'). Row indices are clamped at the walls, where the half-jumps then vanish."""
    n0, n1 = rho.shape
    a, b, c, d = max(i - 2, 0), i - 1, i, min(i + 1, n0 - 1)
    for j in range(n1):
        lo = _minmod(rho[b, j] - rho[a, j], rho[c, j] - rho[b, j])
        hi = _minmod(rho[c, j] - rho[b, j], rho[d, j] - rho[c, j])
        u = (xi[b, j] - xi[c, j]) / h0
        f = _flux(u, rho[b, j] + lo, rho[c, j] - hi)
        s = abs(u)
        if hybrid:
            u_b = _node_velocity(xi[a, j], xi[c, j], c - a, h0)
            u_c = _node_velocity(xi[b, j], xi[d, j], d - b, h0)
            f = _hybrid(f, rho[b, j], rho[c, j], u_b, u_c, beta, h0)
            s = _max(s, _max(abs(u_b), abs(u_c)))
        flux[j] = f / h0
        speed[j] = s


def _make_transport(hybrid: bool):
    """The transport kernel for the upwind (``hybrid=False``) or the hybrid flux: one source,
    the flux fixed at compile time."""

    @njit(parallel=PARALLEL, **JIT)
    def kernel(rho, xi, h0, h1, beta, rate, speed):
        """Blocks of ``ROW_BLOCK`` rows in parallel, one pass: per row, the fluxes through the
        face above it (the face below is the previous row's, or computed at the block's start;
        the walls carry none) and through its faces along axis 1, then the rate. ``speed[b]``:
        the block's largest speed per axis."""
        n0, n1 = rho.shape
        for b in prange((n0 + ROW_BLOCK - 1) // ROW_BLOCK):
            below, above, s = np.zeros(n1), np.zeros(n1), np.zeros(n1)
            f, u = np.zeros(n1 + 1), np.zeros(n1)  # f[j]: flux through the west face of cell j
            w = np.zeros(n1)  # node velocities along axis 1 (hybrid flux)
            first, last = b * ROW_BLOCK, min(n0, (b + 1) * ROW_BLOCK)
            s0 = s1 = 0.0
            if first > 0:
                _face_across(rho, xi, first, h0, beta, hybrid, below, u)
            for i in range(first, last):
                if i + 1 < n0:
                    _face_across(rho, xi, i + 1, h0, beta, hybrid, above, u)
                    s0 = _max_of(u, n1, s0)
                else:
                    above[:] = 0.0
                for j in range(1, n1 - 1):
                    s[j] = _minmod(rho[i, j] - rho[i, j - 1], rho[i, j + 1] - rho[i, j])
                if hybrid:
                    for j in range(n1):
                        lo, hi = max(j - 1, 0), min(j + 1, n1 - 1)
                        w[j] = _node_velocity(xi[i, lo], xi[i, hi], hi - lo, h1)
                for j in range(n1 - 1):
                    v = (xi[i, j] - xi[i, j + 1]) / h1
                    g = _flux(v, rho[i, j] + s[j], rho[i, j + 1] - s[j + 1])
                    speed_j = abs(v)
                    if hybrid:
                        g = _hybrid(g, rho[i, j], rho[i, j + 1], w[j], w[j + 1], beta, h1)
                        speed_j = _max(speed_j, _max(abs(w[j]), abs(w[j + 1])))
                    f[j + 1] = g / h1
                    u[j] = speed_j
                s1 = _max_of(u, n1 - 1, s1)
                for j in range(n1):
                    rate[i, j] = (f[j] - f[j + 1]) + (below[j] - above[j])
                below, above = above, below
            speed[b, 0], speed[b, 1] = s0, s1

    return kernel


_TRANSPORT = {False: _make_transport(False), True: _make_transport(True)}


def _transport(rho, xi, spacing, beta, hybrid):
    if rho.shape != xi.shape or rho.ndim != len(spacing) or rho.ndim not in (1, 2):
        raise ValueError(f"rho and xi must have one shape (n_1[, n_2]) matching spacing "
                         f"{tuple(spacing)}, got {rho.shape} and {xi.shape}")
    plane = (1, -1) if rho.ndim == 1 else rho.shape
    r2 = np.ascontiguousarray(rho, dtype=np.float64).reshape(plane)
    x2 = np.ascontiguousarray(xi, dtype=np.float64).reshape(plane)
    h0, h1 = (1.0, float(spacing[0])) if rho.ndim == 1 else map(float, spacing)
    rate, speed = np.empty_like(r2), np.empty(((plane[0] + ROW_BLOCK - 1) // ROW_BLOCK, 2))
    _TRANSPORT[hybrid](r2, x2, h0, h1, float(beta), rate, speed)
    speeds = speed.max(axis=0)
    return rate.reshape(rho.shape), (speeds[1:] if rho.ndim == 1 else speeds)


def transport(rho: np.ndarray, xi: np.ndarray, spacing) -> tuple[np.ndarray, np.ndarray]:
    """``∇_h·(ρ ∇_h ξ)`` (shape of ``rho``, ``(n_1[, n_2])``, float64) with no flux through the
    box's boundary, and the face speeds ``max |u|`` per axis ``(k,)``."""
    return _transport(rho, xi, spacing, 0.0, False)


def hybrid_transport(rho: np.ndarray, xi: np.ndarray, spacing,
                     beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``∇_h·(ρ ∇_h ξ) + β Δ_h ρ`` by the hybrid flux, as
    :func:`solvers.pde.reference.hybrid_transport`."""
    return _transport(rho, xi, spacing, beta, True)


@njit(parallel=PARALLEL, **JIT)
def _log_rows(rho, out):
    for i in prange(rho.shape[0]):
        for j in range(rho.shape[1]):
            out[i, j] = np.log(max(rho[i, j], LOG_FLOOR))


def log_density(rho: np.ndarray) -> np.ndarray:
    """``log max(ρ, LOG_FLOOR)`` (float64, the shape of ``rho``), rows in parallel."""
    r2 = np.ascontiguousarray(rho, dtype=np.float64).reshape((-1, rho.shape[-1]))
    out = np.empty_like(r2)
    _log_rows(r2, out)
    return out.reshape(rho.shape)


@njit(parallel=PARALLEL, **JIT)
def _sweep_columns(x, lam, inv_pivot, ratio):
    """``x ← (I − λ D)⁻¹ x`` along axis 0 of ``x (n_0, n_1)``, blocks of columns in parallel."""
    n0, n1 = x.shape
    for b in prange((n1 + COLUMN_BLOCK - 1) // COLUMN_BLOCK):
        lo, hi = b * COLUMN_BLOCK, min(n1, (b + 1) * COLUMN_BLOCK)
        for j in range(lo, hi):
            x[0, j] *= inv_pivot[0]
        for i in range(1, n0):
            for j in range(lo, hi):
                x[i, j] = (x[i, j] + lam * x[i - 1, j]) * inv_pivot[i]
        for i in range(n0 - 2, -1, -1):
            for j in range(lo, hi):
                x[i, j] += ratio[i] * x[i + 1, j]


@njit(parallel=PARALLEL, **JIT)
def _sweep_rows(x, lam, inv_pivot, ratio):
    """``x ← (I − λ D)⁻¹ x`` along axis 1 of ``x (n_0, n_1)``, rows in parallel."""
    n0, n1 = x.shape
    for i in prange(n0):
        x[i, 0] *= inv_pivot[0]
        for j in range(1, n1):
            x[i, j] = (x[i, j] + lam * x[i, j - 1]) * inv_pivot[j]
        for j in range(n1 - 2, -1, -1):
            x[i, j] += ratio[j] * x[i, j + 1]


def diffuse(rho: np.ndarray, lam) -> np.ndarray:
    """``Π_i (I − λ_i D_i)⁻¹ ρ`` for ``rho (n_1[, n_2])`` (float64) and ``lam (k,)``."""
    if rho.ndim not in (1, 2) or len(lam) != rho.ndim:
        raise ValueError(f"rho must be (n_1[, n_2]) with one λ per axis, got {rho.shape} and "
                         f"{len(lam)} values")
    x = np.array(rho, dtype=np.float64).reshape((1, -1) if rho.ndim == 1 else rho.shape)
    for sweep, lam_i, n in zip((_sweep_columns, _sweep_rows)[2 - rho.ndim:], lam, rho.shape,
                               strict=True):
        sweep(x, float(lam_i), *neumann_factors(float(lam_i), n))
    return x.reshape(rho.shape)


@njit(parallel=PARALLEL, **JIT)
def _weighted_output(unit, activation, theta, weights, x, tile, out):
    n, n_samples, c = theta.shape[0], x.shape[0], out.shape[1]
    top = unit.out_row
    for b in prange((n_samples + SAMPLE_BLOCK - 1) // SAMPLE_BLOCK):
        tt, z, h, dh = make_scratch(unit, theta.shape[1], tile, theta.dtype)[:4]
        weighted = np.empty((c, tile))
        lo, hi = b * SAMPLE_BLOCK, min(n_samples, (b + 1) * SAMPLE_BLOCK)
        out[lo:hi] = 0.0
        for s in range(0, n, tile):
            k = min(tile, n - s)
            lanes = tiles.load_tile(theta, s, k, tt)
            for m in range(lo, hi):
                tiles.forward(unit, activation, tt, x, m, lanes, z, h, dh)
                for q in range(c):
                    for p in range(k):
                        weighted[q, p] = weights[s + p] * h[top + q, p]
                    out[m, q] += tiles.lane_sum(weighted, q, k)


@njit(parallel=PARALLEL, **JIT)
def _first_variation(unit, activation, theta, x, coef, tile, out):
    n, c = theta.shape[0], coef.shape[1]
    top = unit.out_row
    for t in prange((n + tile - 1) // tile):
        tt, z, h, dh = make_scratch(unit, theta.shape[1], tile, theta.dtype)[:4]
        s = t * tile
        k = min(tile, n - s)
        lanes = tiles.load_tile(theta, s, k, tt)
        acc = np.zeros(lanes)
        for m in range(x.shape[0]):
            tiles.forward(unit, activation, tt, x, m, lanes, z, h, dh)
            for q in range(c):
                cq = coef[m, q]
                for p in range(lanes):
                    acc[p] += cq * h[top + q, p]
        for p in range(k):  # a loop: an array assignment compiles its shape-mismatch message
            out[s + p] = acc[p]


def _arguments(spec, theta, x):
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    checks.samples(spec, theta, x)
    return theta, np.ascontiguousarray(x, dtype=np.float64), kernel_arguments(spec, theta)


def weighted_output(spec, theta, weights, x) -> np.ndarray:
    """``Σ_i a_i σ_*(x_m, θ_i)``: ``(M, c)`` for ``theta (N, D)``, ``weights (N,)``,
    ``x (M, d)``."""
    theta, x, (unit, activation, tile, _) = _arguments(spec, theta, x)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    checks.Sizes(spec).check("weights", weights, (str(len(theta)),))
    out = np.empty((len(x), spec.layers[-1].n_out))
    _weighted_output(unit, activation, theta, weights, x, tile, out)
    return out


def first_variation(spec, theta, x, coef) -> np.ndarray:
    """``Σ_m ⟨q_m, σ_*(x_m, θ_i)⟩``: ``(N,)`` for ``theta (N, D)``, ``x (M, d)``,
    ``coef (M, c)``."""
    theta, x, (unit, activation, tile, _) = _arguments(spec, theta, x)
    coef = np.ascontiguousarray(coef, dtype=np.float64)
    checks.Sizes(spec).check("coef", coef, (str(len(x)), "c"))
    out = np.empty(len(theta))
    _first_variation(unit, activation, theta, x, coef, tile, out)
    return out
