"""Diagnostics: W₂ (exact and sliced), RMD, distances to SI and WI, against independent
computations (assignment problems, sorted couplings, POT on explicitly built measures)."""

import itertools
import subprocess
import sys

import numpy as np
import ot
import pytest
from conftest import TOL
from scipy.optimize import linear_sum_assignment

from wgflow import diagnostics
from wgflow.diagnostics import (
    EXACT_MAX,
    Distance,
    distance_to_orbit_average,
    distance_to_subspace,
    pairwise_rmd,
    rmd,
    second_moment,
    wasserstein2,
)


def _simplex(rng, n):
    w = rng.random(n) + 0.1
    return w / w.sum()


def _pot_w2sq(x, y, a=None, b=None):
    """Independent exact W₂²: POT's solver on a cost matrix built by broadcasting."""
    a = np.full(len(x), 1 / len(x)) if a is None else a
    b = np.full(len(y), 1 / len(y)) if b is None else b
    cost = np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    return float(ot.emd2(a, b, cost))


def _swap(d):
    """The C₂ action swapping the first two coordinates of R^d: matrices (2, d, d)."""
    s = np.eye(d)
    s[[0, 1]] = s[[1, 0]]
    return np.stack([np.eye(d), s])


# --- Distance, second moment -----------------------------------------------------------------


def test_distance_is_a_float_with_a_method():
    d = Distance(1.5, "exact")
    value, method = d
    assert float(d) == 1.5 == value
    assert method == "exact"


def test_second_moment_has_the_factor_two(rng):
    theta = np.array([[1.0, 0.0], [0.0, 2.0]])
    np.testing.assert_allclose(second_moment(theta), 2 * (1 + 4) / 2, rtol=TOL["exact"])
    np.testing.assert_allclose(
        second_moment(theta, np.array([0.25, 0.75])), 2 * (0.25 + 3.0), rtol=TOL["exact"]
    )
    x = rng.normal(size=(9, 4))
    a = _simplex(rng, 9)
    np.testing.assert_allclose(
        second_moment(x, a), 2 * np.sum(a * np.sum(x**2, axis=1)), rtol=TOL["exact"]
    )


# --- exact W₂ --------------------------------------------------------------------------------


def test_exact_w2_equals_optimal_assignment(rng):
    n = 12
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3)) + 0.5
    cost = np.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
    rows, cols = linear_sum_assignment(cost)
    expected = cost[rows, cols].sum() / n
    d = wasserstein2(x, y, method="exact")
    assert d.method == "exact"
    np.testing.assert_allclose(d.value**2, expected, rtol=TOL["solver"])


@pytest.mark.parametrize(("n", "m"), [(40, 40), (30, 90), (90, 30), (64, 256)])
def test_small_uniform_measures_solve_an_assignment_with_pots_value(rng, n, m, monkeypatch):
    """Up to ``ASSIGNMENT_MAX`` atoms, sizes dividing one another, the exact ``W₂²`` comes from
    an assignment problem: POT's value to rounding; one atom past the limit, POT's own."""
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(m, 3)) + 0.3
    assert max(n, m) <= diagnostics.ASSIGNMENT_MAX
    calls = []
    monkeypatch.setattr(diagnostics, "linear_sum_assignment",
                        lambda c: calls.append(c.shape) or linear_sum_assignment(c))
    value = wasserstein2(x, y, method="exact").value ** 2
    assert calls == [(max(n, m), max(n, m))]
    np.testing.assert_allclose(value, _pot_w2sq(x, y), rtol=TOL["solver"])
    monkeypatch.setattr(diagnostics, "ASSIGNMENT_MAX", max(n, m) - 1)
    np.testing.assert_allclose(wasserstein2(x, y, method="exact").value ** 2, value,
                               rtol=TOL["solver"])
    assert len(calls) == 1  # POT solved the second


def test_weighted_or_indivisible_measures_go_to_pot(rng, monkeypatch):
    monkeypatch.setattr(diagnostics, "linear_sum_assignment", None)  # a call would fail
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(9, 2))
    np.testing.assert_allclose(wasserstein2(x, y).value ** 2, _pot_w2sq(x, y),
                               rtol=TOL["solver"])
    a = _simplex(rng, 6)
    np.testing.assert_allclose(wasserstein2(x, x[::-1] + 1, mu_weights=a).value ** 2,
                               _pot_w2sq(x, x[::-1] + 1, a), rtol=TOL["solver"])


def test_the_default_runs_distance_to_wi_loads_no_pot():
    """A run's distance to WI (``N = 100``, ``|G| = 2``) is solved without importing POT."""
    code = ("import sys, numpy as np; from wgflow import diagnostics; "
            "theta = np.random.default_rng(0).normal(size=(100, 4)); "
            "s = np.eye(4)[[1, 0, 3, 2]]; "
            "d = diagnostics.distance_to_orbit_average(theta, np.stack([np.eye(4), s])); "
            "print(d.method, 'ot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["exact", "False"]


def test_exact_w2_equals_brute_force_over_permutations(rng):
    n = 6
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    best = min(
        np.mean(np.sum((x - y[list(p)]) ** 2, axis=1)) for p in itertools.permutations(range(n))
    )
    np.testing.assert_allclose(wasserstein2(x, y).value ** 2, best, rtol=TOL["solver"])


def test_exact_w2_in_one_dimension_is_the_sorted_coupling(rng):
    n = 40
    x, y = rng.normal(size=(n, 1)), rng.exponential(size=(n, 1))
    expected = np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2)
    np.testing.assert_allclose(
        wasserstein2(x, y, method="exact").value ** 2, expected, rtol=TOL["solver"]
    )


def test_w2_zero_on_the_diagonal_and_symmetric(rng):
    x, y = rng.normal(size=(15, 3)), rng.normal(size=(11, 3))
    a, b = _simplex(rng, 15), _simplex(rng, 11)
    np.testing.assert_allclose(
        wasserstein2(x, x, mu_weights=a, nu_weights=a).value, 0.0, atol=TOL["exact"]
    )
    forward = wasserstein2(x, y, mu_weights=a, nu_weights=b).value
    backward = wasserstein2(y, x, mu_weights=b, nu_weights=a).value
    assert forward > 0.1
    np.testing.assert_allclose(forward, backward, rtol=TOL["solver"])
    np.testing.assert_allclose(forward**2, _pot_w2sq(x, y, a, b), rtol=TOL["solver"])


@pytest.mark.parametrize("v", [[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [1e-3, 0.0, 0.0]])
def test_w2_of_a_translation_is_the_shift(rng, v):
    x = rng.normal(size=(20, 3))
    a = _simplex(rng, 20)
    d = wasserstein2(x, x + np.asarray(v), mu_weights=a, nu_weights=a)
    np.testing.assert_allclose(d.value**2, np.sum(np.square(v)), rtol=TOL["solver"],
                               atol=TOL["exact"])


# --- sliced W₂ and the automatic switch -------------------------------------------------------


def test_sliced_equals_exact_in_one_dimension(rng):
    x, y = rng.normal(size=(17, 1)), rng.normal(loc=1.0, size=(23, 1))
    a, b = _simplex(rng, 17), _simplex(rng, 23)
    kw = {"mu_weights": a, "nu_weights": b}
    sliced = wasserstein2(x, y, method="sliced", n_projections=8, **kw)
    exact = wasserstein2(x, y, method="exact", **kw)
    assert sliced.method == "sliced"
    assert exact.method == "exact"
    np.testing.assert_allclose(sliced.value, exact.value, rtol=TOL["solver"])


def test_sliced_is_a_lower_bound_in_higher_dimension(rng):
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(25, 4)) * 1.5 + 0.3
    sliced = wasserstein2(x, y, method="sliced", n_projections=64, seed=3)
    exact = wasserstein2(x, y, method="exact")
    assert 0.0 < sliced.value <= exact.value * (1 + TOL["solver"])
    # deterministic given the seed
    assert wasserstein2(x, y, method="sliced", n_projections=64, seed=3).value == sliced.value


def test_auto_switches_to_sliced_above_exact_max(rng, monkeypatch):
    assert EXACT_MAX == 3000
    x, y = rng.normal(size=(5, 2)), rng.normal(size=(6, 2))
    assert wasserstein2(x, y).method == "exact"
    monkeypatch.setattr(diagnostics, "EXACT_MAX", 5)
    assert wasserstein2(x, x).method == "exact"
    assert wasserstein2(x, y).method == "sliced"
    assert wasserstein2(y, x).method == "sliced"
    assert rmd(x, y).method == "sliced"
    assert wasserstein2(x, y, method="exact").method == "exact"
    np.testing.assert_allclose(
        wasserstein2(x, y).value,
        wasserstein2(x, y, method="sliced").value,
        rtol=TOL["exact"],
    )


# --- RMD -------------------------------------------------------------------------------------


def test_rmd_matches_its_formula(rng):
    x, y = rng.normal(size=(14, 3)), rng.normal(size=(9, 3)) + 1.0
    a, b = _simplex(rng, 14), _simplex(rng, 9)
    m2 = 2 * np.sum(a * np.sum(x**2, axis=1)) + 2 * np.sum(b * np.sum(y**2, axis=1))
    d = rmd(x, y, mu_weights=a, nu_weights=b)
    assert d.method == "exact"
    np.testing.assert_allclose(d.value, np.sqrt(_pot_w2sq(x, y, a, b) / m2), rtol=TOL["solver"])
    np.testing.assert_allclose(d.value, rmd(y, x, mu_weights=b, nu_weights=a).value,
                               rtol=TOL["solver"])


def test_rmd_to_the_point_mass_at_zero_is_one_over_sqrt_two(rng):
    x = rng.normal(size=(10, 3))
    a = _simplex(rng, 10)
    d = rmd(x, np.zeros((1, 3)), mu_weights=a)
    np.testing.assert_allclose(d.value, 1 / np.sqrt(2), rtol=TOL["solver"])
    # in 1-D the sliced distance is exact, so it gives the same value
    for method in ("exact", "sliced"):
        d = rmd(x[:, :1], np.zeros((2, 1)), mu_weights=a, method=method)
        assert d.method == method
        np.testing.assert_allclose(d.value, 1 / np.sqrt(2), rtol=TOL["solver"])


def test_rmd_is_zero_when_both_measures_are_the_origin():
    d = rmd(np.zeros((3, 2)), np.zeros((1, 2)))
    assert d.value == 0.0
    assert d.method == "exact"


# --- distance to SI --------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [0, 1, 2, 4])
def test_distance_to_subspace_equals_exact_solver(rng, rank):
    dim, n = 4, 25
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    q = q[:, :rank]
    proj = q @ q.T
    x = rng.normal(size=(n, dim))
    a = _simplex(rng, n)
    px = x @ proj
    m2 = 2 * np.sum(a * np.sum(x**2, axis=1)) + 2 * np.sum(a * np.sum(px**2, axis=1))
    expected = np.sqrt(_pot_w2sq(x, px, a, a) / m2)
    d = distance_to_subspace(x, proj, a)
    assert d.method == "closed-form"
    np.testing.assert_allclose(d.value, expected, rtol=TOL["solver"], atol=TOL["exact"])
    closed = np.sum(a * np.sum((x - px) ** 2, axis=1))
    np.testing.assert_allclose(d.value, np.sqrt(closed / m2), rtol=TOL["exact"])


def test_distance_to_subspace_limits(rng):
    x = rng.normal(size=(8, 3))
    assert distance_to_subspace(x, np.eye(3)).value == 0.0
    np.testing.assert_allclose(
        distance_to_subspace(x, np.zeros((3, 3))).value, 1 / np.sqrt(2), rtol=TOL["exact"]
    )
    assert distance_to_subspace(np.zeros((2, 3)), np.zeros((3, 3))).value == 0.0


# --- distance to WI --------------------------------------------------------------------------


def test_orbit_closed_set_is_at_distance_zero(rng):
    x = rng.normal(size=(10, 3))
    actions = _swap(3)
    closed = np.concatenate([x, x @ actions[1].T])
    d = distance_to_orbit_average(closed, actions)
    assert d.method == "exact"
    np.testing.assert_allclose(d.value, 0.0, atol=TOL["solver"])


def test_generic_set_is_at_positive_distance(rng):
    x = rng.normal(size=(10, 3)) + np.array([2.0, 0.0, 0.0])
    d = distance_to_orbit_average(x, _swap(3))
    assert d.value > 0.1


def test_orbit_average_equals_rmd_against_explicit_symmetrized_law(rng):
    dim, n, g = 3, 7, 3
    x = rng.normal(size=(n, dim))
    a = _simplex(rng, n)
    mats = np.stack([np.linalg.qr(rng.normal(size=(dim, dim)))[0] for _ in range(g)])
    w = _simplex(rng, g)
    atoms, masses = [], []
    for k in range(g):
        for i in range(n):
            atoms.append(mats[k] @ x[i])
            masses.append(w[k] * a[i])
    atoms, masses = np.array(atoms), np.array(masses)
    expected = rmd(x, atoms, mu_weights=a, nu_weights=masses)
    d = distance_to_orbit_average(x, mats, w, a)
    assert d.method == expected.method == "exact"
    np.testing.assert_allclose(d.value, expected.value, rtol=TOL["solver"])
    m2 = 2 * np.sum(a * np.sum(x**2, axis=1)) + 2 * np.sum(masses * np.sum(atoms**2, axis=1))
    np.testing.assert_allclose(
        d.value, np.sqrt(_pot_w2sq(x, atoms, a, masses) / m2), rtol=TOL["solver"]
    )
    sliced = distance_to_orbit_average(x, mats, w, a, method="sliced", n_projections=16)
    assert sliced.method == "sliced"
    assert sliced.value <= d.value * (1 + TOL["solver"])


# --- pairwise RMD ----------------------------------------------------------------------------


def test_pairwise_rmd_is_symmetric_with_zero_diagonal(rng):
    runs = [rng.normal(size=(n, 2)) + k for k, n in enumerate((6, 9, 4))]
    ws = [None, _simplex(rng, 9), None]
    r = pairwise_rmd(runs, weights=ws)
    assert r.shape == (3, 3)
    np.testing.assert_array_equal(r, r.T)
    np.testing.assert_array_equal(np.diag(r), 0.0)
    for i, j in itertools.combinations(range(3), 2):
        assert r[i, j] > 0
        np.testing.assert_allclose(
            r[i, j], rmd(runs[i], runs[j], mu_weights=ws[i], nu_weights=ws[j]).value,
            rtol=TOL["exact"],
        )
    np.testing.assert_array_equal(pairwise_rmd(runs[:1]), np.zeros((1, 1)))


# --- input checking --------------------------------------------------------------------------

_X = np.arange(10.0).reshape(5, 2)
_Y = np.arange(8.0).reshape(4, 2)

_BAD_CALLS = {
    "mu 1-D": (lambda: wasserstein2(np.ones(5), _Y), r"^mu "),
    "mu NaN": (lambda: wasserstein2(np.where(_X > 3, np.nan, _X), _Y), r"^mu contains NaN"),
    "nu inf": (lambda: rmd(_X, np.full((4, 2), np.inf)), r"^nu contains NaN or inf"),
    "nu wrong D": (lambda: wasserstein2(_X, np.ones((4, 3))), r"^nu must have D = 2"),
    "mu empty": (lambda: rmd(np.ones((0, 2)), _Y), r"^mu must have at least one atom"),
    "mu_weights shape": (
        lambda: wasserstein2(_X, _Y, mu_weights=np.ones(4) / 4),
        r"^mu_weights must have shape \(n,\) = \(5,\), got \(4,\); pass one weight per atom",
    ),
    "nu_weights negative": (
        lambda: rmd(_X, _Y, nu_weights=np.array([1.5, -0.5, 0.0, 0.0])),
        r"^nu_weights must be nonnegative",
    ),
    "mu_weights sum": (
        lambda: wasserstein2(_X, _Y, mu_weights=np.ones(5)), r"^mu_weights must sum to 1"
    ),
    "nu_weights NaN": (
        lambda: wasserstein2(_X, _Y, nu_weights=np.array([np.nan, 0, 0, 1.0])),
        r"^nu_weights contains NaN",
    ),
    "method": (lambda: wasserstein2(_X, _Y, method="emd"), r"^method must be one of"),
    "rmd method": (lambda: rmd(_X, _Y, method="Exact"), r"^method must be one of"),
    "n_projections": (
        lambda: wasserstein2(_X, _Y, method="sliced", n_projections=0), r"^n_projections"
    ),
    "seed": (lambda: rmd(_X, _Y, seed=-1), r"^seed"),
    "second_moment theta": (lambda: second_moment(np.ones((2, 2, 2))), r"^theta "),
    "second_moment weights": (
        lambda: second_moment(_X, np.array([0.5, 0.5])), r"^weights must have shape"
    ),
    "projector shape": (lambda: distance_to_subspace(_X, np.eye(3)), r"^projector .*\(2, 2\)"),
    "projector NaN": (
        lambda: distance_to_subspace(_X, np.full((2, 2), np.nan)), r"^projector contains NaN"
    ),
    "projector symmetric": (
        lambda: distance_to_subspace(_X, np.array([[1.0, 1.0], [0.0, 0.0]])),
        r"^projector must be symmetric",
    ),
    "projector idempotent": (
        lambda: distance_to_subspace(_X, 0.5 * np.eye(2)), r"^projector must be idempotent"
    ),
    "subspace weights": (
        lambda: distance_to_subspace(_X, np.eye(2), np.full(5, 0.3)), r"^weights must sum"
    ),
    "actions 2-D": (
        lambda: distance_to_orbit_average(_X, np.eye(2)), r"^actions .*actions\[None\]"
    ),
    "actions wrong D": (
        lambda: distance_to_orbit_average(_X, np.ones((2, 3, 3))), r"^actions must have shape"
    ),
    "actions NaN": (
        lambda: distance_to_orbit_average(_X, np.full((1, 2, 2), np.nan)),
        r"^actions contains NaN",
    ),
    "action_weights": (
        lambda: distance_to_orbit_average(_X, _swap(2), np.array([0.7, 0.7])),
        r"^action_weights must sum to 1",
    ),
    "orbit weights": (
        lambda: distance_to_orbit_average(_X, _swap(2), weights=np.ones(3) / 3),
        r"^weights must have shape",
    ),
    "orbit theta": (lambda: distance_to_orbit_average(np.ones(4), _swap(2)), r"^theta "),
    "orbit method": (
        lambda: distance_to_orbit_average(_X, _swap(2), method="fast"), r"^method must be one of"
    ),
    "measures type": (lambda: pairwise_rmd(np.ones((2, 3, 2))), r"^measures must be a list"),
    "measures empty": (lambda: pairwise_rmd([]), r"^measures must contain"),
    "measures D": (lambda: pairwise_rmd([_X, np.ones((3, 3))]), r"^measures\[1\] must have D"),
    "pairwise weights length": (
        lambda: pairwise_rmd([_X, _Y], weights=[None]), r"^weights must be None or a list"
    ),
    "pairwise weights entry": (
        lambda: pairwise_rmd([_X, _Y], weights=[None, np.ones(4)]), r"^weights\[1\] must sum"
    ),
    "pairwise method": (lambda: pairwise_rmd([_X, _Y], method=None), r"^method must be one of"),
}


@pytest.mark.parametrize("case", list(_BAD_CALLS))
def test_invalid_input_is_rejected_naming_the_parameter(case):
    call, pattern = _BAD_CALLS[case]
    with pytest.raises(ValueError, match=pattern):
        call()


# --- sliced W₂ of uniform measures by sorted projections ------------------------------------


def _pot_sliced_sq(x, y, a, b, n_projections, seed):
    return float(ot.sliced_wasserstein_distance(x, y, a, b, n_projections=n_projections, p=2,
                                                seed=seed)) ** 2


@pytest.mark.parametrize("n, m", [(7, 7), (30, 90), (90, 30), (1, 5)])
def test_sliced_uniform_by_sorted_projections_equals_pot(rng, n, m):
    """Uniform measures whose sizes divide one another: two sorts per direction give POT's
    value, on POT's directions."""
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(m, 3)) + 0.3
    n_projections = 39
    got = wasserstein2(x, y, method="sliced", n_projections=n_projections, seed=5).value ** 2
    expected = _pot_sliced_sq(x, y, np.full(n, 1 / n), np.full(m, 1 / m), n_projections, 5)
    np.testing.assert_allclose(got, expected, rtol=TOL["sliced_sorted"])


def test_sliced_orbit_average_by_sorted_projections_equals_pot(rng):
    """The distance to WI with the sliced solver (uniform weights: the sorted path) against
    POT on the explicitly built symmetrized law."""
    x = rng.normal(size=(200, 4))
    mats = np.array([np.eye(4), np.eye(4)[[3, 2, 1, 0]]])
    images = np.concatenate([x, x @ mats[1].T])
    d = distance_to_orbit_average(x, mats, method="sliced", n_projections=64, seed=2)
    w2sq = _pot_sliced_sq(x, images, np.full(200, 1 / 200), np.full(400, 1 / 400), 64, 2)
    expected = np.sqrt(w2sq / (second_moment(x) + second_moment(images)))
    assert d.method == "sliced"
    np.testing.assert_allclose(d.value, expected, rtol=TOL["sliced_sorted"])


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2)])
def test_sliced_orbit_average_of_blocks_merged_equals_pot(rng, order):
    """``μ^G`` as blocks sorted apart and merged: three blocks (a merge of runs of unequal
    length), the identity's block in any place or missing, against POT on the images."""
    x = rng.normal(size=(120, 3))
    cycle = np.eye(3)[[1, 2, 0]]
    mats = np.array([np.eye(3), cycle, cycle @ cycle])[list(order)]
    images = np.concatenate([x @ m.T for m in mats])
    d = distance_to_orbit_average(x, mats, method="sliced", n_projections=40, seed=4)
    w2sq = _pot_sliced_sq(x, images, np.full(120, 1 / 120), np.full(len(images), 1 / len(images)),
                          40, 4)
    expected = np.sqrt(w2sq / (second_moment(x) + second_moment(images)))
    np.testing.assert_allclose(d.value, expected, rtol=TOL["sliced_sorted"])


def test_sliced_sums_do_not_depend_on_the_thread_count(rng):
    """The directions run in parallel; each direction's sum is in order: the same bits on one
    thread and on two."""
    import numba

    x = rng.normal(size=(3000, 4))
    mats = np.array([np.eye(4), np.eye(4)[[3, 2, 1, 0]]])
    previous = numba.get_num_threads()
    try:
        values = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            values.append(distance_to_orbit_average(x, mats, method="sliced").value)
    finally:
        numba.set_num_threads(previous)
    assert values[0] == values[1]


@pytest.mark.parametrize("n", [0, 1, 2, 257, 5000])
def test_radix_sort_is_numpys_sort(rng, n):
    """The compiled sort of the sliced distance orders float64 as numpy does: signs, zeros of
    both signs (``−0`` first), infinities, subnormals, repeated values and equal high bytes
    (skipped passes)."""
    from solvers.cpu.sliced import radix_sort

    specials = np.array([0.0, -0.0, np.inf, -np.inf, 5e-324, -5e-324, 1.0, 1.0, -2.5, 0.0])
    k = min(n, len(specials))
    values = np.concatenate([rng.normal(size=n - k), specials[:k]])
    if n == 257:
        values = 1.0 + rng.random(n) * 2.0**-40  # the top bytes of every key are equal
    got = values.copy()
    scratch = np.empty(n, np.uint64), np.empty(n, np.uint64), np.empty((8, 256), np.int64)
    radix_sort(got, *scratch)
    assert np.array_equal(got, np.sort(values))
    zeros = np.signbit(got[got == 0])
    assert np.array_equal(zeros, np.sort(zeros)[::-1])


def test_sliced_with_other_weights_or_sizes_is_pot(rng):
    """Weights that are not uniform, or sizes that do not divide one another, go to POT."""
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(4, 2))
    a, b = _simplex(rng, 6), np.full(4, 0.25)
    for mu_weights, pot_a in ((a, a), (None, np.full(6, 1 / 6))):  # 4 does not divide 6
        got = wasserstein2(x, y, mu_weights=mu_weights, method="sliced", n_projections=16,
                           seed=1)
        assert got.value == np.sqrt(_pot_sliced_sq(x, y, pot_a, b, 16, 1))


def test_sliced_distance_to_wi_of_an_orbit_closed_measure_is_zero(rng):
    """Atoms closed under the group: ``μ^G = μ``, the sorted projections of ``μ^G`` are those of
    ``μ`` twice each, and the distance is exactly 0 (POT's merged quantile functions leave a
    residue of order sqrt(eps))."""
    half = rng.normal(size=(150, 4))
    x = np.concatenate([half, half[:, [3, 2, 1, 0]]])
    mats = np.array([np.eye(4), np.eye(4)[[3, 2, 1, 0]]])
    assert distance_to_orbit_average(x, mats, method="sliced", n_projections=64).value == 0.0


@pytest.mark.parametrize("method", ["exact", "sliced"])
def test_relative_distances_of_huge_or_tiny_atoms_do_not_overflow(rng, method):
    """RMD is scale-free: atoms whose squares overflow (or underflow) give the value of the
    same atoms at scale 1, the same bits under a power of two."""
    x = rng.normal(size=(60, 4))
    mats = np.array([np.eye(4), np.eye(4)[[3, 2, 1, 0]]])
    projector = np.full((4, 4), 0.25)
    kw = {"method": method, "n_projections": 16}
    reference = (rmd(x, x[:30] + 1.0, **kw).value,
                 distance_to_orbit_average(x, mats, **kw).value,
                 distance_to_subspace(x, projector).value)
    for scale in (2.0**600, 2.0**-600, 1e200, 1e-200):
        got = (rmd(scale * x, scale * (x[:30] + 1.0), **kw).value,
               distance_to_orbit_average(scale * x, mats, **kw).value,
               distance_to_subspace(scale * x, projector).value)
        if np.log2(scale).is_integer():
            assert got == reference, scale
        else:
            np.testing.assert_allclose(got, reference, rtol=TOL["exact"])
