"""Trajectories on disk: one HDF5 file per run in the H5MD 1.1 layout, written as frames come.

=====================================================  =========================================
path                                                   content
=====================================================  =========================================
``/h5md``                                              ``version = [1, 1]``; ``creator``,
                                                       ``author``, ``modules/wgflow`` (schema)
``/particles/student/position/{step,time,value}``      ``value (frames, N, D)``
``/particles/student/box``                             ``dimension = D``, ``boundary = none``
``/particles/teacher/position/value``                  ``(K, D)`` (when there is a teacher)
``/observables/<name>/{step,time,value}``              ``risk``, ``distance_to_EG``, …;
                                                       attribute ``method`` (how it is computed)
``/parameters``                                        ``config`` (JSON), ``run_config`` (JSON),
                                                       ``seeds``, ``versions``, group
                                                       ``generators``, ``actions``, ``EG_basis``;
                                                       attributes ``status``, ``message``
=====================================================  =========================================

Frames are appended to chunked, resizable datasets (chunks of 4 frames × up to 2¹⁶ numbers, for
both snapshot and per-particle reads) and the file is flushed after every frame, so a killed run
leaves a file that plain h5py opens, holding every complete frame with ``step``, ``time`` and
``value`` of equal length. Checkpoints (state and random-generator states) live beside the file
(``<file>.ckpt.npz``), written to a temporary file and renamed, so a checkpoint is always whole.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import h5py
import numpy as np

from ._version import __version__
from .dynamics import FlowCursor, Frame
from .result import Result

#: version of the wgflow layout inside the H5MD file (``/h5md/modules/wgflow``)
SCHEMA_VERSION = (1, 0)
_STR = h5py.string_dtype()
_RNG_FIELDS = ("data_rng", "move_rng")


def versions() -> dict:
    """The versions of wgflow and the libraries its results depend on."""
    import numba
    import scipy

    return {"wgflow": __version__, "numpy": np.__version__, "numba": numba.__version__,
            "scipy": scipy.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version}


#: frames per chunk of a particle dataset, and its target size in numbers: a snapshot read
#: touches ``N / particles-per-chunk`` chunks, one particle's history ``frames / 4``
FRAMES_PER_CHUNK = 4
CHUNK_NUMBERS = 1 << 16


def _timeseries(group, name, shape, dtype):
    g = group.create_group(name)
    g.create_dataset("step", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))
    g.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
    if shape:
        n, dim = shape
        per_chunk = max(1, min(n, CHUNK_NUMBERS // (FRAMES_PER_CHUNK * dim)))
        chunks = (FRAMES_PER_CHUNK, per_chunk, dim)
    else:
        chunks = (256,)
    g.create_dataset("value", shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                     chunks=chunks)
    return g


class TrajectoryFile:
    """An open trajectory file: ``create`` a new one or ``open`` one to append to."""

    def __init__(self, h5: h5py.File):
        self.h5 = h5

    @classmethod
    def create(cls, path, *, config: dict, run_config: dict, seeds: dict, n: int, dim: int,
               dtype, observables, teacher=None, symmetry=None,
               methods: dict | None = None) -> TrajectoryFile:
        """A new file for a run with ``n`` particles in ``R^dim``; ``config`` is the user's
        config (what ``resume`` rebuilds the run from), ``run_config`` what ``simulate`` saw;
        ``methods``: how each observable is computed (default: ``run_config``'s
        ``observable_methods``), stored as the ``method`` attribute of its group."""
        h5 = h5py.File(path, "w")
        meta = h5.create_group("h5md")
        meta.attrs["version"] = np.array([1, 1])
        meta.create_group("creator").attrs.update({"name": "wgflow", "version": __version__})
        meta.create_group("author").attrs["name"] = _author()
        meta.create_group("modules").create_group("wgflow").attrs["version"] = \
            np.array(SCHEMA_VERSION)
        student = h5.create_group("particles/student")
        student.create_group("box").attrs.update({"dimension": dim,
                                                   "boundary": np.array(["none"] * dim, "S4")})
        _timeseries(student, "position", (n, dim), dtype)
        if teacher is not None:
            t = h5.create_group("particles/teacher")
            t.create_group("box").attrs.update({"dimension": dim,
                                                 "boundary": np.array(["none"] * dim, "S4")})
            t.create_group("position").create_dataset("value", data=np.asarray(teacher))
        obs = h5.create_group("observables")
        if methods is None:
            methods = run_config.get("observable_methods", {})
        for name in observables:
            _timeseries(obs, name, (), "f8").attrs["method"] = methods.get(name, "unknown")
        par = h5.create_group("parameters")
        par.create_dataset("config", data=json.dumps(config), dtype=_STR)
        par.create_dataset("run_config", data=json.dumps(run_config), dtype=_STR)
        par.create_dataset("seeds", data=json.dumps(seeds), dtype=_STR)
        par.create_dataset("versions", data=json.dumps(versions()), dtype=_STR)
        if symmetry is not None:  # the defining generators (a Lie generator for SO(2))
            group = symmetry.group
            gens = getattr(group, "generators", None)
            par.create_dataset("generators", data=group.lie_generator[None] if gens is None
                               else gens)
            par.create_dataset("actions", data=symmetry.action.images)
            par.create_dataset("EG_basis", data=symmetry.basis)
        par.attrs.update({"status": "running", "message": ""})
        h5.flush()
        return cls(h5)

    @classmethod
    def open(cls, path) -> TrajectoryFile:
        return cls(h5py.File(path, "r+"))

    @property
    def frames(self) -> int:
        return self.h5["particles/student/position/step"].shape[0]

    def _series(self):
        yield self.h5["particles/student/position"]
        yield from self.h5["observables"].values()

    def append(self, frame) -> None:
        """Write one frame (``t, step, theta, observables``) and flush."""
        i = self.frames
        for g in self._series():
            name = g.name.rsplit("/", 1)[-1]
            value = frame.theta if name == "position" else frame.observables[name]
            for key, data in (("value", value), ("time", frame.t), ("step", frame.step)):
                g[key].resize(i + 1, axis=0)
                g[key][i] = data
        self.h5.flush()

    def truncate(self, n_frames: int) -> None:
        """Drop the frames after the first ``n_frames`` (those written after a checkpoint)."""
        for g in self._series():
            for key in ("step", "time", "value"):
                g[key].resize(n_frames, axis=0)
        self.h5.flush()

    def set_status(self, status: str, message: str = "") -> None:
        self.h5["parameters"].attrs.update({"status": status, "message": message})
        self.h5.flush()

    def close(self) -> None:
        self.h5.close()


def _author() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def checkpoint_path(path) -> Path:
    return Path(f"{path}.ckpt.npz")


def write_checkpoint(path, cursor, frames: int) -> None:
    """Atomically save ``cursor`` (a :class:`wgflow.dynamics.FlowCursor`) taken after
    ``frames`` frames were written."""
    final = checkpoint_path(path)
    tmp = final.with_name(final.name + ".tmp")
    rngs = {name: json.dumps(getattr(cursor, name)) for name in _RNG_FIELDS}
    with open(tmp, "wb") as fh:
        np.savez(fh, theta=cursor.theta, step=cursor.step, t=cursor.t, frames=frames, **rngs)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)


def read_checkpoint(path):
    """``(cursor, frames)``: the :class:`wgflow.dynamics.FlowCursor` of the last checkpoint of
    the run in ``path`` and the number of frames written when it was taken."""
    with np.load(checkpoint_path(path)) as ck:
        rngs = {name: json.loads(str(ck[name])) for name in _RNG_FIELDS}
        return (FlowCursor(ck["theta"], int(ck["step"]), float(ck["t"]), **rngs),
                int(ck["frames"]))


def read_parameters(path) -> dict:
    """The JSON parameters, status and number of frames of a run file."""
    with h5py.File(path, "r") as h5:
        if "parameters/run_config" not in h5 or "particles/student/position" not in h5:
            raise ValueError(f"{path} is not a wgflow trajectory file")
        par = h5["parameters"]
        out = {k: json.loads(par[k][()]) for k in ("config", "run_config", "seeds", "versions")}
        out.update(status=str(par.attrs["status"]), message=str(par.attrs["message"]),
                   frames=h5["particles/student/position/step"].shape[0])
        return out


def read_eg_basis(path):
    """The orthonormal basis ``(D, dim E^G)`` stored with a run, or ``None`` without a group."""
    with h5py.File(path, "r") as h5:
        basis = h5["parameters"].get("EG_basis")
        return None if basis is None else basis[()]


def load(path, frames: slice = slice(None)) -> Result:
    """The :class:`Result` stored in ``path`` (the one :func:`wgflow.simulate` returned), or the
    frames ``frames`` of it (a slice: ``slice(-1, None)`` reads the last frame only). Each
    observable's method is its group's ``method`` attribute (``"unknown"`` in files without)."""
    params = read_parameters(path)
    with h5py.File(path, "r") as h5:
        pos = h5["particles/student/position"]
        sel = slice(*frames.indices(params["frames"]))
        teacher = h5.get("particles/teacher/position/value")
        obs = h5["observables"]
        return Result(times=pos["time"][sel], steps=pos["step"][sel], particles=pos["value"][sel],
                      observables={k: g["value"][sel] for k, g in obs.items()},
                      config=params["run_config"], seeds=params["seeds"],
                      teacher=None if teacher is None else teacher[()], status=params["status"],
                      methods={k: str(g.attrs.get("method", "unknown")) for k, g in obs.items()})


def save(result: Result, path, config: dict | None = None) -> None:
    """Write ``result`` to ``path`` in the layout above (``config``: the user's config, if any)."""
    n, dim = result.particles.shape[1:]
    out = TrajectoryFile.create(path, config=config or {}, run_config=result.config,
                                seeds=result.seeds, n=n, dim=dim, dtype=result.particles.dtype,
                                observables=list(result.observables), teacher=result.teacher,
                                methods=result.methods)
    try:
        for i, (t, step) in enumerate(zip(result.times, result.steps, strict=True)):
            out.append(Frame(float(t), int(step), result.particles[i],
                             {k: v[i] for k, v in result.observables.items()}))
        out.set_status(result.status)
    finally:
        out.close()
