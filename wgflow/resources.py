"""What a run will cost, estimated before it starts: memory and wall time.

The estimate is deliberately simple and errs high on memory: the particles and the integrator's
work arrays ``(N, D)``, the recorded frames held in memory (``simulate``; a run into a file
streams them), the samples of one step (``G`` orbit nodes × batch or population), the batch
data of a chunk, and the ``N × S`` particle–sample matrices of the numpy reference (the compiled
backends never build them). Time counts particle–sample interactions, ``steps × evaluations ×
N × S``, at a per-backend cost of the order measured by ``wgflow bench`` on a laptop core, plus
a fixed cost per step; it is an order of magnitude, not a promise. :func:`check` refuses a run
that cannot fit in the available memory and warns about one that would take more than a day;
``force=True`` skips both. :func:`collecting_less` spares a run most of Python's garbage
collections.
"""

from __future__ import annotations

import functools
import gc
import os
import warnings
from dataclasses import dataclass

#: nanoseconds per particle–sample interaction (forward and backward pass) by backend:
#: the order ``wgflow bench`` reports for small units on one CPU core, and on a GPU
NS_PER_INTERACTION = {"numba": 10.0, "numpy": 40.0, "cuda": 0.1}
#: nanoseconds per step whatever its size (the numpy reference steps in Python; a GPU step
#: launches kernels)
NS_PER_STEP = {"numba": 1e3, "numpy": 5e4, "cuda": 2e4}
#: the garbage collector's thresholds during a run (:func:`collecting_less`; Python's defaults:
#: (700, 10, 10))
RUN_GC_THRESHOLDS = (50_000, 20, 100)
#: a run estimated to take longer than this many seconds gets a warning
LONG_RUN_SECONDS = 24 * 3600.0
#: work arrays of the size of the particles that a step holds (state, velocities, candidate,
#: noise, gradient, frame copies)
PARTICLE_ARRAYS = 10
#: arrays of size N × S that the numpy reference builds in one velocity evaluation
REFERENCE_MATRICES = 4


@dataclass(frozen=True)
class Estimate:
    """``memory`` in bytes, ``seconds`` of wall time, ``steps`` and ``interactions``
    (particle–sample pairs evaluated over the run)."""

    memory: int
    seconds: float
    steps: int
    interactions: float


def estimate(*, n: int, dim: int, samples_per_step: int, steps: int, evaluations: int,
             frames_in_memory: int, chunk_bytes: int, backend: str, itemsize: int,
             width: int) -> Estimate:
    """The cost of ``steps`` steps of ``n`` particles in ``R^dim``, each step evaluating the
    velocity ``evaluations`` times on ``samples_per_step`` samples (orbit nodes included) of
    a unit with ``width`` outputs per sample; ``frames_in_memory`` recorded frames kept."""
    particles = n * dim * itemsize
    memory = particles * (PARTICLE_ARRAYS + frames_in_memory) + chunk_bytes
    memory += samples_per_step * (width + 4) * 8 * 4
    if backend == "numpy":
        memory += REFERENCE_MATRICES * n * samples_per_step * width * itemsize
    interactions = float(steps) * evaluations * n * samples_per_step
    seconds = (interactions * NS_PER_INTERACTION[backend] + steps * NS_PER_STEP[backend]) * 1e-9
    return Estimate(int(memory), seconds, steps, interactions)


def available_memory() -> int:
    """Bytes of memory available to a new allocation (``MemAvailable`` on Linux, else the
    physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        return 1 << 62


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def _duration(seconds: float) -> str:
    for unit, length in (("years", 365 * 86400.0), ("days", 86400.0), ("hours", 3600.0),
                         ("minutes", 60.0)):
        if seconds >= length:
            return f"{seconds / length:.3g} {unit}"
    return f"{seconds:.3g} s"


def check(est: Estimate, *, force: bool = False, available: int | None = None) -> None:
    """Raise ``ValueError`` when ``est.memory`` exceeds the available memory, and warn when the
    run would take more than :data:`LONG_RUN_SECONDS`; ``force=True`` skips both."""
    if force:
        return
    available = available_memory() if available is None else available
    if est.memory > available:
        raise ValueError(f"this run needs about {_bytes(est.memory)} of memory and "
                         f"{_bytes(available)} is available: lower init.N (N), the batch or "
                         "the number of recorded frames, or pass --force (force=True) to try "
                         "anyway")
    if est.seconds > LONG_RUN_SECONDS:
        warnings.warn(f"this run takes {est.steps:.3g} steps ({est.interactions:.3g} "
                      f"particle–sample interactions), about {_duration(est.seconds)} on one "
                      "core by a rough estimate: lower run.T, init.N or the batch, or raise "
                      "run.dt, unless this is intended (Ctrl-C stops it and keeps a "
                      "checkpoint)", stacklevel=3)


def collecting_less(function):
    """Run ``function`` with the cyclic garbage collector's thresholds raised to at least
    :data:`RUN_GC_THRESHOLDS`, then restore them (a disabled collector stays disabled). A run
    allocates few Python objects, but numba's compilation of its kernels allocates millions: at
    Python's thresholds the first ``wgflow run`` went through 1320 collections, 10 of them over
    the whole heap of numpy, scipy and numba objects, 1.4 s of its 9.8 s; at these, 225 and one,
    0.3–0.5 s."""

    @functools.wraps(function)
    def with_fewer_collections(*args, **kwargs):
        before = gc.get_threshold()
        raised = [max(now, least) for now, least in zip(before, RUN_GC_THRESHOLDS, strict=True)]
        gc.set_threshold(*raised)
        try:
            return function(*args, **kwargs)
        finally:
            gc.set_threshold(*before)

    return with_fewer_collections
