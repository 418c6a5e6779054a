"""Sweeps: identical results on any executor, the manifest, resume after an interrupt, errors."""

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import h5py
import numba
import numpy as np
import pytest

from wgflow import config, sweep
from wgflow.cli import main
from wgflow.files.h5md import TrajectoryFile, read_parameters
from wgflow.sweep import studies

BASE = {"run.T": 1.0, "run.frames": 2, "run.backend": "numpy"}
GRID = {"run.scheme": ["vanilla", "FA"], "init.N": [4, 6]}


def particles(result: sweep.Sweep) -> dict:
    return {e["id"]: result.load(e).particles for e in result.runs}


def test_process_pool_and_dask_give_the_serial_results(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")
    serial = sweep.run_sweep(BASE, GRID, tmp_path / "serial", seeds=2, progress=False)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        pooled = sweep.run_sweep(BASE, GRID, tmp_path / "pool", seeds=2, executor=pool,
                                 threads_per_worker=1, progress=False)
    # threads in this process: the fastest Dask cluster to start; the task is the same
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dasked = sweep.run_sweep(BASE, GRID, tmp_path / "dask", seeds=2,
                                 executor=client.get_executor(), threads_per_worker=1,
                                 progress=False)
    reference = particles(serial)
    assert len(reference) == 8
    for other in (pooled, dasked):
        assert [e["id"] for e in other.runs] == [e["id"] for e in serial.runs]
        assert other.counts() == {"complete": 8}
        for run_id, theta in particles(other).items():
            np.testing.assert_array_equal(theta, reference[run_id])


@pytest.mark.slow
def test_dask_worker_processes_on_numba_give_the_serial_files(tmp_path):
    """Dask workers in processes of their own, one Numba thread each, against a serial sweep in
    this process at its default thread count: the same particles (bitwise) and observables.
    N = 1700 against batches of 20 takes the parallel kernels."""
    distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")
    base = {**BASE, "run.backend": "numba", "run.T": 0.05}
    grid = {"run.scheme": ["vanilla", "DA", "FA", "EA"], "init.N": [20, 1700]}
    serial = sweep.run_sweep(base, grid, tmp_path / "serial", progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        dasked = sweep.run_sweep(base, grid, tmp_path / "dask", executor=client.get_executor(),
                                 threads_per_worker=1, progress=False)
    assert serial.counts() == dasked.counts() == {"complete": 8}
    for ours, theirs in zip(serial.runs, dasked.runs, strict=True):
        assert theirs["id"] == ours["id"]
        expected, got = serial.load(ours), dasked.load(theirs)
        np.testing.assert_array_equal(got.particles, expected.particles)
        assert got.observables.keys() == expected.observables.keys() != set()
        for name, values in expected.observables.items():
            np.testing.assert_array_equal(got.observables[name], values, err_msg=name)


def test_manifest_describes_every_run(tmp_path):
    result = sweep.run_sweep(BASE, GRID, tmp_path, seeds=2, root_seed=7, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["sweep"] == {"base": config.checked(BASE), "grid": [GRID], "seeds": 2,
                                 "root_seed": 7, "label": None}
    children = np.random.SeedSequence(7).spawn(2)
    runs = manifest["runs"]
    assert runs == result.runs and len(runs) == 8
    for i, entry in enumerate(runs):
        replicate, point = divmod(i, 4)
        assert entry["replicate"] == replicate
        assert entry["params"] == {"run.scheme": GRID["run.scheme"][point // 2],
                                   "init.N": GRID["init.N"][point % 2]}
        state = children[replicate].generate_state(2)
        assert entry["seeds"] == {"init.seed": int(state[0]), "run.seed": int(state[1])}
        cfg = config.checked({**BASE, **entry["params"], **entry["seeds"]})
        assert entry["config_hash"] == sweep.config_hash(cfg)
        assert entry["id"] == entry["config_hash"][:12]
        assert entry["path"] == f"runs/{entry['id']}.h5"
        assert entry["status"] == "complete" and entry["error"] == ""
        assert entry["wall_time"] > 0
        stored = read_parameters(tmp_path / entry["path"])
        assert stored["config"] == cfg and stored["status"] == "complete"
    # every grid point of a replicate starts from the same particles (the shared SI start)
    first = [result.load(e).particles[0] for e in runs[:4] if e["params"]["init.N"] == 4]
    np.testing.assert_array_equal(first[0], first[1])


def test_interrupted_sweep_redoes_only_what_is_not_complete(tmp_path, monkeypatch):
    real_run = sweep.run_to_file
    calls = []

    def interrupted(cfg, path, progress, **options):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user stops the sweep during its third run
        return real_run(cfg, path, progress, **options)

    monkeypatch.setattr(sweep, "run_to_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(BASE, GRID, tmp_path, progress=False)
    before = sweep.read_sweep(tmp_path)
    assert [e["status"] for e in before.runs] == ["complete", "complete", "pending", "pending"]
    done = {e["path"]: (tmp_path / e["path"]).stat().st_mtime_ns for e in before.runs[:2]}

    calls.clear()
    monkeypatch.setattr(sweep, "run_to_file", lambda cfg, path, progress, **options: (
        calls.append(path), real_run(cfg, path, progress, **options))[1])
    after = sweep.run_sweep(BASE, GRID, tmp_path, progress=False)
    assert after.counts() == {"complete": 4}
    assert sorted(calls) == sorted(str(tmp_path / e["path"]) for e in before.runs[2:])
    for path, mtime in done.items():
        assert (tmp_path / path).stat().st_mtime_ns == mtime
    assert sweep.read_sweep(tmp_path).runs == after.runs


def test_failed_unreadable_and_unfinished_runs_are_redone(tmp_path, monkeypatch):
    first = sweep.run_sweep(BASE, GRID, tmp_path, progress=False)
    reference = particles(first)
    failing, broken, unfinished, kept = (tmp_path / e["path"] for e in first.runs)
    failing.unlink()
    broken.write_bytes(b"not an HDF5 file")
    with h5py.File(unfinished, "r+") as h5:  # killed after its last checkpoint
        h5["parameters"].attrs["status"] = "running"
    mtime = kept.stat().st_mtime_ns

    real_run = sweep.run_to_file

    def fail_one(cfg, path, progress, **options):
        if path == str(failing):
            raise RuntimeError("out of memory")
        return real_run(cfg, path, progress, **options)

    monkeypatch.setattr(sweep, "run_to_file", fail_one)
    second = sweep.run_sweep(BASE, GRID, tmp_path, progress=False)
    assert [e["status"] for e in second.runs] == ["failed", "complete", "complete", "complete"]
    assert second.runs[0]["error"] == "RuntimeError: out of memory"
    assert sweep.read_sweep(tmp_path).runs[0]["status"] == "failed"

    monkeypatch.setattr(sweep, "run_to_file", real_run)
    third = sweep.run_sweep(BASE, GRID, tmp_path, progress=False)
    assert third.counts() == {"complete": 4}
    assert kept.stat().st_mtime_ns == mtime
    for run_id, theta in particles(third).items():
        np.testing.assert_array_equal(theta, reference[run_id])


@pytest.mark.parametrize("grid, seeds, message", [
    ({"init.M": [1]}, 1, "grid key 'init.M' is not a config key"),
    ({"init.N": []}, 1, "grid key 'init.N' needs a non-empty list"),
    ({"init.N": 5}, 1, "grid key 'init.N' needs a non-empty list"),
    ({"run.seed": [1, 2]}, 1, "grid key 'run.seed' is set per replicate"),
    ({"init.N": [0]}, 1, "config key 'init.N' must be an integer ≥ 1"),
    ({"init.N": [4, 4]}, 1, "two grid points give the same run"),
    ({"init.N": [4]}, 0, r"seeds \(--seeds\) must be an integer ≥ 1"),
    ([], 1, "non-empty list"),
])
def test_bad_sweeps_are_refused_naming_the_parameter(tmp_path, grid, seeds, message):
    with pytest.raises(ValueError, match=message):
        sweep.run_sweep(BASE, grid, tmp_path, seeds=seeds, progress=False)


def test_another_sweep_in_the_same_directory_is_refused(tmp_path):
    sweep.run_sweep(BASE, {"init.N": [4]}, tmp_path, progress=False)
    before = (tmp_path / "manifest.json").read_text()
    with pytest.raises(ValueError, match="holds another sweep"):
        sweep.run_sweep({**BASE, "run.T": 2.0}, {"init.N": [4]}, tmp_path, progress=False)
    with pytest.raises(ValueError, match="holds another sweep or study"):
        studies.run_study("paper", "smoke", tmp_path, progress=False)
    assert (tmp_path / "manifest.json").read_text() == before
    # a manifest written before the schema gained keys (their defaults absent) is the same sweep
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["sweep"]["base"] = {k: v for k, v in manifest["sweep"]["base"].items()
                                 if not k.startswith("pde.") and k != "run.solver"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert sweep.run_sweep(BASE, {"init.N": [4]}, tmp_path, progress=False).counts() == {
        "complete": 1}
    # the same sweep grown (more values, more replicates) keeps its completed runs
    grown = sweep.run_sweep(BASE, {"init.N": [4, 5]}, tmp_path, seeds=2, progress=False)
    assert grown.counts() == {"complete": 4}
    assert grown.runs[0]["wall_time"] == sweep.read_sweep(tmp_path).runs[0]["wall_time"]


def test_a_running_sweep_holds_its_directory(tmp_path):
    fcntl = pytest.importorskip("fcntl", reason="directory locks need fcntl (not on Windows)")
    tmp_path.mkdir(exist_ok=True)
    with open(tmp_path / sweep.LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as another sweep process would
        with pytest.raises(ValueError, match=r"sweep directory .* is in use by another wgflow"):
            sweep.run_sweep(BASE, {"init.N": [4]}, tmp_path, progress=False)
    assert sweep.run_sweep(BASE, {"init.N": [4]}, tmp_path, progress=False).counts() == {
        "complete": 1}


def test_a_lost_worker_fails_its_run_only(tmp_path):
    class LosesOne(ThreadPoolExecutor):
        """Runs tasks in threads; the task of one run dies as a killed worker would."""

        def submit(self, fn, config_, path, *options):
            if path.endswith(lost):
                def die():
                    raise BrokenProcessPool("a worker died")
                return super().submit(die)
            return super().submit(fn, config_, path, *options)

    lost = sweep.plan(BASE, GRID).runs[1]["path"]
    with LosesOne(2) as pool:
        first = sweep.run_sweep(BASE, GRID, tmp_path, executor=pool, progress=False)
    assert [e["status"] for e in first.runs] == ["complete", "failed", "complete", "complete"]
    assert first.runs[1]["error"].startswith("worker lost: BrokenProcessPool")
    assert sweep.run_sweep(BASE, GRID, tmp_path, progress=False).counts() == {"complete": 4}


def test_a_run_interrupted_after_a_checkpoint_is_resumed(tmp_path, monkeypatch):
    options = {**BASE, "run.frames": 6, "output.checkpoint_every": 2}
    whole = sweep.run_sweep(options, {"init.N": [4]}, tmp_path / "whole", progress=False)
    append, appended = TrajectoryFile.append, []

    def interrupted(self, frame):
        if len(appended) == 4:  # frames 0–3 written, checkpoint at frame 2
            raise KeyboardInterrupt
        appended.append(frame.step)
        append(self, frame)

    monkeypatch.setattr(TrajectoryFile, "append", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(options, {"init.N": [4]}, tmp_path / "cut", progress=False)
    monkeypatch.undo()
    resumed, resume = [], sweep.resume_file
    monkeypatch.setattr(sweep, "resume_file", lambda path, progress, **options: (
        resumed.append(path) or resume(path, progress, **options)))
    monkeypatch.setattr(sweep, "run_to_file", lambda *a, **k: pytest.fail("ran from the start"))
    again = sweep.run_sweep(options, {"init.N": [4]}, tmp_path / "cut", progress=False)
    assert len(resumed) == 1 and again.counts() == {"complete": 1}
    np.testing.assert_array_equal(again.load(again.runs[0]).particles,
                                  whole.load(whole.runs[0]).particles)


def test_numba_threads_are_capped_per_run_and_restored(tmp_path, monkeypatch):
    seen, run = [], sweep.run_to_file
    monkeypatch.setattr(sweep, "run_to_file", lambda *a, **k: (
        seen.append(numba.get_num_threads()), run(*a, **k))[1])
    before = numba.get_num_threads()
    sweep.run_sweep(BASE, {"init.N": [4, 5]}, tmp_path, threads_per_worker=1, progress=False)
    assert seen == [1, 1] and numba.get_num_threads() == before


def test_idle_cores_are_shared_only_when_fewer_runs_are_left_than_workers(tmp_path):
    share = tmp_path / sweep.THREADS
    for cores, left in ((None, 1), (2, 2), (2, 0), (4, 3)):
        sweep._share_idle_cores(tmp_path, cores, 1, left)
        assert not share.exists(), (cores, left)
    sweep._share_idle_cores(tmp_path, 4, 1, 2)
    assert share.read_text() == "2"
    sweep._share_idle_cores(tmp_path, 4, 1, 1)
    assert share.read_text() == "4" and not share.with_name(share.name + ".tmp").exists()


@pytest.mark.parametrize("cores", [0, -2, 1.5, "2", True])
def test_bad_core_counts_are_refused(tmp_path, cores):
    with pytest.raises(ValueError, match=r"^cores must be an integer ≥ 1"):
        sweep.run_sweep(BASE, {"init.N": [4]}, tmp_path, cores=cores, progress=False)
    assert not (tmp_path / sweep.MANIFEST).exists()


def test_a_run_takes_the_threads_of_the_threads_file_at_each_chunk(tmp_path, monkeypatch):
    """Between chunks (``stop()``) a run takes the count in the threads file, capped at
    Numba's, and its own count while there is none or it is unreadable; the worker's count is
    restored after."""
    seen = []

    def chunks(config, path, stop):
        for text in (None, "9", "two", "1"):
            if text is not None:
                threads_file.write_text(text)
            stop()
            seen.append(numba.get_num_threads())
        return "complete"

    monkeypatch.setattr(sweep, "_resume_or_run", chunks)
    threads_file = tmp_path / sweep.THREADS
    before = numba.get_num_threads()
    outcome = sweep.execute({}, str(tmp_path / "run.h5"), 1, str(tmp_path / sweep.STOP),
                            str(threads_file))
    assert outcome[0] == "complete"
    assert seen == [1, numba.config.NUMBA_NUM_THREADS, 1, 1]  # an unreadable count: its own
    assert numba.get_num_threads() == before


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two Numba threads")
def test_the_last_run_takes_the_core_a_finished_worker_leaves(tmp_path, monkeypatch):
    """Two workers of one thread on two cores: once the short run is done, the long one
    (submitted first) goes on with two threads; the sweep removes the threads file after, and
    the results are the serial ones."""
    seen, real = {}, sweep.run_to_file

    def recording(config, path, *, stop, **options):
        if config["init.N"] == 6:
            deadline = time.monotonic() + 60
            while numba.get_num_threads() < 2 and time.monotonic() < deadline:
                stop()
                time.sleep(0.02)
            seen["threads"] = numba.get_num_threads()
        return real(config, path, stop=stop, **options)

    monkeypatch.setattr(sweep, "run_to_file", recording)
    grid = {"init.N": [4, 6]}
    with ThreadPoolExecutor(2) as pool:
        shared = sweep.run_sweep(BASE, grid, tmp_path / "shared", executor=pool,
                                 threads_per_worker=1, cores=2, progress=False)
    serial = sweep.run_sweep(BASE, grid, tmp_path / "serial", progress=False)
    assert seen == {"threads": 2}
    assert not (tmp_path / "shared" / sweep.THREADS).exists()
    assert shared.counts() == {"complete": 2}
    for run_id, theta in particles(shared).items():
        np.testing.assert_array_equal(theta, particles(serial)[run_id])


def test_parse_grid():
    assert sweep.parse_grid("init.N=5, 10") == ("init.N", [5, 10])
    assert sweep.parse_grid("run.scheme=vanilla,FA") == ("run.scheme", ["vanilla", "FA"])
    assert sweep.parse_grid("run.T=0.5,2") == ("run.T", [0.5, 2])
    with pytest.raises(ValueError, match="--grid expects KEY=V1,V2"):
        sweep.parse_grid("init.N")


def test_cli_sweep_skips_completed_runs_and_reports(tmp_path, capsys):
    args = ["sweep", "--grid", "run.scheme=vanilla,EA", "--grid", "init.N=4", "--seeds", "2",
            "--set", "run.T=1", "--set", "run.frames=2", "--set", "run.backend=numpy",
            "--out", str(tmp_path), "--workers", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 runs" in out and "4 complete" in out
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.h5")}
    assert len(mtimes) == 4
    assert main(args) == 0
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())
    assert main(["report", str(tmp_path)]) == 0
    summary = (tmp_path / "report" / "summary.csv").read_text().splitlines()
    assert len(summary) == 3 and summary[0].startswith("run.scheme,init.N,runs,")


@pytest.mark.parametrize("args, message", [
    (["sweep", "--grid", "init.X=1"], "grid key 'init.X' is not a config key"),
    (["sweep"], "needs at least one --grid"),
    (["sweep", "--grid", "init.N=4", "--executor", "dask"], "needs --scheduler"),
    (["sweep", "--grid", "init.N=4", "--workers", "0"], "--workers must be ≥ 1"),
    (["sweep", "--grid", "init.N=4", "--seeds", "0"], "seeds (--seeds) must be an integer ≥ 1"),
    (["sweep", "--grid", "init.N=4", "--grid", "init.N=5"], "--grid init.N is given twice"),
    (["sweep", "--grid", "init.N=4", "--threads", "0"], "--threads must be ≥ 1"),
])
def test_cli_sweep_errors_exit_2(tmp_path, capsys, args, message):
    assert main([*args, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_cli_sweep_on_a_dask_scheduler(tmp_path):
    distributed = pytest.importorskip("distributed", reason="the [dask] extra is not installed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        assert main(["sweep", "--grid", "init.N=4,5", "--set", "run.T=1", "--set",
                     "run.backend=numpy", "--out", str(tmp_path), "--executor", "dask",
                     "--scheduler", cluster.scheduler_address, "--quiet"]) == 0
    assert sweep.read_sweep(tmp_path).counts() == {"complete": 2}


def test_an_executor_gets_the_longest_runs_first(tmp_path):
    """Runs are submitted by decreasing expected work (ties in plan order); the manifest keeps
    the plan order."""
    submitted = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, *args, **kwargs):
            submitted.append((args[0]["run.scheme"], args[0]["init.N"]))
            return super().submit(fn, *args, **kwargs)

    with Recording(1) as pool:
        result = sweep.run_sweep(BASE, GRID, tmp_path, executor=pool, progress=False)
    # N² steps·particles, twice for FA (two orbit nodes): 72, 36, 32, 16
    assert submitted == [("FA", 6), ("vanilla", 6), ("FA", 4), ("vanilla", 4)]
    assert [(e["params"]["run.scheme"], e["params"]["init.N"]) for e in result.runs] == [
        ("vanilla", 4), ("vanilla", 6), ("FA", 4), ("FA", 6)]
    assert result.counts() == {"complete": 4}


def test_expected_work_counts_particle_steps():
    vanilla = {"init.N": 50, "run.T": 2.0, "run.scheme": "vanilla"}
    assert sweep.expected_work(config.checked(vanilla)) == 50 * 100  # dt = 1/N: 100 steps
    mf = config.checked({**vanilla, "run.dynamics": "mf"})
    assert sweep.expected_work(mf) == pytest.approx(50 * 200)  # dt = 1e-2
    assert sweep.expected_work(config.checked({**vanilla, "run.dt": 0.5})) == 50 * 4
    fa = config.checked({**vanilla, "run.scheme": "FA"})
    assert sweep.expected_work(fa) == 2 * 50 * 100  # the paper's C₂: two orbit nodes a sample
    pde = config.checked({"run.solver": "pde", "run.dynamics": "mf", "pde.cells": 16,
                          "run.T": 1.0})
    assert sweep.expected_work(pde) == pytest.approx(16 * 100)
