"""Ctrl-C and SIGTERM stop runs and sweeps within seconds, keep a checkpoint, say how to resume."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from wgflow import config, load, sweep
from wgflow.files.checkpoints import checkpoint_path, read_checkpoint
from wgflow.files.h5md import read_parameters
from wgflow.runner import RunInterrupted, resume_file, run_to_file

#: an MF run of hours whose frames are hours apart: one chunk used to be a whole frame
LONG_MF = ["--quiet", "--set", "run.dynamics=mf", "--set", "init.N=2000", "--set",
           "run.T=1000", "--set", "run.frames=2"]
#: seconds a stop may take after the signal (the flow checks every ~0.25 s; the rest is the
#: last checkpoint and the interpreter's exit)
STOP_SECONDS = 5.0


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _wgflow(*args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "wgflow", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_long_run_within_seconds(tmp_path, signum, code):
    warm = subprocess.run([sys.executable, "-m", "wgflow", "run", "--out",
                           str(tmp_path / "warm.h5"), *LONG_MF, "--set", "run.T=0.02"],
                          capture_output=True, text=True)  # compiles (cached on disk)
    assert warm.returncode == 0, warm.stderr
    path = tmp_path / "long.h5"
    proc = _wgflow("run", "--out", str(path), *LONG_MF)
    assert _wait_for(lambda: checkpoint_path(path).exists() or proc.poll() is not None)
    time.sleep(3.0)  # loading the compiled kernels, then stepping inside the first frame
    assert proc.poll() is None, proc.communicate()
    tic = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - tic < STOP_SECONDS
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert f"continue with `wgflow resume {path}`" in err
    cursor, frames, _ = read_checkpoint(path)
    assert frames == 1 and cursor.step > 0  # inside the first frame
    assert read_parameters(path)["status"] == "running"


def test_a_run_stopped_inside_a_frame_resumes_bitwise(tmp_path):
    """The stop request arrives between chunks (here after the 3rd check, mid-frame); the
    resumed file equals the uninterrupted one."""
    cfg = config.checked({"init.N": 8, "run.T": 4.0, "run.frames": 2, "run.scheme": "DA",
                          "problem.beta": 1e-3, "output.checkpoint_every": 1})
    run_to_file(cfg, tmp_path / "whole.h5", progress=False)
    asked = []

    def stop():
        asked.append(1)
        return len(asked) > 3

    with pytest.raises(RunInterrupted, match="continue with `wgflow resume"):
        run_to_file(cfg, tmp_path / "cut.h5", progress=False, stop=stop)
    cursor, frames, _ = read_checkpoint(tmp_path / "cut.h5")
    assert frames == 1 and 0 < cursor.step < 16  # 32 steps in 2 frames
    assert resume_file(tmp_path / "cut.h5", progress=False) == "complete"
    a, b = load(tmp_path / "cut.h5"), load(tmp_path / "whole.h5")
    np.testing.assert_array_equal(a.particles, b.particles)
    np.testing.assert_array_equal(a.steps, b.steps)
    for k in b.observables:
        np.testing.assert_array_equal(a.observables[k], b.observables[k])


def _running_sweep(out):
    """A two-worker sweep of four long runs into ``out``, in its own process group, once both
    workers have checkpointed a run."""
    proc = _wgflow("sweep", "--grid", "run.scheme=vanilla,FA", "--grid", "init.N=300,301",
                   "--set", "run.backend=numpy", "--set", "run.T=60", "--set",
                   "run.frames=600", "--workers", "2", "--quiet", "--out", str(out),
                   start_new_session=True)
    assert _wait_for(lambda: len(list(out.glob("runs/*.ckpt.npz"))) >= 2
                     or proc.poll() is not None)
    return proc


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_and_its_workers(tmp_path):
    """The terminal's Ctrl-C reaches the whole process group: the parent and its two worker
    processes. Unfinished runs are marked, keep their checkpoints, and no worker prints a
    traceback."""
    out = tmp_path / "sweep"
    proc = _running_sweep(out)
    time.sleep(0.5)
    assert proc.poll() is None, proc.communicate()
    tic = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert time.monotonic() - tic < 3 * STOP_SECONDS, err
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "run the same command again" in err
    runs = json.loads((out / sweep.MANIFEST).read_text())["runs"]
    statuses = [entry["status"] for entry in runs]  # queued runs may have started meanwhile
    assert statuses.count("interrupted") >= 2 and set(statuses) <= {"interrupted", "pending"}
    for entry in runs:
        if entry["status"] == "interrupted":
            assert read_parameters(out / entry["path"])["status"] == "running"
            assert checkpoint_path(out / entry["path"]).exists()
    assert not (out / sweep.STOP).exists() and not (out / sweep.LOCK).exists()


def test_a_run_stopped_by_a_signal_the_sweep_did_not_receive_exits_130(tmp_path, monkeypatch):
    """A worker's run stopped by a signal sent to the worker alone (or, in a serial sweep, to
    the run's own handler): the sweep still ends with the stop-request code, not 128 + 0."""
    def stopped(cfg, path, progress, **options):
        raise RunInterrupted(f"interrupted; continue with `wgflow resume {path}`",
                             signal.SIGTERM)

    monkeypatch.setattr(sweep, "run_to_file", stopped)
    with pytest.raises(RunInterrupted, match="sweep interrupted") as info:
        sweep.run_sweep({"run.T": 1.0, "run.backend": "numpy"}, {"init.N": [4, 5]}, tmp_path,
                        progress=False)
    assert info.value.signal == signal.SIGINT
    assert [e["status"] for e in sweep.read_sweep(tmp_path).runs] == ["interrupted", "pending"]


def test_a_second_ctrl_c_leaves_the_runs_still_going_their_stop_file(tmp_path, monkeypatch):
    """The second Ctrl-C raises in the sweep before it has written the stop file: the runs
    still going (and those queued in a process pool, which cannot be cancelled) must still be
    told to stop, or the sweep waits for them to finish (hours) although it said it stopped."""
    from concurrent.futures import ThreadPoolExecutor
    saw_stop = []

    def first_run(config, path, threads, stop_file, threads_file):
        os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C twice
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)
        saw_stop.append(_wait_for(lambda: os.path.exists(stop_file), timeout=10.0))
        return "interrupted", 0.0, ""

    monkeypatch.setattr(sweep, "execute", first_run)
    with ThreadPoolExecutor(1) as pool, pytest.raises(KeyboardInterrupt):
        sweep.run_sweep({"run.T": 1.0, "run.backend": "numpy"}, {"init.N": [4]}, tmp_path,
                        executor=pool, progress=False)
    assert saw_stop == [True]


def test_a_second_signal_stops_at_once_and_still_says_how_to_resume(tmp_path):
    """The second Ctrl-C raises wherever the run is (here between two chunks, after a
    checkpoint): the message names the file and the resume command, and the file resumes to
    the uninterrupted result."""
    cfg = config.checked({"init.N": 8, "run.T": 4.0, "run.frames": 4, "run.scheme": "DA",
                          "problem.beta": 1e-3, "output.checkpoint_every": 1})
    run_to_file(cfg, tmp_path / "whole.h5", progress=False)
    asked = []

    def second_signal():
        asked.append(1)
        if len(asked) == 7:
            raise KeyboardInterrupt  # what the handler raises on a second signal
        return False

    path = tmp_path / "cut.h5"
    with pytest.raises(RunInterrupted, match=f"continue with `wgflow resume {path}`") as info:
        run_to_file(cfg, path, progress=False, stop=second_signal)
    assert info.value.signal == signal.SIGINT
    assert read_parameters(path)["status"] == "running"
    assert resume_file(path, progress=False) == "complete"
    np.testing.assert_array_equal(load(path).particles, load(tmp_path / "whole.h5").particles)


@pytest.mark.slow
def test_the_workers_of_a_killed_sweep_stop_their_runs_and_exit(tmp_path):
    """``kill -9`` of the sweep's parent leaves no stop file: each worker notices it has lost
    its parent, stops its run (resumable, its checkpoint kept) and exits, rather than waiting
    for runs forever."""
    out = tmp_path / "sweep"
    proc = _running_sweep(out)
    assert proc.poll() is None, proc.communicate()
    proc.kill()
    proc.communicate(timeout=60)

    def group_gone():  # the workers (and their resource tracker) share the parent's group
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    try:
        assert _wait_for(group_gone, timeout=60)
    finally:  # never leave workers behind, even when the test fails
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    stopped = [run for run in out.glob("runs/*.h5") if checkpoint_path(run).exists()]
    assert len(stopped) >= 2
    for run in stopped:
        assert read_parameters(run)["status"] == "running"


def test_an_idle_sweep_worker_survives_the_terminal_s_signals():
    """``kill -TERM`` to the process group (a batch system's time limit, ``timeout``) reaches
    idle workers too: one that died would break the pool, and the pool's own termination of
    the others (a second SIGTERM to a run that is checkpointing) used to hang the sweep."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                             initializer=sweep.ignore_interrupts) as pool:
        worker = pool.submit(os.getpid).result(timeout=120)
        for signum in (signal.SIGINT, signal.SIGTERM):
            os.kill(worker, signum)
        time.sleep(0.5)
        assert pool.submit(os.getpid).result(timeout=60) == worker


def test_a_stop_whose_checkpoint_finds_the_disk_full_says_how_to_resume(tmp_path, monkeypatch):
    """The disk fills between the last frame and the stop's checkpoint: one line naming the
    file and the resume command; the previous checkpoint is kept and resumes."""
    import errno

    from wgflow import runner
    cfg = config.checked({"init.N": 8, "run.T": 4.0, "run.frames": 2, "run.backend": "numpy",
                          "output.checkpoint_every": 1})
    path, real, asked = tmp_path / "cut.h5", runner.write_checkpoint, []

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    def stop():
        asked.append(1)
        if len(asked) == 4:
            monkeypatch.setattr(runner, "write_checkpoint", full)
        return len(asked) >= 4

    with pytest.raises(OSError, match=rf"writing {path} failed .* `wgflow resume {path}`"):
        run_to_file(cfg, path, progress=False, stop=stop)
    monkeypatch.setattr(runner, "write_checkpoint", real)
    assert read_checkpoint(path)[0].step == 0
    assert resume_file(path, progress=False) == "complete"
