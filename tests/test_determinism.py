"""Bitwise reproducibility of the compiled backend under any thread count, and its memory."""

import os
import subprocess
import sys
import textwrap

import pytest

RUN = textwrap.dedent("""
    import hashlib, numba, numpy as np
    from wgflow import Perceptron, FixedSample, Problem, paper, simulate
    from solvers import compiled_layered
    assert numba.get_num_threads() == {threads}
    # MF step large enough for the parallel path, with several chunks and partial tiles
    rng = np.random.default_rng(0)
    unit = Perceptron(2, 1, "tanh")
    x = rng.standard_normal((300, 2))
    prob = Problem(unit, FixedSample(x, np.sin(x[:, :1])), beta=1e-3)
    theta = rng.standard_normal((1500, unit.dim))
    assert 1500 * 300 >= compiled_layered.PARALLEL_MIN_WORK
    mf = simulate(prob, theta, T=0.05, dt=0.01, seed=1).particles
    # finite-N SGD with random DA moves, feature averaging, EA projection and noise, parallel
    paper_prob = paper.problem("arbitrary")
    start = paper.student_init(paper_prob, 2000, seed=0)
    sgd = [simulate(paper_prob, start, scheme=scheme, dynamics="sgd", T=0.05, noise="EG",
                    step_scale=50.0, seed=2).particles for scheme in ("DA", "FA", "EA")]
    print(hashlib.sha256(b"".join(a.tobytes() for a in (mf, *sgd))).hexdigest())
""")


def _digest(threads: int) -> str:
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
    out = subprocess.run([sys.executable, "-c", RUN.format(threads=threads)], env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_results_do_not_depend_on_the_thread_count():
    assert _digest(1) == _digest(2)


MEMORY = textwrap.dedent("""
    import resource, numpy as np
    from solvers import compiled_layered
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
