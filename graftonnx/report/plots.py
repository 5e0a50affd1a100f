"""The report's PNG figures: VA per model, time per instance, unstable neurons per layer.

Why matplotlib's object API (``Figure`` + Agg canvas) and not ``pyplot``: no global
backend switch and no figure registry, so reporting inside a notebook or a test process
never changes anyone else's plotting state, and every figure is freed when it goes out of
scope.  PNGs are rendered in memory and written atomically like every other output.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .._io import atomic_write
from ..verify.result import Verdict
from .metrics import ModelMetrics, Report
from .tables import row_label

__all__ = ["plot_va", "plot_times", "plot_layer_unr", "write_plots", "PLOT_FILES"]

PLOT_FILES = ("va.png", "times.png", "unr_layers.png")
_HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--")
_VERDICT_STYLE = {Verdict.UNSAT: ("o", "tab:green"), Verdict.SAT: ("^", "tab:red"), Verdict.UNKNOWN: ("s", "tab:gray"),
                  Verdict.TIMEOUT: ("X", "black"), Verdict.ERROR: ("D", "tab:orange")}


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with atomic_write(path) as fh:
        fh.write(buf.getvalue())
    return path


class _Style:
    """Colour by graft ratio (baseline grey), hatch by criterion; one legend entry per variant."""

    def __init__(self, rows: Sequence[ModelMetrics]) -> None:
        ratios = sorted({r.graft.ratio for r in rows if r.graft.grafted and r.graft.ratio is not None})
        cmap = colormaps["viridis"]
        self.colors = {q: cmap(0.15 + 0.7 * i / max(len(ratios) - 1, 1)) for i, q in enumerate(ratios)}
        crits = list(dict.fromkeys(r.graft.criterion for r in rows if r.graft.grafted))
        self.hatches = {c: _HATCHES[i % len(_HATCHES)] for i, c in enumerate(crits)}

    def color(self, r: ModelMetrics) -> object:
        if not r.graft.grafted:
            return "0.6"
        return self.colors.get(r.graft.ratio, "tab:purple")  # type: ignore[arg-type]

    def hatch(self, r: ModelMetrics) -> str:
        return self.hatches.get(r.graft.criterion, "") if r.graft.grafted else ""

    def variant(self, r: ModelMetrics) -> str:
        g = r.graft
        if not g.grafted:
            return "baseline"
        ratio = "ratio ?" if g.ratio is None else f"ratio {g.ratio:g}"
        return f"grafted, {ratio}" + (f", {g.criterion}" if g.criterion else "")

    def legend(self, rows: Sequence[ModelMetrics]) -> list[Patch]:
        seen: dict[str, Patch] = {}
        for r in rows:
            seen.setdefault(self.variant(r), Patch(facecolor=self.color(r), hatch=self.hatch(r), edgecolor="black",
                                                   label=self.variant(r)))
        return list(seen.values())


def _positions(rows: Sequence[ModelMetrics]) -> np.ndarray:
    """x positions with a one-bar gap between groups (a baseline and its grafted variants)."""
    xs, x, prev = [], 0.0, None
    for r in rows:
        if prev is not None and r.group != prev:
            x += 0.6
        xs.append(x)
        x += 1.0
        prev = r.group
    return np.asarray(xs)


def _xticks(ax: object, xs: np.ndarray, labels: list[str]) -> None:
    ax.set_xticks(xs)  # type: ignore[attr-defined]
    ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=9)  # type: ignore[attr-defined]


def plot_va(report: Report, path: str | os.PathLike[str]) -> Path:
    """Bars of VA per (model, backend), coloured by graft ratio, grouped with the baseline."""
    rows = list(report.rows)
    style, multi = _Style(rows), len(report.backends) > 1
    xs = _positions(rows)
    fig = Figure(figsize=(max(6.0, 1.0 * len(rows) + 2.5), 4.8))
    ax = fig.add_subplot()
    for x, r in zip(xs, rows, strict=True):
        if r.va is None:
            ax.text(x, 1, "no results", rotation=90, ha="center", va="bottom", fontsize=8, color="0.4")
            continue
        ax.bar(x, 100 * r.va, 0.8, color=style.color(r), hatch=style.hatch(r), edgecolor="black")
        ax.text(x, 100 * r.va + 1.5, f"{r.unsat}/{r.instances}", ha="center", va="bottom", fontsize=8)
    _xticks(ax, xs, [row_label(r, multi) for r in rows])
    ax.set_ylim(0, 112)
    ax.set_ylabel("verified accuracy (% of instances unsat)")
    ax.set_title(f"Verified accuracy per model ({', '.join(report.backends) or 'no results'})")
    ax.legend(handles=style.legend(rows), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path))


def plot_times(report: Report, path: str | os.PathLike[str]) -> Path:
    """Verification time of every instance per (model, backend): box plot plus jittered points by verdict."""
    rows = [r for r in report.rows if r.times]
    multi = len(report.backends) > 1
    fig = Figure(figsize=(max(6.0, 1.0 * len(rows) + 2.5), 4.8))
    ax = fig.add_subplot()
    if not rows:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
        return _save(fig, Path(path))
    xs = _positions(rows)
    ax.boxplot([list(r.times) for r in rows], positions=xs, widths=0.6, showfliers=False,
               medianprops={"color": "tab:blue"})
    rng = np.random.default_rng(0)
    used: set[str] = set()
    for x, r in zip(xs, rows, strict=True):
        jitter = rng.uniform(-0.18, 0.18, len(r.times))
        for t, v, j in zip(r.times, r.verdicts, jitter, strict=True):
            marker, color = _VERDICT_STYLE[v]
            ax.scatter(x + j, t, marker=marker, color=color, s=28 if v == Verdict.TIMEOUT else 18, zorder=3,
                       alpha=0.85, label=v if v not in used else None)
            used.add(v)
    times = np.asarray([t for r in rows for t in r.times])
    positive = times[times > 0]
    if positive.size and positive.max() / max(positive.min(), 1e-9) > 50:
        ax.set_yscale("log")
    _xticks(ax, xs, [row_label(r, multi) for r in rows])
    ax.set_ylabel("seconds per instance")
    ax.set_title("Verification time per instance (box: quartiles; X: timeout)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="verdict", title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path))


def plot_layer_unr(report: Report, path: str | os.PathLike[str]) -> Path:
    """Per-layer UNR, one panel per baseline group, its models' bars side by side per ReLU site."""
    models = list({r.model: r for r in report.rows}.values())
    groups = list(dict.fromkeys(r.group for r in models))
    style = _Style(models)
    n_sites = max((len(r.unr.layers) for r in models), default=1)
    fig = Figure(figsize=(max(6.5, 0.9 * n_sites * max(1, len(models) / len(groups or [1])) + 3), 3.6 * len(groups)))
    axes = fig.subplots(len(groups), 1, squeeze=False)[:, 0]
    for ax, group in zip(axes, groups, strict=True):
        members = [r for r in models if r.group == group]
        sites = list(dict.fromkeys(x.site for r in members for x in r.unr.layers))
        width = 0.8 / len(members)
        base = np.arange(len(sites), dtype=float)
        for k, r in enumerate(members):
            vals = [100 * next((x.unr for x in r.unr.layers if x.site == s), 0.0) for s in sites]
            ax.bar(base - 0.4 + width * (k + 0.5), vals, width, color=style.color(r), hatch=style.hatch(r),
                   edgecolor="black", label=f"{r.name} (UNR {100 * r.unr.unr:.1f}%)")
        _xticks(ax, base, sites)
        ax.set_ylabel("unstable neurons (% of layer)")
        ax.set_title(f"{group}: unstable ReLUs per layer, {r.unr.bound} on {r.unr.boxes} instance boxes")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(axis="y", alpha=0.3)
    fig.set_layout_engine("constrained")
    return _save(fig, Path(path))


def write_plots(report: Report, folder: str | os.PathLike[str]) -> list[Path]:
    """All three PNGs into ``folder`` (names :data:`PLOT_FILES`)."""
    root = Path(folder)
    fns = (plot_va, plot_times, plot_layer_unr)
    return [fn(report, root / name) for fn, name in zip(fns, PLOT_FILES, strict=True)]
