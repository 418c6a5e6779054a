"""Any problem from a config file: the example configs run through `wgflow run`, `info` and
`plot` and give bit for bit the trajectories of the same problem built with the Python API;
stored configs reproduce their run; changed data files are refused; bad configs are rejected
naming the key."""

import hashlib
import json
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import cli_sets

from wgflow import config, groups, laws, load, simulate
from wgflow import sweep as sweeps
from wgflow.cli import main
from wgflow.configs import examples, problems, sources
from wgflow.configs.schema import PRESETS
from wgflow.data import FixedSample, GaussianData, Minibatch, OnlineSample, Teacher, orbit_closed
from wgflow.problem import Problem
from wgflow.runner import RunInterrupted, run_to_file
from wgflow.sweep.studies import definition
from wgflow.symmetry import Symmetry
from wgflow.units import MatrixUnit, MLPUnit, Perceptron

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

README = Path(__file__).resolve().parents[1] / "README.md"
#: small runs: SGD takes T·N = 5 steps, the MF flow T/dt = 4 steps
SMALL = {"sgd": ["init.N=10", "run.T=0.5"], "mf": ["init.N=10", "run.T=0.2"]}
#: the options of every example that keep their defaults
DEFAULT_OPTIONS = {"step_scale": 50.0, "seed": 1, "integrator": "euler", "backend": "numpy",
                   "dtype": "float64"}


def _so2_plane():
    unit = Perceptron(2, 1, "tanh")
    symmetry = Symmetry(groups.SO2(), unit, haar_points=8)
    data = GaussianData(Teacher(unit, laws.gaussian(3, unit.dim, std=0.5, seed=0)), cov=1.0)
    problem = Problem(unit, data, symmetry, tau=1e-4, beta=0.0, quadrature_points=16)
    init = laws.gaussian(10, unit.dim, std=0.5, seed=0)
    return problem, init, dict(scheme="FA", dynamics="mf", dt=0.05, T=0.2, noise="full",
                               batch_size=20, record_every=1)


def _mlp_cyclic():
    unit = MLPUnit(3, [3], 1, "tanh", bias=True)
    group = groups.cyclic(3)
    symmetry = Symmetry(group, unit, hidden=[group.defining])
    teacher = Teacher(unit, laws.strongly_invariant(3, symmetry, std=0.8, seed=0))
    problem = Problem(unit, GaussianData(teacher, cov=1.0), symmetry, tau=1e-4, beta=0.0,
                      quadrature_points=24)
    init = laws.strongly_invariant(10, symmetry, std=0.5, seed=0)
    return problem, init, dict(scheme="EA", dynamics="sgd", dt=0.1, T=0.5, noise="EG",
                               batch_size=16, record_every=1)


def _sign_flips_tanh():
    unit = MatrixUnit(2, 2, "tanh")
    group = groups.sign_flips(2)
    symmetry = Symmetry(group, unit, group.defining, group.defining)
    data = GaussianData(Teacher(unit, laws.gaussian(4, unit.dim, std=0.7, seed=3)),
                        cov=np.diag([1.0, 0.5]))
    problem = Problem(unit, data, symmetry, tau=1e-4, beta=0.0)
    init = laws.gaussian(10, unit.dim, std=0.3, seed=0)
    return problem, init, dict(scheme="DA", dynamics="sgd", dt=0.1, T=0.5, noise="full",
                               batch_size=16, record_every=1)


def _npy_data():
    table = np.load(sources.PACKAGE_DATA / "swap_regression.npy")
    unit = Perceptron(2, 1, "tanh")
    symmetry = Symmetry(groups.swap(), unit)
    data = orbit_closed(FixedSample(table[:, :2], table[:, 2:]), symmetry)
    problem = Problem(unit, data, symmetry, tau=1e-4, beta=0.0)
    init = laws.gaussian(10, unit.dim, std=0.5, seed=0)
    return problem, init, dict(scheme="vanilla", dynamics="sgd", dt=0.1, T=0.5, noise="full",
                               batch_size=16, expectation=Minibatch(data, 16), record_every=1)


def _csv_data():
    table = np.loadtxt(sources.PACKAGE_DATA / "ring.csv", delimiter=",", skiprows=1)
    unit = Perceptron(2, 1, "tanh")
    symmetry = Symmetry(groups.dihedral(4), unit)
    problem = Problem(unit, FixedSample(table[:, :2], table[:, 2]), symmetry, tau=1e-4,
                      beta=0.0)
    init = laws.orbit_closed(laws.gaussian(10, unit.dim, std=0.5, seed=0), symmetry)
    return problem, init, dict(scheme="FA", dynamics="mf", dt=0.05, T=0.2, noise="full",
                               batch_size=20, record_every=1)


#: example name → the same problem, initial particles and options through the Python API
BY_HAND = {"so2-plane": _so2_plane, "mlp-cyclic": _mlp_cyclic,
           "sign-flips-tanh": _sign_flips_tanh, "npy-data": _npy_data, "csv-data": _csv_data}


def _example(tmp_path, name: str) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(examples.text(name), encoding="utf-8")
    return path


#: fewer Haar nodes and quadrature points, where the example's would take seconds per step
FEWER = {"so2-plane": ["problem.group.haar_points=8", "problem.quadrature_points=16"]}


def _small(name: str) -> list:
    dynamics = config.load_config(examples.EXAMPLES / f"{name}.toml")["run.dynamics"]
    return cli_sets(["run.backend=numpy", "run.frames=10", *SMALL[dynamics], *FEWER.get(name, [])])


@pytest.mark.parametrize("name", sorted(BY_HAND))
def test_example_runs_as_the_python_api_bit_for_bit(tmp_path, capsys, name):
    out = tmp_path / f"{name}.h5"
    assert main(["run", str(_example(tmp_path, name)), "--out", str(out), "--quiet",
                 *_small(name)]) == 0
    stored = load(out)
    problem, init, options = BY_HAND[name]()
    expected = simulate(problem, init, **DEFAULT_OPTIONS, **options)
    assert stored.particles.shape == expected.particles.shape
    np.testing.assert_array_equal(stored.particles, expected.particles)
    np.testing.assert_array_equal(stored.times, expected.times)
    assert sorted(stored.observables) == sorted(expected.observables)
    for key, values in expected.observables.items():
        np.testing.assert_array_equal(stored.observables[key], values)
    if expected.teacher is None:
        assert stored.teacher is None
    else:
        np.testing.assert_array_equal(stored.teacher, expected.teacher)
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert f"scheme: {options['scheme']}, dynamics: {options['dynamics']}" in info
    assert "problem.preset=custom" in info
    assert main(["plot", str(out), "--out", str(tmp_path / "figures")]) == 0
    written = capsys.readouterr().out.split()
    assert written and all(Path(p).stat().st_size > 0 for p in written)


def _contents(path) -> dict:
    """Every dataset and attribute of an HDF5 file but the run's random identity."""
    found = {}

    def visit(name, obj):
        for key, value in obj.attrs.items():
            if key != "run_id":
                found[f"{name}@{key}"] = np.asarray(value).tobytes()
        if isinstance(obj, h5py.Dataset):
            found[name] = np.asarray(obj[()]).tobytes()

    with h5py.File(path, "r") as h5:
        visit("/", h5)
        h5.visititems(visit)
    return found


def _data_config(tmp_path) -> Path:
    """The npy example reading a copy of its data set beside the config (a relative path)."""
    data = tmp_path / "data" / "train.npy"
    data.parent.mkdir()
    data.write_bytes((sources.PACKAGE_DATA / "swap_regression.npy").read_bytes())
    text = examples.text("npy-data").replace('"package:swap_regression.npy"', '"data/train.npy"')
    path = tmp_path / "own.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_stored_config_reproduces_the_file_and_records_the_data_digest(tmp_path, capsys):
    first, second = tmp_path / "first.h5", tmp_path / "second.h5"
    cfg = _data_config(tmp_path)
    assert main(["run", str(cfg), "--out", str(first), "--quiet", *_small("npy-data")]) == 0
    stored = json.loads(h5py.File(first, "r")["parameters/config"][()])
    data = str(tmp_path / "data" / "train.npy")
    assert stored["problem.data.file"] == data
    assert stored["files.sha256"] == [[data, hashlib.sha256(Path(data).read_bytes()).hexdigest()]]
    capsys.readouterr()
    assert main(["config", "--from", str(first)]) == 0
    again = tmp_path / "again.toml"
    again.write_text(capsys.readouterr().out, encoding="utf-8")
    assert config.load_config(again) == config.checked(stored)
    assert main(["run", str(again), "--out", str(second), "--quiet"]) == 0
    one, two = _contents(first), _contents(second)
    assert sorted(one) == sorted(two)
    assert [k for k in one if one[k] != two[k]] == []


def test_resume_refuses_a_changed_data_file(tmp_path, capsys):
    cfg = _data_config(tmp_path)
    checked = config.load_config(cfg, ["run.backend=numpy", *SMALL["sgd"]])
    interrupted, whole = tmp_path / "interrupted.h5", tmp_path / "whole.h5"
    with pytest.raises(RunInterrupted):
        run_to_file(checked, interrupted, progress=False, stop=lambda: True)
    data = tmp_path / "data" / "train.npy"
    original = data.read_bytes()
    table = np.load(data)
    table[0, 2] += 1.0
    np.save(data, table)
    capsys.readouterr()
    assert main(["resume", str(interrupted), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'problem.data.file'" in err and "changed" in err and len(err.splitlines()) == 1
    data.write_bytes(original)
    assert main(["resume", str(interrupted), "--quiet"]) == 0
    run_to_file(checked, whole, progress=False)
    np.testing.assert_array_equal(load(interrupted).particles, load(whole).particles)


BAD = [  # (example, overrides, what the one-line message names)
    ("sign-flips-tanh", ["problem.unit.d=3"], ["'problem.group.input'", "problem.unit.d",
                                               "R^2", "dimension 3"]),
    ("csv-data", ['problem.data.x_columns=["x1"]'], ["'problem.data.x_columns'",
                                                     "problem.unit.d = 2"]),
    ("so2-plane", ["problem.data.teacher.particles=[[1.0, 2.0]]"],
     ["'problem.data.teacher.particles'", "(1, 2)", "D = 4"]),
    ("so2-plane", ["problem.data.mean=[0.0, 0.0, 0.0]"], ["'problem.data.mean'", "d = 2"]),
    ("so2-plane", ["problem.group.kind=generators",
                   "problem.group.generators=[[[1.0, 0.5], [0.0, 1.0]]]"],
     ["'problem.group.generators'", "not orthogonal"]),
    ("sign-flips-tanh", ["problem.unit.activation=sigmoid"],
     ["'problem.unit.activation'", "commute", "sigmoid"]),
    ("sign-flips-tanh", ["problem.unit.activation=softmax"],
     ["'problem.unit.activation'", "'tanh'", "'sigmoid'"]),
    ("csv-data", ["problem.data.file=no-such.csv"], ["'problem.data.file'", "no such file"]),
    ("csv-data", ["problem.data.file=package:none.csv"], ["'problem.data.file'", "ring.csv"]),
    ("mlp-cyclic", ['problem.group.hidden=["defining", "trivial"]'],
     ["'problem.group.hidden'", "2 representations", "1 hidden"]),
    ("so2-plane", ["problem.group.kind=none"], ["'run.scheme'", "vanilla"]),
    ("so2-plane", ["problem.group.kind=product",
                   'problem.group.factors=[{kind = "swap"}, {kind = "SO2"}]'],
     ["'problem.group.factors'", "finite groups"]),
    ("so2-plane", ["problem.group.kind=product",
                   'problem.group.factors=[{kind = "swap"}, {kind = "cyclic", m = 3}]'],
     ["'problem.group.factors[1]'", "unknown entry 'm'"]),
    ("so2-plane", ["init.law=WI"], ["'init.law'", "finite group"]),
    ("paper", ["problem.unit.d=3"], ["'problem.unit.d'", "custom"]),
    ("so2-plane", ["problem.teacher=WI"], ["'problem.teacher'", "[problem.data.teacher]"]),
    ("npy-data", ["run.expectation=online"], ["'run.expectation'", "minibatch"]),
    ("npy-data", ['run.observables=["risk", "teacher_l2"]'],
     ["'run.observables'", "'distance_to_WI'"]),
]


@pytest.mark.parametrize(("name", "overrides", "named"), BAD)
def test_bad_config_is_rejected_naming_the_key(tmp_path, capsys, name, overrides, named):
    code = main(["run", str(_example(tmp_path, name)), "--out", str(tmp_path / "x.h5"),
                 "--quiet", *cli_sets(overrides)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    for part in named:
        assert part in err
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(("text", "named"), [
    ("x1,x2,y\n1,2,3\n4,5\n", ["line 3", "2 fields where the first row has 3"]),
    ("x1,x2,y\n1,2,3\n4,five,6\n", ["line 3", "not a number"]),
    ("x1,x2,y\n", ["no data rows"]),
])
def test_malformed_csv_is_rejected_naming_the_key(tmp_path, capsys, text, named):
    bad = tmp_path / "bad.csv"
    bad.write_text(text, encoding="utf-8")
    cfg = _example(tmp_path, "csv-data")
    assert main(["run", str(cfg), "--out", str(tmp_path / "x.h5"), "--quiet",
                 *cli_sets([f"problem.data.file={json.dumps(str(bad))}"])]) == 2
    err = capsys.readouterr().err
    assert "config key 'problem.data.file'" in err and str(bad) in err
    for part in named:
        assert part in err


def test_default_config_and_examples_print_runnable_configs(tmp_path, capsys):
    assert main(["config", "--default"]) == 0
    default = tomllib.loads(capsys.readouterr().out)
    assert config.checked(config._flatten(default)) == config.checked({})
    assert main(["config", "--example"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == examples.names() and len(listed) >= 5
    files = {}
    for name in listed:
        checked = config.load_config(_example(tmp_path, name))
        files[name] = checked["problem.data.file"]
        problem = problems.problem_of(checked)
        assert problem.unit.dim == len(problems.init_particles(checked, problem)[0])
    assert any(f.endswith(".npy") for f in files.values())
    assert any(f.endswith(".csv") for f in files.values())
    assert main(["config", "--example", "no-such"]) == 2
    assert "--example must be one of" in capsys.readouterr().err


def test_problems_lists_every_preset_and_each_builds(capsys):
    assert main(["problems"]) == 0
    out = capsys.readouterr().out
    for name in PRESETS:
        assert re.search(rf"^  {re.escape(name)}\s", out, re.M)
        problem = problems.problem_of(config.checked({"problem.preset": name}))
        assert problem.symmetry.dim_EG >= 1


def test_config_hash_of_existing_configs_is_unchanged():
    """New keys enter no existing config's identity: the hash covers non-default keys."""
    assert config.config_hash(config.checked({})) == hashlib.sha256(b"{}").hexdigest()
    assert config.config_hash(config.checked({"run.T": 10})) == hashlib.sha256(
        json.dumps({"run.T": 10.0}).encode()).hexdigest()


def test_sweep_over_a_problem_key(tmp_path):
    base = config.load_config(examples.EXAMPLES / "npy-data.toml",
                              ["run.backend=numpy", *SMALL["sgd"]])
    key, values = sweeps.parse_grid("problem.unit.activation=tanh,erf")  # as --grid reads it
    result = sweeps.run_sweep(base, {key: values}, tmp_path / "sweep", progress=False)
    assert result.counts() == {"complete": 2}
    finals = {}
    for entry in result.runs:
        activation = result.config(entry)["problem.unit.activation"]
        stored = json.loads(h5py.File(tmp_path / "sweep" / entry["path"], "r")[
            "parameters/config"][()])
        assert stored["problem.unit.activation"] == activation
        finals[activation] = result.load(entry).particles[-1]
    assert not np.array_equal(finals["tanh"], finals["erf"])


def test_study_on_a_config_problem():
    checked = config.load_config(examples.EXAMPLES / "sign-flips-tanh.toml")
    base, grid, _ = definition("paper", "smoke", checked)
    assert "problem.teacher" not in grid and base["problem.unit.activation"] == "tanh"
    planned = sweeps.plan(base, grid)
    assert {sweeps.Sweep(Path("."), planned.description, []).config(e)["problem.preset"]
            for e in planned.runs} == {"custom"}
    _, paper_grid, _ = definition("paper", "smoke", config.checked({}))
    assert paper_grid["problem.teacher"] == ["arbitrary", "WI", "SI"]
    with pytest.raises(ValueError, match="particles-vs-pde"):
        definition("particles-vs-pde", "smoke", checked)


def test_cli_refuses_a_study_and_a_run_file_where_a_config_belongs(tmp_path, capsys):
    cfg = _example(tmp_path, "so2-plane")
    assert main(["study", "particles-vs-pde", "--size", "smoke", "--config", str(cfg),
                 "--out", str(tmp_path / "study")]) == 2
    assert "'particles-vs-pde' runs on the paper's problem only" in capsys.readouterr().err
    assert main(["study", "mirror", "--size", "smoke", "--config", str(cfg),
                 "--out", str(tmp_path / "mirror")]) == 2
    assert "drop --config" in capsys.readouterr().err and not (tmp_path / "mirror").exists()
    run = tmp_path / "run.h5"
    run_to_file(config.checked({"init.N": 4, "run.T": 0.5, "run.backend": "numpy",
                                "run.frames": 1}), run, progress=False)
    assert main(["run", str(run), "--out", str(tmp_path / "other.h5")]) == 2
    assert f"wgflow config --from {run}" in capsys.readouterr().err


def test_readme_own_problem_configs_run(tmp_path):
    section = README.read_text(encoding="utf-8").split("## Your own problem", 1)[1]
    section = section.split("\n## ", 1)[0]
    blocks = re.findall(r"```toml\n(.*?)```", section, re.S)
    assert len(blocks) >= 2
    for k, text in enumerate(blocks):
        path = tmp_path / f"readme{k}.toml"
        path.write_text(text, encoding="utf-8")
        dynamics = config.load_config(path)["run.dynamics"]
        assert main(["run", str(path), "--out", str(tmp_path / f"readme{k}.h5"), "--quiet",
                     *cli_sets(["run.backend=numpy", *SMALL[dynamics]])]) == 0


def _custom(**keys) -> dict:
    return config.checked({"problem.preset": "custom", **keys})


def test_files_of_every_kind_give_the_arrays_the_api_gets(tmp_path):
    """Teacher particles from .npy and from a run file (its last frame), initial particles
    from .npz, generators from .npy, a training set from HDF5 with column selection and
    teacher labels: the problem holds exactly the arrays read by hand."""
    rng = np.random.default_rng(5)
    teacher = rng.standard_normal((3, 4))
    np.save(tmp_path / "teacher.npy", teacher)
    start = rng.standard_normal((7, 4))
    np.savez(tmp_path / "init.npz", start=start, other=np.zeros(2))
    np.save(tmp_path / "gens.npy", groups.cyclic(3).generators)
    table = rng.standard_normal((20, 5))
    with h5py.File(tmp_path / "train.h5", "w") as h5:
        h5["samples/table"] = table
    by_npy = _custom(**{"problem.data.teacher.particles": str(tmp_path / "teacher.npy"),
                        "init.law": "file", "init.file": str(tmp_path / "init.npz"),
                        "init.dataset": "start"})
    problem = problems.problem_of(by_npy)
    np.testing.assert_array_equal(problem.teacher.particles, teacher)
    np.testing.assert_array_equal(problems.init_particles(by_npy, problem), start)
    run = tmp_path / "run.h5"
    run_to_file(config.checked({"init.N": 4, "run.T": 0.5, "run.backend": "numpy",
                                "run.frames": 1}), run, progress=False)
    by_run = _custom(**{"problem.unit.activation": "tanh",
                        "problem.data.teacher.particles": str(run)})
    np.testing.assert_array_equal(problems.problem_of(by_run).teacher.particles,
                                  load(run).particles[-1])
    gens = _custom(**{"problem.unit.kind": "perceptron", "problem.unit.d": 3,
                      "problem.unit.c": 1, "problem.unit.activation": "tanh",
                      "problem.group.kind": "generators",
                      "problem.group.generators": str(tmp_path / "gens.npy"),
                      "problem.data.kind": "file",
                      "problem.data.file": str(tmp_path / "train.h5"),
                      "problem.data.dataset": "samples/table",
                      "problem.data.x_columns": [4, 0, 2],
                      "problem.data.labels": "teacher"})
    problem = problems.problem_of(gens)
    np.testing.assert_array_equal(problem.symmetry.group.matrices, groups.cyclic(3).matrices)
    x = table[:, [4, 0, 2]]
    np.testing.assert_array_equal(problem.data.x, x)
    drawn = Teacher(problem.unit, laws.gaussian(5, problem.unit.dim, std=0.5, seed=0))
    np.testing.assert_array_equal(problem.data.y, drawn(x))
    assert [p for p, _ in gens["files.sha256"]] == [str(tmp_path / "gens.npy"),
                                                    str(tmp_path / "train.h5")]


def test_group_presets_representations_and_expectations():
    product = _custom(**{"problem.unit.kind": "perceptron", "problem.unit.d": 5,
                         "problem.unit.c": 1, "problem.unit.activation": "tanh",
                         "problem.group.kind": "product",
                         "problem.group.factors": [{"kind": "cyclic", "n": 3}, {"kind": "swap"}]})
    group = problems.problem_of(product).symmetry.group
    assert group.order == 6
    np.testing.assert_array_equal(
        group.generators, groups.direct_product(groups.cyclic(3), groups.swap()).generators)
    flips = _custom(**{"problem.unit.kind": "mlp", "problem.unit.d": 2, "problem.unit.c": 2,
                       "problem.unit.hidden": [2], "problem.unit.activation": "erf",
                       "problem.group.kind": "sign-flips", "problem.group.hidden": ["defining"],
                       "problem.group.output": [[[1.0, 0.0], [0.0, 1.0]],
                                                [[1.0, 0.0], [0.0, 1.0]]]})
    symmetry = problems.problem_of(flips).symmetry
    np.testing.assert_array_equal(symmetry.spaces[1].images, groups.sign_flips(2).generators)
    np.testing.assert_array_equal(symmetry.output.images, np.stack([np.eye(2)] * 2))
    base = {"problem.preset": "so2-plane", "run.batch_size": 8, "run.sample_size": 30}
    kinds = {"population": FixedSample, "online": OnlineSample, "minibatch": Minibatch,
             "fixed-sample": FixedSample}
    for kind, cls in kinds.items():
        checked = config.checked({**base, "run.expectation": kind})
        problem = problems.problem_of(checked)
        made = problems.expectation(checked, problem)
        assert isinstance(made, cls)
    sample = problems.expectation(config.checked({**base, "run.expectation": "fixed-sample"}),
                                  problem)
    assert len(sample.x) == 30
    assert problems.expectation(config.checked(base), problem) is None
    _, _, options = config.build(config.checked({**base, "run.observables": ["risk"]}))
    assert options["observables"] == ("risk",)


def test_a_paper_study_on_a_config_runs_and_reports(tmp_path):
    """No teacher grid: the report labels the config's own teacher ``config``."""
    cfg, out = _example(tmp_path, "sign-flips-tanh"), tmp_path / "study"
    assert main(["study", "paper", "--size", "smoke", "--config", str(cfg), "--out", str(out),
                 "--quiet", "--workers", "1"]) == 0
    assert main(["report", str(out)]) == 0
    names = {p.name for p in (out / "report").iterdir()}
    assert {"summary.md", "rmd_to_EG_vs_N.png", "particles_config.png"} <= names
    summary = (out / "report" / "summary.md").read_text(encoding="utf-8")
    assert "| config | EA | 20 | 2 | 0 | 0 |" in summary
