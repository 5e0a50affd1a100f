"""The report as text: a Markdown page, a CSV table and a JSON document (all written atomically).

Why three: Markdown is for people (pasted into a PR or paper notes), CSV for spreadsheets
and pandas, JSON for scripts that need per-layer UNR and per-instance times.  The CSV has
a fixed column set (empty cell = not measured), so scripts never guess; the Markdown page
drops columns nothing was measured for, so people do not read a wall of dashes.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from .._io import atomic_write_json, atomic_write_text
from .metrics import ModelMetrics, Report
from .stats import wilson_interval

__all__ = ["CSV_COLUMNS", "csv_text", "markdown_text", "write_tables", "row_label", "va_ci", "plot_reference"]

CSV_COLUMNS = ("model", "name", "group", "backend", "ratio", "criterion", "grafted_neurons", "instances", "va",
               "va_ci_low", "va_ci_high", "unr", "unstable_per_box", "sa", "ra", "mean_time", "median_time",
               "mean_time_solved", "median_time_solved", "sat", "unsat", "timeouts", "unknown", "errors", "missing")


def _num(v: float | int | None) -> str:
    if v is None:
        return ""
    return str(v) if isinstance(v, int) else f"{v:.6g}"


def va_ci(r: ModelMetrics) -> tuple[float, float] | None:
    """The Wilson 95 % interval of the row's VA (the one the VA bars show); None without results."""
    return None if r.va is None else wilson_interval(r.unsat, r.instances)


def _csv_row(r: ModelMetrics) -> list[str]:
    g = r.graft
    ci = va_ci(r) or (None, None)
    vals: list[float | int | str | None] = [
        r.model, r.name, r.group, r.backend, g.ratio, g.criterion or "", g.neurons, r.instances, r.va, *ci, r.unr.unr,
        r.unr.unstable, r.sa, r.ra, r.mean_time, r.median_time, r.mean_time_solved, r.median_time_solved, r.sat,
        r.unsat, r.timeouts, r.unknown, r.errors, r.missing]
    return [v if isinstance(v, str) else _num(v) for v in vals]


def csv_text(report: Report) -> str:
    """One row per (model, backend), columns :data:`CSV_COLUMNS`."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in report.rows:
        w.writerow(_csv_row(r))
    return buf.getvalue()


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _sec(v: float | None) -> str:
    return "–" if v is None else f"{v:.3g} s"


def row_label(r: ModelMetrics, with_backend: bool) -> str:
    """``name`` or ``name [backend]``: the label plots and tables share."""
    return f"{r.name} [{r.backend}]" if with_backend and r.backend else r.name


def _main_table(report: Report) -> list[str]:
    grafts, acc = report.has_grafts, report.has_accuracy
    head = ["model", "backend"] + (["ratio", "criterion"] if grafts else []) + ["instances", "VA", "VA 95% CI", "UNR"]
    head += (["SA", "RA"] if acc else []) + ["mean time", "median time", "mean (solved)", "median (solved)",
                                             "sat", "timeouts", "unknown", "errors", "missing"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in report.rows:
        va = "–" if r.va is None else f"{_pct(r.va)} ({r.unsat}/{r.instances})"
        cells = [f"`{r.name}`", r.backend or "(no results)"]
        if grafts:
            g = r.graft
            cells += ["baseline" if not g.grafted else ("?" if g.ratio is None else f"{g.ratio:g}"),
                      g.criterion or ("–" if not g.grafted else "?")]
        ci = va_ci(r)
        cells += [str(r.instances), va, "–" if ci is None else f"{_pct(ci[0])}–{_pct(ci[1])}", _pct(r.unr.unr)]
        cells += [_pct(r.sa), _pct(r.ra)] if acc else []
        cells += [_sec(r.mean_time), _sec(r.median_time), _sec(r.mean_time_solved), _sec(r.median_time_solved),
                  str(r.sat), str(r.timeouts), str(r.unknown), str(r.errors), str(r.missing)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _layer_table(report: Report) -> list[str]:
    """Per-layer UNR, one column per model (each model once, whatever its backends)."""
    models = list({r.model: r for r in report.rows}.values())
    sites = list(dict.fromkeys(x.site for r in models for x in r.unr.layers))
    lines = ["| ReLU site | " + " | ".join(f"`{r.name}`" for r in models) + " |",
             "|---|" + "|".join("---" for _ in models) + "|"]
    for s in sites:
        cells = []
        for r in models:
            lay = next((x for x in r.unr.layers if x.site == s), None)
            cells.append("–" if lay is None else f"{_pct(lay.unr)} ({lay.unstable:.1f}/{lay.size})")
        lines.append(f"| `{s}` | " + " | ".join(cells) + " |")
    tot = [f"**{_pct(r.unr.unr)}** ({r.unr.unstable:.1f}/{r.unr.neurons})" for r in models]
    lines.append("| **all** | " + " | ".join(tot) + " |")
    return lines


def markdown_text(report: Report, plots: Sequence[str] = ()) -> str:
    """The human-readable page: settings, the main table, per-layer UNR, the plots."""
    o = report.options
    boxes = report.rows[0].unr.boxes if report.rows else 0
    lines = ["# graftonnx verification report", "",
             f"Benchmark `{report.bench}`; results from " + ", ".join(f"`{j}`" for j in report.journals) + ".", "",
             "VA = unsat / instances listed for the model (unrun instances count as *missing*, not verified). "
             f"UNR = mean share of ReLU neurons with l < 0 < u under **{o.bound}** bounds on the instances' input "
             f"boxes ({boxes} per model). VA 95% CI = Wilson score interval. Times are wall seconds per instance as "
             "journaled; *solved* = sat or unsat (as in the cactus plot)."]
    if report.has_accuracy:
        ra = f"RA: PGD-{o.steps}×{o.restarts} at eps {o.eps:g}, attacks confirmed in onnxruntime" \
            if o.eps is not None else "RA not measured (no --eps)"
        lines += ["", f"SA/RA on {report.data}; {ra}."]
    lines += ["", "## Results", ""] + _main_table(report)
    lines += ["", f"## Unstable neurons per layer ({o.bound})", ""] + _layer_table(report)
    if plots:
        lines += ["", "## Plots", ""] + [plot_reference(p) for p in plots]
    return "\n".join(lines) + "\n"


def plot_reference(path: str | os.PathLike[str]) -> str:
    """The Markdown line naming a figure: an image for PNG/SVG, a link for PDF (no viewer inlines PDF)."""
    p = Path(path)
    if p.suffix.lower() == ".pdf":
        return f"- [{p.stem}]({p.name}) (PDF)"
    return f"![{p.stem}]({p.name})"


def _json_doc(report: Report, plots: Sequence[str]) -> dict[str, object]:
    doc = report.to_dict()
    for m, r in zip(doc["models"], report.rows, strict=True):
        ci = va_ci(r)
        m["va_ci"] = None if ci is None else list(ci)
    return doc | {"plots": [Path(p).name for p in plots]}


def write_tables(report: Report, folder: str | os.PathLike[str], plots: Sequence[str] = ()) -> list[Path]:
    """Write ``report.md``, ``report.csv`` and ``report.json`` into ``folder``; return their paths."""
    root = Path(folder)
    out = [root / "report.md", root / "report.csv", root / "report.json"]
    atomic_write_text(out[0], markdown_text(report, plots))
    atomic_write_text(out[1], csv_text(report))
    atomic_write_json(out[2], _json_doc(report, plots))
    return out
