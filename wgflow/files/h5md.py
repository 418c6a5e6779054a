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

A grid PDE run (:mod:`wgflow.pde`) has no particles: its density is a time series of fields,
``/fields/density/{step,time,value}`` with ``value (frames, n_1[, n_2])`` (cell averages,
``Σ value[f]·cell_volume = 1``), and ``/fields/density/grid/{box (k, 2), cell_volume,
centers/<axis> (n_i,), basis (D, k)}`` (``basis`` for ``E^G`` coordinates, ``θ = B z``);
its observables (``mass``, ``free_energy``, ``mean (frames, k)``, …) and ``/parameters`` are
laid out as above (``seeds`` is ``{}``: the flow is deterministic). H5MD 1.1 reserves the root
for ``h5md``, ``particles``, ``observables``, ``connectivity`` and ``parameters`` and lets
modules add groups: ``/fields`` belongs to the ``wgflow`` module (schema 1.2), and its time
series follow H5MD's ``{step, time, value}`` convention, so generic H5MD readers still find
the observables and parameters. :func:`load` returns a :class:`wgflow.pde.PDEResult` for such
a file.

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
from ..pde import DensityFrame, PDEResult, observable_methods
from ..result import Result

#: version of the wgflow layout inside the H5MD file (``/h5md/modules/wgflow``); 1.2 added
#: ``/fields/density`` (grid PDE runs)
SCHEMA_VERSION = (1, 2)
#: the time series of a particle run and of a grid PDE run
#: the time series of a particle run: the students' positions
POSITION = "particles/student/position"
#: the time series of a grid PDE run: the density
DENSITY = "fields/density"
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
    if shape:  # split along the first axis of a frame: (N, D) particles, (n_1[, n_2]) cells
        rest = int(np.prod(shape[1:]))
        per_chunk = max(1, min(shape[0], CHUNK_NUMBERS // (FRAMES_PER_CHUNK * rest)))
        chunks = (FRAMES_PER_CHUNK, per_chunk, *shape[1:])
    else:
        chunks = (256,)
    g.create_dataset("value", shape=(0, *shape), maxshape=(None, *shape), dtype=dtype,
                     chunks=chunks)
    return g


def main_series(h5) -> str:
    """The path of the time series a run file is made of: :data:`DENSITY` for a grid PDE run,
    else :data:`POSITION`."""
    return DENSITY if DENSITY in h5 else POSITION


def _new_file(path) -> h5py.File:
    """A new HDF5 file holding the ``/h5md`` metadata."""
    h5 = h5py.File(path, "w")
    meta = h5.create_group("h5md")
    meta.attrs["version"] = np.array([1, 1])
    meta.create_group("creator").attrs.update({"name": "wgflow", "version": __version__})
    meta.create_group("author").attrs["name"] = _author()
    meta.create_group("modules").create_group("wgflow").attrs["version"] = \
        np.array(SCHEMA_VERSION)
    return h5


def _finish(h5, *, config, run_config, seeds, observables: dict, methods: dict, symmetry,
            identity) -> None:
    """``/observables`` (``observables``: name → shape of one frame's value) and
    ``/parameters``, then flush."""
    obs = h5.create_group("observables")
    for name, shape in observables.items():
        _timeseries(obs, name, tuple(shape), "f8").attrs["method"] = methods.get(name, "unknown")
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


class TrajectoryFile:
    """An open run file: ``create`` a new particle trajectory, ``create_density`` a new grid
    PDE run, or ``open`` one to append to."""

    def __init__(self, h5: h5py.File):
        self.h5 = h5
        self.main = main_series(h5)

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
        h5 = _new_file(path)
        student = h5.create_group("particles/student")
        student.create_group("box").attrs.update({"dimension": dim,
                                                   "boundary": np.array(["none"] * dim, "S4")})
        _timeseries(student, "position", (n, dim), dtype)
        if teacher is not None:
            t = h5.create_group("particles/teacher")
            t.create_group("box").attrs.update({"dimension": dim,
                                                 "boundary": np.array(["none"] * dim, "S4")})
            t.create_group("position").create_dataset("value", data=np.asarray(teacher))
        if methods is None:
            methods = run_config.get("observable_methods", {})
        _finish(h5, config=config, run_config=run_config, seeds=seeds,
                observables=dict.fromkeys(observables, ()), methods=methods,
                symmetry=symmetry, identity=identity)
        return cls(h5)

    @classmethod
    def create_density(cls, path, *, config: dict, run_config: dict, centers, cell_volume: float,
                       box, basis, observables: dict, symmetry=None,
                       identity: dict | None = None) -> TrajectoryFile:
        """A new file for a grid PDE run (:mod:`wgflow.pde`) on the cells of ``centers`` (one
        array per axis) in ``box (k, 2)``, ``basis (D, k)`` or ``None``; ``observables``:
        name → shape of one frame's value. Other arguments as :meth:`create`."""
        h5 = _new_file(path)
        density = _timeseries(h5.create_group("fields"), "density",
                              tuple(len(c) for c in centers), "f8")
        grid = density.create_group("grid")
        grid.create_dataset("box", data=np.asarray(box, dtype=float))
        grid.create_dataset("cell_volume", data=float(cell_volume))
        for axis, c in enumerate(centers):
            grid.create_dataset(f"centers/{axis}", data=np.asarray(c))
        if basis is not None:
            grid.create_dataset("basis", data=np.asarray(basis))
        _finish(h5, config=config, run_config=run_config, seeds={}, observables=observables,
                methods=observable_methods(run_config, observables), symmetry=symmetry,
                identity=identity)
        return cls(h5)

    @classmethod
    def open(cls, path) -> TrajectoryFile:
        """An existing trajectory file, opened for appending."""
        return cls(h5py.File(path, "r+"))

    @property
    def frames(self) -> int:
        """Number of frames written."""
        return self.h5[f"{self.main}/step"].shape[0]

    def _series(self):
        yield self.h5[self.main]
        yield from self.h5["observables"].values()

    def append(self, frame) -> None:
        """Write one frame (``t, step, theta, observables``, or ``t, step, rho, observables``
        of a PDE run) and flush; refuse (``OSError``) when the disk lacks room for a new chunk
        of frames and a checkpoint."""
        state = frame.rho if self.main == DENSITY else frame.theta
        require_space(self.h5.filename, (FRAMES_PER_CHUNK + 2) * state.nbytes)
        i = self.frames
        for g in self._series():
            value = state if g.name == f"/{self.main}" else \
                frame.observables[g.name.rsplit("/", 1)[-1]]
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
        """Record the run's ``status`` and ``message`` (attributes of ``/parameters``) and flush."""
        self.h5["parameters"].attrs.update({"status": status, "message": message})
        self.h5.flush()

    def close(self) -> None:
        """Close the file."""
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
    groups = [h5[main_series(h5)], *h5["observables"].values()]
    return min(g[key].shape[0] for g in groups for key in ("step", "time", "value"))


def read_parameters(path) -> dict:
    """The JSON parameters, status, identity (``run_id``, ``config_hash``) and number of
    complete frames of a run file."""
    with open_read(path) as h5:
        main = main_series(h5)
        missing = [key for key in ("parameters/config", "parameters/run_config",
                                   "parameters/seeds", "parameters/versions", main,
                                   "observables")
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
                   frames=_frames(h5), shape=h5[f"{main}/value"].shape[1:],
                   dtype=str(h5[f"{main}/value"].dtype),
                   kind="density" if main == DENSITY else "particles")
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


def load(path, frames: slice = slice(None)) -> Result | PDEResult:
    """The :class:`Result` stored in ``path`` (the one :func:`wgflow.simulate` returned), or the
    frames ``frames`` of it (a slice: ``slice(-1, None)`` reads the last frame only). Each
    observable's method is its group's ``method`` attribute (``"unknown"`` in files without).
    A grid PDE run's file gives its :class:`wgflow.pde.PDEResult` (:func:`wgflow.pde.solve`)."""
    params = read_parameters(path)
    with open_read(path) as h5:
        sel = slice(*frames.indices(params["frames"]))
        if params["kind"] == "density":
            return _load_density(h5, params, sel)
        pos = h5[POSITION]
        teacher = h5.get("particles/teacher/position/value")
        obs = h5["observables"]
        return Result(times=pos["time"][sel], steps=pos["step"][sel], particles=pos["value"][sel],
                      observables={k: g["value"][sel] for k, g in obs.items()},
                      config=params["run_config"], seeds=params["seeds"],
                      teacher=None if teacher is None else teacher[()], status=params["status"],
                      methods={k: str(g.attrs.get("method", "unknown")) for k, g in obs.items()})


def _load_density(h5, params: dict, sel: slice) -> PDEResult:
    density, grid = h5[DENSITY], h5[f"{DENSITY}/grid"]
    centers = tuple(grid[f"centers/{axis}"][()] for axis in range(len(grid["centers"])))
    basis = grid.get("basis")
    return PDEResult(density["time"][sel], density["step"][sel], centers,
                     float(grid["cell_volume"][()]), density["value"][sel],
                     {k: g["value"][sel] for k, g in h5["observables"].items()},
                     params["run_config"], None if basis is None else basis[()],
                     params["status"])


def _save_density(result: PDEResult, path, config: dict) -> None:
    out = TrajectoryFile.create_density(
        path, config=config, run_config=result.config, centers=result.centers,
        cell_volume=result.cell_volume, box=result.config["box"], basis=result.basis,
        observables={k: v.shape[1:] for k, v in result.observables.items()})
    _write_frames(out, result, result.density, DensityFrame)


def save(result: Result | PDEResult, path, config: dict | None = None,
         overwrite: bool = False) -> None:
    """Write ``result`` (a :class:`Result`, or a :class:`wgflow.pde.PDEResult`) to ``path`` in
    the layout above (``config``: the user's config, if any); an existing trajectory is
    replaced only with ``overwrite``, another file never."""
    check_output(path, overwrite)
    if isinstance(result, PDEResult):
        _save_density(result, path, config or {})
        return
    n, dim = result.particles.shape[1:]
    out = TrajectoryFile.create(path, config=config or {}, run_config=result.config,
                                seeds=result.seeds, n=n, dim=dim, dtype=result.particles.dtype,
                                observables=list(result.observables), teacher=result.teacher,
                                methods=result.methods)
    _write_frames(out, result, result.particles, Frame)


def _write_frames(out: TrajectoryFile, result, values, frame_type) -> None:
    """Append every frame of ``result`` (``values[i]``: particles or density) and its status,
    then close ``out``."""
    try:
        for i, (t, step) in enumerate(zip(result.times, result.steps, strict=True)):
            out.append(frame_type(float(t), int(step), values[i],
                                  {k: v[i] for k, v in result.observables.items()}))
        out.set_status(result.status)
    finally:
        out.close()
