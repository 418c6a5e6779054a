"""A user's data is never lost, and wrong input never runs silently: each case a former defect."""

import gc
import hashlib
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_sets, interrupted_run

from wgflow import (
    Perceptron,
    Problem,
    config,
    dynamics,
    load,
    paper,
    resources,
    save,
    simulate,
)
from wgflow.cli import main
from wgflow.files import h5md
from wgflow.files.checkpoints import checkpoint_path, read_checkpoint
from wgflow.files.locks import exclusive
from wgflow.runner import RunInterrupted, lock_path, resume_file, run_to_file

SETS = ["init.N=12", "run.T=2", "run.frames=4", "run.backend=numpy"]
SMALL = ["--quiet", *cli_sets(SETS)]


def _digest(*paths) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in paths)).hexdigest()


@pytest.fixture
def trajectory(tmp_path):
    path = tmp_path / "run.h5"
    assert main(["run", "--out", str(path), *SMALL]) == 0
    return path


def _stop_running(path):
    """Mark a finished file as interrupted (status ``running``), as a killed run leaves it."""
    import h5py
    with h5py.File(path, "r+") as h5:
        h5["parameters"].attrs["status"] = "running"


# --- data loss ----------------------------------------------------------------------------

def test_a_second_run_on_a_file_in_use_is_refused_before_touching_it(tmp_path, capsys):
    trajectory = interrupted_run(tmp_path / "run.h5", SETS)  # with a checkpoint
    before = _digest(trajectory, checkpoint_path(trajectory))
    with exclusive(lock_path(trajectory), "a run file"):  # another run holds the file
        assert main(["run", "--out", str(trajectory), "--overwrite", *SMALL]) == 2
        assert main(["resume", str(trajectory)]) == 2
    err = capsys.readouterr().err
    assert err.count(f"in use by another wgflow process (pid {os.getpid()}") == 2
    assert _digest(trajectory, checkpoint_path(trajectory)) == before
    assert not lock_path(trajectory).exists()  # released and removed


def test_a_finished_run_keeps_no_checkpoint_and_resume_leaves_it_alone(tmp_path, trajectory,
                                                                       capsys):
    """A checkpoint serves ``resume`` only: a complete run, and an interrupted one resumed to
    its end, remove theirs; ``resume`` of a finished file reports its status, leaves the file
    as it is and removes a checkpoint an earlier build left beside it."""
    assert not checkpoint_path(trajectory).exists()
    cut = interrupted_run(tmp_path / "cut.h5", SETS)
    shutil.copy(checkpoint_path(cut), checkpoint_path(trajectory))  # as earlier builds kept
    before = _digest(trajectory)
    assert main(["resume", str(trajectory), "--quiet"]) == 0
    assert _digest(trajectory) == before and not checkpoint_path(trajectory).exists()
    assert main(["resume", str(cut), "--quiet"]) == 0
    assert load(cut).status == "complete" and not checkpoint_path(cut).exists()
    assert not list(tmp_path.glob("*.ckpt.npz*"))
    np.testing.assert_array_equal(load(cut).particles, load(trajectory).particles)


def test_a_finished_run_whose_file_fails_to_close_keeps_its_checkpoint(tmp_path, monkeypatch):
    """The checkpoint goes only once the finished file is closed: a close that fails (a full
    disk at the last flush) leaves it, so the run can still be resumed if its status did not
    reach the disk."""
    real_close = h5md.TrajectoryFile.close

    def failing_close(self):
        real_close(self)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(h5md.TrajectoryFile, "close", failing_close)
    path = tmp_path / "run.h5"
    assert main(["run", "--out", str(path), *SMALL]) == 0
    assert checkpoint_path(path).exists()


def test_a_checkpoint_that_cannot_be_removed_does_not_fail_a_finished_run(tmp_path,
                                                                          monkeypatch):
    """Removing a finished run's checkpoint is tidying: where it fails (a directory made
    read-only at the end), the run still ends complete, and so does its ``resume``."""
    real_unlink = Path.unlink

    def refusing_unlink(self, missing_ok=False):
        if self.name.endswith(".ckpt.npz") and self.exists():
            raise PermissionError(13, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refusing_unlink)
    path = tmp_path / "run.h5"
    assert main(["run", "--out", str(path), *SMALL]) == 0
    assert checkpoint_path(path).exists() and load(path).status == "complete"
    assert main(["resume", str(path), "--quiet"]) == 0


def test_a_symlink_to_a_file_in_use_takes_the_same_lock(tmp_path, capsys):
    """``--out LINK`` where LINK points to a file another run writes: the lock is the target's,
    so the second run is refused instead of truncating the first one's file."""
    trajectory = interrupted_run(tmp_path / "run.h5", SETS)
    link = trajectory.with_name("link.h5")
    link.symlink_to(trajectory.name)
    before = _digest(trajectory, checkpoint_path(trajectory))
    with exclusive(lock_path(trajectory), "a run file"):
        assert main(["run", "--out", str(link), "--overwrite", *SMALL]) == 2
        assert main(["resume", str(link)]) == 2
    err = capsys.readouterr().err
    assert err.count(f"in use by another wgflow process (pid {os.getpid()}") == 2, err
    assert _digest(trajectory, checkpoint_path(trajectory)) == before


def test_a_sweep_never_removes_a_run_file_that_another_run_holds(tmp_path):
    """A sweep replaces its own unreadable run file, but not while a run writes it (a file
    being created, or between two flushes, is not yet readable): it is refused instead."""
    from wgflow import config, sweep
    path = tmp_path / "runs" / "0123456789ab.h5"
    path.parent.mkdir()
    path.write_bytes(b"")  # what another run is creating
    cfg = config.checked({"init.N": 4, "run.T": 1.0, "run.backend": "numpy"})
    with exclusive(lock_path(path), "a run file"), \
            pytest.raises(ValueError, match="in use by another wgflow process"):
        sweep._resume_or_run(cfg, str(path), None)
    assert path.exists() and path.read_bytes() == b""


@pytest.mark.parametrize("kind", ["text", "config", "directory", "devnull", "symlink"])
def test_out_never_replaces_a_foreign_or_special_file(tmp_path, capsys, kind):
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n")
    config = tmp_path / "my.toml"
    config.write_text("[run]\nT = 2.0\n")
    target = {"text": text, "config": config, "directory": tmp_path,
              "devnull": "/dev/null", "symlink": tmp_path / "link.h5"}[kind]
    if kind == "symlink":
        target.symlink_to(text)
    args = ["run", str(config), "--out", str(target), *SMALL, "--overwrite"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert re.search(r"not a (regular file|wgflow trajectory)", err), err
    assert text.read_text() == "my notes\n" and config.read_text() == "[run]\nT = 2.0\n"
    assert not list(tmp_path.glob("*.ckpt.npz")) and not list(tmp_path.glob("*.lock"))


def test_an_existing_trajectory_is_replaced_only_with_overwrite(trajectory, capsys):
    before = _digest(trajectory)
    assert main(["run", "--out", str(trajectory), *SMALL]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and _digest(trajectory) == before
    assert main(["run", "--out", str(trajectory), *SMALL, "--set", "run.seed=5",
                 "--overwrite"]) == 0
    assert _digest(trajectory) != before and load(trajectory).status == "complete"


def test_save_never_replaces_a_foreign_file_nor_silently_a_trajectory(tmp_path, trajectory):
    result = load(trajectory)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    with pytest.raises(ValueError, match="not a wgflow trajectory"):
        save(result, notes)
    assert notes.read_text() == "my notes\n"
    with pytest.raises(ValueError, match="overwrite"):
        save(result, trajectory)
    save(result, trajectory, overwrite=True)
    np.testing.assert_array_equal(load(trajectory).particles, result.particles)


def test_another_runs_checkpoint_is_refused_before_anything_changes(tmp_path, capsys):
    """Same N: it used to splice the trajectories; another N: it truncated, then crashed."""
    runs = {name: interrupted_run(tmp_path / f"{name}.h5", [*SETS, *extra])
            for name, extra in (("a", []), ("same_n", ["run.seed=9"]),
                                ("other_n", ["init.N=10"]))}
    for other in ("same_n", "other_n"):
        shutil.copy(checkpoint_path(runs[other]), checkpoint_path(runs["a"]))
        before = _digest(runs["a"], checkpoint_path(runs["a"]))
        assert main(["resume", str(runs["a"])]) == 2
        assert "does not belong to it" in capsys.readouterr().err
        assert _digest(runs["a"], checkpoint_path(runs["a"])) == before


@pytest.mark.parametrize("garbage", [b"", b"not a zip file", b"PK\x03\x04broken"])
def test_a_damaged_checkpoint_is_refused_with_its_name(trajectory, capsys, garbage):
    _stop_running(trajectory)
    checkpoint_path(trajectory).write_bytes(garbage)
    before = _digest(trajectory)
    assert main(["resume", str(trajectory)]) == 2
    assert f"checkpoint {checkpoint_path(trajectory)} is unreadable" in capsys.readouterr().err
    assert _digest(trajectory) == before


def test_a_full_disk_stops_cleanly_and_the_run_resumes(tmp_path, monkeypatch, capsys):
    """The disk is 'full' after 3 frames: no crash, no temporary file, every complete frame
    and the last checkpoint kept; with room again, resume gives the uninterrupted file."""
    args = ["--quiet", "--set", "init.N=12", "--set", "run.T=2", "--set", "run.frames=8",
            "--set", "output.checkpoint_every=2", "--set", "run.backend=numpy"]
    full, whole = tmp_path / "full.h5", tmp_path / "whole.h5"
    assert main(["run", "--out", str(whole), *args]) == 0
    real, calls = os.statvfs, []

    def filling(path):
        calls.append(path)
        stats = real(path)
        if len(calls) <= 4:  # before the file is created, then frames 0, 1, 2
            return stats
        return os.statvfs_result((*stats[:4], 0, *stats[5:]))  # f_bavail = 0

    monkeypatch.setattr(h5md.os, "statvfs", filling)
    assert main(["run", "--out", str(full), *args]) == 2
    assert re.fullmatch(r"wgflow run: error: writing .*full\.h5 failed \(\[Errno 28\] only 0 "
                        r"bytes free .*continue with `wgflow resume .*full\.h5`\n",
                        capsys.readouterr().err)
    monkeypatch.undo()
    assert not list(tmp_path.glob("*.tmp"))
    partial = load(full)
    assert partial.status == "running" and len(partial.times) == 3
    assert read_checkpoint(full)[1] == 3
    assert main(["resume", str(full), "--quiet"]) == 0
    a, b = load(full), load(whole)
    np.testing.assert_array_equal(a.particles, b.particles)
    np.testing.assert_array_equal(a.times, b.times)


def test_a_run_without_room_for_its_first_frame_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(h5md, "SPARE_BYTES", 1 << 62)  # no file system has that much room
    path = tmp_path / "r.h5"
    assert main(["run", "--out", str(path), *SMALL]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"wgflow run: error: \[Errno 28\] only \d+ bytes free beside .*r\.h5, "
                        r"a frame and its checkpoint need about \d+\n", err), err
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mount"),
                    reason="mounting a small tmpfs needs root")
def test_a_real_full_disk(tmp_path):
    """A 1.3 MB file system, filled by the run itself: exit 2, readable file, no temporary
    file, no crash (a write failing inside HDF5 used to end in a segmentation fault)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1300k", "tmpfs", str(mnt)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"mount refused here: {mounted.stderr.decode().strip()}")
    try:
        out = subprocess.run([sys.executable, "-m", "wgflow", "run", "--out", str(mnt / "r.h5"),
                              "--quiet", "--set", "init.N=300", "--set", "run.frames=40",
                              "--set", "run.backend=numpy"], capture_output=True, text=True)
        assert out.returncode == 2, out.stderr
        assert "No space left" in out.stderr or "bytes free" in out.stderr
        assert "Traceback" not in out.stderr
        assert 1 <= len(load(mnt / "r.h5").times) < 41
        assert not list(mnt.glob("*.tmp"))
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# --- bad values that used to run, crash late or blow up -----------------------------------

@pytest.mark.parametrize(("override", "message"), [
    ("init.N=1000000000", "needs about .* of memory"),
    ("run.T=1e308", "more than 9.01e\\+15"),
    ("run.dt=1e-300", "more than 9.01e\\+15"),
    ("run.dt=30", "T = 20 is not a whole number of time steps dt = 30"),
    ("run.T=20.005", "T·N must be an integer"),
])
def test_runs_that_cannot_be_done_are_refused_before_they_start(tmp_path, capsys, override,
                                                                message):
    assert main(["run", "--out", str(tmp_path / "x.h5"), "--quiet", "--set", override]) == 2
    assert re.search(message, capsys.readouterr().err)
    assert not list(tmp_path.iterdir())


def test_memory_refusal_and_long_run_warning_are_overridable(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    assert main(["run", "--out", str(tmp_path / "a.h5"), *SMALL]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["run", "--out", str(tmp_path / "a.h5"), *SMALL, "--force"]) == 0
    long = resources.Estimate(memory=1, seconds=3 * 86400.0, steps=10**9, interactions=1e15)
    with pytest.warns(UserWarning, match="about 3 days"):
        resources.check(long)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resources.check(long, force=True)


def test_runs_collect_garbage_less_often_and_restore_the_thresholds(tmp_path):
    """``simulate``, ``run_to_file`` and ``resume_file`` run with the collector's thresholds
    raised to ``RUN_GC_THRESHOLDS`` (a user's higher ones kept), restored afterwards, also when
    the run raises."""
    seen = []

    def scale(_t):  # asked during the run, at its step times
        seen.append(gc.get_threshold())
        return 1.0

    def stop_at_once():  # asked between chunks
        seen.append(gc.get_threshold())
        return True

    def go_on():
        seen.append(gc.get_threshold())
        return False

    before, user = gc.get_threshold(), (900, 5, 1000)
    gc.set_threshold(*user)
    try:
        problem = paper.problem("arbitrary")
        simulate(problem, paper.student_init(problem, 4), dynamics="sgd", T=1.0,
                 step_scale=scale, backend="numpy")
        path = tmp_path / "r.h5"
        with pytest.raises(RunInterrupted):
            run_to_file(config.checked({"init.N": 4, "run.T": 0.5, "run.backend": "numpy"}),
                        path, progress=False, stop=stop_at_once)
        resume_file(path, progress=False, stop=go_on)
        with pytest.raises(ValueError, match="T must be"):
            simulate(problem, paper.student_init(problem, 4), T=-1.0)
        assert gc.get_threshold() == user
    finally:
        gc.set_threshold(*before)
    assert len(seen) >= 3 and set(seen) == {(50_000, 20, 1000)}
    assert resources.RUN_GC_THRESHOLDS == (50_000, 20, 100)


def test_a_long_run_is_announced_with_its_estimate(capsys):
    problem = paper.problem("arbitrary")
    with pytest.warns(UserWarning, match=r"1e\+10 steps .* about .* (days|years)"):
        dynamics.prepare(problem, paper.student_init(problem, 100), dynamics="sgd", T=1e8)


@pytest.mark.parametrize(("T", "dt"), [(0.05, 0.1), (0.25, 0.1), (1e-3, None)])
def test_the_last_step_lands_on_T_or_the_run_is_refused(T, dt):
    problem = paper.problem("arbitrary")
    with pytest.raises(ValueError, match="not a whole number of time steps"):
        simulate(problem, paper.student_init(problem, 4), T=T, dt=dt)


@pytest.mark.parametrize("scale", [np.nan, -1.0, np.inf, "fast", lambda t: np.nan,
                                   lambda t: -2.0, lambda t: "fast", lambda t: None])
def test_bad_step_scales_are_refused_naming_the_parameter(scale):
    problem = paper.problem("arbitrary")
    with pytest.raises(ValueError, match="step_scale"):
        simulate(problem, paper.student_init(problem, 4), T=0.1, dt=0.05, step_scale=scale,
                 backend="numpy")


def test_a_step_scale_that_turns_bad_later_is_caught_at_that_time():
    problem = paper.problem("arbitrary")
    with pytest.raises(ValueError, match=r"step_scale\(t\) .* got -1.0 at t = 0.1"):
        simulate(problem, paper.student_init(problem, 4), T=0.2, dt=0.05,
                 step_scale=lambda t: 1.0 if t < 0.09 else -1.0)


def test_noise_bases_that_are_not_orthonormal_or_vanish_under_EA_are_refused():
    problem = paper.problem("arbitrary", beta=1e-3)
    start = paper.student_init(problem, 4)
    with pytest.raises(ValueError, match="orthonormal columns"):
        simulate(problem, start, T=0.1, dt=0.05, noise=2.0 * np.eye(4)[:, :2])
    orthogonal = np.eye(4) - problem.symmetry.projector  # E^G's complement: rank 2
    basis = np.linalg.svd(orthogonal)[0][:, :2]
    with pytest.raises(ValueError, match="orthogonal to E\\^G: the noise would vanish"):
        simulate(problem, start, scheme="EA", T=0.1, dt=0.05, noise=basis)
    quiet = Problem(problem.unit, problem.data, problem.symmetry)  # beta = 0: no noise anyway
    assert simulate(quiet, start, scheme="EA", T=0.1, dt=0.05, noise=basis).status == \
        "complete"
    with pytest.raises(ValueError, match="noise must be a numeric array"):
        simulate(problem, start, T=0.1, dt=0.05, noise=[["a"]])


def test_DA_moves_do_not_depend_on_how_steps_are_split_into_chunks(monkeypatch):
    """Chunks now adapt to the wall time, so their boundaries vary from run to run: odd
    batches of a group of order 3 (bounded integers, drawn 32 bits at a time) still give the
    same trajectory as one chunk per frame."""
    from wgflow import FixedSample, Symmetry
    from wgflow.symmetry import groups
    rng = np.random.default_rng(0)
    unit = Perceptron(3, 1, "tanh", bias=False)
    symmetry = Symmetry(groups.cyclic(3), unit)  # C3 shifts the inputs, outputs invariant
    x = rng.standard_normal((7, 3))
    problem = Problem(unit, FixedSample(x, np.tanh(x.sum(1, keepdims=True))), symmetry)
    start = rng.standard_normal((5, unit.dim))
    options = dict(scheme="DA", dynamics="sgd", T=1.4, batch_size=3, backend="numpy", seed=3,
                   record_every=7)
    whole = simulate(problem, start, **options)
    monkeypatch.setattr(dynamics, "CHUNK_NUMBERS", 1)  # one step per chunk
    np.testing.assert_array_equal(simulate(problem, start, **options).particles,
                                  whole.particles)


# --- files users point us at -------------------------------------------------------------

def test_info_reads_a_file_that_a_run_is_still_writing(trajectory):
    """The writer holds HDF5's lock on the file; ``info`` reads it without the lock."""
    _stop_running(trajectory)
    writer = h5md.TrajectoryFile.open(trajectory)
    try:
        out = subprocess.run([sys.executable, "-m", "wgflow", "info", str(trajectory)],
                             capture_output=True, text=True)
    finally:
        writer.close()
    assert out.returncode == 0, out.stderr
    assert "status: running" in out.stdout and "frames: 5" in out.stdout


def test_an_internal_error_is_one_line_and_a_log(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a defect")

    monkeypatch.setattr(dynamics, "_observe", broken)
    assert main(["run", "--out", str(tmp_path / "x.h5"), *SMALL]) == 1
    err = capsys.readouterr().err
    match = re.fullmatch(r"wgflow run: internal error: ZeroDivisionError: a defect \(traceback "
                         r"in (\S+\.log); please report it\)\n", err)
    assert match, err
    log = match.group(1)
    text = open(log, encoding="utf-8").read()
    os.unlink(log)
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError" in text


def test_a_manifest_write_on_a_full_disk_names_the_manifest_and_leaves_no_temporary(
        tmp_path, monkeypatch, capsys):
    import errno
    import json as jsonlib

    from wgflow import sweep
    args = ["sweep", "--grid", "init.N=4,5", "--set", "run.T=1", "--set", "run.frames=2",
            "--set", "run.backend=numpy", "--out", str(tmp_path), "--workers", "1", "--quiet"]

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(sweep.json, "dump", full)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(r"wgflow sweep: error: writing .*manifest\.json failed \(\[Errno 28\] "
                        r"No space left on device\).*\n", err), err
    monkeypatch.setattr(sweep.json, "dump", jsonlib.dump)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


@pytest.mark.parametrize("damage", ["run_config_list", "config_list", "run_config_empty",
                                    "no_frames"])
def test_info_and_plot_on_an_odd_trajectory_fail_cleanly_naming_it(trajectory, capsys,
                                                                      damage):
    """A file with parameters that are not JSON objects (or lack keys), or with no frames yet
    (a run killed as it created its file): one line naming the file, never an internal
    error; ``info`` shows what there is."""
    import json as jsonlib

    import h5py
    with h5py.File(trajectory, "r+") as h5:
        par = h5["parameters"]
        if damage.endswith("_list"):
            key = damage[:-len("_list")]
            del par[key]
            par.create_dataset(key, data=jsonlib.dumps([1, 2]), dtype=h5py.string_dtype())
        elif damage == "run_config_empty":
            del par["run_config"]
            par.create_dataset("run_config", data="{}", dtype=h5py.string_dtype())
        else:
            for group in [h5["particles/student/position"], *h5["observables"].values()]:
                for key in ("step", "time", "value"):
                    group[key].resize(0, axis=0)
    before = _digest(trajectory)
    codes = {command: main([command, str(trajectory)]) for command in ("info", "plot")}
    out, err = capsys.readouterr()
    assert "internal error" not in err, err
    if damage.endswith("_list"):
        assert codes == {"info": 2, "plot": 2}
        assert err.count(f"{trajectory}: /parameters/{damage[:-5]} is not a JSON object") == 2
    elif damage == "run_config_empty":
        assert codes == {"info": 0, "plot": 0}
        assert "scheme: ?, dynamics: ?, N = ?" in out
    else:
        assert codes == {"info": 0, "plot": 2}
        assert re.fullmatch(f"wgflow plot: error: {re.escape(str(trajectory))} holds no frames "
                            r"yet: nothing to plot\n", err), err
    assert _digest(trajectory) == before
    # no figure directory left for a file that cannot be plotted
    assert trajectory.with_suffix("").exists() == (damage == "run_config_empty")


def test_info_into_a_closed_pipe_exits_141_silently(trajectory):
    """``wgflow info F | head``: the documented SIGPIPE code, no traceback, no message."""
    proc = subprocess.Popen([sys.executable, "-m", "wgflow", "info", str(trajectory)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader went away before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == b""


@pytest.mark.parametrize("source", ["/dev/zero", "big"])
def test_a_config_that_is_no_text_file_is_refused_without_reading_it_all(tmp_path, capsys,
                                                                        source):
    """``wgflow run OUT.h5`` (a trajectory of gigabytes given as the config) or ``/dev/zero``
    used to be read whole into memory before being refused."""
    path = source
    if source == "big":
        path = tmp_path / "big.toml"
        path.write_text("# " + "x" * (2 << 20) + "\n")
    assert main(["run", str(path), "--out", str(tmp_path / "x.h5"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert re.fullmatch(rf"wgflow run: error: {re.escape(str(path))} is not a TOML config "
                        r"\(larger than 1 MB\).*\n", err), err
