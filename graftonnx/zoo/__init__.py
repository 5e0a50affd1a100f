"""Model-zoo batches: run the whole graft pipeline over many models, resumably, locally or on Ray.

``run_zoo(manifest, out)`` runs every entry's steps (see :mod:`graftonnx.zoo.pipeline`)
through an executor, then writes ``out/summary.md`` and ``out/summary.json`` from the
journal.  Why the summary is built from the journal and not from return values: a
resumed run, a run whose models finished in other processes or Ray workers, and an
uninterrupted run then produce the same summary by construction.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._io import atomic_write_json, atomic_write_text
from ..engine import (
    DONE,
    EXECUTORS,
    FAILED,
    ExecutorConfig,
    Outcome,
    StepRecord,
    check_out_folder,
    make_jobs,
    run_batch,
)
from ..errors import BadInput
from .manifest import Manifest, ModelEntry, load_manifest, manifest_from_folder
from .pipeline import step_names, variant_names, zoo_steps

__all__ = ["run_zoo", "ZooResult", "SummaryRow", "build_summary", "summary_markdown", "check_out_folder",
           "SUMMARY_FORMAT", "EXECUTORS", "ExecutorConfig", "DONE", "FAILED", "Manifest", "ModelEntry",
           "load_manifest", "manifest_from_folder", "step_names", "variant_names", "zoo_steps"]

SUMMARY_FORMAT = "graftonnx-zoo-summary"


@dataclass(frozen=True)
class SummaryRow:
    """One model variant: UNR (unstable neurons per image), SA, VA (unsat / exported properties), verify time."""

    model: str
    variant: str
    ratio: float | None
    unr: float | None
    sa: float | None
    va: float | None
    verified: int | None
    instances: int | None
    verify_seconds: float | None
    status: str
    error: str = ""


@dataclass(frozen=True)
class ZooResult:
    rows: tuple[SummaryRow, ...]
    outcomes: tuple[Outcome, ...]
    out: Path

    @property
    def models(self) -> tuple[str, ...]:
        """Every model of the run (by name), failed or not."""
        return tuple(sorted({r.model for r in self.rows}))

    @property
    def failed(self) -> tuple[str, ...]:
        """The models with a failed step (the CLI exits 1 when this is every model)."""
        return tuple(sorted({r.model for r in self.rows if r.status == FAILED}))


def _write(path: Path, write: Callable[[Path], None]) -> None:
    """An atomic write whose OSError (disk full, read-only) becomes one BadInput line; the journal is untouched."""
    try:
        write(path)
    except OSError as exc:
        raise BadInput(f"cannot write {path}: {exc.strerror}; free space or fix the folder, then rerun the same "
                       "command to resume") from None


def run_zoo(manifest: Manifest, out: str | os.PathLike[str], executor: str = "local",
            cfg: ExecutorConfig | None = None, threads: int = 1,
            on_outcome: Callable[[Outcome], None] | None = None) -> ZooResult:
    """Run (or resume) every model of ``manifest`` into ``out``; write summary.md/.json; return the rows."""
    root = check_out_folder(out)
    jobs = make_jobs("zoo", [(e.name, e) for e in manifest.entries], root, threads)
    _write(root / "manifest.json", lambda p: atomic_write_json(p, {"source": manifest.source, "models": [
        e.to_json() for e in manifest.entries]}))
    outcomes, journal = run_batch(jobs, root, executor, cfg, on_outcome)
    rows = build_summary(manifest, journal.records())
    _write(root / "summary.json", lambda p: atomic_write_json(p, {"format": SUMMARY_FORMAT,
                                                                   "rows": [asdict(r) for r in rows]}))
    _write(root / "summary.md", lambda p: atomic_write_text(p, summary_markdown(rows)))
    return ZooResult(tuple(rows), tuple(outcomes), root)


def _latest(entry: ModelEntry, records: list[StepRecord]) -> tuple[dict[str, StepRecord], str]:
    """Finished steps of ``entry`` (its settings only) and the error of a failed step that was not redone."""
    fp = entry.fingerprint()
    done: dict[str, StepRecord] = {}
    failed: dict[str, str] = {}
    for r in records:
        if r.model != entry.name or r.fingerprint != fp:
            continue
        if r.status == DONE:
            done[r.step] = r
            failed.pop(r.step, None)
        else:
            done.pop(r.step, None)
            failed[r.step] = r.error
    error = next((f"{s}: {failed[s]}" for s in step_names(entry) if s in failed), "")
    return done, error


def _model_rows(entry: ModelEntry, records: list[StepRecord]) -> list[SummaryRow]:
    done, error = _latest(entry, records)
    status = DONE if all(s in done for s in step_names(entry)) else (FAILED if error else "incomplete")
    verify = done["verify"].metrics.get("variants", {}) if "verify" in done else {}
    rows = []
    for i, variant in enumerate(variant_names(entry)):
        ratio = None if i == 0 else entry.ratios[i - 1]
        step = "score" if ratio is None else (f"finetune:{ratio:g}" if entry.finetune is not None else
                                              f"graft:{ratio:g}")
        m = done[step].metrics if step in done else {}
        v: dict[str, Any] = verify.get(variant, {})
        rows.append(SummaryRow(entry.name, variant, ratio, m.get("unr"), m.get("sa"), v.get("va"), v.get("unsat"),
                               v.get("n"), v.get("seconds"), status, error))
    return rows


def build_summary(manifest: Manifest, records: list[StepRecord]) -> list[SummaryRow]:
    """Rows for every model and variant of ``manifest``, from journal ``records``."""
    return [row for e in manifest.entries for row in _model_rows(e, records)]


def _fmt(v: float | int | None, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def summary_markdown(rows: list[SummaryRow] | tuple[SummaryRow, ...]) -> str:
    """The summary table (UNR = unstable ReLUs per image; VA = verified / exported properties)."""
    lines = ["# graftonnx zoo summary", "",
             "UNR: unstable ReLU neurons per image (summed over layers); SA: clean accuracy on the zoo data;",
             "VA: fraction of exported properties verified (unsat); verify s: total verifier seconds.", "",
             "| model | variant | UNR | SA | VA | verified | verify s | status |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        verified = "–" if r.verified is None else f"{r.verified}/{r.instances}"
        status = r.status + (f": {r.error}" if r.error else "")
        lines.append(f"| {r.model} | {r.variant} | {_fmt(r.unr, '.2f')} | {_fmt(r.sa, '.3f')} | {_fmt(r.va, '.3f')} "
                     f"| {verified} | {_fmt(r.verify_seconds, '.2f')} | {status.replace('|', '/')} |")
    return "\n".join(lines) + "\n"
