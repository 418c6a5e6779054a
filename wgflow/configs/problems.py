"""Problems, initial particles and expectations from a checked config (keys of
:mod:`wgflow.configs.schema`); every error names the config key, and for dimensions the two
things that disagree.

The objects are those of the Python API, built the way a user would build them
(:class:`~wgflow.units.MLPUnit`, :func:`~wgflow.symmetry.groups.sign_flips`,
:class:`~wgflow.Symmetry`, :class:`~wgflow.GaussianData`, :func:`wgflow.laws.gaussian`, …), so a
config run and the same problem built in Python give the same trajectories bit for bit.
"""

from __future__ import annotations

import functools

import numpy as np

from .. import laws, paper
from ..data import FixedSample, GaussianData, Minibatch, OnlineSample, Teacher, orbit_closed
from ..problem import Problem
from ..symmetry import Symmetry, groups
from ..units import UNITS, LayeredUnit
from . import sources


def unit_of(config: dict) -> LayeredUnit:
    """The unit of the config: ``(d, c)`` and the parameter dimension ``D`` follow from it."""
    if config["problem.preset"] == "paper":
        return paper.problem(config["problem.teacher"]).unit
    kind = config["problem.unit.kind"]
    options = {"d": config["problem.unit.d"], "c": config["problem.unit.c"],
               "activation": config["problem.unit.activation"]}
    if kind == "mlp":
        if not config["problem.unit.hidden"]:
            raise ValueError("config key 'problem.unit.hidden': an mlp unit needs its hidden "
                             "widths, e.g. problem.unit.hidden = [8]")
        options.update(hidden=config["problem.unit.hidden"], bias=config["problem.unit.bias"])
    elif config["problem.unit.hidden"]:
        raise ValueError(f"config key 'problem.unit.hidden' gives hidden widths, which a {kind} "
                         "unit does not have: use problem.unit.kind = \"mlp\" or remove them")
    elif kind == "perceptron":
        options["bias"] = config["problem.unit.bias"]
    return UNITS[kind](**options)


def _digest(config: dict, value: str) -> str:
    return dict(config["files.sha256"]).get(value, "")


def _array(config: dict, key: str, dataset_key: str) -> np.ndarray:
    """The array of the path or inline value of ``key``."""
    value = config[key]
    if isinstance(value, str):
        return sources.read_array(value, key, _digest(config, value), config[dataset_key])
    return np.asarray(value, dtype=float)


def _group_from_table(spec: dict, key: str, generators=None) -> groups.Group | None:
    """The group of the table ``spec`` (``kind``, ``n``, ``permutations``, ``generators``,
    ``factors``; ``None`` for kind ``none``); ``generators``: the matrices read from a file,
    in place of ``spec["generators"]``."""
    unknown = sorted(set(spec) - {"kind", "n", "permutations", "generators", "factors"})
    if unknown:
        raise ValueError(f"config key {key!r}: unknown entry {unknown[0]!r} (a group table has "
                         "kind, n, permutations, generators, factors)")
    kind, n = spec.get("kind", "swap"), spec.get("n", 2)
    try:
        if kind == "product":
            factors = spec.get("factors") or []
            if len(factors) < 2:
                raise ValueError("kind = product needs two or more factors, e.g. factors = "
                                 '[{kind = "cyclic", n = 3}, {kind = "swap"}]')
            built = [_group_from_table(f, f"{key}[{i}]") for i, f in enumerate(factors)]
            if any(g is None or not g.is_finite for g in built):
                raise ValueError("the factors of a product must be finite groups (not SO2 "
                                 "or none)")
            return functools.reduce(groups.direct_product, built)
        presets = {"swap": groups.swap, "SO2": groups.SO2, "none": lambda: None,
                   "cyclic": lambda: groups.cyclic(n),
                   "cyclic-rotations": lambda: groups.cyclic_rotations(n),
                   "dihedral": lambda: groups.dihedral(n),
                   "sign-flips": lambda: groups.sign_flips(n),
                   "permutations": lambda: groups.permutations(n, spec.get("permutations")
                                                               or None),
                   "generators": lambda: groups.FiniteGroup(
                       spec.get("generators") if generators is None else generators,
                       name="generators")}
        if kind not in presets:
            raise ValueError(f"kind must be one of {sorted(presets)}, got {kind!r}")
        return presets[kind]()
    except ValueError as err:
        if str(err).startswith("config key"):
            raise
        raise ValueError(f"config key {key!r}: {err}") from None


def _group(config: dict):
    spec = {k: config[f"problem.group.{k}"]
            for k in ("kind", "n", "permutations", "generators", "factors")}
    generators = None
    if spec["kind"] == "generators":
        if not spec["generators"]:
            raise ValueError("config key 'problem.group.generators': kind = generators needs the "
                             "generator matrices (k, n, n), inline or a file")
        generators = _array(config, "problem.group.generators", "problem.group.dataset")
    key = {"generators": "problem.group.generators", "product": "problem.group.factors"}.get(
        spec["kind"], "problem.group.kind")
    return _group_from_table(spec, key, generators)


def _representation(group, spec, key: str, dim: int, what: str):
    """The representation ``spec`` (a word or the generators' images) of config key ``key`` on
    a space of dimension ``dim`` (``what`` says which space and where its dimension comes
    from)."""
    if spec == "auto":
        spec = "defining" if group.defining.dim == dim or dim != 1 else "trivial"
    try:
        if spec == "defining":
            rep = group.defining
        elif spec == "trivial":
            rep = group.trivial(dim)
        else:
            rep = group.representation(spec)
    except ValueError as err:
        raise ValueError(f"config key {key!r}: {err}") from None
    if rep.dim != dim:
        named = f"the {spec} representation of {group.name}" if isinstance(spec, str) \
            else "the given representation"
        raise ValueError(f"config key {key!r}: {named} acts on R^{rep.dim} but {what} has "
                         f"dimension {dim}; make them agree (or give \"trivial\" or the images "
                         "of the generators)")
    return rep


def symmetry_of(config: dict, unit) -> Symmetry | None:
    """The symmetry of a custom config (``None`` for ``problem.group.kind = "none"``)."""
    group = _group(config)
    if group is None:
        return None
    dims = unit.space_dims
    hidden_specs = config["problem.group.hidden"]
    if hidden_specs and len(hidden_specs) != len(dims) - 2:
        raise ValueError(f"config key 'problem.group.hidden' gives {len(hidden_specs)} "
                         f"representations but the {unit.kind} unit has {len(dims) - 2} hidden "
                         f"spaces of widths {list(dims[1:-1])} (problem.unit.kind, "
                         "problem.unit.hidden); give one per hidden space")
    input_rep = _representation(group, config["problem.group.input"], "problem.group.input",
                                dims[0], "the unit's input space (problem.unit.d)")
    output = _representation(group, config["problem.group.output"], "problem.group.output",
                             dims[-1], "the unit's output space (problem.unit.c)")
    hidden = [_representation(group, spec, f"problem.group.hidden[{i}]", width,
                              f"hidden space {i} of the unit (problem.unit.kind, .hidden)")
              for i, (spec, width) in enumerate(zip(hidden_specs, dims[1:-1], strict=True))] \
        if hidden_specs else None
    try:
        return Symmetry(group, unit, input_rep, output, hidden, config["problem.group.haar_points"])
    except ValueError as err:
        raise ValueError(f"config keys 'problem.group' and 'problem.unit.activation': "
                         f"{err}") from None


def _drawn(config: dict, law: str, n: int, dim: int, std: float, seed: int, symmetry,
           key: str, mean: float = 0.0) -> np.ndarray:
    """``n`` particles of the named initial ``law`` (SI, gaussian or WI)."""
    if law in ("SI", "WI") and symmetry is None:
        raise ValueError(f"config key {key!r}: the {law} law needs a group; set "
                         "problem.group.kind or use the gaussian law")
    theta = laws.gaussian(n, dim, std=std, mean=mean, seed=seed)
    if law == "SI":
        return laws.project(theta, symmetry.projector)
    if law == "WI":
        if not symmetry.group.is_finite:
            raise ValueError(f"config key {key!r}: the WI law is the orbit closure of a sample, "
                             "which needs a finite group (SO(2) orbits are not finite): use SI "
                             "or gaussian")
        return laws.orbit_closed(theta, symmetry)
    return theta


def _particles(config: dict, key: str, dataset_key: str, dim: int, what: str) -> np.ndarray:
    theta = _array(config, key, dataset_key)
    theta = theta[None] if theta.ndim == 1 else theta
    if theta.ndim != 2 or theta.shape[1] != dim:
        raise ValueError(f"config key {key!r}: the particles have shape {theta.shape} but "
                         f"{what} has D = {dim} parameters: give one row of {dim} per particle")
    return laws.given(theta, dim)


def _teacher(config: dict, unit, symmetry) -> Teacher:
    prefix = "problem.data.teacher."
    if config[prefix + "particles"] != []:
        theta = _particles(config, prefix + "particles", prefix + "dataset", unit.dim,
                           f"the {unit.kind} unit (problem.unit)")
    else:
        theta = _drawn(config, config[prefix + "law"], config[prefix + "K"], unit.dim,
                       config[prefix + "std"], config[prefix + "seed"], symmetry, prefix + "law")
    return Teacher(unit, theta)


def _columns(config: dict, which: str, table, names, start: int, width: int, what: str):
    key = f"problem.data.{which}_columns"
    selection = config[key] or list(range(start, start + width))
    if len(selection) != width:
        raise ValueError(f"config key {key!r} selects {len(selection)} columns but {what} = "
                         f"{width}; select {width}")
    if max((c for c in selection if not isinstance(c, str)), default=-1) >= table.shape[1] \
            and not config[key]:
        raise ValueError(f"config key 'problem.data.file': the table has {table.shape[1]} "
                         f"columns, too few for {what} = {width} ({which} columns "
                         f"{start}…{start + width - 1}); select them with {key}")
    return sources.columns(table, names, selection, key)


def _data(config: dict, unit, symmetry):
    kind = config["problem.data.kind"]
    if kind == "none":
        return None
    if kind == "gaussian":
        d, cov = unit.d, np.asarray(config["problem.data.cov"], dtype=float)
        mean = np.broadcast_to(np.asarray(config["problem.data.mean"], dtype=float), (d,)) \
            if np.ndim(config["problem.data.mean"]) == 0 else config["problem.data.mean"]
        cov = np.diag(cov) if cov.ndim == 1 else cov
        teacher = _teacher(config, unit, symmetry)
        try:
            return GaussianData(teacher, cov=cov, mean=mean)
        except ValueError as err:
            raise ValueError(f"config keys 'problem.data.mean', 'problem.data.cov' (d = {d} "
                             f"from problem.unit.d): {err}") from None
    value = config["problem.data.file"]
    if not value:
        raise ValueError("config key 'problem.data.file': data.kind = file needs the file of "
                         "the training set")
    table, names = sources.read_table(value, "problem.data.file", _digest(config, value),
                                      config["problem.data.dataset"])
    x = _columns(config, "x", table, names, 0, unit.d, "problem.unit.d")
    if config["problem.data.labels"] == "teacher":
        y = _teacher(config, unit, symmetry)(x)
    else:
        y = _columns(config, "y", table, names, unit.d, unit.c, "problem.unit.c")
    sample = FixedSample(x, y)
    if config["problem.data.orbit_closed"]:
        if symmetry is None or not symmetry.group.is_finite:
            raise ValueError("config key 'problem.data.orbit_closed': the orbit of a sample is "
                             "finite only under a finite group; set problem.group.kind")
        sample = orbit_closed(sample, symmetry)
    return sample


def problem_of(config: dict) -> Problem:
    """The :class:`~wgflow.Problem` of a checked config."""
    scalars = {"tau": config["problem.tau"], "beta": config["problem.beta"],
               "quadrature_points": config["problem.quadrature_points"] or None}
    if config["problem.preset"] == "paper":
        return paper.problem(config["problem.teacher"], **scalars)
    unit = unit_of(config)
    symmetry = symmetry_of(config, unit)
    data = _data(config, unit, symmetry)
    try:
        return Problem(unit, data, symmetry, loss=config["problem.loss"], **scalars)
    except ValueError as err:
        raise ValueError(f"config keys 'problem.quadrature_points', 'problem.data': {err}") \
            from None


def init_particles(config: dict, problem: Problem) -> np.ndarray:
    """The initial particles ``(N, D)`` of ``init.law`` (WI: ``N·|G|``)."""
    dim = problem.unit.dim
    if config["init.law"] == "file":
        if not config["init.file"]:
            raise ValueError("config key 'init.file': init.law = file needs the particles file")
        return _particles(config, "init.file", "init.dataset", dim,
                          "the problem's unit (problem.unit)")
    return _drawn(config, config["init.law"], config["init.N"], dim, config["init.std"],
                  config["init.seed"], problem.symmetry, "init.law", config["init.mean"])


def expectation(config: dict, problem: Problem):
    """The expectation object of ``run.expectation`` (``None``: the default of
    :func:`wgflow.simulate`)."""
    kind, size = config["run.expectation"], config["run.batch_size"]
    if kind == "auto":
        return None
    if problem.data is None:
        raise ValueError(f"config key 'run.expectation' = {kind!r} needs data "
                         "(problem.data.kind = none has no expectation): use auto")
    gaussian = isinstance(problem.data, GaussianData)
    if kind == "online" and not gaussian:
        raise ValueError("config key 'run.expectation': online draws fresh samples of a "
                         "Gaussian law; a training set from a file is a fixed sample: use "
                         "population or minibatch")
    if kind == "population":
        return problem.population()
    if kind == "online":
        return OnlineSample(problem.data, size)
    if kind == "minibatch":
        return Minibatch(problem.population(), size)
    if not gaussian:
        return problem.data
    batch = problem.data.sample(np.random.default_rng(config["run.sample_seed"]),
                                config["run.sample_size"])
    return FixedSample(batch.x, batch.y, batch.w)
