"""Sums inside the compiled kernels: forward passes kept for the backward pass, all at once or
in blocks of samples, change no bit, the orbit samples of the identity are the samples' own bits,
and float32 sums over 10⁶ samples or particles stay near float64."""

import numpy as np
import pytest
from conftest import TOL

from solvers.cpu import flow as compiled_flow
from solvers.cpu import layered as compiled_layered
from solvers.cpu import units as compiled_units
from wgflow import FixedSample, MLPUnit, Perceptron, Problem, paper, simulate


def _relative_error(value, reference):
    return np.abs(value - reference).max() / np.abs(reference).max()


@pytest.mark.parametrize("case", ["paper-sgd", "perceptron-mf-float32", "mlp-mf",
                                  "deep-mlp-mf-float32"])
def test_kept_forward_passes_give_the_recomputed_result_bitwise(case, monkeypatch):
    """The backward pass from kept passes (sample by sample; in the parallel kernels, for a
    small narrow unit, ``tiles.SAMPLES`` samples at once and the rest one by one) and the one
    recomputing each sample's passes give the same bits."""
    rng = np.random.default_rng(0)
    if case == "paper-sgd":
        problem = paper.problem("arbitrary", beta=1e-3)
        start = paper.student_init(problem, 300, seed=1) + 0.01
        options = {"scheme": "FA", "dynamics": "sgd", "integrator": "heun", "T": 0.05,
                   "step_scale": 20.0, "noise": "EG"}
    elif case.startswith("perceptron"):  # float32 sums in blocks of 64 of the 150 samples
        x = rng.standard_normal((150, 3))
        problem = Problem(Perceptron(3, 2, "tanh"), FixedSample(x, np.tanh(x[:, :2])))
        start = rng.standard_normal((20, problem.unit.dim))
        options = {"dynamics": "mf", "T": 0.1, "dt": 0.02, "dtype": "float32"}
    else:  # hidden layers: their outputs h enter the backward pass
        deep = case.startswith("deep")  # one hidden layer wider than a pass; float32 sums in
        # blocks of 64 samples
        unit = MLPUnit(3, (20, 4), 2, "tanh") if deep else MLPUnit(2, (2,), 2, "tanh")
        x = rng.standard_normal((150 if deep else 30, unit.d))
        problem = Problem(unit, FixedSample(x, np.tanh(x[:, :2])))
        start = rng.standard_normal((20, unit.dim)) / (3 if deep else 1)
        options = {"dynamics": "mf", "T": 0.1, "dt": 0.02,
                   "dtype": "float32" if deep else "float64"}
    kept = simulate(problem, start, observables=(), **options)
    small = case != "deep-mlp-mf-float32"  # tiles.by_samples: four samples at once
    if small:  # in the parallel kernels
        with monkeypatch.context() as parallel:
            parallel.setattr(compiled_flow, "PARALLEL_MIN_WORK", 1)
            kept_in_parallel = simulate(problem, start, observables=(), **options)
    assert compiled_layered.make_kept(compiled_units.compiled_unit(problem.unit.spec),
                                      start.shape[0], 40, 8, "float64")[1].size > 0
    monkeypatch.setattr(compiled_layered, "KEEP_BYTES", 0)
    assert compiled_layered.make_kept(compiled_units.compiled_unit(problem.unit.spec),
                                      start.shape[0], 40, 8, "float64")[1].size == 0
    recomputed = simulate(problem, start, observables=(), **options)
    assert np.abs(kept.final - start).max() > TOL["visible"]
    np.testing.assert_array_equal(kept.particles, recomputed.particles)
    if small:
        np.testing.assert_array_equal(kept_in_parallel.particles, recomputed.particles)


def _blocks_case(scheme, dtype):
    """A problem, its start and options whose steps have more than ``ROW_STEP`` orbit
    samples: the paper's SGD with batches of 70 (vanilla: on three tiles of particles, the last
    one partial), or a wide perceptron's MF flow on 150."""
    if scheme == "wide-mf":
        rng = np.random.default_rng(3)
        unit = Perceptron(33, 1, "tanh")
        x = rng.standard_normal((150, 33))
        start = rng.standard_normal((40, unit.dim)) / 6
        problem = Problem(unit, FixedSample(x, np.tanh(x[:, :1])))
        return problem, start, 150, {"dynamics": "mf", "T": 0.1, "dt": 0.05, "dtype": dtype}
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 600 if scheme == "vanilla" else 200, seed=2) + 0.01
    n_rows = 70 * (1 if scheme == "vanilla" else len(problem.symmetry.elements()[1]))
    return problem, start, n_rows, {"scheme": scheme, "dynamics": "sgd", "T": 0.05,
                                    "step_scale": 20.0, "batch_size": 70, "noise": "EG",
                                    "dtype": dtype}


@pytest.mark.parametrize("scheme, dtype", [("DA-orbit", "float64"), ("DA-orbit", "float32"),
                                           ("vanilla", "float64"), ("FA", "float64"),
                                           ("wide-mf", "float64")])
def test_samples_in_blocks_of_kept_passes_give_the_bits_of_one_block(scheme, dtype,
                                                                     monkeypatch):
    """Room for the passes of ``ROW_STEP`` orbit samples only: the flow takes them in blocks
    (a whole one and a partial one at least), and its particles are those of the recomputed
    passes bit for bit, in parallel and on one thread; feature averaging needs every sample's
    output first, so it recomputes instead."""
    problem, start, n_rows, options = _blocks_case(scheme, dtype)
    unit, n = compiled_units.compiled_unit(problem.unit.spec), len(start)
    lanes = compiled_flow.scratch_lanes(compiled_layered.tile_size(problem.unit.spec, dtype), n)
    per_sample = sum(a.nbytes for a in compiled_layered.make_kept(unit, n, 1, lanes, dtype))
    assert n_rows > compiled_layered.ROW_STEP
    monkeypatch.setattr(compiled_layered, "KEEP_BYTES", per_sample * compiled_layered.ROW_STEP)
    whole = scheme == "FA"
    rows = compiled_layered.make_kept(unit, n, n_rows, lanes, dtype, whole=whole)[1].shape[1]
    assert rows == (0 if whole else compiled_layered.ROW_STEP)
    blocks = simulate(problem, start, observables=(), **options)
    for threshold in (1, 10**9):  # in parallel regions (each finishing a block and starting
        # the next) and on one thread: the same bits
        with monkeypatch.context() as path:
            path.setattr(compiled_flow, "PARALLEL_MIN_WORK", threshold)
            np.testing.assert_array_equal(
                simulate(problem, start, observables=(), **options).particles, blocks.particles)
    monkeypatch.setattr(compiled_layered, "KEEP_BYTES", 0)
    recomputed = simulate(problem, start, observables=(), **options)
    assert np.abs(blocks.final - start).max() > TOL["visible"]
    np.testing.assert_array_equal(blocks.particles, recomputed.particles)


def test_float32_gradient_sum_over_a_million_samples_stays_near_float64():
    rng = np.random.default_rng(1)
    unit = Perceptron(2, 1, "tanh")
    m = 10**6
    theta = rng.standard_normal((8, unit.dim))
    x, u = rng.standard_normal((m, 2)), rng.standard_normal((m, 1)) + 0.5
    w = np.full(m, 1.0 / m)
    exact = compiled_layered.vjp(unit.spec, theta, x, u, w)
    single = compiled_layered.vjp(unit.spec, theta.astype(np.float32), x.astype(np.float32),
                                  u, w)
    assert single.dtype == np.float32
    assert _relative_error(single, exact) <= TOL["float32"]


def test_float32_output_sum_over_a_million_particles_stays_near_float64():
    rng = np.random.default_rng(2)
    unit = Perceptron(2, 1, "tanh")
    theta = rng.standard_normal((10**6, unit.dim)) + 0.2
    x = rng.standard_normal((4, 2))
    exact = compiled_layered.network_output(unit.spec, theta, x)
    single = compiled_layered.network_output(unit.spec, theta.astype(np.float32), x)
    assert single.dtype == np.float32
    assert _relative_error(single, exact) <= TOL["float32"]


def test_orbit_samples_of_the_identity_are_the_bits_of_the_sum(rng):
    """``ρ_g x_m`` is summed in index order from ``0``; for ``ρ_g = I`` it is ``0 + x_m``, the
    bits of that sum (``−0`` becomes ``+0``), without the sum. Other elements take the sum:
    a permutation with a sign gives the permuted samples exactly, a rotation numpy's product to
    rounding."""
    x = rng.standard_normal((7, 3))
    x[2, 1] = -0.0
    angle = 0.3
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0.0],
                         [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    signed_swap = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    rho = np.stack([np.eye(3), signed_swap, rotation])
    xo = np.empty((3 * 7, 3))
    compiled_flow._orbit_samples(rho, x, xo)
    identity, swapped, rotated = xo[:7], xo[7:14], xo[14:]
    np.testing.assert_array_equal(identity, 0.0 + x)
    assert not np.signbit(identity[2, 1])
    np.testing.assert_array_equal(swapped, 0.0 + np.stack([-x[:, 1], x[:, 0], x[:, 2]], axis=1))
    np.testing.assert_allclose(rotated, x @ rotation.T, rtol=0, atol=TOL["exact"])
