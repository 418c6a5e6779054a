"""Grid PDE runs users keep: the density file path by path, load/save round trips, an
interrupted run resumed bit for bit, the config's PDE keys and refusals, info and plot."""

import csv
import json
import os
import re
import signal

import h5py
import numpy as np
import pytest
from conftest import TOL, interrupted_run, kill_after_frames

from solvers.pde.integrators import GridState
from wgflow import config, load, pde, save
from wgflow.cli import main
from wgflow.dynamics import FlowCursor, Interrupted
from wgflow.files import h5md
from wgflow.files.checkpoints import read_checkpoint, write_checkpoint
from wgflow.files.h5md import read_parameters
from wgflow.files.locks import exclusive
from wgflow.problem import QuadratureWarning
from wgflow.runner import RunInterrupted, lock_path, run_to_file

#: a PDE run of a second or so: the paper's problem on E^G, 12 × 12 cells, 8² quadrature points
PDE = {"run.solver": "pde", "run.dynamics": "mf", "run.T": 1.0, "run.frames": 4,
       "problem.quadrature_points": 8, "pde.cells": 12, "output.checkpoint_every": 2}
#: the particle MF run of the same problem with frames at the same times
PARTICLES = {"run.dynamics": "mf", "run.T": 1.0, "run.frames": 4, "run.dt": 0.05,
             "problem.quadrature_points": 8, "init.N": 40, "run.backend": "numpy"}


def _args(values: dict) -> list:
    return [a for k, v in values.items() for a in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module")
def pde_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("pde") / "pde.h5"
    assert main(["run", "--out", str(path), "--quiet", *_args(PDE)]) == 0
    return path


def _assert_same(a: pde.PDEResult, b: pde.PDEResult):
    for name in ("times", "steps", "density", "cell_volume"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert len(a.centers) == len(b.centers)
    for ca, cb in zip(a.centers, b.centers, strict=True):
        np.testing.assert_array_equal(ca, cb)
    assert (a.basis is None) == (b.basis is None)
    if a.basis is not None:
        np.testing.assert_array_equal(a.basis, b.basis)
    assert a.observables.keys() == b.observables.keys()
    for name in a.observables:
        np.testing.assert_array_equal(a.observables[name], b.observables[name], err_msg=name)
    assert json.loads(json.dumps(a.config)) == json.loads(json.dumps(b.config))
    assert a.status == b.status


def test_frames_stopped_and_continued_from_their_state_equal_solve():
    """pde.prepare/frames/cursor: a stop between chunks raises Interrupted with the state;
    the frames continued from it, after those before, are solve's bit for bit."""
    options = dict(initial=(0.5, 0.05), beta=0.1, box=(-2, 2), cells=40, T=1.0)
    whole = pde.solve_energy(lambda z: z[:, 0] ** 2, **options)
    run, first = pde.prepare_energy(lambda z: z[:, 0] ** 2, **options)
    recorded, asked = [first], []
    with pytest.raises(Interrupted) as stopped:
        for frame in pde.frames(run, pde.cursor(run, first), stop=lambda: asked.append(0) or
                                len(asked) == 4):  # after 1 + 2 + 4 steps at most
            recorded.append(frame)
    position = stopped.value.position
    assert isinstance(position, GridState) and 0 < position.step < whole.steps[-1]
    recorded += pde.frames(run, position)
    _assert_same(pde.result_of(run, recorded), whole)


def test_file_layout_path_by_path(pde_file):
    with h5py.File(pde_file, "r") as h5:
        assert list(h5["h5md"].attrs["version"]) == [1, 1]
        assert list(h5["h5md/modules/wgflow"].attrs["version"]) == list(h5md.SCHEMA_VERSION)
        assert "particles" not in h5
        density = h5["fields/density"]
        assert density["value"].shape == (5, 12, 12)
        assert density["step"].shape == density["time"].shape == (5,)
        np.testing.assert_array_equal(density["time"][()], [0, 0.25, 0.5, 0.75, 1.0])
        assert density["value"].maxshape == (None, 12, 12) and density["value"].chunks[0] == 4
        grid = density["grid"]
        np.testing.assert_array_equal(grid["box"][()], [[-1.5, 1.5], [-1.5, 1.5]])  # 6 std
        h = 3.0 / 12
        assert grid["cell_volume"][()] == pytest.approx(h * h, rel=TOL["exact"])
        for axis in ("0", "1"):
            np.testing.assert_allclose(grid["centers"][axis][()],
                                       -1.5 + h / 2 + h * np.arange(12), rtol=TOL["exact"])
        assert grid["basis"].shape == (4, 2)
        np.testing.assert_array_equal(grid["basis"][()], h5["parameters/EG_basis"][()])
        values = density["value"][()].reshape(5, -1).sum(1) * grid["cell_volume"][()]
        assert np.abs(values - 1).max() <= TOL["mass"]
        for name, shape in (("mass", (5,)), ("free_energy", (5,)), ("risk", (5,)),
                            ("mean", (5, 2)), ("second_moment", (5, 2, 2))):
            g = h5[f"observables/{name}"]
            assert g["step"].shape == g["time"].shape == (5,) and g["value"].shape == shape
        assert h5["observables/risk"].attrs["method"] == "quadrature"
        assert h5["observables/mass"].attrs["method"] == "grid"
        par = h5["parameters"]
        for key in ("config", "run_config", "seeds", "versions", "generators", "EG_basis"):
            assert key in par, key
        assert json.loads(par["config"][()])["run.solver"] == "pde"
        assert json.loads(par["run_config"][()])["coordinates"] == "EG"
        assert json.loads(par["seeds"][()]) == {}
        assert par.attrs["status"] == "complete"
        assert len(par.attrs["run_id"]) == 32
        assert par.attrs["config_hash"] == config.config_hash(json.loads(par["config"][()]))


def test_load_equals_the_in_memory_result_and_save_round_trips(pde_file, tmp_path):
    problem, law, options = config.build(config.checked(PDE))
    memory = pde.solve(problem, law, **options)
    back = load(pde_file)
    assert isinstance(back, pde.PDEResult)
    _assert_same(back, memory)
    last = load(pde_file, frames=slice(-1, None))
    np.testing.assert_array_equal(last.density, memory.density[-1:])
    save(memory, tmp_path / "saved.h5")
    _assert_same(load(tmp_path / "saved.h5"), memory)
    flat = pde.solve_energy(lambda z: z[:, 0] ** 2, initial=(0.0, 0.1), beta=0.1,
                            box=(-2, 2), cells=20, T=0.1)  # 1-D, no basis, no problem
    save(flat, tmp_path / "flat.h5")
    _assert_same(load(tmp_path / "flat.h5"), flat)


def test_an_interrupted_run_resumes_bitwise(tmp_path):
    """Ctrl-C inside the run (the stop callable raises SIGINT at its second call, so the run
    stops at its third, a few steps in): a checkpoint of the density, resumed to the
    uninterrupted file bit for bit."""
    cfg = config.checked(PDE)
    whole, cut = tmp_path / "whole.h5", tmp_path / "cut.h5"
    assert run_to_file(cfg, whole, progress=False) == "complete"
    calls = []

    def ctrl_c():
        calls.append(None)
        if len(calls) == 2:
            signal.raise_signal(signal.SIGINT)
        return False

    with pytest.raises(RunInterrupted, match=r"continue with `wgflow resume") as stopped:
        run_to_file(cfg, cut, progress=False, stop=ctrl_c)
    assert stopped.value.signal == signal.SIGINT
    params = read_parameters(cut)
    position, frames, identity = read_checkpoint(cut)
    assert params["status"] == "running" and frames == params["frames"] < 5
    assert isinstance(position, GridState) and 0 < position.step < load(whole).steps[-1]
    assert identity["run_id"] == params["run_id"]
    assert main(["resume", str(cut), "--quiet"]) == 0
    _assert_same(load(cut), load(whole))


def test_a_particle_checkpoint_is_refused_for_a_pde_file(pde_file, tmp_path, capsys):
    path = tmp_path / "p.h5"
    path.write_bytes(pde_file.read_bytes())
    with h5py.File(path, "r+") as h5:
        h5["parameters"].attrs["status"] = "running"
    params = read_parameters(pde_file)  # the run's own identity: only the state is foreign
    identity = {key: params[key] for key in ("run_id", "config_hash")}
    write_checkpoint(path, FlowCursor(np.zeros((4, 4)), 0, 0.0, {}, {}), params["frames"],
                     identity)
    assert main(["resume", str(path)]) == 2
    assert "it holds particles, the file is a density run" in capsys.readouterr().err


def test_what_is_never_lost_holds_for_pde_runs(pde_file, tmp_path, monkeypatch, capsys):
    before = pde_file.read_bytes()
    assert main(["run", "--out", str(pde_file), "--quiet", *_args(PDE)]) == 2
    assert "already holds a wgflow run (status complete); pass --overwrite" in \
        capsys.readouterr().err
    with exclusive(lock_path(pde_file), "a run file"):
        assert main(["run", "--out", str(pde_file), "--overwrite", *_args(PDE)]) == 2
    assert f"in use by another wgflow process (pid {os.getpid()}" in capsys.readouterr().err
    assert pde_file.read_bytes() == before
    monkeypatch.setattr(h5md, "SPARE_BYTES", 1 << 62)  # no room for the first frame
    assert main(["run", "--out", str(tmp_path / "r.h5"), *_args(PDE)]) == 2
    assert "[Errno 28] only" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_full_disk_stops_a_pde_run_cleanly_and_it_resumes(pde_file, tmp_path, monkeypatch,
                                                             capsys):
    real, calls = os.statvfs, []

    def filling(path):
        calls.append(path)
        stats = real(path)
        return stats if len(calls) <= 3 else os.statvfs_result((*stats[:4], 0, *stats[5:]))

    full = tmp_path / "full.h5"
    monkeypatch.setattr(h5md.os, "statvfs", filling)
    assert main(["run", "--out", str(full), "--quiet", *_args(PDE)]) == 2
    assert re.search(r"writing .*full\.h5 failed .*`wgflow resume", capsys.readouterr().err)
    monkeypatch.undo()
    assert load(full).status == "running" and len(load(full).times) == 2
    assert main(["resume", str(full), "--quiet"]) == 0
    _assert_same(load(full), load(pde_file))


def test_a_diverging_pde_run_keeps_its_good_frames_and_says_so(tmp_path, monkeypatch, capsys):
    observe, calls = pde._observe, []

    def nan_from_the_third_call(run, rho):  # frames at t = 0, 0.25, then NaN at t = 0.5
        calls.append(None)
        obs = observe(run, rho)
        return obs if len(calls) < 3 else {**obs, "free_energy": np.nan}

    monkeypatch.setattr(pde, "_observe", nan_from_the_third_call)
    path = tmp_path / "div.h5"
    assert main(["run", "--out", str(path), "--quiet", *_args(PDE)]) == 1
    assert re.fullmatch(r"wgflow run: warning: the density or the free energy became non-finite"
                        r" by t = 0\.5 .*kept\.\n", capsys.readouterr().err)
    monkeypatch.undo()
    res = load(path)
    assert res.status == "diverged" and len(res.times) == 2
    assert np.all(np.isfinite(res.observables["free_energy"]))
    assert main(["info", str(path)]) == 0
    assert "status: diverged (the density or the free energy" in capsys.readouterr().out


@pytest.mark.slow
def test_the_default_config_runs_as_a_pde(tmp_path, capsys):
    path = tmp_path / "default.h5"
    assert main(["run", "--out", str(path), "--set", "run.solver=pde", "--set",
                 "run.dynamics=mf"]) == 0
    out = capsys.readouterr().out
    assert "solver: pde, 32 × 32 cells on [-1.5, 1.5] × [-1.5, 1.5] (E^G coordinates)" in out
    res = load(path)
    assert res.status == "complete" and len(res.times) == 21 and res.times[-1] == 20.0
    assert np.abs(res.observables["mass"] - 1).max() <= TOL["mass"]
    assert res.observables["risk"][-1] < res.observables["risk"][0]
    assert res.observables["boundary_mass"].max() <= pde.OUTSIDE_TOL  # the box holds the law


@pytest.mark.parametrize(("overrides", "keys"), [
    ({"run.solver": "pde"}, "'run.solver', 'run.dynamics'"),
    ({**PDE, "init.law": "gaussian"}, "'pde.coordinates', 'init.law'"),
    ({**PDE, "pde.coordinates": "parameters"}, "'pde.coordinates', 'init.law'"),
    ({**PDE, "pde.coordinates": "EG", "init.law": "gaussian"}, "'pde.coordinates', 'init.law'"),
    ({**PDE, "run.noise": "full"}, "'run.noise', 'problem.beta'"),
    ({**PDE, "run.backend": "cuda"}, "'run.solver', 'run.backend', 'run.dtype'"),
    ({**PDE, "run.dtype": "float32"}, "'run.solver', 'run.backend', 'run.dtype'"),
    ({**PDE, "pde.cells": 2}, "'pde.cells' must be an integer ≥ 3"),
    ({**PDE, "pde.box": -1}, "'pde.box' must be a finite number ≥ 0"),
    ({**PDE, "pde.flux": "hybrid", "pde.diffusion": "implicit"}, "'pde.flux', 'pde.diffusion'"),
    ({**PDE, "pde.integrator": "rk4"}, "'pde.integrator' must be one of"),
])
def test_bad_combinations_are_refused_naming_the_keys(tmp_path, capsys, overrides, keys):
    assert main(["run", "--out", str(tmp_path / "x.h5"), "--quiet", *_args(overrides)]) == 2
    assert keys in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_the_pde_keys_give_the_initial_law_and_the_box():
    cfg = config.checked({**PDE, "run.noise": "full", "problem.beta": 0.0, "pde.box": 2.0})
    _, law, options = config.build(cfg)
    assert options["box"] == (-2.0, 2.0) and options["coordinates"] == "EG"
    assert law[1] == cfg["init.std"] ** 2 and np.array_equal(law[0], np.zeros(2))


def test_the_pde_scheme_keys_reach_the_solver(tmp_path):
    """pde.flux, pde.integrator and pde.diffusion reach the run (and its file's config)."""
    scheme = {"pde.flux": "hybrid", "pde.integrator": "ssp-rk3"}
    _, _, options = config.build(config.checked({**PDE, **scheme}))
    assert (options["flux"], options["integrator"], options["diffusion"]) == (
        "hybrid", "ssp-rk3", "explicit")
    path = tmp_path / "hybrid.h5"
    assert main(["run", "--out", str(path), "--quiet", *_args({**PDE, **scheme})]) == 0
    res = load(path)
    assert (res.config["flux"], res.config["integrator"]) == ("hybrid", "ssp-rk3")
    assert np.abs(res.observables["mass"] - 1).max() <= TOL["mass"]
    assert res.density.min() >= 0


def test_info_describes_a_pde_file(pde_file, capsys):
    assert main(["info", str(pde_file)]) == 0
    out = capsys.readouterr().out
    assert "solver: pde, 12 × 12 cells on [-1.5, 1.5] × [-1.5, 1.5] (E^G coordinates)" in out
    assert "frames: 5, step" in out and "t = 1 of T = 1" in out
    assert re.search(r"^mass: 1 \(grid\)$", out, re.M)
    assert re.search(r"^mean: \[\S+, \S+\] \(grid\)$", out, re.M)
    assert re.search(r"^risk: \S+ \(quadrature\)$", out, re.M)


def test_plot_draws_the_density_with_the_particles_of_a_matching_run(pde_file, tmp_path,
                                                                    capsys):
    particles = tmp_path / "particles.h5"
    assert main(["run", "--out", str(particles), "--quiet", *_args(PARTICLES)]) == 0
    figs = tmp_path / "figs"
    assert main(["plot", str(pde_file), "--particles", str(particles), "--out", str(figs)]) == 0
    assert sorted(p.name for p in figs.iterdir()) == ["density.png", "free_energy.png",
                                                      "risk.png"]
    for p in figs.iterdir():
        assert p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG"
    assert main(["plot", str(particles), "--particles", str(pde_file)]) == 2
    assert "is a particle run; plot it without --particles" in capsys.readouterr().err
    other = tmp_path / "other.h5"
    assert main(["run", "--out", str(other), "--quiet",
                 *_args({**PARTICLES, "run.T": 0.3, "run.frames": 3, "run.dt": 0.1})]) == 0
    assert main(["plot", str(pde_file), "--particles", str(other), "--out", str(figs)]) == 0
    assert main(["plot", str(pde_file), "--particles",
                 str(_no_common_time(tmp_path))]) == 2
    assert "has no frame at a time of the PDE run's frames" in capsys.readouterr().err


def _no_common_time(tmp_path):
    path = tmp_path / "shifted.h5"
    assert main(["run", "--out", str(path), "--quiet",
                 *_args({**PARTICLES, "run.T": 0.3, "run.frames": 1, "run.dt": 0.1})]) == 0
    with h5py.File(path, "r+") as h5:  # move frame 0 off t = 0: no time in common
        h5["particles/student/position/time"][0] = 0.01
    return path


@pytest.mark.slow
def test_the_smoke_study_and_its_report(tmp_path):
    """``particles-vs-pde`` at smoke size: every run complete, the report's W₂ equal to POT's
    on the files, falling with N."""
    from wgflow.sweep.report import write_report
    from wgflow.sweep.studies import run_study

    sweep = run_study("particles-vs-pde", "smoke", tmp_path, progress=False)
    assert sweep.counts() == {"complete": 10}
    written = {p.name for p in write_report(tmp_path)}
    assert written == {"particles_vs_pde.png", "summary.csv", "summary.md"}
    with open(tmp_path / "report" / "summary.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["init.N"]) for r in rows] == [16, 32, 64, 128]
    w2 = [float(r["w2_to_pde_mean"]) for r in rows]
    assert w2[-1] < w2[0] and all(r["method"] == "exact" for r in rows)
    runs = {(e["params"].get("init.N"), e["replicate"]): sweep.load(e) for e in sweep.runs}
    by_pot = [_pot_w2(runs[16, r].particles[-1], runs[None, r]) for r in (0, 1)]
    assert abs(w2[0] - np.mean(by_pot)) <= TOL["sqrt_exact"] * w2[0]
    assert "study particles-vs-pde, size smoke" in (tmp_path / "report" / "summary.md").read_text(
        encoding="utf-8")


def _pot_w2(theta, density) -> float:
    """W₂ between particles θ (N, D), projected onto E^G, and the final density (cells as
    atoms at their centres, weighted by their masses), by POT directly."""
    import ot

    z = theta @ density.basis
    mass = density.final.ravel() * density.cell_volume
    cost = ((z[:, None, :] - density.points()[None]) ** 2).sum(-1)
    return float(np.sqrt(ot.emd2(np.full(len(z), 1 / len(z)), mass / mass.sum(), cost)))


def test_run_identity_ignores_defaults_and_keys_the_solver_does_not_read(tmp_path):
    """The config hash covers the keys that differ from their defaults and that the solver
    reads: a particle run does not depend on the [pde] table, and a file whose stored config
    lacks keys added to the schema later (here run.solver and [pde]) still resumes."""
    assert config.config_hash(config.checked({})) == config.config_hash(
        config.checked({"pde.cells": 64, "pde.box": 2.0}))
    assert config.config_hash(config.checked(PDE)) != config.config_hash(
        config.checked({**PDE, "pde.cells": 13}))
    assert config.config_hash(config.checked({})) != config.config_hash(
        config.checked({"run.T": 10.0}))
    with pytest.warns(QuadratureWarning):  # 8 points per dimension, as the PDE run's
        path = interrupted_run(tmp_path / "old.h5", [f"{k}={v}" for k, v in PARTICLES.items()])
    with h5py.File(path, "r+") as h5:  # as a wgflow without those keys wrote it
        stored = json.loads(h5["parameters/config"][()])
        old = {k: v for k, v in stored.items() if k != "run.solver" and not k.startswith("pde.")}
        assert len(old) == len(stored) - 1 - sum(k.startswith("pde.") for k in config.DEFAULTS)
        del h5["parameters/config"]
        h5["parameters"].create_dataset("config", data=json.dumps(old),
                                        dtype=h5py.string_dtype())
    assert main(["resume", str(path), "--quiet"]) == 0
    assert read_parameters(path)["status"] == "complete"


def test_a_killed_pde_run_resumes_bitwise(tmp_path):
    """``kill -9`` mid-run: the file holds whole frames, ``resume`` finishes it, and the result
    equals the uninterrupted run bit for bit."""
    args = _args({**PDE, "run.T": 20.0, "run.frames": 40, "pde.cells": 24,
                  "run.backend": "numpy"})
    killed, whole = tmp_path / "killed.h5", tmp_path / "whole.h5"
    kill_after_frames(killed, args, frames=5)
    with h5py.File(killed, "r") as h5:  # plain h5py opens the killed file
        assert h5["parameters"].attrs["status"] == "running"
    assert 5 <= read_parameters(killed)["frames"] < 41
    assert main(["resume", str(killed), "--quiet"]) == 0
    assert main(["run", "--out", str(whole), "--quiet", *args]) == 0
    _assert_same(load(killed), load(whole))
