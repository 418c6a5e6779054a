"""Built-in studies: the sweeps that reproduce the paper's experiments, at three sizes.

- ``paper``: teachers arbitrary / WI / SI × schemes vanilla / DA / FA / EA × N, finite-N SGD in
  MF scaling with the paper's settings (ς = 50, τ = 1e-4, β = 1e-6 with noise on ``E^G``,
  batch 20), from an SI start shared by every scheme and teacher of a replicate.
- ``mf-vs-sgd``: the paper's problem (arbitrary teacher, vanilla, β = 0) run as finite-N SGD for
  a range of N, and as the MF reference: ``N_ref`` particles moved by the MF velocity field with
  the population expectation by Gauss–Hermite quadrature (32 points per dimension, its error
  estimated in each run's ``population`` parameters), Heun. A replicate's runs share
  ``init.seed``, so the first N reference particles start where the N SGD particles start; the
  frames of every run fall at the same MF times ``T·j/frames``.
- ``particles-vs-pde``: the paper's problem (arbitrary teacher, EA, the paper's β with noise
  on ``E^G``) from the SI start, as the grid PDE on ``E^G`` (:mod:`wgflow.pde`: the MF limit of
  EA from an SI law, for any data) and as the particle MF flow (Heun, the same population
  quadrature) for a range of N, frames at the same MF times; the report measures the exact
  ``W₂`` between the particles (in ``E^G`` coordinates) and the density (cell centres weighted
  by their masses) against N. Every replicate runs its own PDE reference (deterministic: the
  same density).

Sizes: ``smoke`` (the numpy backend, tiny: well under a minute with nothing compiled), ``small``
(minutes on two cores), ``full`` (the paper's size: N up to 5000, T = 20, 10 seeds; hours).
:func:`run_study` runs the sweep into ``DIR`` with the label ``{"study", "size"}`` in its manifest
(what ``wgflow report`` draws).
The ``paper`` and ``mf-vs-sgd`` studies also run on the problem of a config (``problem=``,
``wgflow study … --config FILE``): its ``problem.*`` keys replace the paper's.
"""

from __future__ import annotations

from .. import paper
from ..config import non_default
from . import Sweep, read_sweep, run_sweep

STUDIES = ("paper", "mf-vs-sgd", "particles-vs-pde")
SIZES = ("smoke", "small", "full")
#: the schemes of the paper's figures
PAPER_SCHEMES = ("vanilla", "DA", "FA", "EA")

#: paper study, by size: student sizes N, MF time T, frames, replicates, backend
_PAPER = {
    "smoke": dict(N=(5, 10, 20), T=2.0, frames=4, seeds=2, backend="numpy"),
    "small": dict(N=(5, 10, 50, 100, 500, 1000), T=10.0, frames=10, seeds=3, backend="numba"),
    "full": dict(N=(5, 10, 50, 100, 500, 1000, 5000), T=paper.SETTINGS["T"], frames=20,
                 seeds=10, backend="numba"),
}
#: mf-vs-sgd study, by size: SGD sizes N, reference size N_ref and MF time step, MF time T,
#: frames (T·N and T/dt multiples of it, so that the frames' times match), replicates, backend
_MF_VS_SGD = {
    "smoke": dict(N=(10, 20, 40), N_ref=200, dt=0.005, T=1.0, frames=5, seeds=2,
                  backend="numpy"),
    "small": dict(N=(10, 20, 50, 100, 200, 500, 1000), N_ref=2000, dt=0.002, T=2.0, frames=10,
                  seeds=3, backend="numba"),
    "full": dict(N=(10, 20, 50, 100, 200, 500, 1000, 2000, 5000), N_ref=20000, dt=0.002, T=5.0,
                 frames=10, seeds=10, backend="numba"),
}


#: particles-vs-pde study, by size: particle sizes N and MF time step, the PDE's cells per axis,
#: Gauss–Hermite points per input dimension, MF time T, frames (T/dt a multiple of it),
#: replicates, backend
_PARTICLES_VS_PDE = {
    "smoke": dict(N=(16, 32, 64, 128), dt=0.02, cells=32, quadrature_points=0, T=0.4, frames=2,
                  seeds=2, backend="numba"),
    "small": dict(N=(16, 32, 64, 128, 256, 512, 1024), dt=0.01, cells=64, quadrature_points=0,
                  T=1.0, frames=4, seeds=3, backend="numba"),
    "full": dict(N=(16, 32, 64, 128, 256, 512, 1024, 2048), dt=0.005, cells=128,
                 quadrature_points=0, T=2.0, frames=4, seeds=5, backend="numba"),
}


def _paper_study(size: dict) -> tuple[dict, dict]:
    base = {"run.T": size["T"], "run.frames": size["frames"], "run.backend": size["backend"],
            "init.law": "SI", "run.noise": "EG"}
    grid = {"problem.teacher": list(paper.TEACHERS), "run.scheme": list(PAPER_SCHEMES),
            "init.N": list(size["N"])}
    return base, grid


def _mf_vs_sgd_study(size: dict) -> tuple[dict, list]:
    base = {"problem.teacher": "arbitrary", "problem.beta": 0.0, "run.scheme": "vanilla",
            "run.T": size["T"], "run.frames": size["frames"], "run.backend": size["backend"],
            "init.law": "SI"}
    grid = [{"run.dynamics": ["sgd"], "init.N": list(size["N"])},
            {"run.dynamics": ["mf"], "init.N": [size["N_ref"]], "run.dt": [size["dt"]],
             "run.integrator": ["heun"]}]
    return base, grid


def _particles_vs_pde_study(size: dict) -> tuple[dict, list]:
    base = {"problem.teacher": "arbitrary", "problem.quadrature_points": size["quadrature_points"],
            "run.scheme": "EA", "run.dynamics": "mf", "run.noise": "EG", "init.law": "SI",
            "run.T": size["T"], "run.frames": size["frames"], "run.backend": size["backend"]}
    grid = [{"run.solver": ["pde"], "pde.cells": [size["cells"]]},
            {"run.solver": ["particles"], "init.N": list(size["N"]), "run.dt": [size["dt"]],
             "run.integrator": ["heun"]}]
    return base, grid


#: the studies that run on another problem than the paper's (``problem``, ``--config``): the
#: grid PDE of particles-vs-pde is the MF limit on E^G of the paper's problem only
CONFIGURABLE = ("paper", "mf-vs-sgd")


def _on_problem(study: str, base: dict, grid, problem: dict) -> tuple[dict, object]:
    """The study's ``base`` and ``grid`` with the problem keys (``problem.*``) of the checked
    config ``problem`` in place of the paper's; the paper study's teacher axis goes (the
    config's data has its own teacher)."""
    if study not in CONFIGURABLE:
        raise ValueError(f"study {study!r} runs on the paper's problem only (its PDE reference "
                         f"is that problem's); a config's problem runs in {list(CONFIGURABLE)}")
    keys = {k: v for k, v in non_default(problem).items() if k.startswith("problem.")
            or k == "files.sha256"}
    base = {k: v for k, v in base.items() if k != "problem.teacher"} | keys
    if study == "paper":
        grid = {k: v for k, v in grid.items() if k != "problem.teacher"} | (
            {"problem.teacher": grid["problem.teacher"]}
            if keys.get("problem.preset", "paper") == "paper" else {})
    return base, grid


def definition(study: str, size: str, problem: dict | None = None) -> tuple[dict, object, int]:
    """``(base config, grid, replicates)`` of the built-in ``study`` at ``size``, on the
    problem of the checked config ``problem`` (its ``problem.*`` keys) when given."""
    if study not in STUDIES:
        raise ValueError(f"study must be one of {list(STUDIES)}, got {study!r}")
    if size not in SIZES:
        raise ValueError(f"size (--size) must be one of {list(SIZES)}, got {size!r}")
    table, build = {"paper": (_PAPER, _paper_study),
                    "mf-vs-sgd": (_MF_VS_SGD, _mf_vs_sgd_study),
                    "particles-vs-pde": (_PARTICLES_VS_PDE, _particles_vs_pde_study)}[study]
    base, grid = build(table[size])
    if problem is not None:
        base, grid = _on_problem(study, base, grid, problem)
    return base, grid, table[size]["seeds"]


def run_study(study: str, size: str, out_dir, problem: dict | None = None,
              **sweep_options) -> Sweep:
    """Run the built-in ``study`` at ``size`` into ``out_dir``, on the problem of the checked
    config ``problem`` when given (options of :func:`wgflow.sweep.run_sweep`: ``executor``,
    ``progress``, ``threads_per_worker``, ``cores``)."""
    base, grid, seeds = definition(study, size, problem)
    return run_sweep(base, grid, out_dir, seeds=seeds, label={"study": study, "size": size},
                     **sweep_options)


def read_study(directory) -> dict | None:
    """``{"study", "size"}`` of the study in ``directory``, ``None`` for a plain sweep."""
    return read_sweep(directory).description.get("label")
