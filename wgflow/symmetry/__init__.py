"""A group acting jointly on data and on the parameters of a unit.

This package holds the symmetry side of the model: the groups and their representations
(:mod:`wgflow.symmetry.groups`), their joint action on data and parameters (:class:`Symmetry`,
here) and the training schemes through which the symmetry enters the velocity field
(:mod:`wgflow.symmetry.schemes`).

Given orthogonal representations ``ρ`` on inputs, ``ρ̂`` on outputs and ``ρ_l`` on hidden
layers, the action on parameters ``M_g`` is *derived*
(:meth:`wgflow.units.LayeredUnit.action_matrix`), and the unit is checked to be **jointly
equivariant**: ``σ_*(ρ_g x, M_g θ) = ρ̂_g σ_*(x, θ)``. ``E^G = {θ : M_g θ = θ ∀g}``, its
projector ``P_G = ∫ M_g dg``, a basis and ``dim E^G`` are derived from the generators by
:class:`groups.Representation` and cached there.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..units import LayeredUnit
from .groups import Group, Representation, group_from_description

#: Relative tolerance of the numerical joint-equivariance check.
EQUIVARIANCE_RTOL = 1e-8
#: Default number of Haar nodes for averages over a continuous group that are not polynomial
#: (feature averaging, full-orbit augmentation): equally spaced angles.
DEFAULT_HAAR_POINTS = 32


class Symmetry:
    """``G`` acting on inputs (``input``), outputs (``output``), hidden spaces (``hidden``) and,
    by derivation, on the parameters of ``unit``.

    Defaults: ``input`` = the group's defining representation; ``output`` = the defining one if
    its dimension is ``c``, else the trivial one if ``c = 1``; each hidden space trivial.
    ``haar_points``: nodes for non-polynomial Haar averages of a continuous group.

    Examples
    --------
    The paper's symmetry: ``σ(W x)`` with ``W ∈ R^{2×2}`` and the coordinate swap, ``M_g W =
    P W Pᵀ``, so ``E^G = {[[a, b], [b, a]]}``:

    >>> from wgflow import MatrixUnit, groups
    >>> symmetry = Symmetry(groups.swap(), MatrixUnit(2, 2, "sigmoid"))
    >>> symmetry.dim_EG
    2
    >>> symmetry.projector @ [1.0, 0.0, 0.0, 0.0]      # P_G of W = [[1, 0], [0, 0]]
    array([0.5, 0. , 0. , 0.5])
    """

    def __init__(self, group: Group, unit: LayeredUnit, input: Representation | None = None,
                 output: Representation | None = None, hidden=None,
                 haar_points: int = DEFAULT_HAAR_POINTS):
        if not isinstance(group, Group):
            raise ValueError("group must be a wgflow.symmetry.groups.Group, got "
                             f"{type(group).__name__}")
        self.group, self.unit = group, unit
        self.haar_points = int(haar_points)
        dims = unit.space_dims
        input = group.defining if input is None else input
        if output is None:
            output = group.defining if group.defining.dim == unit.c else None
            if output is None and unit.c == 1:
                output = group.trivial(1)
            if output is None:
                raise ValueError(
                    f"output: the group's defining representation has dimension "
                    f"{group.defining.dim} but the unit has c = {unit.c} outputs; pass an output "
                    "representation of dimension c (e.g. group.trivial(c))"
                )
        n_hidden = len(dims) - 2
        hidden = [group.trivial(n) for n in dims[1:-1]] if hidden is None else list(hidden)
        if len(hidden) != n_hidden:
            raise ValueError(f"hidden must give {n_hidden} representations (one per hidden "
                             f"layer of widths {dims[1:-1]}), got {len(hidden)}")
        self.spaces = [input, *hidden, output]
        names = ["input", *(f"hidden[{i}]" for i in range(n_hidden)), "output"]
        for name, rep, dim in zip(names, self.spaces, dims, strict=True):
            if rep.group is not group:
                raise ValueError(f"{name} is a representation of another group object")
            if rep.dim != dim:
                raise ValueError(f"{name} representation has dimension {rep.dim} but the unit "
                                 f"needs {dim} (unit spaces (d, hidden…, c) = {dims})")
        lie = not group.is_finite
        images = [unit.action_matrix([r.images[k] for r in self.spaces], lie=lie)
                  for k in range(len(input.images))]
        #: the representation g ↦ M_g on the parameter space R^D
        self.action = Representation(group, images)
        self.check_equivariance()
        if self.dim_EG == 0:
            warnings.warn("dim E^G = 0: the only strongly invariant law is δ_0", stacklevel=2)

    @property
    def input(self) -> Representation:
        """``ρ``, the representation on inputs."""
        return self.spaces[0]

    @property
    def output(self) -> Representation:
        """``ρ̂``, the representation on outputs."""
        return self.spaces[-1]

    @property
    def projector(self) -> np.ndarray:
        """``P_G (D, D)``, orthogonal projector onto ``E^G``."""
        return self.action.projector

    @property
    def basis(self) -> np.ndarray:
        """Orthonormal basis ``(D, dim E^G)`` of ``E^G``."""
        return self.action.fixed_basis

    @property
    def dim_EG(self) -> int:
        """``dim E^G``."""
        return self.action.fixed_dim

    def elements(self) -> tuple[np.ndarray, np.ndarray]:
        """Haar nodes and weights for group averages in the schemes (all elements if finite)."""
        return self.group.haar(None if self.group.is_finite else self.haar_points)

    def matrices(self, elements):
        """``(ρ_g, ρ̂_g, M_g)`` stacks for the given elements."""
        return (self.input.matrices(elements), self.output.matrices(elements),
                self.action.matrices(elements))

    def check_equivariance(self, seed: int = 0) -> None:
        """Raise unless ``σ_*(ρ_g x, M_g θ) = ρ̂_g σ_*(x, θ)`` on random ``x``, ``θ``, ``g``."""
        rng = np.random.default_rng(seed)
        unit = self.unit
        x = 2.0 * rng.standard_normal((7, unit.d))
        theta = rng.standard_normal((5, unit.dim))
        elements = self.group.sample(rng, 8) if not self.group.is_finite else self.elements()[0]
        rho, rho_out, m = self.matrices(elements)
        base = unit(x, theta)
        for k, g in enumerate(elements):
            moved = unit(x @ rho[k].T, theta @ m[k].T)
            err = np.abs(moved - base @ rho_out[k].T).max()
            if err > EQUIVARIANCE_RTOL * (1.0 + np.abs(base).max()):
                raise ValueError(
                    f"the unit is not jointly equivariant under this action: "
                    f"|σ_*(ρ_g x, M_g θ) − ρ̂_g σ_*(x, θ)| = {err:.2e} for element {g!r}. "
                    f"Representations on activated spaces (hidden layers, and the output of a "
                    f"matrix unit) must commute with the activation '{unit.activation}': "
                    "permutations always, signed permutations only for odd activations"
                )

    def describe(self) -> dict:
        """A JSON-able description: the group, the representations and the Haar nodes."""
        return {"group": self.group.describe(),
                "spaces": [r.describe() for r in self.spaces],
                "haar_points": self.haar_points}


def symmetry_from_description(desc: dict, unit: LayeredUnit) -> Symmetry:
    """Inverse of :meth:`Symmetry.describe`."""
    group = group_from_description(desc["group"])
    reps = [Representation(group, s["generator_images"]) for s in desc["spaces"]]
    return Symmetry(group, unit, reps[0], reps[-1], reps[1:-1], desc.get("haar_points",
                                                                         DEFAULT_HAAR_POINTS))
