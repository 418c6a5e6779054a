"""Runs that users keep: a config run into a trajectory file, checkpointed, resumable.

``run_to_file`` writes the initial frame, then every frame as it is produced (flushed), and a
checkpoint every ``output.checkpoint_every`` frames and at the end. ``resume_file`` rebuilds the
run from the config stored in the file, truncates the frames written after the last checkpoint
and continues from it, so the finished file equals an uninterrupted run's bit for bit.
"""

from __future__ import annotations

import json
import sys
import warnings

from . import config as configuration
from .dynamics import FlowCursor, cursor, frames, prepare
from .storage import (
    TrajectoryFile,
    checkpoint_path,
    read_checkpoint,
    read_parameters,
    versions,
    write_checkpoint,
)


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


def _continue(run, out: TrajectoryFile, path, start: FlowCursor, every: int, progress) -> str:
    total = -(-run.n_steps // run.record_every)
    bar = progress_bar(total, out.frames - 1, progress)
    try:
        for frame in frames(run, start):
            out.append(frame)
            bar.update()
            if (out.frames - 1) % every == 0 or frame.step == run.n_steps:
                write_checkpoint(path, cursor(run, frame), out.frames)
        out.set_status(run.status, getattr(run, "message", ""))
    finally:
        bar.close()
        out.close()
    return run.status


def run_to_file(config: dict, path, progress: bool = True) -> str:
    """Run the checked ``config`` into the trajectory file ``path``; return the status."""
    problem, init, options = configuration.build(config)
    run, first = prepare(problem, init, **options)
    checkpoint_path(path).unlink(missing_ok=True)  # a previous run's checkpoint is not ours
    out = TrajectoryFile.create(path, config=config, run_config=run.config, seeds=run.seeds,
                                n=first.theta.shape[0], dim=first.theta.shape[1],
                                dtype=first.theta.dtype, observables=run.names,
                                teacher=None if problem.teacher is None
                                else problem.teacher.particles, symmetry=problem.symmetry)
    out.append(first)
    start = cursor(run, first)
    write_checkpoint(path, start, out.frames)
    return _continue(run, out, path, start, config["output.checkpoint_every"], progress)


def resume_file(path, progress: bool = True) -> str:
    """Continue the interrupted run in ``path`` from its last checkpoint; return the status."""
    params = read_parameters(path)
    if params["status"] in ("complete", "diverged"):
        return params["status"]
    config = configuration.checked(params["config"])
    if not checkpoint_path(path).exists():
        raise ValueError(f"{path} has no checkpoint to resume from (killed before its first "
                         "checkpoint?); start it again with `wgflow run`")
    start, n_frames = read_checkpoint(path)
    changed = {k: (v, versions()[k]) for k, v in params["versions"].items()
               if versions().get(k) != v}
    if changed:
        warnings.warn(f"resuming {path} with other library versions than it started with "
                      f"({', '.join(f'{k} {a} → {b}' for k, (a, b) in changed.items())}): the "
                      "frames after the checkpoint may differ from an uninterrupted run in the "
                      "last bits", stacklevel=2)
    problem, init, options = configuration.build(config)
    run, _ = prepare(problem, init, **options)
    if json.loads(json.dumps(run.config)) != params["run_config"]:
        raise ValueError(f"{path} was written by another version of the run description; "
                         "start it again with `wgflow run`")
    out = TrajectoryFile.open(path)
    if n_frames > out.frames:
        out.close()
        raise ValueError(f"the checkpoint of {path} is ahead of its frames (from another run?); "
                         "start it again with `wgflow run`")
    out.truncate(n_frames)
    return _continue(run, out, path, start, config["output.checkpoint_every"], progress)
