"""Run configurations: TOML files with dotted keys, every key documented in :data:`SCHEMA`.

``load_config(path, overrides)`` reads a file (or the defaults), applies ``KEY=VALUE`` overrides
and checks every key and value, naming the key in any error; ``build(config)`` turns a checked
config into ``(problem, init_particles, simulate_options)``, or for ``run.solver = "pde"`` into
``(problem, initial law, wgflow.pde.prepare options)``.

Any problem of the library is a config (:mod:`wgflow.configs`): ``problem.preset`` is ``paper``,
``custom`` (the ``[problem.unit]``, ``[problem.group]`` and ``[problem.data]`` tables) or a
named preset; files the config reads are identified by their SHA-256 (``files.sha256``).

A grid PDE run (``run.solver = "pde"``, the ``[pde]`` table) solves the MF flow
(``run.dynamics = "mf"``) as a density: in ``E^G`` coordinates from an SI start (``init.law =
"SI"``, the initial law ``N(0, init.std² I)`` in the coordinates of the basis of ``E^G``), or
in the parameters themselves when ``D ≤ 2``; on ``[−L, L]`` per axis, ``L = pde.box`` or, for
0, ``PDE_BOX_STDS · init.std`` (the initial law up to ``e^{−18}``); with ``pde.cells`` cells
per axis; ``pde.flux``, ``pde.integrator`` and ``pde.diffusion`` choose the scheme
(:func:`wgflow.pde.prepare`). ``run.T``, ``run.step_scale``, ``run.frames``, ``run.backend``
(numba or numpy) keep their meaning; ``run.dt = 0`` takes the stable step; on ``E^G`` the flow
is that of EA and FA from an SI start (and of every scheme for the G-invariant WI and SI
teachers: vanilla, DA and DA-orbit with the arbitrary teacher are refused, since their flow
leaves ``E^G``); ``run.integrator``, the batch and ``run.seed`` do not enter (the flow is
deterministic).
"""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from pathlib import Path

from . import resources
from .configs import problems, rules, sources
from .configs.schema import (
    FILE_KEYS,
    INIT_KEYS,
    INIT_LAWS,
    PATH_KEYS,
    PRESETS,
    PROBLEM_KEYS,
    RUN_KEYS,
)
from .dynamics import (
    ACTIVATION_PRECISIONS,
    DTYPES,
    DYNAMICS,
    check_activation_precision,
    cost,
    default_observables,
    step_grid,
)
from .paper import SETTINGS, TEACHERS
from .symmetry.schemes import SCHEMES

#: (key, default, rule, meaning). Rules: "choice:a|b", "int>=1", "int>=0", "num>=0", "num>0".
SCHEMA = (
    ("problem.preset", "paper", "choice:" + "|".join(PRESETS),
     "the problem: paper = Maass & Fontbona's teacher–student, sigmoid(W x), W ∈ R^{2×2}, "
     "G = C₂ swap; "
     "custom = the [problem.unit], [problem.group], [problem.data] tables; `wgflow problems` "
     "lists the named presets"),
    ("problem.teacher", "arbitrary", "choice:" + "|".join(TEACHERS),
     "teacher of the paper problem"),
    ("problem.tau", SETTINGS["tau"], "num>=0", "weight decay τ (term τ ∫|θ|² dμ)"),
    ("problem.beta", SETTINGS["beta"], "num>=0",
     "temperature β (entropy weight; noise sqrt(2βς·dt) per step)"),
    ("problem.quadrature_points", 0, "int>=0",
     "Gauss–Hermite points per input dimension of the population expectation (0 = 32 in d = 2)"),
    *PROBLEM_KEYS,
    ("init.N", 100, "int>=1",
     "number of student particles (init.law = WI: N·|G|; init.law = file: the file's rows)"),
    ("init.law", "SI", "choice:" + "|".join(INIT_LAWS),
     "initial law: SI = Gaussian entries projected onto E^G, gaussian, WI = the orbits of "
     "Gaussian particles (finite groups), file = the particles of init.file"),
    ("init.std", SETTINGS["init_std"], "num>0", "standard deviation of the entries"),
    ("init.seed", 0, "int>=0", "seed of the initial particles"),
    *INIT_KEYS,
    ("run.scheme", "FA", "choice:" + "|".join(SCHEMES), "training scheme"),
    ("run.dynamics", "sgd", "choice:" + "|".join(DYNAMICS),
     "sgd = finite-N SGD (dt = 1/N); mf = MF flow on the population"),
    ("run.T", SETTINGS["T"], "num>0", "MF time reached (SGD takes T·N steps)"),
    ("run.dt", 0.0, "num>=0", "MF time step; 0 = default (1/N for sgd, 0.01 for mf)"),
    ("run.step_scale", SETTINGS["step_scale"], "num>0",
     "step scale ς (per-particle SGD step ς/N)"),
    ("run.batch_size", SETTINGS["batch_size"], "int>=1",
     "SGD minibatch size (fresh samples per step)"),
    ("run.integrator", "euler", "choice:euler|heun", "time integrator"),
    ("run.noise", "EG", "choice:full|EG", "subspace the noise lives on"),
    ("run.frames", 20, "int>=1", "frames recorded after the initial one (at most)"),
    ("run.seed", 1, "int>=0", "seed of the batches and the noise"),
    ("run.backend", "numba", "choice:numba|numpy|cuda",
     "numba = compiled CPU kernels; numpy = reference; cuda = GPU (pip install wgflow[cuda])"),
    ("run.dtype", "float64", "choice:" + "|".join(DTYPES), "precision of particles and kernels"),
    ("run.activation_precision", "storage", "choice:" + "|".join(ACTIVATION_PRECISIONS),
     "storage = activations evaluated in run.dtype; float64 = in float64 on float32 particles "
     "(numba backend, slower)"),
    *RUN_KEYS,
    ("run.solver", "particles", "choice:particles|pde",
     "particles = the particle system; pde = the MF flow as a density on a grid (run.dynamics "
     "= mf; [pde] table)"),
    ("pde.cells", 32, "int>=3", "cells per axis of the PDE grid"),
    ("pde.box", 0.0, "num>=0",
     "half-width L of the PDE box [-L, L] per axis; 0 = automatic (6 init.std: the initial law)"),
    ("pde.coordinates", "auto", "choice:auto|EG|parameters",
     "PDE grid coordinates: EG = the basis of E^G (SI start), parameters = θ itself (D ≤ 2); "
     "auto = EG for an SI start, else parameters"),
    ("pde.flux", "upwind", "choice:upwind|hybrid",
     "PDE flux: upwind = free energy decreasing at every step; hybrid = central where the cell "
     "Peclet number is at most 1 (moments exact in space there), upwind elsewhere"),
    ("pde.integrator", "ssp-rk2", "choice:ssp-rk2|ssp-rk3", "PDE time stepping"),
    ("pde.diffusion", "explicit", "choice:explicit|implicit",
     "PDE diffusion: explicit (step ∝ h²), or implicit backward Euler (step ∝ h, first order "
     "in time; not with pde.flux = hybrid)"),
    ("output.checkpoint_every", 5, "int>=1", "frames between checkpoints"),
    *FILE_KEYS,
)
DEFAULTS = {key: default for key, default, _, _ in SCHEMA}
#: the automatic PDE box: this many init.std on each side of the initial mean
PDE_BOX_STDS = 6.0
#: the largest config file read (a config is a few hundred bytes)
MAX_CONFIG_BYTES = 1 << 20
#: the first bytes of an HDF5 file (a run file given where a config is expected)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_RULES = {key: rule for key, _, rule, _ in SCHEMA}


def _check(key: str, value):
    return rules.check(key, value, _RULES[key])


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def parse_override(item: str) -> tuple[str, object]:
    """``"run.T=5"`` → ``("run.T", 5)``; the value is read as TOML, else kept as a string.

    Examples
    --------
    >>> parse_override("run.T=5")
    ('run.T', 5)
    >>> parse_override("run.scheme=EA")
    ('run.scheme', 'EA')
    """
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects KEY=VALUE (e.g. run.T=5), got {item!r}")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key.strip(), value


def non_default(config: dict) -> dict:
    """The keys of ``config`` whose values differ from their defaults (unknown keys included):
    what identifies a config whatever keys the schema gains later."""
    return {k: v for k, v in config.items() if k not in DEFAULTS or v != DEFAULTS[k]}


def config_hash(config: dict) -> str:
    """SHA-256 hex digest of the :func:`non_default` keys of ``config`` that its solver reads, as
    canonical JSON (sorted keys): a key added to the schema later (with a default) leaves the
    identity of existing runs and sweeps unchanged, and a particle run does not depend on the
    ``[pde]`` table."""
    particles = config.get("run.solver", "particles") == "particles"
    used = {k: v for k, v in non_default(config).items()
            if not (particles and (k == "run.solver" or k.startswith("pde.")))}
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()


def checked(values: dict) -> dict:
    """The defaults updated by ``values`` (flat dotted keys), every key and value checked."""
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown config key {unknown[0]!r}; known keys: {sorted(DEFAULTS)}")
    preset = values.get("problem.preset", DEFAULTS["problem.preset"])
    named = PRESETS.get(preset) if isinstance(preset, str) else None
    config = {**DEFAULTS, **(named if isinstance(named, dict) else {}), **values}
    config = {key: _check(key, value) for key, value in config.items()}
    _check_preset(config)
    config["files.sha256"] = _digests(config)
    if config["run.solver"] == "pde":
        _pde_coordinates(config)
    return config


#: the keys of the custom problem tables
_TABLE_KEYS = tuple(key for key, *_ in PROBLEM_KEYS)


def _check_preset(config: dict) -> None:
    """Refuse table keys the preset does not read: those of a custom problem with ``paper``,
    ``problem.teacher`` (the paper's teacher) with the others."""
    if config["problem.preset"] == "paper":
        for key in _TABLE_KEYS:
            if config[key] != DEFAULTS[key]:
                raise ValueError(f"config key {key!r} describes a custom problem, which "
                                 "problem.preset = \"paper\" does not read: set problem.preset "
                                 "= \"custom\" (`wgflow problems` lists the presets), or remove "
                                 "the key")
    elif config["problem.teacher"] != DEFAULTS["problem.teacher"]:
        raise ValueError("config key 'problem.teacher' chooses the teacher of the paper's "
                         f"problem, and problem.preset = {config['problem.preset']!r}: give the "
                         "teacher in [problem.data.teacher], or set problem.preset = \"paper\"")


def _digests(config: dict) -> list:
    """``[[path, SHA-256], …]`` of the files the config names (the recorded digest where there
    is one: a changed file is refused when it is read); the relative paths of ``config`` are
    made absolute against the working directory, in place."""
    recorded = dict(config["files.sha256"])
    digests = []
    for key in PATH_KEYS:
        value = config[key]
        if isinstance(value, str) and value:
            config[key] = value = sources.resolve(value, Path.cwd())
            digests.append([value, recorded.get(value) or sources.sha256(value, key)])
    return digests


def _pde_coordinates(config: dict) -> str | None:
    """The coordinates of the PDE run of the checked ``config`` (``"EG"`` or ``None``: the
    parameters); refuse, naming the keys, what the grid solver cannot run."""
    def refuse(keys, why):
        raise ValueError(f"config keys {', '.join(repr(k) for k in keys)}: {why}")

    if config["run.dynamics"] != "mf":
        refuse(("run.solver", "run.dynamics"), "the PDE solver computes the MF flow; set "
               "run.dynamics=mf (finite-N SGD runs with run.solver=particles)")
    if config["run.backend"] == "cuda" or config["run.dtype"] != "float64":
        refuse(("run.solver", "run.backend", "run.dtype"), "the PDE solver runs on the CPU in "
               "float64: set run.backend=numba or numpy and run.dtype=float64")
    if config["init.law"] not in ("SI", "gaussian") or config["init.mean"] != 0:
        refuse(("run.solver", "init.law", "init.mean"), "the PDE solver starts from a centred "
               "Gaussian law: set init.law=SI or gaussian and init.mean=0")
    dim, si = problems.unit_of(config).dim, config["init.law"] == "SI"
    coordinates = config["pde.coordinates"]
    if coordinates == "auto":
        coordinates = "EG" if si else "parameters"
    if coordinates == "EG" and not si:
        refuse(("pde.coordinates", "init.law"), f"E^G coordinates need an SI start "
               f"(init.law=SI), got init.law={config['init.law']}")
    if coordinates == "parameters" and dim > 2:
        refuse(("pde.coordinates", "init.law"), f"the grid solver runs in 1 or 2 dimensions "
               f"and this problem has D = {dim} parameters: start from an SI law "
               "(init.law=SI) and solve on E^G (pde.coordinates=EG or auto)")
    invariant = config["problem.preset"] == "paper" and config["problem.teacher"] != "arbitrary"
    if coordinates == "EG" and config["run.scheme"] not in ("EA", "FA") and not invariant:
        refuse(("run.scheme", "problem.teacher"), f"with data not known to be G-invariant (the "
               f"arbitrary teacher, or a custom problem) the {config['run.scheme']} flow may "
               "leave E^G, so the PDE on E^G is not its limit: use run.scheme=EA or FA, or the "
               "paper's WI or SI teacher")
    if config["pde.flux"] == "hybrid" and config["pde.diffusion"] == "implicit":
        refuse(("pde.flux", "pde.diffusion"), "the hybrid flux carries the diffusion itself: "
               "set pde.diffusion=explicit, or pde.flux=upwind")
    if coordinates == "EG" and config["run.noise"] != "EG" and config["problem.beta"] > 0:
        refuse(("run.noise", "problem.beta"), "the PDE on E^G is the flow with noise on E^G; "
               "set run.noise=EG (or problem.beta=0)")
    return "EG" if coordinates == "EG" else None


def load_config(path=None, overrides=()) -> dict:
    """The checked config from the TOML file ``path`` (defaults if ``None``) and overrides."""
    values = {}
    if path is not None:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)  # not a trajectory of gigabytes, nor /dev/zero
        if data.startswith(HDF5_SIGNATURE):
            raise ValueError(f"{path} is an HDF5 file, not a TOML config; for a run file, "
                             f"`wgflow config --from {path}` prints the config stored in it")
        if len(data) > MAX_CONFIG_BYTES:
            raise ValueError(f"{path} is not a TOML config (larger than "
                             f"{MAX_CONFIG_BYTES >> 20} MB); give the config file (`wgflow config "
                             "--default` prints one), and the output file with --out")
        try:
            values = _flatten(tomllib.loads(data.decode("utf-8")))
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"{path} is not valid TOML: {err}") from None
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not a TOML config (not UTF-8 text); give the "
                             "config file (`wgflow config --default` prints one)") from None
        base = Path(path).resolve().parent
        values.update({key: sources.resolve(values[key], base) for key in PATH_KEYS
                       if isinstance(values.get(key), str)})
    values.update(parse_override(item) for item in overrides)
    return checked(values)


def default_toml() -> str:
    """The default config as TOML, every key commented."""
    lines, section = ["# wgflow run configuration; `wgflow run FILE` reads it, "
                      "`--set KEY=VALUE` overrides a key"], None
    for key, default, rule, meaning in SCHEMA:
        head, name = key.rsplit(".", 1)
        if head != section:
            lines += ["", f"[{head}]"]
            section = head
        lines.append(f"{name} = {rules.toml_value(default)}  # {meaning} "
                     f"[{rules.describe(rule)}]")
    return "\n".join(lines) + "\n"


def to_toml(config: dict) -> str:
    """A checked config as TOML (one table per key prefix): ``load_config`` reads it back to
    ``config``."""
    lines, section = [], None
    for key, value in sorted(config.items(), key=lambda kv: kv[0].rsplit(".", 1)[0]):
        head, name = key.rsplit(".", 1)
        if head != section:
            lines += ["", f"[{head}]"] if lines else [f"[{head}]"]
            section = head
        lines.append(f"{name} = {rules.toml_value(value)}")
    return "\n".join(lines) + "\n"


def _pde_law_and_options(config: dict, problem) -> tuple[tuple, dict]:
    """The initial Gaussian ``(mean, variance)`` in grid coordinates and the options of
    :func:`wgflow.pde.prepare` of a PDE config (the module docstring)."""
    coordinates = _pde_coordinates(config)
    k = problem.symmetry.dim_EG if coordinates == "EG" else problem.unit.dim
    std = config["init.std"]
    half = config["pde.box"] or PDE_BOX_STDS * std
    options = {"box": (-half, half), "cells": config["pde.cells"], "T": config["run.T"],
               "dt": config["run.dt"] or None, "coordinates": coordinates,
               "record_every": config["run.T"] / config["run.frames"],
               "step_scale": config["run.step_scale"], "backend": config["run.backend"],
               "flux": config["pde.flux"], "integrator": config["pde.integrator"],
               "diffusion": config["pde.diffusion"]}
    return (np.zeros(k), std**2), options


def build(config: dict, *, force: bool = False):
    """``(problem, init_particles, options)`` for :func:`wgflow.simulate` from a checked config
    (for ``run.solver = "pde"``: ``(problem, initial law, options)`` for
    :func:`wgflow.pde.prepare`).
    The run's memory and time are estimated before the particles are drawn (the frames
    streamed to a file): one that cannot fit is refused and one that takes days gets a
    warning, unless ``force`` (:mod:`wgflow.resources`)."""
    problem = problems.problem_of(config)
    if problem.symmetry is None and (config["run.scheme"] != "vanilla"
                                     or config["run.noise"] == "EG"):
        raise ValueError("config keys 'run.scheme', 'run.noise', 'problem.group.kind': without "
                         "a group only run.scheme=vanilla with run.noise=full can run; set "
                         "them, or choose a group")
    if config["run.solver"] == "pde":
        return problem, *_pde_law_and_options(config, problem)
    recorded = default_observables(problem)
    if set(config["run.observables"]) - set(recorded):
        raise ValueError(f"config key 'run.observables' must list observables of this problem, "
                         f"among {list(recorded)}; got {config['run.observables']}")
    init = problems.init_particles(config, problem) if config["init.law"] == "file" else None
    n = len(init) if init is not None else config["init.N"] * (
        problem.symmetry.group.order if config["init.law"] == "WI"
        and problem.symmetry is not None and problem.symmetry.group.is_finite else 1)
    try:
        dt, n_steps = step_grid(config["run.T"], config["run.dt"] or None, config["run.dynamics"],
                                n)
    except ValueError as err:
        raise ValueError(f"config keys 'run.T', 'run.dt': {err}") from None
    try:
        check_activation_precision(config["run.activation_precision"], config["run.dtype"],
                                   config["run.backend"])
    except ValueError as err:
        raise ValueError(f"config keys 'run.activation_precision', 'run.backend': {err}") from None
    options = {k: config[f"run.{k}"] for k in ("scheme", "dynamics", "T", "step_scale",
                                               "batch_size", "integrator", "noise", "seed",
                                               "backend", "dtype", "activation_precision")}
    options.update(dt=dt, record_every=max(1, -(-n_steps // config["run.frames"])),
                   expectation=problems.expectation(config, problem),
                   observables=tuple(config["run.observables"]) or None)
    costs = {k: options[k] for k in ("scheme", "dynamics", "T", "dt", "batch_size",
                                     "expectation", "integrator", "backend", "dtype")}
    resources.check(cost(problem, n, frames_in_memory=1, **costs), force=force)
    if init is None:
        init = problems.init_particles(config, problem)
    return problem, init, options
