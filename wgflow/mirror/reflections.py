"""Mirror symmetries: reflections ``θ ↦ (I − 2OOᵀ)θ`` that leave a loss unchanged (Ziyin).

``O (D, k)`` has orthonormal columns; the reflection fixes the **constraint set** ``Oᵀθ = 0``,
which is then a stationary set of gradient flows of the loss (Ziyin, Thm. 1). Sources of such
reflections for a :class:`wgflow.Problem`:

- ``group``: every element ``g`` of order 2 of the problem's action (``M_g² = I``, ``M_g ≠ I``):
  ``M_g`` is a reflection with ``O`` an orthonormal basis of its −1 eigenspace. Acting on every
  particle at once it leaves ``R(μ)`` unchanged for symmetric data (``R((M_g)_#μ) = R(μ)``);
  its constraint set is the SI condition for ``g``. For ``C₂`` it is all of ``(E^G)^⊥``.
- ``sign``: a unit invariant under ``θ ↦ −θ`` on some block: the perceptron ``a·σ(w·x + b)``
  with an odd ``σ`` (``O = I_D``: the constraint is a dead unit, ``θ = 0`` — sparsity), and each
  hidden neuron of an MLP unit with an odd ``σ`` (its incoming row, bias and outgoing column).
  The rescaling symmetry ``(a, w) ↦ (λa, w/λ)`` of a homogeneous ``σ`` such as relu is
  continuous with ``λ > 0`` only: it contains no reflection. With an even ``σ`` (quadratic) the
  inner weights ``(w, b)`` of a perceptron, or the incoming row and bias of a hidden neuron,
  flip sign alone.
- ``neuron swap``: the exchange of two hidden neurons of an MLP unit (any ``σ``).
- ``unit swap`` (a finite network of ``N`` units only): the exchange ``θ_i ↔ θ_j``, with
  ``O = (e_i − e_j)/√2 ⊗ I_D``; its constraint set is ``θ_i = θ_j`` (identical units).

For a network of ``N`` units (``Θ ∈ R^{N·D}``) group mirrors act on every unit (``I_N ⊗ O``),
unit-level ones on one unit at a time (``e_i ⊗ O``). Every mirror is checked numerically
(:func:`verify`) before it is returned.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .._checks import numeric

#: ``max |OᵀO − I|`` tolerated for a mirror basis
ORTHONORMAL_TOL = 1e-8
#: relative change of the loss under a claimed reflection above which :func:`verify` refuses it
#: (the population quadrature is exactly symmetric for permutations and sign flips; other
#: finite groups see its rounding and its small asymmetry)
INVARIANCE_RTOL = 1e-6
#: units of the random networks on which a per-unit (MF) mirror is checked
CHECK_UNITS = 3


class MirrorError(ValueError):
    """A claimed mirror symmetry is malformed or is not a symmetry of the loss."""


def orthonormal_columns(O, dim: int, name: str = "O") -> np.ndarray:
    """``O`` as a finite ``(dim, k)`` float array with ``OᵀO = I_k``, or :class:`MirrorError`
    naming ``name`` and the fix."""
    arr = numeric(O, name, f"({dim}, k)")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != dim or arr.shape[1] == 0:
        raise MirrorError(f"{name} must have shape (D, k) = ({dim}, k) with k ≥ 1, got shape "
                          f"{np.shape(O)}; pass one column per reflected direction")
    if not np.all(np.isfinite(arr)):
        raise MirrorError(f"{name} contains NaN or inf; pass finite directions")
    defect = np.abs(arr.T @ arr - np.eye(arr.shape[1])).max()
    if defect > ORTHONORMAL_TOL:
        raise MirrorError(f"{name} must have orthonormal columns, but max |OᵀO − I| = "
                          f"{defect:.3g}; orthonormalize it first, e.g. {name} = "
                          f"np.linalg.qr({name})[0]")
    return arr


@dataclass(frozen=True)
class Mirror:
    """A reflection ``θ ↦ (I − 2OOᵀ)θ`` of ``R^D`` and where it comes from.

    Attributes
    ----------
    O : ndarray, shape (D, k)
        Orthonormal basis of the reflected directions; the constraint set is ``Oᵀθ = 0``.
    description : str
        What the symmetry is, in words.
    kind : str
        ``"group"``, ``"sign"``, ``"neuron swap"``, ``"unit swap"`` or ``"user"``.
    """

    O: np.ndarray
    description: str
    kind: str = "user"

    def __post_init__(self):
        arr = np.asarray(self.O, dtype=float)
        object.__setattr__(self, "O", orthonormal_columns(arr, arr.shape[0] if arr.ndim else 0))

    @property
    def dim(self) -> int:
        """``D``, the dimension of the parameters it reflects."""
        return self.O.shape[0]

    def reflect(self, theta) -> np.ndarray:
        """``(I − 2OOᵀ)θ`` for ``theta (..., D)``."""
        theta = np.asarray(theta, dtype=float)
        return theta - 2.0 * (theta @ self.O) @ self.O.T

    def lifted(self, n_units: int, unit: int | None = None) -> Mirror:
        """The mirror on ``N`` units: ``I_N ⊗ O`` (every unit), or ``e_unit ⊗ O``."""
        picks = np.eye(n_units) if unit is None else np.eye(n_units)[:, [unit]]
        where = "every unit" if unit is None else f"unit {unit}"
        return Mirror(np.kron(picks, self.O), f"{self.description} ({where})", self.kind)


def verify(loss, mirror: Mirror, trials: int = 4, seed: int = 0, scale: float = 1.0) -> float:
    """Check ``ℓ(θ) = ℓ((I − 2OOᵀ)θ)`` at ``trials`` random ``θ ~ N(0, scale² I_D)``.

    Parameters
    ----------
    loss : callable
        ``θ (D,) -> float``.
    mirror : Mirror
        The claimed symmetry.

    Returns
    -------
    float
        The largest relative change ``|ℓ(θ) − ℓ(Rθ)| / max(|ℓ(θ)|, |ℓ(Rθ)|, 1e-300)``.

    Raises
    ------
    MirrorError
        When a change exceeds :data:`INVARIANCE_RTOL`: the loss does not have this symmetry.
    """
    if not isinstance(mirror, Mirror):
        raise TypeError(f"mirror must be a wgflow.mirror.Mirror, got {type(mirror).__name__}")
    rng = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(trials):
        theta = scale * rng.standard_normal(mirror.dim)
        a, b = float(loss(theta)), float(loss(mirror.reflect(theta)))
        change = abs(a - b) / max(abs(a), abs(b), 1e-300)
        if not change <= INVARIANCE_RTOL:
            raise MirrorError(
                f"the loss is not invariant under the claimed mirror '{mirror.description}': "
                f"ℓ(θ) = {a:.6g} but ℓ((I − 2OOᵀ)θ) = {b:.6g} (relative change {change:.2g} > "
                f"{INVARIANCE_RTOL:g}); it is not a mirror symmetry of this loss (for a group "
                "element, check that the data law is symmetric)")
        worst = max(worst, change)
    return worst


def _group_mirrors(symmetry) -> list[Mirror]:
    """The −1 eigenspaces of the order-2 elements of the action (distinct ones only)."""
    if symmetry is None:
        return []
    action = symmetry.action
    if symmetry.group.is_finite:
        elements = np.arange(symmetry.group.order)
        names = [f"g = word {symmetry.group.words[e]}" for e in elements]
    else:  # the one element of order 2 of SO(2)
        elements, names = np.array([np.pi]), ["rotation by π"]
    eye = np.eye(action.dim)
    mirrors, seen = [], []
    for m, name in zip(action.matrices(elements), names, strict=True):
        if np.abs(m @ m - eye).max() > 1e-9 or np.abs(m - eye).max() < 1e-9:
            continue
        lam, vec = np.linalg.eigh(0.5 * (m + m.T))  # involutive and orthogonal: symmetric
        basis = vec[:, lam < 0]
        proj = basis @ basis.T
        if any(np.abs(proj - p).max() < 1e-9 for p in seen):
            continue
        seen.append(proj)
        mirrors.append(Mirror(basis, f"{symmetry.group.name}: M_g of {name} "
                                     f"(−1 eigenspace of dimension {basis.shape[1]})", "group"))
    return mirrors


def _is_even(value) -> bool:
    """``σ(−z) = σ(z)`` on a grid of ``z`` (the registry records oddness only)."""
    z = np.linspace(-3.0, 3.0, 25)
    return bool(np.array_equal(value(-z), value(z)))


def _block(entry) -> list[int]:
    """Indices of a layout entry ``(offset, shape)``."""
    offset, shape = entry
    return list(range(offset, offset + int(np.prod(shape))))


def _unit_mirrors(unit) -> list[Mirror]:
    """Sign flips (odd activations) and hidden-neuron swaps of one unit, on ``R^D``."""
    from solvers.activations import get_activation

    act, dim, mirrors = get_activation(unit.activation), unit.dim, []
    odd, even = act.odd, _is_even(act.value)
    if unit.kind == "perceptron" and odd:
        mirrors.append(Mirror(np.eye(dim), f"sign flip θ ↦ −θ of the unit (σ = "
                                           f"{unit.activation} is odd): constraint θ = 0", "sign"))
    if unit.kind == "perceptron" and even:
        inner = [i for name in ("w", "b") if name in unit.layout
                 for i in _block(unit.layout[name])]
        mirrors.append(Mirror(np.eye(dim)[:, inner], f"sign flip of the inner weights (w, b) "
                              f"(σ = {unit.activation} is even)", "sign"))
    if unit.kind != "mlp":
        return mirrors
    layers = unit.spec.layers
    for depth, (layer, nxt) in enumerate(itertools.pairwise(layers), start=1):
        def neuron(j, layer=layer, nxt=nxt):
            """Coordinates of hidden neuron j: its row, bias and outgoing column."""
            idx = [layer.w_offset + j * layer.n_in + i for i in range(layer.n_in)]
            idx += [layer.b_offset + j] if layer.b_offset >= 0 else []
            return idx + [nxt.w_offset + r * nxt.n_in + j for r in range(nxt.n_out)]
        for j in range(layer.n_out) if odd else ():
            mirrors.append(Mirror(np.eye(dim)[:, neuron(j)], f"sign flip of hidden neuron {j} "
                                  f"of layer {depth} (σ = {unit.activation} is odd)", "sign"))
        for j in range(layer.n_out) if even else ():
            incoming = neuron(j)[: layer.n_in + (layer.b_offset >= 0)]
            mirrors.append(Mirror(np.eye(dim)[:, incoming], f"sign flip of the incoming "
                                  f"weights of hidden neuron {j} of layer {depth} (σ = "
                                  f"{unit.activation} is even)", "sign"))
        for j, k in itertools.combinations(range(layer.n_out), 2):
            basis = (np.eye(dim)[:, neuron(j)] - np.eye(dim)[:, neuron(k)]) / np.sqrt(2.0)
            mirrors.append(Mirror(basis, f"swap of hidden neurons {j} and {k} of layer {depth}",
                                  "neuron swap"))
    return mirrors


def symmetries(problem, n_units: int | None = None, check: bool = True,
               seed: int = 0) -> list[Mirror]:
    """The mirror symmetries of ``problem``'s loss, each verified numerically.

    Parameters
    ----------
    problem : Problem
    n_units : int or None
        ``None``: mirrors of one unit's parameters ``R^D``, acting on every particle of the MF law
        (checked on random networks of :data:`CHECK_UNITS` units); an integer ``N``: mirrors of a
        finite network on ``R^{N·D}``, unit swaps included.
    check : bool
        Verify each mirror with :func:`verify` (needs data); ``False`` lists the candidates.

    Returns
    -------
    list of Mirror
    """
    from .network import NetworkLoss

    per_unit = _group_mirrors(problem.symmetry) + _unit_mirrors(problem.unit)
    if n_units is None:
        if check:
            loss = NetworkLoss(problem, CHECK_UNITS)
            for m in per_unit:
                group_wide = m.kind == "group"
                verify(loss.value, m.lifted(CHECK_UNITS, None if group_wide else 0), seed=seed)
        return per_unit
    loss = NetworkLoss(problem, n_units)
    n, dim = loss.n_units, problem.unit.dim
    found = [m.lifted(n) for m in per_unit if m.kind == "group"]
    found += [m.lifted(n, i) for m in per_unit if m.kind != "group" for i in range(n)]
    for i, j in itertools.combinations(range(n), 2):
        pick = (np.eye(n)[:, [i]] - np.eye(n)[:, [j]]) / np.sqrt(2.0)
        found.append(Mirror(np.kron(pick, np.eye(dim)), f"swap of units {i} and {j}: "
                            f"constraint θ_{i} = θ_{j}", "unit swap"))
    if check:
        for m in found:
            verify(loss.value, m, seed=seed)
    return found
