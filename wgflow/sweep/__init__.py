"""Sweeps: one config run over a grid of keys and ``K`` seeded replicates, one file per run.

This package holds the machinery; :mod:`wgflow.sweep.studies` defines the built-in studies
(the paper's experiments as sweeps) and :mod:`wgflow.sweep.report` draws the figures and tables
of a finished sweep or study.

A *grid* ``{key: [v₁, v₂, …]}`` (or a list of such grids: the union of their products) applied to
a base config gives the grid points; each is run ``K`` times. Replicate ``r`` takes ``init.seed``
and ``run.seed`` from ``SeedSequence(root_seed).spawn(K)[r].generate_state(2)``, the same for
every grid point: within a replicate all schemes and teachers start from the same particles
(the paper's shared SI start), and a sweep's results depend neither on the executor nor on the
number of workers.

Layout of the output directory ``DIR``::

    DIR/manifest.json    the sweep (base config, grids, K, root seed, label) and one entry per run
    DIR/manifest.lock    held while a sweep runs in DIR (a second one is refused)
    DIR/manifest.stop    while a sweep stops (after a second Ctrl-C, until the next sweep)
    DIR/manifest.threads while fewer runs are left than workers: the Numba threads each takes
    DIR/runs/<id>.h5     the trajectory file of a run; <id>: the first 12 hex digits of its hash

An entry holds ``id``, ``config_hash`` (SHA-256 of the run's checked config as canonical JSON),
``params`` (its grid point), ``replicate``, ``seeds`` (``init.seed``, ``run.seed``), ``status``
(``pending``, ``complete``, ``diverged``, ``failed`` or ``interrupted``), ``path`` (relative
to ``DIR``), ``wall_time`` (seconds of its last execution) and ``error`` (why it failed). Only
the parent process writes the manifest, atomically (temporary file + rename), after every
finished run. Running the same sweep again skips the runs whose file is complete or diverged,
resumes the interrupted ones from their checkpoint and runs the others from the start.

Ctrl-C (SIGINT) or SIGTERM stops a sweep: runs not started are cancelled, running ones are
asked to stop (``DIR/manifest.stop``, which workers check between chunks; local workers also
receive the terminal's signal) and checkpoint, the manifest records them as ``interrupted``,
and :class:`wgflow.runner.RunInterrupted` says how to continue.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import config as configuration
from ..config import config_hash
from ..configs import problems
from ..files.checkpoints import checkpoint_path
from ..files.h5md import is_trajectory, load, read_parameters
from ..files.locks import exclusive
from ..result import Result
from ..runner import (
    RunInterrupted,
    lock_path,
    progress_bar,
    resume_file,
    run_to_file,
    stop_requests,
)

#: the keys each replicate sets from the root seed
SEED_KEYS = ("init.seed", "run.seed")
#: schemes that evaluate each sample on every Haar node of the group
ORBIT_SCHEMES = ("FA", "DA-orbit")
#: file statuses of runs that are done (a diverged run diverges again when rerun)
FINISHED = ("complete", "diverged")
MANIFEST = "manifest.json"
#: the fields of a manifest entry that a sweep reads back
ENTRY_FIELDS = ("id", "params", "replicate", "seeds", "status", "path")
LOCK = "manifest.lock"
#: created by an interrupted sweep: its workers stop their runs at the next chunk
STOP = "manifest.stop"
#: seconds an interrupted sweep waits for its running runs to checkpoint and stop
STOP_GRACE = 30.0
#: written by the parent once fewer runs are left than its workers could run: the Numba threads
#: each remaining run takes at its next chunk (a share of the cores left idle)
THREADS = "manifest.threads"


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
        :func:`wgflow.files.h5md.load`)."""
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
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        sweep = Sweep(Path(directory), manifest["sweep"], manifest["runs"])
        missing = [key for key in ("base", "grid", "seeds", "root_seed")
                   if key not in sweep.description]
        missing += [key for entry in sweep.runs for key in ENTRY_FIELDS if key not in entry]
        if missing:
            raise KeyError(missing[0])
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{path} is not a wgflow sweep manifest ({type(err).__name__}: "
                         f"{err}); give the --out directory of `wgflow sweep` or `wgflow "
                         "study`, or remove the file") from None
    return sweep


def write_manifest(sweep: Sweep) -> None:
    """Write ``sweep``'s manifest atomically; a write that fails (a full disk) removes its
    temporary file and leaves the previous manifest in place."""
    path = sweep.directory / MANIFEST
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"sweep": sweep.description, "runs": sweep.runs}, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError):
            raise OSError(f"writing {path} failed ({err}); the run files are kept: make room "
                          "(a full disk?) and run the same command again") from None
        raise


def file_status(path) -> str | None:
    """The status written in the run file ``path``, ``None`` if missing or unreadable."""
    try:
        return read_parameters(path)["status"]
    except (OSError, ValueError, KeyError):
        return None


def execute(config: dict, path: str, threads: int | None,
            stop_file: str | None = None, threads_file: str | None = None
            ) -> tuple[str, float, str]:
    """The task a worker runs: resume or run one sweep run into ``path`` with at most
    ``threads`` Numba threads and no progress bar; ``(status, wall seconds, error message)``.
    The run stops (status ``interrupted``, resumable) on SIGINT/SIGTERM or, given a
    ``stop_file``, once it exists or the worker's sweep has died (``_watch_parent``). Given a
    ``threads_file`` (:data:`THREADS`), the run takes the thread count written there, if any,
    at each chunk (its results do not depend on it)."""
    import numba

    previous = numba.get_num_threads()
    if threads:
        _set_threads(threads)
    tic = time.perf_counter()

    def stop() -> bool:  # asked between chunks
        if threads_file is not None:
            _set_threads(_read_threads(threads_file) or threads)
        return _ORPHANED.is_set() or Path(stop_file).exists()

    if stop_file is None:
        stop = None
    elif stop():  # the sweep is stopping: do not start
        return "pending", None, ""
    _BETWEEN_RUNS.clear()
    try:
        status = _resume_or_run(config, path, stop)
    except RunInterrupted as stopped:
        return "interrupted", time.perf_counter() - tic, str(stopped)
    except Exception as err:  # recorded in the manifest; the other runs go on
        return "failed", time.perf_counter() - tic, f"{type(err).__name__}: {err}"
    finally:
        numba.set_num_threads(previous)
        _BETWEEN_RUNS.set()
    return status, time.perf_counter() - tic, ""


def _set_threads(threads: int | None) -> None:
    import numba

    if threads:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _read_threads(path: str) -> int | None:
    """The thread count in ``path`` (:data:`THREADS`); ``None`` while there is none."""
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _share_idle_cores(directory: Path, cores: int | None, threads: int, left: int) -> None:
    """Once the runs ``left`` could take more than ``threads`` each of the ``cores``, write the
    threads each takes (:data:`THREADS`, atomically); without ``cores`` (workers on other
    machines), nothing. A write that fails (a full disk) leaves the runs their threads."""
    if cores is None or left == 0 or cores // left <= threads:
        return
    path, share = directory / THREADS, cores // left
    if _read_threads(path) != share:
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(str(share))
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)


def _resume_or_run(config: dict, path: str, stop) -> str:
    if file_status(path) == "running" and checkpoint_path(path).exists():
        with contextlib.suppress(ValueError):  # a stale checkpoint: start again below
            return resume_file(path, progress=False, stop=stop)
    if Path(path).exists() and not is_trajectory(path):  # the sweep's own file, unreadable
        with exclusive(lock_path(path), f"the run file {path}"):  # unless a run writes it
            if not is_trajectory(path):
                Path(path).unlink(missing_ok=True)
    return run_to_file(config, path, progress=False, overwrite=True, stop=stop)


def expected_work(config: dict) -> float:
    """The order of magnitude of a run's work, by which a sweep hands its longest runs to its
    workers first: ``size · T/dt · orbit`` with ``size = init.N`` particles (``pde.cells``
    per axis for a grid PDE run), ``dt = run.dt``, or when that is 0, ``1/N`` for SGD and
    ``1e-2`` otherwise, and ``orbit`` the group's Haar nodes that FA and DA-orbit evaluate per
    sample (1 for the other schemes). Only the order of the runs depends on it, never their
    results."""
    size = config["pde.cells"] if config["run.solver"] == "pde" else config["init.N"]
    dt = config["run.dt"] or (1.0 / config["init.N"] if config["run.dynamics"] == "sgd"
                              else 1e-2)
    work = size * config["run.T"] / dt
    if config["run.solver"] == "particles" and config["run.scheme"] in ORBIT_SCHEMES:
        work *= _orbit_nodes(json.dumps({k: v for k, v in config.items()
                                         if k.startswith(("problem.", "files."))}))
    return work


@functools.lru_cache(maxsize=64)
def _orbit_nodes(problem_keys: str) -> int:
    """Haar nodes of the group of the problem ``problem_keys`` (a config's ``problem.*`` and
    ``files.*`` keys, as JSON); 1 when it has no group or cannot be built: such a run fails at
    once, whatever its place."""
    try:
        symmetry = problems.problem_of(json.loads(problem_keys)).symmetry
    except (ValueError, OSError):
        return 1
    return 1 if symmetry is None else len(symmetry.elements()[1])


def ignore_interrupts() -> None:
    """Initializer of local worker processes: a terminal's Ctrl-C, or a SIGTERM to the whole
    process group (``timeout``, a batch system's time limit), reaches every worker; a worker
    ignores both between runs (a run in progress stops gracefully itself), since one that died
    would break the pool and the sweep's parent stops the sweep itself. It also watches its
    parent (``_watch_parent``)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    _watch_parent(os.getppid())


#: seconds between a worker's checks that the sweep's parent process still runs
PARENT_CHECK_SECONDS = 1.0
#: set in a worker whose sweep's parent has died: its run stops as on a stop request
_ORPHANED = threading.Event()
#: set while no run is in progress in this process
_BETWEEN_RUNS = threading.Event()
_BETWEEN_RUNS.set()


def _watch_parent(parent: int) -> None:
    """A worker whose sweep's parent was killed (``kill -9``, no stop file) would wait for
    runs forever, holding its memory: a thread checks the parent every
    :data:`PARENT_CHECK_SECONDS`; once it is gone, the run in progress stops (resumable, its
    checkpoint kept) and the worker exits."""
    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        _ORPHANED.set()
        _BETWEEN_RUNS.wait()
        os._exit(1)

    threading.Thread(target=watch, name="wgflow-parent-watch", daemon=True).start()


def _outcomes(sweep: Sweep, todo: list, executor, threads, stopping, cores=None):
    """Yield ``(entry, (status, wall time, error))`` as the runs of ``todo`` finish: in order
    without an executor, else submitted longest first (:func:`expected_work`; ties in plan
    order), so that no long run starts last, and with ``cores``, the last runs share the cores
    that finished runs leave idle (:func:`_share_idle_cores`). When ``stopping()`` turns true,
    the runs not started are cancelled and the running ones are asked to stop (the stop file),
    then waited for at most :data:`STOP_GRACE` seconds."""
    stop_file = sweep.directory / STOP
    threads_file = None if executor is None or cores is None else sweep.directory / THREADS
    tasks = [(entry, (sweep.config(entry), str(sweep.directory / entry["path"]), threads,
                      str(stop_file), threads_file and str(threads_file))) for entry in todo]
    if executor is None:
        for entry, args in tasks:
            outcome = execute(*args)
            yield entry, outcome
            if outcome[0] == "interrupted" or stopping():
                return
        return
    tasks.sort(key=lambda task: -expected_work(task[1][0]))
    futures = {executor.submit(execute, *args): entry for entry, args in tasks}
    pending, deadline = set(futures), None
    try:
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            _share_idle_cores(sweep.directory, cores, threads, len(pending))
            for future in done:
                if future.cancelled():
                    continue
                try:
                    outcome = future.result()
                except Exception as err:  # the worker died (memory, a crash, a lost worker)
                    outcome = "failed", None, f"worker lost: {type(err).__name__}: {err}"
                yield futures[future], outcome
            if stopping() and deadline is None:
                stop_file.touch()
                for future in pending:
                    future.cancel()
                deadline = time.monotonic() + STOP_GRACE
            if deadline is not None and time.monotonic() > deadline:
                return
    finally:  # interrupted: drop the runs not started
        for future in futures:
            future.cancel()
        with contextlib.suppress(OSError):
            if all(future.done() for future in futures):
                stop_file.unlink(missing_ok=True)
            else:  # runs still going or queued (a second Ctrl-C): they stop, or do not start
                stop_file.touch()  # removed by the next sweep in this directory


def adopt_previous(sweep: Sweep) -> None:
    """Keep the wall times of a previous run of the same sweep in ``sweep.directory``; refuse a
    directory holding another sweep (another base config or root seed: a grown grid or more
    replicates of the same sweep are the same sweep, extended)."""
    path = sweep.directory / MANIFEST
    if not path.is_file():
        return
    stored = read_sweep(sweep.directory)
    previous, current = stored.description, json.loads(json.dumps(sweep.description))
    if (configuration.non_default(previous["base"]) != configuration.non_default(current["base"])
            or any(previous.get(k) != current[k] for k in ("root_seed", "label"))):
        raise ValueError(f"{sweep.directory} holds another sweep or study (its {MANIFEST} has "
                         "another base config, root seed or study); choose another output "
                         "directory")
    times = {entry["id"]: entry["wall_time"] for entry in stored.runs}
    for entry in sweep.runs:
        entry["wall_time"] = times.get(entry["id"])


def run_sweep(base_config: dict, grid, out_dir, *, seeds: int = 1, root_seed: int | None = None,
              executor=None, progress: bool = True, threads_per_worker: int | None = None,
              cores: int | None = None, label: dict | None = None) -> Sweep:
    """Run the sweep of ``base_config`` (flat dotted keys) over ``grid`` with ``seeds``
    replicates into ``out_dir``; return it with every entry's final status.

    ``executor``: any :class:`concurrent.futures.Executor` (``None``: serially, in this
    process); ``threads_per_worker``: the Numba threads of each run (default: 1 with an
    executor, so that its workers do not oversubscribe the cores; unchanged without one);
    ``cores``: the cores the executor's workers share (a local pool), so that once fewer runs
    are left than workers, those left take the idle cores (``None``: workers on other machines;
    each run keeps ``threads_per_worker``);
    ``label``: what the sweep is (a built-in study), kept in the manifest. Paths are absolute, so
    workers on other machines (Dask) need ``out_dir`` on a shared file system.
    """
    sweep = replace(plan(base_config, grid, seeds=seeds, root_seed=root_seed),
                    directory=Path(out_dir).resolve())
    sweep.description["label"] = label
    if threads_per_worker is None and executor is not None:
        threads_per_worker = 1
    if cores is not None:
        _count(cores, "cores", 1)
    sweep.directory.mkdir(parents=True, exist_ok=True)
    with exclusive(sweep.directory / LOCK, f"the sweep directory {sweep.directory}"), \
            stop_requests() as stopping:
        adopt_previous(sweep)
        (sweep.directory / STOP).unlink(missing_ok=True)  # left by a sweep killed while stopping
        (sweep.directory / THREADS).unlink(missing_ok=True)
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
            with contextlib.closing(_outcomes(sweep, todo, executor, threads_per_worker,
                                              stopping, cores)) as done:
                for entry, (status, wall_time, error) in done:
                    entry.update(status=status, wall_time=wall_time, error=error)
                    write_manifest(sweep)
                    bar.update()
        finally:
            bar.close()
            (sweep.directory / THREADS).unlink(missing_ok=True)
        if stopping() or any(entry["status"] == "interrupted" for entry in sweep.runs):
            counts = sweep.counts()
            raise RunInterrupted(
                f"sweep interrupted: {counts.get('complete', 0)} of {len(sweep.runs)} runs "
                f"complete, {counts.get('interrupted', 0)} stopped at a checkpoint, "
                f"{counts.get('pending', 0)} not started; run the same command again to "
                f"continue (manifest {sweep.directory / MANIFEST})", stopping())
    return sweep
