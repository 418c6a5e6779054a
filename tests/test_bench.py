"""``wgflow bench``: the output contract (timings themselves are not asserted)."""

import itertools
import json

import numba
import numpy as np
import pytest
from conftest import TOL

from solvers.cpu import wide_layer
from wgflow import Problem, bench, simulate
from wgflow.bench import peak, peers, projection
from wgflow.cli import main

KEYS = {"case", "unit", "activation", "d", "N", "M", "dtype", "backend", "seconds_per_step",
        "ns_per_interaction", "speedup_vs_numpy"}


def test_single_case_json_rows(capsys):
    assert main(["bench", "--N", "40", "--M", "30", "--d", "3", "--unit", "matrix",
                 "--activation", "sigmoid", "--steps", "1", "--json", "--backend", "numba",
                 "--backend", "numpy"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["backend"], r["dtype"]) for r in rows] == [
        ("numba", "float64"), ("numpy", "float64"), ("numba", "float32"), ("numpy", "float32")]
    for r in rows:
        assert KEYS <= set(r)
        assert (r["N"], r["M"], r["d"], r["unit"]) == (40, 30, 3, "matrix")
        assert r["seconds_per_step"] > 0
        assert r["ns_per_interaction"] == pytest.approx(r["seconds_per_step"] / 1200 * 1e9)
        # the matrix unit's first layer: c·d = 2·3 multiply–adds forward and backward
        assert r["gflops"] == pytest.approx(4 * 6 * 1200 / r["seconds_per_step"] / 1e9)
        assert r["fraction_of_fma_peak"] == pytest.approx(r["gflops"] / r["fma_peak_gflops"])
    numpy_row = next(r for r in rows if r["backend"] == "numpy")
    assert numpy_row["speedup_vs_numpy"] == 1.0


def test_timed_calls_go_round_the_backends(monkeypatch):
    """Each backend's first call, then rounds of one timed call per backend: a drift of the
    machine's speed during a case falls on every backend alike."""
    calls = []

    def runner(case, unit, activation, d, n, m, dynamics, dtype, backend):
        return (lambda: calls.append(backend)), 2

    monkeypatch.setattr(bench, "_case_runner", runner)
    rows = bench.measure("mf-d2", "perceptron", "tanh", 2, 4, 3, "mf", "float64",
                         ["numba", "numpy", "numpy-blas"], 3)
    assert calls == ["numba", "numpy", "numpy-blas"] * 4
    assert [r["backend"] for r in rows] == ["numba", "numpy", "numpy-blas"]


def test_sgd_case_and_table(capsys):
    rows = bench.with_speedups(bench.measure("sgd-paper", "matrix", "sigmoid", 2, 10, 20, "sgd",
                                             "float64", ["numba", "numpy"], 1))
    assert {r["backend"] for r in rows} == {"numba", "numpy"}
    numba_row = next(r for r in rows if r["backend"] == "numba")
    assert numba_row["speedup_vs_numpy"] == pytest.approx(
        rows[1]["seconds_per_step"] / numba_row["seconds_per_step"])
    line = bench._format(numba_row)
    assert line.split()[:3] == ["sgd-paper", "float64", "numba"]
    assert numba_row["gflops"] is None and "%" not in line  # no flop count for SGD steps


def test_one_thread_rows_of_the_sgd_case(monkeypatch, capsys):
    """``sgd-paper`` is timed again on one numba thread (numba only, ``sgd-paper-1t``); every
    row says its thread count, and the count is restored afterwards."""
    monkeypatch.setattr(bench, "SUITE", (("sgd-paper", "matrix", "sigmoid", 2, 10, 20, "sgd"),))
    threads = numba.get_num_threads()
    assert main(["bench", "--backend", "numba", "--backend", "numpy", "--dtype", "float64",
                 "--steps", "1", "--json", "--no-sweep"]) == 0
    assert numba.get_num_threads() == threads
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["case"], r["backend"], r["threads"]) for r in rows] == [
        ("sgd-paper", "numba", threads), ("sgd-paper", "numpy", threads),
        ("sgd-paper-1t", "numba", 1)]
    assert {r["threading_layer"] for r in rows} == {numba.threading_layer()}  # the peak ran
    one = rows[2]
    assert one["speedup_vs_numba"] == 1.0 and one["speedup_vs_numpy"] is None
    assert one["ns_per_interaction"] == pytest.approx(one["seconds_per_step"] / 200 * 1e9)
    assert bench._format(one).split()[:3] == ["sgd-paper-1t", "float64", "numba"]


def test_peak_fraction_of_cpu_rows_with_a_flop_count():
    rows = [{"backend": "numba", "gflops": 30.0}, {"backend": "cuda", "gflops": 900.0},
            {"backend": "numba", "gflops": None}]
    bench.with_peak_fraction(rows, 120.0)
    assert [r["fraction_of_fma_peak"] for r in rows] == [0.25, None, None]
    assert all(r["fma_peak_gflops"] == 120.0 for r in rows)


def test_peak_kernel_runs_the_recurrence_on_every_thread():
    """``acc ← a·acc + b`` from ``s``, ``n`` times: ``aⁿ s + b (1 − aⁿ)/(1 − a)`` in each of the
    ``2 × LANES`` float32 accumulators (eight vectors), on each thread; the float64 peak is half
    the float32 one, which is a positive rate."""
    a, b, s, n = 0.9, 0.25, 0.5, 50
    assert 2 * peak.LANES * 4 == 8 * wide_layer.VECTOR_BYTES and peak.LANES >= 16
    out = np.empty(3)
    peak.on_every_thread(np.full(peak.LANES, s, np.float32), n, np.float32(a), np.float32(b),
                         out)
    expected = 2 * peak.LANES * (a**n * s + b * (1 - a**n) / (1 - a))
    np.testing.assert_allclose(out, expected, rtol=TOL["float32"])
    float32_peak = peak.fma_peak("float32")
    assert 0 < float32_peak < np.inf
    assert 0 < peak.fma_peak("float64") < float32_peak


def test_cuda_backend_adds_the_gpu_cases_against_the_cpu_backend(monkeypatch, capsys):
    # sizes for numba's CUDA simulator; the real cases are N = M = 10⁵ and 10⁶
    monkeypatch.setattr(bench, "SUITE", (("mf-tiny", "perceptron", "tanh", 2, 20, 10, "mf"),))
    monkeypatch.setattr(bench, "GPU_SUITE", (("mf-gpu", "perceptron", "tanh", 3, 64, 48, "mf"),))
    monkeypatch.setattr(bench, "CPU_REFERENCE_N", 32)
    assert main(["bench", "--backend", "cuda", "--backend", "numba", "--dtype", "float32",
                 "--steps", "1", "--json", "--no-sweep"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["case"], r["backend"], r["N"], r["M"]) for r in rows] == [
        ("mf-tiny", "cuda", 20, 10), ("mf-tiny", "numba", 20, 10),
        ("mf-gpu", "numba", 32, 32), ("mf-gpu", "cuda", 64, 48)]
    cpu, gpu = rows[2:]
    assert gpu["speedup_vs_numba"] == pytest.approx(
        cpu["ns_per_interaction"] / gpu["ns_per_interaction"])
    assert gpu["speedup_vs_numpy"] is None


def test_sweep_projection_runs_the_sweep_task(monkeypatch):
    monkeypatch.setitem(projection.SWEEP, "N", (5, 10))
    monkeypatch.setitem(projection.SWEEP, "schemes", ("vanilla", "FA"))
    proj = projection.sweep_projection(workers=2, max_steps=100)  # N = 10: 200 steps, two runs
    assert proj["runs"] == 2 * 2 * 3 * 10
    assert proj["worker_start_s"] > 0
    assert proj["worker_start_s"] < proj["one_replicate_seconds"] < proj["projected_seconds"]
    one_replicate_core = proj["core_seconds"] / 30  # ≥ the longest run
    assert proj["projected_seconds"] <= (proj["worker_start_s"] + proj["core_seconds"] / 2
                                         + one_replicate_core)


def _synthetic_seconds(cfg, directory=None):
    """A run's time on a synthetic clock, ``a + b·steps + c·frames``."""
    n, steps = cfg["init.N"], round(cfg["run.T"] * cfg["init.N"])
    return 0.5 + 1e-4 * n * steps + 1e-2 * n * (min(cfg["run.frames"], steps) + 1)


def test_sweep_projection_recovers_each_part_of_a_run(monkeypatch):
    """Runs that take ``a + b·steps + c·frames`` (a synthetic clock): the three short runs of a
    long one recover its time, and the runs are scheduled longest first."""
    seconds = _synthetic_seconds
    monkeypatch.setattr(projection, "_run_seconds", seconds)
    monkeypatch.setattr(projection, "_worker_start_seconds", lambda schemes: 2.0)
    monkeypatch.setitem(projection.SWEEP, "N", (5, 50))
    monkeypatch.setitem(projection.SWEEP, "schemes", ("vanilla", "FA"))
    proj = projection.sweep_projection(workers=2, max_steps=200)  # N = 50: 1000 steps
    full = {n: seconds({"init.N": n, "run.T": 20.0, "run.frames": 20}, None) for n in (5, 50)}
    for scheme, n in itertools.product(("vanilla", "FA"), (5, 50)):
        assert proj["run_seconds"][f"{scheme} {n}"] == pytest.approx(full[n], rel=TOL["exact"])
    assert proj["step_seconds"]["FA 50"] == pytest.approx(1e-4 * 50 * 1000, rel=TOL["exact"])
    assert proj["frame_seconds"]["FA 50"] == pytest.approx(1e-2 * 50 * 19, rel=TOL["exact"])
    assert proj["step_seconds"]["FA 5"] is None  # timed in full
    # the two N = 50 runs start first, one on each worker, each followed by an N = 5 run
    assert proj["one_replicate_seconds"] == pytest.approx(2.0 + full[50] + full[5])
    assert proj["core_seconds"] == pytest.approx(30 * 2 * (full[5] + full[50]))


def test_sweep_projection_takes_the_median_of_each_shorter_run(monkeypatch):
    """One timing in each :data:`REPEATS` of a shorter run five times too long (a machine busy
    for a moment) leaves the projection of the long run as without it."""
    calls = itertools.count()

    def seconds(cfg, directory):
        shorter = cfg["run.frames"] != 20  # the full runs record the default 20 frames
        slow = shorter and next(calls) % projection.REPEATS == 0
        return _synthetic_seconds(cfg) * (5 if slow else 1)

    monkeypatch.setattr(projection, "_run_seconds", seconds)
    monkeypatch.setattr(projection, "_worker_start_seconds", lambda schemes: 2.0)
    monkeypatch.setitem(projection.SWEEP, "N", (50,))
    monkeypatch.setitem(projection.SWEEP, "schemes", ("FA",))
    proj = projection.sweep_projection(workers=1, max_steps=200)  # N = 50: 1000 steps
    assert next(calls) == 3 * projection.REPEATS  # three shorter runs, each timed REPEATS times
    full = _synthetic_seconds({"init.N": 50, "run.T": 20.0, "run.frames": 20})
    assert proj["run_seconds"]["FA 50"] == pytest.approx(full, rel=TOL["exact"])


def test_schedule_takes_the_first_free_worker():
    assert projection.schedule_seconds([3, 1, 1, 1], workers=2, start=1) == 4
    assert projection.schedule_seconds([1, 1, 3], workers=2) == 4
    assert projection.schedule_seconds([2.5], workers=3, start=0.5) == 3


def test_bad_options_exit_with_a_message(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--N", "0"])
    assert "--N, --M and --d must be" in capsys.readouterr().err


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("activation", sorted(peers.BLAS_ACTIVATIONS))
def test_numpy_blas_peer_is_the_same_mf_step(activation, dtype):
    problem, theta = bench._mf_problem("perceptron", activation, 3, 50, 40, dtype)
    problem = Problem(problem.unit, problem.data, tau=0.3)
    stepped = peers.numpy_blas_mf_step(problem, theta, dt=0.05, step_scale=2.0)()
    again = peers.numpy_blas_mf_step(problem, theta, dt=0.05, step_scale=2.0)
    again()  # the buffers are reused: a second step from the same start is the same step
    ref = simulate(problem, theta.astype(float), T=0.05, dt=0.05, step_scale=2.0,
                   observables=(), backend="numpy").final
    assert stepped.dtype == theta.dtype
    assert abs(stepped - ref).max() <= TOL["exact" if dtype == "float64" else "float32"] * abs(
        ref).max()
    assert np.array_equal(again(), stepped)
    assert abs(ref - theta).max() >= TOL["visible"]  # the step moved the particles


def test_peers_refuse_other_units():
    problem, theta = bench._mf_problem("matrix", "tanh", 2, 5, 4, "float64")
    with pytest.raises(ValueError, match="perceptron unit"):
        peers.numpy_blas_mf_step(problem, theta, dt=0.1)
    problem, theta = bench._mf_problem("perceptron", "erf", 2, 5, 4, "float64")
    with pytest.raises(ValueError, match="activations"):
        peers.numpy_blas_mf_step(problem, theta, dt=0.1)


def test_best_peer_is_the_fastest_expert_peer_never_the_reference(capsys):
    rows = [{"backend": b, "ns_per_interaction": ns}
            for b, ns in (("numba", 1.0), ("numpy", 3.0), ("numpy-blas", 4.0))]
    bench.with_speedups(rows)
    assert [(r["best_peer"], r["speedup_vs_best_peer"]) for r in rows] == [
        ("numpy-blas", 4.0), ("numpy-blas", 4 / 3), ("numpy-blas", 1.0)]
    alone = bench.with_speedups([{"backend": "numba", "ns_per_interaction": 1.0},
                                 {"backend": "numpy", "ns_per_interaction": 3.0}])
    assert [(r["best_peer"], r["speedup_vs_best_peer"]) for r in alone] == [(None, None)] * 2
    assert main(["bench", "--N", "30", "--d", "3", "--steps", "1", "--json",
                 "--dtype", "float64"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"numba", "numpy", "numpy-blas"} <= {r["backend"] for r in rows}
    fastest = min((r for r in rows if r["backend"] in bench.PEERS),
                  key=lambda r: r["ns_per_interaction"])
    for r in rows:
        assert r["best_peer"] == fastest["backend"]
        assert r["speedup_vs_best_peer"] == pytest.approx(
            fastest["ns_per_interaction"] / r["ns_per_interaction"])


def test_torch_reference_step_is_the_same_mf_step():
    pytest.importorskip("torch", reason="PyTorch is an optional peer of the bench")
    problem, theta = bench._mf_problem("perceptron", "tanh", 3, 50, 40, "float64")
    problem = Problem(problem.unit, problem.data, tau=0.3)
    stepped = peers.torch_mf_step(problem, theta, dt=1e-2)()
    ref = simulate(problem, theta, T=1e-2, dt=1e-2, observables=(), backend="numpy").final
    assert abs(stepped - ref).max() <= TOL["exact"] * abs(ref).max()
