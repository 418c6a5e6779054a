"""The ``wgflow`` entry point runs the paper's problem with every scheme."""

import re
import subprocess
import sys

import pytest

from wgflow._text import plain
from wgflow.cli import COMMANDS, main
from wgflow.symmetry.schemes import SCHEMES


def test_default_run_prints_every_scheme(capsys):
    assert main(["compare", "--N", "6", "--T", "2"]) == 0
    rows = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert sorted(rows) == sorted(SCHEMES)
    # EA is confined to E^G exactly, vanilla SGD leaves it
    assert float(rows["EA"][1]) == 0.0
    assert float(rows["vanilla"][1]) > 0.0


@pytest.mark.parametrize(("option", "value"), [("--N", "0"), ("--T", "inf"), ("--T", "-1"),
                                               ("--T", "nan"), ("--seed", "-1")])
def test_bad_arguments_exit_with_a_message(capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        main(["compare", option, value])
    assert exit_.value.code == 2
    assert f"argument {option}: must be a finite number" in capsys.readouterr().err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "wgflow", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "resume" in out and "bench" in out


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_is_plain_text(command, capsys):
    """The descriptions come from docstrings: their reST roles and literals are made plain."""
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "usage: wgflow" in out
    assert "``" not in out and not re.search(r":[a-z]+:`", out), out


def test_plain_keeps_the_words():
    assert plain("see :func:`~wgflow.simulate` and ``--steps`` (``N·M``)") == \
        "see wgflow.simulate and --steps (N·M)"


def test_sweep_workers_give_their_blas_a_runs_threads(monkeypatch):
    """A process worker's numpy loads its BLAS with the run's thread count (read from the
    environment it was spawned with), not one thread per core; a value the user set stands."""
    import argparse
    import os

    from wgflow import cli

    for name in cli.BLAS_THREADS:  # setenv first: the test's end restores the original state
        monkeypatch.setenv(name, "0")
        monkeypatch.delenv(name)
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    args = argparse.Namespace(executor="processes", scheduler=None, workers=2, threads=None)
    context, executor, threads, cores = cli._executor(args)
    with context:
        seen = [executor.submit(os.getenv, name).result() for name in cli.BLAS_THREADS]
    assert threads == max(1, cli._cores() // 2) and cores == 2 * threads
    assert seen == [str(threads), "3"]


def test_the_command_line_loads_no_statistics_or_transport_package():
    """``scipy.stats`` (about 0.3 s) and POT (0.7–0.9 s with it) are loaded on use only: the
    quantiles come from ``scipy.special``, POT with the first large transport problem."""
    code = ("import sys, wgflow, wgflow.cli; "
            "print(sorted(m for m in ('scipy.stats', 'ot') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
