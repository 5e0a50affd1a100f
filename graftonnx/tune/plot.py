"""The figure of a tuning run: VA and SA against the ratio, one line per schedule, the choice marked.

Why one figure with two panels: the decision is a trade-off (VA up, SA down as more is
grafted), and the SA limit is a horizontal line the eye can check against each point.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

from ..report.plots import _save

if TYPE_CHECKING:
    from .report import TuneSummary

__all__ = ["plot_tune"]


def plot_tune(summary: TuneSummary, path: Path, schedules: Sequence[str], dpi: int = 150) -> Path:
    """VA (with Wilson 95 % bars) and SA vs ratio per schedule; the SA limit dashed; the chosen point starred."""
    fig = Figure(figsize=(10, 4))
    ax_va, ax_sa = fig.subplots(1, 2)
    base = summary.rows[0]
    for k, schedule in enumerate(schedules):
        rows = [base] + [r for r in summary.rows if r.get("schedule") == schedule and "va" in r]
        xs = [100 * r["ratio"] for r in rows]
        err = [[r["va"] - r["va_low"] for r in rows], [r["va_high"] - r["va"] for r in rows]]
        ax_va.errorbar(xs, [r["va"] for r in rows], yerr=err, marker="os^"[k % 3], capsize=3, label=schedule)
        ax_sa.plot(xs, [r["sa"] for r in rows], marker="os^"[k % 3], label=schedule)
    ax_sa.axhline(base["sa"] - summary.max_sa_drop, ls="--", color="gray", label=f"SA limit (−{summary.max_sa_drop:g})")
    chosen = summary.row(summary.chosen)
    if chosen is not None:
        for ax, key in ((ax_va, "va"), (ax_sa, "sa")):
            ax.scatter([100 * chosen["ratio"]], [chosen[key]], marker="*", s=220, color="black", zorder=5,
                       label=f"chosen: {summary.chosen}")
    ax_va.set(xlabel="grafted ReLU neurons (%)", ylabel="VA % (sample)", title="verified accuracy vs ratio")
    ax_sa.set(xlabel="grafted ReLU neurons (%)", ylabel="SA % (held out)", title="clean accuracy vs ratio")
    for ax in (ax_va, ax_sa):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path, dpi)
