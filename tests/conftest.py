"""Shared test configuration: every numerical tolerance of the test suite lives here."""

import numpy as np
import pytest

#: Tolerances, by purpose. Relative unless the name says otherwise.
TOL = {
    # exact identities evaluated in float64 (projector algebra, closed forms, reference kernels)
    "exact": 1e-12,
    # invariants of the flow that hold exactly in exact arithmetic, after many steps of rounding
    "invariant": 1e-12,
    # central finite differences with step 1e-6 on smooth functions
    "fd": 1e-6,
    # two independent exact solvers (POT emd vs. closed form, two derivations of P_G)
    "solver": 1e-9,
    # statistical checks: allowed deviation in standard errors of the estimate
    "sigmas": 4.0,
    # fitted convergence order of an integrator against the theoretical one
    "order": 0.15,
}


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)
