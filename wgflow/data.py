"""The data law ``π`` of ``(X, Y)`` and the ways expectations ``E_π`` are taken.

- :class:`Teacher`: labels ``Y = Φ_teacher(X) = (1/K) Σ_k σ_*(X, θ*_k)`` from K particles of any
  unit family.
- :class:`GaussianData`: ``X ~ N(mean, cov)`` with labels from a teacher.
- Expectations (each has ``draw(rng, steps, kernels) -> Batch`` with a leading axis of ``steps``
  batches; ``kernels`` computes fresh labels: :mod:`solvers.layered`, the numpy reference, or
  :mod:`solvers.cpu.layered`):
  :class:`FixedSample` (a fixed finite sample or quadrature; ``draw`` returns it once, leading
  axis 1, standing for every step), :class:`OnlineSample` (``size`` fresh samples per step),
  :class:`Minibatch` (``size`` samples per step drawn with replacement from a fixed sample).
- :func:`gauss_hermite`: tensor Gauss–Hermite quadrature of a Gaussian law (exactly symmetric
  under permutations and sign flips of the whitened coordinates).
- :func:`orbit_closed`: the exactly symmetric sample ``{(ρ_g x, ρ̂_g y)}`` of a finite group.

A :class:`Batch` carries ``x (M, d)``, ``y (M, c)`` and weights ``w (M,)`` summing to 1.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from solvers import layered

from ._checks import as_particles, as_samples, positive

#: Largest tensor Gauss–Hermite grid built.
MAX_QUADRATURE_POINTS = 1_000_000


class Batch(NamedTuple):
    """Weighted samples of ``π``: inputs ``x (M, d)``, outputs ``y (M, c)``, weights ``w (M,)``
    summing to 1 (any leading axes before ``M``)."""
    x: np.ndarray  # (M, d)
    y: np.ndarray  # (M, c)
    w: np.ndarray  # (M,), sums to 1


class Teacher:
    """``Φ_teacher(x) = (1/K) Σ_k σ_*(x, θ*_k)`` for teacher particles ``(K, D)`` of ``unit``."""

    def __init__(self, unit, particles):
        self.unit = unit
        self.particles = as_particles(particles, unit.dim, "teacher particles")

    def __call__(self, x, kernels=layered) -> np.ndarray:
        """The labels ``(M, c)`` of inputs ``x (M, d)``, computed by ``kernels``
        (:mod:`solvers.layered`, the numpy reference, or :mod:`solvers.cpu.layered`; they
        agree to rounding)."""
        return kernels.network_output(self.unit.spec, self.particles,
                                      as_samples(x, self.unit.d, "x"))


class GaussianData:
    """``X ~ N(mean, cov)`` on ``R^d``, ``Y = teacher(X)``. ``cov`` may be a scalar variance."""

    def __init__(self, teacher: Teacher, cov=1.0, mean=None):
        self.teacher = teacher
        d = teacher.unit.d
        self.d, self.c = d, teacher.unit.c
        cov = np.asarray(cov, dtype=float)
        cov = cov * np.eye(d) if cov.ndim == 0 else cov
        if cov.shape != (d, d) or not np.allclose(cov, cov.T) or not np.all(np.isfinite(cov)):
            raise ValueError(f"cov must be a finite symmetric ({d}, {d}) matrix or a scalar "
                             f"variance, got shape {cov.shape}")
        lam, vec = np.linalg.eigh(cov)
        if lam.min() <= 0:
            raise ValueError("cov must be positive definite (smallest eigenvalue "
                             f"{lam.min():.3g}); add a small multiple of the identity")
        self.cov = cov
        self.mean = np.zeros(d) if mean is None else as_samples(mean, d, "mean")[0]
        #: symmetric square root of cov: it commutes with every orthogonal map that fixes cov
        self.sqrt_cov = (vec * np.sqrt(lam)) @ vec.T
        diagonal = np.diag(np.diag(self.sqrt_cov))
        #: the diagonal of ``cov^{1/2}`` when it is diagonal (else ``None``): ``z · diag`` gives
        #: the bits of ``z @ cov^{1/2}`` (each added term is an exact zero) without a matrix
        #: product, which costs more than the sampling for small ``d``
        self.sqrt_cov_diagonal = (np.diag(self.sqrt_cov).copy()
                                  if np.array_equal(diagonal, self.sqrt_cov) else None)

    def inputs(self, z: np.ndarray) -> np.ndarray:
        """Map whitened points ``z (M, d)`` to ``x = mean + cov^{1/2} z``."""
        x = z @ self.sqrt_cov if self.sqrt_cov_diagonal is None else z * self.sqrt_cov_diagonal
        if np.any(self.mean):  # a broadcast add over rows of d numbers is slow for small d
            x += self.mean
        return x

    def sample(self, rng: np.random.Generator, size: int, kernels=layered) -> Batch:
        """``size`` i.i.d. samples ``(x, y)``, uniform weights; the labels computed by
        ``kernels`` (:meth:`Teacher.__call__`)."""
        x = self.inputs(rng.standard_normal((size, self.d)))
        return Batch(x, self.teacher(x, kernels), np.full(size, 1.0 / size))

    def describe(self) -> dict:
        """A JSON-able description: covariance, mean and the teacher's particles."""
        return {"kind": "gaussian", "cov": self.cov.tolist(), "mean": self.mean.tolist(),
                "teacher_particles": self.teacher.particles.tolist()}


class FixedSample:
    """A fixed weighted sample (or quadrature) of ``π``; ``draw`` returns it every time."""

    def __init__(self, x, y, w=None):
        self.x = _as_table(x, "x")
        self.y = _as_table(y, "y")
        if self.y.shape[0] != self.x.shape[0]:
            raise ValueError(f"x and y must have the same number of samples, got "
                             f"{self.x.shape[0]} and {self.y.shape[0]}")
        m = self.x.shape[0]
        w = np.full(m, 1.0 / m) if w is None else np.asarray(w, dtype=float)
        if w.shape != (m,) or np.any(w < 0) or not np.isclose(w.sum(), 1.0, atol=1e-10):
            raise ValueError(f"w must be {m} nonnegative weights summing to 1")
        self.batch = Batch(self.x, self.y, w)
        self.d, self.c = self.x.shape[1], self.y.shape[1]

    def draw(self, rng=None, steps: int = 1, kernels=layered) -> Batch:
        """The sample, once (leading axis 1): it stands for every one of the ``steps``
        (its labels are given: ``kernels`` is not used)."""
        return Batch(*(a[None] for a in self.batch))

    def describe(self) -> dict:
        """A JSON-able description: kind and size."""
        return {"kind": "fixed", "size": len(self.x)}


class OnlineSample:
    """``size`` fresh samples of ``law`` per draw (online SGD, Monte Carlo MF velocity)."""

    def __init__(self, law: GaussianData, size: int):
        self.law, self.size = law, positive(size, "batch size", integer=True)

    def draw(self, rng, steps: int = 1, kernels=layered) -> Batch:
        """``steps`` batches of ``size`` fresh samples: leading axis ``steps``; the labels
        computed by ``kernels`` (:meth:`Teacher.__call__`)."""
        b = self.law.sample(rng, steps * self.size, kernels)
        return _per_step(Batch(b.x, b.y, np.full(len(b.w), 1.0 / self.size)), steps)

    def describe(self) -> dict:
        """A JSON-able description: kind and batch size."""
        return {"kind": "online", "size": self.size}


class Minibatch:
    """``size`` samples drawn uniformly with replacement from a :class:`FixedSample`."""

    def __init__(self, sample: FixedSample, size: int):
        self.sample, self.size = sample, positive(size, "batch size", integer=True)

    def draw(self, rng, steps: int = 1, kernels=layered) -> Batch:
        """``steps`` batches of ``size`` samples drawn with replacement (by weight) from the fixed
        sample: leading axis ``steps`` (its labels are given: ``kernels`` is not used)."""
        full = self.sample.batch
        idx = rng.choice(len(full.w), size=steps * self.size, p=full.w)
        return _per_step(Batch(full.x[idx], full.y[idx], np.full(len(idx), 1.0 / self.size)), steps)

    def describe(self) -> dict:
        """A JSON-able description: kind, batch size and training-set size."""
        return {"kind": "minibatch", "size": self.size, "train_size": len(self.sample.x)}


def _per_step(batch: Batch, steps: int) -> Batch:
    """Cut a batch of ``steps·size`` samples into ``steps`` batches: leading axis ``steps``."""
    return Batch(*(a.reshape(steps, -1, *a.shape[1:]) for a in batch))


def _as_table(values, name: str) -> np.ndarray:
    """A 2-D finite table ``(M, k)``; a 1-D input is one column."""
    arr = np.asarray(values, dtype=float)
    arr = arr[:, None] if arr.ndim == 1 else arr
    return as_samples(arr, arr.shape[1] if arr.ndim == 2 else -1, name)


def gauss_hermite(law: GaussianData, points_per_dim: int) -> FixedSample:
    """Tensor Gauss–Hermite quadrature of ``law`` with ``n = points_per_dim`` points per
    dimension (``n^d`` nodes ``x (n^d, d)``, labels ``y (n^d, c)``, weights ``w (n^d,)``): exact
    for polynomials of degree ``< 2n`` in each coordinate, an approximation for other integrands
    (:func:`wgflow.problem.quadrature_error` estimates its error)."""
    n = positive(points_per_dim, "points_per_dim", integer=True)
    if n**law.d > MAX_QUADRATURE_POINTS:
        raise ValueError(f"points_per_dim = {n} gives {n}^{law.d} quadrature points "
                         f"(> {MAX_QUADRATURE_POINTS}); use fewer points or a Monte Carlo sample")
    nodes, weights = np.polynomial.hermite_e.hermegauss(n)
    weights = weights / weights.sum()
    grids = np.meshgrid(*([nodes] * law.d), indexing="ij")
    z = np.stack([g.ravel() for g in grids], axis=1)
    w = np.prod(np.stack(np.meshgrid(*([weights] * law.d), indexing="ij")).reshape(law.d, -1),
                axis=0)
    x = law.inputs(z)
    return FixedSample(x, law.teacher(x), w / w.sum())


def orbit_batch(batch: Batch, symmetry) -> Batch:
    """``{(ρ_g x_m, ρ̂_g y_m)}`` over the Haar nodes ``g`` with weights ``w_g w_m``, ordered
    ``(g, m)``: ``G·M`` samples."""
    elements, wg = symmetry.elements()
    rho, rho_out, _ = symmetry.matrices(elements)
    x = np.einsum("gij,mj->gmi", rho, batch.x).reshape(-1, batch.x.shape[1])
    y = np.einsum("gij,mj->gmi", rho_out, batch.y).reshape(-1, batch.y.shape[1])
    return Batch(x, y, np.outer(wg, batch.w).ravel())


def orbit_closed(sample: FixedSample, symmetry) -> FixedSample:
    """The orbit-expanded sample: exactly symmetric under a finite group."""
    return FixedSample(*orbit_batch(sample.batch, symmetry))
