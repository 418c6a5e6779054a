"""The inputs of online SGD batches (:class:`wgflow.data.GaussianData`): a diagonal
``cov^{1/2}`` scales the whitened draws instead of a matrix product, with the same bits."""

import numpy as np
import pytest

from wgflow import GaussianData, MatrixUnit, Teacher, paper


def _law(cov):
    unit = MatrixUnit(2, 2, "sigmoid")
    return GaussianData(Teacher(unit, paper.teacher_particles("arbitrary")), cov=cov)


@pytest.mark.parametrize("cov", [16.0, np.diag([0.5, 3.0])], ids=["scalar", "diagonal"])
def test_diagonal_covariance_scales_with_the_bits_of_the_matrix_product(cov, rng):
    law = _law(cov)
    assert law.sqrt_cov_diagonal is not None
    z = rng.standard_normal((1000, 2))
    np.testing.assert_array_equal(law.inputs(z), z @ law.sqrt_cov)


def test_a_full_covariance_keeps_the_matrix_product(rng):
    law = _law(np.array([[2.0, 0.5], [0.5, 1.0]]))
    assert law.sqrt_cov_diagonal is None
    z = rng.standard_normal((50, 2))
    np.testing.assert_array_equal(law.inputs(z), z @ law.sqrt_cov)
