"""Mirror symmetries and the constraints they induce (Ziyin, *Symmetry Induces Structure and
Constraint of Learning*, ICML 2024).

A mirror symmetry of a loss is a reflection ``θ ↦ (I − 2OOᵀ)θ`` that leaves it unchanged; its
fixed set ``Oᵀθ = 0`` is stationary, and weight decay above a threshold (or enough SGD noise)
makes it attracting: rescaling → sparsity, rotation → low rank, permutation → identical units.

- :mod:`~wgflow.mirror.reflections`: :class:`Mirror`, :func:`symmetries` (detection),
  :func:`verify` (numerical check).
- :mod:`~wgflow.mirror.network`: :class:`NetworkLoss`, the loss of a finite network of units.
"""

from .network import NetworkLoss
from .reflections import Mirror, MirrorError, orthonormal_columns, symmetries, verify

__all__ = ["Mirror", "MirrorError", "NetworkLoss", "orthonormal_columns", "symmetries", "verify"]
