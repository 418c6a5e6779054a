"""The built-in ``mirror`` study: threshold sweeps and the corollaries' demos, written to a
directory as ``mirror.json`` (what ``wgflow report`` draws, :mod:`wgflow.mirror.figures`).

Contents, by size (``smoke``: seconds, ``small`` and ``full``: finer grids, longer runs):

- ``sweeps``: weight decay across ``γ₀`` on the scalar rescaling model (gradient descent);
  batch size and step size below ``γ₀`` on the same model with SGD (stochastic collapse);
  weight decay across ``τ₀`` on the MF flow of the quadratic unit under the swap
  (:func:`~wgflow.mirror.models.quadratic_swap_problem`), from its SI atom.
- ``atoms``: distinct atoms over time of ``N`` particles of a tanh student of a two-neuron
  teacher trained (population gradient) with and without weight decay.
- ``low_rank``: singular values over time of ``W = UVᵀ`` and of the residual ``W = U(I + Vᵀ)``
  fitted with weight decay.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import laws
from ..dynamics import simulate
from ..files.records import read_record, same_study, write_record
from ..sweep import MANIFEST
from .dcs import count_atoms, factorised_regression
from .models import ScalarRescaling, quadratic_swap_problem, two_neuron_problem
from .transition import (
    mf_decay_sweep,
    rescaling_decay_sweep,
    rescaling_noise_sweep,
)

FILE = "mirror.json"
#: by size: weight decays γ of the rescaling sweep; batch sizes and step sizes of the SGD
#: sweeps (γ = 0.25, and step 1 / batch 1 for the other knob), SGD steps and copies; weight
#: decays τ of the MF sweep; particles, MF time and weight decay of the atom demo
SIZES = {
    "smoke": dict(gammas=(0.3, 0.4, 0.45, 0.55, 0.6, 0.7), batches=(1, 2, 4),
                  lrs=(0.4, 0.6, 1.0, 1.2), sgd_steps=1500, copies=16,
                  taus=(1.1, 1.2, 1.3, 1.35), atoms_n=8, atoms_T=200.0, atoms_tau=0.03),
    "small": dict(gammas=tuple(np.round(np.linspace(0.3, 0.7, 10), 4)), batches=(1, 2, 3, 4, 8),
                  lrs=(0.2, 0.4, 0.6, 1.0, 1.2, 1.4), sgd_steps=3000, copies=32,
                  taus=(0.6, 0.9, 1.1, 1.2, 1.3, 1.35, 1.5), atoms_n=16, atoms_T=300.0,
                  atoms_tau=0.03),
    "full": dict(gammas=tuple(np.round(np.linspace(0.3, 0.7, 20), 4)),
                 batches=(1, 2, 3, 4, 6, 8, 16), lrs=(0.2, 0.4, 0.6, 0.9, 1.0, 1.2, 1.4),
                 sgd_steps=6000, copies=64,
                 taus=(0.6, 0.9, 1.0, 1.1, 1.15, 1.2, 1.3, 1.32, 1.35, 1.5),
                 atoms_n=32, atoms_T=600.0, atoms_tau=0.03),
}
#: distance below which two particles are one atom in the atom count
ATOM_TOL = 1e-2
#: MF time step of the atom demo
ATOMS_DT = 0.1


def atoms_demo(size: str) -> list[dict]:
    """Distinct atoms (:func:`count_atoms` at :data:`ATOM_TOL`) at 21 times of the particle
    flow (population gradient) of :func:`~wgflow.mirror.models.two_neuron_problem` from ``N``
    Gaussian particles, at ``τ = 0`` and with weight decay; one row per ``τ``:
    ``{"tau", "times", "atoms", "risk"}``. (With an odd ``tanh``, ``θ`` and ``−θ`` are the same
    unit: the atoms come in such pairs.)"""
    size = SIZES[size]
    init = laws.gaussian(size["atoms_n"], 3, std=0.5, seed=0)
    rows = []
    for tau in (0.0, size["atoms_tau"]):
        run = simulate(two_neuron_problem(tau), init, T=size["atoms_T"], dt=ATOMS_DT,
                       backend="numpy", observables=("risk",),
                       record_every=round(size["atoms_T"] / ATOMS_DT / 20))
        rows.append({"tau": tau, "times": run.times.tolist(),
                     "atoms": [count_atoms(th, ATOM_TOL) for th in run.particles],
                     "risk": run.observable("risk").tolist()})
    return rows


def low_rank_demo() -> list[dict]:
    """Singular values over the steps of :func:`factorised_regression` of ``W* = diag(3, 2, 1,
    0.5, 0.2)`` at weight decay 0.3, for ``UVᵀ`` and for the residual model; one row each."""
    target = np.diag([3.0, 2.0, 1.0, 0.5, 0.2])
    rows = []
    for residual in (False, True):
        fit = factorised_regression(target, 0.3, residual=residual)
        rows.append({"model": "U(I + Vᵀ)" if residual else "UVᵀ", "weight_decay": 0.3,
                     "steps": fit.steps.tolist(),
                     "singular_values": fit.singular_values.tolist(), "rank": fit.rank,
                     "target_singular_values": np.diag(target).tolist()})
    return rows


def run_mirror_study(size: str, out_dir) -> Path:
    """Run the study at ``size`` (``smoke``, ``small`` or ``full``) into ``out_dir``; return the
    path of ``mirror.json``. A directory that already holds this study at ``size`` is left as
    it is (the study is deterministic); one holding another study or size is refused."""
    if size not in SIZES:
        raise ValueError(f"size (--size) must be one of {list(SIZES)}, got {size!r}")
    out = Path(out_dir)
    if (out / MANIFEST).exists():
        raise ValueError(f"--out {out} holds a sweep ({MANIFEST}); give a new directory")
    cfg = SIZES[size]
    previous = read_mirror_study(out)
    if previous is not None:
        if not same_study(previous, {"size": size, "settings": cfg}, ("size", "settings")):
            raise ValueError(f"--out {out} holds the mirror study at size "
                             f"{previous.get('size')!r} with other settings than this "
                             f"version's at size {size!r}; give a new directory")
        return out / FILE
    model = ScalarRescaling(correlation=1.0)
    sweeps = [
        rescaling_decay_sweep(model, cfg["gammas"]),
        rescaling_noise_sweep(model, "batch size", cfg["batches"], lr=1.0, gamma=0.25,
                              steps=cfg["sgd_steps"], copies=cfg["copies"]),
        rescaling_noise_sweep(model, "step size", cfg["lrs"], batch=1, gamma=0.25,
                              steps=cfg["sgd_steps"], copies=cfg["copies"]),
        mf_decay_sweep(quadratic_swap_problem(), cfg["taus"], np.tile([0.8, 0.8, 0.8], (4, 1))),
    ]
    record = {"study": "mirror", "size": size, "settings": cfg,
              "sweeps": [s.as_record() for s in sweeps],
              "atoms": atoms_demo(size), "low_rank": low_rank_demo()}
    out.mkdir(parents=True, exist_ok=True)
    return write_record(out / FILE, record)


def read_mirror_study(directory) -> dict | None:
    """The record written by :func:`run_mirror_study` in ``directory``, ``None`` if absent."""
    return read_record(Path(directory) / FILE, "mirror study record",
                       lambda record: record.get("study") == "mirror")
