"""The compiled kernels (:mod:`solvers.cpu.layered`, :mod:`solvers.cpu.flow`) against
the numpy reference, for every unit family, activation, scheme and dtype."""

import numpy as np
import pytest
from conftest import TOL

from solvers import layered
from solvers.activations import ACTIVATIONS
from solvers.cpu import flow as compiled_flow
from solvers.cpu import layered as compiled_layered
from wgflow import (
    FixedSample,
    GaussianData,
    MatrixUnit,
    MLPUnit,
    OnlineSample,
    Perceptron,
    Teacher,
    dynamics,
    paper,
    simulate,
)
from wgflow.symmetry.schemes import SCHEMES

UNITS = {
    "perceptron": lambda a: Perceptron(3, 2, a),
    "perceptron-nobias": lambda a: Perceptron(2, 1, a, bias=False),
    "matrix": lambda a: MatrixUnit(2, 3, a),
    "mlp": lambda a: MLPUnit(3, (4, 3), 2, a),
    "mlp-nobias": lambda a: MLPUnit(2, 5, 1, a, bias=False),
}
#: (N, M): single particle or sample, and sizes that do not divide the tile (256 lanes at most)
SIZES = [(1, 1), (1, 9), (7, 1), (300, 13)]


def _relative_error(value, reference):
    return np.abs(value - reference).max() / max(np.abs(reference).max(), 1e-300)


def _case(unit, n, m, rng):
    theta = rng.standard_normal((n, unit.dim))
    x = 1.5 * rng.standard_normal((m, unit.d))
    return theta, x, rng.standard_normal((m, unit.c)), rng.uniform(0.1, 1.0, m)


def assert_matches_reference(kernels, unit, dtype, sizes, rng):
    """``kernels.network_output`` and ``kernels.vjp`` of ``unit`` in ``dtype`` against the
    float64 numpy reference, at each ``(N, M)`` of ``sizes``."""
    tol = TOL["exact"] if dtype == "float64" else TOL["float32"]
    for n, m in sizes:
        theta, x, u, w = _case(unit, n, m, rng)
        out = kernels.network_output(unit.spec, theta.astype(dtype), x)
        grad = kernels.vjp(unit.spec, theta.astype(dtype), x, u, w)
        assert out.dtype == grad.dtype == dtype
        assert _relative_error(out, layered.network_output(unit.spec, theta, x)) <= tol
        assert _relative_error(grad, layered.vjp(unit.spec, theta, x, u, w)) <= tol


#: (unit, activation, dtype): every activation in both dtypes, each unit family with several
#: activations in both dtypes. A kernel compiles per unit shape, activation and dtype, and the
#: passes generated for a unit call the activation's lane evaluation only, so these 14 cases
#: cover every generated pass and every activation without compiling all 70 combinations.
KERNEL_CASES = [(list(UNITS)[(i + 3 * j) % len(UNITS)], activation, dtype)
                for i, activation in enumerate(ACTIVATIONS)
                for j, dtype in enumerate(["float64", "float32"])]


@pytest.mark.parametrize(("kind", "activation", "dtype"), KERNEL_CASES)
def test_kernels_match_numpy_reference(kind, activation, dtype, rng):
    assert_matches_reference(compiled_layered, UNITS[kind](activation), dtype, SIZES, rng)


def test_kernel_cases_cover_every_unit_and_activation_in_both_dtypes():
    for dtype in ("float64", "float32"):
        assert {a for _, a, t in KERNEL_CASES if t == dtype} == set(ACTIVATIONS)
    assert all(len({(a, t) for u, a, t in KERNEL_CASES if u == kind}) >= 2
               and len({t for u, _, t in KERNEL_CASES if u == kind}) == 2 for kind in UNITS)


def test_chunked_and_parallel_paths_agree_bitwise_with_the_serial_one(rng, monkeypatch):
    unit = MLPUnit(3, (4,), 2, "tanh")
    theta, x, u, w = _case(unit, 1000, 20, rng)  # 4 tiles, serial: 2·10⁴ < PARALLEL_MIN_WORK
    assert not compiled_layered._parallel(theta, x)
    ref = layered.network_output(unit.spec, theta, x)
    serial_out = compiled_layered.network_output(unit.spec, theta, x)
    serial_grad = compiled_layered.vjp(unit.spec, theta, x, u, w)
    assert _relative_error(serial_out, ref) <= TOL["exact"]
    monkeypatch.setattr(compiled_layered, "PARALLEL_MIN_WORK", 1)
    assert compiled_layered._parallel(theta, x)
    np.testing.assert_array_equal(compiled_layered.vjp(unit.spec, theta, x, u, w), serial_grad)
    np.testing.assert_array_equal(compiled_layered.network_output(unit.spec, theta, x),
                                  serial_out)
    # fewer chunks than tiles: several tiles summed into each chunk's partial
    monkeypatch.setattr(compiled_layered, "MAX_CHUNKS", 3)
    assert compiled_layered.kernel_arguments(unit.spec, theta)[3] > \
        compiled_layered.kernel_arguments(unit.spec, theta)[2]
    assert _relative_error(compiled_layered.network_output(unit.spec, theta, x), ref) \
        <= TOL["exact"]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("integrator", ["euler", "heun"])
@pytest.mark.parametrize("dynamics", ["mf", "sgd"])
def test_compiled_flow_follows_the_numpy_reference(scheme, integrator, dynamics):
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 9, seed=3) + 0.01  # off E^G: every scheme moves it
    options = {"scheme": scheme, "dynamics": dynamics, "integrator": integrator, "T": 1.0,
               "step_scale": 20.0, "seed": 8, "record_every": 5}
    if dynamics == "mf":
        options["dt"] = 0.05
    assert_flow_matches_reference("numba", problem, start, options)


def assert_flow_matches_reference(backend, problem, start, options):
    """``simulate`` on ``backend`` follows the numpy reference: same frames, particles and
    observables to rounding, and the particles did move."""
    ref = simulate(problem, start, backend="numpy", **options)
    fast = simulate(problem, start, backend=backend, **options)
    assert fast.steps.tolist() == ref.steps.tolist()
    assert np.abs(ref.final - start).max() > TOL["visible"]
    assert _relative_error(fast.particles, ref.particles) <= TOL["exact"]
    for name, values in ref.observables.items():  # risks and distances of order ≤ 1
        np.testing.assert_allclose(fast.observables[name], values, rtol=TOL["exact"],
                                   atol=TOL["exact"])


def test_float32_flow_stays_float32_and_near_float64():
    problem = paper.problem("arbitrary")
    start = paper.student_init(problem, 12, seed=1)
    runs = {(backend, dtype): simulate(problem, start, dynamics="sgd", T=2.0, step_scale=50.0,
                                       noise="EG", backend=backend, dtype=dtype)
            for backend in ("numba", "numpy") for dtype in ("float32", "float64")}
    ref = runs["numpy", "float64"].particles
    for (backend, dtype), res in runs.items():
        assert res.particles.dtype == dtype
        tol = TOL["exact"] if dtype == "float64" else TOL["float32"]
        assert _relative_error(res.particles, ref) <= tol, (backend, dtype)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_trajectories_do_not_depend_on_frames_or_chunks(backend, monkeypatch):
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 8, seed=2) + 0.01
    for options in ({"dynamics": "sgd", "T": 1.0}, {"dynamics": "mf", "T": 0.5, "dt": 0.05}):
        options.update(scheme="DA", step_scale=20.0, seed=4, backend=backend)
        every_step = simulate(problem, start, record_every=1, **options)
        monkeypatch.setattr(dynamics, "CHUNK_NUMBERS", 1)  # one step per chunk
        sparse = simulate(problem, start, record_every=3, **options)
        monkeypatch.undo()
        same = np.searchsorted(every_step.steps, sparse.steps)
        np.testing.assert_array_equal(every_step.steps[same], sparse.steps)
        np.testing.assert_array_equal(every_step.particles[same], sparse.particles)


def test_DA_moves_a_fixed_sample_afresh_every_step(rng):
    problem = paper.problem("arbitrary")
    sample = FixedSample(*problem.data.sample(rng, 3)[:2])
    run, _ = dynamics.prepare(problem, paper.student_init(problem, 4), scheme="DA",
                              dynamics="mf", expectation=sample)
    x = dynamics._Chunk(run, 0, 0.0, 40).batches.x  # (steps, M, d)
    assert x.shape == (40, 3, 2)
    moved = np.any(x != sample.x[None], axis=2)  # (steps, M): the swap was drawn
    assert 0 < moved.mean() < 1 and len({tuple(row) for row in moved}) > 1


def _mlp_law(rng):
    unit = MLPUnit(3, (4,), 2, "tanh")
    return GaussianData(Teacher(unit, rng.standard_normal((6, unit.dim))), cov=2.0,
                        mean=[0.5, -1.0, 0.0])


TEACHERS = {"paper": lambda rng: paper.problem("arbitrary").data, "mlp-shifted": _mlp_law}


@pytest.mark.parametrize("teacher", list(TEACHERS))
def test_compiled_teacher_labels_match_the_numpy_reference(teacher, rng):
    """Online batches labelled by the compiled kernels (as the numba backend draws them): the
    same inputs and weights as the numpy reference's, and the labels to rounding."""
    online = OnlineSample(TEACHERS[teacher](rng), 20)
    ref = online.draw(np.random.default_rng(5), 300)
    fast = online.draw(np.random.default_rng(5), 300, compiled_layered)
    assert fast.y.shape == ref.y.shape == (300, 20, online.law.c)
    np.testing.assert_array_equal(fast.x, ref.x)
    np.testing.assert_array_equal(fast.w, ref.w)
    assert _relative_error(fast.y, ref.y) <= TOL["exact"]


@pytest.mark.parametrize(("backend", "kernels"), [("numba", compiled_layered),
                                                  ("numpy", layered)])
def test_online_labels_come_from_the_backends_kernels(backend, kernels):
    problem = paper.problem("arbitrary")
    run, _ = dynamics.prepare(problem, paper.student_init(problem, 4), dynamics="sgd",
                              backend=backend)
    batch = dynamics._Chunk(run, 0, 0.0, 30).batches
    x = batch.x.reshape(-1, problem.unit.d)
    np.testing.assert_array_equal(batch.y.reshape(len(x), -1), problem.data.teacher(x, kernels))


def test_small_n_scratch_changes_no_bit(monkeypatch):
    """Five particles fill 8 lanes of one 256-lane tile: the scratch and kept forward passes
    cut to those lanes give the steps of the whole tile bit for bit (SGD with FA, DA-orbit and
    Heun, noise on E^G; and the MF flow on enough samples for the parallel path)."""
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 5, seed=1) + 0.01
    tile = compiled_layered.kernel_arguments(problem.unit.spec, start)[2]
    assert compiled_flow.scratch_lanes(tile, 5) == 8 < tile
    sample = FixedSample(*problem.data.sample(np.random.default_rng(2), 7000)[:2])
    assert 5 * 7000 >= compiled_layered.PARALLEL_MIN_WORK
    runs = [{"dynamics": "sgd", "scheme": scheme, "integrator": "heun", "T": 2.0,
             "noise": "EG"} for scheme in ("FA", "DA-orbit")]
    runs.append({"dynamics": "mf", "T": 0.02, "dt": 0.01, "expectation": sample})

    def trajectories():
        return [simulate(problem, start, step_scale=20.0, seed=3, observables=(), **options)
                for options in runs]

    narrow = trajectories()
    monkeypatch.setattr(compiled_flow, "scratch_lanes", lambda tile, n: tile)
    for cut, whole in zip(narrow, trajectories(), strict=True):
        assert np.abs(whole.final - start).max() > TOL["visible"]
        np.testing.assert_array_equal(cut.particles, whole.particles)


@pytest.mark.parametrize("integrator", ["euler", "heun"])
@pytest.mark.parametrize("parallel", [False, True])
def test_a_step_that_would_leave_non_finite_particles_is_not_applied(integrator, parallel,
                                                                     monkeypatch):
    """An infinite step scale from step ``j`` on (Euler's step ``j``, Heun's corrector of step
    ``j − 1``): the call stops there and returns the particles of the steps before it, bit for
    bit those of a call of just those steps, whichever of its two buffers they are in (``j``
    odd and even); in parallel regions and on one thread."""
    monkeypatch.setattr(compiled_flow, "PARALLEL_MIN_WORK", 1 if parallel else 10**9)
    problem = paper.problem("arbitrary", beta=1e-3)
    run, first = dynamics.prepare(problem, paper.student_init(problem, 40, seed=1) + 0.01,
                                  scheme="EA", dynamics="sgd", T=1.0, step_scale=20.0,
                                  integrator=integrator, noise="EG")
    steps = 8
    (x, y, w), orbit, proj, tau, dt, scales, noise, heun = dynamics._flow_arguments(
        run, dynamics._Chunk(run, 0, 0.0, steps))
    assert len(x) == steps and noise is not None
    for j in (3, 4):
        blown = scales.copy()
        blown[j:] = np.inf
        theta = first.theta.copy()
        taken = compiled_flow.advance(problem.unit.spec, theta, (x, y, w), orbit, proj, tau, dt,
                                      blown, noise, heun)
        assert taken == (j if integrator == "euler" else j - 1)
        good = first.theta.copy()
        assert compiled_flow.advance(problem.unit.spec, good, (x[:taken], y[:taken], w[:taken]),
                                     orbit, proj, tau, dt, scales[:taken + 1],
                                     (*noise[:3], noise[3][:taken]), heun) == taken
        assert np.abs(good - first.theta).max() > TOL["visible"]
        np.testing.assert_array_equal(theta, good)
