"""Shared test configuration: every numerical tolerance of the test suite lives here."""

import os

# The CUDA backend's tests run on numba's CUDA simulator unless asked otherwise: set
# NUMBA_ENABLE_CUDASIM=0 on a machine with a CUDA GPU to run them on the device. This must
# happen before numba is imported.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import subprocess
import sys
import time

import numpy as np
import pytest

#: Tolerances, by purpose. Relative unless the name says otherwise.
TOL = {
    # exact identities evaluated in float64 (projector algebra, closed forms, reference kernels)
    "exact": 1e-12,
    # invariants of the flow that hold exactly in exact arithmetic, after many steps of rounding
    "invariant": 1e-12,
    # central finite differences with step 1e-6 on smooth functions
    "fd": 1e-6,
    # two independent exact solvers (POT emd vs. closed form, two derivations of P_G)
    "solver": 1e-9,
    # the sliced W₂² of uniform measures from sorted projections against POT's merged quantile
    # functions, relative on measures that are O(1) apart: the same sum up to rounding (POT's
    # cumulative weights leave an absolute error of order eps·M₂; measured: 7e-12 at n = 5000
    # against 10⁴ atoms)
    "sliced_sorted": 1e-10,
    # statistical checks: allowed deviation in standard errors of the estimate
    "sigmas": 4.0,
    # distances returned as the square root of an exact-to-rounding cost (RMD, W2 via emd)
    "sqrt_exact": 1e-7,
    # Heun at dt = 1e-3 on rates of order one, against the closed form: O(dt²)
    "heun_fine": 1e-6,
    # a displacement or distance that is clearly not rounding ("the particles did move")
    "visible": 1e-2,
    # compiled activations against numpy's, in units in the last place (measured maximum: 5)
    "ulp": 8,
    # float64 tanh and sigmoid (and derivatives) against their exactly rounded values, in ulp:
    # a few roundings after an e^r accurate to 1.2e-18 (measured maximum over 10⁵ points: 3)
    "ulp_exact": 4,
    # float32 tanh, sigmoid and derivatives against the float64 reference, in float32 units in
    # the last place: a few roundings of float32 operations after an e^r accurate to 2e-10
    # (measured maximum over 5·10⁶ points: 3.5, for the derivatives)
    "ulp_float32": 5,
    # float32 kernels against the float64 numpy reference, relative to the result's scale
    "float32": 1e-5,
    # fitted convergence order of an integrator against the theoretical one
    "order": 0.15,
    # an error estimate (n-point rule against 2n points) against the true error, relative, where
    # the 2n-point rule is far more accurate (measured: 2%) and rounded to two digits
    "error_estimate": 0.05,
    # mass of the grid PDE solver, relative, after hundreds of steps (the bar)
    "mass": 1e-13,
    # L1 error of the 2-D Ornstein–Uhlenbeck density at 128² cells (measured: 1.8e-3)
    "pde_ou_l1_128": 2.5e-3,
    # variance error of the 1-D aggregation flow at 256 cells (measured: 1.1e-5)
    "pde_aggregation_var_256": 2e-5,
    # the same with the hybrid flux and SSP-RK3 at CFL 0.5 (measured: 7e-11; the bar)
    "pde_hybrid_var_256": 1e-8,
    # L1 distance of the PDE to its stationary (Gibbs) state after T = 12 (rate 2: e^{-24})
    "pde_stationary": 1e-8,
    # least fitted rate of W₂(particles, PDE) in N over N = 1e2…1e4 (N^{-1/2} for the empirical
    # measure, flattened by the Euler–Maruyama and grid errors; measured: 0.39)
    "pde_particle_rate": 0.3,
    # L1 error of the 1-D porous-medium (m = 2) flow against Barenblatt at 200 cells (measured:
    # 2.3e-5)
    "pde_barenblatt_l1_200": 3e-5,
    # least fitted rate of the exact W₂(particles, PDE) in N over N = 100…1600 on the paper's
    # problem in E^G coordinates (flattened by the 2-D log factor and the cell floor; measured:
    # 0.28)
    "pde_particle_rate_EG": 0.2,
    # mirror symmetries: a Hessian block by central differences (step 1e-5·max(1, |θ|)) of
    # exact gradients against its closed form, relative to the block's scale (O(h²) truncation,
    # O(ε/h) rounding: measured 6e-10)
    "mirror_hessian": 1e-7,
    # mirror symmetries: the transverse growth rate measured on the MF flow (Euler, dt = 1e-2,
    # over 500 steps) against −(λ_min + 2τ), relative (O(dt·λ) Euler error: measured 3e-3)
    "mirror_growth_rate": 2e-2,
    # mirror symmetries: the DCS lasso path against scikit-learn's, relative at every penalty
    # (the bar; measured 1e-8)
    "dcs_lasso": 1e-3,
    # mirror symmetries: soft-thresholded singular values reached by gradient descent, absolute
    # (exponential convergence over 4000 steps: measured 1e-12)
    "soft_threshold": 1e-8,
    # largest principal angle (radians) between a discovered subspace and E^G: the bar of the
    # subspace-discovery issue (measured on the test cases: 0.01 to 0.03)
    "subspace_angle": 0.05,
}


def elementwise(function):
    """``function`` (a compiled scalar function) applied to every entry of a 1-D array, in
    compiled code."""
    from numba import njit

    @njit
    def apply(x):
        out = np.empty_like(x)
        for i in range(x.size):
            out[i] = function(x[i])
        return out

    return apply


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


def cli_sets(overrides) -> list[str]:
    """``["--set", k=v, …]``: config overrides as ``wgflow run`` arguments."""
    return [arg for override in overrides for arg in ("--set", override)]


def interrupted_run(path, overrides, overwrite: bool = False):
    """Run ``overrides`` (``key=value`` strings) into ``path`` (replacing a trajectory there
    with ``overwrite``) and stop it at its first chance, as Ctrl-C does: the file keeps status
    ``running``, its first frame and a checkpoint to resume from (a finished run removes its
    checkpoint)."""
    from wgflow.config import load_config
    from wgflow.files.checkpoints import checkpoint_path
    from wgflow.runner import RunInterrupted, run_to_file

    with pytest.raises(RunInterrupted):
        run_to_file(load_config(None, overrides), path, progress=False, overwrite=overwrite,
                    stop=lambda: True)
    assert checkpoint_path(path).exists()
    return path


def kill_after_frames(path, args, frames: int, timeout: float = 120.0):
    """Start ``wgflow run --out path --quiet *args`` in a subprocess and ``kill -9`` it once its
    checkpoint records ``frames`` frames; fails if the run ends first (then make it longer)."""
    from wgflow.files.checkpoints import checkpoint_path, read_checkpoint

    proc = subprocess.Popen([sys.executable, "-m", "wgflow", "run", "--out", str(path),
                             "--quiet", *args])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint_path(path).exists() and read_checkpoint(path)[1] >= frames:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: make it longer"
    proc.kill()
    proc.wait()
