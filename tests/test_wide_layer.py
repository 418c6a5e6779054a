"""The first layer of wide units on blocks of samples (:mod:`solvers.cpu.wide_layer`): the numpy
reference, and the same bits as the per-sample passes, at sizes that leave samples outside the
blocks and lanes outside whole vectors."""

import numba
import numpy as np
import pytest
from conftest import TOL
from test_kernels import _relative_error, assert_flow_matches_reference, assert_matches_reference

from solvers.cpu import flow as compiled_flow
from solvers.cpu import layered as compiled_layered
from solvers.cpu import tiles, wide_layer
from solvers.cpu.units import compiled_unit
from wgflow import FixedSample, MatrixUnit, MLPUnit, Perceptron, Problem, simulate

#: units whose first layer is wide: inputs a multiple of four and not, one output and several,
#: a bias or none, hidden layers above it or none
UNITS = {
    "perceptron-d33": Perceptron(33, 1, "tanh"),
    "perceptron-d100": Perceptron(100, 1, "tanh"),
    "matrix-d10": MatrixUnit(10, 3, "tanh"),
    "mlp-d37": MLPUnit(37, (3,), 2, "tanh"),
    "mlp-d9-nobias": MLPUnit(9, (5, 2), 1, "tanh", bias=False),
}
#: (N, M): one partial vector of lanes, a block and 3 lone samples; partial tiles (whole register
#: blocks of lanes and the lanes past them), 8 blocks and 2 lone samples, float32 sample sums
#: over 64, 64 and 2 samples, Python threads
SIZES = [(13, wide_layer.BLOCK + 3), (301, 130)]


def _case(unit, n, m, dtype, rng):
    theta = rng.standard_normal((n, unit.dim)) / np.sqrt(unit.d)
    x = rng.standard_normal((m, unit.d))
    return theta.astype(dtype), x, rng.standard_normal((m, unit.c)), rng.uniform(0.1, 1.0, m)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(UNITS))
def test_wide_units_take_the_blocks_and_match_the_numpy_reference(name, dtype, rng):
    unit = UNITS[name]
    compiled, _, tile, _ = compiled_layered.kernel_arguments(unit.spec,
                                                             np.empty((1, unit.dim), dtype))
    assert wide_layer.first_block(compiled, tile, dtype) is not None
    assert_matches_reference(compiled_layered, unit, dtype, SIZES, rng)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", ["perceptron-d33", "mlp-d37"])
def test_blocks_give_the_bits_of_the_per_sample_passes(name, dtype, rng, monkeypatch):
    """Each output and gradient element gets the same multiply–adds in the same order."""
    unit = UNITS[name]
    results = []
    for wide_min in (wide_layer.WIDE_MIN, unit.d + 1):  # blocks, then one sample at a time
        monkeypatch.setattr(wide_layer, "WIDE_MIN", wide_min)
        for n, m in SIZES:
            theta, x, u, w = _case(unit, n, m, dtype, np.random.default_rng(n))
            results.append(compiled_layered.network_output(unit.spec, theta, x))
            results.append(compiled_layered.vjp(unit.spec, theta, x, u, w))
    half = len(results) // 2
    for blocked, alone in zip(results[:half], results[half:], strict=True):
        np.testing.assert_array_equal(blocked, alone)


def test_generated_passes_branch_on_the_block_given_a_block_buffer_only():
    """Narrow passes are the per-sample ones; with a block buffer, the first layer's passes
    take a sample of a block from the buffer, the others from the sample."""
    table = compiled_unit(UNITS["perceptron-d33"].spec).table
    for generate in (tiles._forward_source, tiles._backward_source):
        alone, blocked = generate(table, False), generate(table, True)
        assert "first[" not in alone and "if s >= 0:" not in alone
        assert blocked.count("if s >= 0:") == 1 and "first[0, s, p]" in blocked
        assert blocked.count("xj = x[m, j]") == 1 == alone.count("xj = x[m, j]")


#: register blocks of the micro-kernel tests: none, and both sizes, compiled on any target
REGISTER_LANES = [0, 16, 32]


def _lanes_past_register_blocks(lanes):
    """Lanes ``n`` over two register blocks and a partial one, in a buffer of more lanes."""
    n = 2 * max(lanes, 8) + 5
    return n, n + 3


@pytest.mark.parametrize("lanes", REGISTER_LANES)
def test_gradient_block_is_the_sample_ordered_sum(lanes, rng):
    """The micro-kernels alone: ``grad[w + j] += Σ_s g_s x_{m+s, j}`` against numpy, on register
    blocks and the lanes past them, rows outside ``[w, w + d)`` and lanes from ``n`` untouched."""
    (n, width), d, block = _lanes_past_register_blocks(lanes), 11, wide_layer.BLOCK
    grad, g = rng.standard_normal((d + 3, width)), rng.standard_normal((block, width))
    x = rng.standard_normal((block + 6, d))
    expected = grad.copy()
    expected[2:2 + d, :n] += x[5:5 + block].T @ g[:, :n]
    wide_layer.gradient_block(grad, 2, g, x, 5, d, n, lanes)
    assert _relative_error(grad, expected) <= TOL["exact"]
    np.testing.assert_array_equal(grad[:2], expected[:2])
    np.testing.assert_array_equal(grad[:, n:], expected[:, n:])


@pytest.mark.parametrize("lanes", REGISTER_LANES)
@pytest.mark.parametrize("bias", [3, -1])
def test_affine_block_is_the_input_ordered_sum(bias, lanes, rng):
    (n, width), d, block = _lanes_past_register_blocks(lanes), 14, wide_layer.BLOCK
    tt, x = rng.standard_normal((d + 5, width)), rng.standard_normal((block + 3, d))
    out = np.full((block, width), np.nan)
    wide_layer.affine_block(out, tt, 5, bias, x, 2, d, n, lanes)
    expected = x[2:2 + block] @ tt[5:5 + d] + (tt[bias] if bias >= 0 else 0.0)
    assert _relative_error(out[:, :n], expected[:, :n]) <= TOL["exact"]
    assert np.isnan(out[:, n:]).all()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_register_blocks_give_the_bits_of_the_four_by_four_kernels(dtype, rng):
    """Every element gets the same multiply–adds in the same order with register blocks of
    any size as without them: inputs in order for ``z``, samples in order for the gradient."""
    (n, width), d, block = _lanes_past_register_blocks(32), 37, wide_layer.BLOCK
    tt = rng.standard_normal((d + 2, width)).astype(dtype)
    x = rng.standard_normal((block, d)).astype(dtype)
    g = rng.standard_normal((block, width)).astype(dtype)
    results = []
    for lanes in REGISTER_LANES:
        out, grad = np.zeros((block, width), dtype), np.ones((d, width), dtype)
        wide_layer.affine_block(out, tt, 0, d + 1, x, 0, d, n, lanes)
        wide_layer.gradient_block(grad, 0, g, x, 0, d, n, lanes)
        results.append((out, grad))
    for out, grad in results[1:]:
        np.testing.assert_array_equal(out, results[0][0])
        np.testing.assert_array_equal(grad, results[0][1])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_register_blocks_take_two_vectors_a_row_and_tiles_hold_whole_ones(dtype):
    lanes = wide_layer.register_lanes(dtype)
    if wide_layer.REGISTER_BLOCKS:
        assert lanes * np.dtype(dtype).itemsize == 2 * wide_layer.VECTOR_BYTES
        assert wide_layer.BLOCK == 16
    else:
        assert lanes == 0 and wide_layer.BLOCK == 8
    assert compiled_layered.MAX_TILE % max(8, lanes) == 0
    for unit in UNITS.values():
        tile = compiled_layered.tile_size(unit.spec, dtype)
        assert tile % 8 == 0 and tile % max(1, lanes) == 0
        assert max(8, lanes) <= tile <= compiled_layered.MAX_TILE


@pytest.mark.parametrize(("name", "features", "vector_bytes"),
                         [("haswell", "+avx2,+avx,-avx512f", 32),
                          ("skylake-avx512", "+avx,+avx512f", 64), ("", "+sse2,-avx", 16),
                          ("generic", "", 16)])
def test_register_blocks_follow_the_cpu_numba_compiles_for(name, features, vector_bytes,
                                                           monkeypatch):
    monkeypatch.setattr(numba.core.config, "CPU_NAME", name)
    monkeypatch.setattr(numba.core.config, "CPU_FEATURES", features)
    assert wide_layer._vector_bytes() == vector_bytes


def test_float32_sample_sums_end_on_block_ends():
    """A float32 gradient sum over ``SAMPLE_BLOCK`` samples is added to its float64 total
    after whole blocks of samples only."""
    assert compiled_layered.SAMPLE_BLOCK % wide_layer.BLOCK == 0


def _wide_problem(rng, m=70):
    unit = UNITS["perceptron-d33"]
    x = rng.standard_normal((m, unit.d))
    return Problem(unit, FixedSample(x, np.tanh(x[:, :1]))), x


def test_flow_of_a_wide_unit_follows_the_numpy_reference(rng):
    problem, _ = _wide_problem(rng)
    start = rng.standard_normal((13, problem.unit.dim)) / 6.0
    assert_flow_matches_reference(problem=problem, start=start, backend="numba",
                                  options={"T": 0.3, "dt": 0.1, "step_scale": 5.0})


def test_the_parallel_flow_gives_the_serial_bits_at_any_thread_count(rng, monkeypatch):
    """The compiled flow's parallel runs of a wide unit, each thread with its own block
    buffer, on 301 particles (two tiles, the second partial) and 130 samples."""
    problem, _ = _wide_problem(rng, m=130)
    start = rng.standard_normal((301, problem.unit.dim)) / 6.0
    options = {"dynamics": "mf", "T": 0.1, "dt": 0.05, "observables": ()}
    monkeypatch.setattr(compiled_flow, "PARALLEL_MIN_WORK", 10**9)
    serial = simulate(problem, start, **options)
    assert np.abs(serial.final - start).max() > TOL["visible"]
    monkeypatch.setattr(compiled_flow, "PARALLEL_MIN_WORK", 1)
    threads = numba.get_num_threads()
    try:
        for count in sorted({1, 2, threads}):
            numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
            np.testing.assert_array_equal(simulate(problem, start, **options).particles,
                                          serial.particles)
    finally:
        numba.set_num_threads(threads)


def test_compiled_tile_buffers_hold_a_block_buffer_not_an_optional_one():
    """The parallel kernels make their tiles' buffers in compiled code: the block buffer must be
    typed an array (an optional one would make the overloads compile the per-sample passes),
    and no buffer at all for a narrow unit."""
    wide, narrow = (compiled_unit(Perceptron(d, 1, "tanh").spec) for d in (33, 2))
    dtype = np.dtype("float64")
    block = wide_layer.first_block(wide, 16, dtype)
    made = compiled_layered.make_scratch(wide, 35, 16, dtype, block)
    assert made[-1].shape == block.shape
    # the signatures given a block buffer (other tests of this process may have compiled more)
    with_block = [signature for signature in compiled_layered.make_scratch.nopython_signatures
                  if len(signature.args) == 5
                  and isinstance(signature.args[-1], numba.types.Array)]
    assert with_block
    for signature in with_block:
        assert isinstance(signature.return_type[-1], numba.types.Array), signature
    assert compiled_layered.make_scratch(narrow, 4, 16, dtype)[-1] is None
