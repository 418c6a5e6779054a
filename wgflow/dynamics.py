"""``simulate``: the MF particle flow and finite-N SGD, under any scheme.

Each particle follows ``dθ = −ς(t) [∇_θ δR/δμ(μ_t)(θ) + τ ∇r(θ)] dt + sqrt(2βς(t)) dB``, the
expectation ``E_π`` taken by an expectation object (:mod:`wgflow.data`):

- ``dynamics="mf"``: the MF limit, with the population expectation by default (Gauss–Hermite
  quadrature with ``n`` points per dimension for Gaussian data in ``d ≤ 3``, ``n`` from
  ``Problem(quadrature_points=…)``), time step ``dt``.
- ``dynamics="sgd"``: finite-N SGD in MF scaling — online minibatches of ``batch_size`` fresh
  samples and ``dt = ε_N = 1/N``, so that step ``k`` is MF time ``k ε_N`` and the per-particle step
  is ``s = ε_N ς``; ``T·N`` steps reach MF time ``T``. This is Euler–Maruyama on the minibatch
  velocity: ``θ_i ← θ_i − s [J_θ σ_*ᵀ ∂₁ℓ + τ∇r] + sqrt(2βs) ξ_i``.

Randomness comes from three streams spawned from the run's seed. Batches and DA moves are drawn
on the host, in step order, for a chunk of steps (at most a frame); fresh teacher labels are
computed there by the backend's kernels (compiled for ``"numba"``, the numpy reference
otherwise: the same labels up to rounding); the noise is counter-based
(:mod:`solvers.cpu.counter_rng`: a pure function of the step, particle and direction), drawn inside
the compiled loop and by the numpy reference alike. So the backends follow the same trajectory
up to rounding, and neither the thread count nor the grouping of steps into chunks or frames
changes a result. ``backend="numba"`` (default) runs each chunk in compiled, parallel code
(:mod:`solvers.cpu.flow`); ``backend="numpy"`` steps the numpy reference one step at a
time; ``backend="cuda"`` runs each chunk on the GPU (:mod:`solvers.cuda.driver`), the
particles staying on the device between chunks.

Noise ``ξ`` lives on ``E^G`` (``noise="EG"``), on the span of given orthonormal columns
(``noise=array (D, k)``), or on all of ``R^D`` (``"full"``); for EA on ``E^G`` (or on
``P_G`` of the given span; a span orthogonal to ``E^G`` is refused when ``β > 0``). It is
drawn as ``Z Bᵀ`` with ``Z`` standard normal and ``B`` an
orthonormal basis of that subspace: the law of the orthogonal projection of full noise onto it.
"""

from __future__ import annotations

import math
import time
import warnings
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from solvers import cuda, layered
from solvers.cpu import counter_rng
from solvers.cpu import flow as compiled_flow
from solvers.cpu import layered as compiled_layered
from solvers.cpu.activations import ACTIVATION_PRECISIONS
from solvers.integrators import INTEGRATORS, init

from . import diagnostics, resources
from ._checks import as_particles, choice, is_real, numeric, positive
from .data import Batch, FixedSample, GaussianData, Minibatch, OnlineSample
from .problem import Problem, population_record
from .result import Result
from .symmetry.schemes import SCHEMES, augment, model_output, orbit_terms, risk_gradient

#: numba = compiled CPU kernels, numpy = the reference, cuda = GPU kernels (optional extra)
BACKENDS = ("numba", "numpy", "cuda")
DYNAMICS = ("mf", "sgd")
DTYPES = ("float64", "float32")
#: how an observable is computed (:attr:`wgflow.Result.methods`, the ``method`` attribute of
#: ``/observables/<name>`` in a file): risk and teacher_l2 by the population expectation
#: (Gauss–Hermite ``quadrature``, ``monte-carlo`` sample, or the ``fixed-sample`` data),
#: distances by an ``exact`` or ``sliced`` W₂ or in ``closed-form``; ``unknown`` in old files
OBSERVABLE_METHODS = ("quadrature", "monte-carlo", "fixed-sample", "exact", "sliced",
                      "closed-form", "unknown")
#: random numbers drawn on the host at once at most (batches; and the noise for the numpy
#: reference, which the compiled flow draws itself): bounds a chunk's memory to 8 MB per array
CHUNK_NUMBERS = 1 << 20
#: wall time a chunk of steps aims at: interrupts (Ctrl-C) are honoured between chunks, and
#: chunks grow (at most doubling) or shrink towards this length; results do not depend on it
CHUNK_SECONDS = 0.25
#: the most steps a run may take (times and step counts stay exact integers in float64)
MAX_STEPS = 2**53
#: relative mismatch tolerated between ``T`` and the time the last step reaches
LANDING_TOLERANCE = 1e-9
#: ``|BᵀB − I|`` tolerated for a user noise basis B
ORTHONORMAL_TOLERANCE = 1e-8


def _noise_basis(problem, scheme, noise):
    """Orthonormal basis ``(D, k)`` of the subspace the noise lives on (the identity for
    ``R^D``): ``ξ = Z Bᵀ`` with ``Z ~ N(0, I_k)`` has the law of ``P ξ_full`` (``P = B Bᵀ``)
    and needs only ``k`` normal draws per particle."""
    sym = problem.symmetry
    if isinstance(noise, str):
        choice(noise, ("full", "EG"), "noise")
        if noise == "EG" and sym is None:
            raise ValueError("noise='EG' needs a problem with a symmetry")
        if noise == "EG" or scheme == "EA":
            return sym.basis
        return np.eye(problem.unit.dim)
    basis = numeric(noise, "noise", "(D, k)")
    if basis.ndim != 2 or basis.shape[0] != problem.unit.dim or basis.shape[1] == 0:
        raise ValueError(f"noise must be 'full', 'EG' or a basis array of shape (D, k) with "
                         f"D = {problem.unit.dim} and k ≥ 1, got shape {basis.shape}")
    defect = np.abs(basis.T @ basis - np.eye(basis.shape[1])).max() if np.all(
        np.isfinite(basis)) else np.inf
    if defect > ORTHONORMAL_TOLERANCE:
        raise ValueError(f"the noise basis (noise=array) must have orthonormal columns, but "
                         f"max |BᵀB − I| = {defect:.3g}; orthonormalize it first, e.g. "
                         "noise=np.linalg.qr(B)[0]")
    if scheme != "EA":
        return basis
    u, s, _ = np.linalg.svd(sym.projector @ basis, full_matrices=False)
    basis = u[:, s > 1e-12]  # orthonormal basis of P_G span(B)
    if basis.shape[1] == 0 and problem.beta > 0:
        raise ValueError("scheme='EA' keeps the noise in E^G, and the given noise basis is "
                         "orthogonal to E^G: the noise would vanish although beta > 0; give a "
                         "basis with a component in E^G, noise='EG', or beta=0")
    return basis


def _kernels(backend: str, activation_precision: str = "storage"):
    """The particle–sample kernels of ``backend`` (loading the CUDA backend on demand); for
    ``"numba"``, with the activations evaluated at ``activation_precision``."""
    if backend == "cuda":
        return cuda.backend().ResidentParticles()  # one per run
    if backend == "numpy":
        return layered
    if activation_precision == "storage":
        return compiled_layered
    return _CompiledKernelsAt(activation_precision)


class _CompiledKernelsAt:
    """The kernels of :mod:`solvers.cpu.layered` with the activations evaluated at
    ``activation_precision`` (the unit spec's field, set on every call)."""

    def __init__(self, activation_precision: str):
        self.activation_precision = activation_precision

    def network_output(self, spec, theta, x):
        """:func:`solvers.cpu.layered.network_output` at this precision."""
        spec = spec._replace(activation_precision=self.activation_precision)
        return compiled_layered.network_output(spec, theta, x)

    def vjp(self, spec, theta, x, u, w):
        """:func:`solvers.cpu.layered.vjp` at this precision."""
        spec = spec._replace(activation_precision=self.activation_precision)
        return compiled_layered.vjp(spec, theta, x, u, w)


def check_activation_precision(activation_precision: str, dtype: str, backend: str) -> None:
    """Refuse an ``activation_precision`` that is not one of ``ACTIVATION_PRECISIONS``, or
    float64 evaluation of float32 particles on a backend other than numba."""
    choice(activation_precision, ACTIVATION_PRECISIONS, "activation_precision")
    if activation_precision != "storage" and dtype == "float32" and backend != "numba":
        raise ValueError(f"activation_precision={activation_precision!r} applies to "
                         f"backend='numba' only (backend={backend!r} evaluates the activations "
                         "in the particles' dtype); use activation_precision='storage'")


def _default_expectation(problem, dynamics, batch_size):
    data = problem.data
    if data is None:
        return None
    if dynamics == "mf":
        return problem.population()
    if isinstance(data, GaussianData):
        return OnlineSample(data, batch_size)
    return Minibatch(data, batch_size)


def _observe(problem, scheme, theta, names, kernels, methods: dict | None = None) -> dict:
    """The observables ``names`` at the particles ``theta (N, D)``; ``methods``, when given, is
    filled with how each was computed (:data:`OBSERVABLE_METHODS`)."""
    pop, out, how = problem.population(), {}, {}
    if pop is not None and {"risk", "teacher_l2"} & set(names):
        b = pop.batch
        phi = model_output(problem, scheme, theta, b.x, kernels).astype(float)
        if "risk" in names:
            out["risk"] = float(b.w @ problem.loss_value(phi, b.y))
        if "teacher_l2" in names:
            out["teacher_l2"] = float(np.sqrt(b.w @ np.sum((phi - problem.teacher(b.x)) ** 2, 1)))
        how.update(dict.fromkeys(("risk", "teacher_l2"), problem.population_method))
    sym = problem.symmetry
    if "distance_to_EG" in names:
        d = diagnostics.distance_to_subspace(theta, sym.projector)
        out["distance_to_EG"], how["distance_to_EG"] = d.value, d.method
    if "distance_to_WI" in names:
        m = sym.action.matrices(sym.elements()[0])
        d = diagnostics.distance_to_orbit_average(theta, m)
        out["distance_to_WI"], how["distance_to_WI"] = d.value, d.method
    if methods is not None:
        methods.update({k: v for k, v in how.items() if k in out})
    return out


def default_observables(problem) -> tuple[str, ...]:
    """The observables a run of ``problem`` records: ``risk`` with data, ``teacher_l2`` with a
    teacher, the distances to SI and WI with a symmetry."""
    names = []
    if problem.data is not None:
        names.append("risk")
    if problem.teacher is not None:
        names.append("teacher_l2")
    if problem.symmetry is not None:
        names.append("distance_to_EG")
        if problem.symmetry.group.is_finite:
            names.append("distance_to_WI")
    return tuple(names)


class _Chunk:
    """The random inputs of ``steps`` consecutive steps from step ``first_step`` at time ``t``:
    batches (leading axis ``steps``, or 1 for a fixed sample), noise amplitudes
    ``sqrt(2βς(t_j)·dt)`` (or ``None`` without noise) and the step times ``ts (steps + 1)``
    (accumulated as the integrators accumulate them). The noise itself is counter-based
    (:mod:`solvers.cpu.counter_rng`); :meth:`noise` draws it for the numpy reference."""

    def __init__(self, run, first_step, t, steps):
        self.first_step, self.ts = first_step, np.cumsum([t] + [run.dt] * steps)
        constant = run.config["step_scale"]  # None for a function of t: called at each time
        self.scales = (np.full(len(self.ts), constant) if constant is not None else
                       np.array([run.scale(s) for s in self.ts]))  # ς at the step times, checked
        self.batches = None
        if run.expectation is not None:
            raw = run.expectation.draw(run.data_rng, steps, run.label_kernels)
            if run.scheme == "DA" and len(raw.w) < steps:  # fresh moves of a fixed sample
                raw = Batch(*(np.repeat(a, steps, axis=0) for a in raw))
            self.batches = augment(run.scheme, raw, run.problem.symmetry, run.move_rng)
        self.amplitudes = None
        if run.problem.beta > 0:
            self.amplitudes = np.sqrt(2.0 * run.problem.beta * run.dt * self.scales[:-1])

    def noise(self, run) -> np.ndarray | None:
        """The noise increments ``(steps, N, D)`` (numpy reference of the compiled draw)."""
        if self.amplitudes is None:
            return None
        steps, (n, _), k = len(self.amplitudes), run.shape, run.noise_basis.shape[1]
        z = counter_rng.normals(run.noise_key, self.first_step * n * k, steps * n * k)
        xi = z.reshape(steps, n, k) @ run.noise_basis.T
        return self.amplitudes[:, None, None] * xi


def _advance_numpy(run, theta, chunk: _Chunk) -> tuple[np.ndarray, int]:
    """Step the numpy reference through ``chunk``; stops before a non-finite step."""
    problem, scheme, step_fn = run.problem, run.scheme, INTEGRATORS[run.integrator]
    dtype = theta.dtype
    proj = problem.symmetry and problem.symmetry.projector.astype(dtype)
    noise = chunk.noise(run)
    noise = None if noise is None else noise.astype(dtype)
    state = init(theta, chunk.ts[0])
    for k in range(len(chunk.ts) - 1):
        batch = None
        if chunk.batches is not None:
            batch = Batch(*(a[k if len(a) > 1 else 0].astype(dtype) for a in chunk.batches))

        def drift(th, t, batch=batch):
            grad = 0.0 if batch is None else risk_gradient(problem, scheme, th, batch, layered)
            v = -run.scale(t) * (grad + 2.0 * problem.tau * th)
            return v @ proj if scheme == "EA" else v

        with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by the caller
            new = step_fn(state, drift, run.dt, None if noise is None else noise[k])
        if not np.all(np.isfinite(new.theta)):
            return state.theta, k
        state = new
    return state.theta, len(chunk.ts) - 1


def _flow_arguments(run, chunk: _Chunk) -> tuple:
    """The arguments after ``theta`` of the compiled flows' ``advance`` for ``chunk``."""
    problem, unit = run.problem, run.problem.unit
    batches = chunk.batches
    if batches is None:  # no data term: one empty batch
        batches = (np.zeros((1, 0, unit.d)), np.zeros((1, 0, unit.c)), np.zeros((1, 0)))
    proj = problem.symmetry.projector if run.scheme == "EA" else None
    noise = None if chunk.amplitudes is None else (run.noise_key, chunk.first_step,
                                                    run.noise_basis, chunk.amplitudes)
    return (batches, orbit_terms(problem, run.scheme), proj, problem.tau, run.dt,
            chunk.scales, noise, run.integrator == "heun")


def _advance_numba(run, theta, chunk: _Chunk) -> tuple[np.ndarray, int]:
    """Run ``chunk`` in compiled CPU code (:func:`solvers.cpu.flow.advance`)."""
    theta = theta.copy()
    spec = run.problem.unit.spec._replace(activation_precision=run.activation_precision)
    return theta, compiled_flow.advance(spec, theta, *_flow_arguments(run, chunk))


def _advance_cuda(run, theta, chunk: _Chunk) -> tuple[np.ndarray, int]:
    """Run ``chunk`` on the GPU (:func:`solvers.cuda.driver.advance`); ``run.kernels`` keeps
    the particles on the device from chunk to chunk (the host gets a copy per chunk)."""
    return run.kernels.advance(run.problem.unit.spec, theta, *_flow_arguments(run, chunk))


class Frame(NamedTuple):
    """One recorded frame: MF time ``t``, ``step``, particles ``theta (N, D)``, ``observables``
    (name → value)."""
    t: float  # MF time
    step: int
    theta: np.ndarray  # (N, D)
    observables: dict


class FlowCursor(NamedTuple):
    """Where a run stands between frames: everything a checkpoint must hold to continue it
    bitwise (particles, step, time and the states of the two random generators)."""

    theta: np.ndarray
    step: int
    t: float
    data_rng: dict  # batches
    move_rng: dict  # random DA moves


def step_grid(T: float, dt: float | None, dynamics: str, n: int) -> tuple[float, int]:
    """``(dt, number of steps)`` reaching MF time ``T`` exactly; ``dt`` defaults to ``1/N`` for
    SGD and ``1e-2`` for the MF flow. A ``T`` that is not a whole number of steps is refused
    (the last step would end before or after ``T``), and so is a step count beyond
    :data:`MAX_STEPS`."""
    T = positive(T, "T")
    default = " (1/N for SGD: T·N must be an integer)" if dt is None and dynamics == "sgd" \
        else ""
    dt = positive(dt if dt is not None else (1.0 / n if dynamics == "sgd" else 1e-2), "dt")
    ratio = T / dt
    if not ratio <= MAX_STEPS:
        raise ValueError(f"T = {T:.6g} with dt = {dt:.6g} needs {ratio:.3g} steps, more than "
                         f"{MAX_STEPS:.3g}: lower T or raise dt")
    steps = round(ratio)
    if steps == 0 or abs(steps * dt - T) > LANDING_TOLERANCE * T:
        lower, upper = max(1, math.floor(ratio)), max(1, math.ceil(ratio))
        hint = f"T = {lower * dt:.6g} or T = {upper * dt:.6g}" if lower != upper \
            else f"T = {lower * dt:.6g}"
        raise ValueError(f"T = {T:.6g} is not a whole number of time steps dt = {dt:.6g}"
                         f"{default}: T/dt = {ratio:.6g}; choose {hint}, or dt = T/k for an "
                         "integer k")
    return dt, steps


def _checked_scale(step_scale):
    """``t ↦ ς(t)`` from a number or a callable, every value checked to be finite and ≥ 0."""
    if not callable(step_scale):
        value = positive(step_scale, "step_scale")
        return lambda t: value

    def scale(t):
        value = step_scale(t)
        if not is_real(value) or not np.isfinite(value) or value < 0:
            raise ValueError(f"step_scale(t) must return a finite number ≥ 0, got {value!r} "
                             f"at t = {t:.6g}")
        return float(value)
    return scale


class Interrupted(Exception):
    """Raised by :func:`frames` when asked to stop; ``position`` is the :class:`FlowCursor`
    from which the run continues (between two chunks, possibly inside a frame)."""

    def __init__(self, position: FlowCursor):
        super().__init__(f"interrupted at step {position.step} (t = {position.t:.6g})")
        self.position = position


def _next_chunk(steps: int, seconds: float) -> int:
    """The steps of the next chunk: towards :data:`CHUNK_SECONDS`, at most doubling."""
    if seconds <= 0:
        return 2 * steps
    return max(1, min(2 * steps, int(steps * CHUNK_SECONDS / seconds)))


def cost(problem: Problem, n: int, *, scheme: str, dynamics: str, T: float, dt: float | None,
         batch_size: int, expectation=None, integrator: str, backend: str, dtype: str,
         frames_in_memory: int) -> resources.Estimate:
    """The estimated memory and time (:mod:`wgflow.resources`) of a run of ``n`` particles,
    before its particles are drawn; ``frames_in_memory``: recorded frames held at once."""
    dt, n_steps = step_grid(T, dt, dynamics, n)
    expectation = expectation or _default_expectation(problem, dynamics, batch_size)
    samples = 0 if expectation is None else (
        len(expectation.x) if isinstance(expectation, FixedSample) else expectation.size)
    if scheme in ("FA", "DA-orbit"):
        samples *= len(problem.symmetry.elements()[1])
    per_step = _batch_numbers(expectation, scheme, problem.unit)
    chunk_steps = max(1, CHUNK_NUMBERS // max(1, per_step))
    return resources.estimate(
        n=n, dim=problem.unit.dim, samples_per_step=samples, steps=n_steps,
        evaluations=2 if integrator == "heun" else 1, frames_in_memory=frames_in_memory,
        chunk_bytes=8 * per_step * min(chunk_steps, n_steps), backend=backend,
        itemsize=np.dtype(dtype).itemsize, width=problem.unit.c)


def prepare(problem: Problem, init_particles, *, scheme: str = "vanilla",
            dynamics: str = "mf", T: float = 1.0, dt: float | None = None,
            batch_size: int = 20, expectation=None, step_scale=1.0,
            integrator: str = "euler", noise="full", record_every: int | None = None,
            observables=None, seed=0, backend: str = "numba", dtype: str = "float64",
            activation_precision: str = "storage", keep_frames: bool = True,
            force: bool = False):
    """Check the options of :func:`simulate` and return ``(run, first_frame)``: the run
    description that :func:`frames` steps, and the initial frame. The run's memory and time
    are estimated first (:func:`cost`, with every frame held in memory when ``keep_frames``):
    one that cannot fit is refused and one that takes days gets a warning, unless
    ``force``."""
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a wgflow.Problem, got {type(problem).__name__}")
    choice(scheme, SCHEMES, "scheme")
    choice(dynamics, DYNAMICS, "dynamics")
    choice(integrator, INTEGRATORS, "integrator")
    choice(backend, BACKENDS, "backend")
    choice(dtype, DTYPES, "dtype")
    check_activation_precision(activation_precision, dtype, backend)
    if scheme != "vanilla" and problem.symmetry is None:
        raise ValueError(f"scheme={scheme!r} needs a problem with a symmetry (Problem(symmetry=…))")
    if backend != "numpy" and problem.loss != "squared":
        raise ValueError(f"backend={backend!r} implements loss='squared' only, got "
                         f"{problem.loss!r}; use backend='numpy'")
    theta = as_particles(init_particles, problem.unit.dim, "init_particles")
    n = theta.shape[0]
    T = positive(T, "T")
    dt, n_steps = step_grid(T, dt, dynamics, n)
    if record_every is None:
        record_every = max(1, n_steps // 20)
    record_every = positive(record_every, "record_every", integer=True)
    expectation = expectation or _default_expectation(problem, dynamics, batch_size)
    if problem.data is not None and not isinstance(expectation,
                                                   (FixedSample, OnlineSample, Minibatch)):
        raise ValueError("expectation must be a FixedSample, OnlineSample or Minibatch")
    scale = _checked_scale(step_scale)
    resources.check(cost(problem, n, scheme=scheme, dynamics=dynamics, T=T, dt=dt,
                         batch_size=batch_size, expectation=expectation, integrator=integrator,
                         backend=backend, dtype=dtype,
                         frames_in_memory=n_steps // record_every + 2 if keep_frames else 1),
                    force=force)
    kernels = _kernels(backend, activation_precision)
    names = default_observables(problem) if observables is None else tuple(observables)
    for name in names:
        choice(name, default_observables(problem), "observables")
    if scheme == "EA":
        theta = theta @ problem.symmetry.projector
    theta = theta.astype(dtype)
    seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    data_seq, noise_seq, move_seq = seq.spawn(3)
    per_step = _batch_numbers(expectation, scheme, problem.unit) + (
        theta.size if backend == "numpy" else 0)  # the compiled flow draws its noise itself
    config = {"problem": problem.describe(), "scheme": scheme, "dynamics": dynamics, "T": T,
              "dt": dt, "batch_size": batch_size, "integrator": integrator,
              "step_scale": None if callable(step_scale) else float(step_scale),
              "noise": noise if isinstance(noise, str) else "subspace",
              "record_every": record_every, "backend": backend, "dtype": dtype,
              "activation_precision": activation_precision, "N": n,
              "expectation": None if expectation is None else expectation.describe()}
    run = SimpleNamespace(
        problem=problem, scheme=scheme, dt=dt, integrator=integrator, expectation=expectation,
        scale=scale,
        noise_basis=_noise_basis(problem, scheme, noise), shape=theta.shape,
        data_rng=np.random.default_rng(data_seq), move_rng=np.random.default_rng(move_seq),
        noise_key=counter_rng.stream_key(noise_seq), n_steps=n_steps,
        record_every=record_every,
        names=names, kernels=kernels, activation_precision=activation_precision,
        label_kernels=compiled_layered if backend == "numba" else layered,
        chunk_steps=max(1, CHUNK_NUMBERS // max(1, per_step)),
        advance={"numba": _advance_numba, "numpy": _advance_numpy,
                 "cuda": _advance_cuda}[backend], config=config,
        seeds={"entropy": seq.entropy, "spawn_key": list(seq.spawn_key)}, status="complete")
    methods = {}
    first = Frame(0.0, 0, theta, _observe(problem, scheme, theta, names, run.kernels, methods))
    config["observable_methods"] = methods
    uses_population = bool({"risk", "teacher_l2"} & set(names)) or (
        expectation is not None and expectation is problem.population())
    on_cpu = {"numpy": layered, "cuda": compiled_layered}.get(backend, kernels)
    config["population"] = population_record(problem, theta, scheme, on_cpu,
                                             estimate=uses_population)
    return run, first


def _batch_numbers(expectation, scheme, unit) -> int:
    """Random numbers a step draws for its batch (a fixed sample draws none, unless DA moves
    it afresh every step)."""
    if expectation is None:
        return 0
    per_sample = unit.d + unit.c + 1
    if isinstance(expectation, FixedSample):
        return len(expectation.x) * per_sample if scheme == "DA" else 0
    return expectation.size * per_sample


def cursor(run, frame: Frame) -> FlowCursor:
    """The checkpointable state of ``run`` just after ``frame`` was produced."""
    return FlowCursor(frame.theta, frame.step, frame.t,
                      run.data_rng.bit_generator.state, run.move_rng.bit_generator.state)


def frames(run, start: FlowCursor, stop=None):
    """Yield the frames of ``run`` after ``start`` (a :func:`cursor`), one per ``record_every``
    steps and at the end. On divergence it warns, sets ``run.status = "diverged"`` and stops.
    ``stop``: a callable asked between chunks (about every :data:`CHUNK_SECONDS`); when it
    returns true, :class:`Interrupted` is raised with the position to continue from."""
    run.data_rng.bit_generator.state = start.data_rng
    run.move_rng.bit_generator.state = start.move_rng
    problem, scheme, kernels = run.problem, run.scheme, run.kernels
    theta, k, t = start.theta, start.step, start.t
    steps = 1  # grows towards CHUNK_SECONDS of work
    while k < run.n_steps:
        if stop is not None and stop():
            raise Interrupted(FlowCursor(theta, k, t, run.data_rng.bit_generator.state,
                                         run.move_rng.bit_generator.state))
        frame_end = min(run.n_steps, (k // run.record_every + 1) * run.record_every)
        tic = time.perf_counter()
        chunk = _Chunk(run, k, t, min(frame_end - k, run.chunk_steps, steps))
        theta, done = run.advance(run, theta, chunk)
        taken = len(chunk.ts) - 1  # seconds per step, extrapolated to a chunk of ``steps``
        steps = _next_chunk(steps, (time.perf_counter() - tic) * steps / taken)
        k, t = k + done, float(chunk.ts[done])
        obs = _observe(problem, scheme, theta, run.names, kernels) if k == frame_end else {}
        particles_failed = done < len(chunk.ts) - 1
        if particles_failed or not np.all(np.isfinite(list(obs.values()))):
            what, step, when = (("particles", k + 1, t + run.dt) if particles_failed
                                else ("observables", k, t))
            run.status = "diverged"
            run.message = (f"the {what} became NaN/inf at step {step} (t = {when:.4g}); the time "
                           "step is probably too large for this step_scale: reduce dt or "
                           "step_scale. Frames up to the last good one are kept.")
            warnings.warn(run.message, stacklevel=3)
            return
        if k == frame_end:
            yield Frame(t, k, theta, obs)


def result_of(run, recorded: list[Frame]) -> Result:
    """The :class:`Result` of ``run`` from its recorded frames."""
    problem = run.problem
    return Result(
        times=np.array([f.t for f in recorded]), steps=np.array([f.step for f in recorded]),
        particles=np.stack([f.theta for f in recorded]),
        observables={k: np.array([f.observables[k] for f in recorded]) for k in run.names},
        config=run.config, seeds=run.seeds,
        teacher=None if problem.teacher is None else problem.teacher.particles, status=run.status,
        methods=dict(run.config["observable_methods"]))


@resources.collecting_less
def simulate(problem: Problem, init_particles, **options) -> Result:
    """Integrate the particle system from ``init_particles (N, D)`` up to MF time ``T``.

    ``step_scale``: ς, a number or a function of ``t``; ``dt``: the MF time step (default
    ``1e-2`` for ``"mf"``, ``1/N`` for ``"sgd"``); ``expectation``: override the default
    (``FixedSample``, ``OnlineSample`` or ``Minibatch``); ``record_every``: steps between frames
    (default: 20 frames after the initial one); ``observables``: names among
    ``risk, teacher_l2, distance_to_EG, distance_to_WI`` (default: all that apply);
    ``seed``: an int or ``np.random.SeedSequence`` for the noise and the batches;
    ``backend``: ``"numba"`` (compiled, parallel), ``"numpy"`` (the reference) or ``"cuda"``
    (a GPU, with ``pip install 'wgflow[cuda]'``);
    ``dtype``: ``"float64"`` or ``"float32"`` for the particles and the kernels;
    ``activation_precision``: ``"storage"`` (default) evaluates the activations in ``dtype``,
    ``"float64"`` evaluates them in float64 on float32 particles (``backend="numba"``; slower,
    the float32 activations being within a few float32 ulp). Other options:
    ``scheme``, ``dynamics``, ``T``, ``batch_size``, ``integrator``, ``noise`` (see the module).

    The result records how each observable was computed (``Result.methods``) and how the
    population expectation was taken (``config["population"]``): for a Gauss–Hermite quadrature
    that the run uses, its relative error estimated once at the initial particles against twice
    the points (:func:`wgflow.problem.population_record`, which warns above ``QUADRATURE_TOL``).
    """
    run, first = prepare(problem, init_particles, **options)
    return result_of(run, [first, *frames(run, cursor(run, first))])
