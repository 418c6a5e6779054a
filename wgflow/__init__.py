"""wgflow: the mean-field limit of shallow networks as a Wasserstein gradient flow, simulated as
an interacting-particle system, under group symmetries of the data.

The nouns: :mod:`units` (the units ``σ_*(x, θ)``), :mod:`symmetry` (``G`` acting on data and
parameters; ``E^G``, ``P_G``; the groups and representations in :mod:`symmetry.groups`, the
schemes vanilla / DA / FA / EA in :mod:`symmetry.schemes`), :mod:`data` (data law and
expectations), :mod:`laws` (initial particle laws), :class:`Problem`, :func:`simulate` (MF flow
and finite-N SGD), :mod:`diagnostics` (W₂, RMD, distances to SI/WI), :class:`Result`,
:mod:`paper` (the paper's experiment); studies at scale: :mod:`sweep` (grids × seeds on any
executor, with the paper's experiments in :mod:`sweep.studies` and their figures and tables in
:mod:`sweep.report`), imported on demand.
"""

import solvers  # noqa: F401  (first: it sets the threads' wait policies before numpy loads)

from . import diagnostics, laws, paper
from ._version import __version__
from .data import FixedSample, GaussianData, Minibatch, OnlineSample, Teacher, gauss_hermite
from .dynamics import simulate
from .files.h5md import load, save
from .problem import Problem
from .result import Result
from .strong_invariance import discover_subspace, si_gap
from .symmetry import Symmetry, groups
from .symmetry.groups import SO2, FiniteGroup
from .units import MatrixUnit, MLPUnit, Perceptron

__all__ = [
    "SO2",
    "FiniteGroup",
    "FixedSample",
    "GaussianData",
    "MLPUnit",
    "MatrixUnit",
    "Minibatch",
    "OnlineSample",
    "Perceptron",
    "Problem",
    "Result",
    "Symmetry",
    "Teacher",
    "__version__",
    "diagnostics",
    "discover_subspace",
    "gauss_hermite",
    "groups",
    "laws",
    "load",
    "paper",
    "save",
    "si_gap",
    "simulate",
]
