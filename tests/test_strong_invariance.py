"""Subspace discovery (the escape test and its calibrated threshold, recovery of E^G) and the SI
optimality gap, on small problems with the numpy reference backend."""

import json
import warnings

import h5py
import matplotlib
import numpy as np
import pytest
from conftest import TOL
from scipy import stats

from wgflow import GaussianData, Perceptron, Problem, Teacher, paper
from wgflow.cli import main
from wgflow.config import load_config
from wgflow.problem import QuadratureWarning
from wgflow.strong_invariance import SIGap, counterexample, discover_subspace, files, si_gap
from wgflow.strong_invariance import studies as si_studies
from wgflow.strong_invariance.discovery import escape_test
from wgflow.strong_invariance.gap import extrapolation_weights, mean_interval, scaled
from wgflow.strong_invariance.studies import STUDIES, cyclic_problem

matplotlib.use("Agg")

#: the paper's SGD settings at a size the numpy reference runs in seconds
PAPER_RUN = dict(horizon=10.0, step_scale=50.0, batch_size=20, backend="numpy")


@pytest.fixture(scope="module")
def si_problem():
    return paper.problem("SI")


def test_threshold_separates_staying_from_escaping(si_problem):
    eg = si_problem.symmetry.basis
    stays = escape_test(si_problem, eg, 100, seed=3, **PAPER_RUN)
    escapes = escape_test(si_problem, eg[:, :1], 100, seed=3, **PAPER_RUN)
    assert not stays.escaped and stays.escape <= stays.threshold
    assert escapes.escaped and escapes.escape > escapes.threshold
    # the threshold is the noise level times a factor > 1 set by the level and the replicates
    for step in (stays, escapes):
        assert step.threshold > step.noise_level > 0
    # the particles leave the line within E^G: the one direction added lies in E^G
    assert escapes.added.shape == (4, 1)
    residual = escapes.added - eg @ (eg.T @ escapes.added)
    assert np.linalg.norm(residual) < TOL["subspace_angle"]


def test_a_stationary_start_stays_exactly():
    # a·tanh(w·x) has no gradient at θ = 0: the particles of δ₀ never move
    unit = Perceptron(2, 1, "tanh", bias=False)
    prob = Problem(unit, GaussianData(Teacher(unit, [[1.0, 1.0, -1.0]])))
    step = escape_test(prob, np.zeros((3, 0)), 10, horizon=1.0, backend="numpy")
    assert not step.escaped and step.escape == 0.0 and step.added.shape == (3, 0)


def test_recovers_EG_on_the_paper_problem(si_problem):
    found = discover_subspace(si_problem, 100, seed=0, **PAPER_RUN)
    assert [s.dim for s in found.steps] == [0, 1, 2]
    assert [s.escaped for s in found.steps] == [True, True, False]
    assert found.dim == si_problem.symmetry.dim_EG == 2
    assert found.principal_angles.max() <= TOL["subspace_angle"]
    np.testing.assert_allclose(found.basis.T @ found.basis, np.eye(2), atol=TOL["exact"])
    assert "principal angles" in found.summary()


def test_recovers_EG_of_a_cyclic_group():
    prob = cyclic_problem()
    found = discover_subspace(prob, 100, seed=0, horizon=8.0, step_scale=5.0, backend="numpy")
    assert found.dim == prob.symmetry.dim_EG == 2
    assert found.principal_angles.max() <= TOL["subspace_angle"]


def test_grows_to_the_whole_space_without_symmetry():
    found = discover_subspace(paper.problem("arbitrary"), 100, seed=0, **PAPER_RUN)
    assert found.whole_space and found.dim == 4
    assert found.steps[-1].escaped
    assert "nothing smaller" in found.summary()


@pytest.mark.parametrize("kwargs, match", [
    (dict(start=np.ones((4, 1))), "orthonormal"),
    (dict(start=np.eye(3)[:, :1]), r"start must be an orthonormal basis of shape \(D, k\)"),
    (dict(start=np.zeros((4, 0))), "1 ≤ k ≤ D"),
    (dict(N=1), "N must be at least 2"),
    (dict(horizon=1e-3), "horizon .* shorter than one step"),
    (dict(horizon=0.015), "horizon: T = 0.015 is not a whole number"),
    (dict(dynamics="mf", horizon=0.02), "horizon = 0.02: no finite-N noise"),
    (dict(replicates=1), "replicates must be at least 2"),
    (dict(level=1.0), "level must be a number in"),
    (dict(dynamics="gd"), "dynamics must be one of"),
])
def test_bad_input_names_the_parameter(kwargs, match):
    unit = Perceptron(2, 1, "sigmoid", bias=False)  # D = 3 parameters
    prob = Problem(unit, GaussianData(Teacher(unit, [[1.0, 1.0, -1.0]])))
    if "start" in kwargs:
        prob = paper.problem("SI")  # D = 4
    args = dict(N=100, backend="numpy", horizon=0.1) | kwargs
    with pytest.raises(ValueError, match=match):
        discover_subspace(prob, args.pop("N"), **args)


def test_mean_interval_is_the_student_t_interval():
    mean, low, high = mean_interval([1.0, 2.0, 3.0], 0.95)
    half = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    np.testing.assert_allclose([mean, low, high], [2.0, 2.0 - half, 2.0 + half],
                               rtol=TOL["exact"])


def test_extrapolation_is_exact_for_a_linear_bias():
    # Δ_k(s) = a_k + b_k s on synthetic numbers: the extrapolation returns a_k for any scales
    rng = np.random.default_rng(0)
    intercepts, slopes = rng.standard_normal(4), rng.standard_normal(4)
    for scales in ((1.0, 0.5), (1.0, 0.25), (2.0, 1.0, 0.5), (0.3, 1.7, 0.9, 0.1)):
        s = np.array(scales)
        differences = intercepts + slopes * s[:, None]  # (S, K)
        np.testing.assert_allclose(extrapolation_weights(s) @ differences, intercepts,
                                   rtol=TOL["exact"], atol=TOL["exact"])
    # two scales: Richardson's Δ(0) = (s₁Δ(s₂) − s₂Δ(s₁)) / (s₁ − s₂)
    s1, s2, d1, d2 = 1.0, 0.5, 3.0, 2.5
    np.testing.assert_allclose(extrapolation_weights((s1, s2)) @ [d1, d2],
                               (s1 * d2 - s2 * d1) / (s1 - s2), rtol=TOL["exact"])
    # a quadratic bias is not removed by a line: the remainder is −c s₁s₂ for two scales
    np.testing.assert_allclose(extrapolation_weights((1.0, 0.5)) @ [1.0, 0.25], -0.5,
                               rtol=TOL["exact"])
    np.testing.assert_array_equal(extrapolation_weights((0.7,)), [1.0])


@pytest.mark.parametrize("scales, message", [
    ((), "at least one scale"),
    ((1.0, 0.0), "every entry of regularization_scales must be a positive"),
    ((1.0, -0.5), "every entry of regularization_scales must be a positive"),
    ((1.0, float("nan")), "every entry of regularization_scales must be a positive"),
    ((1.0, 0.5, 1.0), "regularization_scales must be distinct"),
    (0.5, "regularization_scales must be a sequence"),
    ("1", "regularization_scales must be a sequence"),
])
def test_bad_regularization_scales(scales, message):
    with pytest.raises(ValueError, match=message):
        extrapolation_weights(scales)
    with pytest.raises(ValueError, match=message):
        si_gap(counterexample(quadrature_points=8), 20, regularization_scales=scales,
               backend="numpy")


def test_regularization_scales_need_regularization():
    prob = paper.problem("SI", tau=0.0, beta=0.0, quadrature_points=8)
    with pytest.raises(ValueError, match="regularization_scales: the problem has tau = beta = 0"):
        si_gap(prob, 20, backend="numpy")


#: long MF runs at a size the numpy reference runs in seconds; 8 Gauss–Hermite points per
#: dimension (its error, about 3e-3 relative, is the same for both starts of a replicate)
GAP_RUN = dict(replicates=3, T=40.0, dt=0.05, step_scale=5.0, backend="numpy")


def _gap(problem, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuadratureWarning)
        return si_gap(problem, 20, **{**GAP_RUN, **options})


@pytest.fixture(scope="module")
def counterexample_gap():
    return _gap(counterexample(quadrature_points=8), regularization_scales=(1.0,))


def test_si_gap_is_positive_on_the_counterexample(counterexample_gap):
    gap = counterexample_gap
    assert gap.positive and gap.interval[0] > 0
    # the WI runs reach the teacher, the SI runs cannot
    assert gap.wi_risks.max() < gap.si_risks.min()
    # the SI runs stayed in E^G; the WI optimum lies off it
    assert gap.si_run.observables["distance_to_EG"][-1] <= TOL["invariant"]
    assert gap.wi_run.observables["distance_to_EG"][-1] > TOL["visible"]
    # one scale: the gap is the mean difference of the replicates, no extrapolation
    np.testing.assert_array_equal(gap.extrapolated, gap.differences[0])
    assert (gap.gap, gap.interval) == (gap.gaps[0], tuple(gap.intervals[0]))


def test_si_gap_vanishes_on_the_si_teacher():
    gap = _gap(paper.problem("SI", quadrature_points=8))
    low, high = gap.interval
    assert low <= 0.0 <= high
    assert gap.si_risks.mean() < TOL["visible"] * gap.si_run.observables["risk"][0]
    np.testing.assert_array_equal(gap.scales, [1.0, 0.5])
    np.testing.assert_allclose(gap.extrapolated, 2 * gap.differences[1] - gap.differences[0],
                               rtol=TOL["exact"], atol=TOL["exact"])


def test_si_gap_pairs_the_scales():
    # every scale runs the replicates' own seeds: the half-scale entry of a two-scale estimate
    # is the one-scale estimate of the problem with τ, β halved, run for run
    prob = counterexample(quadrature_points=8)
    run = dict(T=2.0, step_scale=5.0)
    both = _gap(prob, regularization_scales=(1.0, 0.5), **run)
    half = _gap(scaled(prob, 0.5), regularization_scales=(1.0,), **run)
    assert scaled(prob, 0.5).tau == prob.tau / 2 and scaled(prob, 0.5).beta == prob.beta / 2
    np.testing.assert_array_equal(both.si_risks[1], half.si_risks[0])
    np.testing.assert_array_equal(both.wi_risks[1], half.wi_risks[0])
    np.testing.assert_array_equal(both.si_run.particles, half.si_run.particles)
    # the regularization changed the runs, but not their starts
    assert np.all(both.si_risks[0] != both.si_risks[1])
    whole = _gap(prob, regularization_scales=(1.0,), **run)
    np.testing.assert_array_equal(whole.si_run.particles[0], half.si_run.particles[0])
    np.testing.assert_array_equal(whole.wi_risks[0], both.wi_risks[0])


def test_si_gap_bad_input():
    prob = counterexample(quadrature_points=8)
    with pytest.raises(ValueError, match=r"N must be at least 2\|G\| = 4"):
        si_gap(prob, 3, backend="numpy")
    with pytest.raises(ValueError, match="replicates must be at least 2"):
        si_gap(prob, 20, replicates=1, backend="numpy")
    unit = Perceptron(2, 1, "sigmoid", bias=False)
    with pytest.raises(ValueError, match="finite group"):
        si_gap(Problem(unit, GaussianData(Teacher(unit, [[1.0, 1.0, 0.0]]))), 20)


def test_si_gap_file_round_trip(counterexample_gap, tmp_path):
    gap = SIGap(np.array([1.0, 0.5]), np.vstack([counterexample_gap.si_risks] * 2) * [[1], [0.5]],
                np.vstack([counterexample_gap.wi_risks] * 2), 0.9, counterexample_gap.si_run,
                counterexample_gap.wi_run, counterexample_gap.eg_basis,
                counterexample_gap.settings)
    back = files.load(files.save(gap, tmp_path / "g.h5"))
    for name in ("scales", "si_risks", "wi_risks", "eg_basis", "gaps", "intervals",
                 "extrapolated"):
        np.testing.assert_array_equal(getattr(back, name), getattr(gap, name))
    assert (back.gap, back.interval, back.level) == (gap.gap, gap.interval, 0.9)
    assert back.summary() == gap.summary()
    np.testing.assert_array_equal(back.wi_run.particles, gap.wi_run.particles)
    # a file of the first schema (one scale, risks (K,)) reads as scale 1
    with h5py.File(tmp_path / "g.h5", "r+") as f:
        for name in ("scales", "si_risks", "wi_risks"):
            del f[name]
        f["si_risks"], f["wi_risks"] = gap.si_risks[0], gap.wi_risks[0]
    old = files.load(tmp_path / "g.h5")
    np.testing.assert_array_equal(old.scales, [1.0])
    np.testing.assert_array_equal(old.differences, gap.differences[:1])


def test_files_round_trip(si_problem, tmp_path):
    found = discover_subspace(si_problem, 20, horizon=1.0, step_scale=50.0, backend="numpy")
    back = files.load(files.save(found, tmp_path / "d.h5"))
    np.testing.assert_array_equal(back.basis, found.basis)
    np.testing.assert_array_equal(back.principal_angles, found.principal_angles)
    assert back.summary() == found.summary()
    for a, b in zip(back.steps, found.steps, strict=True):
        np.testing.assert_array_equal(a.run.particles, b.run.particles)
        np.testing.assert_array_equal(a.added, b.added)
    h5py.File(tmp_path / "empty.h5", "w").close()
    with pytest.raises(ValueError, match="not a subspace search or an SI gap file"):
        files.load(tmp_path / "empty.h5")


def test_discover_from_a_config_passes_its_run_options(monkeypatch):
    seen = {}
    monkeypatch.setattr(si_studies, "discover_subspace", lambda *args, **options:
                        seen.update(options))
    config = load_config(overrides=["run.dtype=float32", "run.activation_precision=float64"])
    si_studies.discover_from_config(config)
    assert seen["dtype"] == "float32" and seen["activation_precision"] == "float64"


def test_cli_discover_and_studies(tmp_path, capsys):
    out = tmp_path / "found.h5"
    args = ["--set", "problem.teacher=SI", "--set", "init.N=40", "--set", "run.T=4",
            "--set", "run.backend=numpy", "--out", str(out)]
    assert main(["discover", *args]) == 0
    assert "principal angles to E^G" in capsys.readouterr().out
    assert files.load(out).dim >= 1
    assert main(["discover", "--set", "init.N=1", "--out", str(tmp_path / "other.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("wgflow discover: error: N must be at least 2")
    assert len(err.strip().splitlines()) == 1
    # a previous result is replaced only with --overwrite; another kind of file never
    before = out.read_bytes()
    assert main(["discover", *args]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["discover", *args, "--overwrite"]) == 0
    capsys.readouterr()
    foreign = tmp_path / "notes.h5"
    foreign.write_text("my notes", encoding="utf-8")
    assert main(["discover", *args[:-1], str(foreign), "--overwrite"]) == 2
    assert "is never replaced" in capsys.readouterr().err
    assert foreign.read_text(encoding="utf-8") == "my notes"
    for study in STUDIES:
        directory = tmp_path / study
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", QuadratureWarning)
            assert main(["study", study, "--size", "smoke", "--out", str(directory),
                         "--quiet"]) == 0
        assert main(["report", str(directory)]) == 0
        report = directory / "report"
        assert (report / "summary.md").read_text().count("\n") >= 4
        pictures = {"discover": ["escape.png", "steps_paper-SI.png"],
                    "si-gap": ["si_gap.png", "optima_counterexample.png"]}[study]
        for name in pictures:
            assert (report / name).stat().st_size > 0
        # the same study again keeps its results; another size there is refused
        stamps = {p: p.stat().st_mtime_ns for p in directory.glob("*.h5")}
        assert main(["study", study, "--size", "smoke", "--out", str(directory), "--quiet"]) == 0
        assert {p: p.stat().st_mtime_ns for p in directory.glob("*.h5")} == stamps
        assert main(["study", study, "--size", "small", "--out", str(directory), "--quiet"]) == 2
        assert "give a new directory" in capsys.readouterr().err
        # results an earlier version wrote at other settings are refused, never kept as new
        record = json.loads((directory / "study.json").read_text(encoding="utf-8"))
        record["settings"]["N"] = 1 + record["settings"]["N"]
        (directory / "study.json").write_text(json.dumps(record), encoding="utf-8")
        assert main(["study", study, "--size", "smoke", "--out", str(directory), "--quiet"]) == 2
        assert "with other settings" in capsys.readouterr().err
        assert {p: p.stat().st_mtime_ns for p in directory.glob("*.h5")} == stamps
