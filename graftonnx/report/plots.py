"""The report's figures: VA per model (Wilson 95 % bars), time per instance, a cactus plot, UNR per layer.

Every figure is written in the report's ``format`` (png, pdf or svg) at its ``dpi``, so
the same report folder serves a PR (PNG) and a paper (PDF/SVG, vector).

Why matplotlib's object API (``Figure`` + Agg canvas) and not ``pyplot``: no global
backend switch and no figure registry, so reporting inside a notebook or a test process
never changes anyone else's plotting state, and every figure is freed when it goes out of
scope.  Figures are rendered in memory and written atomically like every other output;
PDF/SVG carry no creation date, so an unchanged report gives byte-identical files.
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
from ..errors import BadInput
from ..verify.result import Verdict
from ..verify.runner import read_instances
from .metrics import ModelMetrics, Report
from .stats import cactus_curve, use_box, wilson_interval
from .tables import row_label

__all__ = ["plot_va", "plot_times", "plot_cactus", "plot_layer_unr", "write_plots", "plot_files", "bench_timeout",
           "PLOT_NAMES", "PLOT_FILES"]

#: The figures' names without suffix, in the order the report shows them.
PLOT_NAMES = ("va", "times", "cactus", "unr_layers")
#: The file names at the default format (png).
PLOT_FILES = tuple(f"{n}.png" for n in PLOT_NAMES)
#: No date in vector files: the same report gives the same bytes (diffable, cacheable).
_NO_DATE = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}
_HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--")
_VERDICT_STYLE = {Verdict.UNSAT: ("o", "tab:green"), Verdict.SAT: ("^", "tab:red"), Verdict.UNKNOWN: ("s", "tab:gray"),
                  Verdict.TIMEOUT: ("X", "black"), Verdict.ERROR: ("D", "tab:orange")}


def plot_files(fmt: str = "png") -> tuple[str, ...]:
    """The figure file names for format ``fmt`` (``va.pdf``, ...)."""
    return tuple(f"{n}.{fmt}" for n in PLOT_NAMES)


def _save(fig: Figure, path: Path, dpi: int = 150) -> Path:
    """Render ``fig`` in the format named by ``path``'s suffix and write it atomically."""
    fmt = path.suffix.lstrip(".") or "png"
    if fmt not in _NO_DATE:
        raise BadInput(f"figure format {fmt!r} is not one of png, pdf, svg")
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", metadata=_NO_DATE[fmt])
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


def _n_text(counts: Sequence[int], what: str) -> str:
    """``n = 3 instances`` or ``n = 2–5 instances`` (models may list different numbers)."""
    lo, hi = min(counts, default=0), max(counts, default=0)
    return f"n = {lo} {what}" if lo == hi else f"n = {lo}–{hi} {what}"


def _backends(rows: Sequence[ModelMetrics]) -> str:
    names = list(dict.fromkeys(r.backend for r in rows if r.backend))
    return ("backend " if len(names) == 1 else "backends ") + ", ".join(names) if names else "no results"


def plot_va(report: Report, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Bars of VA per (model, backend) with Wilson 95 % intervals, coloured by graft ratio, grouped with the baseline.

    Why intervals: with tens of instances, 40 % vs 50 % VA is often within noise; the bars
    must show it before a reader takes the gap as an effect of grafting.
    """
    rows = list(report.rows)
    style, multi = _Style(rows), len(report.backends) > 1
    xs = _positions(rows)
    fig = Figure(figsize=(max(6.0, 1.0 * len(rows) + 2.5), 4.8))
    ax = fig.add_subplot()
    for x, r in zip(xs, rows, strict=True):
        if r.va is None:
            ax.text(x, 1, "no results", rotation=90, ha="center", va="bottom", fontsize=8, color="0.4")
            continue
        lo, hi = wilson_interval(r.unsat, r.instances)
        err = [[100 * (r.va - lo)], [100 * (hi - r.va)]]
        ax.bar(x, 100 * r.va, 0.8, color=style.color(r), hatch=style.hatch(r), edgecolor="black",
               yerr=err, capsize=4, error_kw={"elinewidth": 1.2, "ecolor": "black"})
        ax.text(x, 100 * hi + 1.5, f"{r.unsat}/{r.instances}", ha="center", va="bottom", fontsize=8)
    _xticks(ax, xs, [row_label(r, multi) for r in rows])
    ax.set_ylim(0, 115)
    ax.set_yticks(range(0, 101, 20))
    ax.set_ylabel("verified accuracy (% of instances unsat)")
    listed = [r.instances for r in rows if r.va is not None]
    ax.set_title(f"Verified accuracy per model ({_backends(rows)}, {_n_text(listed, 'instances')}; "
                 "bars: Wilson 95 % CI)", fontsize=10)
    ax.legend(handles=style.legend(rows), fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path), dpi)


def _log_if_wide(values: Sequence[float]) -> bool:
    """Log scale when positive values span more than 50×: else the fast instances sit in one pixel row."""
    v = np.asarray(values, dtype=float)
    v = v[v > 0]
    return bool(v.size) and float(v.max() / max(v.min(), 1e-9)) > 50


def plot_times(report: Report, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Time of every instance per (model, backend): jittered points by verdict, a box only from 5 points on."""
    rows = [r for r in report.rows if r.times]
    multi = len(report.backends) > 1
    fig = Figure(figsize=(max(6.0, 1.0 * len(rows) + 2.5), 4.8))
    ax = fig.add_subplot()
    if not rows:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
        ax.set_title("Verification time per instance (no results)", fontsize=10)
        return _save(fig, Path(path), dpi)
    xs = _positions(rows)
    boxed = [(x, r) for x, r in zip(xs, rows, strict=True) if use_box(len(r.times))]
    if boxed:
        ax.boxplot([list(r.times) for _, r in boxed], positions=[x for x, _ in boxed], widths=0.6,
                   showfliers=False, medianprops={"color": "tab:blue"}, manage_ticks=False)
    rng = np.random.default_rng(0)
    used: set[str] = set()
    for x, r in zip(xs, rows, strict=True):
        jitter = rng.uniform(-0.18, 0.18, len(r.times))
        for t, v, j in zip(r.times, r.verdicts, jitter, strict=True):
            marker, color = _VERDICT_STYLE[v]
            ax.scatter(x + j, t, marker=marker, color=color, s=28 if v == Verdict.TIMEOUT else 18, zorder=3,
                       alpha=0.85, label=v.value if v not in used else None)
            used.add(v)
    if _log_if_wide([t for r in rows for t in r.times]):
        ax.set_yscale("log")
    _xticks(ax, xs, [row_label(r, multi) for r in rows])
    ax.set_ylabel("wall time per instance (s)")
    how = "box: quartiles, from 5 results" if boxed else "points only: < 5 results per model"
    ax.set_title(f"Verification time per instance ({_backends(rows)}, "
                 f"{_n_text([len(r.times) for r in rows], 'results')}; {how})", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="verdict", title_fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, Path(path), dpi)


def plot_cactus(report: Report, path: str | os.PathLike[str], timeout: float | None = None, dpi: int = 150
                ) -> Path:
    """Instances solved (sat or unsat) within t seconds, one step line per (model, backend); the timeout dashed.

    Why: the standard figure of verification papers — a line further up-left solves more,
    sooner, and where lines cross tells whether a speed-up holds only for easy instances.
    """
    rows = [r for r in report.rows if r.times]
    multi = len(report.backends) > 1
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    curves = [(r, *cactus_curve(r.times, r.verdicts)) for r in rows]
    every = [t for _, ts, _ in curves for t in ts]
    end = timeout if timeout is not None else max((t for r in rows for t in r.times), default=1.0)
    colors = colormaps["tab10"]
    for k, (r, ts, ns) in enumerate(curves):
        label = f"{row_label(r, multi)}: {len(ts)}/{r.instances} solved"
        style = (0, (5, 1.5)) if r.graft.grafted else "-"  # grafted dashed, baseline solid
        if not ts:  # nothing solved: a legend entry, no line
            ax.plot([], [], color=colors(k % 10), linestyle=style, label=label)
            continue
        # From (first time, 0) up each step, then flat to the timeout: "solved nothing more after".
        ax.step([ts[0], *ts, max(end, ts[-1])], [0, *ns, ns[-1]], where="post", color=colors(k % 10),
                linestyle=style, linewidth=1.8, label=label)
        ax.plot(ts, ns, "o", color=colors(k % 10), markersize=4)
    if timeout is not None:
        ax.axvline(timeout, color="black", linestyle="--", linewidth=1.2, label=f"timeout ({timeout:g} s)")
    if _log_if_wide(every + ([timeout] if timeout else [])):
        ax.set_xscale("log")
    top = max((r.instances for r in rows), default=1)
    ax.set_ylim(0, top + 0.5)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("wall time per instance (s)")
    ax.set_ylabel("instances solved (sat or unsat)")
    limit = "" if timeout is None else f", timeout {timeout:g} s"
    n = _n_text([r.instances for r in rows], "instances")
    ax.set_title(f"Instances solved within a time ({_backends(rows)}, {n}{limit})", fontsize=10)
    if not rows:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return _save(fig, Path(path), dpi)


def plot_layer_unr(report: Report, path: str | os.PathLike[str], dpi: int = 150) -> Path:
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
        ax.set_title(f"{group}: unstable ReLUs per layer ({r.unr.bound} bounds, n = {r.unr.boxes} instance boxes)",
                     fontsize=10)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(axis="y", alpha=0.3)
    fig.set_layout_engine("constrained")
    return _save(fig, Path(path), dpi)


def bench_timeout(bench: str | os.PathLike[str]) -> float | None:
    """The largest timeout instances.csv lists (the cactus plot's limit); None when it cannot be read.

    Why None and not an error: the report is already built from that file, so a failure here
    means it moved since — the cactus plot is still right, only without its dashed line.
    """
    try:
        return max(i.timeout for i in read_instances(Path(bench)))
    except (BadInput, OSError):
        return None


def write_plots(report: Report, folder: str | os.PathLike[str]) -> list[Path]:
    """Every figure into ``folder``, in the report's format and dpi (names :func:`plot_files`)."""
    root, o = Path(folder), report.options
    names = plot_files(o.format)
    return [plot_va(report, root / names[0], o.dpi), plot_times(report, root / names[1], o.dpi),
            plot_cactus(report, root / names[2], bench_timeout(report.bench), o.dpi),
            plot_layer_unr(report, root / names[3], o.dpi)]
