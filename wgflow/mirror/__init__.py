"""Mirror symmetries and the constraints they induce (Ziyin, *Symmetry Induces Structure and
Constraint of Learning*, ICML 2024).

A mirror symmetry of a loss is a reflection ``θ ↦ (I − 2OOᵀ)θ`` that leaves it unchanged; its
fixed set ``Oᵀθ = 0`` is stationary, and weight decay above a threshold (or enough SGD noise)
makes it attracting: rescaling → sparsity, rotation → low rank, permutation → identical units.

- :mod:`~wgflow.mirror.reflections`: :class:`Mirror`, :func:`symmetries` (detection),
  :func:`verify` (numerical check).
- :mod:`~wgflow.mirror.network`: :class:`NetworkLoss`, the loss of a finite network of units.
- :mod:`~wgflow.mirror.thresholds`: :func:`mirror_threshold` (Ziyin's ``γ₀``),
  :func:`transverse_spectrum` (the MF flow across ``E^G``, ``τ₀``).
- :mod:`~wgflow.mirror.models`: problems with closed-form thresholds.
- :mod:`~wgflow.mirror.transition`: sweeps across the predicted thresholds.
- :mod:`~wgflow.mirror.dcs`: :func:`lasso_by_dcs`, :func:`factorised_regression`,
  :func:`count_atoms`.
- :mod:`~wgflow.mirror.study`: the ``wgflow study mirror`` record; :mod:`~wgflow.mirror.figures`
  draws it.
"""

from .dcs import count_atoms, factorised_regression, lasso_by_dcs
from .network import NetworkLoss
from .reflections import Mirror, MirrorError, orthonormal_columns, symmetries, verify
from .thresholds import mirror_threshold, transverse_spectrum

__all__ = ["Mirror", "MirrorError", "NetworkLoss", "count_atoms", "factorised_regression",
           "lasso_by_dcs", "mirror_threshold", "orthonormal_columns", "symmetries",
           "transverse_spectrum", "verify"]
