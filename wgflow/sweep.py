"""Sweeps: one config run over a grid of keys and ``K`` seeded replicates, one file per run.

A *grid* ``{key: [v₁, v₂, …]}`` (or a list of such grids: the union of their products) applied to
a base config gives the grid points; each is run ``K`` times. Replicate ``r`` takes ``init.seed``
and ``run.seed`` from ``SeedSequence(root_seed).spawn(K)[r].generate_state(2)``, the same for
every grid point: within a replicate all schemes and teachers start from the same particles
(the paper's shared SI start), and a sweep's results depend neither on the executor nor on the
number of workers.

Layout of the output directory ``DIR``::

    DIR/manifest.json    the sweep (base config, grids, K, root seed, label) and one entry per run
    DIR/manifest.lock    held while a sweep runs in DIR (a second one is refused)
    DIR/runs/<id>.h5     the trajectory file of a run; <id>: the first 12 hex digits of its hash

An entry holds ``id``, ``config_hash`` (SHA-256 of the run's checked config as canonical JSON),
``params`` (its grid point), ``replicate``, ``seeds`` (``init.seed``, ``run.seed``), ``status``
(``pending``, ``complete``, ``diverged`` or ``failed``), ``path`` (relative to ``DIR``),
``wall_time`` (seconds of its last execution) and ``error`` (why it failed). Only the parent
process writes the manifest, atomically (temporary file + rename), after every finished run.
Running the same sweep again skips the runs whose file is complete or diverged, resumes the
interrupted ones from their checkpoint and runs the others from the start.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import time
from concurrent.futures import as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import config as configuration
from .result import Result
from .runner import progress_bar, resume_file, run_to_file
from .storage import checkpoint_path, load, read_parameters

#: the keys each replicate sets from the root seed
SEED_KEYS = ("init.seed", "run.seed")
#: file statuses of runs that are done (a diverged run diverges again when rerun)
FINISHED = ("complete", "diverged")
MANIFEST = "manifest.json"
LOCK = "manifest.lock"


@dataclass(frozen=True)
class Sweep:
    """A sweep on disk: ``directory``, its ``description`` (``base``, ``grid``, ``seeds``,
    ``root_seed``) and its ``runs`` (the manifest entries, in plan order)."""

    directory: Path
    description: dict
    runs: list

    def config(self, entry: dict) -> dict:
        """The checked config of the run ``entry``."""
        return configuration.checked({**self.description["base"], **entry["params"],
                                      **entry["seeds"]})

    def load(self, entry: dict, frames: slice = slice(None)) -> Result:
        """The :class:`Result` stored for the run ``entry`` (its ``frames`` only, as
        :func:`wgflow.storage.load`)."""
        return load(self.directory / entry["path"], frames)

    def counts(self) -> dict:
        """``{status: number of runs}``."""
        statuses = [entry["status"] for entry in self.runs]
        return {s: statuses.count(s) for s in sorted(set(statuses))}


def parse_grid(item: str) -> tuple[str, list]:
    """``"init.N=5,10"`` → ``("init.N", [5, 10])``; each value read as TOML, else a string."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip() or not text.strip():
        raise ValueError(f"--grid expects KEY=V1,V2,... (e.g. init.N=5,10), got {item!r}")
    return key.strip(), [configuration.parse_override(f"v={v.strip()}")[1]
                         for v in text.split(",")]


def config_hash(config: dict) -> str:
    """SHA-256 hex digest of ``config`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def replicate_seeds(root_seed: int, replicates: int) -> list[dict]:
    """``{init.seed, run.seed}`` of each replicate, spawned from ``SeedSequence(root_seed)``."""
    children = np.random.SeedSequence(root_seed).spawn(replicates)
    return [dict(zip(SEED_KEYS, map(int, child.generate_state(2)), strict=True))
            for child in children]


def _grids(grid) -> list[dict]:
    grids = [grid] if isinstance(grid, dict) else list(grid)
    if not grids:
        raise ValueError("grid must be {key: [values]} or a non-empty list of such dicts")
    for g in grids:
        for key, values in g.items():
            if key not in configuration.DEFAULTS:
                raise ValueError(f"grid key {key!r} is not a config key; known keys: "
                                 f"{sorted(configuration.DEFAULTS)}")
            if key in SEED_KEYS:
                raise ValueError(f"grid key {key!r} is set per replicate; choose the number of "
                                 "replicates (seeds=K, --seeds K) and root_seed instead")
            if isinstance(values, str) or not isinstance(values, (list, tuple)) or not values:
                raise ValueError(f"grid key {key!r} needs a non-empty list of values, e.g. "
                                 f"--grid {key}=V1,V2")
    return [{key: list(values) for key, values in g.items()} for g in grids]


def _count(value, name: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer ≥ {low}, got {value!r}")
    return value


def plan(base_config: dict, grid, *, seeds: int = 1, root_seed: int | None = None) -> Sweep:
    """The sweep before it runs, every entry ``pending`` (directory ``.``); ``root_seed``
    defaults to the base config's ``run.seed``."""
    base = configuration.checked(base_config)
    seeds = _count(seeds, "seeds (--seeds)", 1)
    root = _count(base["run.seed"] if root_seed is None else root_seed, "root_seed", 0)
    grids = _grids(grid)
    points = [dict(zip(g, combo, strict=True)) for g in grids
              for combo in itertools.product(*g.values())]
    runs = []
    for replicate, seed_values in enumerate(replicate_seeds(root, seeds)):
        for point in points:
            digest = config_hash(configuration.checked({**base, **point, **seed_values}))
            runs.append({"id": digest[:12], "config_hash": digest, "params": point,
                         "replicate": replicate, "seeds": seed_values, "status": "pending",
                         "path": f"runs/{digest[:12]}.h5", "wall_time": None, "error": ""})
    if len({entry["id"] for entry in runs}) < len(runs):
        raise ValueError("grid: two grid points give the same run; list each value once")
    description = {"base": base, "grid": grids, "seeds": seeds, "root_seed": root}
    return Sweep(Path("."), description, runs)


def read_sweep(directory) -> Sweep:
    """The sweep recorded in ``directory/manifest.json``."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{directory} has no {MANIFEST}: give the --out directory of "
                         "`wgflow sweep` or `wgflow study`")
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return Sweep(Path(directory), manifest["sweep"], manifest["runs"])


def write_manifest(sweep: Sweep) -> None:
    """Write ``sweep``'s manifest atomically."""
    path = sweep.directory / MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"sweep": sweep.description, "runs": sweep.runs}, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def file_status(path) -> str | None:
    """The status written in the run file ``path``, ``None`` if missing or unreadable."""
    try:
        return read_parameters(path)["status"]
    except (OSError, ValueError, KeyError):
        return None


def execute(config: dict, path: str, threads: int | None) -> tuple[str, float, str]:
    """The task a worker runs: resume or run one sweep run into ``path`` with at most
    ``threads`` Numba threads and no progress bar; ``(status, wall seconds, error message)``."""
    import numba

    previous = numba.get_num_threads()
    if threads:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    tic = time.perf_counter()
    try:
        status = _resume_or_run(config, path)
    except Exception as err:  # recorded in the manifest; the other runs go on
        return "failed", time.perf_counter() - tic, f"{type(err).__name__}: {err}"
    finally:
        numba.set_num_threads(previous)
    return status, time.perf_counter() - tic, ""


def _resume_or_run(config: dict, path: str) -> str:
    if file_status(path) == "running" and checkpoint_path(path).exists():
        with contextlib.suppress(ValueError):  # a stale checkpoint: start again below
            return resume_file(path, progress=False)
    return run_to_file(config, path, progress=False)


def _outcomes(sweep: Sweep, todo: list, executor, threads):
    """Yield ``(entry, (status, wall time, error))`` as the runs of ``todo`` finish."""
    tasks = [(entry, (sweep.config(entry), str(sweep.directory / entry["path"]), threads))
             for entry in todo]
    if executor is None:
        for entry, args in tasks:
            yield entry, execute(*args)
        return
    futures = {executor.submit(execute, *args): entry for entry, args in tasks}
    try:
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except Exception as err:  # the worker died (memory, a crash, a lost Dask worker)
                outcome = "failed", None, f"worker lost: {type(err).__name__}: {err}"
            yield futures[future], outcome
    finally:  # interrupted: drop the runs not started
        for future in futures:
            future.cancel()


def adopt_previous(sweep: Sweep) -> None:
    """Keep the wall times of a previous run of the same sweep in ``sweep.directory``; refuse a
    directory holding another sweep (another base config or root seed: a grown grid or more
    replicates of the same sweep are the same sweep, extended)."""
    path = sweep.directory / MANIFEST
    if not path.is_file():
        return
    previous = read_sweep(sweep.directory).description
    current = json.loads(json.dumps(sweep.description))
    if any(previous.get(k) != current[k] for k in ("base", "root_seed", "label")):
        raise ValueError(f"{sweep.directory} holds another sweep or study (its {MANIFEST} has "
                         "another base config, root seed or study); choose another output "
                         "directory")
    times = {entry["id"]: entry["wall_time"] for entry in read_sweep(sweep.directory).runs}
    for entry in sweep.runs:
        entry["wall_time"] = times.get(entry["id"])


@contextlib.contextmanager
def _exclusive(directory: Path):
    """Hold ``directory/manifest.lock`` while the sweep runs: a second sweep into the same
    directory is refused. The operating system releases the lock when the process ends, even
    when it is killed (no lock on platforms without ``fcntl``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover  (Windows)
        yield
        return
    with open(directory / LOCK, "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ValueError(f"another sweep is running in {directory} (it holds {LOCK}); "
                             "wait for it to finish or stop it") from None
        yield


def run_sweep(base_config: dict, grid, out_dir, *, seeds: int = 1, root_seed: int | None = None,
              executor=None, progress: bool = True, threads_per_worker: int | None = None,
              label: dict | None = None) -> Sweep:
    """Run the sweep of ``base_config`` (flat dotted keys) over ``grid`` with ``seeds``
    replicates into ``out_dir``; return it with every entry's final status.

    ``executor``: any :class:`concurrent.futures.Executor` (``None``: serially, in this
    process); ``threads_per_worker``: the Numba threads of each run (default: 1 with an
    executor, so that its workers do not oversubscribe the cores; unchanged without one);
    ``label``: what the sweep is (a built-in study), kept in the manifest. Paths are absolute, so
    workers on other machines (Dask) need ``out_dir`` on a shared file system.
    """
    sweep = replace(plan(base_config, grid, seeds=seeds, root_seed=root_seed),
                    directory=Path(out_dir).resolve())
    sweep.description["label"] = label
    if threads_per_worker is None and executor is not None:
        threads_per_worker = 1
    sweep.directory.mkdir(parents=True, exist_ok=True)
    with _exclusive(sweep.directory):
        adopt_previous(sweep)
        (sweep.directory / "runs").mkdir(exist_ok=True)
        todo = []
        for entry in sweep.runs:
            entry["status"] = file_status(sweep.directory / entry["path"]) or "pending"
            if entry["status"] not in FINISHED:
                entry["status"] = "pending"
                todo.append(entry)
        write_manifest(sweep)
        bar = progress_bar(len(sweep.runs), len(sweep.runs) - len(todo), progress, unit="run")
        try:
            with contextlib.closing(_outcomes(sweep, todo, executor, threads_per_worker)) as done:
                for entry, (status, wall_time, error) in done:
                    entry.update(status=status, wall_time=wall_time, error=error)
                    write_manifest(sweep)
                    bar.update()
        finally:
            bar.close()
    return sweep
