"""Runs users keep: the H5MD file, load/save, config checks, resume after a kill, info, plots."""

import json
import re
import sys

import h5py
import numpy as np
import pytest
from conftest import cli_sets, interrupted_run, kill_after_frames

from wgflow import config, load, paper, save, simulate
from wgflow.cli import main
from wgflow.files.checkpoints import checkpoint_path, read_checkpoint, write_checkpoint
from wgflow.files.h5md import TrajectoryFile, read_parameters

SMALL = ["run.T=2", "init.N=12", "run.frames=4", "run.scheme=FA"]


@pytest.fixture
def small_run(tmp_path):
    path = tmp_path / "run.h5"
    assert main(["run", "--out", str(path), "--quiet", *cli_sets(SMALL)]) == 0
    return path


def test_file_layout_path_by_path(small_run):
    with h5py.File(small_run, "r") as h5:
        assert list(h5["h5md"].attrs["version"]) == [1, 1]
        assert h5["h5md/creator"].attrs["name"] == "wgflow"
        assert "version" in h5["h5md/creator"].attrs and "name" in h5["h5md/author"].attrs
        assert "version" in h5["h5md/modules/wgflow"].attrs
        pos = h5["particles/student/position"]
        assert pos["value"].shape == (5, 12, 4)
        assert pos["step"].shape == pos["time"].shape == (5,)
        assert list(pos["step"][()]) == [0, 6, 12, 18, 24]
        assert pos["value"].chunks == (4, 12, 4) and pos["value"].maxshape[0] is None
        assert h5["particles/student/box"].attrs["dimension"] == 4
        assert h5["particles/teacher/position/value"].shape == (5, 4)
        for name in ("risk", "distance_to_EG", "distance_to_WI"):
            g = h5[f"observables/{name}"]
            assert g["step"].shape == g["time"].shape == g["value"].shape == (5,)
        par = h5["parameters"]
        for key in ("config", "run_config", "seeds", "versions", "generators", "actions",
                    "EG_basis"):
            assert key in par, key
        assert par["EG_basis"].shape == (4, 2)
        assert par.attrs["status"] == "complete"


def test_save_load_round_trip(tmp_path):
    problem = paper.problem("WI")
    res = simulate(problem, paper.student_init(problem, 7), dynamics="sgd", T=1.0,
                   step_scale=50.0, noise="EG", seed=3)
    save(res, tmp_path / "r.h5")
    back = load(tmp_path / "r.h5")
    np.testing.assert_array_equal(back.particles, res.particles)
    np.testing.assert_array_equal(back.times, res.times)
    np.testing.assert_array_equal(back.steps, res.steps)
    np.testing.assert_array_equal(back.teacher, res.teacher)
    assert back.observables.keys() == res.observables.keys()
    for k in res.observables:
        np.testing.assert_array_equal(back.observables[k], res.observables[k])
    assert back.config == res.config and back.seeds == res.seeds and back.status == res.status
    for frames in (slice(-1, None), slice(2, 5), slice(None, None, 3)):  # parts of the file
        part = load(tmp_path / "r.h5", frames=frames)
        np.testing.assert_array_equal(part.particles, res.particles[frames])
        np.testing.assert_array_equal(part.steps, res.steps[frames])
        for k in res.observables:
            np.testing.assert_array_equal(part.observables[k], res.observables[k][frames])


def test_config_default_is_valid_toml_of_the_defaults(capsys):
    assert main(["config", "--default"]) == 0
    text = capsys.readouterr().out
    assert all("#" in line for line in text.splitlines() if "=" in line)  # every key commented
    path_values = config.tomllib.loads(text)
    assert config.checked(config._flatten(path_values)) == config.checked({})


@pytest.mark.parametrize(("overrides", "message"), [
    (["run.bogus=1"], "unknown config key 'run.bogus'"),
    (["run.scheme=XA"], "'run.scheme' must be one of"),
    (["init.N=0"], "'init.N' must be an integer ≥ 1"),
    (["run.T=-1"], "'run.T' must be a finite number > 0"),
    (["run.seed=-1"], "'run.seed' must be an integer ≥ 0"),
    (["run.T=true"], "'run.T' must be a finite number > 0"),
    (["run.T=inf"], "'run.T' must be a finite number > 0"),
    (["run.dt=nan"], "'run.dt' must be a finite number ≥ 0"),
    (["init.N=2.0"], "'init.N' must be an integer ≥ 1"),
    (["run.T"], "--set expects KEY=VALUE"),
])
def test_bad_config_is_rejected_naming_the_key(tmp_path, capsys, overrides, message):
    args = ["run", "--out", str(tmp_path / "x.h5"), "--quiet"]
    assert main(args + cli_sets(overrides)) == 2
    assert message in capsys.readouterr().err


def test_bad_toml_file_is_rejected(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run]\nT = = 3\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "x.h5")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_divergence_keeps_good_frames_and_says_so(tmp_path, capsys):
    path = tmp_path / "div.h5"
    code = main(["run", "--out", str(path), "--quiet", "--set", "init.N=6", "--set",
                 "run.step_scale=1e9", "--set", "run.T=20", "--set", "run.scheme=vanilla"])
    assert code == 1
    err = capsys.readouterr().err  # the CLI shows a warning as one line
    assert re.fullmatch(r"wgflow run: warning: the \w+ became NaN/inf at step .*\n", err)
    res = load(path)
    assert res.status == "diverged" and not checkpoint_path(path).exists()  # nothing to resume
    assert np.all(np.isfinite(res.particles)) and len(res.times) >= 1
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "status: diverged" in out and "NaN/inf at step" in out and "reduce dt" in out


def test_progress_bar_only_on_a_terminal(tmp_path, monkeypatch, capsys):
    args = ["run", "--out", str(tmp_path / "p.h5"), *cli_sets(SMALL)]
    assert main(args) == 0
    assert "frame" not in capsys.readouterr().err  # stderr is not a terminal here
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main([*args, "--overwrite"]) == 0
    assert "4/4" in capsys.readouterr().err
    assert main([*args, "--quiet", "--overwrite"]) == 0
    assert capsys.readouterr().err == ""


def test_info_and_plot(small_run, tmp_path, capsys):
    assert main(["info", str(small_run)]) == 0
    out = capsys.readouterr().out
    assert "status: complete" in out and "frames: 5, step 24" in out and "risk:" in out
    assert main(["plot", str(small_run), "--out", str(tmp_path / "figs")]) == 0
    names = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert names == ["distance_to_EG.png", "particles_3d.png", "particles_edge_on.png",
                     "risk.png"]
    for p in (tmp_path / "figs").iterdir():
        assert p.stat().st_size > 5000 and p.read_bytes()[:4] == b"\x89PNG"


def test_plot_draws_what_was_recorded(tmp_path):
    problem = paper.problem("arbitrary")
    res = simulate(problem, paper.student_init(problem, 5), dynamics="sgd", T=0.4,
                   observables=("distance_to_EG",))
    save(res, tmp_path / "saved.h5")
    assert main(["plot", str(tmp_path / "saved.h5"), "--out", str(tmp_path / "figs")]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["distance_to_EG.png"]


KILL_RUN = ["--set", "init.N=200", "--set", "run.T=20", "--set", "run.frames=40",
            "--set", "output.checkpoint_every=2", "--set", "run.backend=numpy",
            "--set", "run.scheme=DA"]


def test_killed_run_resumes_bitwise(tmp_path):
    killed, whole = tmp_path / "killed.h5", tmp_path / "whole.h5"
    kill_after_frames(killed, KILL_RUN, frames=7)
    with h5py.File(killed, "r") as h5:  # plain h5py opens the killed file
        pos = h5["particles/student/position"]
        n = pos["step"].shape[0]
        assert 7 <= n < 41 and pos["time"].shape[0] == pos["value"].shape[0] == n
        for g in h5["observables"].values():
            assert g["step"].shape[0] == g["time"].shape[0] == g["value"].shape[0] == n
        assert h5["parameters"].attrs["status"] == "running"
    assert main(["resume", str(killed), "--quiet"]) == 0
    assert main(["run", "--out", str(whole), "--quiet", *KILL_RUN]) == 0
    a, b = load(killed), load(whole)
    np.testing.assert_array_equal(a.particles, b.particles)
    np.testing.assert_array_equal(a.steps, b.steps)
    np.testing.assert_array_equal(a.times, b.times)
    for k in b.observables:
        np.testing.assert_array_equal(a.observables[k], b.observables[k])
    assert a.status == "complete" and len(a.times) == 41


@pytest.mark.parametrize("backend", ["numba", "cuda"])
def test_interrupted_run_resumes_bitwise_on_the_compiled_backends(tmp_path, monkeypatch,
                                                                    backend, capsys):
    """In-process interrupt after 7 frames (the subprocess kill above uses the numpy backend:
    the compiled ones finish too fast to be killed reliably); cuda runs on the simulator."""
    options = ["--quiet", "--set", "init.N=8", "--set", "run.T=2", "--set", "run.frames=8",
               "--set", "output.checkpoint_every=3", "--set", f"run.backend={backend}",
               "--set", "run.scheme=DA", "--set", "problem.beta=1e-3"]
    killed, whole = tmp_path / "killed.h5", tmp_path / "whole.h5"
    assert main(["run", "--out", str(whole), *options]) == 0
    appended, append = [], TrajectoryFile.append

    def interrupted(self, frame):
        if len(appended) == 7:
            raise KeyboardInterrupt
        appended.append(frame.step)
        append(self, frame)

    monkeypatch.setattr(TrajectoryFile, "append", interrupted)
    assert main(["run", "--out", str(killed), *options]) == 130
    monkeypatch.undo()
    assert read_parameters(killed)["status"] == "running" and read_checkpoint(killed)[1] == 7
    with h5py.File(killed, "r+") as h5:  # as if it had started under another numba
        stored = json.loads(h5["parameters/versions"][()])
        del h5["parameters/versions"]
        h5["parameters"].create_dataset("versions", data=json.dumps({**stored, "numba": "0.1"}))
    capsys.readouterr()
    assert main(["resume", str(killed), "--quiet"]) == 0
    assert re.search(r"wgflow resume: warning: .*numba 0\.1 → .*last bits",
                     capsys.readouterr().err)
    a, b = load(killed), load(whole)
    assert len(a.times) == len(b.times) == 9 and a.status == "complete"
    np.testing.assert_array_equal(a.particles, b.particles)
    for k in b.observables:
        np.testing.assert_array_equal(a.observables[k], b.observables[k])


def test_stale_checkpoint_and_foreign_files_are_refused(tmp_path, capsys):
    # a new run into the same path drops the old run's checkpoint before writing anything
    path = interrupted_run(tmp_path / "run.h5", SMALL)
    old = read_checkpoint(path)[2]
    interrupted_run(path, ["run.T=0.25", "init.N=12"], overwrite=True)
    cursor, frames, identity = read_checkpoint(path)
    assert identity != old and frames == len(load(path).times)
    # a checkpoint ahead of the file's frames is refused
    write_checkpoint(path, cursor, 99, identity)
    assert main(["resume", str(path)]) == 2
    assert f"taken after 99 frames and the file holds {frames}" in capsys.readouterr().err
    foreign = tmp_path / "foreign.h5"
    h5py.File(foreign, "w").close()
    assert main(["info", str(foreign)]) == 2
    assert "not a wgflow trajectory file" in capsys.readouterr().err
