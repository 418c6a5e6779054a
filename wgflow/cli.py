"""The ``wgflow`` command line.

- ``wgflow run [CONFIG.toml] [--out FILE.h5] [--set KEY=VALUE ...] [--quiet]``: run a config
  (the built-in default without one: the paper's teacher–student problem) into a trajectory file;
  ``--set run.solver=pde --set run.dynamics=mf`` solves the MF flow as a density on a grid
  (:mod:`wgflow.pde`) into the same kind of file.
- ``wgflow config --default``: the default config as commented TOML; ``wgflow config
  --example [NAME]``: a commented, runnable example config (without NAME: their list);
  ``wgflow config --from RUN.h5``: the config stored in a run file, as TOML (running it gives
  the same file).
- ``wgflow problems``: the problem presets (``problem.preset``).
- ``wgflow resume FILE.h5``, ``wgflow info FILE.h5``, ``wgflow plot FILE.h5 [--out DIR]
  [--particles RUN.h5]`` (a PDE run's density, with the particles of a particle run).
- ``wgflow compare``: every scheme on the paper's problem from one SI start, final risk and
  distance to ``E^G``.
- ``wgflow bench``: time the backends (:mod:`wgflow.bench`).
- ``wgflow sweep [CONFIG.toml] --grid KEY=V1,V2,... [--grid ...] [--seeds K] --out DIR``: the
  Cartesian product of the grid, K replicates (:mod:`wgflow.sweep`); completed runs are skipped
  when the same command runs again.
- ``wgflow study paper|mf-vs-sgd|particles-vs-pde [--size smoke|small|full] --out DIR``: a
  built-in study (:mod:`wgflow.sweep.studies`); ``sweep`` and ``study`` run on ``--executor
  processes`` (default, ``--workers K``) or ``--executor dask --scheduler ADDRESS``.
- ``wgflow study mirror [--size smoke|small|full] --out DIR``: mirror-symmetry threshold sweeps
  and demos (:mod:`wgflow.mirror.study`), run in this process.
- ``wgflow report DIR``: figures and summary tables of a sweep or study
  (:mod:`wgflow.sweep.report`).
- ``wgflow discover [CONFIG.toml] --out FILE.h5 [--set KEY=VALUE ...]``: search the largest
  subspace supporting SI laws of the config's problem (:func:`wgflow.discover_subspace`);
  ``wgflow study discover|si-gap [--size ...] --out DIR``: the strong-invariance studies
  (:mod:`wgflow.strong_invariance.studies`, run in this process: the executor options do not
  apply).

``wgflow`` alone is ``wgflow run``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import sys
import tempfile
import time
import traceback
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from . import bench, paper, plots, resources
from . import config as configuration
from . import sweep as sweeps
from ._text import plain
from .configs import examples as config_examples
from .configs import schema as config_schema
from .dynamics import cost, simulate
from .files import h5md
from .files.checkpoints import read_checkpoint
from .pde import PDEResult
from .runner import RunInterrupted, resume_file, run_to_file
from .strong_invariance import files as si_files
from .strong_invariance import studies as si_studies
from .sweep import studies
from .symmetry.schemes import SCHEMES

#: times of a PDE run and a particle run match to this, relative to max(1, T)
PLOT_TIME_TOL = 1e-9
#: the BLAS libraries' thread counts (OpenBLAS, MKL), set for a sweep's process workers to its
#: Numba threads per run: each worker's numpy would otherwise start one BLAS thread per core
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
COMMANDS = ("run", "config", "problems", "resume", "info", "plot", "compare", "bench", "sweep",
            "study", "report", "discover")


def _executor_options(parser) -> None:
    parser.add_argument("--out", required=True, help="output directory (manifest, runs/)")
    parser.add_argument("--executor", choices=("processes", "dask"), default="processes",
                        help="processes: a local process pool (default); dask: a Dask "
                             "scheduler (pip install 'wgflow[dask]')")
    parser.add_argument("--workers", type=int, default=_cores(),
                        help="processes of the local pool (default: the cores this process "
                             "may use)")
    parser.add_argument("--scheduler", help="address of the Dask scheduler, e.g. "
                                            "tcp://10.0.0.1:8786 (with --executor dask)")
    parser.add_argument("--threads", type=int, default=None,
                        help="Numba threads per run, and BLAS threads per process worker "
                             "unless OPENBLAS_NUM_THREADS/MKL_NUM_THREADS are set (default: "
                             "cores // workers for processes, 1 for dask)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wgflow", description=plain(__doc__.split("\n\n")[0]))
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a config into a trajectory file")
    run.add_argument("config", nargs="?", help="TOML config (default: the built-in default)")
    run.add_argument("--out", default="wgflow-run.h5", help="output file (default %(default)s)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set run.scheme=EA (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    run.add_argument("--overwrite", action="store_true",
                     help="replace an existing wgflow trajectory at --out (never another file)")
    run.add_argument("--force", action="store_true",
                     help="run even when the memory estimate exceeds the available memory")
    cfg = sub.add_parser("config", help="print a config")
    which = cfg.add_mutually_exclusive_group(required=True)
    which.add_argument("--default", action="store_true",
                       help="the default config, every key commented")
    which.add_argument("--example", nargs="?", const="", metavar="NAME",
                       help="a commented, runnable example config (no NAME: list them)")
    which.add_argument("--from", dest="source", metavar="RUN.h5",
                       help="the config stored in a run file, as TOML")
    sub.add_parser("problems", help="list the problem presets (problem.preset)")
    res = sub.add_parser("resume", help="continue an interrupted run in the same file")
    res.add_argument("file")
    res.add_argument("--quiet", action="store_true")
    res.add_argument("--force", action="store_true",
                     help="resume even when the memory estimate exceeds the available memory")
    info = sub.add_parser("info", help="summarize a trajectory file")
    info.add_argument("file")
    plot = sub.add_parser("plot", help="write the figures of a run as PNG files")
    plot.add_argument("file")
    plot.add_argument("--out", default=None, help="directory (default: next to the file)")
    plot.add_argument("--particles", default=None, metavar="FILE.h5",
                      help="a particle run of the same problem: its particles at the last time "
                           "both runs recorded are drawn over a PDE run's density")
    cmp_ = sub.add_parser("compare", help="every scheme on the paper's problem")
    cmp_.add_argument("--teacher", default="arbitrary", choices=paper.TEACHERS)
    cmp_.add_argument("--N", type=_positive(int), default=50,
                      help="student particles (default 50)")
    cmp_.add_argument("--T", type=_positive(float), default=paper.SETTINGS["T"],
                      help="MF time; SGD takes T·N steps (default %(default)s, the paper's)")
    cmp_.add_argument("--seed", type=_positive(int, zero=True), default=0)
    cmp_.add_argument("--force", action="store_true",
                      help="run even when the memory estimate exceeds the available memory")
    sub.add_parser("bench", help="time the backends (wgflow bench --help)", add_help=False)
    swp = sub.add_parser("sweep", help="run a config over a grid of keys and seeds")
    swp.add_argument("config", nargs="?", help="TOML config (default: the built-in default)")
    swp.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                     help="a key and its values, e.g. --grid init.N=10,100 (repeatable)")
    swp.add_argument("--seeds", type=int, default=1, help="replicates K (default 1)")
    swp.add_argument("--root-seed", type=int, default=None,
                     help="root of the replicates' seeds (default: the config's run.seed)")
    swp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a key of the base config (repeatable)")
    _executor_options(swp)
    std = sub.add_parser("study", help="run a built-in study (the paper's experiments)")
    std.add_argument("study", help=f"one of {', '.join(studies.STUDIES + si_studies.STUDIES)}, "
                                   "mirror")
    std.add_argument("--size", default="small", help=f"one of {', '.join(studies.SIZES)} "
                                                     "(default %(default)s)")
    std.add_argument("--config", default=None, metavar="CONFIG.toml",
                     help="run the study on the problem of this config (its [problem] keys) "
                          f"instead of the paper's: {', '.join(studies.CONFIGURABLE)}")
    _executor_options(std)
    rep = sub.add_parser("report", help="figures and summary tables of a sweep or study")
    rep.add_argument("dir")
    _discover_parser(sub)
    return p


def _discover_parser(sub) -> None:
    dis = sub.add_parser("discover", help="search the largest subspace supporting SI laws")
    dis.add_argument("config", nargs="?", help="TOML config (default: the built-in default); "
                     "the search uses problem.*, init.N, init.std, run.T (the horizon), "
                     "run.seed and the run options, not run.scheme, run.noise or init.law")
    dis.add_argument("--out", required=True, help="output file (HDF5)")
    dis.add_argument("--overwrite", action="store_true",
                     help="replace a previous result in --out (never another kind of file)")
    dis.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set init.N=200 (repeatable)")
    dis.add_argument("--replicates", type=int, default=4,
                     help="runs per step that calibrate the threshold (default %(default)s)")
    dis.add_argument("--level", type=float, default=0.99,
                     help="confidence level of the escape test (default %(default)s)")
    dis.add_argument("--quiet", action="store_true", help="no summary")


def _positive(kind, zero: bool = False):
    """An argparse type: a finite number of ``kind`` > 0 (≥ 0 with ``zero``)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            raise argparse.ArgumentTypeError(f"must be a finite number {'≥' if zero else '>'} "
                                             f"0, got {text!r}")
        return value
    return parse


def _one_line_warnings(command: str):
    """Show warnings as one line ``wgflow CMD: warning: …`` (no source line)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"wgflow {command}: warning: {message}", file=sys.stderr)
    warnings.showwarning = show


def _crash_log(command: str) -> Path:
    """Write the current exception's traceback to a log file; return its path."""
    fd, name = tempfile.mkstemp(prefix=f"wgflow-{command}-", suffix=".log")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"wgflow {command} {' '.join(sys.argv[1:])}\n{h5md.versions()}\n\n")
        traceback.print_exc(file=fh)
    return Path(name)


def main(argv=None) -> int:
    """Exit codes: 0 done; 1 a run diverged, a sweep has failed runs, or an internal error
    (traceback in a log file); 2 bad input or a file problem; 130 stopped by Ctrl-C (SIGINT),
    143 by SIGTERM; 141 the reader of the output went away (``wgflow info F | head``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own parser
        args = argparse.Namespace(command="bench", argv=argv[1:])
    else:
        if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
            argv = ["run", *argv]
        args = _parser().parse_args(argv)
    with warnings.catch_warnings():
        _one_line_warnings(args.command)
        return _dispatch(args)


def _dispatch(args) -> int:
    try:
        return {"run": _run, "config": _config, "problems": _problems, "resume": _resume,
                "info": _info, "plot": _plot, "compare": _compare, "sweep": _sweep, "study": _study,
                "report": _report, "discover": _discover,
                "bench": lambda a: bench.main(a.argv)}[args.command](args)
    except BrokenPipeError:  # the reader went away (`wgflow info F | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ValueError, OSError) as err:
        print(f"wgflow {args.command}: error: {err}", file=sys.stderr)
        return 2
    except MemoryError as err:
        print(f"wgflow {args.command}: error: out of memory ({err or 'an allocation failed'}); "
              "lower N, the batch or the number of frames", file=sys.stderr)
        return 2
    except RunInterrupted as stopped:
        print(f"wgflow {args.command}: {stopped}", file=sys.stderr)
        return 128 + stopped.signal
    except KeyboardInterrupt:
        print(f"wgflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a defect of wgflow: one line here, the traceback in a log
        log = _crash_log(args.command)
        print(f"wgflow {args.command}: internal error: {type(err).__name__}: {err} "
              f"(traceback in {log}; please report it)", file=sys.stderr)
        return 1


def _run(args) -> int:
    config = configuration.load_config(args.config, args.set)
    tic = time.perf_counter()
    status = run_to_file(config, args.out, progress=not args.quiet, overwrite=args.overwrite,
                         force=args.force)
    if not args.quiet:
        print(f"{status}: {args.out} ({time.perf_counter() - tic:.1f} s)")
        _info(argparse.Namespace(file=args.out))
    return 0 if status == "complete" else 1


def _config(args) -> int:
    if args.source:
        stored = h5md.read_parameters(args.source)["config"]
        print(configuration.to_toml(configuration.checked(stored)), end="")
    elif args.example == "":
        for name in config_examples.names():
            print(f"{name:<18} {config_examples.summary(name)}")
    elif args.example is not None:
        print(config_examples.text(args.example), end="")
    else:
        print(configuration.default_toml(), end="")
    return 0


def _problems(args) -> int:
    print("problem.preset values (`wgflow config --example` shows complete configs):")
    for line in config_schema.preset_lines():
        print(f"  {line}")
    return 0


def _resume(args) -> int:
    status = resume_file(args.file, progress=not args.quiet, force=args.force)
    if not args.quiet:
        print(f"{status}: {args.file}")
    return 0 if status == "complete" else 1


def _info(args) -> int:
    params = h5md.read_parameters(args.file)
    result = h5md.load(args.file, frames=slice(-1, None))  # not the whole trajectory
    run = params["run_config"]
    print(f"file: {args.file}")
    print(f"status: {params['status']}" + (f" ({params['message']})" if params["message"] else ""))
    if params["kind"] == "density":
        print(_grid_line(run))
    else:
        run = {k: "?" for k in ("scheme", "dynamics", "N", "backend", "dtype", "T")} | run
        print(f"scheme: {run['scheme']}, dynamics: {run['dynamics']}, N = {run['N']}, "
              f"backend: {run['backend']} ({run['dtype']})")
    if params["frames"] == 0:
        print("frames: 0")
    else:
        print(f"frames: {params['frames']}, step {result.steps[-1]}, "
              f"t = {result.times[-1]:.4g} of T = "
              + (f"{run['T']:.4g}" if isinstance(run["T"], (int, float)) else str(run["T"])))
        for name, values in result.observables.items():
            value = ", ".join(f"{v:.6g}" for v in np.ravel(values[-1]))
            print(f"{name}: {value if np.ndim(values[-1]) == 0 else f'[{value}]'} "
                  f"({result.method(name)})")
    if params["status"] == "running":
        try:
            position, _, _ = read_checkpoint(args.file)
            print(f"checkpoint: step {position.step}, t = {position.t:.4g} (`wgflow resume` "
                  "continues from there)")
        except ValueError as err:
            print(f"checkpoint: none usable ({err})")
    population = run.get("population")
    if population:
        error = population.get("error") or {}
        print(f"population: {population['method']}, {population['size']} points"
              + (f", estimated relative error {error['risk']:.1e} (risk), "
                 f"{error['velocity']:.1e} (velocity)" if "risk" in error else ""))
    keys = configuration.non_default(params["config"])
    print("config: " + (", ".join(f"{k}={v}" for k, v in keys.items()) or "the defaults")
          + f" (`wgflow config --from {args.file}` prints every key)")
    return 0


def _particle_figures(result, basis) -> dict:
    figures = {}
    if "risk" in result.observables:
        figures["risk.png"] = lambda: plots.risk(result)
    if "distance_to_EG" in result.observables:
        figures["distance_to_EG.png"] = lambda: plots.distance_to_EG(result)
    if basis is not None:
        figures.update({
            "particles_3d.png": lambda: plots.particles_3d(result, basis),
            "particles_edge_on.png": lambda: plots.particles_edge_on(result, basis)})
    return figures


def _density_figures(result, particles_file) -> dict:
    """The PNGs of a PDE run: the density (with the particles of ``particles_file`` at the last
    time both runs recorded), the risk and the free energy."""
    frame, particles = -1, None
    if particles_file:
        other = h5md.load(particles_file)
        if isinstance(other, PDEResult):
            raise ValueError(f"--particles {particles_file} is a PDE run; give a particle run")
        dim = len(result.centers) if result.basis is None else result.basis.shape[0]
        if other.particles.shape[2] != dim:
            raise ValueError(f"--particles {particles_file} has D = {other.particles.shape[2]}"
                             " parameters, not those of the PDE run's problem")
        shared = np.isclose(result.times[:, None], other.times[None, :], rtol=0,
                            atol=PLOT_TIME_TOL * max(1.0, float(result.times[-1])))
        if not shared.any():
            raise ValueError(f"--particles {particles_file} has no frame at a time of the PDE "
                             "run's frames; run both with the same run.T and run.frames")
        frame, j = np.argwhere(shared)[-1]
        particles = plots.grid_coordinates(result, other.particles[j])
    return {"density.png": lambda: plots.density(result, frame, particles),
            **{f"{name}.png": (lambda name=name: plots.observable(result, name))
               for name in ("risk", "free_energy") if name in result.observables}}


def _grid_line(run: dict) -> str:
    """A PDE run's solver, grid and backend in one line."""
    box = " × ".join(f"[{lo:g}, {hi:g}]" for lo, hi in run["box"])
    where = "E^G coordinates" if run.get("coordinates") == "EG" else "parameter coordinates"
    return (f"solver: pde, {' × '.join(map(str, run['cells']))} cells on {box} ({where}), "
            f"backend: {run['backend']}")


def _plot(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = h5md.load(args.file)
    if len(result.times) == 0:
        raise ValueError(f"{args.file} holds no frames yet: nothing to plot")
    out = Path(args.out) if args.out else Path(args.file).with_suffix("")
    if isinstance(result, PDEResult):
        figures = _density_figures(result, args.particles)
    elif args.particles:
        raise ValueError(f"--particles draws particles over a PDE run's density, and {args.file} "
                         "is a particle run; plot it without --particles")
    else:
        figures = _particle_figures(result, h5md.read_eg_basis(args.file))
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in figures.items():
        ax = draw()
        ax.figure.savefig(out / name, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        print(out / name)
    return 0


def _compare(args) -> int:
    prob = paper.problem(args.teacher)
    resources.check(cost(prob, args.N, scheme="FA", dynamics="sgd", T=args.T, dt=None,
                         batch_size=paper.SETTINGS["batch_size"], integrator="euler",
                         backend="numba", dtype="float64", frames_in_memory=2),
                    force=args.force)
    start = paper.student_init(prob, args.N, seed=args.seed)
    print(f"paper teacher-student problem: teacher={args.teacher}, N={args.N}, T={args.T:g} "
          f"({round(args.T * args.N)} SGD steps), dim E^G={prob.symmetry.dim_EG}")
    print(f"{'scheme':<10}{'risk':>14}{'distance to E^G':>18}{'seconds':>10}")
    for scheme in SCHEMES:
        tic = time.perf_counter()
        res = simulate(prob, start, scheme=scheme, dynamics="sgd", T=args.T,
                       step_scale=paper.SETTINGS["step_scale"],
                       batch_size=paper.SETTINGS["batch_size"], noise="EG", seed=args.seed,
                       observables=("risk", "distance_to_EG"), record_every=10**9,
                       force=args.force)
        print(f"{scheme:<10}{res.observables['risk'][-1]:>14.4e}"
              f"{res.observables['distance_to_EG'][-1]:>18.3e}"
              f"{time.perf_counter() - tic:>10.2f}")
    return 0


def _cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _executor(args):
    """``(context, executor, Numba threads per run, cores the workers share or None)`` from the
    options; closing the context shuts the executor down. The pool spawns its workers: fresh
    processes, no forked Numba threads, whose BLAS gets as many threads as a run
    (:data:`BLAS_THREADS`, unless the environment sets them)."""
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be ≥ 1, got {args.threads}")
    if args.executor == "dask":
        if not args.scheduler:
            raise ValueError("--executor dask needs --scheduler ADDRESS (e.g. tcp://host:8786)")
        try:
            from distributed import Client
        except ImportError:
            raise ValueError("--executor dask needs Dask distributed: "
                             "pip install 'wgflow[dask]'") from None
        client = Client(args.scheduler)
        return contextlib.closing(client), client.get_executor(), args.threads or 1, None
    if args.workers < 1:
        raise ValueError(f"--workers must be ≥ 1, got {args.workers}")
    threads = args.threads or max(1, _cores() // args.workers)
    for name in BLAS_THREADS:  # read by each worker when it loads numpy; the user's value stands
        os.environ.setdefault(name, str(threads))
    pool = ProcessPoolExecutor(args.workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=sweeps.ignore_interrupts)
    return pool, pool, threads, args.workers * threads


def _run_sweep(args, launch) -> int:
    """Run ``launch(executor=…, progress=…, threads_per_worker=…, cores=…)`` → a sweep, and
    summarize (the caller has checked the sweep's description: an executor may take seconds to
    start)."""
    context, executor, threads, cores = _executor(args)
    tic = time.perf_counter()
    with context:
        result = launch(executor=executor, progress=not args.quiet, threads_per_worker=threads,
                        cores=cores)
    counts = result.counts()
    if not args.quiet:
        print(f"{len(result.runs)} runs in {args.out} ({time.perf_counter() - tic:.1f} s): "
              + ", ".join(f"{n} {status}" for status, n in counts.items()))
        for entry in result.runs:
            if entry["status"] == "failed":
                print(f"failed: {entry['path']} {entry['params']}: {entry['error']}")
    return 1 if counts.get("failed") else 0


def _sweep(args) -> int:
    base = configuration.load_config(args.config, args.set)
    grid = {}
    for key, values in map(sweeps.parse_grid, args.grid):
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; list all its values in one: "
                             f"--grid {key}=V1,V2,...")
        grid[key] = values
    if not grid:
        raise ValueError("sweep needs at least one --grid KEY=V1,V2,...")
    sweeps.plan(base, grid, seeds=args.seeds, root_seed=args.root_seed)  # errors before workers
    return _run_sweep(args, lambda **kw: sweeps.run_sweep(base, grid, args.out, seeds=args.seeds,
                                                          root_seed=args.root_seed, **kw))


def _discover(args) -> int:
    config = configuration.load_config(args.config, args.set)
    si_files.check_output(args.out, args.overwrite)  # before the search, not after
    found = si_studies.discover_from_config(config, replicates=args.replicates,
                                            level=args.level)
    si_files.save(found, args.out, overwrite=args.overwrite)
    if not args.quiet:
        print(f"{found.summary()}\nwritten: {args.out}")
    return 0


def _study(args) -> int:
    every = [*studies.STUDIES, *si_studies.STUDIES, "mirror"]
    if args.study not in every:
        raise ValueError(f"study must be one of {every}, got {args.study!r}")
    problem = None if args.config is None else configuration.load_config(args.config)
    if args.study == "mirror" or args.study in si_studies.STUDIES:
        if problem is not None:
            raise ValueError(f"study {args.study} runs its own problems: drop --config")
        if args.study == "mirror":
            from .mirror.study import run_mirror_study
            path = run_mirror_study(args.size, args.out)
            if not args.quiet:
                print(path)
            return 0
        si_studies.definition(args.study, args.size)  # bad names fail before any run
        si_studies.run_study(args.study, args.size, args.out, progress=not args.quiet)
        return 0
    studies.definition(args.study, args.size, problem)  # bad input fails before any worker
    return _run_sweep(args, lambda **kw: studies.run_study(args.study, args.size, args.out,
                                                           problem=problem, **kw))


def _report(args) -> int:
    import matplotlib
    matplotlib.use("Agg")  # files only, also without a display
    from .sweep.report import write_report

    for path in write_report(args.dir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
