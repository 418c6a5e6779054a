"""Runs that users keep: a config run into a trajectory file, checkpointed, resumable.

``run_to_file`` takes the file's lock (``<file>.lock``, :mod:`wgflow.files.locks`) before it touches
anything, refuses to replace a file that is not a wgflow trajectory (and a trajectory unless
``overwrite``), writes the initial frame, then every frame as it is produced (flushed), and a
checkpoint every ``output.checkpoint_every`` frames and at the end. ``resume_file`` checks that
the checkpoint belongs to the file (:func:`wgflow.files.checkpoints.check_resumable`) before it
modifies anything, truncates the frames written after the checkpoint and continues from it, so
the finished file equals an uninterrupted run's bit for bit.

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
from pathlib import Path

from . import config as configuration
from .dynamics import FlowCursor, Interrupted, cursor, frames, prepare
from .files.checkpoints import (
    check_resumable,
    checkpoint_path,
    new_identity,
    read_checkpoint,
    write_checkpoint,
)
from .files.h5md import (
    FRAMES_PER_CHUNK,
    TrajectoryFile,
    check_output,
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


def lock_path(path) -> Path:
    """The lock of the run file ``path``, beside the file a symlink ``path`` points to: two
    names of one file take one lock."""
    return Path(f"{os.path.realpath(path)}.lock")


def _write_failed(path, err: OSError) -> OSError:
    return OSError(f"writing {path} failed ({err}); the frames and the checkpoint written "
                   "before are kept: make room (a full disk?) and continue with "
                   f"`wgflow resume {path}`")


def _continue(run, out: TrajectoryFile, path, start: FlowCursor, every: int, progress,
              identity: dict, stop) -> str:
    total = -(-run.n_steps // run.record_every)
    bar = progress_bar(total, out.frames - 1, progress)
    try:
        try:
            for frame in frames(run, start, stop):
                out.append(frame)
                bar.update()
                if (out.frames - 1) % every == 0 or frame.step == run.n_steps:
                    write_checkpoint(path, cursor(run, frame), out.frames, identity)
        except Interrupted as stopped:
            try:
                write_checkpoint(path, stopped.position, out.frames, identity)
            except OSError as err:
                raise _write_failed(path, err) from None
            raise RunInterrupted(
                f"interrupted at step {stopped.position.step} of {run.n_steps} (t = "
                f"{stopped.position.t:.6g}); {path} keeps its {out.frames} frames and a "
                f"checkpoint: continue with `wgflow resume {path}`", stop()) from None
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
        with contextlib.suppress(OSError):  # a failed write can fail the close too
            out.close()
    return run.status


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
        problem, init, options = configuration.build(config, force=force)
        run, first = prepare(problem, init, keep_frames=False, force=True, **options)
        identity = new_identity(config)
        require_space(path, (FRAMES_PER_CHUNK + 2) * first.theta.nbytes)
        checkpoint_path(path).unlink(missing_ok=True)  # a previous run's checkpoint is not ours
        out = TrajectoryFile.create(path, config=config, run_config=run.config, seeds=run.seeds,
                                    n=first.theta.shape[0], dim=first.theta.shape[1],
                                    dtype=first.theta.dtype, observables=run.names,
                                    teacher=None if problem.teacher is None
                                    else problem.teacher.particles, symmetry=problem.symmetry,
                                    identity=identity)
        try:
            out.append(first)
            start = cursor(run, first)
            write_checkpoint(path, start, out.frames, identity)
        except BaseException:  # the new file holds nothing yet: leave no trace of it
            out.close()
            path.unlink(missing_ok=True)
            checkpoint_path(path).unlink(missing_ok=True)
            raise
        return _continue(run, out, path, start, config["output.checkpoint_every"], progress,
                         identity, stopping)


def _frame_reader(path):
    """``(step, theta)`` of frame ``i`` of the file ``path``."""
    def read(i):
        with open_read(path) as h5:
            pos = h5["particles/student/position"]
            return int(pos["step"][i]), pos["value"][i]
    return read


def resume_file(path, progress: bool = True, *, force: bool = False, stop=None) -> str:
    """Continue the interrupted run in ``path`` from its last checkpoint; return the status.
    Everything is checked before the file is modified; options as :func:`run_to_file`."""
    path = Path(path)
    read_parameters(path)  # a clear error for a missing or foreign file, before the lock
    with exclusive(lock_path(path), f"the run file {path}"), stop_requests(stop) as stopping:
        params = read_parameters(path)
        if params["status"] in ("complete", "diverged"):
            return params["status"]
        try:
            config = configuration.checked(params["config"])
        except ValueError as err:
            raise ValueError(f"{path} stores a config this wgflow cannot run ({err})") from None
        start, n_frames, identity = read_checkpoint(path)
        check_resumable(path, params, config, start, n_frames, identity, _frame_reader(path))
        changed = {k: (v, versions()[k]) for k, v in params["versions"].items()
                   if versions().get(k) != v}
        if changed:
            warnings.warn(f"resuming {path} with other library versions than it started with "
                          f"({', '.join(f'{k} {a} → {b}' for k, (a, b) in changed.items())}): "
                          "the frames after the checkpoint may differ from an uninterrupted "
                          "run in the last bits", stacklevel=2)
        problem, init, options = configuration.build(config, force=force)
        run, _ = prepare(problem, init, keep_frames=False, force=True, **options)
        if json.loads(json.dumps(run.config)) != params["run_config"]:
            raise ValueError(f"{path} was written by another version of the run description; "
                             "start it again with `wgflow run --overwrite`")
        out = TrajectoryFile.open(path)
        try:
            out.truncate(n_frames)
        except BaseException:
            out.close()
            raise
        return _continue(run, out, path, start, config["output.checkpoint_every"], progress,
                         identity, stopping)
