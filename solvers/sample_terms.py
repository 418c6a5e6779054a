"""Per-sample arithmetic shared by the CPU and the GPU kernels: plain Python that each target
compiles (``numba.njit`` in :mod:`solvers.cpu.flow`, ``numba.cuda.jit(device=True)`` in
:mod:`solvers.cuda.kernels`), so both do the same operations in the same order.
"""

import numpy as np


def sample_coefficients(m, y, w, rho_out, wg, average, model, residual, coef, g_start, g_stop):
    """The upstream coefficients ``coef[gB + m] (c,)``, ``g_start ≤ g < g_stop``, of batch
    sample ``m`` from the model on its orbit samples ``model[gB + m] = Φ(ρ_g x_m)``
    (``B = len(y)``), as in :mod:`solvers.cpu.flow`: with ``average`` (FA)
    ``r = Σ_g w_g ρ̂_gᵀ Φ(ρ_g x_m) − y_m`` over the whole orbit and ``u_g = ρ̂_g r``, otherwise
    (full-orbit DA) ``u_g = Φ(ρ_g x_m) − ρ̂_g y_m``, which reads the model on ``ρ_g x_m``
    alone; ``coef = w_g w_m u_g``. ``residual (c,)`` is float64 scratch; sums run in
    float64."""
    b, c, n_nodes = y.shape[0], y.shape[1], wg.shape[0]
    for j in range(c):  # each sum in a local, in the order (g, i): no store–load chain
        r = np.float64(-y[m, j])
        if average:
            for g in range(n_nodes):
                for i in range(c):
                    r += wg[g] * rho_out[g, i, j] * model[g * b + m, i]
        residual[j] = r
    for g in range(g_start, g_stop):
        for i in range(c):
            u = 0.0
            if average:
                for j in range(c):
                    u += rho_out[g, i, j] * residual[j]
            else:
                u += model[g * b + m, i]
                for j in range(c):
                    u -= rho_out[g, i, j] * y[m, j]
            coef[g * b + m, i] = wg[g] * w[m] * u
