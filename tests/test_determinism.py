"""Bitwise reproducibility of the compiled backend under any thread count, and its memory."""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

THREADS = (1, 2, 3, 4)
RUN = textwrap.dedent("""
    import hashlib, sys, numba, numpy as np
    from solvers.cpu import layered as compiled_layered
    from wgflow import FixedSample, paper, simulate
    from wgflow.symmetry.schemes import SCHEMES
    assert numba.get_num_threads() == int(sys.argv[1])
    # the parallel flow (velocity, noise on E^G (k = 2), EA projection) on 65 tiles of 256
    # lanes, the last one partial, in 33 chunks of two tiles, shared by 1–4 threads
    N, M = 16500, 16
    assert N * M >= compiled_layered.PARALLEL_MIN_WORK
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, N, seed=0) + 0.01  # off E^G: every scheme moves it
    sample = FixedSample(*problem.data.sample(np.random.default_rng(1), M)[:2])
    runs = ({"dynamics": "mf", "T": 0.03, "dt": 0.01, "integrator": "heun",
             "expectation": sample},
            {"dynamics": "sgd", "T": 10 / N, "dtype": "float32"})  # 10 steps, batches of 20
    digest = hashlib.sha256()
    for scheme in SCHEMES:
        for options in runs:
            res = simulate(problem, start, scheme=scheme, step_scale=20.0, seed=2,
                           observables=("risk",), **options)
            digest.update(res.particles.tobytes() + res.observables["risk"].tobytes())
    print(digest.hexdigest())
""")


def test_results_do_not_depend_on_the_thread_count():
    """Every scheme, MF (Heun, float64) and SGD (Euler–Maruyama, float32) with noise, at 1–4
    Numba threads (more than the cores is allowed): the particles and risks agree bitwise. The
    first process compiles the kernels into the on-disk cache; the others load them from it at
    once instead of compiling the same code side by side."""

    def start(threads):
        return subprocess.Popen([sys.executable, "-c", RUN, str(threads)],
                                env={**os.environ, "NUMBA_NUM_THREADS": str(threads)},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def digest(run):
        out, err = run.communicate()
        assert run.returncode == 0, err
        return out.strip()

    digests = [digest(start(THREADS[0]))]
    others = [start(threads) for threads in THREADS[1:]]  # side by side, from the cache
    digests += [digest(run) for run in others]
    assert len(digests[0]) == 64 and digests == digests[:1] * len(THREADS)


MEMORY = textwrap.dedent("""
    import resource, numpy as np
    from solvers.cpu import layered as compiled_layered
    from wgflow import Perceptron
    unit = Perceptron(2, 1, "tanh")
    rng = np.random.default_rng(0)
    theta, x = rng.standard_normal((200_000, unit.dim)), rng.standard_normal((1000, 2))
    u, w = rng.standard_normal((1000, 1)), np.full(1000, 1e-3)
    compiled_layered.vjp(unit.spec, theta[:10], x[:10], u[:10], w[:10])  # compile / load cache
    compiled_layered.network_output(unit.spec, theta[:10], x[:10])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    residual = compiled_layered.network_output(unit.spec, theta, x) - u
    compiled_layered.vjp(unit.spec, theta, x, residual, w)
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024)
""")


@pytest.mark.slow
def test_one_step_never_holds_an_n_by_m_array():
    """N·M = 2·10⁸ pairs: an N×M float64 array would be 1.6 GB; the step may add 64 MB."""
    out = subprocess.run([sys.executable, "-c", MEMORY], capture_output=True, text=True,
                         check=True)
    assert int(out.stdout) < 64 * 2**20


@pytest.mark.parametrize(("variable", "preset", "expected"),
                         [("OMP_WAIT_POLICY", None, "PASSIVE"),
                          ("OMP_WAIT_POLICY", "ACTIVE", "ACTIVE"),
                          ("OPENBLAS_THREAD_TIMEOUT", None, "4"),
                          ("OPENBLAS_THREAD_TIMEOUT", "28", "28")])
def test_threads_wait_passively_unless_the_user_says_otherwise(variable, preset, expected):
    """Set before numpy loads: ``import wgflow`` imports ``solvers`` before anything else."""
    env = {k: v for k, v in os.environ.items() if k != variable}
    if preset:
        env[variable] = preset
    out = subprocess.run([sys.executable, "-c", "import os, sys, wgflow; "
                          f"print(os.environ['{variable}'])"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"),
                    reason=f"the tbb dependency has x86_64 wheels only, not {platform.machine()}")
def test_parallel_regions_run_on_the_tbb_layer():
    """The ``tbb`` dependency is loadable by numba: its threading layer is the one a fresh process
    runs (numba would fall back to OpenMP's slow wake-ups silently)."""
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    code = ("import wgflow, numba, numpy as np\n"
            "@numba.njit(parallel=True)\n"
            "def add(a):\n"
            "    for i in numba.prange(a.size):\n"
            "        a[i] += 1.0\n"
            "add(np.zeros(8))\n"
            "print(numba.threading_layer())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "tbb"
