"""Projected wall time of the paper's sweep, from runs of the sweep's own task.

A sweep run is the task a sweep worker executes (:func:`wgflow.sweep.execute`: the checked
config, ``20 N`` SGD steps, the default 20 frames of the default observables, the run file and
its checkpoints), on one Numba thread. Here each ``(scheme, N)`` of :data:`SWEEP` is run that
way into a temporary directory: in full when it takes at most ``max_steps`` steps, otherwise
twice, with ``S = max_steps`` and ``2S`` steps (the same 21 frames), and the run time taken
as the line ``a + b·steps`` through both (``b``: the time of a step, ``a``: everything
else). The teacher only changes the labels, so every teacher costs the same. A worker process
first pays its start (interpreter, imports, the kernels from the on-disk cache), timed by
starting one. The wall time of ``K`` workers is that of the sweep's schedule: runs start in the
sweep's order (scheme outer, ``N`` inner, replicate outermost), each on the first free worker.
"""

from __future__ import annotations

import heapq
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import config as configuration
from .sweep import FINISHED, execute

#: the paper's full sweep: grid values (in the sweep's grid order), teachers, replicates
SWEEP = {"schemes": ("vanilla", "DA", "FA", "EA"), "N": (5, 10, 50, 100, 500, 1000, 5000),
         "teachers": 3, "seeds": 10}
#: the teacher of the measured one-replicate sweep (``--set problem.teacher=WI``)
TEACHER = "WI"
#: steps of a run timed in full; longer runs are timed at this many steps and twice as many
MAX_STEPS = 2000
#: what a fresh worker does before its first run: start, import, one tiny run
_WORKER_START = """
import sys, tempfile
from wgflow import config, sweep
cfg = {**config.DEFAULTS, "init.N": 5, "run.T": 1.0, "run.scheme": sys.argv[1]}
with tempfile.TemporaryDirectory() as tmp:
    status, _, error = sweep.execute(config.checked(cfg), tmp + "/run.h5", 1)
if status not in sweep.FINISHED:
    sys.exit(f"the worker-start run ended {status}: {error}")
"""


def _run_seconds(cfg: dict, directory: Path) -> float:
    """Wall time of the sweep task on ``cfg`` (one thread), into a fresh file."""
    path = directory / f"run{time.perf_counter_ns()}.h5"
    status, seconds, error = execute(configuration.checked(cfg), str(path), 1)
    if status not in FINISHED:
        raise RuntimeError(f"a projection run ended {status}: {error}")
    return seconds


def _worker_start_seconds(scheme: str) -> float:
    tic = time.perf_counter()
    subprocess.run([sys.executable, "-c", _WORKER_START, scheme], check=True)
    return time.perf_counter() - tic


def schedule_seconds(durations: list[float], workers: int, start: float = 0.0) -> float:
    """Wall time of running ``durations`` in order, each on the first free of ``workers``
    workers, every worker first busy for ``start`` seconds."""
    free = [start] * workers
    for seconds in durations:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def run_times(teacher: str = TEACHER, max_steps: int = MAX_STEPS) -> dict:
    """``{(scheme, N): seconds}``: the projected time of every run of one replicate."""
    base = {**configuration.DEFAULTS, "problem.teacher": teacher}
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for scheme in SWEEP["schemes"]:
            cfg = {**base, "run.scheme": scheme}
            _run_seconds({**cfg, "init.N": 5, "run.T": 1.0}, directory)  # load its kernels
            for n in SWEEP["N"]:
                cfg = {**base, "run.scheme": scheme, "init.N": n}
                steps = round(cfg["run.T"] * n)
                if steps <= max_steps:
                    times[scheme, n] = _run_seconds(cfg, directory)
                    continue
                short, long = (_run_seconds({**cfg, "run.T": k * max_steps / n}, directory)
                               for k in (1, 2))
                per_step = max(long - short, 0.0) / max_steps
                times[scheme, n] = short + (steps - max_steps) * per_step
    return times


def sweep_projection(workers: int, teacher: str = TEACHER, max_steps: int = MAX_STEPS) -> dict:
    """The projection for ``workers`` worker processes of one Numba thread each:
    ``one_replicate_seconds`` (one seed and one teacher: ``len(schemes)·len(N)`` runs, the
    sweep one can time) and ``projected_seconds`` (every teacher and replicate), with
    ``core_seconds`` (the runs' total) and ``worker_start_s``."""
    times = run_times(teacher, max_steps)
    start = _worker_start_seconds(SWEEP["schemes"][0])
    order = [times[scheme, n] for scheme in SWEEP["schemes"] for n in SWEEP["N"]]
    replicates = SWEEP["teachers"] * SWEEP["seeds"]
    return {"case": "paper-sweep-projection", "backend": "numba", "workers": workers,
            "runs": len(order) * replicates, "worker_start_s": start,
            "core_seconds": sum(order) * replicates,
            "one_replicate_seconds": schedule_seconds(order, workers, start),
            "projected_seconds": schedule_seconds(order * replicates, workers, start)}
