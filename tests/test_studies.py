"""Built-in studies and reports, end to end at smoke size through the CLI; the log–log fit."""

import csv

import numpy as np
import pytest
from conftest import TOL
from scipy import stats

from wgflow import paper, sweep
from wgflow.cli import main
from wgflow.sweep import read_sweep, report, studies
from wgflow.sweep.report import loglog_fit


def rows(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_paper_study_smoke_and_its_report(tmp_path, capsys):
    assert main(["study", "paper", "--size", "smoke", "--out", str(tmp_path), "--workers",
                 "2", "--quiet"]) == 0
    assert studies.read_study(tmp_path) == {"study": "paper", "size": "smoke"}
    sizes = studies.definition("paper", "smoke")[1]["init.N"]
    sweep = read_sweep(tmp_path)
    assert sweep.counts() == {"complete": 3 * 4 * len(sizes) * 2}
    assert main(["report", str(tmp_path)]) == 0
    report = tmp_path / "report"
    names = {"summary.md", "summary.csv", "pairwise_rmd.csv", "rmd_to_EG_vs_N.png",
             "pairwise_rmd_vs_N.png", *(f"particles_{t}.png" for t in paper.TEACHERS)}
    assert names <= {p.name for p in report.iterdir()}
    assert set(capsys.readouterr().out.split()) == {str(report / n) for n in names}
    table = rows(report / "summary.csv")
    assert len(table) == 3 * 4 * len(sizes)
    for row in table:  # the paper's claim 4: FA and EA stay in E^G to rounding; vanilla leaves it
        distance = float(row["distance_to_EG_mean"])
        if row["run.scheme"] in ("FA", "EA"):
            assert distance < TOL["invariant"]
            assert float(row["rmd_to_EA_mean"]) < TOL["invariant"]
        if row["run.scheme"] == "vanilla":
            assert distance > TOL["visible"]
        assert row["runs"] == "2"
    summary = (report / "summary.md").read_text()
    assert "study paper, size smoke" in summary and "Log–log slopes" in summary


def test_mf_vs_sgd_study_smoke_and_its_report(tmp_path):
    assert main(["study", "mf-vs-sgd", "--size", "smoke", "--out", str(tmp_path), "--workers",
                 "2", "--quiet"]) == 0
    assert main(["report", str(tmp_path)]) == 0
    report = tmp_path / "report"
    assert (report / "mf_vs_sgd.png").is_file()
    base, grid, seeds = studies.definition("mf-vs-sgd", "smoke")
    table = rows(report / "summary.csv")
    assert [int(r["init.N"]) for r in table] == grid[0]["init.N"]
    for row in table:
        assert float(row["t"]) == pytest.approx(base["run.T"], rel=TOL["exact"])
        assert row["runs"] == str(seeds)
        assert row["rmd_method"] == "exact"
        for q in ("coupled_distance", "rmd_to_mf", "risk_gap"):
            assert np.isfinite(float(row[f"{q}_mean"])) and float(row[f"{q}_mean"]) > 0
    # SGD approaches the MF reference as N grows
    coupled = [float(r["coupled_distance_mean"]) for r in table]
    assert coupled[-1] < coupled[0]
    assert "coupled_distance" in (report / "summary.md").read_text()


def test_loglog_fit_recovers_a_power_law():
    n = np.array([10, 20, 50, 100, 200, 500] * 3, float)
    exact = loglog_fit(n, 3.0 * n ** -0.5)
    assert exact.slope == pytest.approx(-0.5, abs=TOL["exact"])
    assert exact.high - exact.low < TOL["exact"]
    noise = np.exp(np.random.default_rng(0).normal(0, 0.1, n.size))
    fit = loglog_fit(n, 3.0 * n ** -0.5 * noise)
    assert fit.low < -0.5 < fit.high and fit.points == n.size
    assert np.isnan(loglog_fit([1, 2], [1, 2]).low)
    with pytest.raises(ValueError, match="two or more distinct x"):
        loglog_fit([1, 1, 1], [1, 2, 3])


@pytest.mark.parametrize("args, message", [
    (["study", "paper", "--size", "huge"], "size (--size) must be one of"),
    (["study", "nope"], "study must be one of"),
    (["report"], "has no manifest.json"),
])
def test_bad_studies_exit_2_naming_the_parameter(tmp_path, capsys, args, message):
    target = [str(tmp_path)] if args == ["report"] else ["--out", str(tmp_path)]
    assert main([*args, *target]) == 2
    assert message in capsys.readouterr().err


def test_a_directory_holds_one_study(tmp_path):
    sweep.run_sweep({"run.T": 1.0, "run.frames": 2, "run.backend": "numpy"}, {"init.N": [4]},
                    tmp_path, progress=False)
    with pytest.raises(ValueError, match="holds another sweep or study"):
        studies.run_study("paper", "smoke", tmp_path)
    assert studies.read_study(tmp_path) is None  # nothing of the study was written


def test_report_of_a_partly_finished_mf_vs_sgd_study(tmp_path, capsys):
    base, grid, seeds = studies.definition("mf-vs-sgd", "smoke")
    grid = [{**grid[0], "init.N": grid[0]["init.N"][:1]}, grid[1]]  # one N complete so far
    label = {"study": "mf-vs-sgd", "size": "smoke"}
    sweep.run_sweep(base, grid, tmp_path, seeds=seeds, label=label, progress=False)
    assert main(["report", str(tmp_path)]) == 0
    fits = (tmp_path / "report" / "summary.md").read_text().split("Log–log slopes")[1]
    assert "nan" in fits  # no slope from a single N, and no crash
    table = rows(tmp_path / "report" / "summary.csv")
    assert len(table) == 1 and float(table[0]["rmd_at_start_mean"]) > 0
    # without a complete reference the report says so
    manifest = sweep.read_sweep(tmp_path)
    for entry in manifest.runs:
        if entry["params"]["run.dynamics"] == "mf":
            entry["status"] = "failed"
    sweep.write_manifest(manifest)
    assert main(["report", str(tmp_path)]) == 2
    assert "no MF reference run of this study is complete" in capsys.readouterr().err


def test_replicate_fit_uses_the_spread_between_replicates():
    n = np.array([10, 20, 50, 100, 200])
    slopes = (-0.4, -0.5, -0.6)
    points = [(r, x, 2.0 * x ** b) for r, b in enumerate(slopes) for x in n]
    fit = report.replicate_fit(points)
    half = stats.t.ppf(0.975, 2) * np.std(slopes, ddof=1) / np.sqrt(3)
    assert fit.slope == pytest.approx(-0.5, abs=TOL["exact"])
    assert (fit.low, fit.high) == pytest.approx((-0.5 - half, -0.5 + half), abs=TOL["exact"])
    assert report.replicate_fit(points[:5]).slope == pytest.approx(-0.4, abs=TOL["exact"])
