"""The teacher–student experiment of Maass & Fontbona (NeurIPS 2024).

``X = Y = R²``, matrix unit ``sigmoid(W x)`` with ``W ∈ R^{2×2}``; ``G = C₂`` swapping the
coordinates, ``M_g W = P W Pᵀ`` so ``E^G = {[[a, b], [b, a]]}`` (``dim E^G = 2``, basis
``I/√2, P/√2``); inputs ``x ~ N(0, 16 I)``; labels from a 5- or 10-particle teacher (entries
scaled by 0.5); student entries ``N(0, 1/16)``, SI start, per-particle step ``ς/N`` with
``ς = 50``, ``τ = 1e-4``, ``β = 1e-6`` with noise on ``E^G``, batch 20, ``20 N`` steps (``T = 20``).
"""

from __future__ import annotations

import numpy as np

from . import laws
from .data import GaussianData, Teacher
from .problem import Problem
from .symmetry import Symmetry
from .symmetry.groups import swap
from .units import MatrixUnit

TEACHER_SCALE = 0.5
#: rows of W, row-major: (W11, W12, W21, W22)
ARBITRARY = np.array([(-1, 0, 0, 0.5), (0.5, 1, 0, 1), (-0.5, 0.3, 1, 0), (0, -1, -0.5, 1),
                      (0.7, -0.7, 0.5, 0.7)], dtype=float)
#: coordinates in the basis (I/√2, P/√2) of E^G
SI_COORDINATES = np.array([(1, 0), (0.5, 1), (-0.5, 0.3), (0, -1), (0.7, 0.7)], dtype=float)
TEACHERS = ("arbitrary", "WI", "SI")

#: the paper's training settings
SETTINGS = {"step_scale": 50.0, "tau": 1e-4, "beta": 1e-6, "batch_size": 20, "T": 20.0,
            "init_std": 0.25, "input_variance": 16.0}


def teacher_particles(kind: str) -> np.ndarray:
    """The teacher's particles ``(K, 4)`` (already scaled by 0.5)."""
    swap_w = np.array([3, 2, 1, 0])  # P W Pᵀ on row-major (W11, W12, W21, W22)
    if kind == "arbitrary":
        theta = ARBITRARY
    elif kind == "WI":
        theta = np.concatenate([ARBITRARY, ARBITRARY[:, swap_w]])
    elif kind == "SI":
        basis = np.array([[1, 0, 0, 1], [0, 1, 1, 0]]) / np.sqrt(2)
        theta = SI_COORDINATES @ basis
    else:
        raise ValueError(f"teacher must be one of {list(TEACHERS)}, got {kind!r}")
    return TEACHER_SCALE * theta


def problem(teacher: str = "arbitrary", tau: float = SETTINGS["tau"],
            beta: float = SETTINGS["beta"], quadrature_points: int | None = None) -> Problem:
    """The paper's problem with the given teacher (``quadrature_points``: Gauss–Hermite points
    per dimension of the population expectation, as :class:`wgflow.Problem`)."""
    unit = MatrixUnit(2, 2, "sigmoid")
    data = GaussianData(Teacher(unit, teacher_particles(teacher)), cov=SETTINGS["input_variance"])
    return Problem(unit, data, Symmetry(swap(), unit), tau=tau, beta=beta,
                   quadrature_points=quadrature_points)


def student_init(prob: Problem, n: int, seed=0) -> np.ndarray:
    """The shared SI start: entries ``N(0, 1/16)`` projected onto ``E^G``: ``(n, 4)``."""
    return laws.strongly_invariant(n, prob.symmetry, std=SETTINGS["init_std"], seed=seed)
