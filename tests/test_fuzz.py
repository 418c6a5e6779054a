"""Bad input and faults through the command line: every case through ``main`` in the test's
process, a sample (a case of every command, the files held by another process) through the real
``wgflow`` executable as well.

Every case must end with the documented exit code (2: bad input or a file problem), print one
clean error line naming the key or file at fault, print no traceback, and leave every file
that existed before exactly as it was.
"""

import hashlib
import json
import re
import shutil
import subprocess
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import pytest
from conftest import cli_sets, interrupted_run

from wgflow.cli import main
from wgflow.files.checkpoints import checkpoint_path
from wgflow.files.locks import exclusive
from wgflow.runner import lock_path

SETS = ["init.N=6", "run.T=1", "run.frames=2", "run.backend=numpy"]
QUICK = ["--quiet", *cli_sets(SETS)]


def _workspace(root: Path) -> dict:
    """The files the cases point at."""
    f = {name: root / name for name in (
        "good.h5", "locked.h5", "garbage_ckpt.h5", "other_ckpt.h5", "no_ckpt.h5", "notes.txt",
        "my.toml", "binary.toml", "bad.toml", "unknown_key.toml", "wrong_type.toml",
        "empty.h5", "foreign.h5", "no_config.h5", "emptydir", "foreign_sweep", "no_manifest")}
    assert main(["run", "--out", str(f["good.h5"]), *QUICK]) == 0
    interrupted_run(f["locked.h5"], SETS)  # as a killed run leaves it: status running
    interrupted_run(f["other_ckpt.h5"], [*SETS, "run.seed=4"])
    for name in ("garbage_ckpt.h5", "no_ckpt.h5"):
        shutil.copy(f["locked.h5"], f[name])
        shutil.copy(checkpoint_path(f["locked.h5"]), checkpoint_path(f[name]))
    checkpoint_path(f["garbage_ckpt.h5"]).write_bytes(b"\x00garbage")
    shutil.copy(checkpoint_path(f["locked.h5"]), checkpoint_path(f["other_ckpt.h5"]))
    checkpoint_path(f["no_ckpt.h5"]).unlink()
    f["notes.txt"].write_text("my notes\n")
    f["my.toml"].write_text("[run]\nT = 1.0\n")
    f["binary.toml"].write_bytes(bytes(range(256)))
    f["bad.toml"].write_text("[run]\nT = = 3\n")
    f["unknown_key.toml"].write_text("[run]\nspeed = 3\n")
    f["wrong_type.toml"].write_text("[run]\nT = \"fast\"\n")
    f["empty.h5"].write_bytes(b"")
    h5py.File(f["foreign.h5"], "w").close()
    with h5py.File(f["no_config.h5"], "w") as h5:
        h5.create_group("parameters").attrs["status"] = "running"
        h5.create_group("particles/student/position")
    f["emptydir"].mkdir()
    f["foreign_sweep"].mkdir()
    (f["foreign_sweep"] / "manifest.json").write_text(json.dumps({"hello": "world"}))
    f["no_manifest"].mkdir()
    return f


def _cases(f: dict) -> list:
    """``(argv, exit code, regex the error must match)``: 90+ bad inputs and faults."""
    run = ["run", "--out", str(f["emptydir"] / "new.h5"), "--quiet"]
    bad_sets = [
        ("init.N=0", "'init.N' must be an integer"), ("init.N=-5", "'init.N' must be an"),
        ("init.N=2.5", "'init.N' must be an integer"), ("init.N=1e9", "'init.N' must be an"),
        ("init.N=1000000000", "needs about .* of memory"), ("init.N=true", "'init.N'"),
        ("init.N=many", "'init.N'"), ("run.T=0", "'run.T' must be"),
        ("run.T=-1", "'run.T' must be"), ("run.T=inf", "'run.T' must be"),
        ("run.T=nan", "'run.T' must be"), ("run.T=1e308", "'run.T', 'run.dt'.*steps"),
        ("run.T=20.005", "'run.T', 'run.dt'.*whole number"),
        ("run.dt=1e-300", "'run.T', 'run.dt'.*steps"), ("run.dt=-1", "'run.dt' must be"),
        ("run.dt=30", "'run.T', 'run.dt'.*whole number"), ("run.scheme=XA", "'run.scheme'"),
        ("run.dynamics=ode", "'run.dynamics'"), ("run.integrator=rk4", "'run.integrator'"),
        ("run.noise=half", "'run.noise'"), ("run.backend=tpu", "'run.backend'"),
        ("run.dtype=float16", "'run.dtype'"), ("run.batch_size=0", "'run.batch_size'"),
        ("run.frames=0", "'run.frames'"), ("run.seed=-1", "'run.seed'"),
        ("init.seed=1.5", "'init.seed'"), ("init.law=uniform", "'init.law'"),
        ("init.std=0", "'init.std'"), ("problem.tau=-1", "'problem.tau'"),
        ("problem.beta=nan", "'problem.beta'"), ("problem.teacher=none", "'problem.teacher'"),
        ("problem.preset=mnist", "'problem.preset'"), ("run.step_scale=0", "'run.step_scale'"),
        ("run.step_scale=inf", "'run.step_scale'"),
        ("output.checkpoint_every=0", "'output.checkpoint_every'"),
        ("run.bogus=1", "unknown config key 'run.bogus'"), ("run.T", "--set expects KEY=VALUE"),
        ("=5", "--set expects KEY=VALUE"),
    ]
    cases = [([*run, "--set", item], 2, message) for item, message in bad_sets]
    cases += [
        ([*run[:1], str(f["emptydir"] / "missing.toml"), *run[1:]], 2, "missing.toml"),
        ([*run[:1], str(f["binary.toml"]), *run[1:]], 2, "binary.toml is not a TOML config"),
        ([*run[:1], str(f["bad.toml"]), *run[1:]], 2, "bad.toml is not valid TOML"),
        ([*run[:1], str(f["emptydir"]), *run[1:]], 2, "emptydir"),
        ([*run[:1], str(f["unknown_key.toml"]), *run[1:]], 2, "unknown config key 'run.speed'"),
        ([*run[:1], str(f["wrong_type.toml"]), *run[1:]], 2, "'run.T' must be"),
    ]
    outs = [("notes.txt", "notes.txt exists and is not a wgflow trajectory"),
            ("my.toml", "my.toml exists and is not a wgflow trajectory"),
            ("foreign.h5", "foreign.h5 exists and is not a wgflow trajectory"),
            ("emptydir", "emptydir exists and is not a regular file"),
            ("good.h5", "good.h5 already holds a wgflow run .*--overwrite")]
    cases += [(["run", "--out", str(f[name]), *QUICK], 2, message) for name, message in outs]
    cases += [
        (["run", "--out", "/dev/null", *QUICK], 2, "/dev/null exists and is not a regular file"),
        (["run", "--out", str(f["no_manifest"] / "a" / "b.h5"), *QUICK], 2,
         "directory .*no_manifest/a does not exist"),
        (["run", "--out", str(f["locked.h5"]), "--overwrite", *QUICK], 2,
         "locked.h5 is in use by another wgflow process"),
    ]
    for name, message in [("emptydir/none.h5", "none.h5: no such file"),
                          ("notes.txt", "notes.txt is not a readable HDF5 file"),
                          ("empty.h5", "empty.h5 is not a readable HDF5 file"),
                          ("foreign.h5", "foreign.h5 is not a wgflow trajectory file"),
                          ("no_config.h5", "no_config.h5 is not a wgflow trajectory file"),
                          ("emptydir", "emptydir is not a regular file")]:
        path = str(f["emptydir"] / "none.h5") if name.startswith("emptydir/") else str(f[name])
        cases += [([command, path], 2, message) for command in ("resume", "info", "plot")]
    cases += [
        (["resume", str(f["garbage_ckpt.h5"])], 2, "checkpoint .*garbage_ckpt.h5.ckpt.npz is "
                                                   "unreadable"),
        (["resume", str(f["other_ckpt.h5"])], 2, "checkpoint of .*other_ckpt.h5 does not "
                                                 "belong to it"),
        (["resume", str(f["no_ckpt.h5"])], 2, "no_ckpt.h5 has no checkpoint"),
        (["resume", str(f["locked.h5"])], 2, "locked.h5 is in use by another wgflow process"),
        (["report", str(f["no_manifest"])], 2, "no_manifest has no manifest.json"),
        (["report", str(f["foreign_sweep"])], 2, "manifest.json is not a wgflow sweep manifest"),
        (["report", str(f["emptydir"] / "nowhere")], 2, "nowhere has no manifest.json"),
        (["sweep", "--out", str(f["emptydir"] / "s")], 2, "sweep needs at least one --grid"),
        (["sweep", "--grid", "init.N", "--out", str(f["emptydir"] / "s")], 2,
         "--grid expects KEY=V1,V2"),
        (["sweep", "--grid", "init.seed=1,2", "--out", str(f["emptydir"] / "s")], 2,
         "grid key 'init.seed' is set per replicate"),
        (["sweep", "--grid", "init.N=4", "--grid", "init.N=5", "--out",
          str(f["emptydir"] / "s")], 2, "--grid init.N is given twice"),
        (["sweep", "--grid", "init.N=4", "--seeds", "0", "--out", str(f["emptydir"] / "s")], 2,
         "seeds .* must be an integer"),
        (["sweep", "--grid", "init.N=4", "--workers", "0", "--out", str(f["emptydir"] / "s")],
         2, "--workers must be"),
        (["sweep", "--grid", "init.N=4", "--threads", "0", "--out", str(f["emptydir"] / "s")],
         2, "--threads must be"),
        (["sweep", "--grid", "init.N=4", "--out", str(f["foreign_sweep"])], 2,
         "manifest.json is not a wgflow sweep manifest"),
        (["sweep", "--grid", "init.N=4", "--executor", "dask", "--out",
          str(f["emptydir"] / "s")], 2, "--executor dask needs --scheduler"),
        (["study", "mnist", "--out", str(f["emptydir"] / "s")], 2, "mnist"),
        (["study", "paper", "--size", "huge", "--out", str(f["emptydir"] / "s")], 2, "huge"),
        (["compare", "--T", "inf"], 2, "argument --T: must be a finite number"),
        (["compare", "--N", "0"], 2, "argument --N: must be a finite number"),
        (["compare", "--N", "1000000000"], 2, "needs about .* of memory"),
        (["compare", "--T", "0.123"], 2, "T = 0.123 is not a whole number of time steps"),
        (["compare", "--teacher", "bogus"], 2, "argument --teacher: invalid choice"),
        (["bench", "--N", "0", "--no-sweep"], 2, "--N, --M and --d must be ≥ 1"),
        (["bench", "--backend", "tpu"], 2, "argument --backend: invalid choice"),
        (["config"], 2, "--default"),
    ]
    return cases


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


def _through_the_executable(argv) -> tuple:
    out = subprocess.run([sys.executable, "-m", "wgflow", *argv], capture_output=True,
                         text=True, timeout=300)
    return out.returncode, out.stdout, out.stderr


def _in_process(argv, capsys) -> tuple:
    """``main(argv)`` as the executable runs it, an escaping exception shown as a traceback."""
    trace = ""
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's refusals
        code = exit_.code
    except Exception:  # a leaked exception is the defect looked for
        code, trace = 1, traceback.format_exc()
    out = capsys.readouterr()
    return code, out.out, out.err + trace


def _executable_sample(cases) -> list:
    """The first case of every command, and every refusal of a file held by another process."""
    commands, sample = set(), []
    for argv, code, message in cases:
        if argv[0] not in commands or "in use by another" in message:
            commands.add(argv[0])
            sample.append((argv, code, message))
    return sample


def _failures(cases, outcomes) -> list:
    failures = []
    for (argv, code, message), (returncode, stdout, stderr) in zip(cases, outcomes,
                                                                   strict=True):
        errors = [line for line in stderr.splitlines() if "error:" in line]
        if (returncode != code or "Traceback" in stderr or len(errors) != 1
                or not re.search(message, errors[0]) or stdout):
            failures.append(f"{argv}: exit {returncode}, stderr {stderr!r}")
    return failures


@pytest.mark.slow
def test_bad_inputs_and_faults_in_process_and_through_the_executable(tmp_path, capsys):
    """Every case through ``main`` in this process; the first of each command and the locked
    files also through the real executable (its exit status, its top-level error handling)."""
    files = _workspace(tmp_path)
    cases = _cases(files)
    assert len(cases) >= 90
    sample = _executable_sample(cases)
    assert {argv[0] for argv, _, _ in sample} >= {"run", "resume", "info", "plot", "report",
                                                  "sweep", "study", "compare", "bench",
                                                  "config"}
    capsys.readouterr()
    with exclusive(lock_path(files["locked.h5"]), "a run file"):  # a run in progress
        before = _snapshot(tmp_path)
        in_process = [_in_process(argv, capsys) for argv, _, _ in cases]
        with ThreadPoolExecutor(2) as pool:
            executed = list(pool.map(_through_the_executable, [argv for argv, _, _ in sample]))
        after = _snapshot(tmp_path)
    failures = _failures(cases, in_process) + _failures(sample, executed)
    assert not failures, "\n".join(failures)
    assert after == before  # no file changed, none added or removed
