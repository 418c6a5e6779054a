"""The population quadrature's error estimate against a closed form, and its warning."""

import warnings

import numpy as np
import pytest
from conftest import TOL

from wgflow import FixedSample, GaussianData, Perceptron, Problem, Teacher, paper, problem, simulate
from wgflow.problem import QuadratureWarning, quadrature_error

ERF_COV = np.array([[16.0, 4.0], [4.0, 9.0]])
ERF_TEACHER = np.array([[1.0, 0.8, -0.3], [-0.7, 0.2, 0.9], [0.5, -0.6, -0.5]])  # (a, w1, w2)


def erf_problem(points=None) -> Problem:
    unit = Perceptron(2, 1, "erf", bias=False)  # a·erf(w·x)
    return Problem(unit, GaussianData(Teacher(unit, ERF_TEACHER), cov=ERF_COV),
                   quadrature_points=points)


def erf_risk(theta) -> float:
    """``R(μ) = ½ E(Φ_μ(X) − Y)²`` in closed form: for ``X ~ N(0, Σ)``,
    ``E erf(u·X) erf(v·X) = (2/π) arcsin(2uᵀΣv / sqrt((1 + 2uᵀΣu)(1 + 2vᵀΣv)))``."""
    c = np.concatenate([theta[:, 0] / len(theta), -ERF_TEACHER[:, 0] / len(ERF_TEACHER)])
    u = np.concatenate([theta[:, 1:], ERF_TEACHER[:, 1:]])
    g = u @ ERF_COV @ u.T
    diag = 1.0 + 2.0 * np.diag(g)
    return 0.5 * c @ (2.0 / np.pi * np.arcsin(2.0 * g / np.sqrt(np.outer(diag, diag)))) @ c


def erf_velocity(theta, h=1e-6) -> np.ndarray:
    """``∇_θ δR/δμ(μ)(θ_i) = N ∂R(μ_N)/∂θ_i`` by central differences of :func:`erf_risk`."""
    out = np.zeros_like(theta)
    for idx in np.ndindex(theta.shape):
        step = np.zeros_like(theta)
        step[idx] = h
        out[idx] = len(theta) * (erf_risk(theta + step) - erf_risk(theta - step)) / (2 * h)
    return out


@pytest.fixture
def erf_particles(rng):
    return np.column_stack([rng.normal(size=5), 0.5 * rng.normal(size=(5, 2))])


def test_quadrature_error_estimate_matches_the_closed_form(erf_particles):
    points = 64
    prob = erf_problem(points)
    batch = prob.population().batch
    phi = prob.unit.network(erf_particles, batch.x)
    risk = batch.w @ prob.loss_value(phi, batch.y)
    velocity = prob.unit.vjp(erf_particles, batch.x, prob.loss_gradient(phi, batch.y), batch.w)
    true_risk = abs(risk - erf_risk(erf_particles)) / erf_risk(erf_particles)
    reference = erf_velocity(erf_particles)
    true_velocity = np.linalg.norm(velocity - reference) / np.linalg.norm(reference)
    assert true_risk > 1e3 * TOL["fd"]  # a visible error, far above the reference's own
    est = quadrature_error(prob, erf_particles)
    assert (est["points_per_dim"], est["reference_points_per_dim"]) == (points, 2 * points)
    assert est["risk"] == pytest.approx(true_risk, rel=TOL["error_estimate"])
    assert est["velocity"] == pytest.approx(true_velocity, rel=TOL["error_estimate"])


def quadrature_warnings(prob, theta) -> tuple:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = simulate(prob, theta, T=0.02, backend="numpy")
    return res, [w for w in caught if issubclass(w.category, QuadratureWarning)]


def test_too_few_points_warn_naming_the_option_and_enough_do_not(erf_particles):
    res, caught = quadrature_warnings(erf_problem(16), erf_particles)
    assert len(caught) == 1 and "quadrature_points" in str(caught[0].message)
    assert res.config["population"]["error"]["velocity"] > problem.QUADRATURE_TOL
    res, caught = quadrature_warnings(erf_problem(128), erf_particles)
    assert caught == []
    assert res.config["population"]["error"]["velocity"] < problem.QUADRATURE_TOL
    assert res.config["problem"]["quadrature_points"] == 128
    prob = paper.problem()  # the default: 32 points per dimension are enough at the start
    assert quadrature_warnings(prob, paper.student_init(prob, 20))[1] == []


def test_polynomial_integrands_are_exact_and_the_cost_is_bounded(rng, monkeypatch):
    unit = Perceptron(2, 1, "quadratic")
    teacher = Teacher(unit, rng.normal(size=(3, unit.dim)))
    prob = Problem(unit, GaussianData(teacher, cov=ERF_COV), quadrature_points=3)
    theta = rng.normal(size=(6, unit.dim))
    est = quadrature_error(prob, theta)  # degree ≤ 4 per coordinate: 3 points are exact
    assert est["risk"] < TOL["exact"] and est["velocity"] < TOL["exact"]
    monkeypatch.setattr(problem, "ESTIMATE_INTERACTIONS", 2 * 6**2)  # two particles' worth
    assert quadrature_error(prob, theta)["particles"] == 2


def test_quadrature_points_are_checked():
    unit = Perceptron(2, 1, "erf")
    data = GaussianData(Teacher(unit, np.ones((1, unit.dim))))
    with pytest.raises(ValueError, match="quadrature_points"):
        Problem(unit, data, quadrature_points=0)
    with pytest.raises(ValueError, match="quadrature_points"):
        Problem(unit, data, quadrature_points=1001)  # 1001² nodes
    with pytest.raises(ValueError, match="quadrature_points"):
        Problem(unit, FixedSample(np.ones((3, 2)), np.ones((3, 1))), quadrature_points=8)
    assert Problem(unit, data, quadrature_points=5).population().batch.w.shape == (25,)
