"""The tile passes generated from a unit's layer table (:mod:`solvers.cpu.tiles`,
:mod:`solvers.cpu.units`): one compiled type per table, constant rows with the lanes as the
only loop, and wide layers split over several passes still matching the numpy reference."""

import re
from fractions import Fraction

import numba
import numpy as np
import pytest
from conftest import TOL
from numba import njit

from solvers import layered
from solvers.cpu import layered as compiled_layered
from solvers.cpu import tiles
from solvers.cpu.units import compiled_unit
from wgflow import MatrixUnit, MLPUnit, Perceptron, paper


def test_each_layer_table_is_its_own_compiled_type():
    matrix = compiled_unit(paper.problem("arbitrary").unit.spec)
    assert matrix.table == ((2, 2, 0, -1, 1, 0),)
    assert (matrix.rows, matrix.width, matrix.out_row) == (2, 2, 0)
    assert compiled_unit(MatrixUnit(2, 2, "tanh").spec)._numba_type_ == matrix._numba_type_
    perceptron = compiled_unit(Perceptron(2, 1, "sigmoid").spec)
    assert perceptron._numba_type_ != matrix._numba_type_
    assert (perceptron.rows, perceptron.width, perceptron.out_row) == (2, 1, 1)


@pytest.mark.parametrize("unit", [paper.problem("arbitrary").unit, MLPUnit(3, (4, 3), 2, "tanh")],
                         ids=["matrix", "mlp"])
def test_generated_passes_loop_over_lanes_only(unit):
    """Every loop of the generated passes runs over the lanes, over a layer's constant rows for
    its activation, or over a layer's outputs ``k`` (its affine map and activation fused in one
    pass); every row index is a constant, or a constant offset of ``k`` (with a block buffer
    or without)."""
    table = compiled_unit(unit.spec).table
    bounds_of = {"p": r"n", "r": r"\d+, \d+", "k": r"\d+"}
    for source in (generate(table, blocked) for blocked in (False, True)
                   for generate in (tiles._forward_source, tiles._backward_source)):
        loops = re.findall(r"for (\w+) in range\(([^)]*)\)", source)
        assert loops and all(re.fullmatch(bounds_of[name], bounds) for name, bounds in loops)
        assert all(re.fullmatch(r"\d+( \+ k( \* \d+ \+ \d+)?)?", row)
                   for row in re.findall(r"\b(?:tt|z|h|dh|g|g_next|grad)\[([^,\]]+), p\]",
                                         source))


def test_an_activated_layer_of_few_inputs_is_one_pass_with_its_activation():
    """The matrix unit's forward pass: per output ``k``, ``z_k = W_k1 x_1 + W_k0 x_0`` and
    ``σ(z_k)`` in the same lane loop, from the register (an 8-lane tile otherwise reads ``z``
    back from stores of another vector width), ``z`` never stored; a first layer of 40 inputs
    keeps its looped affine map and the activation's own loop."""
    matrix = tiles._forward_source(compiled_unit(paper.problem().unit.spec).table, False)
    assert matrix.count("for p in range(n):") == 1
    assert "for k in range(2):" in matrix and "activate(activation, zk, h, dh, 0 + k, p)" in matrix
    assert "z[" not in matrix
    wide = tiles._forward_source(compiled_unit(Perceptron(40, 1, "tanh").spec).table, False)
    assert "for k in range" not in wide and "for r in range(0, 1):" in wide


def test_wide_layers_loop_or_split_over_passes():
    """A first layer of 40 inputs loops over them (its code does not grow with ``d``); a hidden
    layer of 20 outputs exceeds one pass: its sums continue through the buffers, in order."""
    narrow, wide = (compiled_unit(Perceptron(d, 1, "tanh").spec).table for d in (16, 40))
    assert not any("for j" in line for line in tiles.affine_of_sample(narrow))
    affine = tiles.affine_of_sample(wide)
    assert "for j in range(1, 40):" in affine and len(affine) == 6
    assert "for j in range(40):" in tiles._backward_source(wide, False)
    hidden = compiled_unit(MLPUnit(2, (4, 20), 1, "tanh").spec).table
    backward = tiles._backward_source(hidden, False)  # Σ over 20 outputs for each of 4 inputs
    assert backward.count(" g[0, p] = t0") == 2 and "t0 = g[0, p]" in backward


@pytest.mark.parametrize("unit", [Perceptron(40, 1, "tanh"), MLPUnit(2, (4, 20), 1, "tanh")],
                         ids=["wide-input", "wide-hidden"])
def test_split_passes_match_the_numpy_reference(unit, rng):
    theta = rng.standard_normal((11, unit.dim)) / 3.0
    x = rng.standard_normal((5, unit.d))
    u, w = rng.standard_normal((5, unit.c)), rng.uniform(0.1, 1.0, 5)
    out = compiled_layered.network_output(unit.spec, theta, x)
    grad = compiled_layered.vjp(unit.spec, theta, x, u, w)
    ref_out = layered.network_output(unit.spec, theta, x)
    ref_grad = layered.vjp(unit.spec, theta, x, u, w)
    assert np.abs(out - ref_out).max() <= TOL["exact"] * np.abs(ref_out).max()
    assert np.abs(grad - ref_grad).max() <= TOL["exact"] * np.abs(ref_grad).max()


def _fma(a, b, c):
    """``a·b + c`` rounded once (a float of an exact fraction is correctly rounded)."""
    return float(Fraction(a) * Fraction(b) + Fraction(c))


@pytest.mark.parametrize("d", [3, 20], ids=["unrolled", "looped"])
def test_sums_run_in_the_documented_order_bitwise(d, rng):
    """``z = fma(W_{d-1}, x_{d-1}, … fma(W_1, x_1, W_0 x_0))`` without a bias,
    ``fma(…, fma(W_0, x_0, b))`` with one, whether the inputs are unrolled or looped over: one
    particle and one sample, read through ``relu`` on ``z > 0`` and ``identity``."""
    matrix, perceptron = MatrixUnit(d, 3, "relu"), Perceptron(d, 2, "identity")
    x = np.abs(rng.standard_normal((1, d))) + 0.5
    w = np.abs(rng.standard_normal((1, 3 * d))) + 0.5
    out = compiled_layered.network_output(matrix.spec, w, x)[0]
    expected = []
    for k in range(3):
        z = w[0, d * k] * x[0, 0]
        for j in range(1, d):
            z = _fma(w[0, d * k + j], x[0, j], z)
        expected.append(float(z))
    assert [float(v) for v in out] == expected
    theta = rng.standard_normal((1, perceptron.dim))  # offsets from the unit's layers
    spec = perceptron.spec.layers
    z = theta[0, spec[0].b_offset]
    for j in range(d):
        z = _fma(theta[0, spec[0].w_offset + j], x[0, j], z)
    out = compiled_layered.network_output(perceptron.spec, theta, x)[0]
    assert [float(v) for v in out] == [float(theta[0, spec[1].w_offset + k] * z) for k in range(2)]


@njit
def _lane_sum_of(buf, r, n):
    return tiles.lane_sum(buf, r, n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lane_sums_run_in_the_documented_order_bitwise(dtype, rng):
    """``lane_sum``: over the whole vectors of eight lanes, ``LANE_CHAINS`` chains of eight
    float64 partial sums (chain ``a`` the vectors ``v ≡ a mod 4`` in order, the last ``V mod 4``
    vectors going on in chain 0), added ``(c0 + c1) + (c2 + c3)``; the last ``n mod 8`` lanes
    added to the first partial sum; then ``((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))``
    (values of mixed scales, so that another order would round differently)."""
    assert tiles.LANE_CHAINS == 4
    buf = (rng.standard_normal((2, 264)) * 10.0 ** rng.integers(-8, 9, (2, 264))).astype(dtype)
    for n in (0, 1, 7, 8, 13, 31, 32, 40, 136, 255, 264):
        row = buf[1].astype(np.float64)
        vectors = n // 8
        chains = np.zeros((4, 8))
        rounds = vectors // 4
        for v in range(4 * rounds):
            chains[v % 4] += row[8 * v:8 * v + 8]
        for v in range(4 * rounds, vectors):
            chains[0] += row[8 * v:8 * v + 8]
        s = list((chains[0] + chains[1]) + (chains[2] + chains[3]))
        for p in range(8 * vectors, n):
            s[0] += row[p]
        expected = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
        assert _lane_sum_of(buf, 1, n) == expected, n


def test_lane_sums_refuse_a_strided_buffer():
    with pytest.raises(numba.TypingError, match="_lane_partial_sums"):
        _lane_sum_of(np.zeros((2, 16))[:, ::2], 0, 8)


def test_passes_are_compiled_code_only():
    with pytest.raises(TypeError, match="compiled kernels only"):
        tiles.forward(None, None, None, None, 0, 8, None, None, None)
    with pytest.raises(TypeError, match="compiled kernels only"):
        tiles.backpropagate(None, None, None, 0, None, 8, None, None, None, None, None)


@pytest.mark.parametrize("unit", [paper.problem("arbitrary").unit, MLPUnit(3, (4, 3), 2, "tanh")],
                         ids=["matrix", "mlp"])
def test_the_backward_pass_of_samples_stores_each_gradient_row_once(unit):
    """``backpropagate_samples`` loops over the lanes only, and loads and stores each gradient
    row once, its terms of all ``SAMPLES`` samples chained in one statement."""
    source = tiles._backward_samples_source(compiled_unit(unit.spec).table)
    loops = re.findall(r"for (\w+) in range\(([^)]*)\)", source)
    assert loops and all(loop == ("p", "n") for loop in loops)
    stores = re.findall(r"^\s*grad\[(\d+), p\] = (.*)$", source, re.MULTILINE)
    assert sorted(int(row) for row, _ in stores) == list(range(unit.dim))
    last = f"_{tiles.SAMPLES - 1}"
    assert all(value.count(f"grad[{row}, p]") == 1 and last in value for row, value in stores)


def test_only_small_narrow_units_take_the_samples_four_at_a_time():
    """The parallel kernels compile the four-sample backward pass for a narrow unit whose
    parameters fit one lane pass only: not for a larger one, nor for a wide first layer (its
    own blocks)."""
    @njit
    def by_samples(unit):
        return tiles.by_samples(unit) is not None

    assert by_samples(compiled_unit(paper.problem("arbitrary").unit.spec))  # D = 4
    assert by_samples(compiled_unit(Perceptron(7, 1, "tanh").spec))  # D = 9
    assert by_samples(compiled_unit(MLPUnit(2, (2,), 2, "tanh").spec))  # D = 12
    assert not by_samples(compiled_unit(Perceptron(8, 1, "tanh").spec))  # wide
    assert not by_samples(compiled_unit(MLPUnit(3, (4,), 2, "tanh").spec))  # D = 26
