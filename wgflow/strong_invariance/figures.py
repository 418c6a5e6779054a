"""Figures and tables of the strong-invariance studies (``wgflow report DIR``).

- ``discover``: ``steps_<problem>.png`` (the first seed: per step the particles at the horizon
  in 3-D and edge-on, seen from ``E_j``: leaving ``E_0``, ``E_1``, …, staying in the final
  subspace), ``escape.png`` (the escape statistic against the step, every seed, with its
  threshold), and per search the dimensions of its subspaces and the principal angles to ``E^G`` in
  ``summary.md`` / ``summary.csv``;
- ``si-gap``: ``si_gap.png`` (the best risks over SI and WI laws per problem, and per problem
  the gap against the regularization scale with its extrapolation to ``s = 0`` and their
  confidence intervals), ``optima_<problem>.png`` (the particles of both optima with ``E^G``,
  at the smallest scale), and the risks and gaps per scale in the tables.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from .. import plots
from .discovery import Discovery
from .files import load
from .studies import read_study


def step_views(discovery: Discovery, figure=None):
    """Per step ``j`` (columns) the particles of the first replicate at the horizon: a 3-D view
    (top) and an edge-on view (bottom) in a frame whose first two axes span ``E_j`` (as far as
    its dimension allows) and whose last axis is the direction off ``E_j`` of largest spread
    (:func:`wgflow.plots.view_basis`). Returns the figure."""
    import matplotlib.pyplot as plt

    steps = discovery.steps
    fig = figure or plt.figure(figsize=(4.2 * len(steps), 8))
    for j, step in enumerate(steps):
        ax3 = fig.add_subplot(2, len(steps), j + 1, projection="3d")
        plots.particles_3d(step.run, step.basis, ax=ax3)
        verdict = "leave" if step.escaped else "stay in"
        ax3.set(title=f"step {j}: particles {verdict} E_{j} (dim {step.dim})",
                xlabel=f"e1 (E_{j})", ylabel=f"e2 (E_{j})", zlabel=f"e3 (⊥ E_{j})")
        ax2 = fig.add_subplot(2, len(steps), len(steps) + j + 1)
        plots.particles_edge_on(step.run, step.basis, ax=ax2)
        ax2.set(title=f"edge-on: escape {step.escape:.2e}, threshold {step.threshold:.2e}",
                xlabel=f"e1 (E_{j})", ylabel=f"e3 (⊥ E_{j})")
        ax2.legend([f"E_{j}", *(["teacher"] if step.run.teacher is not None else []),
                    "students"])
    fig.tight_layout()
    return fig


def escape_curves(searches: dict, ax=None):
    """The escape statistic against the step (filled: escaped, hollow: stayed) and the
    threshold (dashes), one colour per problem, every seed; ``searches``: ``name → list of
    Discovery``. Log scale."""
    if ax is None:
        import matplotlib.pyplot as plt
        ax = plt.figure(figsize=(6, 4)).add_subplot()
    for k, (name, found) in enumerate(searches.items()):
        colour = f"C{k}"
        for i, discovery in enumerate(found):
            j = np.arange(len(discovery.steps))
            escape = np.array([s.escape for s in discovery.steps])
            threshold = np.array([s.threshold for s in discovery.steps])
            escaped = np.array([s.escaped for s in discovery.steps])
            shift = j + 0.15 * (k - (len(searches) - 1) / 2) + 0.03 * (i - (len(found) - 1) / 2)
            ax.plot(shift, threshold, "_", ms=14, color=colour,
                    label=f"{name}: threshold d_j" if i == 0 else None)
            ax.scatter(shift[escaped], escape[escaped], color=colour,
                       label=f"{name}: escape statistic" if i == 0 else None)
            ax.scatter(shift[~escaped], escape[~escaped], facecolors="none",
                       edgecolors=colour)
    steps = max(len(d.steps) for found in searches.values() for d in found)
    ax.set(yscale="log", xlabel="step j", ylabel="escape RMD(ν_j, projection onto E_j)",
           xticks=range(steps),
           title="escape from E_j at the horizon (hollow: stayed)")
    ax.legend(fontsize="small")
    return ax


def gap_bars(gaps: dict, ax=None):
    """Per problem the mean best risks over SI and over WI laws at the smallest regularization
    scale (bars, replicates as dots) and the gap with its confidence interval (text, extrapolated
    to vanishing regularization when there are several scales); ``gaps``: ``name → SIGap``."""
    if ax is None:
        import matplotlib.pyplot as plt
        ax = plt.figure(figsize=(6, 4)).add_subplot()
    x = np.arange(len(gaps))
    smallest = [int(np.argmin(g.scales)) for g in gaps.values()]
    for offset, kind, colour in ((-0.2, "si", "tab:orange"), (0.2, "wi", "tab:blue")):
        risks = [getattr(g, f"{kind}_risks")[j] for g, j in zip(gaps.values(), smallest,
                                                                 strict=True)]
        ax.bar(x + offset, [r.mean() for r in risks], width=0.4, color=colour, alpha=0.6,
               label=f"best risk over {kind.upper()} laws")
        for i, r in enumerate(risks):
            ax.scatter(np.full(len(r), x[i] + offset), r, s=10, color="k")
    for i, g in enumerate(gaps.values()):
        at = "s → 0" if len(g.scales) > 1 else f"s = {g.scales[0]:g}"
        ax.annotate(f"gap ({at}) {g.gap:.2e}\n{g.level:.0%} CI [{g.interval[0]:.1e}, "
                    f"{g.interval[1]:.1e}]", (x[i], max(g.si_risks.max(), g.wi_risks.max())),
                    ha="center", va="bottom", fontsize="small")
    ax.set(xticks=x, xticklabels=[f"{name}\n(risks at s = {g.scales[j]:g})" for (name, g), j
                                  in zip(gaps.items(), smallest, strict=True)],
           yscale="log", ylabel="population risk", title="SI optimality gap")
    low, high = ax.get_ylim()
    ax.set_ylim(low, high * (high / low) ** 0.25)  # room for the annotations
    ax.legend(fontsize="small", loc="center right")
    return ax


def gap_extrapolation(gap, name: str, ax=None):
    """The gap of one problem against the regularization scale ``s`` (``τ, β`` multiplied by
    ``s``): per scale the replicates' differences (dots) and the mean with its confidence
    interval (error bars), the least-squares line to ``s = 0`` and the extrapolated gap with
    its interval (red), and 0 (dashes)."""
    if ax is None:
        import matplotlib.pyplot as plt
        ax = plt.figure(figsize=(5, 4)).add_subplot()
    scales, gaps, intervals = gap.scales, gap.gaps, gap.intervals
    for s, differences in zip(scales, gap.differences, strict=True):
        ax.scatter(np.full(len(differences), s), differences, s=10, color="0.6")
    ax.errorbar(scales, gaps, yerr=np.abs(intervals.T - gaps), fmt="o", color="k", capsize=3,
                label=f"gap at scale s, {gap.level:.0%} CI")
    low, high = gap.interval
    ax.errorbar([0.0], [gap.gap], yerr=[[gap.gap - low], [high - gap.gap]], fmt="s",
                color="tab:red", capsize=4,
                label="extrapolated to s = 0" if len(scales) > 1 else "gap")
    if len(scales) > 1:
        s = np.linspace(0.0, scales.max(), 50)
        ax.plot(s, np.polyval(np.polyfit(scales, gaps, 1), s), color="tab:red", lw=1)
    ax.axhline(0.0, color="0.3", ls="--", lw=0.8)
    ax.set(xlabel="regularization scale s (τ, β multiplied by s)",
           ylabel="Δ = R_SI − R_WI", title=f"{name}: gap {gap.gap:.2e} "
           f"[{low:.1e}, {high:.1e}]")
    ax.legend(fontsize="small")
    return ax


def gap_figure(gaps: dict):
    """:func:`gap_bars` and one :func:`gap_extrapolation` panel per problem, side by side;
    ``gaps``: ``name → SIGap``. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(gaps) + 1, figsize=(5.5 * (len(gaps) + 1), 4.5),
                             squeeze=False)
    gap_bars(gaps, axes[0, 0])
    for ax, (name, gap) in zip(axes[0, 1:], gaps.items(), strict=True):
        gap_extrapolation(gap, name, ax)
    fig.tight_layout()
    return fig


def _dimensions(found: Discovery) -> list[int]:
    """``dim E_j`` of every step, and of the final subspace when the last step escaped."""
    dims = [s.dim for s in found.steps]
    return [*dims, found.dim] if found.steps and found.steps[-1].escaped else dims


def _write_table(rows: list[dict], out: Path, title: str) -> list[Path]:
    keys = list(rows[0])
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, keys)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    (out / "summary.md").write_text(f"# Report: {title}\n\n" + "\n".join(lines) + "\n",
                                    encoding="utf-8")
    return [out / "summary.csv", out / "summary.md"]


def _save(fig, path: Path, written: list) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    written.append(path)


def write_study_report(directory) -> list[Path]:
    """Write ``DIR/report/`` for the strong-invariance study in ``directory``; return the
    files written."""
    study = read_study(directory)
    if study is None:
        raise ValueError(f"{directory} holds no strong-invariance study")
    directory = Path(directory)
    out = directory / "report"
    out.mkdir(exist_ok=True)
    results = {name: load(directory / name) for name in study["files"]}
    written, rows = [], []
    title = f"study {study['study']}, size {study['size']}"
    if study["study"] == "discover":
        searches = {}
        for file, found in results.items():
            problem, _, seed = file[:-3].rpartition("-seed")
            searches.setdefault(problem, []).append(found)
            angles = found.principal_angles
            rows.append({"problem": problem, "seed": int(seed),
                         "dims": "→".join(map(str, _dimensions(found))),
                         "dim": found.dim, "whole_space": found.whole_space,
                         "dim_EG": "" if found.eg_basis is None else found.eg_basis.shape[1],
                         "largest_angle": "" if angles is None else f"{angles.max():.3g}"})
        for problem, found in searches.items():
            _save(step_views(found[0]), out / f"steps_{problem}.png", written)
        _save(escape_curves(searches).figure, out / "escape.png", written)
    else:
        gaps = {file[:-3]: gap for file, gap in results.items()}
        for name, gap in gaps.items():
            rows += _gap_rows(name, gap)
            _save(optima(gap, name), out / f"optima_{name}.png", written)
        _save(gap_figure(gaps), out / "si_gap.png", written)
    return [*written, *_write_table(rows, out, title)]


def _gap_rows(name: str, gap) -> list[dict]:
    """One table row per regularization scale and, with several, one for ``s → 0``."""
    rows = [{"problem": name, "scale": f"{s:g}", "replicates": si.size,
             "risk_SI": f"{si.mean():.4e}", "risk_WI": f"{wi.mean():.4e}", "gap": f"{g:.4e}",
             "ci_low": f"{low:.4e}", "ci_high": f"{high:.4e}", "level": gap.level}
            for s, si, wi, g, (low, high) in zip(gap.scales, gap.si_risks, gap.wi_risks,
                                                gap.gaps, gap.intervals, strict=True)]
    if len(gap.scales) > 1:
        rows.append({**rows[0], "scale": "→ 0 (extrapolated)", "risk_SI": "", "risk_WI": "",
                     "gap": f"{gap.gap:.4e}", "ci_low": f"{gap.interval[0]:.4e}",
                     "ci_high": f"{gap.interval[1]:.4e}"})
    return rows


def optima(gap, name: str):
    """The particles of the SI and WI optima (first replicate, smallest regularization scale),
    3-D with ``E^G``."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(9, 4.5))
    for k, (run, kind) in enumerate(((gap.si_run, "SI"), (gap.wi_run, "WI"))):
        ax = fig.add_subplot(1, 2, k + 1, projection="3d")
        plots.particles_3d(run, gap.eg_basis, ax=ax)
        ax.set_title(f"{name}: optimum over {kind} laws")
    return fig

