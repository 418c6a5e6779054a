"""Flows with closed forms: Ornstein–Uhlenbeck without data, units linear in θ, and the
convergence orders of the integrators."""

import numpy as np
import pytest
import scipy.linalg
from conftest import TOL

from wgflow import GaussianData, MatrixUnit, Perceptron, Problem, Teacher, laws, simulate

SIGMAS = TOL["sigmas"]


def _ou_moments(m0, v0, tau, beta, scale, t):
    """Mean factor and variance of dθ = −2ςτ θ dt + sqrt(2βς) dB from variance v0."""
    decay = np.exp(-2 * scale * tau * t)
    return m0 * decay, v0 * decay**2 + beta / (2 * tau) * (1 - decay**2)


def _em_moments(m0, v0, tau, beta, scale, dt, n):
    """The same for n Euler–Maruyama steps (exact law of the discrete chain)."""
    a = 1 - 2 * scale * tau * dt
    q = 2 * beta * scale * dt
    return m0 * a**n, v0 * a ** (2 * n) + q * (1 - a ** (2 * n)) / (1 - a**2)


@pytest.mark.slow
def test_no_data_term_gives_ornstein_uhlenbeck():
    n, tau, beta, scale, dt, T = 20_000, 0.7, 0.3, 1.5, 2e-3, 1.0
    problem = Problem(Perceptron(1, 1, "tanh"), data=None, tau=tau, beta=beta)
    m0 = np.array([1.0, -2.0, 0.5])
    start = laws.gaussian(n, 3, std=0.5, mean=m0, seed=1)
    res = simulate(problem, start, T=T, dt=dt, step_scale=scale, seed=2)
    steps = res.steps[-1]
    mean, var = _ou_moments(m0, 0.25, tau, beta, scale, res.times[-1])
    mean_em, var_em = _em_moments(m0, 0.25, tau, beta, scale, dt, steps)
    theta = res.final
    # sampling error (SE) plus the exactly computed time-discretization bias
    se_mean = np.sqrt(var / n)
    assert np.all(np.abs(theta.mean(0) - mean) <= SIGMAS * se_mean + np.abs(mean_em - mean))
    cov = np.cov(theta.T)
    se_var = var * np.sqrt(2 / n)
    assert np.all(np.abs(np.diag(cov) - var) <= SIGMAS * se_var + abs(var_em - var))
    off = cov[~np.eye(3, dtype=bool)]
    assert np.all(np.abs(off) <= SIGMAS * var / np.sqrt(n))


def _linear_problem(tau, beta):
    """σ_*(x, W) = W x, x ~ N(0, Σ), labels from a teacher with mean W*."""
    unit = MatrixUnit(2, 2, "identity")
    teacher = np.array([[1.0, -0.5, 0.3, 2.0], [0.0, 0.5, -0.3, 1.0]])
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    return Problem(unit, GaussianData(Teacher(unit, teacher), cov=cov), tau=tau, beta=beta)


def _linear_mean(problem, m0, scale, t):
    """m' = −ς [m (Σ + 2τ I) − W* Σ] for m = E_μ W (2×2): solved with a matrix exponential."""
    sigma = problem.data.cov
    a = sigma + 2 * problem.tau * np.eye(2)
    w_star = problem.teacher.particles.mean(0).reshape(2, 2)
    m_inf = w_star @ sigma @ np.linalg.inv(a)
    return m_inf + (m0.reshape(2, 2) - m_inf) @ scipy.linalg.expm(-scale * a * t)


def test_linear_unit_mean_follows_exponential():
    problem = _linear_problem(tau=0.1, beta=0.0)
    start = laws.gaussian(50, 4, seed=3)
    res = simulate(problem, start, T=1.0, dt=1e-3, step_scale=1.0, integrator="heun")
    exact = _linear_mean(problem, start.mean(0), 1.0, res.times[-1])
    np.testing.assert_allclose(res.final.mean(0).reshape(2, 2), exact, atol=TOL["heun_fine"])


@pytest.mark.slow
def test_linear_unit_with_noise_stays_gaussian():
    tau, beta, scale, n = 0.5, 0.2, 1.0, 5_000
    problem = _linear_problem(tau, beta)
    start = laws.gaussian(n, 4, std=0.3, mean=0.5, seed=4)
    res = simulate(problem, start, T=1.0, dt=1e-2, step_scale=scale, integrator="heun", seed=5,
                   record_every=100, observables=())
    theta = res.final
    _, var = _ou_moments(0.0, 0.09, tau, beta, scale, res.times[-1])
    _, var_em = _em_moments(0.0, 0.09, tau, beta, scale, 1e-2, res.steps[-1])
    # the drift is affine in (θ_i, E_μ θ), so the empirical mean follows the noiseless Heun chain
    # started at the initial mean (one particle) up to the mean of the injected noise
    chain = _linear_problem(tau, beta=0.0)
    mean_chain = simulate(chain, start.mean(0, keepdims=True), T=1.0, dt=1e-2, step_scale=scale,
                          integrator="heun", observables=()).final[0]
    assert np.all(np.abs(theta.mean(0) - mean_chain) <= SIGMAS * np.sqrt(var / n))
    assert np.all(np.abs(theta.var(0) - var) <= SIGMAS * var * np.sqrt(2 / n) + abs(var_em - var))
    z = (theta - theta.mean(0)) / theta.std(0)
    skew, kurt = (z**3).mean(0), (z**4).mean(0)
    assert np.all(np.abs(skew) <= SIGMAS * np.sqrt(6 / n))
    assert np.all(np.abs(kurt - 3) <= SIGMAS * np.sqrt(24 / n))


@pytest.mark.parametrize(("integrator", "order"), [("euler", 1.0), ("heun", 2.0)])
def test_integrator_convergence_order(integrator, order):
    problem = _linear_problem(tau=0.2, beta=0.0)
    start = laws.gaussian(8, 4, seed=6)
    exact = _linear_mean(problem, start.mean(0), 1.0, 1.0)
    errors = []
    for dt in (0.05, 0.025, 0.0125, 0.00625):
        res = simulate(problem, start, T=1.0, dt=dt, integrator=integrator, record_every=1000)
        errors.append(np.abs(res.final.mean(0).reshape(2, 2) - exact).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(np.abs(rates - order) <= TOL["order"]), rates


def test_noise_projected_on_user_subspace_stays_in_it():
    problem = Problem(Perceptron(2, 1, "tanh"), data=None, beta=1.0)
    q = np.array([[1.0, 1.0, 0.0, 0.0]]).T / np.sqrt(2.0)  # orthonormal columns
    start = laws.gaussian(10, 4, seed=7)
    res = simulate(problem, start, T=0.5, dt=0.05, noise=q, seed=8)
    moved = res.final - start
    np.testing.assert_allclose(moved - (moved @ q) @ q.T, 0.0, atol=TOL["exact"])
    assert np.abs(moved).max() > 0.1
