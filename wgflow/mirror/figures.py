"""Figures and tables of the ``mirror`` study (:mod:`wgflow.mirror.study`); matplotlib is
imported here only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: smallest distance ratio drawn (a run that reached exactly 0 is drawn there)
RATIO_FLOOR = 1e-30


def sweep_axes(record: dict, ax=None):
    """The distance ratio of a sweep (``record``: :meth:`TransitionSweep.as_record`) against
    the swept knob: collapsed runs as dots, the others as squares, diverged runs as crosses at
    the top; the collapse criterion dashed and the predicted threshold dotted. Returns the
    axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 3.2))[1]
    rows = record["rows"]
    x = np.array([r["value"] for r in rows])
    ratio = np.array([r["ratio"] for r in rows])
    collapsed = np.array([r["collapsed"] for r in rows])
    finite = np.isfinite(ratio)
    shown = np.maximum(np.where(finite, ratio, np.nan), RATIO_FLOOR)
    top = max(10.0, 10 * np.nanmax(shown, initial=1.0))
    ax.semilogy(x[finite], shown[finite], "k-", lw=0.8)
    ax.semilogy(x[collapsed], shown[collapsed], "o", color="C0", label="collapses")
    ax.semilogy(x[~collapsed & finite], shown[~collapsed & finite], "s", color="C3",
                label="does not")
    if not finite.all():
        ax.semilogy(x[~finite], np.full((~finite).sum(), top), "x", color="C3",
                    label="diverged")
    ax.axhline(record["criterion"], color="0.5", ls="--", lw=0.8, label="collapse criterion")
    if np.isfinite(record["predicted"]):
        ax.axvline(record["predicted"], color="C2", ls=":", label="predicted threshold")
    ax.set_xlabel(record["knob"])
    ax.set_ylabel(f"distance ratio (floor {RATIO_FLOOR:g})")
    ax.set_title(record["problem"], fontsize=8)
    ax.legend(fontsize=7)
    return ax


def atoms_axes(rows: list[dict], ax=None):
    """Distinct atoms against MF time, one line per weight decay; returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 3.2))[1]
    for row in rows:
        ax.plot(row["times"], row["atoms"], marker=".", label=f"τ = {row['tau']:g}")
    ax.set_xlabel("MF time t")
    ax.set_ylabel("distinct atoms")
    ax.legend(fontsize=7)
    return ax


def low_rank_axes(rows: list[dict], ax=None):
    """Singular values of ``W`` against the step, solid for ``UVᵀ``, dashed for the residual
    model; returns the axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(4.5, 3.2))[1]
    for row, style in zip(rows, ("-", "--"), strict=False):
        sv = np.maximum(np.array(row["singular_values"]), 1e-300)
        ax.semilogy(row["steps"], sv, style, lw=1)
        ax.plot([], [], "k" + style, label=f"W = {row['model']} (rank {row['rank']})")
    ax.set_ylim(1e-12, None)
    ax.set_xlabel("gradient step")
    ax.set_ylabel("singular values of W")
    ax.legend(fontsize=7)
    return ax


def write_mirror_report(record: dict, out: Path) -> list[Path]:
    """Figures (PNG) and ``summary.md`` of the study ``record`` into ``out``."""
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for k, sweep in enumerate(record["sweeps"]):
        fig, ax = plt.subplots(figsize=(4.5, 3.2), layout="constrained")
        sweep_axes(sweep, ax)
        written.append(out / f"sweep_{k}_{sweep['knob'].replace(' ', '_')}.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    for name, draw, rows in (("atoms", atoms_axes, record["atoms"]),
                             ("low_rank", low_rank_axes, record["low_rank"])):
        fig, ax = plt.subplots(figsize=(4.5, 3.2), layout="constrained")
        draw(rows, ax)
        written.append(out / f"{name}.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    lines = [f"# Report: study mirror, size {record['size']}", "",
             "| problem | knob | predicted threshold | observed bracket | agrees |",
             "|---|---|---|---|---|"]
    for s in record["sweeps"]:
        lo, hi = s["observed"]
        lines.append(f"| {s['problem']} | {s['knob']} | {s['predicted']:.4g} | "
                     f"({lo:.4g}, {hi:.4g}) | {'yes' if s['agrees'] else 'no'} |")
    lines += ["", "Distinct atoms at the end: " + ", ".join(
        f"τ = {r['tau']:g}: {r['atoms'][0]} → {r['atoms'][-1]}" for r in record["atoms"]),
        "", "Rank at the end: " + ", ".join(f"W = {r['model']}: {r['rank']}"
                                            for r in record["low_rank"]), ""]
    written.append(out / "summary.md")
    written[-1].write_text("\n".join(lines), encoding="utf-8")
    return written
