"""The float32 activations (:mod:`solvers.cpu.fast_math32`) in float32 ulp over the whole float32
range, their vectorized code, and the float64 evaluation kept as an option from ``simulate``
and the config down to the kernels."""

import re

import numpy as np
import pytest
from conftest import TOL
from numba import njit

from solvers.activations import ACTIVATIONS
from solvers.cpu import flow as compiled_flow
from solvers.cpu import layered as compiled_layered
from solvers.cpu.activations import (
    COMPILED_ACTIVATIONS,
    FLOAT32_EVALUATED,
    CompiledActivation,
    activate,
    compiled_activation,
)
from solvers.cpu.fast_math import JIT
from wgflow import GaussianData, Perceptron, Problem, Teacher, bench, config, simulate

F32 = np.finfo(np.float32)
#: ±0, subnormal and tiny inputs; where the reduction's ``n`` leaves 0 (``|x| = ln2/2`` with
#: ``x = −2|z|`` for tanh, ``−|z|`` for sigmoid); where tanh and sigmoid round to ±1; where
#: ``e^{−|z|}`` and the derivatives become subnormal and then round to 0; the clamp of ``x`` at
#: −106 on either side; the largest floats, infinities and NaN
SPECIAL = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, F32.tiny, -F32.tiny, 1e-20, 1e-4,
                    0.1732, 0.1733, -0.1733, 0.1734, 0.3465, 0.3466, -0.3466, 0.3467, 9.0, 9.1,
                    -9.1, 17.0, -17.0, 43.6, 44.4, -44.4, 52.0, 52.7, -52.7, 53.0, -53.0, 53.1,
                    -87.3, -88.7, -103.2, -103.9, -104.0, -105.9, -106.0, -106.1, 106.1, -110.0,
                    88.7, 88.8, 89.0, F32.max, -F32.max, np.inf, -np.inf, np.nan],
                   dtype=np.float32)


def _points(rng):
    """Uniform points at three scales, magnitudes ``2^−u`` down to the smallest subnormal, and
    :data:`SPECIAL`; float32."""
    tiny = np.float32(2.0) ** -rng.uniform(0, 149, 5000) * rng.choice([-1, 1], 5000)
    return np.concatenate([rng.uniform(-1, 1, 40000), rng.uniform(-20, 20, 40000),
                           rng.uniform(-110, 110, 20000), tiny, SPECIAL]).astype(np.float32)


def _assert_within_float32_ulp(values, reference, z):
    """``|v − r| ≤ TOL['ulp_float32'] · ulp(r)`` in float32 ulp, ``r`` the float64 reference
    (subnormal results in the subnormal spacing); where ``r`` rounds to ±inf or is NaN the value
    must be that exactly."""
    assert values.dtype == np.float32
    with np.errstate(over="ignore"):
        rounded = reference.astype(np.float32)
    finite = np.isfinite(rounded)
    np.testing.assert_array_equal(values[~finite], rounded[~finite])
    ulp = np.spacing(np.abs(rounded[finite])).astype(np.float64)
    err = np.abs(values[finite].astype(np.float64) - reference[finite]) / ulp
    worst = np.argmax(err)
    assert err[worst] <= TOL["ulp_float32"], \
        f"off by {err[worst]:.3g} ulp at z = {z[finite][worst]!r}"


@njit
def _activate_row(activation, z, h, dh):
    for p in range(z.shape[1]):
        activate(activation, z, h, dh, 0, p)


def _rows(activation, z):
    buf = z[None].copy()
    h, dh = np.empty_like(buf), np.empty_like(buf)
    _activate_row(activation, buf, h, dh)
    return h[0], dh[0]


@pytest.mark.parametrize("name", FLOAT32_EVALUATED)
def test_float32_activation_and_derivative_within_ulp(name, rng):
    z = _points(rng)
    value, derivative = _rows(compiled_activation(name, np.float32), z)
    act = ACTIVATIONS[name]
    with np.errstate(over="ignore", invalid="ignore"):
        reference = act.value(z.astype(np.float64)), act.derivative(z.astype(np.float64))
    _assert_within_float32_ulp(value, reference[0], z)
    _assert_within_float32_ulp(derivative, reference[1], z)
    for computed, exact in zip((value, derivative), reference, strict=True):
        # where the exact value rounds to zero, the result is that zero, sign included (one
        # subnormal ulp off would pass the bound above)
        zero = exact.astype(np.float32) == 0
        assert not computed[zero].any(), f"not zero at z = {z[zero][computed[zero] != 0]!r}"
        np.testing.assert_array_equal(np.signbit(computed[zero]), np.signbit(exact[zero]))


@pytest.mark.parametrize("name", [n for n in ACTIVATIONS if n not in FLOAT32_EVALUATED])
def test_the_other_activations_give_the_float64_evaluation_bits(name, rng):
    """Why only ``FLOAT32_EVALUATED`` get a float64 flavour: the others are exact in either
    precision (relu, identity, quadratic) or evaluated in float64 anyway (erf, softplus)."""
    z = _points(rng)
    assert compiled_activation(name, np.float32, "float64") is COMPILED_ACTIVATIONS[name]
    with np.errstate(over="ignore", invalid="ignore"):
        for storage, in_float64 in zip(_rows(COMPILED_ACTIVATIONS[name], z),
                                       _rows(CompiledActivation(name, "float64"), z),
                                       strict=True):
            np.testing.assert_array_equal(storage, in_float64)


@njit(**{**JIT, "cache": False})
def _kernel_row(activation, z, h, dh):
    """:func:`_activate_row` compiled with the kernels' options (no division checks)."""
    for p in range(z.shape[1]):
        activate(activation, z, h, dh, 0, p)


@pytest.mark.parametrize("name", FLOAT32_EVALUATED)
def test_float32_rows_have_no_float64_arithmetic(name):
    """The compiled row loop of a float32 evaluation is packed float32 arithmetic (16 lanes of a
    zmm register on AVX-512), with no conversion to float64; the float64 flavour converts."""
    z = np.zeros((1, 64), np.float32)
    asm = {}
    for precision in ("storage", "float64"):
        activation = compiled_activation(name, np.float32, precision)
        _kernel_row(activation, z, z.copy(), z.copy())
        sig = next(s for s in _kernel_row.signatures
                   if s[0] == activation._numba_type_ and str(s[1].dtype) == "float32")
        asm[precision] = _kernel_row.inspect_asm(sig)
    packed_float32 = r"\bv?(mul|add|sub|div|fmadd\w*|fnmadd\w*)ps\b"
    float64_ops = r"\bv?(cvtps2pd|cvtss2sd|(mul|add|sub|div|fmadd\w*)(pd|sd))\b"
    assert re.search(packed_float32, asm["storage"])
    assert not re.search(float64_ops, asm["storage"])
    assert re.search(r"\bv?cvtps2pd\b", asm["float64"])


def test_the_float64_flavour_only_where_it_changes_the_result():
    for name in ACTIVATIONS:
        for precision in ("storage", "float64"):  # float64 storage: never a second kernel
            assert compiled_activation(name, np.float64, precision) is COMPILED_ACTIVATIONS[name]
        assert compiled_activation(name, np.float32) is COMPILED_ACTIVATIONS[name]
    flavours = {compiled_activation(n, np.float32, "float64")._numba_type_
                for n in FLOAT32_EVALUATED}
    assert len(flavours) == len(FLOAT32_EVALUATED)
    assert not flavours & {a._numba_type_ for a in COMPILED_ACTIVATIONS.values()}
    with pytest.raises(ValueError, match="activation_precision"):
        compiled_activation("tanh", np.float32, "float16")


def test_float64_evaluation_reaches_the_kernels_from_simulate(rng):
    """A float32 run with ``activation_precision="float64"`` compiles and runs the float64
    flavour (the flow and the observables; the population quadrature's error estimate, in
    float64, goes through the same kernels object) and stays within the float32 tolerance of
    the float64 numpy reference (float32 runs in the storage precision are checked against it
    throughout the suite)."""
    unit = Perceptron(2, 1, "sigmoid")
    problem = Problem(unit, GaussianData(Teacher(unit, rng.standard_normal((3, unit.dim)))))
    theta = rng.standard_normal((40, unit.dim))
    run = simulate(problem, theta, T=0.2, dt=2e-2, backend="numba", dtype="float32",
                   activation_precision="float64")
    assert run.config["activation_precision"] == "float64"
    for kernel in (compiled_flow._advance, compiled_layered.network_sum):
        assert any("CompiledActivation(sigmoid, float64)" in str(sig)
                   for sig in kernel.signatures), kernel
    reference = simulate(problem, theta, T=0.2, dt=2e-2, backend="numpy")  # float64
    assert reference.config["activation_precision"] == "storage"  # the default
    scale = np.abs(reference.particles).max()
    assert np.abs(reference.final - theta).max() > TOL["visible"]
    assert run.particles.dtype == np.float32
    assert np.abs(run.particles - reference.particles).max() <= TOL["float32"] * scale
    np.testing.assert_allclose(run.observables["teacher_l2"],
                               reference.observables["teacher_l2"], rtol=TOL["float32"])
    assert run.config["population"]["method"] == "quadrature"
    assert "error" in run.config["population"]  # estimated with the run's kernels


def test_float64_evaluation_of_the_network_output(rng):
    """The kernel-level switch: a unit spec with ``activation_precision="float64"`` gives the
    float64-evaluated activations in float32 sums, closer to the float64 result."""
    unit = Perceptron(3, 1, "tanh")
    theta, x = rng.standard_normal((200, unit.dim)), rng.standard_normal((50, 3))
    reference = compiled_layered.network_output(unit.spec, theta, x)
    spec64 = unit.spec._replace(activation_precision="float64")
    outputs = [compiled_layered.network_output(spec, theta.astype(np.float32), x)
               for spec in (unit.spec, spec64)]
    for out in outputs:
        assert np.abs(out - reference).max() <= TOL["float32"] * np.abs(reference).max()
    assert not np.array_equal(*outputs)


def test_a_bad_precision_is_refused_with_its_name(rng):
    problem, theta = bench._mf_problem("perceptron", "tanh", 2, 4, 3, "float64")
    with pytest.raises(ValueError, match="activation_precision"):
        simulate(problem, theta, T=0.01, dt=1e-2, activation_precision="double")
    with pytest.raises(ValueError, match="backend='numba' only"):
        simulate(problem, theta, T=0.01, dt=1e-2, backend="numpy", dtype="float32",
                 activation_precision="float64")
    with pytest.raises(ValueError, match=r"run\.activation_precision"):
        config.load_config(None, ["run.activation_precision=double"])
    loaded = config.load_config(None, ["run.activation_precision=float64"])
    assert loaded["run.activation_precision"] == "float64"
    conflict = config.load_config(None, ["run.activation_precision=float64", "run.dtype=float32",
                                         "run.backend=numpy"])
    with pytest.raises(ValueError, match=r"config keys 'run\.activation_precision', 'run\.backe"):
        config.build(conflict)
