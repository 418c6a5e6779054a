"""Run configurations: TOML files with dotted keys, every key documented in :data:`SCHEMA`.

``load_config(path, overrides)`` reads a file (or the defaults), applies ``KEY=VALUE`` overrides
and checks every key and value, naming the key in any error; ``build(config)`` turns a checked
config into ``(problem, init_particles, simulate_options)``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import laws, paper, resources
from .dynamics import DTYPES, DYNAMICS, cost, step_grid
from .schemes import SCHEMES

#: (key, default, rule, meaning). Rules: "choice:a|b", "int>=1", "int>=0", "num>=0", "num>0".
SCHEMA = (
    ("problem.preset", "paper", "choice:paper",
     "the problem: paper = SPEC §5 teacher–student, sigmoid(W x), W ∈ R^{2×2}, G = C₂ swap"),
    ("problem.teacher", "arbitrary", "choice:" + "|".join(paper.TEACHERS),
     "teacher of the paper problem"),
    ("problem.tau", paper.SETTINGS["tau"], "num>=0", "weight decay τ (term τ ∫|θ|² dμ)"),
    ("problem.beta", paper.SETTINGS["beta"], "num>=0",
     "temperature β (entropy weight; noise sqrt(2βς·dt) per step)"),
    ("problem.quadrature_points", 0, "int>=0",
     "Gauss–Hermite points per input dimension of the population expectation (0 = 32 in d = 2)"),
    ("init.N", 100, "int>=1", "number of student particles"),
    ("init.law", "SI", "choice:SI|gaussian",
     "initial law: SI = Gaussian entries projected onto E^G, or plain gaussian"),
    ("init.std", paper.SETTINGS["init_std"], "num>0", "standard deviation of the entries"),
    ("init.seed", 0, "int>=0", "seed of the initial particles"),
    ("run.scheme", "FA", "choice:" + "|".join(SCHEMES), "training scheme"),
    ("run.dynamics", "sgd", "choice:" + "|".join(DYNAMICS),
     "sgd = finite-N SGD (dt = 1/N); mf = MF flow on the population"),
    ("run.T", paper.SETTINGS["T"], "num>0", "MF time reached (SGD takes T·N steps)"),
    ("run.dt", 0.0, "num>=0", "MF time step; 0 = default (1/N for sgd, 0.01 for mf)"),
    ("run.step_scale", paper.SETTINGS["step_scale"], "num>0",
     "step scale ς (per-particle SGD step ς/N)"),
    ("run.batch_size", paper.SETTINGS["batch_size"], "int>=1",
     "SGD minibatch size (fresh samples per step)"),
    ("run.integrator", "euler", "choice:euler|heun", "time integrator"),
    ("run.noise", "EG", "choice:full|EG", "subspace the noise lives on"),
    ("run.frames", 20, "int>=1", "frames recorded after the initial one (at most)"),
    ("run.seed", 1, "int>=0", "seed of the batches and the noise"),
    ("run.backend", "numba", "choice:numba|numpy|cuda",
     "numba = compiled CPU kernels; numpy = reference; cuda = GPU (pip install wgflow[cuda])"),
    ("run.dtype", "float64", "choice:" + "|".join(DTYPES), "precision of particles and kernels"),
    ("output.checkpoint_every", 5, "int>=1", "frames between checkpoints"),
)
DEFAULTS = {key: default for key, default, _, _ in SCHEMA}
#: the largest config file read (a config is a few hundred bytes)
MAX_CONFIG_BYTES = 1 << 20
_RULES = {key: rule for key, _, rule, _ in SCHEMA}


def _check(key: str, value):
    rule = _RULES[key]
    if rule.startswith("choice:"):
        allowed = rule[len("choice:"):].split("|")
        if value not in allowed:
            raise ValueError(f"config key {key!r} must be one of {allowed}, got {value!r}")
        return value
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if rule.startswith("int"):
        low = int(rule[len("int>="):])
        if not is_int or value < low:
            raise ValueError(f"config key {key!r} must be an integer ≥ {low}, got {value!r}")
        return value
    if (not (is_int or isinstance(value, float)) or not math.isfinite(value) or value < 0
            or (rule == "num>0" and value == 0)):
        need = "a finite number > 0" if rule == "num>0" else "a finite number ≥ 0"
        raise ValueError(f"config key {key!r} must be {need}, got {value!r}")
    return float(value)


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def parse_override(item: str) -> tuple[str, object]:
    """``"run.T=5"`` → ``("run.T", 5)``; the value is read as TOML, else kept as a string."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects KEY=VALUE (e.g. run.T=5), got {item!r}")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    return key.strip(), value


def config_hash(config: dict) -> str:
    """SHA-256 hex digest of ``config`` as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def checked(values: dict) -> dict:
    """The defaults updated by ``values`` (flat dotted keys), every key and value checked."""
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown config key {unknown[0]!r}; known keys: {sorted(DEFAULTS)}")
    config = {**DEFAULTS, **values}
    return {key: _check(key, value) for key, value in config.items()}


def load_config(path=None, overrides=()) -> dict:
    """The checked config from the TOML file ``path`` (defaults if ``None``) and overrides."""
    values = {}
    if path is not None:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)  # not a trajectory of gigabytes, nor /dev/zero
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
    values.update(parse_override(item) for item in overrides)
    return checked(values)


def default_toml() -> str:
    """The default config as TOML, every key commented."""
    lines, section = ["# wgflow run configuration; `wgflow run FILE` reads it, "
                      "`--set KEY=VALUE` overrides a key"], None
    for key, default, rule, meaning in SCHEMA:
        head, name = key.split(".")
        if head != section:
            lines += ["", f"[{head}]"]
            section = head
        value = f'"{default}"' if isinstance(default, str) else repr(default)
        allowed = rule[len("choice:"):].replace("|", " | ") if rule.startswith("choice:") \
            else rule.replace("num", "number ").replace("int", "integer ")
        lines.append(f"{name} = {value}  # {meaning} [{allowed.strip()}]")
    return "\n".join(lines) + "\n"


def build(config: dict, *, force: bool = False):
    """``(problem, init_particles, options)`` for :func:`wgflow.simulate` from a checked config.
    The run's memory and time are estimated before the particles are drawn (the frames
    streamed to a file): one that cannot fit is refused and one that takes days gets a
    warning, unless ``force`` (:mod:`wgflow.resources`)."""
    problem = paper.problem(config["problem.teacher"], tau=config["problem.tau"],
                            beta=config["problem.beta"],
                            quadrature_points=config["problem.quadrature_points"] or None)
    n, std, seed = config["init.N"], config["init.std"], config["init.seed"]
    try:
        dt, n_steps = step_grid(config["run.T"], config["run.dt"] or None, config["run.dynamics"],
                                n)
    except ValueError as err:
        raise ValueError(f"config keys 'run.T', 'run.dt': {err}") from None
    options = {k: config[f"run.{k}"] for k in ("scheme", "dynamics", "T", "step_scale",
                                               "batch_size", "integrator", "noise", "seed",
                                               "backend", "dtype")}
    options.update(dt=dt, record_every=max(1, -(-n_steps // config["run.frames"])))
    costs = {k: options[k] for k in ("scheme", "dynamics", "T", "dt", "batch_size",
                                     "integrator", "backend", "dtype")}
    resources.check(cost(problem, n, frames_in_memory=1, **costs), force=force)
    if config["init.law"] == "SI":
        init = laws.strongly_invariant(n, problem.symmetry, std=std, seed=seed)
    else:
        init = laws.gaussian(n, problem.unit.dim, std=std, seed=seed)
    return problem, init, options
