"""The built-in studies of strong invariance, and the subspace search of a run config.

- ``discover``: :func:`discover_subspace` from ``E_0 = {0}`` on three problems, several seeds:
  ``paper-SI`` (the paper's problem with its SI teacher: ``E^G`` of the swap, dim 2),
  ``cyclic`` (:func:`cyclic_problem`: ``C₃`` shifting a perceptron's inputs, dim ``E^G`` = 2 of
  ``D = 4``) and ``no-symmetry`` (the paper's unit and inputs with the arbitrary teacher, no
  group: the search should find nothing smaller than ``R⁴``).
- ``si-gap``: :func:`si_gap` on the ``counterexample`` (positive gap) and on ``paper-SI``
  (zero gap), each at two regularization scales and extrapolated to vanishing regularization.

Both run in this process, one search or estimate after the other, into ``DIR``:
``DIR/study.json`` (the study, its size and settings) and one HDF5 file per search or
estimate (:mod:`.files`), which ``wgflow report DIR`` draws (:mod:`.figures`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import laws, paper
from ..configs import problems
from ..data import GaussianData, Teacher
from ..files.records import read_record, same_study, write_record
from ..problem import Problem
from ..sweep.studies import SIZES
from ..symmetry import Symmetry
from ..symmetry.groups import cyclic
from ..units import Perceptron
from . import files
from .discovery import discover_subspace, free_problem
from .gap import counterexample, si_gap

STUDIES = ("discover", "si-gap")
STUDY_FILE = "study.json"

#: discover study, by size: particles, horizon (MF time), seeds, backend
_DISCOVER = {
    "smoke": dict(N=40, horizon=4.0, seeds=1, backend="numpy"),
    "small": dict(N=100, horizon=20.0, seeds=5, backend="numba"),
    "full": dict(N=400, horizon=20.0, seeds=10, backend="numba"),
}
#: si-gap study, by size: particles, MF time, step and step scale ς, replicates, Gauss–Hermite
#: points per input dimension (None: the default rule), backend, and the regularization scales
#: (``τ, β`` multiplied by each; the gap is extrapolated linearly to 0). ``small`` and ``full``
#: run to ς·T = 6000: on the SI teacher the risks at the smaller scale, ½, were still falling
#: at ς·T = 2000 and have reached their floor (about 7e-7) by 6000
_SI_GAP = {
    "smoke": dict(N=20, T=4.0, dt=0.05, step_scale=5.0, replicates=2, quadrature_points=8,
                  backend="numpy", regularization_scales=(1.0, 0.5)),
    "small": dict(N=100, T=300.0, dt=0.05, step_scale=20.0, replicates=5,
                  quadrature_points=None, backend="numba", regularization_scales=(1.0, 0.5)),
    "full": dict(N=400, T=300.0, dt=0.05, step_scale=20.0, replicates=10,
                 quadrature_points=None, backend="numba", regularization_scales=(1.0, 0.5)),
}


def cyclic_problem(tau: float = 1e-4, beta: float = 1e-6) -> Problem:
    """``a·sigmoid(w·x)`` (no bias) on ``x ~ N(0, I₃)`` under ``C₃`` shifting the inputs, with
    the teacher made of the orbit of ``(a, w) = (2, 1.5, −1, 0.5)``: symmetric data whose only
    symmetry is ``C₃``; ``E^G = {w₁ = w₂ = w₃}`` (dim 2 with ``a``)."""
    unit = Perceptron(3, 1, "sigmoid", bias=False)
    sym = Symmetry(cyclic(3), unit)
    teacher = laws.orbit_closed(np.array([[2.0, 1.5, -1.0, 0.5]]), sym)
    return Problem(unit, GaussianData(Teacher(unit, teacher)), sym, tau=tau, beta=beta)


def discover_problems() -> dict:
    """``name → (problem, options of the search)`` of the ``discover`` study."""
    sgd = {"step_scale": paper.SETTINGS["step_scale"],
           "batch_size": paper.SETTINGS["batch_size"]}
    return {"paper-SI": (paper.problem("SI"), sgd),
            "cyclic": (cyclic_problem(), {**sgd, "step_scale": 5.0}),
            "no-symmetry": (free_problem(paper.problem("arbitrary")), sgd)}


def gap_problems(quadrature_points=None) -> dict:
    """``name → problem`` of the ``si-gap`` study."""
    return {"counterexample": counterexample(quadrature_points=quadrature_points),
            "paper-SI": paper.problem("SI", quadrature_points=quadrature_points)}


def definition(study: str, size: str) -> dict:
    """The settings of the built-in ``study`` at ``size``."""
    if study not in STUDIES:
        raise ValueError(f"study must be one of {list(STUDIES)}, got {study!r}")
    if size not in SIZES:
        raise ValueError(f"size (--size) must be one of {list(SIZES)}, got {size!r}")
    return dict((_DISCOVER if study == "discover" else _SI_GAP)[size])


def run_study(study: str, size: str, out_dir, *, progress: bool = True) -> list[Path]:
    """Run the built-in ``study`` at ``size`` into ``out_dir``; return the files written.
    ``progress``: one line per search or estimate, with its outcome."""
    settings = definition(study, size)
    out = Path(out_dir)
    previous = read_study(out)
    record = {"study": study, "size": size, "settings": settings}
    if previous is not None and not same_study(previous, record, ("study", "size", "settings")):
        raise ValueError(f"--out {out} holds the study {previous.get('study')!r} at size "
                         f"{previous.get('size')!r} with other settings than this version's "
                         f"{study!r} at {size!r}; give a new directory")
    out.mkdir(parents=True, exist_ok=True)
    if previous is None:  # first, so that a stopped study's files are known as this study's
        write_record(out / STUDY_FILE, {**record, "files": []})
    written = []

    def done(path, result, tic):
        written.append(files.save(result, path, overwrite=True))
        if progress:
            print(f"{path.name} ({time.perf_counter() - tic:.1f} s)\n{result.summary()}",
                  flush=True)

    def missing(path) -> bool:
        """Run what has no result yet (a study stopped midway continues); never replace a
        file this study did not write."""
        if files.kind_of(path) is not None:
            written.append(path)
            return False
        files.check_output(path)
        return True

    if study == "discover":
        for name, (problem, options) in discover_problems().items():
            for seed in range(settings["seeds"]):
                if not missing(out / f"{name}-seed{seed}.h5"):
                    continue
                tic = time.perf_counter()
                result = discover_subspace(problem, settings["N"], seed=seed,
                                           horizon=settings["horizon"],
                                           backend=settings["backend"], **options)
                done(out / f"{name}-seed{seed}.h5", result, tic)
    else:
        for name, problem in gap_problems(settings["quadrature_points"]).items():
            if not missing(out / f"{name}.h5"):
                continue
            tic = time.perf_counter()
            result = si_gap(problem, settings["N"], replicates=settings["replicates"],
                            T=settings["T"], dt=settings["dt"], step_scale=settings["step_scale"],
                            backend=settings["backend"],
                            regularization_scales=settings["regularization_scales"])
            done(out / f"{name}.h5", result, tic)
    write_record(out / STUDY_FILE, {**record, "files": [p.name for p in written]})
    return [*written, out / STUDY_FILE]


def read_study(directory) -> dict | None:
    """``{"study", "size", "settings", "files"}`` of a strong-invariance study in
    ``directory``, ``None`` when there is none."""
    return read_record(Path(directory) / STUDY_FILE, "strong-invariance study record",
                       lambda record: record.get("study") in STUDIES)


def discover_from_config(config: dict, *, replicates: int = 4, level: float = 0.99):
    """The subspace search of a checked run config (:mod:`wgflow.config`): the config's problem
    (any preset or ``[problem]`` tables; its group, if any, only to report angles), ``init.N``
    particles of law ``init.std``, ``run.T`` as the horizon,
    ``run.seed``, and the SGD or MF options ``run.dynamics``, ``run.dt``, ``run.step_scale``,
    ``run.batch_size``, ``run.integrator``, ``run.backend``, ``run.dtype``,
    ``run.activation_precision``. The search trains
    vanilla with the noise on ``E_j``: ``run.scheme``, ``run.noise`` and ``init.law`` do not
    enter."""
    problem = problems.problem_of(config)
    options = {k: config[f"run.{k}"] for k in ("step_scale", "batch_size", "integrator",
                                               "backend", "dtype", "activation_precision")}
    return discover_subspace(problem, config["init.N"], seed=config["run.seed"],
                             dynamics=config["run.dynamics"], horizon=config["run.T"],
                             init_std=config["init.std"], dt=config["run.dt"] or None,
                             replicates=replicates, level=level, **options)
