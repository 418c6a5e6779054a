"""The compiled entry points (CPU and CUDA) check their arguments before any compiled code runs:
a wrong shape or dtype raises ValueError naming the argument, the expected shape and the shape
received (:mod:`solvers.checks`). The CUDA ones run on numba's simulator (``conftest.py``)."""

import numpy as np
import pytest

from solvers import cuda as solvers_cuda
from solvers.cpu import flow as compiled_flow
from solvers.cpu import layered as compiled_layered
from wgflow import Perceptron
from wgflow.symmetry.schemes import OrbitTerms

UNIT = Perceptron(3, 2, "tanh")  # d = 3, c = 2, D = 6
N, M, K, B = 5, 4, 3, 2  # particles, samples, steps, batch samples; two orbit nodes


@pytest.fixture(params=["numba", "cuda"])
def kernels(request):
    """``(module of network_output and vjp, module of advance)`` of a backend."""
    if request.param == "cuda":
        return (solvers_cuda.backend(),) * 2
    return compiled_layered, compiled_flow


def sample_arguments():
    rng = np.random.default_rng(0)
    return {"theta": rng.standard_normal((N, UNIT.dim)), "x": rng.standard_normal((M, 3)),
            "u": rng.standard_normal((M, 2)), "w": np.full(M, 1.0 / M)}


def flow_arguments(**changes):
    """Valid arguments of ``advance`` (FA-like orbit, EA projection, noise), with ``changes``;
    a callable change maps the valid value to the new one."""
    rng = np.random.default_rng(1)
    swap3 = np.eye(3)[[1, 0, 2]]
    args = {"theta": rng.standard_normal((N, UNIT.dim)),
            "batches": (rng.standard_normal((K, B, 3)), rng.standard_normal((K, B, 2)),
                        np.full((K, B), 1.0 / B)),
            "orbit": OrbitTerms(np.stack([np.eye(3), swap3]), np.stack([np.eye(2)] * 2),
                                np.full(2, 0.5), True),
            "proj": np.eye(UNIT.dim), "tau": 1e-3, "dt": 0.1, "scales": np.ones(K + 1),
            "noise": (7, 0, np.eye(UNIT.dim)[:, :2], np.full(K, 1e-2)), "heun": True}
    for name, change in changes.items():
        args[name] = change(args[name]) if callable(change) else change
    return args


def test_valid_arguments_pass(kernels):
    outputs, flow = kernels
    args = sample_arguments()
    assert outputs.network_output(UNIT.spec, args["theta"], args["x"]).shape == (M, 2)
    assert outputs.vjp(UNIT.spec, *args.values()).shape == (N, UNIT.dim)
    for changes in ({}, {"proj": None, "noise": None},
                    {"batches": lambda b: tuple(a[:1] for a in b)}):  # one fixed batch
        args = flow_arguments(**changes)
        before = args["theta"].copy()
        assert flow.advance(UNIT.spec, **args) == K
        assert np.all(args["theta"] != before)


SAMPLE_CASES = [
    ("theta", lambda a: a[:, :-1], r"theta must have shape \(N, D\) with D = 6, got \(5, 5\)"),
    ("theta", lambda a: a.astype(np.int64), "theta must be a float32 or float64 array, got "
     "dtype int64"),
    ("theta", lambda a: a[:0], "theta must hold at least one particle"),
    ("x", lambda a: a[:, :2], r"x must have shape \(M, d\) with d = 3, got \(4, 2\)"),
    ("x", lambda a: a[0], r"x must have shape \(M, d\) with d = 3, got \(3,\)"),
    ("u", lambda a: a[:3], r"u must have shape \(M, c\) with M = 4, c = 2, got \(3, 2\)"),
    ("u", lambda a: a[:, :1], r"u must have shape \(M, c\) with M = 4, c = 2, got \(4, 1\)"),
    ("w", lambda a: a[:, None], r"w must have shape \(M,\) with M = 4, got \(4, 1\)"),
]


@pytest.mark.parametrize(("name", "change", "message"), SAMPLE_CASES)
def test_network_output_and_vjp_name_the_bad_argument(kernels, name, change, message):
    outputs = kernels[0]
    args = sample_arguments()
    args[name] = change(args[name])
    if name in ("theta", "x"):
        with pytest.raises(ValueError, match=message):
            outputs.network_output(UNIT.spec, args["theta"], args["x"])
    with pytest.raises(ValueError, match=message):
        outputs.vjp(UNIT.spec, *args.values())


def _batch(index, change):
    """A change of ``batches[index]``."""
    return lambda batches: tuple(change(a) if i == index else a for i, a in enumerate(batches))


def _read_only(theta):
    theta.flags.writeable = False
    return theta


IN_PLACE = r"theta is updated in place: it must be a C-contiguous, writeable array"
FLOW_CASES = [
    ("theta", np.asfortranarray, IN_PLACE),
    ("theta", _read_only, IN_PLACE),
    ("theta", lambda a: a[:, :4], r"theta must have shape \(N, D\) with D = 6, got \(5, 4\)"),
    ("theta", lambda a: a.astype(np.float16), "theta must be a float32 or float64 array"),
    ("scales", lambda a: a[:, None], r"scales must have shape \(K \+ 1,\) for K steps, got "
     r"\(4, 1\)"),
    ("batches", lambda b: b[:2], r"batches must be \(x, y, w\), got 2 arrays"),
    ("batches", _batch(0, lambda a: a[:2]), r"batches x must have shape \(K, B, d\) with K = 3, "
     r"d = 3 \(or \(1, B, ·\): one fixed batch for every step\), got \(2, 2, 3\)"),
    ("batches", _batch(0, lambda a: a[..., :2]), r"batches x must have shape \(K, B, d\) with "
     r"K = 3, d = 3 .*, got \(3, 2, 2\)"),
    ("batches", _batch(1, lambda a: a[:, :1]), r"batches y must have shape \(K, B, c\) with "
     r"K = 3, B = 2, c = 2 .*, got \(3, 1, 2\)"),
    ("batches", _batch(2, lambda a: a[..., None]), r"batches w must have shape \(K, B\) with "
     r"K = 3, B = 2 .*, got \(3, 2, 1\)"),
    ("batches", _batch(0, lambda a: a[:1]), r"batches y must have shape \(1, B, c\) with B = 2, "
     r"c = 2, got \(3, 2, 2\)"),  # a fixed batch x, but y per step
    ("orbit", lambda o: o._replace(weights=o.weights[:1]), r"orbit.rho_in must have shape "
     r"\(G, d, d\) with G = 1, d = 3, got \(2, 3, 3\)"),
    ("orbit", lambda o: o._replace(rho_in=o.rho_in[:, :2]), r"orbit.rho_in must have shape "
     r"\(G, d, d\) with G = 2, d = 3, got \(2, 2, 3\)"),
    ("orbit", lambda o: o._replace(rho_out=np.ones((2, 3, 3))), r"orbit.rho_out must have shape "
     r"\(G, c, c\) with G = 2, c = 2, got \(2, 3, 3\)"),
    ("orbit", lambda o: o._replace(weights=np.ones((2, 1))), r"orbit.weights must have shape "
     r"\(G,\), got \(2, 1\)"),
    ("proj", lambda a: a[:5], r"proj must have shape \(D, D\) with D = 6, got \(5, 6\)"),
    ("noise", lambda n: n[:3], r"noise must be None or \(key, first_step, basis, amplitudes\)"),
    ("noise", lambda n: (*n[:2], n[2][:5], n[3]), r"noise basis must have shape \(D, k\) with "
     r"D = 6, got \(5, 2\)"),
    ("noise", lambda n: (*n[:2], np.ones((6, 7)), n[3]), r"noise basis must have shape \(D, k\) "
     r"with k ≤ D = 6, got \(6, 7\)"),
    ("noise", lambda n: (*n[:3], n[3][:2]), r"noise amplitudes must have shape \(K,\) with "
     r"K = 3, got \(2,\)"),
]


@pytest.mark.parametrize(("name", "change", "message"), FLOW_CASES)
def test_advance_names_the_bad_argument(kernels, name, change, message):
    args = flow_arguments(**{name: change})
    theta = args["theta"].copy()
    with pytest.raises(ValueError, match=message):
        kernels[1].advance(UNIT.spec, **args)
    np.testing.assert_array_equal(args["theta"], theta)  # nothing ran


def test_cuda_device_particles_are_checked():
    driver = solvers_cuda.backend()
    args = sample_arguments()
    wide = driver.to_device(np.zeros((N, UNIT.dim + 1)))
    message = r"theta must have shape \(N, D\) with D = 6, got \(5, 7\)"
    for call in (lambda: driver.network_output(UNIT.spec, wide, args["x"]),
                 lambda: driver.vjp(UNIT.spec, wide, *list(args.values())[1:]),
                 lambda: driver.advance(UNIT.spec, **flow_arguments(theta=wide))):
        with pytest.raises(ValueError, match=message):
            call()
