"""The uniform grid of cells on a box, and nonlocal terms ``(W ⋆ ρ)`` on it by FFT.

A grid on ``[a_1, b_1] × … × [a_k, b_k]`` (``k = 1, 2``) with ``n_i`` cells per axis has spacing
``h_i = (b_i − a_i)/n_i``, centres ``a_i + (j + ½) h_i`` and cell volume ``|C| = Π h_i``.
Densities are cell averages ``ρ (n_1[, n_2])``; the mass is ``Σ ρ |C|``.

The implicit diffusion step solves ``(I − λ D) x = r`` along one axis, ``D`` the second
difference with no flux through the walls (``(Dx)_j = x_{j−1} − 2x_j + x_{j+1}``, ``x_{−1} = x_0``,
``x_n = x_{n−1}``): a symmetric M-matrix whose columns sum to one, so the solve conserves
``Σ x`` (in exact arithmetic) and, by elimination without pivoting (:func:`neumann_factors`),
keeps ``x ≥ 0`` in floating point: every operation adds or divides non-negative numbers.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.fft


class Grid(NamedTuple):
    """A box ``Π_i [a_i, b_i]`` cut into ``n_i`` equal cells per axis (``k = 1, 2`` axes)."""
    lower: tuple[float, ...]  # (k,) a_i
    upper: tuple[float, ...]  # (k,) b_i
    shape: tuple[int, ...]  # (k,) n_i

    @property
    def spacing(self) -> np.ndarray:
        """``h (k,)``."""
        return (np.subtract(self.upper, self.lower)) / np.asarray(self.shape)

    @property
    def cell_volume(self) -> float:
        """``|C| = Π_i h_i``."""
        return float(np.prod(self.spacing))

    def centers(self) -> tuple[np.ndarray, ...]:
        """The cell centres of each axis, ``(n_i,)`` each."""
        return tuple(a + (np.arange(n) + 0.5) * h
                     for a, n, h in zip(self.lower, self.shape, self.spacing, strict=True))

    def points(self) -> np.ndarray:
        """Every cell centre, ``(n_1 ⋯ n_k, k)`` in C order (the order of ``ρ.ravel()``)."""
        mesh = np.meshgrid(*self.centers(), indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=1)


class Convolution(NamedTuple):
    """``W`` sampled at every difference of two centres, transformed: ``(2n_1[, 2n_2])``."""

    kernel_hat: np.ndarray
    shape: tuple[int, ...]


def convolution(grid: Grid, kernel) -> Convolution:
    """Prepare ``(W ⋆ ρ)(x_i) = Σ_j W(x_i − x_j) ρ_j |C|`` for ``kernel(z (P, k)) -> (P,)``.

    ``W`` is symmetrized, ``½(W(z) + W(−z))``: only its even part enters a gradient flow. The
    offsets ``z = (i − j) h`` are laid out circularly on ``2n_i`` points per axis (zero padding),
    so the circular convolution of the padded density is the linear one."""
    axes = []
    for n, h in zip(grid.shape, grid.spacing, strict=True):
        k = np.arange(2 * n)
        axes.append(np.where(k < n, k, k - 2 * n) * h)  # offset n·h is never used
    mesh = np.meshgrid(*axes, indexing="ij")
    z = np.stack([m.ravel() for m in mesh], axis=1)
    plus, minus = (np.asarray(kernel(sign * z), dtype=float) for sign in (1, -1))
    if not (np.all(np.isfinite(plus)) and np.all(np.isfinite(minus))):
        raise ValueError("interaction: W is not finite at some difference of two cell centres "
                         "(W(0) included); regularize it at the origin")
    values = 0.5 * (plus + minus).reshape(mesh[0].shape) * grid.cell_volume
    return Convolution(scipy.fft.rfftn(values), tuple(grid.shape))


def convolve(conv: Convolution, rho: np.ndarray) -> np.ndarray:
    """``(W ⋆ ρ)`` at the centres, shape of ``rho``."""
    padded = tuple(2 * n for n in conv.shape)
    out = scipy.fft.irfftn(scipy.fft.rfftn(rho, padded) * conv.kernel_hat, padded)
    return out[tuple(slice(0, n) for n in conv.shape)]


def neumann_factors(lam: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian elimination of ``I − λ D`` (``n`` cells, ``λ ≥ 0``), the same for every line:
    ``pivot⁻¹ (n,)`` and ``ratio (n,)`` with ``ratio_j = λ pivot_j⁻¹``, ``pivot_0 = 1 + λ``,
    ``pivot_j = 1 + (2 − [j = n−1]) λ − λ ratio_{j−1}``. The sweeps are then
    ``y_j = (r_j + λ y_{j−1}) pivot_j⁻¹`` (forward) and ``x_j = y_j + ratio_j x_{j+1}``."""
    inv_pivot, ratio = np.empty(n), np.empty(n)
    previous = 0.0
    for j in range(n):
        pivot = 1.0 + (1.0 if j in (0, n - 1) else 2.0) * lam - lam * previous
        inv_pivot[j] = 1.0 / pivot
        previous = ratio[j] = lam * inv_pivot[j]
    return inv_pivot, ratio
