"""``wgflow bench``: time the backends on a fixed suite, in one run on one machine.

Every case is timed through :func:`wgflow.simulate` (the code path users run), with each backend
in the same process: a first call each, then ``--steps`` rounds of one timed call per backend,
and each backend's median (interleaved, so that a drift of the machine's speed falls on every
backend of the case alike). ``compile_s`` is the first call's excess over a timed one:
compilation, or loading the on-disk cache (to time a cold compile, point ``NUMBA_CACHE_DIR`` at
an empty directory). ``mf-*`` cases time one MF step
of a perceptron (``N`` particles, a fixed sample of ``M`` points, no noise), ``sgd-*`` cases time
finite-N SGD steps of the paper's problem (matrix unit, sigmoid, ``d = c = 2``, batch 20, noise
on ``E^G``).
``ns_per_interaction`` is the step time over ``N·M`` (``M`` = batch size for SGD);
``sgd-overhead`` (``N = 5``, batch 1) shows the fixed cost of a step; ``sgd-paper-1t`` times
``sgd-paper`` again on one numba thread (:data:`ONE_THREAD`, numba backend only: a step's cost
per core; every row's ``threads`` says how many it ran on); ``peak_rss_mb`` is the
process's peak memory so far (run a single case to read one case's peak). The suite ends with the
projected wall time of the paper's full sweep (:func:`sweep_projection`, in
:mod:`wgflow.bench.projection`).
The ``mf-*`` cases also time peers (:mod:`wgflow.bench.peers`): ``numpy-blas``, the step written
for speed in numpy (BLAS GEMMs into one reused ``(M, N)`` buffer, activations in place), and
``torch`` (CPU autograd) when PyTorch is installed (never a dependency). ``vs best peer`` is
the ratio to the fastest peer row of the case in the same run (never the numpy reference).
``gflops`` counts the first layer's multiply–adds, forward and backward (``4·d·c`` flops per
interaction, the arithmetic that wide inputs are bound by), for the ``mf-*`` rows; ``% peak`` is
that rate over the multiply–add peak of the numba threads, measured at the start of the run
(:func:`wgflow.bench.peak.fma_peak`).
``pde-*`` cases (:data:`PDE_SUITE`, :func:`measure_pde`) time the grid solver
(:mod:`wgflow.pde`, numba backend, float64) on problems with exact answers, with their
accuracy: ``pde-ou-256``, the 2-D Ornstein–Uhlenbeck flow (``A = diag(1, 2)``, ``β = 0.1``, box
``[−3, 3]²``, ``T = 1``; L1 error to the exact Gaussian, least density);
``pde-aggregation-256``, the 1-D aggregation ``W = x²/2``, ``β = 0.05``, two bumps on
``[−3, 3]`` (largest error of the variance against ``dVar/dt = −2 Var + 2β``; the hybrid flux,
whose moments are exact in space, with SSP-RK3);
``pde-paper-EG-256``, steps of the paper's SI problem on ``E^G`` (seconds per step: the time of
``PDE_STEPS + 1`` steps less that of one); ``--pde`` runs them instead of the particle suite.
Every table starts with the CPU it ran on.
``--backend cuda`` adds the GPU cases (:data:`GPU_SUITE`, ``N = M`` up to 10⁶): too large for the
numpy reference, and for the CPU backend, which is timed there at ``N = M = CPU_REFERENCE_N``
(its time per interaction hardly depends on ``N`` and ``M`` at that size). Speedups are ratios
of ns per interaction measured in the same run: ``vs numpy`` and ``vs numba``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import statistics
import sys
import time

import numba
import numpy as np

from solvers import cuda
from solvers.activations import ACTIVATIONS

from .. import paper, pde
from .._text import plain
from ..data import FixedSample
from ..dynamics import simulate
from ..problem import Problem
from ..units import UNITS
from . import peers
from .peak import fma_peak
from .projection import sweep_projection

#: the suite: (case, unit, activation, d, N, M, dynamics)
SUITE = (
    ("mf-d2", "perceptron", "tanh", 2, 10_000, 10_000, "mf"),
    ("mf-d10", "perceptron", "tanh", 10, 10_000, 10_000, "mf"),
    ("mf-d100", "perceptron", "tanh", 100, 4096, 4096, "mf"),
    ("sgd-paper", "matrix", "sigmoid", 2, 5000, 20, "sgd"),
    ("sgd-paper-N5", "matrix", "sigmoid", 2, 5, 20, "sgd"),
    ("sgd-overhead", "matrix", "sigmoid", 2, 5, 1, "sgd"),  # batch 1: the per-step fixed cost
)
#: cases timed a second time on one numba thread, as ``CASE-1t`` (numba backend only)
ONE_THREAD = ("sgd-paper",)
#: the GPU cases, timed with ``--backend cuda`` (the CPU backend at ``CPU_REFERENCE_N``)
GPU_SUITE = tuple((f"mf-d{d}-1e{k}", "perceptron", "tanh", d, 10**k, 10**k, "mf")
                  for d in (2, 10) for k in (5, 6))
CPU_REFERENCE_N = 20_000
#: the peers of the MF cases (perceptron unit), by backend name: :mod:`wgflow.bench.peers`
PEERS = {"numpy-blas": peers.numpy_blas_mf_step, "torch": peers.torch_mf_step}
#: activations each peer implements
PEER_ACTIVATIONS = {"numpy-blas": tuple(peers.BLAS_ACTIVATIONS),
                    "torch": peers.TORCH_ACTIVATIONS}
#: SGD steps per timed call
SGD_STEPS = 2000
#: the PDE cases: (case, cells per axis)
PDE_SUITE = (("pde-ou-256", 256), ("pde-aggregation-256", 256), ("pde-paper-EG-256", 256))
#: steps timed by ``pde-paper-EG-*`` beyond the first one
PDE_STEPS = 2


def _mf_problem(unit_kind, activation, d, n, m, dtype, seed=0):
    rng = np.random.default_rng(seed)
    unit = UNITS[unit_kind](d, 1 if unit_kind == "perceptron" else 2, activation)
    x = rng.standard_normal((m, d))
    problem = Problem(unit, FixedSample(x, np.tanh(x @ rng.standard_normal((d, unit.c)))))
    theta = rng.standard_normal((n, unit.dim)) / np.sqrt(d)
    return problem, theta.astype(dtype)


def _timed_call(run) -> float:
    tic = time.perf_counter()
    run()
    return time.perf_counter() - tic


def _case_runner(case, unit, activation, d, n, m, dynamics, dtype, backend):
    """A function running one timed call, and the number of steps it takes."""
    if dynamics == "mf":
        problem, theta = _mf_problem(unit, activation, d, n, m, dtype)
        if backend in PEERS:
            return PEERS[backend](problem, theta, dt=1e-2), 1
        return (lambda: simulate(problem, theta, T=1e-2, dt=1e-2, observables=(),
                                 backend=backend, dtype=dtype)), 1
    problem = paper.problem("arbitrary")
    start = paper.student_init(problem, n, seed=0)
    steps = SGD_STEPS if n > 5 else 50 * SGD_STEPS
    return (lambda: simulate(problem, start, dynamics="sgd", T=steps / n, noise="EG",
                             step_scale=paper.SETTINGS["step_scale"], batch_size=m,
                             observables=(), record_every=steps, backend=backend,
                             dtype=dtype)), steps


def measure(case, unit, activation, d, n, m, dynamics, dtype, backends, repeats) -> list[dict]:
    """Time ``case`` on each backend; one row per backend (speedups: :func:`with_speedups`).
    After every backend's first call, the timed calls go round the backends ``repeats`` times
    and each backend's median is taken: a drift of the machine's speed during the case (other
    work, clock changes) falls on every backend alike rather than on the one timed last."""
    runners = {b: _case_runner(case, unit, activation, d, n, m, dynamics, dtype, b)
               for b in backends}
    first = {b: _timed_call(run) for b, (run, _) in runners.items()}
    timed = {b: [] for b in backends}
    for _ in range(repeats):
        for backend, (run, _) in runners.items():
            timed[backend].append(_timed_call(run))
    rows = []
    flops = _first_layer_flops(unit, d) if dynamics == "mf" else None
    for backend, (_, steps) in runners.items():
        per_step = statistics.median(timed[backend]) / steps
        rows.append({"case": case, "unit": unit, "activation": activation, "d": d, "N": n,
                     "M": m, "dtype": dtype, "backend": backend, "seconds_per_step": per_step,
                     "steps_per_second": 1.0 / per_step,
                     "ns_per_interaction": per_step / (n * m) * 1e9,
                     "first_call_s": first[backend],
                     "compile_s": max(0.0, first[backend] - per_step * steps),
                     "gflops": None if flops is None else flops * n * m / per_step / 1e9,
                     "threads": numba.get_num_threads(), "threading_layer": threading_layer(),
                     "peak_rss_mb": _peak_rss_mb()})
    return rows


@contextlib.contextmanager
def _numba_threads(count: int):
    """Run the block on ``count`` numba threads, then on as many as before."""
    before = numba.get_num_threads()
    numba.set_num_threads(count)
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _first_layer_flops(unit, d) -> int:
    """Flops per interaction of an MF case's first layer: ``c × d`` multiply–adds for ``z``
    and as many for the weight gradient, 2 flops each."""
    return 4 * d * (1 if unit == "perceptron" else 2)


def with_peak_fraction(rows: list[dict], peak: float) -> list[dict]:
    """Add ``fma_peak_gflops`` (``peak``, the CPU's) and ``fraction_of_fma_peak``, the rows'
    ``gflops`` over it (``None`` for rows without a flop count, and for the GPU's)."""
    for r in rows:
        r["fma_peak_gflops"] = peak
        r["fraction_of_fma_peak"] = (None if r.get("gflops") is None or r["backend"] == "cuda"
                                     else r["gflops"] / peak)
    return rows


def with_speedups(rows: list[dict]) -> list[dict]:
    """Add ``speedup_vs_numpy`` and ``speedup_vs_numba``: ratios of ns per interaction to the
    row of that backend among ``rows`` (``None`` without one); and ``best_peer``, the fastest
    row among ``rows`` of the peers written as their experts write them (:data:`PEERS`:
    numpy-blas, torch; not the numpy reference, which is what the kernels are tested against),
    with ``speedup_vs_best_peer``, the ratio to it (``None`` where no peer implements the case,
    e.g. SGD)."""
    base = {r["backend"]: r["ns_per_interaction"] for r in rows}
    peer_rows = [r for r in rows if r["backend"] in PEERS]
    best = min(peer_rows, key=lambda r: r["ns_per_interaction"]) if peer_rows else None
    for r in rows:
        for backend in ("numpy", "numba"):
            r[f"speedup_vs_{backend}"] = (base[backend] / r["ns_per_interaction"]
                                          if backend in base else None)
        r["best_peer"] = None if best is None else best["backend"]
        r["speedup_vs_best_peer"] = (None if best is None else
                                     best["ns_per_interaction"] / r["ns_per_interaction"])
    return rows


def measure_gpu_case(case, unit, activation, d, n, m, dynamics, dtype, repeats) -> list[dict]:
    """A GPU case: the CUDA backend at full size, the CPU backend at ``CPU_REFERENCE_N``."""
    cpu_n, cpu_m = min(n, CPU_REFERENCE_N), min(m, CPU_REFERENCE_N)
    return with_speedups(
        measure(case, unit, activation, d, cpu_n, cpu_m, dynamics, dtype, ["numba"], repeats)
        + measure(case, unit, activation, d, n, m, dynamics, dtype, ["cuda"], repeats))


def threading_layer() -> str | None:
    """numba's threading layer (``tbb``, ``omp`` or ``workqueue``), once a parallel region has
    run in this process; ``None`` before."""
    try:
        return numba.threading_layer()
    except ValueError:
        return None


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else (platform.processor() or platform.machine() or "unknown")


def _pde_ou(cells):
    """``(run, metrics)`` of ``pde-ou-*``: the density's L1 error to the exact Gaussian
    ``N(m₀ e^{−At}, v₀ e^{−2At} + β/A (1 − e^{−2At}))``."""
    a, beta, m0, v0 = np.array([1.0, 2.0]), 0.1, np.array([1.0, -0.5]), 0.05

    def run():
        return pde.solve_energy(lambda z: 0.5 * (a * z**2).sum(1), initial=(m0, v0), beta=beta,
                                box=[(-3, 3), (-3, 3)], cells=cells, T=1.0, record_every=1.0)

    def metrics(res):
        t, z = res.times[-1], res.points()
        mean = m0 * np.exp(-a * t)
        var = v0 * np.exp(-2 * a * t) + beta / a * (1 - np.exp(-2 * a * t))
        exact = np.exp(-0.5 * ((z - mean) ** 2 / var).sum(1)) / (2 * np.pi * np.sqrt(var.prod()))
        return {"l1_error": float(np.abs(res.final.ravel() - exact).sum() * res.cell_volume)}

    return run, metrics


def _pde_aggregation(cells):
    """``(run, metrics)`` of ``pde-aggregation-*``: the variance's largest error against
    ``Var(t) = β + (Var(0) − β) e^{−2t}`` over 20 frames, and the drift of the mean."""
    beta = 0.05

    def bumps(z):
        return np.exp(-((z[:, 0] - 1) ** 2) / 0.1) + 0.5 * np.exp(-((z[:, 0] + 1) ** 2) / 0.05)

    def run():
        return pde.solve_energy(None, lambda z: 0.5 * z[:, 0] ** 2, initial=bumps, beta=beta,
                                box=(-3, 3), cells=cells, T=1.0, flux="hybrid",
                                integrator="ssp-rk3")

    def metrics(res):
        mean = res.observables["mean"][:, 0]
        var = res.observables["second_moment"][:, 0, 0] - mean**2
        exact = beta + (var[0] - beta) * np.exp(-2 * res.times)
        return {"variance_error": float(np.abs(var - exact).max()),
                "mean_drift": float(np.ptp(mean))}

    return run, metrics


def _pde_paper_eg(cells, steps=1):
    """``run`` of ``steps`` steps of ``pde-paper-EG-*`` (the paper's problem, SI start
    ``N(0, I/16)`` on ``E^G``, ``ς = 50``, step ``10⁻⁴``)."""
    problem = paper.problem()
    dt = 1e-4
    return lambda: pde.solve(problem, ((0, 0), 1 / 16), coordinates="EG", box=(-1.5, 1.5),
                             cells=cells, T=steps * dt, dt=dt, record_every=steps * dt,
                             step_scale=paper.SETTINGS["step_scale"])


def measure_pde(case: str, cells: int, repeats: int) -> dict:
    """Time ``case`` (numba backend, float64): a first call, then the median of ``repeats``;
    ``compile_s`` is the first call's excess. Accuracy metrics come from the last result."""
    if case.startswith("pde-paper-EG"):
        one, more = _pde_paper_eg(cells), _pde_paper_eg(cells, 1 + PDE_STEPS)
        first = _timed_call(one)
        wall = statistics.median(_timed_call(one) for _ in range(repeats))
        longer = statistics.median(_timed_call(more) for _ in range(repeats))
        extra = {"seconds_per_step": max(longer - wall, 0.0) / PDE_STEPS}
    else:
        run, metrics = (_pde_ou if case.startswith("pde-ou") else _pde_aggregation)(cells)
        first = _timed_call(run)
        walls, results = [], []
        for _ in range(repeats):
            tic = time.perf_counter()
            results.append(run())
            walls.append(time.perf_counter() - tic)
        wall, res = statistics.median(walls), results[-1]
        extra = {**metrics(res), "steps": int(res.steps[-1]),
                 "min_density": float(res.density.min())}
    return {"case": case, "cells": cells, "dtype": "float64", "backend": "numba",
            "wall_s": wall, "first_call_s": first, "compile_s": max(0.0, first - wall),
            **extra, "cpu": cpu_name(), "threads": numba.get_num_threads()}


def _format_pde(row) -> str:
    skip = {"case", "cells", "dtype", "backend", "cpu", "threads", "first_call_s"}
    return f"{row['case']:<22}" + "  ".join(f"{k} {v:.3g}" for k, v in row.items()
                                            if k not in skip)


def _peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far, in MB (``None`` where unavailable)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _format(row) -> str:
    return (f"{row['case']:<14}{row['dtype']:<9}{row['backend']:<11}{row['N']:>8}{row['M']:>8}"
            f"{row['seconds_per_step'] * 1e3:>12.4f}{row['ns_per_interaction']:>10.3f}"
            + "".join(f"{'' if r is None else f'{r:.2f}x':>9}" for r in
                      (row["speedup_vs_numpy"], row["speedup_vs_numba"]))
            + f"{'' if row['best_peer'] is None else _vs_peer(row):>22}"
            + f"{row['compile_s']:>10.2f}"
            + f"{'' if row.get('fraction_of_fma_peak') is None else _percent(row):>8}")


def _percent(row) -> str:
    return f"{100 * row['fraction_of_fma_peak']:.0f}%"


def _vs_peer(row) -> str:
    return f"{row['speedup_vs_best_peer']:.2f}x {row['best_peer']}"


HEADER = (f"{'case':<14}{'dtype':<9}{'backend':<11}{'N':>8}{'M':>8}{'ms/step':>12}"
          f"{'ns/inter':>10}{'vs numpy':>9}{'vs numba':>9}{'vs best peer':>22}"
          f"{'compile s':>10}{'% peak':>8}")


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``wgflow bench``."""
    p = argparse.ArgumentParser(prog="wgflow bench", description=plain(__doc__.split("\n\n")[1]))
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--N", type=int, help="run one MF case with this many particles")
    p.add_argument("--M", type=int, help="samples of that case (default: N)")
    p.add_argument("--d", type=int, default=2, help="input dimension of that case (default 2)")
    p.add_argument("--unit", default="perceptron", choices=["perceptron", "matrix"],
                   help="unit of that case: perceptron a·σ(w·x+b) (c = 1) or matrix σ(Wx) (c = 2)")
    p.add_argument("--activation", default="tanh", choices=sorted(ACTIVATIONS),
                   help="activation of that case (default tanh)")
    p.add_argument("--dtype", choices=["float64", "float32"], help="only this dtype")
    p.add_argument("--backend", choices=["numba", "numpy", *PEERS, "cuda"], action="append",
                   help="backends to time (repeatable; default: numba, numpy, numpy-blas, torch "
                        "if installed); cuda adds the large GPU cases")
    p.add_argument("--steps", type=int, default=7, help="timed calls per case (median; default 7)")
    p.add_argument("--no-sweep", action="store_true", help="skip the paper-sweep projection")
    p.add_argument("--pde", action="store_true",
                   help="run the grid PDE cases (pde-*) instead of the particle suite")
    return p


def main(argv=None) -> int:
    """``wgflow bench``: time the backends (the module docstring); returns the exit code."""
    args = parser().parse_args(argv)
    if args.steps < 1:
        parser().error("--steps must be ≥ 1")
    backends = args.backend or ["numba", "numpy", "numpy-blas"] + (
        ["torch"] if importlib.util.find_spec("torch") else [])
    dtypes = [args.dtype] if args.dtype else ["float64", "float32"]
    if "cuda" in backends:
        try:
            cuda.backend()
        except ValueError as err:
            print(f"wgflow bench: error: {err}", file=sys.stderr)
            return 2
    if args.N is not None:
        if args.N < 1 or (args.M is not None and args.M < 1) or args.d < 1:
            parser().error("--N, --M and --d must be ≥ 1")
        cases = [("custom", args.unit, args.activation, args.d, args.N, args.M or args.N, "mf")]
    else:
        cases = SUITE
    if not args.json:
        print(f"CPU: {cpu_name()}, {numba.get_num_threads()} numba threads")
    if args.pde:
        for case, cells in PDE_SUITE:
            row = measure_pde(case, cells, args.steps)
            print(json.dumps(row) if args.json else _format_pde(row), flush=True)
        return 0
    peaks = {dtype: fma_peak(dtype) for dtype in dtypes}
    if not args.json:
        print(f"multiply-add peak of the {numba.get_num_threads()} numba threads "
              f"({threading_layer()} threading layer, measured): "
              + ", ".join(f"{peak:.1f} GFLOP/s {dtype}" for dtype, peak in peaks.items()))
        print(HEADER)
    for case in cases:
        for dtype in dtypes:
            usable = [b for b in backends if b not in PEERS or
                      (case[1] == "perceptron" and case[2] in PEER_ACTIVATIONS[b])]
            rows = with_speedups(measure(*case, dtype, usable, args.steps))
            if case[0] in ONE_THREAD and "numba" in backends:
                with _numba_threads(1):
                    rows += with_speedups(measure(f"{case[0]}-1t", *case[1:], dtype, ["numba"],
                                                  args.steps))
            for row in with_peak_fraction(rows, peaks[dtype]):
                print(json.dumps(row) if args.json else _format(row), flush=True)
    for case in GPU_SUITE if "cuda" in backends and args.N is None else ():
        for dtype in dtypes:
            for row in with_peak_fraction(measure_gpu_case(*case, dtype, args.steps),
                                          peaks[dtype]):
                print(json.dumps(row) if args.json else _format(row), flush=True)
    if args.N is None and not args.no_sweep:
        proj = sweep_projection(os.cpu_count() or 1)
        print(json.dumps(proj) if args.json else
              f"projected paper sweep ({proj['workers']} workers × 1 thread on this machine, "
              f"frames and files included): one replicate of WI "
              f"{proj['one_replicate_seconds']:.0f} s, all {proj['runs']} runs "
              f"{proj['projected_seconds'] / 60:.1f} min")
    return 0
