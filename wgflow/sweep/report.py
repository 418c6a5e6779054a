"""Reports of sweeps and studies: figures (PNG) and a summary table (markdown and CSV).

``write_report(DIR)`` reads ``DIR/manifest.json`` (runs, statuses and the study's label) and the
complete runs' files, and writes into ``DIR/report/``:

- every sweep: ``summary.csv`` / ``summary.md``, one row per grid point: the number of complete
  replicates (and of diverged and failed ones) and the final value of each observable, mean ±
  standard deviation over the complete replicates, and how it was computed (``<name>_method``:
  :func:`method_label` of the replicates' methods, which says ``mixed`` when they differ;
  ``summary.md`` notes every column whose rows differ in method);
- the ``paper`` study, besides: the RMD of the final particles to the EA run of the same
  teacher, N and replicate (column ``rmd_to_EA``); ``pairwise_rmd.csv``; figures
  ``rmd_to_EG_vs_N.png`` (RMD to ``E^G`` against N per scheme, one panel per teacher, the paper's
  layout), ``pairwise_rmd_vs_N.png`` and ``particles_<teacher>.png`` (largest N, replicate 0: the
  ``E^G`` plane in 3-D and an edge-on view per scheme); fitted log–log slopes of the distance to
  ``E^G`` against N;
- the ``mf-vs-sgd`` study: one row per N at the final time T: the coupled distance
  ``sqrt(mean_i |θ_i^SGD(T) − θ̄_i(T)|²)`` (``θ̄_i``: the reference particle started at the same
  point; it bounds ``W₂`` between the SGD particles and those N reference particles, not the
  whole reference law), ``RMD(μ^N_T, μ^ref_T)`` beside its value at ``t = 0`` (the sampling
  error of the N starting points, which the SGD error adds to) and the risk gap
  ``|R(μ^N_T) − R(μ^ref_T)|``; ``mf_vs_sgd.png`` on log–log axes with the fitted slopes.
- the ``particles-vs-pde`` study: one row per N: the exact ``W₂`` (POT, the density's cells as
  atoms at their centres weighted by their masses) between the particles in ``E^G``
  coordinates and the PDE density of their replicate at the last time both recorded, beside
  its value at ``t = 0`` (the sampling error of the start, and the floor of the cells' size);
  ``particles_vs_pde.png``: both against N on log–log axes with the fitted slopes, and the
  density with the largest N's particles.
- the ``mirror`` study (``DIR/mirror.json``, no manifest):
  :func:`wgflow.mirror.figures.write_mirror_report`, the sweeps' distance ratios against the
  knob with the predicted thresholds, atoms and singular values over time, and a table of
  predicted against observed thresholds.

Slopes are least squares of ``log y`` on ``log N`` (points with ``y > 0``), fitted per replicate:
a replicate's runs share their seeds, so its points are not independent. The slope reported is
the mean over replicates with a t-based 95% confidence interval from their spread (``K − 1``
degrees of freedom); with one replicate, the regression's own interval (``n − 2``). Spreads
are standard deviations over replicates (``ddof = 1``; 0 for a single replicate). Distances
say whether they are exact or sliced (``method``: :func:`wgflow.diagnostics.rmd` is exact up to
``EXACT_MAX`` atoms), in the tables and in the figures (hollow markers and a legend note where
sliced: ``SW₂ ≤ W₂``, so sliced and exact values are not comparable).
"""

from __future__ import annotations

import csv
import itertools
from collections import Counter, defaultdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import stats

from .. import diagnostics, paper, plots
from ..files.h5md import read_eg_basis
from ..pde import w2_grid
from . import read_sweep
from .studies import PAPER_SCHEMES

#: values below this are drawn at this height on log axes (exact zeros: EA, FA)
LOG_FLOOR = 1e-17


class LogFit(NamedTuple):
    """``log y ≈ intercept + slope · log x``; ``low, high``: the confidence interval of the
    slope (NaN with fewer than 3 points); ``points``: the number of points fitted."""

    slope: float
    intercept: float
    low: float
    high: float
    points: int


def loglog_fit(x, y, level: float = 0.95) -> LogFit:
    """Least-squares slope of ``log y`` against ``log x`` over the points with ``y > 0``."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = y > 0
    lx, ly = np.log(x[keep]), np.log(y[keep])
    if len(lx) < 2 or np.ptp(lx) == 0:
        raise ValueError("a log–log fit needs positive values at two or more distinct x")
    fit = stats.linregress(lx, ly)
    half = (stats.t.ppf(0.5 + level / 2, len(lx) - 2) * fit.stderr if len(lx) > 2
            else np.nan)
    return LogFit(fit.slope, fit.intercept, fit.slope - half, fit.slope + half, len(lx))


def replicate_fit(points, level: float = 0.95) -> LogFit:
    """The log–log slope over replicates from ``points`` ``(replicate, x, y)``: mean of the
    per-replicate slopes with a t interval from their spread (the module docstring);
    ``points``: the replicates with two or more distinct ``x`` where ``y > 0``."""
    groups = defaultdict(list)
    for replicate, x, y in points:
        if y > 0:
            groups[replicate].append((x, y))
    fits = [loglog_fit(*zip(*g, strict=True), level=level) for g in groups.values()
            if len({x for x, _ in g}) >= 2]
    if not fits:
        raise ValueError("a log–log fit needs positive values at two or more distinct N")
    if len(fits) == 1:
        return fits[0]
    slopes = np.array([f.slope for f in fits])
    half = stats.t.ppf(0.5 + level / 2, len(fits) - 1) * slopes.std(ddof=1) / np.sqrt(len(fits))
    return LogFit(float(slopes.mean()), float(np.mean([f.intercept for f in fits])),
                  float(slopes.mean() - half), float(slopes.mean() + half),
                  sum(f.points for f in fits))


def _mean_std(values) -> tuple[float, float]:
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def method_label(methods) -> str:
    """One cell for the methods of the values averaged in it: the method when they agree,
    ``"mixed: 2 exact, 1 sliced"`` when they do not."""
    counts = Counter(methods)
    if len(counts) == 1:
        return next(iter(counts))
    return "mixed: " + ", ".join(f"{n} {m}" for m, n in sorted(counts.items()))


def _method_notes(rows: list[dict]) -> str:
    """Markdown notes on the ``*_method`` columns whose rows differ, or that mix methods."""
    notes = []
    columns = dict.fromkeys(k for row in rows for k in row if k.endswith("method"))
    for col in columns:
        labels = [row[col] for row in rows if col in row]
        mixed = sum(label.startswith("mixed") for label in labels)
        if mixed:
            notes.append(f"- `{col}`: in {mixed} row(s) the replicates were computed by "
                         "different methods (the cell says which); their mean combines them.")
        if len(set(labels)) > 1:
            notes.append(f"- `{col}` differs between rows ({', '.join(sorted(set(labels)))}): "
                         "values computed by different methods are not comparable (sliced W₂ "
                         "is a lower bound on W₂).")
    return "\n".join(notes)


def _is_sliced(label: str) -> bool:
    return "sliced" in label


def _complete(sweep, frames: slice) -> list:
    """``(entry, result)`` of every complete run (its ``frames``), in plan order."""
    return [(e, sweep.load(e, frames)) for e in sweep.runs if e["status"] == "complete"]


def _summary_rows(sweep, runs, extra=None) -> list[dict]:
    """One row per grid point: the numbers of complete (``runs``), diverged and failed
    replicates, and the final observables of the complete ones (and the ``extra`` values
    ``{run id: {name: value}}``, with their count ``<name>_n`` where some are missing), mean
    and std over replicates, each with its ``<name>_method`` (a value that is a
    :class:`wgflow.diagnostics.Distance` brings its own method)."""
    groups = defaultdict(list)
    for entry, result in runs:
        groups[tuple(entry["params"].items())].append((entry, result))
    outcomes = Counter((tuple(e["params"].items()), e["status"]) for e in sweep.runs)
    rows = []
    for point, members in groups.items():
        row = {**dict(point), "runs": len(members), "diverged": outcomes[point, "diverged"],
               "failed": outcomes[point, "failed"]}
        values, methods = defaultdict(list), defaultdict(list)
        for entry, result in members:
            for name, series in result.observables.items():
                if np.ndim(series[-1]):  # a PDE run's mean and second moment matrix
                    continue
                values[name].append(series[-1])
                methods[name].append(result.method(name))
            for name, value in (extra or {}).get(entry["id"], {}).items():
                values[name].append(float(value))
                if isinstance(value, diagnostics.Distance):
                    methods[name].append(value.method)
        for name, vals in values.items():
            row[f"{name}_mean"], row[f"{name}_std"] = _mean_std(vals)
            if methods[name]:
                row[f"{name}_method"] = method_label(methods[name])
            if len(vals) != len(members):
                row[f"{name}_n"] = len(vals)
        rows.append(row)
    return rows


def _write_csv(rows: list[dict], path: Path) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def _cell(value) -> str:
    return f"{value:.3e}" if isinstance(value, float) else str(value)


def _markdown(rows: list[dict]) -> str:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    lines += ["| " + " | ".join(_cell(row.get(f, "")) for f in fields) + " |" for row in rows]
    return "\n".join(lines)


def _band(ax, x, mean, std, label, methods=None, **style):
    """Mean line with a shaded ± std band, clipped at :data:`LOG_FLOOR`; the points whose
    ``methods`` label says sliced are hollow and the legend lists their x."""
    x, mean, std = np.asarray(x), np.asarray(mean), np.asarray(std)
    sliced = np.array([_is_sliced(m) for m in methods]) if methods else np.zeros(len(x), bool)
    if sliced.any():
        label = f"{label} (sliced W₂ at N = {', '.join(str(v) for v in x[sliced])})"
    line, = ax.plot(x, np.maximum(mean, LOG_FLOOR), marker="o", label=label, **style)
    if sliced.any():
        ax.plot(x[sliced], np.maximum(mean[sliced], LOG_FLOOR), "o", markerfacecolor="white",
                color=line.get_color())
    ax.fill_between(x, np.maximum(mean - std, LOG_FLOOR), np.maximum(mean + std, LOG_FLOOR),
                    color=line.get_color(), alpha=0.2)
    return line


def _save(fig, path: Path, written: list) -> None:
    import matplotlib.pyplot as plt
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    written.append(path)


# ---------------------------------------------------------------------------------------------
# the paper study

#: the teacher label of a paper study run on a config's problem
CONFIG_TEACHER = "config"


def _by_key(runs, *keys) -> dict:
    """``{(values of keys..., replicate): (entry, result)}``."""
    return {(*(e["params"][k] for k in keys), e["replicate"]): (e, r) for e, r in runs}


def scheme_distances(runs) -> list[dict]:
    """RMD between the final particles of every pair of schemes, per teacher, N, replicate."""
    index = _by_key(runs, "problem.teacher", "init.N", "run.scheme")
    rows = []
    for (teacher, n, scheme_a, rep), (_, res_a) in index.items():
        for scheme_b in PAPER_SCHEMES[PAPER_SCHEMES.index(scheme_a) + 1:]:
            other = index.get((teacher, n, scheme_b, rep))
            if other is not None:
                rmd = diagnostics.rmd(res_a.final, other[1].final)
                rows.append({"problem.teacher": teacher, "init.N": n, "pair": (scheme_a, scheme_b),
                             "replicate": rep, "rmd": rmd.value, "method": rmd.method})
    return rows


def _pairwise_rows(distances) -> list[dict]:
    groups = defaultdict(list)
    for d in distances:
        groups[(d["problem.teacher"], d["init.N"], d["pair"], d["method"])].append(d["rmd"])
    return [{"problem.teacher": t, "init.N": n, "pair": "-".join(p), "method": method,
             "runs": len(v), **dict(zip(("rmd_mean", "rmd_std"), _mean_std(v), strict=True))}
            for (t, n, p, method), v in sorted(groups.items())]


def _rmd_to_ea(runs, distances) -> dict:
    """``{run id: {"rmd_to_EA": Distance}}`` (:class:`wgflow.diagnostics.Distance`, with its
    method; EA runs: 0 in closed form)."""
    index = _by_key(runs, "problem.teacher", "init.N", "run.scheme")
    out = {e["id"]: {"rmd_to_EA": diagnostics.Distance(0.0, "closed-form")} for e, _ in runs
           if e["params"]["run.scheme"] == "EA"}
    for d in distances:
        if d["pair"][1] == "EA":
            entry = index[(d["problem.teacher"], d["init.N"], d["pair"][0], d["replicate"])][0]
            out[entry["id"]] = {"rmd_to_EA": diagnostics.Distance(d["rmd"], d["method"])}
    return out


def _rows_of(rows, **match) -> list[dict]:
    """The rows whose keys equal ``match``, sorted by ``init.N``."""
    return sorted((r for r in rows if all(r[k] == v for k, v in match.items())),
                  key=lambda r: r["init.N"])


def _paper_figures(summary, pairwise, runs, sweep, out: Path, written: list) -> None:
    import matplotlib.pyplot as plt

    teachers = _teachers(runs)

    panels = [("rmd_to_EG_vs_N.png", summary, "run.scheme", PAPER_SCHEMES, "distance_to_EG",
               "distance_to_EG_method", "RMD(μ_T, (P_G)#μ_T)"),
              ("pairwise_rmd_vs_N.png", pairwise, "pair",
               ["-".join(p) for p in itertools.combinations(PAPER_SCHEMES, 2)], "rmd", "method",
               "RMD between schemes at T")]
    for name, rows, key, labels, value, method, ylabel in panels:
        fig, axes = plt.subplots(1, len(teachers), figsize=(13, 3.8), sharey=True, squeeze=False)
        axes = axes[0]
        for ax, teacher in zip(axes, teachers, strict=True):
            for label in labels:
                sel = _rows_of(rows, **{"problem.teacher": teacher, key: label})
                if sel:
                    _band(ax, [r["init.N"] for r in sel], [r[f"{value}_mean"] for r in sel],
                          [r[f"{value}_std"] for r in sel], label,
                          [r.get(method, "unknown") for r in sel])
            ax.set(xscale="log", yscale="log", xlabel="N", title=f"teacher {teacher}")
        used = sorted({r.get(method, "unknown") for r in rows})
        axes[0].set_ylabel(f"{ylabel} ({', '.join(used)})")
        axes[-1].legend(fontsize=8)
        fig.suptitle(f"mean ± std over replicates; zeros drawn at {LOG_FLOOR:g}"
                     + ("; hollow markers: sliced W₂, a lower bound"
                        if any(_is_sliced(m) for m in used) else ""), fontsize=9)
        _save(fig, out / name, written)
    _particle_figures(runs, sweep, out, written)


def _particle_figures(runs, sweep, out: Path, written: list) -> None:
    import matplotlib.pyplot as plt

    index = _by_key(runs, "problem.teacher", "run.scheme", "init.N")
    for teacher in _teachers(runs):
        sizes = [n for (t, _, n, rep) in index if t == teacher and rep == 0]
        if not sizes:
            continue
        fig = plt.figure(figsize=(4 * len(PAPER_SCHEMES), 8))
        for i, scheme in enumerate(PAPER_SCHEMES):
            found = index.get((teacher, scheme, max(sizes), 0))
            if found is None:
                continue
            entry, result = found
            basis = read_eg_basis(sweep.directory / entry["path"])
            ax3 = plots.particles_3d(result, basis,
                                     ax=fig.add_subplot(2, len(PAPER_SCHEMES), i + 1,
                                                        projection="3d"))
            ax3.set_title(f"{scheme}, N = {max(sizes)}, t = {result.times[-1]:.3g}")
            edge = plots.particles_edge_on(result, basis, ax=fig.add_subplot(
                2, len(PAPER_SCHEMES), len(PAPER_SCHEMES) + i + 1))
            edge.set_title(f"{scheme}: edge-on view of E^G")
        fig.suptitle(f"teacher {teacher}: e1, e2 span E^G, e3 ⊥ E^G (largest student spread)")
        _save(fig, out / f"particles_{teacher}.png", written)


def _paper_fits(runs) -> list[dict]:
    """Slopes of the final distance to ``E^G`` against N, per teacher, for the schemes that
    can leave ``E^G`` (vanilla, DA; FA and EA stay in it to rounding)."""
    rows = []
    for teacher, scheme in itertools.product(_teachers(runs), ("vanilla", "DA")):
        sel = [(e["replicate"], e["params"]["init.N"], r.observables["distance_to_EG"][-1])
               for e, r in runs if e["params"]["problem.teacher"] == teacher
               and e["params"]["run.scheme"] == scheme]
        rows.append({"problem.teacher": teacher, "run.scheme": scheme,
                     "quantity": "distance_to_EG", **_fit_columns(sel)})
    return rows


def _fit_columns(points) -> dict:
    """The :func:`replicate_fit` of ``points`` as table columns (NaN where there is none:
    fewer than two N complete)."""
    try:
        fit = replicate_fit(points)
    except ValueError:
        fit = LogFit(np.nan, np.nan, np.nan, np.nan, 0)
    return {"slope": fit.slope, "ci_low": fit.low, "ci_high": fit.high, "points": fit.points,
            "intercept": fit.intercept}


def _teachers(runs) -> list:
    """The teachers of the runs, in the paper's order (one, ``CONFIG_TEACHER``, on a config)."""
    present = {e["params"]["problem.teacher"] for e, _ in runs}
    return [t for t in (*paper.TEACHERS, CONFIG_TEACHER) if t in present]


def _paper_report(sweep, runs, out: Path, written: list) -> tuple[list, str]:
    # a study on a config's problem has no teacher grid: its runs share the config's teacher
    runs = [({**e, "params": {"problem.teacher": CONFIG_TEACHER, **e["params"]}}, r)
            for e, r in runs]
    distances = scheme_distances(runs)
    summary = _summary_rows(sweep, runs, _rmd_to_ea(runs, distances))
    pairwise = _pairwise_rows(distances)
    fits = _paper_fits(runs)
    _write_csv(pairwise, out / "pairwise_rmd.csv")
    written.append(out / "pairwise_rmd.csv")
    _paper_figures(summary, pairwise, runs, sweep, out, written)
    text = ("## Pairwise RMD between schemes (final particles)\n\n" + _markdown(pairwise)
            + "\n\n## Log–log slopes of the distance to E^G against N (95% CI)\n\n"
            + (_markdown(fits) if fits else "(fewer than two N)"))
    return summary, text


# ---------------------------------------------------------------------------------------------
# the mf-vs-sgd study

MF_QUANTITIES = ("coupled_distance", "rmd_to_mf", "risk_gap")


def _paired(runs, key: str, reference, compared, what: str):
    """``(entry, result, reference result)`` for each run with ``params[key] == compared``
    whose replicate has a reference run (``params[key] == reference``)."""
    references = {e["replicate"]: r for e, r in runs if e["params"][key] == reference}
    if not references:
        raise ValueError(f"no {what} reference run of this study is complete yet: run the "
                         "study again to finish it, then report")
    for entry, res in runs:
        ref = references.get(entry["replicate"])
        if entry["params"][key] == compared and ref is not None:
            yield entry, res, ref


def sgd_against_mf(runs) -> list[dict]:
    """Per SGD run at the last MF time it shares with the reference of its replicate: the
    coupled distance, the RMD and the risk gap (module docstring)."""
    rows = []
    for entry, res, ref in _paired(runs, "run.dynamics", "mf", "sgd", "MF"):
        n = res.particles.shape[1]
        if not np.array_equal(res.particles[0], ref.particles[0][:n]):
            raise ValueError(f"run {entry['id']} and its MF reference do not share their start "
                             "(init.law and init.seed must match)")
        i, j = _last_common_frame(res.times, ref.times)
        sgd, mf = res.particles[i], ref.particles[j]
        rmd = diagnostics.rmd(sgd, mf)
        rows.append({"init.N": n, "replicate": entry["replicate"], "t": float(res.times[i]),
                     "coupled_distance": float(np.sqrt(np.mean(np.sum((sgd - mf[:n]) ** 2, 1)))),
                     "rmd_to_mf": rmd.value, "rmd_method": rmd.method,
                     "risk_method": method_label([res.method("risk"), ref.method("risk")]),
                     "rmd_at_start": diagnostics.rmd(res.particles[0], ref.particles[0]).value,
                     "risk_gap": abs(res.observables["risk"][i] - ref.observables["risk"][j])})
    return rows


def _last_common_frame(times, ref_times) -> tuple[int, int]:
    """Indices of the last frame time the two runs share (to 1e-9)."""
    close = np.isclose(times[:, None], ref_times[None, :], rtol=0, atol=1e-9)
    pairs = np.argwhere(close)
    if len(pairs) < 2:  # frame 0 is always shared
        raise ValueError("the SGD runs and the MF reference share no frame time after t = 0: "
                         "choose run.T, run.frames, N and the reference's run.dt so that T·N "
                         "and T/dt are multiples of run.frames")
    return tuple(pairs[-1])


def _mf_report(runs, out: Path, written: list) -> tuple[list, str]:
    import matplotlib.pyplot as plt

    points = sgd_against_mf(runs)
    by_n = defaultdict(list)
    for p in points:
        by_n[p["init.N"]].append(p)
    summary = [{"init.N": n, "t": group[0]["t"], "runs": len(group),
                "rmd_method": method_label([g["rmd_method"] for g in group]),
                "risk_method": method_label([g["risk_method"] for g in group]),
                **{f"{q}_{s}": v for q in (*MF_QUANTITIES, "rmd_at_start")
                   for s, v in zip(("mean", "std"), _mean_std([g[q] for g in group]),
                                   strict=True)}}
               for n, group in sorted(by_n.items())]
    fits = []
    fig, axes = plt.subplots(1, len(MF_QUANTITIES), figsize=(13, 3.8))
    for ax, q in zip(axes, MF_QUANTITIES, strict=True):
        fits.append(_band_and_slope(ax, summary, points, q, "mean ± std",
                                    [r["rmd_method"] for r in summary]
                                    if q == "rmd_to_mf" else None))
        how = {"rmd_to_mf": "rmd_method", "risk_gap": "risk_method"}.get(q)
        used = f" ({', '.join(sorted({r[how] for r in summary}))})" if how else ""
        ax.set(xscale="log", yscale="log", xlabel="N",
               title=f"{q} at t = {summary[0]['t']:g}{used}")
        ax.legend(fontsize=8)
    _save(fig, out / "mf_vs_sgd.png", written)
    return summary, "## Log–log slopes against N (95% CI)\n\n" + _markdown(fits)


def _band_and_slope(ax, summary, points, q: str, label: str, methods=None) -> dict:
    """Draw the mean ± std of ``q`` against N (``summary`` rows) with its fitted log–log slope
    over the replicates (``points``); return the fit with ``quantity``."""
    ns = np.array([r["init.N"] for r in summary])
    line = _band(ax, ns, [r[f"{q}_mean"] for r in summary], [r[f"{q}_std"] for r in summary],
                 label, methods)
    fit = _fit_columns([(p["replicate"], p["init.N"], p[q]) for p in points])
    if fit["points"]:
        ax.plot(ns, np.exp(fit["intercept"]) * ns ** fit["slope"], "--", color=line.get_color(),
                label=f"slope {fit['slope']:.2f} [{fit['ci_low']:.2f}, {fit['ci_high']:.2f}]")
    return {"quantity": q, **fit}


# ---------------------------------------------------------------------------------------------
# the particles-vs-pde study

PDE_QUANTITIES = ("w2_to_pde", "w2_at_start")


def particles_against_pde(runs) -> list[dict]:
    """Per particle run: ``W₂`` to the PDE density of its replicate at the last MF time both
    recorded, and at ``t = 0``."""
    rows = []
    for entry, res, ref in _paired(runs, "run.solver", "pde", "particles", "PDE"):
        i, j = _last_common_frame(res.times, ref.times)
        rows.append({"init.N": res.particles.shape[1], "replicate": entry["replicate"],
                     "t": float(res.times[i]), "method": "exact",
                     "w2_to_pde": w2_grid(plots.grid_coordinates(ref, res.particles[i]), ref, j),
                     "w2_at_start": w2_grid(plots.grid_coordinates(ref, res.particles[0]), ref,
                                            0)})
    return rows


def _pde_report(runs, out: Path, written: list) -> tuple[list, str]:
    import matplotlib.pyplot as plt

    points = particles_against_pde(runs)
    by_n = defaultdict(list)
    for p in points:
        by_n[p["init.N"]].append(p)
    summary = [{"init.N": n, "t": group[0]["t"], "runs": len(group), "method": "exact",
                **{f"{q}_{s}": v for q in PDE_QUANTITIES
                   for s, v in zip(("mean", "std"), _mean_std([g[q] for g in group]),
                                   strict=True)}}
               for n, group in sorted(by_n.items())]
    fig, (ax, picture) = plt.subplots(1, 2, figsize=(11, 4.2))
    fits = [_band_and_slope(ax, summary, points, q, label)
            for q, label in zip(PDE_QUANTITIES, (f"at t = {summary[0]['t']:g}", "at t = 0"),
                                strict=True)]
    ax.set(xscale="log", yscale="log", xlabel="N", ylabel="exact W₂(particles, PDE density)",
           title="particle MF flow against the grid PDE (E^G coordinates)")
    ax.legend(fontsize=8)
    largest = max((e["params"]["init.N"], e["replicate"] == 0, e, r) for e, r in runs
                  if e["params"]["run.solver"] == "particles")[2:]
    reference = next(r for e, r in runs if e["params"]["run.solver"] == "pde"
                     and e["replicate"] == largest[0]["replicate"])
    i, j = _last_common_frame(largest[1].times, reference.times)
    plots.density(reference, j, plots.grid_coordinates(reference, largest[1].particles[i]),
                  ax=picture)
    _save(fig, out / "particles_vs_pde.png", written)
    return summary, "## Log–log slopes against N (95% CI)\n\n" + _markdown(fits)


# ---------------------------------------------------------------------------------------------

def write_report(directory) -> list[Path]:
    """Write the report of the sweep or study in ``directory``; return the files written."""
    from ..strong_invariance import figures, studies  # their studies are not sweeps

    if studies.read_study(directory) is not None:
        return figures.write_study_report(directory)

    from ..mirror.study import read_mirror_study

    mirror = read_mirror_study(directory)
    if mirror is not None:  # the mirror study is no sweep: its own record and figures
        from ..mirror.figures import write_mirror_report
        return write_mirror_report(mirror, Path(directory) / "report")
    sweep = read_sweep(directory)
    study = sweep.description.get("label")  # the built-in study, None for a sweep
    kind = study["study"] if study else None
    # final values only, except where frames are matched in time: a full study's runs together
    # would not fit in memory
    runs = _complete(sweep, slice(None) if kind in ("mf-vs-sgd", "particles-vs-pde")
                     else slice(-1, None))
    if not runs:
        raise ValueError(f"{directory} has no complete run yet; run the sweep first")
    out = sweep.directory / "report"
    out.mkdir(exist_ok=True)
    written = []
    if kind == "paper":
        summary, extra = _paper_report(sweep, runs, out, written)
    elif kind == "mf-vs-sgd":
        summary, extra = _mf_report(runs, out, written)
    elif kind == "particles-vs-pde":
        summary, extra = _pde_report(runs, out, written)
    else:
        summary, extra = _summary_rows(sweep, runs), ""
    title = f"study {kind}, size {study['size']}" if study else "sweep"
    counts = ", ".join(f"{n} {s}" for s, n in sweep.counts().items())
    _write_csv(summary, out / "summary.csv")
    notes = _method_notes(summary)
    (out / "summary.md").write_text(
        f"# Report: {title}\n\nRuns: {counts}. Final values, mean and std over replicates.\n\n"
        + _markdown(summary) + ("\n\nMethods:\n\n" + notes if notes else "")
        + ("\n\n" + extra if extra else "") + "\n", encoding="utf-8")
    return [*written, out / "summary.csv", out / "summary.md"]
