"""What a call compiles: each kernel is compiled for the activation it is called with, the
compiled flow compiles its parallel paths only for a call that runs them, which gives the same
bits as its serial paths, and the activations are inlined into the loops that call them."""

import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import njit
from numba.core.runtime import _nrt_python, rtsys

import solvers
from solvers.cpu import fast_math
from solvers.cpu import flow as compiled_flow
from solvers.cpu import layered as compiled_layered
from solvers.cpu.activations import COMPILED_ACTIVATIONS, activate
from wgflow import Perceptron
from wgflow.symmetry.schemes import OrbitTerms

#: the compiled flow's parallel region
PARALLEL_KERNELS = (compiled_flow._region_in_parallel,)


def _compiled_for(kernel, activation: str, dtype: str) -> list:
    """The signatures of ``kernel`` compiled (or loaded) for ``activation`` and ``dtype``."""
    return [sig for sig in kernel.signatures
            if f"CompiledActivation({activation})" in str(sig) and dtype in str(sig)]


def _flow_arguments(unit, rng, n=40, steps=3, batch=5):
    """The arguments of :func:`solvers.cpu.flow.advance` after ``theta``: feature averaging
    over a two-element group, a projection, noise and Heun steps, in float32."""
    d, c, dim = unit.d, unit.c, unit.dim
    swap = np.eye(d)[::-1]
    orbit = OrbitTerms(np.stack([np.eye(d), swap]), np.stack([np.eye(c)] * 2),
                       np.full(2, 0.5), True)
    batches = (rng.standard_normal((steps, batch, d)), rng.standard_normal((steps, batch, c)),
               np.full((steps, batch), 1.0 / batch))
    basis = np.linalg.qr(rng.standard_normal((dim, 2)))[0]
    noise = (7, 0, basis, np.full(steps, 1e-2))
    return batches, orbit, basis @ basis.T, 1e-3, 0.05, np.full(steps + 1, 2.0), noise, True


def _advance_threads_types(activation: str, dtype: str) -> set:
    """The types of ``threads`` in the compiled flow's signatures for ``activation`` and
    ``dtype``: ``none`` for the serial path, an integer for the parallel one. A signature loaded
    from the kernel cache is listed too (the kernels it calls are not)."""
    threads = list(inspect.signature(compiled_flow._advance.py_func).parameters).index("threads")
    return {str(sig[threads]) for sig in _compiled_for(compiled_flow._advance, activation, dtype)}


def test_a_small_flow_compiles_no_parallel_code(rng, monkeypatch):
    unit = Perceptron(2, 1, "erf")  # erf in float32: compiled by no other test in parallel
    theta = rng.standard_normal((40, unit.dim)).astype(np.float32)
    args = _flow_arguments(unit, rng)
    assert not any(_compiled_for(k, "erf", "float32") for k in PARALLEL_KERNELS)
    serial = theta.copy()
    assert compiled_flow.advance(unit.spec, serial, *args) == 3
    assert _advance_threads_types("erf", "float32") == {"none"}
    assert not any(_compiled_for(k, "erf", "float32") for k in PARALLEL_KERNELS)
    # every size in parallel: the parallel path is compiled (or loaded), with the same bits
    monkeypatch.setattr(compiled_flow, "PARALLEL_MIN_WORK", 1)
    parallel = theta.copy()
    assert compiled_flow.advance(unit.spec, parallel, *args) == 3
    assert len(_advance_threads_types("erf", "float32") - {"none"}) == 1
    assert np.abs(serial - theta).max() > 0
    np.testing.assert_array_equal(parallel, serial)


def test_the_flow_and_the_calls_from_python_share_the_serial_kernels(rng):
    """``network_output`` and ``vjp`` run the serial kernels with the argument types that the
    compiled flow passes them: a run compiles each of them once (each compilation of a kernel
    costs seconds of a first run)."""
    unit = Perceptron(2, 1, "softplus")  # softplus in float32: compiled by no other test
    theta = rng.standard_normal((40, unit.dim)).astype(np.float32)
    x = rng.standard_normal((6, 2)).astype(np.float32)
    kernels = (compiled_layered.network_sum, compiled_layered.vjp_into)
    compiled_layered.network_output(unit.spec, theta, x)
    compiled_layered.vjp(unit.spec, theta, x, rng.standard_normal((6, 1)), np.full(6, 1 / 6))
    from_python = [set(_compiled_for(kernel, "softplus", "float32")) for kernel in kernels]
    assert compiled_flow.advance(unit.spec, theta, *_flow_arguments(unit, rng)) == 3
    for kernel, signatures in zip(kernels, from_python, strict=True):
        # the flow adds none (other tests in this process may have compiled other ones)
        assert signatures and set(_compiled_for(kernel, "softplus", "float32")) == signatures


def test_the_activation_is_part_of_the_compiled_signature(rng):
    unit = Perceptron(2, 1, "identity")
    theta, x = rng.standard_normal((9, unit.dim)), rng.standard_normal((4, 2))
    compiled_layered.network_output(unit.spec, theta, x)
    assert _compiled_for(compiled_layered.network_sum, "identity", "float64")


def test_every_cached_kernel_source_names_the_cache_directory():
    """numba checks only a cached function's own file, so the cache directory is named by a hash
    of every source that compiled code reads: a module compiling with ``cache=True`` (``JIT``)
    that is missing from it could load stale code after an edit."""
    root = Path(solvers.__file__).parent
    compiling = {str(path.relative_to(root).with_suffix("")) for path in root.rglob("*.py")
                 if any(option in path.read_text()
                        for option in ("**JIT", "**INLINED", "=INLINED", "cache=True"))}
    assert compiling - {"__init__"} <= set(solvers.KERNEL_SOURCES)


def _own_function(ir: str, name: str) -> str:
    """The body of the function ``name`` (not its wrappers for Python and C) in the IR ``ir``."""
    functions = re.findall(r"^define .*?^}", ir, flags=re.S | re.M)
    own = [f for f in functions if re.search(rf"@_ZN[\w$]*{name}B", f.splitlines()[0])
           and "cpython" not in f.splitlines()[0] and "cfunc" not in f.splitlines()[0]]
    assert len(own) == 1, [f.splitlines()[0][:120] for f in functions]
    return own[0]


@njit(error_model="numpy", fastmath={"contract"})  # not cached: its code can be inspected
def _activate_row(activation, z, h, dh):
    for p in range(z.shape[1]):
        activate(activation, z, h, dh, 0, p)


@pytest.mark.parametrize("name", ["tanh", "sigmoid", "relu", "identity", "quadratic"])
def test_the_activation_is_inlined_into_the_loop_over_the_lanes(name):
    """The activations and their ``exp`` are compiled once each (``solvers.cpu.fast_math.INLINED``)
    and LLVM inlines them into the caller: its loop over the lanes calls no function (only LLVM
    intrinsics) and runs on vectors of doubles."""
    z = np.linspace(-4.0, 4.0, 64)[None]
    h, dh = np.empty_like(z), np.empty_like(z)
    _activate_row(COMPILED_ACTIVATIONS[name], z, h, dh)
    signature = next(sig for sig in _activate_row.signatures
                     if f"CompiledActivation({name})" in str(sig[0]))
    row = _own_function(_activate_row.inspect_llvm(signature), "_activate_row")
    called = set(re.findall(r"call [^@]*@([\w.$]+)", row))
    assert all(name.startswith("llvm.") for name in called), called
    assert re.search(r"<\d+ x double>", row)


def test_a_flow_without_a_projection_compiles_none(rng):
    """``proj=None`` is a type of its own: the flow's projection branch is pruned when it is
    compiled (it would not type otherwise), and the steps equal those with the identity as
    ``P``."""
    unit = Perceptron(2, 1, "tanh")
    theta = rng.standard_normal((40, unit.dim))
    batches, orbit, _, *rest = _flow_arguments(unit, rng)
    without, identity = theta.copy(), theta.copy()
    assert compiled_flow.advance(unit.spec, without, batches, orbit, None, *rest) == 3
    assert compiled_flow.advance(unit.spec, identity, batches, orbit, np.eye(unit.dim),
                                 *rest) == 3
    proj = list(inspect.signature(compiled_flow._advance.py_func).parameters).index("proj")
    assert "none" in {str(sig[proj]) for sig in _compiled_for(compiled_flow._advance, "tanh",
                                                              "float64")}
    assert np.abs(without - theta).max() > 0
    np.testing.assert_array_equal(without, identity)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 24, 70])
def test_tiles_hold_the_particles_and_give_them_back(rng, n):
    theta = rng.standard_normal((n, 3))
    tts = compiled_layered.tiled(theta, 8)
    assert tts.shape == (-(-n // 8), 3, 8)
    for i in range(n):
        np.testing.assert_array_equal(tts[i // 8, :, i % 8], theta[i])
    assert not tts.transpose(0, 2, 1).reshape(-1, 3)[n:].any()  # the lanes past N are zero
    back = np.empty((n, 3), np.float32)
    compiled_layered.untile(tts, back)
    np.testing.assert_array_equal(back, theta.astype(np.float32))


@pytest.mark.parametrize("counted", [False, True])
def test_the_steps_run_without_reference_counts(rng, monkeypatch, counted):
    """The step driver and the passes it calls are compiled without numba's reference counts
    (``NO_REFCOUNTS``): no view or argument of a step updates a shared counter. Compiled afresh
    (uncached code can be inspected), the driver's own code calls no ``NRT_incref``; with
    reference counting (the contrast, which the probe must tell apart) it does. Both give the
    same steps."""
    unit = Perceptron(2, 1, "tanh")
    theta = rng.standard_normal((5, unit.dim))
    options = {key: value for key, value in compiled_flow._advance.targetoptions.items()
               if key != "nopython"}  # njit's own
    options["cache"] = False
    if counted:
        options.update(fast_math.REFCOUNTED)
    assert options["_nrt"] is counted
    fresh = njit(**options)(compiled_flow._advance.py_func)
    args = _flow_arguments(unit, rng)
    expected = theta.copy()
    assert compiled_flow.advance(unit.spec, expected, *args) == 3
    monkeypatch.setattr(compiled_flow, "_advance", fresh)
    stepped = theta.copy()
    assert compiled_flow.advance(unit.spec, stepped, *args) == 3
    np.testing.assert_array_equal(stepped, expected)
    (ir,) = fresh.inspect_llvm().values()
    assert ("NRT_incref" in _own_function(ir, "_advance")) is counted
    for kernel in (compiled_layered.network_sum, compiled_layered.vjp_into):
        assert kernel.targetoptions["_nrt"] is False


@pytest.fixture
def allocation_stats():
    """numba's counts of its allocations and frees, on for the test."""
    enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    yield rtsys.get_allocation_stats
    if not enabled:
        _nrt_python.memsys_disable_stats()


def test_kernels_without_reference_counts_leak_nothing(rng, allocation_stats):
    """The arrays a step receives keep their Python reference counts, and every allocation
    numba makes during the calls (the parallel region's buffers, the wrappers' meminfos) is
    freed: the counts are not skipped on one side only. In parallel and on one thread."""
    unit = Perceptron(2, 1, "tanh")
    args = _flow_arguments(unit, rng)
    for n in (5, 4000):  # one thread, then parallel regions (N·G·B ≥ PARALLEL_MIN_WORK)
        theta = rng.standard_normal((n, unit.dim))
        compiled_flow.advance(unit.spec, theta, *args)  # compiled before counting
        held = [sys.getrefcount(a) for a in (theta, *args[0])]
        before = allocation_stats()
        for _ in range(5):
            compiled_flow.advance(unit.spec, theta, *args)
            compiled_layered.network_output(unit.spec, theta, args[0][0][0])
        after = allocation_stats()
        assert [sys.getrefcount(a) for a in (theta, *args[0])] == held
        allocated = after.alloc - before.alloc
        assert allocated == after.free - before.free
        assert after.mi_alloc - before.mi_alloc == after.mi_free - before.mi_free
        assert (allocated > 0) == (n > 5)  # only the parallel regions allocate
