"""One MF step of a perceptron written the way other tools' experts write it, timed by
``wgflow bench`` as the peers of the compiled kernels (never used by :func:`wgflow.simulate`).

The unit is ``σ_*(x, θ) = a σ(w·x + b)`` with ``θ = (a (c,), w (d,), b)``
(:class:`wgflow.units.Perceptron`), the data a fixed weighted sample ``x (M, d)``,
``y (M, c)``, ``w_m``, the risk ``R(μ) = ½ Σ_m w_m |Φ_μ(x_m) − y_m|²`` with
``Φ_μ(x) = (1/N) Σ_i σ_*(x, θ_i)``, and the step ``θ_i ← θ_i − dt ς [∇_θ δR/δμ(θ_i) + 2τθ_i]``,
the step of :func:`wgflow.simulate` with ``dynamics="mf"``, one Euler step.

- :func:`numpy_blas_mf_step`: ``Z = X Wᵀ`` by one BLAS GEMM into one ``(M, N)`` buffer reused
  by every step, the bias, ``σ`` and ``σ'`` in place, ``Φ = H A / N`` and ``∇_a = Hᵀ r`` by
  GEMV (``r_m = w_m (Φ(x_m) − y_m)``), then ``G = σ'(Z) ∘ r Aᵀ`` in place and
  ``∇_w = Gᵀ X`` (GEMM), ``∇_b = Gᵀ 1`` (GEMV). Memory ``O(N M)``.
- :func:`torch_mf_step`: the risk written in PyTorch and differentiated by autograd (CPU).
"""

from __future__ import annotations

import numpy as np
import scipy.special


def _tanh_derivative_in_place(h):
    """``h ← 1 − h²`` (``tanh' = 1 − tanh²``)."""
    np.multiply(h, h, out=h)
    np.subtract(1.0, h, out=h)


def _sigmoid_derivative_in_place(h):
    """``h ← h (1 − h)`` (``σ' = σ (1 − σ)``)."""
    np.multiply(h, np.subtract(1.0, h), out=h)


def _relu_derivative_in_place(h):
    """``h ← [h > 0]``."""
    np.greater(h, 0.0, out=h)


#: activation → (``σ`` in place on ``Z``, ``σ'`` in place from ``H = σ(Z)``)
BLAS_ACTIVATIONS = {
    "tanh": (lambda z: np.tanh(z, out=z), _tanh_derivative_in_place),
    "sigmoid": (lambda z: scipy.special.expit(z, out=z), _sigmoid_derivative_in_place),
    "relu": (lambda z: np.maximum(z, 0.0, out=z), _relu_derivative_in_place),
}
#: activations of the PyTorch step
TORCH_ACTIVATIONS = ("tanh", "sigmoid", "relu", "erf")


def _perceptron_parts(problem, theta):
    unit = problem.unit
    if unit.kind != "perceptron" or "b" not in unit.layout:
        raise ValueError("the peer steps take a perceptron unit with a bias "
                         f"(Perceptron(d, c, activation)), got a {unit.kind} unit")
    c, d = unit.c, unit.d
    return c, d, theta[:, :c], theta[:, c:c + d], theta[:, c + d]


def numpy_blas_mf_step(problem, theta: np.ndarray, dt: float, step_scale: float = 1.0):
    """A function of no arguments returning ``θ (N, D)`` after one MF step from ``theta``
    (:func:`wgflow.simulate` with ``T = dt``), in ``theta``'s dtype; its buffers are allocated
    here, once. ``problem``: a perceptron with a bias on a :class:`wgflow.data.FixedSample`."""
    name = problem.unit.activation
    if name not in BLAS_ACTIVATIONS:
        raise ValueError(f"the numpy-blas step knows the activations {sorted(BLAS_ACTIVATIONS)}, "
                         f"got {name!r}")
    activate, derivative = BLAS_ACTIVATIONS[name]
    theta = np.ascontiguousarray(theta)
    dtype, n = theta.dtype, theta.shape[0]
    c, _, a, w, b = _perceptron_parts(problem, theta)
    batch = problem.data.batch
    x, y = np.asarray(batch.x, dtype), np.asarray(batch.y, dtype)
    weights = np.asarray(batch.w, dtype)[:, None]
    a, w, b = np.ascontiguousarray(a), np.ascontiguousarray(w), np.ascontiguousarray(b)
    buffers = np.empty((x.shape[0], n), dtype), np.empty_like(theta)
    rate, decay = dtype.type(dt * step_scale), dtype.type(2.0 * problem.tau)

    def step():
        z, grad = buffers
        np.matmul(x, w.T, out=z)
        z += b
        activate(z)
        residual = z @ a
        residual *= dtype.type(1.0 / n)
        residual -= y
        residual *= weights
        np.matmul(z.T, residual, out=grad[:, :c])
        derivative(z)
        if c == 1:
            z *= residual
            z *= a[:, 0]
        else:
            z *= residual @ a.T
        np.matmul(z.T, x, out=grad[:, c:-1])
        grad[:, -1] = z.sum(axis=0)
        if decay:
            grad += decay * theta
        return theta - rate * grad

    return step


def torch_mf_step(problem, theta: np.ndarray, dt: float, step_scale: float = 1.0):
    """As :func:`numpy_blas_mf_step`, by PyTorch autograd on the CPU (``torch`` must be
    importable; it is never a dependency)."""
    import torch

    dtype = getattr(torch, str(theta.dtype))
    batch = problem.data.batch
    x, y = (torch.tensor(np.asarray(v), dtype=dtype) for v in (batch.x, batch.y))
    weights = torch.tensor(np.asarray(batch.w), dtype=dtype)
    act = getattr(torch, problem.unit.activation)
    c, d, *_ = _perceptron_parts(problem, theta)
    th = torch.tensor(theta, dtype=dtype)
    rate, decay = dt * step_scale, 2.0 * problem.tau

    def step():
        t = th.clone().requires_grad_(True)
        a, w, b = t[:, :c], t[:, c:c + d], t[:, c + d]
        phi = act(x @ w.T + b) @ a / t.shape[0]
        risk = 0.5 * (weights * ((phi - y) ** 2).sum(1)).sum()
        (grad,) = torch.autograd.grad(risk, t)
        with torch.no_grad():
            return (th - rate * (grad * t.shape[0] + decay * th)).numpy()

    return step
