"""Bad input is refused with an error that names the parameter; divergence is reported."""

import numpy as np
import pytest

from wgflow import (
    FixedSample,
    GaussianData,
    MatrixUnit,
    Perceptron,
    Problem,
    Symmetry,
    Teacher,
    groups,
    laws,
    paper,
    simulate,
)


@pytest.fixture(scope="module")
def prob():
    return paper.problem("WI")


@pytest.fixture(scope="module")
def start(prob):
    return paper.student_init(prob, 4, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"scheme": "augment"}, "scheme"),
        ({"dynamics": "ode"}, "dynamics"),
        ({"integrator": "rk4"}, "integrator"),
        ({"backend": "fortran"}, "backend"),
        ({"T": 0.0}, "T"),
        ({"T": -1.0}, "T"),
        ({"dt": 0.0}, "dt"),
        ({"dt": float("nan")}, "dt"),
        ({"record_every": 0}, "record_every"),
        ({"noise": "half"}, "noise"),
        ({"noise": np.ones((3, 1))}, "noise"),
        ({"observables": ("loss",)}, "observables"),
    ],
)
def test_simulate_options_are_checked(prob, start, kwargs, names):
    with pytest.raises(ValueError, match=names):
        simulate(prob, start, **kwargs)


@pytest.mark.parametrize(
    ("particles", "message"),
    [
        (np.zeros((0, 4)), "init_particles"),  # N < 1
        (np.zeros((3, 5)), "init_particles"),  # wrong D
        (np.zeros((2, 3, 4)), "init_particles"),
        (np.array([[0.0, np.nan, 0.0, 0.0]]), "NaN"),
    ],
)
def test_bad_particles_are_refused(prob, particles, message):
    with pytest.raises(ValueError, match=message):
        simulate(prob, particles)


def test_schemes_and_projected_noise_need_a_symmetry(start):
    unit = MatrixUnit(2, 2, "sigmoid")
    plain = Problem(unit, GaussianData(Teacher(unit, paper.teacher_particles("WI"))))
    for scheme in ("DA", "DA-orbit", "FA", "EA"):
        with pytest.raises(ValueError, match="symmetry"):
            simulate(plain, start, scheme=scheme)
    with pytest.raises(ValueError, match="noise='EG'"):
        simulate(plain, start, noise="EG")


def test_dimension_mismatches_are_refused():
    unit = Perceptron(3, 1, "tanh")
    with pytest.raises(ValueError, match="unit expects"):
        Problem(unit, FixedSample(np.zeros((5, 2)), np.zeros((5, 1))))
    with pytest.raises(ValueError, match="teacher particles"):
        Teacher(unit, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="input representation has dimension 2"):
        Symmetry(groups.swap(), unit)
    with pytest.raises(ValueError, match="another unit"):
        Problem(unit, symmetry=Symmetry(groups.permutations(3), Perceptron(3, 1, "tanh")))


def test_bad_data_is_refused():
    with pytest.raises(ValueError, match="x contains NaN"):
        FixedSample(np.array([[0.0, np.inf]]), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="same number of samples"):
        FixedSample(np.zeros((3, 2)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="w must be"):
        FixedSample(np.zeros((2, 2)), np.zeros((2, 1)), w=[0.7, 0.7])
    teacher = Teacher(Perceptron(2, 1, "tanh"), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="cov"):
        GaussianData(teacher, cov=np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="positive definite"):
        GaussianData(teacher, cov=np.diag([1.0, -1.0]))


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="activation"):
        Perceptron(2, 1, "swish")
    with pytest.raises(ValueError, match="loss"):
        Problem(Perceptron(2, 1, "tanh"), loss="hinge")
    with pytest.raises(ValueError, match="N must be a positive integer"):
        laws.gaussian(0, 4)


def test_non_positive_weights_of_the_problem_are_refused():
    with pytest.raises(ValueError, match="tau"):
        Problem(Perceptron(2, 1, "tanh"), tau=-1.0)
    with pytest.raises(ValueError, match="beta"):
        Problem(Perceptron(2, 1, "tanh"), beta=float("nan"))


def test_divergence_keeps_the_good_frames_and_warns(prob, start):
    with pytest.warns(UserWarning, match="reduce dt or step_scale"):
        res = simulate(prob, start, dt=1.0, step_scale=1e6, T=400.0, record_every=1)
    assert res.status == "diverged"
    assert np.all(np.isfinite(res.particles))
    assert 1 < len(res.times) < 401


def test_divergence_between_frames_is_caught(prob, start):
    with pytest.warns(UserWarning, match="became NaN/inf"):
        res = simulate(prob, start, dt=1.0, step_scale=1e6, T=4000.0, record_every=1000)
    assert res.status == "diverged"
    assert len(res.times) == 1
