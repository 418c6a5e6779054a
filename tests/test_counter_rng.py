"""The counter-based normal generator (:mod:`solvers.cpu.counter_rng`): compiled = numpy reference,
and the numbers are standard normal and independent."""

import numpy as np
import pytest
from conftest import TOL
from numba import uint64

from solvers.cpu import counter_rng

KEYS = (1, 0xDEADBEEF12345678, 2**64 - 1)


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(("n", "k", "step"),
                         [(1, 1, 0), (7, 2, 3), (7, 1, 3), (5000, 4, 11), (4097, 5, 1)])
def test_compiled_noise_equals_the_numpy_reference(key, n, k, step, rng):
    basis = np.linalg.qr(rng.standard_normal((5, k)))[0]
    out = np.empty((n, 5))
    scratch = counter_rng.noise_scratch(n, basis)
    counter_rng.noise_into(uint64(key), step, basis, 0.3, out, scratch)
    z = counter_rng.normals(key, step * n * k, n * k).reshape(n, k)
    np.testing.assert_allclose(out, 0.3 * z @ basis.T, rtol=0, atol=TOL["exact"])
    parallel = n * k >= counter_rng.PARALLEL_MIN_NUMBERS
    assert parallel == (n > 1000)  # both paths covered, from even and odd first counters
    # the serial path draws into the caller's scratch; the parallel blocks allocate their own
    padded = -(-n // counter_rng.VECTOR) * counter_rng.VECTOR  # normals drawn by whole vectors
    assert [a.shape for a in scratch] == [(k, 0 if parallel else padded),
                                          (5, 0 if parallel else n)]
    assert [a.shape for a in counter_rng.noise_scratch(n, basis[:, :0])] == [(0, 0), (5, 0)]
    # a caller compiled without parallel code draws on one thread at any size, into its scratch
    serial = counter_rng.noise_scratch(n, basis, serial=True)
    assert [a.shape for a in serial] == [(k, padded), (5, n)]
    one_thread = np.empty_like(out)
    counter_rng.noise_on_one_thread(uint64(key), step, basis, 0.3, one_thread, serial)
    np.testing.assert_array_equal(one_thread, out)


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
