"""Units: layouts, parameter gradients against finite differences, joint equivariance."""

import numpy as np
import pytest
from conftest import TOL

from solvers.activations import ACTIVATIONS
from wgflow.symmetry import Symmetry, groups
from wgflow.units import MatrixUnit, MLPUnit, Perceptron, unit_from_description

UNITS = {
    "perceptron": lambda act: Perceptron(3, 2, act),
    "perceptron-nobias": lambda act: Perceptron(2, 1, act, bias=False),
    "matrix": lambda act: MatrixUnit(3, 2, act),
    "mlp": lambda act: MLPUnit(2, (3, 2), 2, act),
}


def test_layouts_are_documented_order():
    p = Perceptron(3, 2, "tanh")
    assert p.dim == 2 + 3 + 1
    assert p.layout == {"a": (0, (2,)), "w": (2, (3,)), "b": (5, ())}
    theta = np.arange(6.0)[None]
    x = np.array([[0.1, -0.2, 0.3]])
    a, w, b = theta[0, :2], theta[0, 2:5], theta[0, 5]
    np.testing.assert_allclose(p(x, theta)[0, 0], a * np.tanh(w @ x[0] + b), rtol=TOL["exact"])
    m = MatrixUnit(3, 2, "sigmoid")
    wmat = np.arange(6.0).reshape(2, 3) / 10
    expect = 1 / (1 + np.exp(-(wmat @ x[0])))
    np.testing.assert_allclose(m(x, wmat.ravel()[None])[0, 0], expect, rtol=TOL["exact"])
    mlp = MLPUnit(2, (3,), 1, "relu")
    assert list(mlp.layout) == ["W1", "b1", "W2"] and mlp.dim == 6 + 3 + 3


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("kind", sorted(UNITS))
def test_vjp_matches_finite_differences(kind, activation, rng):
    unit = UNITS[kind](activation)
    theta = rng.standard_normal((3, unit.dim))
    x = rng.standard_normal((4, unit.d))
    u = rng.standard_normal((4, unit.c))
    w = rng.dirichlet(np.ones(4))
    grad = unit.vjp(theta, x, u, w)
    h = 1e-6
    fd = np.empty_like(theta)
    for j in range(unit.dim):
        e = np.zeros(unit.dim)
        e[j] = h
        f_plus = np.einsum("nmc,mc,m->n", unit(x, theta + e), u, w)
        f_minus = np.einsum("nmc,mc,m->n", unit(x, theta - e), u, w)
        fd[:, j] = (f_plus - f_minus) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=TOL["fd"], atol=TOL["fd"])


def test_network_is_mean_of_units(rng):
    unit = MLPUnit(3, (4,), 2, "erf")
    theta = rng.standard_normal((7, unit.dim))
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(unit.network(theta, x), unit(x, theta).mean(0), rtol=TOL["exact"])


def test_describe_round_trip():
    for make in UNITS.values():
        unit = make("softplus")
        back = unit_from_description(unit.describe())
        assert back.describe() == unit.describe() and back.layout == unit.layout


# --- joint equivariance ------------------------------------------------------------------------

def _symmetries():
    sw, c3, s2 = groups.swap(), groups.cyclic(3), groups.sign_flips(2)
    so2 = groups.SO2()
    mat = MatrixUnit(2, 2, "sigmoid")
    perc = Perceptron(3, 1, "tanh")
    perc_odd = Perceptron(2, 2, "tanh", bias=False)
    mlp = MLPUnit(3, (3,), 1, "softplus")
    mlp_odd = MLPUnit(2, (2,), 2, "tanh", bias=False)
    perc_so2 = Perceptron(2, 1, "relu")
    return {
        # name: (symmetry, expected dim E^G)
        "paper C2 on matrix unit": (Symmetry(sw, mat), 2),
        "C3 on perceptron input": (Symmetry(c3, perc), 1 + 1 + 1),
        "signs on odd perceptron, signed hidden": (
            Symmetry(s2, perc_odd, output=s2.defining,
                     hidden=[s2.representation([[[-1.0]], [[1.0]]])]), 2),
        "C3 on mlp, permuted hidden units": (Symmetry(c3, mlp, hidden=[c3.defining]), 3 + 1 + 1),
        "signs on odd mlp, signed hidden": (Symmetry(s2, mlp_odd, output=s2.defining,
                                                     hidden=[s2.defining]), 4),
        "SO(2) on perceptron": (Symmetry(so2, perc_so2), 2),
    }


@pytest.mark.parametrize("name", list(_symmetries()))
def test_derived_actions_are_equivariant_and_EG_has_right_dimension(name, rng):
    sym, dim_eg = _symmetries()[name]
    sym.check_equivariance(seed=3)
    assert sym.dim_EG == dim_eg
    p = sym.projector
    np.testing.assert_allclose(p @ p, p, atol=TOL["exact"])
    np.testing.assert_allclose(sym.basis @ sym.basis.T, p, atol=TOL["solver"])
    # units in E^G are equivariant functions: σ_*(ρ_g x, θ) = ρ̂_g σ_*(x, θ)
    theta = rng.standard_normal((2, sym.unit.dim)) @ p
    x = rng.standard_normal((3, sym.unit.d))
    elements = sym.elements()[0] if sym.group.is_finite else sym.group.sample(rng, 4)
    rho, rho_out, _ = sym.matrices(elements)
    for r, ro in zip(rho, rho_out, strict=True):
        np.testing.assert_allclose(sym.unit(x @ r.T, theta), sym.unit(x, theta) @ ro.T,
                                   atol=TOL["solver"])


def test_paper_EG_is_symmetric_matrices_with_equal_diagonal():
    sym = _symmetries()["paper C2 on matrix unit"][0]
    b = np.array([[1, 0, 0, 1], [0, 1, 1, 0]]) / np.sqrt(2)
    np.testing.assert_allclose(sym.projector, b.T @ b, atol=TOL["exact"])


def test_sign_flip_hidden_with_even_activation_is_refused():
    s2 = groups.sign_flips(1)
    unit = Perceptron(1, 1, "sigmoid", bias=False)
    with pytest.raises(ValueError, match=r"not jointly equivariant.*sigmoid"):
        Symmetry(s2, unit, output=s2.defining, hidden=[s2.defining])


def test_rotation_on_activated_output_is_refused():
    d3 = groups.dihedral(3)  # 120° rotations are not signed permutations
    with pytest.raises(ValueError, match="not jointly equivariant"):
        Symmetry(d3, MatrixUnit(2, 2, "tanh"))


def test_dimension_mismatch_is_refused():
    with pytest.raises(ValueError, match="input representation has dimension 2 but the unit"):
        Symmetry(groups.swap(), Perceptron(3, 1, "tanh"))
    with pytest.raises(ValueError, match="output"):
        Symmetry(groups.swap(), Perceptron(2, 3, "tanh"))
    with pytest.raises(ValueError, match="hidden must give 1"):
        Symmetry(groups.swap(), MLPUnit(2, (2,), 1, "tanh"), hidden=[])


def test_unknown_activation_and_bad_dims_are_refused():
    with pytest.raises(ValueError, match="activation must be one of"):
        Perceptron(2, 1, "swish")
    with pytest.raises(ValueError, match="d must be a positive integer"):
        MatrixUnit(0, 2)


def test_empty_EG_warns():
    s2 = groups.sign_flips(2)
    with pytest.warns(UserWarning, match="dim E\\^G = 0"):
        Symmetry(s2, Perceptron(2, 2, "tanh", bias=False), output=s2.defining,
                 hidden=[s2.trivial(1)])
