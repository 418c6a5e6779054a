"""The ``wgflow`` command line.

- ``wgflow run [CONFIG.toml] [--out FILE.h5] [--set KEY=VALUE ...] [--quiet]``: run a config
  (the built-in default without one: the paper's teacher–student problem) into a trajectory file.
- ``wgflow config --default``: the default config as commented TOML.
- ``wgflow resume FILE.h5``, ``wgflow info FILE.h5``, ``wgflow plot FILE.h5 [--out DIR]``.
- ``wgflow compare``: every scheme on the paper's problem from one SI start, final risk and
  distance to ``E^G``.
- ``wgflow bench``: time the backends (:mod:`wgflow.bench`).

``wgflow`` alone is ``wgflow run``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import bench, paper, plots, storage
from . import config as configuration
from .dynamics import simulate
from .runner import resume_file, run_to_file
from .schemes import SCHEMES

COMMANDS = ("run", "config", "resume", "info", "plot", "compare", "bench")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wgflow", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a config into a trajectory file")
    run.add_argument("config", nargs="?", help="TOML config (default: the built-in default)")
    run.add_argument("--out", default="wgflow-run.h5", help="output file (default %(default)s)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config key, e.g. --set run.scheme=EA (repeatable)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    cfg = sub.add_parser("config", help="print a config")
    cfg.add_argument("--default", action="store_true", required=True,
                     help="the default config, every key commented")
    res = sub.add_parser("resume", help="continue an interrupted run in the same file")
    res.add_argument("file")
    res.add_argument("--quiet", action="store_true")
    info = sub.add_parser("info", help="summarize a trajectory file")
    info.add_argument("file")
    plot = sub.add_parser("plot", help="write the figures of a run as PNG files")
    plot.add_argument("file")
    plot.add_argument("--out", default=None, help="directory (default: next to the file)")
    cmp_ = sub.add_parser("compare", help="every scheme on the paper's problem")
    cmp_.add_argument("--teacher", default="arbitrary", choices=paper.TEACHERS)
    cmp_.add_argument("--N", type=int, default=50, help="student particles (default 50)")
    cmp_.add_argument("--T", type=float, default=paper.SETTINGS["T"],
                      help="MF time; SGD takes T·N steps (default %(default)s, the paper's)")
    cmp_.add_argument("--seed", type=int, default=0)
    sub.add_parser("bench", help="time the backends (wgflow bench --help)", add_help=False)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return bench.main(argv[1:])
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv = ["run", *argv]
    args = _parser().parse_args(argv)
    try:
        return {"run": _run, "config": _config, "resume": _resume, "info": _info,
                "plot": _plot, "compare": _compare}[args.command](args)
    except (ValueError, OSError) as err:
        print(f"wgflow {args.command}: error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    config = configuration.load_config(args.config, args.set)
    tic = time.perf_counter()
    status = run_to_file(config, args.out, progress=not args.quiet)
    if not args.quiet:
        print(f"{status}: {args.out} ({time.perf_counter() - tic:.1f} s)")
        _info(argparse.Namespace(file=args.out))
    return 0 if status == "complete" else 1


def _config(args) -> int:
    print(configuration.default_toml(), end="")
    return 0


def _resume(args) -> int:
    status = resume_file(args.file, progress=not args.quiet)
    if not args.quiet:
        print(f"{status}: {args.file}")
    return 0 if status == "complete" else 1


def _info(args) -> int:
    params = storage.read_parameters(args.file)
    result = storage.load(args.file)
    run = params["run_config"]
    print(f"file: {args.file}")
    print(f"status: {params['status']}" + (f" ({params['message']})" if params["message"] else ""))
    print(f"scheme: {run['scheme']}, dynamics: {run['dynamics']}, N = {run['N']}, "
          f"backend: {run['backend']} ({run['dtype']})")
    if len(result.times) == 0:
        print("frames: 0")
    else:
        print(f"frames: {len(result.times)}, step {result.steps[-1]}, "
              f"t = {result.times[-1]:.4g} of T = {run['T']:.4g}")
        for name, values in result.observables.items():
            print(f"{name}: {values[-1]:.6g}")
    print("config: " + ", ".join(f"{k}={v}" for k, v in params["config"].items()))
    return 0


def _plot(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = storage.load(args.file)
    out = Path(args.out) if args.out else Path(args.file).with_suffix("")
    out.mkdir(parents=True, exist_ok=True)
    basis = storage.read_eg_basis(args.file)
    figures = {"risk.png": lambda: plots.risk(result)}
    if basis is not None:
        figures.update({
            "distance_to_EG.png": lambda: plots.distance_to_EG(result),
            "particles_3d.png": lambda: plots.particles_3d(result, basis),
            "particles_edge_on.png": lambda: plots.particles_edge_on(result, basis)})
    for name, draw in figures.items():
        if name == "risk.png" and "risk" not in result.observables:
            continue
        ax = draw()
        ax.figure.savefig(out / name, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        print(out / name)
    return 0


def _compare(args) -> int:
    if args.N < 1:
        _parser().error("--N must be ≥ 1")
    prob = paper.problem(args.teacher)
    start = paper.student_init(prob, args.N, seed=args.seed)
    print(f"paper teacher-student problem: teacher={args.teacher}, N={args.N}, T={args.T:g} "
          f"({round(args.T * args.N)} SGD steps), dim E^G={prob.symmetry.dim_EG}")
    print(f"{'scheme':<10}{'risk':>14}{'distance to E^G':>18}{'seconds':>10}")
    for scheme in SCHEMES:
        tic = time.perf_counter()
        res = simulate(prob, start, scheme=scheme, dynamics="sgd", T=args.T,
                       step_scale=paper.SETTINGS["step_scale"],
                       batch_size=paper.SETTINGS["batch_size"], noise="EG", seed=args.seed,
                       observables=("risk", "distance_to_EG"), record_every=10**9)
        print(f"{scheme:<10}{res.observables['risk'][-1]:>14.4e}"
              f"{res.observables['distance_to_EG'][-1]:>18.3e}"
              f"{time.perf_counter() - tic:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
