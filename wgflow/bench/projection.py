"""Projected wall time of the paper's sweep, from short runs of the sweep's own task.

What is measured
----------------
A sweep run is the task a sweep worker executes (:func:`wgflow.sweep.execute`: the checked
config, ``T·N = 20 N`` SGD steps, the default 20 frames (and the initial one) of the default
observables, ``distance_to_WI``'s transport problem included, the run file and its
checkpoints), on one Numba thread. Each ``(scheme, N)`` of :data:`SWEEP` is run that way into a
temporary directory, after one tiny run of the scheme that loads its kernels:

* in full when it takes at most ``max_steps`` steps;
* otherwise in three shorter runs, each timed :data:`REPEATS` times and the median taken
  (from one timing each, a busy 2-vCPU machine gave the vanilla ``N = 5000`` run's steps 9–20 %
  too little time, and the ``N = 5000`` runs dominate the sweep): with one frame after the
  initial one and ``1`` or ``S = max_steps`` steps, and with :data:`FRAME_STEPS` steps of one
  frame each. The first is the run's fixed cost ``a`` (the problem, the first particles, the
  file, two frames); the second, ``a + S·b``, gives ``b``, the time of a step, from a
  difference dominated by the steps; the third, beyond ``a`` and its steps, the time of a frame
  ``c`` (its observables, ``distance_to_WI``'s transport problem included, its write and its
  share of checkpoints). The run takes
  ``a + (F − 2)·c + steps·b`` with ``F = 21`` frames.

A worker process first pays its start (interpreter, imports, every scheme's kernels from the
on-disk cache), timed by starting one that makes a tiny run of each scheme.

How it scales
-------------
A run of ``N`` particles costs ``a(N) + 20 N · b(N)`` with ``b ∝ N`` (a step moves ``N``
particles against a batch of 20): the sweep grows as ``N²`` and its ``N = 5000`` runs dominate.
The teacher only changes the labels, so every teacher costs the same, and the full sweep is
:data:`SWEEP`'s teachers × seeds replicates of the measured one. The wall time on ``K``
workers is that of the sweep's schedule (:func:`wgflow.sweep.expected_work`): the runs are
handed out longest first, each to the first free worker, every worker first busy for its
start. The runs are measured one at a time; a machine whose other work, or whose ``K``
simultaneous workers, slow its cores down runs the sweep slower than projected. The schedule
leaves out that the last runs take the cores of idle workers (``manifest.threads``): the
sweep's tail runs faster than projected.
"""

from __future__ import annotations

import heapq
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .. import config as configuration
from ..sweep import FINISHED, execute, expected_work

#: the paper's full sweep: grid values (in the sweep's grid order), teachers, replicates
SWEEP = {"schemes": ("vanilla", "DA", "FA", "EA"), "N": (5, 10, 50, 100, 500, 1000, 5000),
         "teachers": 3, "seeds": 10}
#: the teacher of the measured one-replicate sweep (``--set problem.teacher=WI``)
TEACHER = "WI"
#: steps of a run timed in full; longer runs are timed at this many steps and twice as many
MAX_STEPS = 2000
#: steps (one per frame) of the run that times the frames of a run too long to time in full
FRAME_STEPS = 5
#: timings (the median counts) of each shorter run of a run too long to time in full
REPEATS = 3
#: the tiny run that loads a scheme's kernels (from the on-disk cache)
WARM_UP = {"init.N": 5, "run.T": 1.0}
#: what a fresh worker does before its first run: start, import, a tiny run of each scheme
_WORKER_START = """
import sys, tempfile
from wgflow import config, sweep
from wgflow.bench.projection import WARM_UP
with tempfile.TemporaryDirectory() as tmp:
    for scheme in sys.argv[1:]:
        cfg = config.checked({**config.DEFAULTS, **WARM_UP, "run.scheme": scheme})
        status, _, error = sweep.execute(cfg, tmp + "/run.h5", 1)
        if status not in sweep.FINISHED:
            sys.exit(f"the worker-start run of {scheme} ended {status}: {error}")
"""


def _run_seconds(cfg: dict, directory: Path) -> float:
    """Wall time of the sweep task on ``cfg`` (one thread), into a fresh file."""
    path = directory / f"run{time.perf_counter_ns()}.h5"
    status, seconds, error = execute(configuration.checked(cfg), str(path), 1)
    if status not in FINISHED:
        raise RuntimeError(f"a projection run ended {status}: {error}")
    return seconds


def _worker_start_seconds(schemes) -> float:
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-c", _WORKER_START, *schemes], check=True)
    return time.perf_counter() - tic


def schedule_seconds(durations: list[float], workers: int, start: float = 0.0) -> float:
    """Wall time of running ``durations`` in order, each on the first free of ``workers``
    workers, every worker first busy for ``start`` seconds."""
    free = [start] * workers
    for seconds in durations:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def _config(scheme: str, n: int, teacher: str) -> dict:
    return {**configuration.DEFAULTS, "problem.teacher": teacher, "run.scheme": scheme,
            "init.N": n}


@dataclass(frozen=True)
class RunTime:
    """A run's projected wall ``seconds`` and, for a run too long to time in full, the parts of
    it in ``steps`` (``steps · b``) and in ``frames`` (the 19 frames beyond two: ``19 c``);
    ``None`` for a run timed in full."""

    seconds: float
    steps: float | None = None
    frames: float | None = None


def run_times(teacher: str = TEACHER, max_steps: int = MAX_STEPS) -> dict:
    """``{(scheme, N): RunTime}`` for every run of one replicate (the module docstring)."""
    times = {}
    extra_frames = configuration.DEFAULTS["run.frames"] - 1
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)

        def seconds(cfg: dict, steps: int, frames: int) -> float:
            changes = {"run.T": steps / cfg["init.N"], "run.frames": frames}
            return statistics.median(_run_seconds({**cfg, **changes}, directory)
                                     for _ in range(REPEATS))

        for scheme in SWEEP["schemes"]:
            _run_seconds({**_config(scheme, 5, teacher), **WARM_UP}, directory)
            for n in SWEEP["N"]:
                cfg = _config(scheme, n, teacher)
                steps = round(cfg["run.T"] * n)
                if steps <= max_steps:
                    times[scheme, n] = RunTime(_run_seconds(cfg, directory))
                    continue
                fixed, long = (seconds(cfg, k, 1) for k in (1, max_steps))
                per_step = max(long - fixed, 0.0) / (max_steps - 1)
                framed = seconds(cfg, FRAME_STEPS, FRAME_STEPS)
                per_frame = max(framed - fixed - (FRAME_STEPS - 1) * per_step,
                                0.0) / (FRAME_STEPS - 1)
                times[scheme, n] = RunTime(
                    fixed + extra_frames * per_frame + (steps - 1) * per_step,
                    steps * per_step,
                    extra_frames * per_frame)
    return times


def sweep_projection(workers: int, teacher: str = TEACHER, max_steps: int = MAX_STEPS) -> dict:
    """The projection for ``workers`` worker processes of one Numba thread each (the module
    docstring): ``one_replicate_seconds`` (one seed and one teacher: ``len(schemes)·len(N)``
    runs, the sweep one can time) and ``projected_seconds`` (every teacher and replicate), with
    ``core_seconds`` (the runs' total), ``worker_start_s`` and ``{"scheme N": seconds}`` maps
    of each run's projected time and of its parts (:class:`RunTime`): ``run_seconds``,
    ``step_seconds``, ``frame_seconds``."""
    times = run_times(teacher, max_steps)
    start = _worker_start_seconds(SWEEP["schemes"])
    plan = [(scheme, n) for scheme in SWEEP["schemes"] for n in SWEEP["N"]]
    work = {run: expected_work(configuration.checked(_config(*run, teacher))) for run in plan}
    replicates = SWEEP["teachers"] * SWEEP["seeds"]

    def wall(runs: list) -> float:  # the sweep's order: longest first, ties in plan order
        return schedule_seconds([times[run].seconds
                                 for run in sorted(runs, key=lambda r: -work[r])],
                                workers, start)

    def parts(field: str) -> dict:
        return {f"{s} {n}": getattr(times[s, n], field) for s, n in plan}

    return {"case": "paper-sweep-projection", "backend": "numba", "workers": workers,
            "runs": len(plan) * replicates, "worker_start_s": start,
            "core_seconds": sum(times[run].seconds for run in plan) * replicates,
            "one_replicate_seconds": wall(plan), "projected_seconds": wall(plan * replicates),
            "run_seconds": parts("seconds"), "step_seconds": parts("steps"),
            "frame_seconds": parts("frames")}
