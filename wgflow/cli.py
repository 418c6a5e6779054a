"""The ``wgflow`` command line.

``wgflow bench …`` times the backends (:mod:`wgflow.bench`). Otherwise it runs the paper's
teacher–student problem (SPEC §5) at a small size, every scheme from one shared SI start, as
finite-N SGD, and prints per scheme the final population risk and the distance
``RMD(μ, (P_G)_# μ)`` to ``E^G``.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import bench, paper
from .dynamics import simulate
from .schemes import SCHEMES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="wgflow", description=__doc__.split("\n\n")[1])
    p.add_argument("--teacher", default="arbitrary", choices=paper.TEACHERS)
    p.add_argument("--N", type=int, default=50, help="number of student particles (default 50)")
    p.add_argument("--T", type=float, default=paper.SETTINGS["T"],
                   help="MF time; SGD takes T·N steps (default %(default)s, the paper's)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        return bench.main(argv[1:])
    args = _parser().parse_args(argv)
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
