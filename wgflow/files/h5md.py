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
``value`` of equal length. Readers open files without HDF5's lock (:func:`open_read`), so a file
that a run is still writing can be inspected; checkpoints live in :mod:`wgflow.files.checkpoints`.
"""

from __future__ import annotations

import errno
import getpass
import json
import os
from pathlib import Path

import h5py
import numpy as np

from .._version import __version__
from ..dynamics import Frame
from ..result import Result

#: version of the wgflow layout inside the H5MD file (``/h5md/modules/wgflow``)
SCHEMA_VERSION = (1, 1)
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


#: bytes kept free beyond what a write needs (HDF5 metadata, the file system's own)
SPARE_BYTES = 1 << 20


def require_space(path, nbytes: int) -> None:
    """Raise ``OSError(ENOSPC)`` unless the file system holding ``path`` has ``nbytes`` plus
    :data:`SPARE_BYTES` free: writes stop cleanly before the disk fills, since HDF5 can lose
    buffered data, or crash when the file is closed, once a write has failed."""
    stats = os.statvfs(Path(path).resolve().parent)
    free = stats.f_bavail * stats.f_frsize
    if free < nbytes + SPARE_BYTES:
        raise OSError(errno.ENOSPC, f"only {free} bytes free beside {path}, a frame and its "
                                    f"checkpoint need about {nbytes + SPARE_BYTES}")


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
               methods: dict | None = None,
               identity: dict | None = None) -> TrajectoryFile:
        """A new file for a run with ``n`` particles in ``R^dim``; ``config`` is the user's
        config (what ``resume`` rebuilds the run from), ``run_config`` what ``simulate`` saw;
        ``methods``: how each observable is computed (default: ``run_config``'s
        ``observable_methods``), stored as the ``method`` attribute of its group;
        ``identity``: the run's ``run_id`` and ``config_hash``
        (:func:`wgflow.files.checkpoints.new_identity`), which its checkpoints carry too."""
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
        par.attrs.update({"status": "running", "message": "", **(identity or {})})
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
        """Write one frame (``t, step, theta, observables``) and flush; refuse (``OSError``)
        when the disk lacks room for a new chunk of frames and a checkpoint."""
        require_space(self.h5.filename, (FRAMES_PER_CHUNK + 2) * frame.theta.nbytes)
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


def open_read(path) -> h5py.File:
    """``path`` opened read-only without HDF5's file lock, so that a file a run is still
    writing can be read (frames so far); a missing, foreign or broken file raises a
    ``ValueError`` that names it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file" if not path.exists()
                         else f"{path} is not a regular file")
    try:
        return h5py.File(path, "r", locking=False)
    except OSError as err:
        raise ValueError(f"{path} is not a readable HDF5 file ({err}); give a wgflow "
                         "trajectory file") from None


def is_trajectory(path) -> bool:
    """Whether ``path`` is an HDF5 file that wgflow wrote."""
    try:
        with open_read(path) as h5:
            return "parameters/config" in h5 and "h5md/modules/wgflow" in h5
    except ValueError:
        return False


def _frames(h5) -> int:
    """Complete frames: the shortest series (a writer may be between two datasets' resizes)."""
    groups = [h5["particles/student/position"], *h5["observables"].values()]
    return min(g[key].shape[0] for g in groups for key in ("step", "time", "value"))


def read_parameters(path) -> dict:
    """The JSON parameters, status, identity (``run_id``, ``config_hash``) and number of
    complete frames of a run file."""
    with open_read(path) as h5:
        missing = [key for key in ("parameters/config", "parameters/run_config",
                                   "parameters/seeds", "parameters/versions",
                                   "particles/student/position", "observables")
                   if key not in h5]
        if missing:
            raise ValueError(f"{path} is not a wgflow trajectory file (it has no /{missing[0]})")
        par = h5["parameters"]
        try:
            out = {k: json.loads(par[k][()]) for k in ("config", "run_config", "seeds",
                                                       "versions")}
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path}: /parameters holds no valid JSON ({err}); the file is "
                             "not a wgflow trajectory or is damaged") from None
        for key in ("config", "run_config"):
            if not isinstance(out[key], dict):
                raise ValueError(f"{path}: /parameters/{key} is not a JSON object; the file is "
                                 "not a wgflow trajectory or is damaged")
        out.update(status=str(par.attrs.get("status", "unknown")),
                   message=str(par.attrs.get("message", "")),
                   run_id=str(par.attrs.get("run_id", "")),
                   config_hash=str(par.attrs.get("config_hash", "")),
                   frames=_frames(h5), shape=h5["particles/student/position/value"].shape[1:],
                   dtype=str(h5["particles/student/position/value"].dtype))
        return out


def check_output(path, overwrite: bool) -> None:
    """Refuse an output path that is not a regular file, a file that is not a wgflow
    trajectory, and a trajectory unless ``overwrite``."""
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"the output file's directory {path.parent} does not exist; create it "
                         "or choose another path (--out)")
    if not (path.exists() or path.is_symlink()):
        return
    if not path.is_file():
        raise ValueError(f"the output {path} exists and is not a regular file; give the path of "
                         "a new .h5 file (--out)")
    if not is_trajectory(path):
        raise ValueError(f"the output {path} exists and is not a wgflow trajectory file; wgflow "
                         "never replaces it: choose another path (--out)")
    if not overwrite:
        status = read_parameters(path)["status"]
        resume = f", `wgflow resume {path}` to continue it" if status == "running" else ""
        raise ValueError(f"the output {path} already holds a wgflow run (status {status}); "
                         f"pass --overwrite to replace it{resume}, or choose another path (--out)")


def read_eg_basis(path):
    """The orthonormal basis ``(D, dim E^G)`` stored with a run, or ``None`` without a group."""
    with open_read(path) as h5:
        basis = h5["parameters"].get("EG_basis")
        return None if basis is None else basis[()]


def load(path, frames: slice = slice(None)) -> Result:
    """The :class:`Result` stored in ``path`` (the one :func:`wgflow.simulate` returned), or the
    frames ``frames`` of it (a slice: ``slice(-1, None)`` reads the last frame only). Each
    observable's method is its group's ``method`` attribute (``"unknown"`` in files without)."""
    params = read_parameters(path)
    with open_read(path) as h5:
        pos = h5["particles/student/position"]
        sel = slice(*frames.indices(params["frames"]))
        teacher = h5.get("particles/teacher/position/value")
        obs = h5["observables"]
        return Result(times=pos["time"][sel], steps=pos["step"][sel], particles=pos["value"][sel],
                      observables={k: g["value"][sel] for k, g in obs.items()},
                      config=params["run_config"], seeds=params["seeds"],
                      teacher=None if teacher is None else teacher[()], status=params["status"],
                      methods={k: str(g.attrs.get("method", "unknown")) for k, g in obs.items()})


def save(result: Result, path, config: dict | None = None, overwrite: bool = False) -> None:
    """Write ``result`` to ``path`` in the layout above (``config``: the user's config, if any);
    an existing trajectory is replaced only with ``overwrite``, another file never."""
    check_output(path, overwrite)
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
