"""Units ``σ_*(x, θ) ∈ R^c``: the small networks whose mean makes the model.

``Φ_μ(x) = ∫ σ_*(x, θ) μ(dθ)``; for N particles ``Φ_N(x) = (1/N) Σ_i σ_*(x, θ_i)``.
Each unit is a chain of layers ``h_l = σ(W_l h_{l−1} + b_l)`` (see :mod:`solvers.layered`) with a
documented layout of the flattened parameter vector ``θ ∈ R^D`` (:attr:`LayeredUnit.layout`):

==============  ==============================  ======================================
unit            ``σ_*(x, θ)``                   layout of ``θ``
==============  ==============================  ======================================
``Perceptron``  ``a·σ(w·x + b)``                ``(a ∈ R^c, w ∈ R^d, b ∈ R)``
``MatrixUnit``  ``σ(W x)`` elementwise          ``W ∈ R^{c×d}`` row-major
``MLPUnit``     ``W_L σ(… σ(W_1 x + b_1) …)``   ``W_1, b_1, …, W_{L−1}, b_{L−1}, W_L``
==============  ==============================  ======================================

Group actions on θ are derived from representations on every layer's space (input ``ρ``,
hidden ``ρ_l``, output ``ρ̂``): ``W_l ↦ ρ_l W_l ρ_{l−1}ᵀ``, ``b_l ↦ ρ_l b_l``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from solvers.activations import get_activation
from solvers.layered import Layer, UnitSpec, network_output, unit_outputs, vjp

from ._checks import as_particles, as_samples


class LayeredUnit:
    """A unit built from :class:`solvers.layered.Layer` records (use the subclasses)."""

    kind = "layered"

    def __init__(self, d: int, c: int, activation: str, layers, layout: dict):
        get_activation(activation)
        self.d, self.c, self.activation = d, c, activation
        self.spec = UnitSpec(tuple(layers), activation,
                             sum(math.prod(s) for _, s in layout.values()))
        #: name -> (offset, shape) of each parameter block in θ
        self.layout = layout

    @property
    def dim(self) -> int:
        """D, the dimension of the parameter space Z = R^D."""
        return int(self.spec.dim)

    @property
    def space_dims(self) -> tuple[int, ...]:
        """Dimensions of the spaces the layers map between: ``(d, n_1, …, c)``."""
        return (self.d, *(layer.n_out for layer in self.spec.layers))

    def __call__(self, x, theta) -> np.ndarray:
        """``σ_*(x_m, θ_i)``: ``(N, M, c)`` for ``x (M, d)`` and ``theta (N, D)``."""
        return unit_outputs(self.spec, as_particles(theta, self.dim), as_samples(x, self.d, "x"))

    def network(self, theta, x) -> np.ndarray:
        """``Φ_N(x_m) = (1/N) Σ_i σ_*(x_m, θ_i)``: ``(M, c)``."""
        return network_output(self.spec, as_particles(theta, self.dim), as_samples(x, self.d, "x"))

    def vjp(self, theta, x, u, w) -> np.ndarray:
        """``Σ_m w_m J_θ σ_*(x_m, θ_i)ᵀ u_m``: ``(N, D)``."""
        return vjp(self.spec, theta, x, u, w)

    def block(self, theta, name: str) -> np.ndarray:
        """The parameter block ``name`` of particles ``theta (N, D)``, shaped ``(N, *shape)``."""
        offset, shape = self.layout[name]
        theta = as_particles(theta, self.dim)
        return theta[:, offset : offset + int(np.prod(shape))].reshape(-1, *shape)

    def action_matrix(self, space_matrices, lie: bool = False) -> np.ndarray:
        """The ``(D, D)`` matrix ``M`` acting on θ, from one matrix per space ``(d, n_1, …, c)``.

        For a group element, ``vec(W_l) ↦ (ρ_l ⊗ ρ_{l−1}) vec(W_l)`` (row-major vec).
        With ``lie=True`` the matrices are Lie-algebra images ``A_l`` and ``M`` is the derived
        action ``W_l ↦ A_l W_l − W_l A_{l−1}``.
        """
        m = np.zeros((self.dim, self.dim))
        pairs = itertools.pairwise(space_matrices)
        for layer, (r_in, r_out) in zip(self.spec.layers, pairs, strict=True):
            sl = slice(layer.w_offset, layer.w_offset + layer.n_out * layer.n_in)
            if lie:
                m[sl, sl] = np.kron(r_out, np.eye(layer.n_in)) + np.kron(np.eye(layer.n_out), r_in)
            else:
                m[sl, sl] = np.kron(r_out, r_in)
            if layer.b_offset >= 0:
                sb = slice(layer.b_offset, layer.b_offset + layer.n_out)
                m[sb, sb] = r_out
        return m

    def describe(self) -> dict:
        """A JSON-able description: kind, ``d``, ``c`` and activation."""
        return {"kind": self.kind, "d": self.d, "c": self.c, "activation": self.activation}


def _check_dim(value, name):
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Perceptron(LayeredUnit):
    """``σ_*(x, θ) = a·σ(w·x + b)``, ``θ = (a ∈ R^c, w ∈ R^d, b ∈ R)`` (``b`` absent if
    ``bias=False``). The hidden space is ``R¹``."""

    kind = "perceptron"

    def __init__(self, d: int, c: int = 1, activation: str = "tanh", bias: bool = True):
        d, c = _check_dim(d, "d"), _check_dim(c, "c")
        self.bias = bool(bias)
        layers = [
            Layer(1, d, c, c + d if bias else -1, activated=True),
            Layer(c, 1, 0, -1, activated=False),
        ]
        layout = {"a": (0, (c,)), "w": (c, (d,))}
        if bias:
            layout["b"] = (c + d, ())
        super().__init__(d, c, activation, layers, layout)

    def describe(self):
        return {**super().describe(), "bias": self.bias}


class MatrixUnit(LayeredUnit):
    """``σ_*(x, θ) = σ(W x)`` elementwise, ``θ = W ∈ R^{c×d}`` row-major (the papers'
    experiment: sigmoid, ``d = c = 2``). The activation acts on the output space, so the output
    representation must commute with it."""

    kind = "matrix"

    def __init__(self, d: int, c: int, activation: str = "sigmoid"):
        d, c = _check_dim(d, "d"), _check_dim(c, "c")
        super().__init__(d, c, activation, [Layer(c, d, 0, -1, True)], {"W": (0, (c, d))})


class MLPUnit(LayeredUnit):
    """``σ_*(x, θ) = W_L σ(… σ(W_1 x + b_1) …)`` with hidden widths ``hidden = (n_1, …)``;
    layout ``W_1, b_1, …, W_{L−1}, b_{L−1}, W_L`` (biases only if ``bias``)."""

    kind = "mlp"

    def __init__(self, d: int, hidden, c: int = 1, activation: str = "tanh", bias: bool = True):
        d, c = _check_dim(d, "d"), _check_dim(c, "c")
        hidden = tuple(_check_dim(h, "hidden widths") for h in np.atleast_1d(hidden))
        self.hidden, self.bias = hidden, bool(bias)
        sizes = (d, *hidden, c)
        layers, layout, offset = [], {}, 0
        for idx, (n_in, n_out) in enumerate(itertools.pairwise(sizes), start=1):
            last = idx == len(sizes) - 1
            layout[f"W{idx}"] = (offset, (n_out, n_in))
            w_offset, offset = offset, offset + n_out * n_in
            b_offset = -1
            if bias and not last:
                layout[f"b{idx}"] = (offset, (n_out,))
                b_offset, offset = offset, offset + n_out
            layers.append(Layer(n_out, n_in, w_offset, b_offset, activated=not last))
        super().__init__(d, c, activation, layers, layout)

    def describe(self):
        return {**super().describe(), "hidden": list(self.hidden), "bias": self.bias}


UNITS = {cls.kind: cls for cls in (Perceptron, MatrixUnit, MLPUnit)}


def unit_from_description(desc: dict) -> LayeredUnit:
    """Inverse of :meth:`LayeredUnit.describe`."""
    desc = dict(desc)
    kind = desc.pop("kind", None)
    if kind not in UNITS:
        raise ValueError(f"unit kind must be one of {sorted(UNITS)}, got {kind!r}")
    return UNITS[kind](**desc)
