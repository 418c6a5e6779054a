"""How observables are computed, recorded everywhere they go (Result, file, report, plots); the
population quadrature's error estimate against a closed form, and its warning."""

import contextlib
import csv
import warnings

import h5py
import numpy as np
import pytest
from conftest import TOL

from wgflow import (
    FixedSample,
    GaussianData,
    Perceptron,
    Problem,
    Teacher,
    diagnostics,
    load,
    paper,
    plots,
    problem,
    save,
    simulate,
)
from wgflow.cli import main
from wgflow.files.h5md import read_parameters
from wgflow.problem import QuadratureWarning, quadrature_error
from wgflow.sweep import report, run_sweep
from wgflow.sweep.report import write_report

#: with EXACT_MAX = 10, distance_to_WI (N and N·|G| = 2N atoms) is exact for N = 4, sliced for 8
SMALL_EXACT_MAX = 10
FAST = {"run.T": 0.5, "run.frames": 2, "run.backend": "numpy", "run.scheme": "vanilla"}


@pytest.fixture
def small_exact_max(monkeypatch):
    monkeypatch.setattr(diagnostics, "EXACT_MAX", SMALL_EXACT_MAX)


def run_file(path, n: int) -> None:
    settings = {**FAST, "init.N": n}
    args = [a for k, v in settings.items() for a in ("--set", f"{k}={v}")]
    assert main(["run", "--out", str(path), "--quiet", *args]) == 0


@pytest.mark.parametrize(("n", "wi_method"), [(4, "exact"), (8, "sliced")])
def test_the_file_says_how_each_observable_was_computed(tmp_path, small_exact_max, n,
                                                        wi_method):
    path = tmp_path / "run.h5"
    run_file(path, n)
    expected = {"risk": "quadrature", "teacher_l2": "quadrature",
                "distance_to_EG": "closed-form", "distance_to_WI": wi_method}
    with h5py.File(path, "r") as h5:
        assert {k: g.attrs["method"] for k, g in h5["observables"].items()} == expected
    assert load(path).methods == expected
    population = read_parameters(path)["run_config"]["population"]
    assert population["method"] == "quadrature" and population["points_per_dim"] == 32
    assert population["error"]["reference_points_per_dim"] == 64
    assert 0 < population["error"]["velocity"] < problem.QUADRATURE_TOL


def test_methods_round_trip_and_old_files_read_unknown(tmp_path, small_exact_max):
    prob = paper.problem("WI")
    res = simulate(prob, paper.student_init(prob, 8), dynamics="sgd", T=0.5, step_scale=50.0,
                   backend="numpy", seed=1)
    assert res.methods["distance_to_WI"] == "sliced" and res.method("risk") == "quadrature"
    save(res, tmp_path / "r.h5")
    assert load(tmp_path / "r.h5").methods == res.methods
    with h5py.File(tmp_path / "r.h5", "r+") as h5:  # a file from before methods were recorded
        for g in h5["observables"].values():
            del g.attrs["method"]
    old = load(tmp_path / "r.h5")
    assert old.methods == dict.fromkeys(res.observables, "unknown")
    np.testing.assert_array_equal(old.observables["risk"], res.observables["risk"])


def test_plots_say_sliced_where_sliced(small_exact_max):
    prob = paper.problem("WI")
    for n, word in ((4, "exact W₂"), (8, "sliced W₂")):
        res = simulate(prob, paper.student_init(prob, n), dynamics="sgd", T=0.5,
                       backend="numpy", seed=1)
        assert word in plots.observable(res, "distance_to_WI").get_ylabel()
    assert "Gauss–Hermite quadrature, 32 points" in plots.risk(res).get_ylabel()
    ax = plots.observable(res, "distance_to_EG")  # the report's curves against N: sliced points
    report._band(ax, [4, 8], [0.1, 0.2], [0.0, 0.0], "vanilla-DA", ["exact", "sliced"])
    assert ax.get_lines()[-2].get_label() == "vanilla-DA (sliced W₂ at N = 8)"
    assert list(ax.get_lines()[-1].get_xdata()) == [8]  # the hollow marker


def summary(directory) -> list[dict]:
    with open(directory / "report" / "summary.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_report_labels_methods_and_says_when_they_mix(tmp_path, small_exact_max):
    sweep = run_sweep(FAST, {"init.N": [4, 8]}, tmp_path, seeds=2, progress=False)
    write_report(tmp_path)
    rows = {int(r["init.N"]): r for r in summary(tmp_path)}
    assert rows[4]["distance_to_WI_method"] == "exact"
    assert rows[8]["distance_to_WI_method"] == "sliced"
    assert rows[4]["risk_method"] == rows[8]["risk_method"] == "quadrature"
    text = (tmp_path / "report" / "summary.md").read_text()
    assert "`distance_to_WI_method` differs between rows (exact, sliced)" in text
    assert "risk_method` differs" not in text
    # one replicate of N = 4 computed otherwise: its cell says so instead of averaging silently
    entry = next(e for e in sweep.runs if e["params"]["init.N"] == 4)
    with h5py.File(tmp_path / entry["path"], "r+") as h5:
        h5["observables/distance_to_WI"].attrs["method"] = "sliced"
    write_report(tmp_path)
    assert {int(r["init.N"]): r["distance_to_WI_method"] for r in summary(tmp_path)} == {
        4: "mixed: 1 exact, 1 sliced", 8: "sliced"}
    assert "in 1 row(s) the replicates were computed by different methods" in (
        tmp_path / "report" / "summary.md").read_text()


def test_the_risk_method_names_how_the_population_is_taken(rng):
    unit = Perceptron(4, 1, "tanh")
    teacher = Teacher(unit, rng.normal(size=(2, unit.dim)))
    theta = rng.normal(size=(3, unit.dim))
    x = rng.normal(size=(50, 4))
    cases = [(GaussianData(teacher), {}, "monte-carlo"),  # d = 4: a fixed Monte Carlo sample
             (GaussianData(teacher), {"quadrature_points": 3}, "quadrature"),
             (FixedSample(x, teacher(x)), {}, "fixed-sample")]
    for data, options, method in cases:  # 3 points are too few for tanh: it says so
        with pytest.warns(QuadratureWarning) if options else contextlib.nullcontext():
            res = simulate(Problem(unit, data, **options), theta, T=0.02, backend="numpy")
        assert res.methods["risk"] == method and set(res.methods.values()) == {method}
        assert res.config["population"]["method"] == method
        assert ("error" in res.config["population"]) == (method == "quadrature")


# ---------------------------------------------------------------------------------------------
# the population quadrature's error

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
