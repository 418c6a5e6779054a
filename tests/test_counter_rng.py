"""The counter-based normal generator (:mod:`solvers.cpu.counter_rng`): compiled = numpy reference,
and the numbers are standard normal and independent."""

import itertools

import numpy as np
import pytest
from conftest import TOL
from numba import uint64

from solvers.cpu import counter_rng

KEYS = (1, 0xDEADBEEF12345678, 2**64 - 1)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(("n", "k", "step", "lanes"),
                         [(1, 1, 0, 8), (7, 2, 3, 8), (7, 1, 3, 8), (5000, 4, 11, 256),
                          (4097, 5, 1, 64), (300, 3, 2, 16)])
def test_compiled_noise_equals_the_numpy_reference(key, n, k, step, lanes, rng):
    """The noise as tiles of ``lanes`` particles: particle ``t P + p`` in lane ``p`` of tile
    ``t``, the lanes past ``N`` not written; drawn tile range by tile range (as the flow's
    threads draw it), the same numbers."""
    basis = np.linalg.qr(rng.standard_normal((5, k)))[0]
    n_tiles = -(-n // lanes)
    out = np.full((n_tiles, 5, lanes), np.nan)
    z = counter_rng.noise_scratch(lanes, basis)
    assert z.shape == (k, lanes)
    counter_rng.noise_on_tiles(uint64(key), step, basis, 0.3, n, out, 0, n_tiles, z)
    untiled = out.transpose(0, 2, 1).reshape(n_tiles * lanes, 5)
    reference = counter_rng.normals(key, step * n * k, n * k).reshape(n, k)
    np.testing.assert_allclose(untiled[:n], 0.3 * reference @ basis.T, rtol=0, atol=TOL["exact"])
    assert np.isnan(untiled[n:]).all()
    in_ranges = np.full_like(out, np.nan)
    cuts = sorted({0, n_tiles // 3, n_tiles // 2, n_tiles})
    for first, last in itertools.pairwise(cuts):
        counter_rng.noise_on_tiles(uint64(key), step, basis, 0.3, n, in_ranges, first, last, z)
    np.testing.assert_array_equal(in_ranges, out)


@pytest.mark.parametrize("key", KEYS)
def test_any_part_of_a_stream_is_the_same_numbers(key):
    """Numbers come in Box–Muller pairs from even counters; a part starting at an odd counter,
    or of odd length, is the same numbers as the whole."""
    whole = counter_rng.normals(key, 100, 21)
    for start, count in ((100, 21), (101, 20), (101, 1), (107, 0), (120, 1)):
        np.testing.assert_array_equal(counter_rng.normals(key, start, count),
                                      whole[start - 100:start - 100 + count])


@pytest.mark.parametrize("key", KEYS)
def test_numbers_are_standard_normal_and_independent(key):
    m = 400_000
    z = counter_rng.normals(key, 10**9, m)
    other = counter_rng.normals(key ^ 1, 10**9, m)
    se = TOL["sigmas"] / np.sqrt(m)
    assert abs(z.mean()) < se
    assert abs(z.var() - 1.0) < TOL["sigmas"] * np.sqrt(2.0 / m)
    assert abs(np.mean(z**4) - 3.0) < TOL["sigmas"] * np.sqrt(96.0 / m)
    assert abs(np.mean(z[1:] * z[:-1])) < se  # neighbouring counters
    assert abs(np.mean(z * other)) < se  # neighbouring keys
    assert abs(np.mean(z > 1.959964) - 0.025) < TOL["sigmas"] * np.sqrt(0.025 * 0.975 / m)
