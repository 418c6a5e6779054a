"""HDF5 files of a subspace search (:class:`Discovery`) and of an SI gap estimate
(:class:`SIGap`): the result objects written whole and read back equal.

Layout: the root's attributes ``kind`` (``"discovery"`` or ``"si-gap"``), ``schema`` and
``settings`` (JSON); a discovery holds ``basis``, ``eg_basis`` and ``principal_angles`` (absent
when undefined) and one group ``steps/<j>`` per step (``basis``, ``added``, the scalars as
attributes, ``run`` the first replicate); a gap holds ``scales (S,)``, ``si_risks (S, K)``,
``wi_risks (S, K)``, ``eg_basis``, the level as an attribute and the runs ``si_run`` and
``wi_run``, and for readers outside wgflow the gaps per scale ``gaps (S,)`` with ``intervals
(S, 2)`` and the extrapolated gap and interval as attributes (derived from the risks: reading
recomputes them). A run group holds ``times``, ``steps``, ``particles (F, N, D)``, ``teacher``
and ``observables/<name>``. Schema 1 gap files (one scale, risks ``(K,)``) read as scale 1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from ..result import Result
from .discovery import Discovery, DiscoveryStep
from .gap import SIGap

SCHEMA = 2
KINDS = ("discovery", "si-gap")


def _write_run(group, run: Result) -> None:
    for name in ("times", "steps", "particles"):
        group[name] = getattr(run, name)
    if run.teacher is not None:
        group["teacher"] = run.teacher
    for name, values in run.observables.items():
        group[f"observables/{name}"] = values


def _read_run(group) -> Result:
    observables = {k: v[()] for k, v in group["observables"].items()} \
        if "observables" in group else {}
    return Result(times=group["times"][()], steps=group["steps"][()],
                  particles=group["particles"][()], observables=observables,
                  teacher=group["teacher"][()] if "teacher" in group else None)


def _optional(group, name: str, value) -> None:
    if value is not None:
        group[name] = value


def kind_of(path) -> str | None:
    """``"discovery"`` or ``"si-gap"`` for a file written by :func:`save`, else ``None``."""
    try:
        with h5py.File(path, "r") as f:
            kind = f.attrs.get("kind")
    except OSError:
        return None
    return kind if kind in KINDS else None


def check_output(path, overwrite: bool = False) -> None:
    """Refuse an output ``path`` that :func:`save` must not replace: anything but a regular
    file, a file it did not write, and one it did unless ``overwrite``."""
    path = Path(path)
    if not (path.exists() or path.is_symlink()):
        if not path.parent.is_dir():
            raise ValueError(f"the directory of --out {path} does not exist; create it or "
                             "choose another path")
        return
    kind = kind_of(path) if path.is_file() else None
    if kind is None:
        raise ValueError(f"--out {path} exists and is not a subspace search or SI gap file; "
                         "it is never replaced: choose another path")
    if not overwrite:
        raise ValueError(f"--out {path} already holds a {kind} result; pass --overwrite to "
                         "replace it, or choose another path")


def save(result, path, overwrite: bool = False) -> Path:
    """Write a :class:`Discovery` or an :class:`SIGap` to the HDF5 file ``path`` (replacing a
    previous result only with ``overwrite``, see :func:`check_output`), atomically: a reader
    never sees half a file."""
    path = Path(path)
    if not isinstance(result, (Discovery, SIGap)):
        raise ValueError(f"result must be a Discovery or an SIGap, got {type(result).__name__}")
    check_output(path, overwrite)
    partial = path.with_name(f".{path.name}.partial")
    with h5py.File(partial, "w") as f:
        f.attrs["schema"] = SCHEMA
        f.attrs["settings"] = json.dumps(result.settings)
        if isinstance(result, Discovery):
            f.attrs["kind"] = "discovery"
            f["basis"] = result.basis
            _optional(f, "eg_basis", result.eg_basis)
            _optional(f, "principal_angles", result.principal_angles)
            for j, step in enumerate(result.steps):
                g = f.create_group(f"steps/{j}")
                g["basis"], g["added"] = step.basis, step.added
                for name in ("escape", "noise_level", "threshold", "escaped"):
                    g.attrs[name] = getattr(step, name)
                _write_run(g.create_group("run"), step.run)
        else:
            f.attrs["kind"] = "si-gap"
            f["scales"] = result.scales
            f["si_risks"], f["wi_risks"] = result.si_risks, result.wi_risks
            f["gaps"], f["intervals"] = result.gaps, result.intervals
            f.attrs["gap"], f.attrs["interval"] = result.gap, result.interval
            f.attrs["level"] = result.level
            f["eg_basis"] = result.eg_basis
            _write_run(f.create_group("si_run"), result.si_run)
            _write_run(f.create_group("wi_run"), result.wi_run)
    os.replace(partial, path)
    return path


def load(path):
    """The :class:`Discovery` or :class:`SIGap` written by :func:`save` at ``path``."""
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file ({err})") from None
    with f:
        kind = f.attrs.get("kind")
        if kind not in KINDS:
            raise ValueError(f"{path} is not a subspace search or an SI gap file (kind "
                             f"{kind!r}); write one with wgflow discover or wgflow study")
        settings = json.loads(f.attrs["settings"])
        if kind == "si-gap":
            scales = f["scales"][()] if "scales" in f else np.ones(1)
            return SIGap(scales, np.atleast_2d(f["si_risks"][()]),
                         np.atleast_2d(f["wi_risks"][()]), float(f.attrs["level"]),
                         _read_run(f["si_run"]),
                         _read_run(f["wi_run"]), f["eg_basis"][()], settings)
        steps = []
        for j in range(len(f.get("steps", {}))):
            g = f[f"steps/{j}"]
            steps.append(DiscoveryStep(g["basis"][()], float(g.attrs["escape"]),
                                       float(g.attrs["noise_level"]),
                                       float(g.attrs["threshold"]), bool(g.attrs["escaped"]),
                                       g["added"][()], _read_run(g["run"])))
        optional = {n: f[n][()] if n in f else None for n in ("eg_basis", "principal_angles")}
        return Discovery(f["basis"][()], tuple(steps), optional["principal_angles"],
                         optional["eg_basis"], settings)
