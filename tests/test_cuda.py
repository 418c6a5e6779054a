"""The CUDA backend (:mod:`solvers.cuda.kernels`, :mod:`solvers.cuda.driver`) against the numpy
reference. Without a GPU these run on numba's CUDA simulator (set by ``conftest.py``); with
``NUMBA_ENABLE_CUDASIM=0`` on a GPU machine they run on the device, and so do the tests marked
``gpu``. ``test_every_kernel_compiles_for_an_H100`` compiles the real kernels to PTX without a
GPU."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numba
import numpy as np
import pytest
from conftest import TOL
from numba import cuda
from test_kernels import (
    UNITS,
    _case,
    _relative_error,
    assert_flow_matches_reference,
    assert_matches_reference,
)

import solvers
from solvers import cuda as solvers_cuda
from solvers.activations import ACTIVATIONS
from solvers.cpu import counter_rng
from solvers.cpu import flow as compiled_flow
from solvers.cuda import kernels as cuda_kernels
from wgflow import FixedSample, dynamics, paper, simulate
from wgflow.cli import main
from wgflow.symmetry.schemes import SCHEMES

driver = solvers_cuda.backend()
ON_SIMULATOR = numba.config.ENABLE_CUDASIM
#: (N, M): one particle and sample, and sizes that leave partial blocks and chunks
SIZES = [(1, 1), (37, 11)]
requires_gpu = pytest.mark.skipif(
    ON_SIMULATOR or not cuda.is_available(),
    reason="needs a CUDA GPU: run with NUMBA_ENABLE_CUDASIM=0 on a machine with one")


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    """On the simulator: blocks of 32 threads and chunks of at least 8 items, targeting 64
    threads per launch, so that the small cases have partial blocks and several chunks of
    particles (forward) and of samples (backward), one of them partial. On a GPU the
    production settings run."""
    if ON_SIMULATOR:
        monkeypatch.setattr(driver, "THREADS_PER_BLOCK", 32)
        monkeypatch.setattr(driver, "MIN_CHUNK", 8)
        monkeypatch.setattr(driver, "TARGET_THREADS", 64)


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("kind", list(UNITS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kernels_match_numpy_reference(kind, activation, dtype, rng):
    assert_matches_reference(driver, UNITS[kind](activation), dtype, SIZES, rng)


def test_chunks_partition_every_sum(monkeypatch):
    monkeypatch.setattr(driver, "TARGET_THREADS", 1 << 18)
    monkeypatch.setattr(driver, "MIN_CHUNK", 32)
    assert driver.chunk_size(37, 11, 1, 8) == 19  # two chunks of at least MIN_CHUNK / 2
    assert driver.chunk_size(10**5, 10**5, 1, 4) == 4000  # chunks of at most MAX_CHUNK
    assert driver.chunk_size(10**6, 40, 2, 4) == 153  # a minibatch: 6554 chunks, 2¹⁸ threads
    assert driver.chunk_size(0, 40, 2, 4) == 1  # no samples: one empty chunk
    assert driver.chunk_size(10**7, 1, 1, 4) == 153  # 65359 chunks: a grid's limit is 65535
    assert driver.chunk_size(10**6, 10**6, 1, 4) == 14926  # 67 partials (M, 1) fit 256 MB
    for items in (1, 7, 8, 33, 10**6, 10**7):
        for lanes in (1, 20, 10**6):
            chunk = driver.chunk_size(items, lanes, 2, 8)
            chunks, fits = -(-items // chunk), driver.PARTIAL_BYTES // (lanes * 16)
            assert chunks <= driver.MAX_CHUNKS and chunk >= min(items, driver.MIN_CHUNK) // 2
            assert chunks <= max(1, fits)  # the partials fit the memory cap
            if chunks < min(fits, driver.MAX_CHUNKS):  # no cap binds: chunks are short
                assert chunk <= driver.MAX_CHUNK


def test_device_normals_match_the_numpy_reference():
    @cuda.jit
    def draw(key, start, out):
        i = cuda.grid(1)
        if i < out.shape[0]:
            out[i] = cuda_kernels.normal(key, numba.uint64(start + i))

    key, start = counter_rng.stream_key(np.random.SeedSequence(5)), 10**12
    out = cuda.device_array(200)
    draw[7, 32](np.uint64(key), start, out)
    np.testing.assert_array_max_ulp(out.copy_to_host(), counter_rng.normals(key, start, 200),
                                    maxulp=TOL["ulp"])


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("integrator", ["euler", "heun"])
@pytest.mark.parametrize("dynamics_kind", ["mf", "sgd"])
def test_flow_follows_the_numpy_reference(scheme, integrator, dynamics_kind, rng):
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 9, seed=3) + 0.01  # off E^G: every scheme moves it
    options = {"scheme": scheme, "dynamics": dynamics_kind, "integrator": integrator,
               "step_scale": 20.0, "seed": 8, "record_every": 5, "T": 1.0}
    if dynamics_kind == "mf":  # a fixed sample: the quadrature is slow on the simulator
        options.update(T=0.5, dt=0.05, expectation=FixedSample(*problem.data.sample(rng, 15)))
    assert_flow_matches_reference("cuda", problem, start, options)


@pytest.mark.parametrize("noise", ["full", "EG"])
def test_float32_flow_stays_float32_and_near_float64(noise):
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 12, seed=1)
    options = {"dynamics": "sgd", "T": 2.0, "step_scale": 50.0, "noise": noise, "seed": 2,
               "observables": ()}
    ref = simulate(problem, start, backend="numpy", **options).particles
    res = simulate(problem, start, backend="cuda", dtype="float32", **options)
    assert res.particles.dtype == np.float32
    assert _relative_error(res.particles, ref) <= TOL["float32"]


def test_results_do_not_depend_on_the_launch_configuration(rng, monkeypatch):
    unit = UNITS["mlp"]("tanh")
    theta, x, u, w = _case(unit, 37, 11, rng)
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 37, seed=3)
    options = {"scheme": "FA", "dynamics": "sgd", "T": 7 / 37, "step_scale": 20.0, "seed": 1,
               "observables": (), "backend": "cuda"}
    runs = []
    for threads in (32, 64, 1):
        monkeypatch.setattr(driver, "THREADS_PER_BLOCK", threads)
        runs.append((driver.network_output(unit.spec, theta, x),
                     driver.vjp(unit.spec, theta, x, u, w),
                     simulate(problem, start, **options).particles))
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_particles_stay_on_the_device_between_frames(monkeypatch):
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 6, seed=1)
    uploads, to_device = [], driver.to_device
    monkeypatch.setattr(driver, "to_device", lambda a: uploads.append(a.shape) or to_device(a))
    res = simulate(problem, start, dynamics="sgd", T=2.0, record_every=3, backend="cuda",
                   observables=("risk", "teacher_l2"))  # computed on the device copy
    assert len(res.times) == 5 and uploads == [start.shape]


def test_advance_on_a_device_array_equals_the_host_call(rng):
    problem = paper.problem("arbitrary", beta=1e-3)
    run, first = dynamics.prepare(problem, paper.student_init(problem, 5, seed=1),
                                  dynamics="sgd", T=1.0, scheme="EA", backend="cuda")
    chunk = dynamics._Chunk(run, 0, 0.0, 5)  # odd: the result is in the second buffer
    args = dynamics._flow_arguments(run, chunk)
    on_host = first.theta.copy()
    assert driver.advance(problem.unit.spec, on_host, *args) == 5
    on_device = driver.to_device(first.theta)
    assert driver.advance(problem.unit.spec, on_device, *args) == 5
    np.testing.assert_array_equal(on_device.copy_to_host(), on_host)
    assert np.abs(on_host - first.theta).max() > TOL["visible"]


def test_a_diverging_run_keeps_its_good_frames_as_on_the_cpu():
    problem = paper.problem("arbitrary")
    start = paper.student_init(problem, 6, seed=1)
    runs, messages = {}, {}
    for backend in ("numba", "cuda"):
        with warnings.catch_warnings(record=True) as caught:  # the simulator's overflows too
            warnings.simplefilter("always")
            runs[backend] = simulate(problem, start, dynamics="sgd", T=20.0, step_scale=1e9,
                                     record_every=1, backend=backend, observables=())
        messages[backend] = [str(w.message) for w in caught if w.category is UserWarning]
    assert messages["cuda"] == messages["numba"] and "NaN/inf at step" in messages["cuda"][0]
    assert runs["cuda"].status == "diverged" and np.all(np.isfinite(runs["cuda"].particles))
    assert runs["cuda"].steps.tolist() == runs["numba"].steps.tolist()
    assert _relative_error(runs["cuda"].particles, runs["numba"].particles) <= TOL["exact"]


@pytest.mark.parametrize(("integrator", "dtype"), [
    ("euler", "float64"), ("heun", "float64"),
    ("euler", "float32"),  # float32 overflows first: the stored value is the one checked
])
def test_a_diverging_step_within_a_call_is_not_applied_as_on_the_cpu(integrator, dtype):
    problem = paper.problem("arbitrary")
    run, first = dynamics.prepare(problem, paper.student_init(problem, 6, seed=1),
                                  dynamics="sgd", T=20.0, step_scale=1e10, integrator=integrator,
                                  dtype=dtype, backend="cuda")
    args = dynamics._flow_arguments(run, dynamics._Chunk(run, 0, 0.0, 120))
    on_cpu, on_gpu = first.theta.copy(), first.theta.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the simulator's overflows
        done = driver.advance(problem.unit.spec, on_gpu, *args)
    assert compiled_flow.advance(problem.unit.spec, on_cpu, *args) == done
    assert 2 < done < 120  # good steps, then one that would overflow and the ones it skips
    assert np.all(np.isfinite(on_gpu))
    tol = TOL["exact"] if dtype == "float64" else TOL["float32"]
    assert _relative_error(on_gpu, on_cpu) <= tol


def test_without_numba_cuda_the_error_says_how_to_install(monkeypatch):
    find_spec = solvers_cuda.importlib.util.find_spec
    monkeypatch.setattr(solvers_cuda.importlib.util, "find_spec",
                        lambda name: None if name == "numba_cuda" else find_spec(name))
    problem = paper.problem("arbitrary")
    with pytest.raises(ValueError, match=r"pip install 'wgflow\[cuda\]'"):
        simulate(problem, paper.student_init(problem, 3), backend="cuda")


def test_without_a_gpu_the_error_says_what_is_missing(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"no usable CUDA GPU.*nvidia-smi"):
        solvers_cuda.backend()
    code = main(["run", "--out", str(tmp_path / "r.h5"), "--quiet", "--set", "run.backend=cuda"])
    assert code == 2 and "no usable CUDA GPU" in capsys.readouterr().err
    assert main(["bench", "--backend", "cuda"]) == 2
    assert "no usable CUDA GPU" in capsys.readouterr().err


def test_importing_wgflow_does_not_import_cuda():
    code = ("import sys, wgflow, wgflow.cli; "
            "print(sorted(m for m in sys.modules if m.startswith(('numba.cuda', 'numba_cuda'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


_COMPILE_SCRIPT = textwrap.dedent("""
    import json, sys
    import numba
    import numpy as np
    from numba import cuda
    from numba.types import Array, boolean, float64, int64, uint64
    from solvers.cuda.kernels import kernels_for
    from wgflow import MatrixUnit, MLPUnit, Perceptron

    def signatures(dtype):
        real = numba.from_dtype(np.dtype(dtype))
        a2, a3 = Array(real, 2, "C"), Array(real, 3, "C")
        a1, f2, i1 = Array(real, 1, "C"), Array(float64, 2, "C"), Array(int64, 1, "C")
        return {
            "forward_partials": (a2, a3, int64, int64, a3),
            "network_sum": (a3, real, a2),
            "coefficients": (a3, real, a3, a2, int64, a3, a1, boolean, a2, a2),
            "gradient_partials": (a2, a3, int64, a2, int64, a3),
            "gradient": (a3, a2),
            "update": (a2, a2, a3, float64, float64, a2, float64, uint64, int64, f2, float64,
                       int64, int64, a2, a2, i1),
        }

    units = [Perceptron(3, 2, a) for a in sys.argv[1].split(",")]
    units += [MatrixUnit(2, 2, "sigmoid"), MLPUnit(3, (4, 3), 2, "tanh", bias=False)]
    compiled = []
    for dtype in ("float64", "float32"):
        for unit in units:
            kernels = kernels_for(unit.spec, dtype)
            for name, sig in signatures(dtype).items():
                if unit.spec.activation != "tanh" and name != "gradient_partials":
                    continue  # it holds every device function of the unit
                ptx, _ = cuda.compile_ptx(getattr(kernels, name).py_func, sig, cc=(9, 0))
                if ".target sm_90" in ptx:
                    compiled.append([dtype, unit.spec.activation, len(unit.spec.layers), name,
                                     ".f64" in ptx, ".local" in ptx])
    print(json.dumps(compiled))
""")


def test_every_kernel_compiles_for_an_H100():
    """Type inference, lowering and NVVM for every kernel and activation, both precisions,
    to PTX for compute capability 9.0 — no GPU needed, only the CUDA toolkit libraries that
    ``numba-cuda[cu12]`` installs."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    probe = subprocess.run([sys.executable, "-c", "from numba import cuda; "
                            "cuda.compile_ptx(lambda: None, (), cc=(9, 0))"],
                           capture_output=True, text=True, env=env)
    if probe.returncode != 0 and not os.environ.get("CI"):
        pytest.skip("no NVVM/NVRTC to compile with: pip install 'wgflow[cuda]' "
                    f"({probe.stderr.strip().splitlines()[-1]})")
    assert probe.returncode == 0, probe.stderr  # CI installs the toolkit libraries
    done = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT, ",".join(ACTIVATIONS)],
                          capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(solvers.__file__)))
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    compiled = {tuple(row[:4]) for row in rows}
    kernels = {"forward_partials", "network_sum", "coefficients", "gradient_partials",
               "gradient", "update"}
    for dtype in ("float64", "float32"):
        assert {(dtype, a, 2, "gradient_partials") for a in ACTIVATIONS} <= compiled
        assert {(dtype, "tanh", 3, name) for name in kernels} <= compiled  # MLP unit
        assert {(dtype, "tanh", 2, name) for name in kernels} <= compiled
    # the float32 interaction kernels of the perceptron: no float64 arithmetic, no local memory
    hot = [row for row in rows if row[0] == "float32" and row[2] == 2
           and row[3] in ("forward_partials", "gradient_partials")]
    assert len(hot) == len(ACTIVATIONS) + 1 and not any(row[4] or row[5] for row in hot)


@pytest.mark.gpu
@requires_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gpu_flow_matches_the_cpu_backend_at_scale(dtype, rng):
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 20_000, seed=1) + 0.01
    options = {"scheme": "FA", "dynamics": "mf", "T": 0.05, "dt": 0.01, "step_scale": 20.0,
               "expectation": FixedSample(*problem.data.sample(rng, 5000)), "dtype": dtype}
    ref = simulate(problem, start, backend="numba", **options)
    res = simulate(problem, start, backend="cuda", **options)
    tol = TOL["exact"] if dtype == "float64" else TOL["float32"]
    assert _relative_error(res.particles, ref.particles) <= tol
