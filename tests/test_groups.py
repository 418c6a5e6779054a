"""Groups, representations, and the derived projector onto fixed subspaces."""

import itertools
import math

import numpy as np
import pytest
from conftest import TOL

from wgflow.symmetry import groups
from wgflow.symmetry.groups import SO2, FiniteGroup, Representation

PRESETS = {
    # name: (group, order, dim of the fixed subspace of the defining representation)
    "C5": (groups.cyclic(5), 5, 1),
    "C6-rot": (groups.cyclic_rotations(6), 6, 0),
    "D4": (groups.dihedral(4), 8, 0),
    "S4": (groups.permutations(4), 24, 1),
    "swap": (groups.swap(), 2, 1),
    "signs3": (groups.sign_flips(3), 8, 0),
    "swap x signs2": (groups.direct_product(groups.swap(), groups.sign_flips(2)), 8, 1),
}


@pytest.mark.parametrize("name", PRESETS)
def test_finite_group_axioms(name):
    group, order, _ = PRESETS[name]
    assert group.order == order
    mats = group.matrices
    eye = np.eye(mats.shape[1])
    np.testing.assert_allclose(np.einsum("gji,gjk->gik", mats, mats),
                               np.broadcast_to(eye, mats.shape), atol=TOL["exact"])
    assert group.index_of(eye) == 0
    for a, b in itertools.product(range(order), repeat=2):
        group.index_of(mats[a] @ mats[b])  # closure: raises if the product is missing
    for a in range(order):
        group.index_of(mats[a].T)  # inverses
    assert len({group.index_of(m) for m in mats}) == order  # elements are distinct


@pytest.mark.parametrize("name", PRESETS)
def test_projector_and_fixed_subspace(name):
    group, _, fixed_dim = PRESETS[name]
    rep = group.defining
    p = rep.projector
    np.testing.assert_allclose(p @ p, p, atol=TOL["exact"])
    np.testing.assert_allclose(p, p.T, atol=TOL["exact"])
    assert rep.fixed_dim == fixed_dim
    basis = rep.fixed_basis
    # two independent derivations: Reynolds average vs. null space of the generators
    np.testing.assert_allclose(basis @ basis.T, p, atol=TOL["solver"])
    for m in rep.matrices(np.arange(group.order)):
        np.testing.assert_allclose(m @ basis, basis, atol=TOL["exact"])


def test_so2_haar_quadrature_is_exact_for_tensor_representations():
    so2 = SO2()
    # frequencies 1 and 3: ρ(φ) = rot(φ) ⊕ rot(3φ) ⊕ 1
    a = np.zeros((5, 5))
    a[0, 1], a[1, 0], a[2, 3], a[3, 2] = -1, 1, -3, 3
    rep = Representation(so2, a)
    assert rep.max_frequency == 3
    p = rep.projector
    np.testing.assert_allclose(p, np.diag([0, 0, 0, 0, 1.0]), atol=TOL["exact"])
    np.testing.assert_allclose(rep.fixed_basis @ rep.fixed_basis.T, p, atol=TOL["solver"])
    # Haar average of the rotation matrix by a fine Riemann sum agrees
    phis = np.linspace(0, 2 * np.pi, 2001)[:-1]
    np.testing.assert_allclose(rep.matrices(phis).mean(0), p, atol=TOL["solver"])


def test_representation_matrices_follow_words():
    d4 = groups.dihedral(4)
    rep = d4.defining
    np.testing.assert_allclose(rep.matrices(np.arange(d4.order)), d4.matrices, atol=TOL["exact"])
    trivial = d4.trivial(3)
    np.testing.assert_allclose(trivial.projector, np.eye(3), atol=TOL["exact"])


def test_direct_sum_is_block_diagonal():
    g = groups.swap()
    rep = groups.direct_sum(g.defining, g.trivial(1))
    assert rep.dim == 3 and rep.fixed_dim == 2


def test_non_orthogonal_generator_is_refused():
    with pytest.raises(ValueError, match=r"generators.*not orthogonal"):
        FiniteGroup([[[1.0, 0.1], [0.0, 1.0]]])


def test_non_closing_generator_is_refused():
    with pytest.raises(ValueError, match="do not close"):
        FiniteGroup([groups.rotation(1.0)])  # rotation by 1 rad has infinite order


def test_non_homomorphic_images_are_refused():
    c3 = groups.cyclic(3)
    with pytest.raises(ValueError, match="do not define a representation"):
        c3.representation([groups.permutation_matrix([1, 0])])  # order 2 ≠ order 3
    with pytest.raises(ValueError, match="one matrix per generator"):
        c3.representation(np.stack([np.eye(2), np.eye(2)]))


def test_so2_lie_images_are_checked():
    with pytest.raises(ValueError, match="antisymmetric"):
        Representation(SO2(), np.eye(2))
    with pytest.raises(ValueError, match="integer"):
        Representation(SO2(), 0.5 * SO2.lie_generator)
    with pytest.raises(ValueError, match="n_points"):
        SO2().haar()


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_preset_orders_are_checked(bad):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        groups.cyclic(bad)


def test_describe_round_trip():
    g = groups.dihedral(3)
    back = groups.group_from_description(g.describe())
    assert back.order == g.order == 6
    assert math.isclose(np.abs(back.matrices - g.matrices).max(), 0.0, abs_tol=TOL["exact"])


def test_sampled_elements_take_the_products_along_their_words():
    """Element matrices come from a table: bitwise the product of the images along the word."""
    group = groups.direct_product(groups.dihedral(4), groups.swap())
    rep = group.defining
    elements = np.random.default_rng(0).integers(0, group.order, size=50)
    expected = []
    for e in elements:
        m = np.eye(rep.dim)
        for s in group.words[e]:
            m = m @ rep.images[s]
        expected.append(m)
    assert np.array_equal(rep.matrices(elements), np.array(expected))
    assert rep.matrices([]).shape == (0, rep.dim, rep.dim)
