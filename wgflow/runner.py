"""Runs that users keep: a config run into a trajectory file, checkpointed, resumable.

``run_to_file`` takes the file's lock (``<file>.lock``, :mod:`wgflow.files.locks`) before it touches
anything, refuses to replace a file that is not a wgflow trajectory (and a trajectory unless
``overwrite``), writes the initial frame, then every frame as it is produced (flushed), and a
checkpoint every ``output.checkpoint_every`` frames and at the end. ``resume_file`` checks that
the checkpoint belongs to the file (:func:`wgflow.files.checkpoints.check_resumable`) before it
modifies anything, truncates the frames written after the checkpoint and continues from it, so
the finished file equals an uninterrupted run's bit for bit.

The config's ``run.solver`` picks what is stepped: the particle system
(:func:`wgflow.dynamics.prepare`, :func:`~wgflow.dynamics.frames`) into a particle trajectory,
or the grid PDE (:func:`wgflow.pde.prepare`, :func:`~wgflow.pde.frames`) into a density file;
the file, its lock, checkpoints, space checks and stops are the same.

SIGINT (Ctrl-C) and SIGTERM stop a run between two chunks of steps (a fraction of a second),
after a last checkpoint: :class:`RunInterrupted` says how to resume. A second signal stops at
once; the file then holds every complete frame and resumes from the previous checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import config as configuration
from . import pde, resources
from .dynamics import Interrupted, cursor, frames, prepare
from .files.checkpoints import (
    check_resumable,
    checkpoint_path,
    new_identity,
    read_checkpoint,
    state_of,
    write_checkpoint,
)
from .files.h5md import (
    FRAMES_PER_CHUNK,
    TrajectoryFile,
    check_output,
    main_series,
    open_read,
    read_parameters,
    require_space,
    versions,
)
from .files.locks import exclusive

#: the signals that stop a run gracefully
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class RunInterrupted(KeyboardInterrupt):
    """A run stopped on request after saving a checkpoint; ``str()`` says how to resume;
    ``signal`` is the signal number that asked (``SIGINT`` for a stop request, or when the
    signal went to another process: a sweep's worker)."""

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signal = signum or signal.SIGINT


def progress_bar(total: int, initial: int, enabled: bool, unit: str = "frame"):
    """A tqdm bar over ``total`` items when ``enabled`` and stderr is a terminal, else a no-op."""
    if not (enabled and sys.stderr.isatty()):
        return _NoBar()
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit=unit, file=sys.stderr)


class _NoBar:
    def update(self, n=1):
        pass

    def close(self):
        pass


@contextlib.contextmanager
def stop_requests(extra=None):
    """Yield ``stop()``: the number of the first SIGINT/SIGTERM received inside the block (0
    before one), or ``SIGINT`` when ``extra()`` is true. A second signal raises
    ``KeyboardInterrupt`` at once. Signal handlers can only be set in the main thread; in
    other threads only ``extra`` is asked."""
    received = []

    def stop() -> int:
        return received[0] if received else (signal.SIGINT if extra and extra() else 0)

    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, _frame):
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class Solver(NamedTuple):
    """How a run file is stepped: ``frames(run, start, stop)`` yields the frames after the
    checkpointable ``start``, ``cursor(run, frame)`` gives the state after a frame,
    ``total(run)`` the number of frames after the initial one."""

    frames: Callable
    cursor: Callable
    total: Callable


SOLVERS = {
    "particles": Solver(frames, cursor, lambda run: -(-run.n_steps // run.record_every)),
    "pde": Solver(pde.frames, pde.cursor, lambda run: len(run.targets)),
}


def _prepare(config: dict, force: bool):
    """``(solver, problem, run, first frame)`` of the checked ``config``."""
    problem, init, options = configuration.build(config, force=force)
    if config["run.solver"] == "pde":
        return (SOLVERS["pde"], problem, *pde.prepare(problem, init, **options))
    return (SOLVERS["particles"], problem,
            *prepare(problem, init, keep_frames=False, force=True, **options))


def _create(path, config: dict, problem, run, first, identity: dict) -> TrajectoryFile:
    """The new run file for ``run``, whose initial frame is ``first``."""
    if isinstance(first, pde.DensityFrame):
        return TrajectoryFile.create_density(
            path, config=config, run_config=run.config, centers=run.grid.centers(),
            cell_volume=run.grid.cell_volume, box=run.config["box"], basis=run.basis,
            observables={k: np.shape(v) for k, v in first.observables.items()},
            symmetry=problem.symmetry, identity=identity)
    return TrajectoryFile.create(path, config=config, run_config=run.config, seeds=run.seeds,
                                 n=first.theta.shape[0], dim=first.theta.shape[1],
                                 dtype=first.theta.dtype, observables=run.names,
                                 teacher=None if problem.teacher is None
                                 else problem.teacher.particles, symmetry=problem.symmetry,
                                 identity=identity)


def lock_path(path) -> Path:
    """The lock of the run file ``path``, beside the file a symlink ``path`` points to: two
    names of one file take one lock."""
    return Path(f"{os.path.realpath(path)}.lock")


def _write_failed(path, err: OSError) -> OSError:
    return OSError(f"writing {path} failed ({err}); the frames and the checkpoint written "
                   "before are kept: make room (a full disk?) and continue with "
                   f"`wgflow resume {path}`")


def _continue(solver: Solver, run, out: TrajectoryFile, path, start, every: int, progress,
              identity: dict, stop) -> str:
    total = solver.total(run)
    bar = progress_bar(total, out.frames - 1, progress)
    try:
        try:
            for frame in solver.frames(run, start, stop):
                out.append(frame)
                bar.update()
                if (out.frames - 1) % every == 0 or out.frames - 1 == total:
                    write_checkpoint(path, solver.cursor(run, frame), out.frames, identity)
        except Interrupted as stopped:
            try:
                write_checkpoint(path, stopped.position, out.frames, identity)
            except OSError as err:
                raise _write_failed(path, err) from None
            of = "" if run.n_steps is None else f" of {run.n_steps}"
            raise RunInterrupted(
                f"interrupted at step {stopped.position.step}{of} (t = "
                f"{stopped.position.t:.6g}); {path} keeps its {out.frames} "
                f"frame{'s' * (out.frames != 1)} and a checkpoint: continue with "
                f"`wgflow resume {path}`", stop()) from None
        except OSError as err:
            raise _write_failed(path, err) from None
        out.set_status(run.status, getattr(run, "message", ""))
    except KeyboardInterrupt as err:  # a second signal: stopped at once, no new checkpoint
        if isinstance(err, RunInterrupted):
            raise
        raise RunInterrupted(f"stopped at once; {path} keeps its complete frames and its last "
                             f"checkpoint: continue with `wgflow resume {path}`",
                             stop()) from None
    finally:
        bar.close()
        closed = False
        with contextlib.suppress(OSError):  # a failed write can fail the close too
            out.close()
            closed = True
    if closed:  # finished (complete or diverged) and on disk
        _drop_finished_checkpoint(path)
    return run.status


def _drop_finished_checkpoint(path) -> None:
    """Remove the checkpoint of a finished run, which has nothing left to resume; one that
    cannot be removed (a read-only directory) is harmless and stays."""
    with contextlib.suppress(OSError):
        checkpoint_path(path).unlink(missing_ok=True)


@resources.collecting_less
def run_to_file(config: dict, path, progress: bool = True, *, overwrite: bool = False,
                force: bool = False, stop=None) -> str:
    """Run the checked ``config`` into the trajectory file ``path``; return the status.

    ``overwrite``: replace an existing wgflow trajectory (never another file); ``force``:
    skip the memory refusal and the long-run warning (:mod:`wgflow.resources`); ``stop``: a
    callable asked between chunks, besides SIGINT and SIGTERM, whether to stop. A stopped run
    raises :class:`RunInterrupted` after its checkpoint."""
    path = Path(path)
    check_output(path, overwrite)
    with exclusive(lock_path(path), f"the run file {path}"), stop_requests(stop) as stopping:
        check_output(path, overwrite)  # again, now that no other run can write it
        solver, problem, run, first = _prepare(config, force)
        identity = new_identity(config)
        start = solver.cursor(run, first)
        require_space(path, (FRAMES_PER_CHUNK + 2) * state_of(start)[1].nbytes)
        checkpoint_path(path).unlink(missing_ok=True)  # a previous run's checkpoint is not ours
        out = _create(path, config, problem, run, first, identity)
        try:
            out.append(first)
            write_checkpoint(path, start, out.frames, identity)
        except BaseException:  # the new file holds nothing yet: leave no trace of it
            out.close()
            path.unlink(missing_ok=True)
            checkpoint_path(path).unlink(missing_ok=True)
            raise
        return _continue(solver, run, out, path, start, config["output.checkpoint_every"],
                         progress, identity, stopping)


def _frame_reader(path):
    """``(step, theta)`` (or ``(step, rho)``) of frame ``i`` of the file ``path``."""
    def read(i):
        with open_read(path) as h5:
            series = h5[main_series(h5)]
            return int(series["step"][i]), series["value"][i]
    return read


@resources.collecting_less
def resume_file(path, progress: bool = True, *, force: bool = False, stop=None) -> str:
    """Continue the interrupted run in ``path`` from its last checkpoint; return the status.
    Everything is checked before the file is modified; options as :func:`run_to_file`."""
    path = Path(path)
    read_parameters(path)  # a clear error for a missing or foreign file, before the lock
    with exclusive(lock_path(path), f"the run file {path}"), stop_requests(stop) as stopping:
        params = read_parameters(path)
        if params["status"] in ("complete", "diverged"):  # nothing to resume
            _drop_finished_checkpoint(path)  # one an earlier build kept
            return params["status"]
        try:
            config = configuration.checked(params["config"])
        except ValueError as err:
            raise ValueError(f"{path} stores a config this wgflow cannot run ({err})") from None
        start, n_frames, identity = read_checkpoint(path)
        check_resumable(path, params, config, start, n_frames, identity, _frame_reader(path))
        now = versions()
        changed = {k: (v, now.get(k)) for k, v in params["versions"].items() if now.get(k) != v}
        if changed:
            warnings.warn(f"resuming {path} with other library versions than it started with "
                          f"({', '.join(f'{k} {a} → {b}' for k, (a, b) in changed.items())}): "
                          "the frames after the checkpoint may differ from an uninterrupted "
                          "run in the last bits", stacklevel=2)
        solver, _, run, _ = _prepare(config, force)
        if json.loads(json.dumps(run.config)) != params["run_config"]:
            raise ValueError(f"{path} was written by another version of the run description; "
                             "start it again with `wgflow run --overwrite`")
        out = TrajectoryFile.open(path)
        try:
            out.truncate(n_frames)
        except BaseException:
            out.close()
            raise
        return _continue(solver, run, out, path, start, config["output.checkpoint_every"],
                         progress, identity, stopping)
