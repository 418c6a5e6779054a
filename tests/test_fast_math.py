"""The compiled activations (:mod:`solvers.cpu.fast_math`, :mod:`solvers.cpu.activations`)
against numpy's over their whole range."""

import numba
import numpy as np
import pytest
from conftest import TOL, elementwise
from numba import njit

from solvers.activations import ACTIVATIONS
from solvers.cpu.activations import COMPILED_ACTIVATIONS, activate, compiled_activation
from solvers.cpu.fast_math import cos_sin_two_pi, exp, exp_of_nonpositive, log

TINY = np.finfo(np.float64).tiny
SPECIAL = [0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300, 1e-8, -1e-8, 0.55, -0.55,
           np.nextafter(0.55, 0.0), np.nextafter(-0.55, 0.0), 0.5493, 19.06, -19.06, 37.5, -37.5,
           709.7, -709.7, 710.0, -710.0, 745.1, -745.1, 800.0, -800.0, 1e308, -1e308,
           np.inf, -np.inf, np.nan]


def _points(rng):
    return np.concatenate([rng.uniform(-1, 1, 20000), rng.uniform(-40, 40, 20000),
                           1e-8 * rng.standard_normal(2000), rng.uniform(-750, 750, 2000),
                           SPECIAL])


def _assert_within_ulp(values, reference, z):
    """``|v − r| ≤ TOL['ulp'] · ulp(r)``, or both below the smallest normal number (numpy's own
    functions flush some subnormal results to zero); infinities and NaNs must match exactly
    (NaN in, NaN out wherever numpy gives NaN)."""
    finite = np.isfinite(reference)
    np.testing.assert_array_equal(values[~finite], reference[~finite])
    err = np.abs(values[finite] - reference[finite])
    bound = TOL["ulp"] * np.spacing(np.abs(reference[finite]))
    bad = (err > bound) & (np.maximum(np.abs(values[finite]), np.abs(reference[finite])) >= TINY)
    assert not bad.any(), f"off by {err[bad].max():.3g} at z = {z[finite][bad][:5]}"


@njit
def _activate_row(activation, z, h, dh):
    for p in range(z.shape[1]):
        activate(activation, z, h, dh, 0, p)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_and_derivative_match_numpy(name, rng):
    z = _points(rng)
    buf = z[None].copy()
    h, dh = np.empty_like(buf), np.empty_like(buf)
    _activate_row(COMPILED_ACTIVATIONS[name], buf, h, dh)
    act = ACTIVATIONS[name]
    with np.errstate(over="ignore", invalid="ignore"):
        value, derivative = act.value(z), act.derivative(z)
    _assert_within_ulp(h[0], value, z)
    _assert_within_ulp(dh[0], derivative, z)


#: where the float64 tanh and sigmoid change regime: ``|z|`` at which ``n`` of ``e^{−2|z|}``
#: (tanh) or ``e^{−|z|}`` (sigmoid) leaves 0 and −1, their derivatives turn subnormal, and the
#: clamp of the reduction
REGIME_EDGES = [0.1732867951, 0.17328679514, 0.5198603854, 0.3465735903, 0.34657359028,
                1.0397207708, 354.0, 354.5, 372.5, 374.0, 374.5, 708.3, 708.5, 744.4, 748.0,
                749.0]


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_tanh_and_sigmoid_are_within_a_few_ulp_of_the_exact_value(name, rng):
    """The float64 ``tanh`` and ``sigmoid`` (one quotient of ``r coth(r/2) ± r`` terms each) and
    their derivatives against a reference in extended precision (``np.longdouble``, 64-bit
    significand), near every edge of their regimes included; subnormal where the exact value
    is, and ``tanh(±0) = ±0``."""
    if np.finfo(np.longdouble).nmant <= np.finfo(np.float64).nmant:
        pytest.skip("the reference needs an extended-precision np.longdouble (x86)")
    edges = np.array(REGIME_EDGES)
    z = np.concatenate([rng.uniform(-1, 1, 40000), rng.uniform(-40, 40, 40000),
                        rng.uniform(-760, 760, 10000), 1e-8 * rng.standard_normal(2000),
                        edges, -edges, np.nextafter(edges, 0), np.nextafter(edges, 800),
                        [0.0, -0.0]])
    buf = z[None].copy()
    h, dh = np.empty_like(buf), np.empty_like(buf)
    _activate_row(COMPILED_ACTIVATIONS[name], buf, h, dh)
    zl = z.astype(np.longdouble)
    e = np.exp(-(2 if name == "tanh" else 1) * np.abs(zl))
    if name == "tanh":
        value, derivative = np.tanh(zl), 4 * e / (1 + e) ** 2
    else:
        value, derivative = np.where(zl >= 0, 1 / (1 + e), e / (1 + e)), e / (1 + e) ** 2
    for computed, exact in ((h[0], value), (dh[0], derivative)):
        rounded = exact.astype(np.float64)
        normal = np.abs(rounded) >= TINY
        err = np.abs(computed[normal].astype(np.longdouble) - exact[normal])
        assert np.all(err <= TOL["ulp_exact"] * np.spacing(np.abs(rounded[normal]))), (
            f"off by {np.max(err / np.spacing(np.abs(rounded[normal]))):.3g} ulp")
        assert np.all(np.abs(computed[~normal]) < TINY)  # subnormal where the value is
    if name == "tanh":  # odd: a zero keeps its sign
        assert np.signbit(h[0][-2:]).tolist() == [False, True]


_exp_all = elementwise(exp)


def test_exp_within_one_ulp_including_subnormal_and_overflow(rng):
    x = np.concatenate([rng.uniform(-745, 709, 100000), [-746.0, -800.0, -np.inf, 709.8, 710.0,
                                                         np.inf, 0.0, -0.0]])
    with np.errstate(over="ignore"):
        reference = np.exp(x)
    values = _exp_all(x)
    finite = np.isfinite(reference) & (reference > 0)
    np.testing.assert_array_equal(values[~finite], reference[~finite])
    assert np.all(np.abs(values[finite] - reference[finite])
                  <= np.spacing(reference[finite]))
    assert np.isnan(_exp_all(np.array([np.nan])))[0]


_exp_of_nonpositive_all = elementwise(exp_of_nonpositive)


def test_exp_of_nonpositive_arguments_within_one_ulp_including_subnormal(rng):
    """The activations' ``exp(−|z|)`` (its own polynomial fit, ``2^n`` in one product) is
    within 1 ulp of numpy's, subnormal results (one rounding) and the clamp below −746
    included, and exact at 0."""
    x = np.concatenate([-rng.uniform(0, 750, 200000), -rng.uniform(700, 746, 100000),
                        -2.0 ** rng.uniform(-60, 3, 100000), [0.0, -0.0, -745.13, -746.0,
                                                              -800.0, -np.inf]])
    values, reference = _exp_of_nonpositive_all(x), np.exp(x)
    assert np.any((values > 0) & (values < np.finfo(float).tiny))  # subnormals reached
    positive = reference > 0
    np.testing.assert_array_equal(values[~positive], 0.0)
    assert np.all(np.abs(values[positive] - reference[positive])
                  <= np.spacing(reference[positive]))
    assert _exp_of_nonpositive_all(np.array([0.0, -0.0])).tolist() == [1.0, 1.0]
    assert np.isnan(_exp_of_nonpositive_all(np.array([np.nan])))[0]


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_float32_buffers_evaluated_in_float64_hold_the_rounded_float64_value(name, rng):
    z = rng.uniform(-30, 30, 1000)
    b64, b32 = z[None].copy(), z[None].astype(np.float32)
    h64, d64, h32, d32 = (np.empty_like(b) for b in (b64, b64, b32, b32))
    _activate_row(COMPILED_ACTIVATIONS[name], b64, h64, d64)
    _activate_row(compiled_activation(name, np.float32, "float64"), b32, h32, d32)
    b64_of_32 = b32.astype(np.float64)
    h_ref, d_ref = np.empty_like(b64_of_32), np.empty_like(b64_of_32)
    _activate_row(COMPILED_ACTIVATIONS[name], b64_of_32, h_ref, d_ref)
    np.testing.assert_array_equal(h32, h_ref.astype(np.float32))
    np.testing.assert_array_equal(d32, d_ref.astype(np.float32))


@njit
def _log_cos_sin_all(x):
    lg, cs, sn = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    for i in range(x.size):
        lg[i] = log(x[i])
        cs[i], sn[i] = cos_sin_two_pi(x[i])
    return lg, cs, sn


def test_log_and_cos_sin_two_pi(rng):
    """``log`` within a few ulp on normal positive numbers; ``cos(2πu)`` and ``sin(2πu)``
    within 1e-15 of numpy's (whose argument ``2πu`` is itself rounded), in every quadrant and
    for negative ``u``."""
    x = np.concatenate([rng.uniform(0, 1, 100000), 2.0 ** -rng.uniform(0, 1000, 20000),
                        2.0 ** rng.uniform(0, 1000, 20000), [1.0, 0.5, 2.0**-53, TINY]])
    lg, _, _ = _log_cos_sin_all(x)
    _assert_within_ulp(lg, np.log(x), x)
    u = np.concatenate([x[:100000], -x[:1000], [0.0, 0.25, 0.5, 0.75, -0.25, 0.125, 3.375]])
    _, cs, sn = _log_cos_sin_all(u)
    rounding = 1e-15 + 2 * np.pi * np.abs(u) * np.finfo(float).eps  # of numpy's 2πu
    assert np.all(np.abs(cs - np.cos(2 * np.pi * u)) <= rounding)
    assert np.all(np.abs(sn - np.sin(2 * np.pi * u)) <= rounding)


def test_each_activation_is_its_own_compile_time_type():
    kinds = {numba.typeof(COMPILED_ACTIVATIONS[name]) for name in ACTIVATIONS}
    assert len(kinds) == len(ACTIVATIONS)
    with pytest.raises(TypeError, match="compiled kernels"):
        activate(COMPILED_ACTIVATIONS["tanh"], np.zeros((1, 1)), np.zeros((1, 1)),
                 np.zeros((1, 1)), 0, 1)
