"""The exact invariants of the paper's claim 4 (FA and EA keep SI laws SI), at small N, to
rounding."""

import numpy as np
import pytest
from conftest import TOL

from wgflow import FixedSample, laws, paper, simulate
from wgflow.data import orbit_closed

N = 6
#: MF horizon of the SGD invariance runs. E^G is invariant but not attracting under FA on this
#: problem: a 1e-9 offset grows ~10^5-fold by t = 40 (~10^2 for full-orbit DA), so rounding errors
#: are amplified: ~1e-14 off E^G at t = 10, but 1e-12 at t = 20 on some noise realizations.
T_SGD = 12


def _off_EG(result, problem):
    """max over frames and particles of |θ − P_G θ|."""
    p = problem.symmetry.projector
    return np.abs(result.particles - result.particles @ p).max()


@pytest.fixture(params=["numba", "numpy", "cuda"])
def backend(request):
    """Every invariant is checked on the compiled CPU backend, on the numpy reference and on
    the CUDA backend (numba's simulator without a GPU). Runs record only the observables the
    test reads: the simulator spends its time on the population risk."""
    return request.param


@pytest.fixture(scope="module")
def problem():
    return paper.problem("arbitrary", beta=1e-4)


@pytest.fixture(scope="module")
def symmetric_problem():
    """Exactly symmetric data law: the WI teacher makes ``(ρ_g X, ρ̂_g Y) ~ (X, Y)``."""
    return paper.problem("WI", beta=1e-4)


@pytest.fixture(scope="module")
def si_start(problem):
    return paper.student_init(problem, N, seed=1)


@pytest.mark.parametrize("scheme", ["FA", "DA-orbit", "EA"])
def test_symmetrized_sgd_stays_in_EG(problem, si_start, scheme, backend):
    res = simulate(problem, si_start, scheme=scheme, dynamics="sgd", T=T_SGD,
                   step_scale=50.0, noise="EG", seed=2, backend=backend,
                   observables=("distance_to_EG",))
    assert res.steps[-1] == T_SGD * N
    assert _off_EG(res, problem) <= TOL["invariant"]
    assert res.observables["distance_to_EG"].max() <= TOL["invariant"]
    assert np.abs(res.final - si_start).max() > TOL["visible"]  # the particles did move


def test_vanilla_population_flow_stays_in_EG(symmetric_problem, si_start, backend):
    problem = symmetric_problem
    res = simulate(problem, si_start, scheme="vanilla", dynamics="mf", T=1.0, dt=0.05,
                   step_scale=50.0, noise="EG", seed=3, backend=backend, observables=())
    assert _off_EG(res, problem) <= TOL["invariant"]
    assert np.abs(res.final - si_start).max() > TOL["visible"]


def test_vanilla_on_orbit_symmetrized_batches_stays_in_EG(problem, si_start, rng, backend):
    sample = problem.data.sample(rng, 40)
    symmetric = orbit_closed(FixedSample(*sample), problem.symmetry)
    res = simulate(problem, si_start, scheme="vanilla", dynamics="mf", T=2.0, dt=0.02,
                   step_scale=50.0, expectation=symmetric, noise="EG", seed=4, backend=backend,
                   observables=())
    assert _off_EG(res, problem) <= TOL["invariant"]


def test_vanilla_sgd_with_random_minibatches_leaves_EG(symmetric_problem, si_start, backend):
    problem = symmetric_problem
    res = simulate(problem, si_start, scheme="vanilla", dynamics="sgd", T=T_SGD,
                   step_scale=50.0, noise="EG", seed=2, backend=backend,
                   observables=("distance_to_EG",))
    assert res.observables["distance_to_EG"][-1] > TOL["visible"]
    assert _off_EG(res, problem) > 1e3 * TOL["invariant"]


def test_orbit_closed_start_gives_identical_trajectories(rng, backend):
    # deterministic: i.i.d. noise would break the orbit-closedness of the particle set
    problem = paper.problem("WI", beta=0.0)
    start = laws.orbit_closed(laws.gaussian(3, 4, std=0.25, seed=5), problem.symmetry)
    sample = orbit_closed(FixedSample(*problem.data.sample(rng, 30)), problem.symmetry)
    runs = {
        scheme: simulate(problem, start, scheme=scheme, dynamics="mf", T=2.0, dt=0.05,
                         step_scale=50.0, expectation=sample, seed=6, backend=backend,
                         observables=("distance_to_WI",))
        for scheme in ("vanilla", "DA-orbit", "FA")
    }
    ref = runs["vanilla"].particles
    assert np.abs(ref[-1] - start).max() > TOL["visible"]
    for scheme in ("DA-orbit", "FA"):
        np.testing.assert_allclose(runs[scheme].particles, ref, rtol=0, atol=TOL["invariant"])
    # and the law stays weakly invariant: the particle set stays orbit-closed
    assert runs["vanilla"].observables["distance_to_WI"].max() <= TOL["sqrt_exact"]
