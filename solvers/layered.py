"""Forward pass and parameter vector–Jacobian products of layered units (numpy reference).

A *layered unit* ``σ_*(x, θ)`` is a chain of affine maps ``z_l = W_l h_{l−1} + b_l`` with
``h_0 = x``, each followed by the activation (``h_l = σ(z_l)``) unless the layer is linear
(``h_l = z_l``); the unit's output is ``h_L ∈ R^c``. The perceptron ``a·σ(w·x + b)``, the matrix
unit ``σ(W x)`` and multi-layer units are all of this form. The layout of the flattened
``θ ∈ R^D`` is given by offsets in a :class:`UnitSpec`, so these functions only see plain arrays.

Shapes: particles ``theta (N, D)``, inputs ``x (M, d)``, upstream vectors ``u (M, c)``,
sample weights ``w (M,)``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .activations import get_activation

#: Particles per block in the reference kernels: bounds the ``(block, M, width)`` temporaries.
_BLOCK_ELEMENTS = 1 << 22


class Layer(NamedTuple):
    """One layer ``z ↦ W_l z + b_l`` of a layered unit, with its place in ``θ``: ``W_l (n_out,
    n_in)`` at ``w_offset`` (row-major), ``b_l`` at ``b_offset`` (−1: no bias), followed by ``σ`` if
    ``activated``."""
    n_out: int
    n_in: int
    w_offset: int  # W_l is theta[w_offset : w_offset + n_out*n_in], row-major (n_out, n_in)
    b_offset: int  # b_l is theta[b_offset : b_offset + n_out]; −1 when the layer has no bias
    activated: bool


class UnitSpec(NamedTuple):
    """A layered unit as plain data: its ``layers``, the ``activation`` name and ``dim`` ``D``;
    ``activation_precision``: how the compiled CPU kernels evaluate the activation on float32
    particles, ``"storage"`` (in float32) or ``"float64"``
    (:mod:`solvers.cpu.activations`)."""
    layers: tuple[Layer, ...]
    activation: str
    dim: int  # D
    activation_precision: str = "storage"


def _weights(spec: UnitSpec, theta: np.ndarray, layer: Layer):
    n = theta.shape[0]
    w = theta[:, layer.w_offset : layer.w_offset + layer.n_out * layer.n_in]
    w = w.reshape(n, layer.n_out, layer.n_in)
    b = None if layer.b_offset < 0 else theta[:, layer.b_offset : layer.b_offset + layer.n_out]
    return w, b


def _forward(spec, theta, x):
    """Pre-activations and layer outputs of every layer, each ``(N, M, n_l)``."""
    act = get_activation(spec.activation)
    h, cache = x, []
    for layer in spec.layers:
        w, b = _weights(spec, theta, layer)
        z = np.matmul(h, w.transpose(0, 2, 1))  # (M or N×M, n_in) @ (N, n_in, n_out)
        if b is not None:
            z = z + b[:, None, :]
        cache.append((h, z))
        h = act.value(z) if layer.activated else z
    return h, cache


def _blocks(spec, n_particles, n_samples):
    width = max(max(layer.n_out, layer.n_in) for layer in spec.layers)
    step = max(1, _BLOCK_ELEMENTS // max(1, n_samples * width))
    return [slice(i, min(i + step, n_particles)) for i in range(0, n_particles, step)]


def unit_outputs(spec: UnitSpec, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``σ_*(x_m, θ_i)`` for every particle and sample: ``(N, M, c)``."""
    return _forward(spec, theta, x)[0]


def network_output(spec: UnitSpec, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``Φ_μ(x_m) = (1/N) Σ_i σ_*(x_m, θ_i)``: ``(M, c)``, in ``theta``'s dtype."""
    x = np.asarray(x, dtype=theta.dtype)
    total = 0.0
    for blk in _blocks(spec, theta.shape[0], x.shape[0]):
        total = total + _forward(spec, theta[blk], x)[0].sum(axis=0)
    return total / theta.shape[0]


def vjp(spec: UnitSpec, theta, x, u, w) -> np.ndarray:
    """``Σ_m w_m J_θ σ_*(x_m, θ_i)ᵀ u_m`` for every particle: ``(N, D)``, in ``theta``'s
    dtype."""
    act = get_activation(spec.activation)
    x, u, w = (np.asarray(a, dtype=theta.dtype) for a in (x, u, w))
    out = np.zeros_like(theta)
    for blk in _blocks(spec, theta.shape[0], x.shape[0]):
        th = theta[blk]
        _, cache = _forward(spec, th, x)
        g = np.broadcast_to((w[:, None] * u)[None], (th.shape[0], *u.shape))
        for layer, (h_in, z) in zip(reversed(spec.layers), reversed(cache), strict=True):
            if layer.activated:
                g = g * act.derivative(z)
            w_l, _ = _weights(spec, th, layer)
            grad_w = np.matmul(g.transpose(0, 2, 1), h_in)  # (N, n_out, n_in)
            size = layer.n_out * layer.n_in
            out[blk, layer.w_offset : layer.w_offset + size] = grad_w.reshape(-1, size)
            if layer.b_offset >= 0:
                out[blk, layer.b_offset : layer.b_offset + layer.n_out] = g.sum(axis=1)
            if h_in is not x:
                g = np.matmul(g, w_l)
    return out
