"""PNG plots of the Table-1 benchmark: VA vs ratio per criterion, UNR per layer, time per instance, the sweep.

Why these: they are the paper's claims in picture form — grafting more neurons raises VA
(and the criterion matters), grafting empties the unstable set layer by layer, the
verifier's time per instance collapses, and the sweep (the paper's Figure) shows the whole
trade-off with its intervals and the ratio graftonnx recommends.  Matplotlib's object API
(no pyplot state), written atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from .evidence import interval
from .sweep import recommend, sweep_rows
from .targets import row_time, verifier_name

__all__ = ["write_plots", "plot_va_ratio", "plot_layer_unr", "plot_times", "plot_sweep"]

_COLORS = {"baseline": "black", "combined": "tab:blue", "instability": "tab:orange", "significance": "tab:green",
           "random": "tab:gray", "prune": "tab:red"}
_VERDICT_MARK = {"unsat": ("o", "tab:green"), "sat": ("x", "tab:red"), "timeout": ("^", "tab:orange"),
                 "unknown": ("s", "tab:gray"), "error": ("D", "purple")}


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def plot_va_ratio(job: dict[str, Any], path: Path) -> Path:
    """CROWN VA (lines) and NeuralSAT VA (large hollow markers) against the grafting ratio, per criterion."""
    rows = job["rows"]
    base = next(r for r in rows if r["criterion"] == "baseline")
    fig = Figure(figsize=(7.5, 4.2))
    ax = fig.subplots()
    series: dict[tuple[str, str, str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["criterion"] != "baseline":
            key = (r["criterion"], r["init"], r.get("schedule", "total"), r.get("granularity", "neuron"),
                   r.get("tune", ""))
            series.setdefault(key, []).append(r)
    for k, ((crit, init, sched, gran, tune), rs) in enumerate(series.items()):
        rs = [base] + sorted(rs, key=lambda r: r["ratio"])
        shift = 1.2 * (k - (len(series) - 1) / 2)  # side by side, so equal values stay visible
        xs = [100 * r["ratio"] + (shift if r is not base else 0.0) for r in rs]
        fit = init == "fit" and crit != "prune"
        target = sched == "target" and crit in ("combined", "prune")
        style = "--" if fit else ":" if target else "-." if gran == "channel" or tune else "-"
        label = f"{crit}" + (" (init fit)" if fit else "") + (" (λ over the picks)" if target else "") \
            + (" (channels)" if gran == "channel" else "") + (" (distilled)" if tune else "")
        ax.plot(xs, [r["va_crown"] for r in rs], style, marker="os^vDP"[k % 6], color=_COLORS.get(crit, "purple"),
                label=label, alpha=0.85)
        ns = [(x, r["va_nsat"]) for x, r in zip(xs, rs, strict=True) if r["va_nsat"] is not None and r is not base]
        if ns:
            ax.scatter(*zip(*ns, strict=True), s=140, facecolors="none", edgecolors=_COLORS.get(crit, "purple"),
                       linewidths=2)
    ax.scatter([0], [base["va_crown"]], marker="*", s=160, color="black", zorder=5,
               label=f"baseline ({verifier_name(base.get('crown_method', 'crown'))})")
    if base["va_nsat"] is not None:
        ax.scatter([0], [base["va_nsat"]], s=140, facecolors="none", edgecolors="black", linewidths=2, zorder=5)
    ax.scatter([], [], s=140, facecolors="none", edgecolors="gray", linewidths=2,
               label=f"{verifier_name(base.get('complete_backend', 'neuralsat'))} VA (complete)")
    ax.set_xlabel("grafted ReLUs (% of all; 0 = ungrafted baseline)")
    ax.set_ylabel("verified accuracy (%)")
    ax.set_xticks(sorted({0, *(round(100 * r["ratio"]) for r in rows)}))
    ax.set_ylim(-3, 103)
    ax.grid(alpha=0.3)
    j = job["job"]
    crown = verifier_name(base.get("crown_method", "crown"))
    who = verifier_name(base.get("complete_backend", "neuralsat"))
    ax.set_title(f"{j['key']}: VA vs grafting ratio (lines: {crown}, n={base['n_crown']}; circles: {who})",
                 fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.set_layout_engine("constrained")
    return _save(fig, path)


def plot_layer_unr(job: dict[str, Any], path: Path) -> Path:
    """Per-layer UNR of the baseline beside the combined-criterion grafts (before / after)."""
    ratios = job["job"].get("ratios") or (0.25, 0.5, 0.75)  # the table's ratios, not every sweep point
    sched = job["job"].get("schedule", "total")
    rows = [r for r in job["rows"] if r["criterion"] in ("baseline", "combined") and r["init"] == job["job"]["init"]
            and r.get("granularity", "neuron") == "neuron" and r.get("schedule", "total") == sched and not r.get("tune")
            and (r["criterion"] == "baseline" or any(abs(r["ratio"] - x) < 1e-9 for x in ratios))]
    rows.sort(key=lambda r: r["ratio"])
    sites = list(rows[0]["unr_layers"])
    fig = Figure(figsize=(max(6.0, 1.3 * len(sites) + 3.5), 3.8))
    ax = fig.subplots()
    width = 0.8 / len(rows)
    for k, r in enumerate(rows):
        xs = [i - 0.4 + width * (k + 0.5) for i in range(len(sites))]
        label = "baseline" if r["criterion"] == "baseline" else f"combined {round(100 * r['ratio'])} %"
        shade = 0.25 + 0.75 * k / max(len(rows) - 1, 1)
        color = "black" if r["criterion"] == "baseline" else (0.1, 0.3 + 0.3 * shade, 0.5 + 0.5 * shade)
        ax.bar(xs, [r["unr_layers"][s] for s in sites], width, color=color, edgecolor="black",
               label=f"{label} (all layers {r['unr']:.1f} %)")
    ax.set_xticks(range(len(sites)))
    sizes = {s: n for s, n in zip(sites, _site_sizes(job, sites), strict=True)}
    ax.set_xticklabels([f"ReLU {i + 1}\n({sizes[s]} neurons)" if sizes[s] else f"ReLU {i + 1}"
                        for i, s in enumerate(sites)], fontsize=8)
    ax.set_xlabel("ReLU layer (graph order)")
    ax.set_ylabel(f"unstable ReLUs, % of layer ({rows[0]['unr_bound'].upper()})")
    ax.set_title(f"{job['job']['key']}: unstable ReLUs per layer, before / after grafting", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.set_layout_engine("constrained")
    return _save(fig, path)


def _site_sizes(job: dict[str, Any], sites: list[str]) -> list[int]:
    """Neurons per site, from the JSON when recorded (``layer_sizes``), else 0 (unknown)."""
    sizes = job.get("layer_sizes") or {}
    return [int(sizes.get(s, 0)) for s in sites]


def plot_times(jobs: list[dict[str, Any]], path: Path) -> Path | None:
    """NeuralSAT wall time of every instance, one column per (network, row), marker = verdict."""
    cols = [(j["job"]["key"], r) for j in jobs for r in j["rows"] if r["nsat_times"]]
    if not cols:
        return None
    fig = Figure(figsize=(max(6.5, 0.55 * len(cols) + 2.5), 4.4))
    ax = fig.subplots()
    seen: set[str] = set()
    for x, (_, r) in enumerate(cols):
        for k, (t, v) in enumerate(zip(r["nsat_times"], r["nsat_verdicts"], strict=True)):
            if t is None:  # no result (yet)
                continue
            mark, color = _VERDICT_MARK.get(v, ("s", "gray"))
            ax.scatter(x + (k % 5 - 2) * 0.06, t, marker=mark, color=color, s=22, label=None if v in seen else v)
            seen.add(v)
        if r["nsat_mean_time"] is not None:
            ax.hlines(r["nsat_mean_time"], x - 0.3, x + 0.3, color="black", linewidth=2)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([f"{key}\n{r['variant']}" for key, r in cols], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("NeuralSAT wall time per instance (s)")
    ax.set_ylim(bottom=0)
    ax.set_title("Time per instance (bar = mean; timeouts sit at the hard kill: budget + 30 s grace)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.set_layout_engine("constrained")
    return _save(fig, path)


def _with_bars(ax: Any, xs: list[float], rows: list[dict[str, Any]], key: str, n_key: str, label: str,
               **style: Any) -> None:
    """One accuracy series with Wilson 95 % error bars (points without a value are left out)."""
    pts = [(x, r[key], interval(r[key], r.get(n_key))) for x, r in zip(xs, rows, strict=True)
           if r.get(key) is not None]
    if not pts:
        return
    x, y, ci = zip(*pts, strict=True)
    err = [[v - (c[0] if c else v) for v, c in zip(y, ci, strict=True)],
           [(c[1] if c else v) - v for v, c in zip(y, ci, strict=True)]]
    ax.errorbar(x, y, yerr=err, capsize=3, label=label, **style)


def plot_sweep(job: dict[str, Any], path: Path) -> Path | None:
    """VA, SA, RA (Wilson bars), UNR and mean verification time (the paper's way) against the ratio."""
    rows = sweep_rows(job)
    if len(rows) < 2:
        return None
    xs = [100 * r["ratio"] for r in rows]
    crown = verifier_name(rows[0].get("crown_method", "crown"))
    who = verifier_name(rows[0].get("complete_backend", "neuralsat"))
    fig = Figure(figsize=(13.0, 4.0))
    acc, unr, tim = fig.subplots(1, 3)
    _with_bars(acc, xs, rows, "va_crown", "n_crown", f"VA {crown}", marker="o", color="tab:blue")
    _with_bars(acc, [x + 0.8 for x in xs], rows, "va_nsat", "n_nsat", f"VA {who}", marker="D", color="tab:purple",
               linestyle="none")
    _with_bars(acc, xs, rows, "sa", "n_heldout", "SA", marker="s", color="black")
    _with_bars(acc, xs, rows, "ra", "n_heldout", "RA (PGD)", marker="^", color="tab:red")
    best = recommend(rows)
    for ax in (acc, unr, tim):
        if best is not None:
            ax.axvline(100 * best["ratio"], color="tab:green", linestyle=":", linewidth=1.5)
        ax.set_xlabel("grafted ReLUs (% of all; 0 = baseline)")
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
    acc.set_ylabel("accuracy (%)")
    acc.set_ylim(-3, 103)
    acc.legend(fontsize=8, loc="lower left")
    unr.plot(xs, [r["unr"] for r in rows], marker="o", color="tab:orange")
    unr.set_ylabel(f"unstable ReLUs (%, {rows[0]['unr_bound'].upper()})")
    for key, name, color in (("va_crown", crown, "tab:blue"), ("va_nsat", who, "tab:purple")):
        pts = [(x, row_time(r, key)) for x, r in zip(xs, rows, strict=True)]
        pts = [(x, t.mean) for x, t in pts if t is not None and t.mean is not None]
        if pts:
            tim.plot(*zip(*pts, strict=True), marker="o", color=color, label=name)
    tim.set_ylabel("mean time s (correct, unattacked; timeouts apart)")
    tim.set_ylim(bottom=0)
    if tim.get_legend_handles_labels()[0]:
        tim.legend(fontsize=8)
    rec = "" if best is None else f"; dotted: recommended {round(100 * best['ratio'])} % (largest VA, SA drop ≤ 1.5)"
    fig.suptitle(f"{job['job']['key']}: trade-off sweep (bars: Wilson 95 %){rec}", fontsize=10)
    fig.set_layout_engine("constrained")
    return _save(fig, path)


def write_plots(data: dict[str, Any], folder: Path, prefix: str) -> list[Path]:
    """Every plot of ``data`` into ``folder``: VA-vs-ratio and layer UNR per network, one time plot."""
    out: list[Path] = []
    for job in data["jobs"]:
        key = job["job"]["key"]
        if not job["rows"]:
            continue
        out.append(plot_va_ratio(job, folder / f"{prefix}-{key}-va.png"))
        out.append(plot_layer_unr(job, folder / f"{prefix}-{key}-unr.png"))
        sweep = plot_sweep(job, folder / f"{prefix}-{key}-sweep.png")
        out += [sweep] if sweep else []
    times = plot_times(data["jobs"], folder / f"{prefix}-times.png")
    return out + ([times] if times else [])
