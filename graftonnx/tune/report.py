"""``tune``'s answer, read from the journal: every candidate's row, the choice, a table and a figure.

Why from the journal and not from memory: a search may span several runs (kills, budgets);
the journal holds every candidate measured so far, so the table and the choice are
rebuilt from it after each run, and the same journal always gives the same choice.

The rule (deterministic): among candidates whose SA is at most ``max_sa_drop`` points below
the original network's, the largest VA wins; ties go to the higher SA, then the smaller
ratio, then the schedule listed first.  The original network (ratio 0) is always feasible,
so ``tune`` never hands back a network that breaks the constraint.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import atomic_write, atomic_write_json, atomic_write_text
from ..engine import DONE, Journal
from ..report.stats import wilson_interval
from .pipeline import TuneConfig, candidate_name, over_limit

__all__ = ["TuneSummary", "summarise", "choose", "DEFAULT_CANDIDATE"]

#: graftonnx's fixed default (``graft --ratio 0.5``, ``--schedule target``): the row tune must beat.
DEFAULT_CANDIDATE = candidate_name("target", 0.5)
_COLUMNS = ("name", "schedule", "ratio", "grafted", "sa", "sa_drop", "va", "va_low", "va_high", "unr", "status")


@dataclass(frozen=True)
class TuneSummary:
    """The rows (baseline first), the chosen row's name, and how many candidates are still untried."""

    rows: tuple[dict[str, Any], ...]
    chosen: str
    untried: int
    max_sa_drop: float

    def row(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.rows if r["name"] == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "max_sa_drop": self.max_sa_drop, "untried": self.untried,
                "default": DEFAULT_CANDIDATE, "rows": list(self.rows)}


def _rows(cfg: TuneConfig, done: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    base = done["baseline"].metrics
    rows, untried = [{"name": "original", **base, "sa_drop": 0.0, "status": "measured"}], 0
    for schedule in cfg.tune.schedules:
        for ratio in sorted(cfg.tune.ratios):
            name = candidate_name(schedule, ratio)
            rec = done.get(name)
            if rec is None:
                untried += 1
                rows.append({"name": name, "schedule": schedule, "ratio": ratio, "status": "untried"})
            elif "skipped" in rec.metrics:
                rows.append({"name": name, **rec.metrics, "status": "skipped"})
            else:
                m = rec.metrics
                status = "over SA limit" if over_limit(base, m, cfg.tune.max_sa_drop) else "measured"
                rows.append({"name": name, **m, "sa_drop": round(base["sa"] - m["sa"], 4), "status": status,
                             "model": rec.outputs["model"], "plan": rec.outputs["plan"]})
    for r in rows:
        if "va" in r:
            k = round(r["va"] * r["n_verify"] / 100)
            r["va_low"], r["va_high"] = (round(100 * v, 2) for v in wilson_interval(k, r["n_verify"]))
    return rows, untried


def choose(rows: list[dict[str, Any]], order: tuple[str, ...]) -> str:
    """The feasible row with the largest VA (ties: higher SA, smaller ratio, earlier schedule in ``order``)."""
    feasible = [r for r in rows if r["status"] == "measured"]
    rank = {s: i for i, s in enumerate(order)}
    best = min(feasible, key=lambda r: (-r["va"], -r["sa"], r["ratio"], rank.get(r["schedule"], -1)))
    return str(best["name"])


def _markdown(s: TuneSummary, cfg: TuneConfig) -> str:
    t = cfg.tune
    held = (f"{Path(cfg.heldout_data.source).name}, all {s.rows[0]['n_heldout']} images" if cfg.heldout_data
            else f"{t.heldout:.0%} of {Path(cfg.data.source).name}, {s.rows[0]['n_heldout']} images")
    lines = [f"# graftonnx tune: {Path(cfg.model).name}", "",
             f"Chosen: **{s.chosen}** — the largest VA ({t.method}, ε = {cfg.graft.eps:g}, the first "
             f"{t.n_verify} held-out images) whose SA is within {t.max_sa_drop:g} pts of the original's "
             f"(held out: {held}). Each candidate: {cfg.graft.criterion} "
             f"selection, init {cfg.graft.init}, {t.epochs} finetuning epoch(s).", ""]
    if s.untried:
        lines += [f"**{s.untried} candidate(s) untried** (budget): rerun the same command to continue.", ""]
    lines += ["| candidate | grafted | SA % | SA drop | VA % [95 % CI] | UNR/img | status |",
              "|---|---:|---:|---:|---|---:|---|"]
    for r in s.rows:
        va = f"{r['va']:.1f} [{r['va_low']:.0f}, {r['va_high']:.0f}]" if "va" in r else "–"
        mark = " ✔" if r["name"] == s.chosen else (" (default)" if r["name"] == DEFAULT_CANDIDATE else "")
        lines.append(f"| {r['name']}{mark} | {_num(r, 'grafted', '{}')} | {_num(r, 'sa', '{:.1f}')} | "
                     f"{_num(r, 'sa_drop', '{:+.1f}')} | {va} | {_num(r, 'unr', '{:.1f}')} | {r['status']} |")
    return "\n".join(lines) + "\n"


def _num(row: dict[str, Any], key: str, fmt: str) -> str:
    return fmt.format(row[key]) if key in row else "–"


def _csv(rows: tuple[dict[str, Any], ...]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def summarise(out: Path, cfg: TuneConfig, dpi: int = 150) -> TuneSummary:
    """Rebuild the rows from ``out``'s journal, choose, and write chosen.onnx (+ plan), tune.{md,csv,json,png}."""
    from .plot import plot_tune

    done = Journal(out / "journal.jsonl").done("", cfg.fingerprint())
    rows, untried = _rows(cfg, {k: v for k, v in done.items() if v.status == DONE})
    summary = TuneSummary(tuple(rows), choose(rows, cfg.tune.schedules), untried, cfg.tune.max_sa_drop)
    chosen = summary.row(summary.chosen)
    assert chosen is not None
    with atomic_write(out / "chosen.onnx") as fh:
        fh.write(Path(out / chosen["model"] if "model" in chosen else cfg.model).read_bytes())
    (out / "chosen.plan.json").unlink(missing_ok=True)  # the original network has no plan
    if "plan" in chosen:
        with atomic_write(out / "chosen.plan.json") as fh:
            fh.write((out / chosen["plan"]).read_bytes())
    atomic_write_json(out / "tune.json", summary.to_dict())
    atomic_write_text(out / "tune.md", _markdown(summary, cfg))
    atomic_write_text(out / "tune.csv", _csv(summary.rows))
    plot_tune(summary, out / "tune.png", cfg.tune.schedules, dpi)
    return summary

