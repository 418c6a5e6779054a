"""Mirror symmetries (wgflow.mirror): detection, thresholds against closed forms, the observed
transitions, the DCS lasso against scikit-learn, low rank and atoms, and bad input."""

import numpy as np
import pytest
from conftest import TOL

from wgflow import GaussianData, Perceptron, Problem, Teacher, paper
from wgflow.mirror import Mirror, MirrorError, NetworkLoss, symmetries, verify
from wgflow.mirror.dcs import (
    RANK_TOL,
    count_atoms,
    dcs_objective,
    factorised_regression,
    lasso_by_dcs,
)
from wgflow.mirror.models import (
    E_MINUS,
    E_PLUS,
    ScalarRescaling,
    quadratic_swap_operator,
    quadratic_swap_problem,
)
from wgflow.mirror.thresholds import directional_hessian, mirror_threshold, transverse_spectrum
from wgflow.mirror.transition import (
    mf_decay_sweep,
    rescaling_decay_sweep,
    rescaling_noise_sweep,
)


def linear_problem(t=0.7, variance=2.0):
    """The rescaling model as a wgflow problem: units ``a·(w x)`` on ``x ~ N(0, s²)``, teacher
    ``y = t x``."""
    unit = Perceptron(1, 1, "identity", bias=False)
    return Problem(unit, GaussianData(Teacher(unit, [[t, 1.0]]), cov=variance))


def si_particles(n, seed=0):
    rng = np.random.default_rng(seed)
    a, u = rng.uniform(0.2, 1.0, n), rng.normal(size=n)
    return np.column_stack([a, np.outer(u, E_PLUS)])


# ---------------------------------------------------------------------------------------------
# detection


def test_group_mirror_of_the_swap_is_the_normal_space_of_EG():
    found = symmetries(quadratic_swap_problem())
    assert [m.kind for m in found] == ["group", "sign"]  # the swap; w ↦ −w (σ = z² is even)
    np.testing.assert_array_equal(found[1].O, np.eye(3)[:, 1:])
    O = found[0].O
    assert O.shape == (3, 1)
    assert abs(abs(O[:, 0] @ np.r_[0.0, E_MINUS]) - 1.0) < TOL["exact"]


def test_sign_flip_of_an_odd_unit_and_swaps_of_units_are_found_and_verified():
    prob = linear_problem()
    per_unit = symmetries(prob)
    assert [m.kind for m in per_unit] == ["sign"]
    np.testing.assert_array_equal(per_unit[0].O, np.eye(2))
    network = symmetries(prob, n_units=3)
    kinds = [m.kind for m in network]
    assert kinds.count("sign") == 3 and kinds.count("unit swap") == 3
    swap01 = next(m for m in network if m.description.startswith("swap of units 0 and 1"))
    theta = np.arange(6.0)
    np.testing.assert_allclose(swap01.reflect(theta), [2.0, 3.0, 0.0, 1.0, 4.0, 5.0],
                               atol=TOL["exact"])


@pytest.mark.parametrize("activation, sign_dim", [("tanh", 5), ("quadratic", 3)])
def test_hidden_neuron_mirrors_of_an_mlp_unit(activation, sign_dim):
    # odd σ: row, bias and outgoing weight of a neuron flip; even σ: its row and bias alone
    from wgflow import MLPUnit
    unit = MLPUnit(2, [3], 2, activation, bias=True)
    teacher = Teacher(unit, np.random.default_rng(0).normal(size=(2, unit.dim)))
    found = symmetries(Problem(unit, GaussianData(teacher)))
    signs = [m for m in found if m.kind == "sign"]
    assert len(signs) == 3 and all(m.O.shape == (unit.dim, sign_dim) for m in signs)
    assert [m.kind for m in found].count("neuron swap") == 3


def test_a_claimed_symmetry_the_loss_lacks_is_refused():
    loss = NetworkLoss(quadratic_swap_problem(), 2)
    flip_a = Mirror(np.eye(6)[:, [0]], "sign of the output weight of unit 0")
    with pytest.raises(MirrorError, match="not invariant under the claimed mirror"):
        verify(loss.value, flip_a)


def test_a_group_element_with_asymmetric_data_is_refused():
    # the paper's arbitrary teacher is not swap-invariant: the swap is no symmetry of the loss
    with pytest.raises(MirrorError, match="data law is symmetric"):
        symmetries(paper.problem("arbitrary"))
    assert len(symmetries(paper.problem("WI"))) == 1


@pytest.mark.parametrize("O, match", [
    (np.array([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]), "O must have orthonormal columns"),
    (np.array([[np.nan], [0.0], [0.0]]), "O contains NaN"),
])
def test_O_without_orthonormal_columns_is_refused(O, match):
    with pytest.raises(MirrorError, match=match):
        Mirror(O, "bad")
    with pytest.raises(MirrorError, match=match):
        mirror_threshold(lambda th: th, np.zeros(3), O)


def test_O_of_the_wrong_shape_is_refused():
    with pytest.raises(MirrorError, match=r"O must have shape \(D, k\) = \(3, k\)"):
        mirror_threshold(lambda th: th, np.zeros(3), np.ones((2, 1)) / np.sqrt(2.0))


def test_errors_are_value_errors():
    assert issubclass(MirrorError, ValueError)


# ---------------------------------------------------------------------------------------------
# thresholds against closed forms


def test_network_gradient_matches_finite_differences_of_the_loss():
    loss = NetworkLoss(quadratic_swap_problem(), 3)
    theta = np.random.default_rng(1).normal(size=loss.dim)
    h = 1e-6
    fd = np.array([(loss.value(theta + h * e) - loss.value(theta - h * e)) / (2 * h)
                   for e in np.eye(loss.dim)])
    np.testing.assert_allclose(loss.gradient(theta), fd, rtol=TOL["fd"], atol=TOL["fd"])


def test_scalar_rescaling_threshold_is_half_the_correlation():
    t, s2 = 0.7, 2.0
    model = ScalarRescaling(correlation=t * s2, variance=s2)
    assert model.gamma0 == pytest.approx(t * s2 / 2)
    theta, h = np.array([0.3, -1.2]), 1e-6
    fd = [(model.value(theta + h * e) - model.value(theta - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(model.gradient(theta), fd, rtol=TOL["fd"])
    direct = mirror_threshold(model.gradient, np.zeros(2), np.eye(2))
    assert direct.gamma0 == pytest.approx(model.gamma0, rel=TOL["mirror_hessian"])
    # the same model as a one-unit wgflow network, through its hand-written gradients
    network = mirror_threshold(NetworkLoss(linear_problem(t, s2), 1).gradient, np.zeros(2),
                               symmetries(linear_problem(t, s2))[0].O)
    assert network.gamma0 == pytest.approx(model.gamma0, rel=TOL["mirror_hessian"])
    np.testing.assert_allclose(network.eigenvalues, [-t * s2, t * s2], rtol=TOL["mirror_hessian"])


def test_exact_hessian_gives_the_same_threshold():
    model = ScalarRescaling(correlation=-1.3)
    exact = mirror_threshold(None, np.zeros(2), np.eye(2),
                             hessian=lambda th: np.array([[0.0, 1.3], [1.3, 0.0]]))
    assert exact.gamma0 == pytest.approx(1.3 / 2, rel=TOL["exact"])
    assert mirror_threshold(model.gradient, np.zeros(2), np.eye(2)).gamma0 == pytest.approx(
        exact.gamma0, rel=TOL["mirror_hessian"])


def test_two_unit_permutation_threshold():
    # units a·(w x), identical at (a, w): Oᵀ∇²L O = [[0, s²(aw − t)/2], [s²(aw − t)/2, 0]] along
    # the differences, so γ₀ = s²|aw − t|/4
    t, s2, a, w = 0.7, 2.0, 0.5, 0.4
    prob = linear_problem(t, s2)
    loss = NetworkLoss(prob, 2)
    swap = next(m for m in symmetries(prob, n_units=2) if m.kind == "unit swap")
    result = mirror_threshold(loss.gradient, np.array([a, w, a, w]), swap)
    half = s2 * abs(a * w - t) / 2
    np.testing.assert_allclose(result.eigenvalues, [-half, half], rtol=TOL["mirror_hessian"])
    assert result.gamma0 == pytest.approx(s2 * abs(a * w - t) / 4, rel=TOL["mirror_hessian"])
    assert result.mixing < TOL["mirror_hessian"]
    # the sign mirror of a dead unit 0 next to a live unit 1: the model is (a₁w₁/2) x
    dead = next(m for m in symmetries(prob, n_units=2) if m.kind == "sign" and "unit 0" in
                m.description)
    result = mirror_threshold(loss.gradient, np.array([0.0, 0.0, a, w]), dead)
    assert result.gamma0 == pytest.approx(s2 * abs(a * w / 2 - t) / 4,
                                          rel=TOL["mirror_hessian"])


@pytest.mark.parametrize("n", [1, 5])
def test_transverse_spectrum_matches_the_quadratic_unit_closed_form(n):
    prob = quadratic_swap_problem(t_plus=1.0, t_minus=0.5, variance=1.5)
    theta = si_particles(n, seed=n)
    spectrum = transverse_spectrum(prob, theta)
    closed = quadratic_swap_operator(theta, 1.0, 0.5, 1.5)
    scale = np.abs(closed).max()
    np.testing.assert_allclose(spectrum.eigenvalues, np.linalg.eigvalsh(closed),
                               atol=TOL["mirror_hessian"] * scale)
    np.testing.assert_allclose(spectrum.operator, closed, atol=TOL["mirror_hessian"] * scale)
    assert spectrum.mixing < TOL["mirror_hessian"] * scale  # the normal block decouples
    assert spectrum.tau0 == pytest.approx(max(0.0, -np.linalg.eigvalsh(closed)[0] / 2),
                                          abs=TOL["mirror_hessian"] * scale)
    assert spectrum.tau0 > 0  # the closed form has a negative self term here


def test_directional_hessian_of_a_quadratic_form():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(4, 4))
    h = m + m.T
    v = np.linalg.qr(rng.normal(size=(4, 2)))[0]
    np.testing.assert_allclose(directional_hessian(lambda th: h @ th, rng.normal(size=4), v),
                               h @ v, atol=TOL["mirror_hessian"] * np.abs(h).max())


def test_points_off_the_constraint_set_are_refused():
    with pytest.raises(MirrorError, match="theta must lie on the constraint set"):
        mirror_threshold(lambda th: th, np.ones(2), np.eye(2)[:, [0]])
    theta = si_particles(2)
    theta[0, 1] += 0.1
    with pytest.raises(MirrorError, match="constraint set"):
        transverse_spectrum(quadratic_swap_problem(), theta)


# ---------------------------------------------------------------------------------------------
# the transition, observed


def test_weight_decay_collapse_of_the_rescaling_model_at_the_predicted_threshold():
    model = ScalarRescaling(correlation=1.0)
    sweep = rescaling_decay_sweep(model, [0.3, 0.4, 0.45, 0.55, 0.6, 0.7])
    assert sweep.predicted == pytest.approx(0.5, rel=TOL["exact"])
    assert sweep.observed == (0.45, 0.55)
    assert sweep.agrees
    np.testing.assert_array_equal(sweep.collapsed, sweep.values > model.gamma0)


def test_stochastic_collapse_below_the_weight_decay_threshold():
    model = ScalarRescaling(correlation=1.0)
    # γ = 0.25 < γ₀ = 0.5: full-batch descent does not collapse, batch 1 at step 1 does
    sweep = rescaling_noise_sweep(model, "batch size", [1, 2, 4], lr=1.0, gamma=0.25,
                                  steps=2000, copies=16)
    assert sweep.collapsed.tolist() == [True, False, False]
    assert sweep.agrees
    assert not rescaling_decay_sweep(model, [0.25, 0.3]).collapsed.any()


def test_mf_flow_leaves_or_joins_EG_as_the_transverse_spectrum_predicts():
    prob = quadratic_swap_problem()
    init = np.tile([0.8, 0.8, 0.8], (3, 1))  # one atom: its EA flow settles on the SI atom
    sweep = mf_decay_sweep(prob, [1.1, 1.2, 1.3, 1.35], init, T=10.0)
    assert sweep.agrees
    assert sweep.observed == (1.2, 1.3)
    # growth rates of the distance to E^G between T/2 and T: −(λ_min + 2τ)
    rates = np.log(sweep.ratio) / 5.0
    np.testing.assert_allclose(rates, -sweep.margin, rtol=TOL["mirror_growth_rate"])


# ---------------------------------------------------------------------------------------------
# DCS, low rank, atoms


def test_dcs_reproduces_the_lasso_path_of_scikit_learn():
    sklearn = pytest.importorskip("sklearn.linear_model",
                                  reason="scikit-learn (the test extra) gives the reference path")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 8))
    y = X @ np.array([2.0, -1.5, 0.0, 0.0, 1.0, 0.0, 0.0, 0.5]) + 0.5 * rng.standard_normal(50)
    alphas, coefs, _ = sklearn.lasso_path(X, y, alphas=12, tol=1e-12, max_iter=100_000)
    assert len(alphas) >= 10
    ours = lasso_by_dcs(X, y, alphas)
    for beta, ref in zip(ours, coefs.T, strict=True):
        np.testing.assert_array_equal(beta == 0, ref == 0)
        if np.any(ref):
            assert np.linalg.norm(beta - ref) <= TOL["dcs_lasso"] * np.linalg.norm(ref)
    assert np.any(ours == 0) and np.any(ours[-1] != 0)


def test_dcs_mirror_thresholds_are_the_lasso_entry_penalties():
    # the pair (u_i, v_i) ↦ −(u_i, v_i) has γ₀ = |X_iᵀy|/(2n) at β = 0, and weight decay
    # (α/2)(|u|² + |v|²): coordinate i stays at 0 for α > |X_iᵀy|/n, lasso's KKT condition
    sklearn = pytest.importorskip("sklearn.linear_model",
                                  reason="scikit-learn (the test extra) gives the reference path")
    rng = np.random.default_rng(2)
    X, y = rng.standard_normal((30, 4)), rng.standard_normal(30)
    gram, xty = X.T @ X / 30, X.T @ y / 30
    gamma0 = []
    for i in range(4):
        O = np.eye(8)[:, [i, 4 + i]]
        grad = lambda z: dcs_objective(z, gram, xty, 0.0)[1]  # noqa: E731
        gamma0.append(mirror_threshold(grad, np.zeros(8), O).gamma0)
    np.testing.assert_allclose(gamma0, np.abs(xty) / 2, rtol=TOL["mirror_hessian"])
    alphas = sklearn.lasso_path(X, y, alphas=3)[0]
    assert 2 * max(gamma0) == pytest.approx(alphas[0], rel=TOL["mirror_hessian"])


@pytest.mark.parametrize("X, y, match", [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), np.ones(2), "X contains NaN"),
    (np.eye(3), np.ones(2), r"y must have shape \(n,\) = \(3,\)"),
    (np.ones(3), np.ones(3), r"X must be a design matrix"),
    (np.eye(2), np.array([1.0, np.inf]), "y contains NaN or inf"),
])
def test_lasso_rejects_bad_designs(X, y, match):
    with pytest.raises(ValueError, match=match):
        lasso_by_dcs(X, y, [0.1, 0.01])


def test_lasso_rejects_bad_penalties():
    with pytest.raises(ValueError, match="alphas"):
        lasso_by_dcs(np.eye(2), np.ones(2), [0.1, -1.0])


def test_weight_decay_soft_thresholds_a_factorised_model_and_a_residual_keeps_full_rank():
    target = np.diag([3.0, 2.0, 1.0, 0.5, 0.2])
    gamma = 0.3
    plain = factorised_regression(target, gamma)
    expected = np.maximum(0.0, np.diag(target) - 2 * gamma)
    np.testing.assert_allclose(plain.singular_values[-1], expected, atol=TOL["soft_threshold"])
    assert plain.rank == 3
    start = plain.singular_values[0]
    assert np.all(start > RANK_TOL * start[0])  # it started at full rank
    assert factorised_regression(target, gamma, residual=True).rank == 5


def test_count_atoms():
    theta = np.array([[0.0, 0.0], [1e-9, 0.0], [1.0, 1.0], [1.0, 1.0 + 1e-9], [5.0, 0.0]])
    assert count_atoms(theta, 1e-6) == 3
    assert count_atoms(theta, 10.0) == 1
    assert count_atoms(theta[:1], 1e-6) == 1
    with pytest.raises(ValueError, match="tol"):
        count_atoms(theta, 0.0)


# ---------------------------------------------------------------------------------------------
# the study on the command line


def test_cli_mirror_study_and_report(tmp_path, capsys):
    import json

    import matplotlib
    matplotlib.use("Agg")
    from wgflow.cli import main

    out = tmp_path / "mirror"
    assert main(["study", "mirror", "--size", "smoke", "--out", str(out), "--quiet"]) == 0
    record = json.loads((out / "mirror.json").read_text(encoding="utf-8"))
    assert all(s["agrees"] for s in record["sweeps"])
    atoms = {r["tau"]: r["atoms"] for r in record["atoms"]}
    assert atoms[0.0][-1] == atoms[0.0][0] and atoms[0.03][-1] < atoms[0.03][0]
    assert [r["rank"] for r in record["low_rank"]] == [3, 5]
    assert main(["report", str(out)]) == 0
    assert (out / "report" / "summary.md").exists() and (out / "report" / "atoms.png").exists()
    capsys.readouterr()
    assert main(["study", "mirror", "--size", "huge", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "size (--size) must be one of" in err and "Traceback" not in err
    # the same study again leaves the record as it is; another size or a foreign file is refused
    stamp = (out / "mirror.json").stat().st_mtime_ns
    assert main(["study", "mirror", "--size", "smoke", "--out", str(out), "--quiet"]) == 0
    assert (out / "mirror.json").stat().st_mtime_ns == stamp
    assert main(["study", "mirror", "--size", "small", "--out", str(out), "--quiet"]) == 2
    assert "holds the mirror study at size 'smoke'" in capsys.readouterr().err
    assert (out / "mirror.json").stat().st_mtime_ns == stamp
    # a record an earlier version wrote at other settings is refused, not passed off as new
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "mirror.json").write_text(json.dumps({**record, "settings": {"copies": 1}}),
                                         encoding="utf-8")
    assert main(["study", "mirror", "--size", "smoke", "--out", str(earlier), "--quiet"]) == 2
    assert "with other settings" in capsys.readouterr().err
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "mirror.json").write_text("[1, 2]", encoding="utf-8")
    for args in (["report", str(tmp_path / "foreign")],
                 ["study", "mirror", "--size", "smoke", "--out", str(tmp_path / "foreign")]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "is not a mirror study record" in err and "Traceback" not in err


@pytest.mark.parametrize("call, match", [
    (lambda: rescaling_decay_sweep(ScalarRescaling(), [0.5]), "gammas must be at least two"),
    (lambda: rescaling_decay_sweep(ScalarRescaling(), [0.5, 0.4]), "increasing"),
    (lambda: rescaling_decay_sweep(ScalarRescaling(), [-0.1, 0.4]), "gammas must be a finite"),
    (lambda: rescaling_noise_sweep(ScalarRescaling(), "batch size", [1, 2.5]),
     "batch size must be a positive integer"),
    (lambda: rescaling_noise_sweep(ScalarRescaling(), "momentum", [1, 2]), "knob must be"),
    (lambda: mf_decay_sweep(linear_problem(), [0.1, 0.2], np.zeros((2, 2))),
     "problem needs a symmetry"),
])
def test_sweeps_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_order_two_rotation_of_SO2_is_a_mirror():
    from wgflow import SO2, Symmetry
    unit = Perceptron(2, 1, "quadratic", bias=False)
    teacher = Teacher(unit, [[1.0, 0.6, -0.2]])  # (w·x)² is unchanged by x ↦ −x
    prob = Problem(unit, GaussianData(teacher), Symmetry(SO2(), unit))
    group = [m for m in symmetries(prob) if m.kind == "group"]
    assert len(group) == 1 and "rotation by π" in group[0].description
    np.testing.assert_allclose(group[0].O @ group[0].O.T, np.diag([0.0, 1.0, 1.0]),
                               atol=TOL["exact"])
