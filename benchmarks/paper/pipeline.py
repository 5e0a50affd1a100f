"""The Table-1 benchmark as a pipeline of graftonnx's engine: one job per network, one step per row.

Steps: ``base`` (the ungrafted network) → ``scores`` (one ScoreTable for every row) →
``variant:<row>`` (graft, finetune, SA/RA) → ``lirpa:<rows>`` / ``nsat:<rows>`` (export one
benchmark folder for all rows, verify; every instance journaled; ``nsat-abcrown:<rows>``
when the complete verifier is α,β-CROWN) → ``rows:<rows>`` (the report and ``rows.json``,
with every instance's counted verdict and time, so rows pair instance by instance).  Why
the engine: the zoo and the demo run the same way, an interrupted run resumes at the step
that was running, and a job folder made with other settings is refused.  The settings
fingerprint leaves out *which rows* exist, so adding a row reuses the models of the
others; the verify and rows steps are named after the row set, so they rerun (reusing
every verified instance) when it changes.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from graftonnx._io import atomic_write_text
from graftonnx.engine import DONE, PIPELINES, Ctx, Step, make_jobs, run_batch
from graftonnx.errors import GraftFailure
from graftonnx.report import ReportOptions, build_report
from graftonnx.scoring import ScoreTable
from graftonnx.verify import verify_benchmark
from graftonnx.verify.backends.lirpa import LirpaOptions

from .carry import drop_stale
from .config import Mode, NetJob, complete_backend, fingerprint_fields, settings_key
from .nets import base_network, splits_for
from .rows import (
    Variant,
    _accuracy,
    _elapsed,
    _export,
    _instance_accuracy,
    _log,
    _make_variant,
    _row,
    _scores,
    machine,
    per_instance,
    variants_of,
)

__all__ = ["PaperJob", "paper_steps", "run_jobs"]


@dataclass(frozen=True)
class PaperJob:
    """One network's rows under one mode."""

    job: NetJob
    mode: Mode

    def fingerprint(self) -> str:
        rows_free = replace(self.job, criteria=(), ratios=(), extra=(), nsat=(), sweep=())
        m = self.mode
        return settings_key(fingerprint_fields(rows_free), fingerprint_fields(m.budget), m.seed, m.lr, m.finetune_lr)


def _splits(ctx: Ctx) -> Any:
    return ctx.cached("splits", lambda: splits_for(ctx.config.job, ctx.config.mode))


def _base(ctx: Ctx) -> Any:
    pj = ctx.config
    return ctx.cached("base", lambda: base_network(pj.job, pj.mode, _splits(ctx), ctx.root / "cache"))


def _base_step(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    path = ctx.dir / "base.json"
    atomic_write_text(path, json.dumps(_base(ctx)[1], indent=1, default=str) + "\n")
    return {"base": ctx.rel(path)}, {}


def _scores_step(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    pj = ctx.config
    scores = _scores(pj.job, pj.mode, _base(ctx)[0], _splits(ctx), ctx.dir)
    path = ctx.dir / f"scores-{pj.mode.budget.score_bound}-{len(_splits(ctx).score)}.json"
    scores.save(path)
    return {"scores": ctx.rel(path)}, {}


def _variant_step(ctx: Ctx, v: Variant) -> tuple[dict[str, str], dict[str, Any]]:
    pj, models = ctx.config, ctx.dir / "models"
    models.mkdir(parents=True, exist_ok=True)
    path, meta = models / f"{v.name}.onnx", models / f"{v.name}.json"
    scores = None if v.criterion == "baseline" else ScoreTable.load(ctx.output("scores", "scores"))
    _log(f"{pj.job.key}: building {v.name}")
    rec = {"variant": asdict(v)} | _make_variant(v, pj.job, pj.mode, _base(ctx)[0], _splits(ctx), scores, path)
    rec |= _accuracy(path, pj.job, pj.mode, _splits(ctx))
    _log(f"{pj.job.key}: {v.name}: SA {rec['sa']:.1f} RA {rec['ra']:.1f}")
    atomic_write_text(meta, json.dumps(rec, indent=1, default=str) + "\n")
    return {"model": ctx.rel(path), "record": ctx.rel(meta)}, {}


def _journal_name(tag: str, backend: str) -> str:
    """``lirpa.jsonl``, ``nsat.jsonl`` (NeuralSAT, as before), ``nsat-abcrown.jsonl`` (α,β-CROWN)."""
    return f"{tag}.jsonl" if backend in ("lirpa", "neuralsat") else f"{tag}-{backend}.jsonl"


def _backend_options(backend: str, pj: PaperJob) -> Any:
    """The verifier's options: lirpa's bound method; α,β-CROWN from $ABCROWN when $ABCROWN_PATH is unset."""
    if backend == "lirpa":
        return LirpaOptions(method=pj.job.method(pj.mode.budget))
    if backend == "abcrown" and not os.environ.get("ABCROWN_PATH"):
        from graftonnx.verify.backends.abcrown import AbcrownOptions

        return AbcrownOptions(path=os.environ["ABCROWN"])
    return None  # NeuralSAT runs with MIP off: its backend's default (graftonnx/verify/backends/neuralsat.py)


def _verify_step(ctx: Ctx, tag: str, names: list[str], backend: str) -> tuple[dict[str, str], dict[str, Any]]:
    pj = ctx.config
    b = pj.mode.budget
    n = (pj.job.lirpa_instances or b.n_lirpa) if tag == "lirpa" else (pj.job.nsat_instances or b.n_nsat)
    _log(f"{pj.job.key}: {backend} on {n} instances × {len(names)} models")
    bench, journal = _export(pj.job, pj.mode, _splits(ctx), ctx.dir, names, n, tag), ctx.dir / _journal_name(tag,
                                                                                                            backend)
    if dropped := drop_stale(bench, journal):
        _log(f"{pj.job.key}: {dropped} journaled results were of other files (rebuilt models): verifying them again")
    verify_benchmark(bench, backend, _backend_options(backend, pj), journal, workers=b.workers, progress=False)
    return {"bench": ctx.rel(bench), "journal": ctx.rel(journal)}, {"backend": backend}


def _report(ctx: Ctx, step: str | None) -> dict[str, Any]:
    if step is None:
        return {}
    bench, journal = ctx.output(step, "bench"), ctx.output(step, "journal")
    report = build_report([journal], bench, ReportOptions(bound=ctx.config.mode.budget.unr_bound))
    return {r.name: r for r in report.rows}


def _instances(ctx: Ctx, step: str | None) -> dict[str, tuple[list[str], list[float | None]]]:
    if step is None:
        return {}
    return per_instance(ctx.output(step, "bench"), ctx.output(step, "journal"), _backend_of(ctx, step))


def _backend_of(ctx: Ctx, step: str) -> str:
    """The verifier a verify step ran (journals of runs before this was recorded: lirpa or NeuralSAT)."""
    return str(ctx.done[step].metrics.get("backend") or ("lirpa" if step.startswith("lirpa") else "neuralsat"))


def _rows_step(ctx: Ctx, lirpa: str, nsat: str | None) -> tuple[dict[str, str], dict[str, Any]]:
    pj, splits = ctx.config, _splits(ctx)
    crown, ns = _report(ctx, lirpa), _report(ctx, nsat)
    crown_each, ns_each = _instances(ctx, lirpa), _instances(ctx, nsat)
    complete = _backend_of(ctx, nsat) if nsat else complete_backend(pj.mode.budget)
    rows = []
    for v in variants_of(pj.job):
        rec = json.loads(ctx.output(f"variant:{v.name}", "record").read_text())
        row = _row(pj.job, v, rec, crown[v.name], ns.get(v.name))
        path = ctx.output(f"variant:{v.name}", "model")
        sa_v, ra_v, clean = _instance_accuracy(path, pj.job, pj.mode, splits, row.n_crown)
        verdicts, times = crown_each.get(v.name, ([], []))
        row = replace(row, sa_verify=sa_v, ra_verify=ra_v, clean=clean, crown_verdicts=tuple(verdicts),
                      crown_times=tuple(times), crown_method=pj.job.method(pj.mode.budget), complete_backend=complete)
        if row.n_nsat:
            nv, nt = ns_each[v.name]
            # the complete column's images are the first n_nsat of the lirpa column's: the same attack's verdicts
            ra_n = 100 * sum(clean[:row.n_nsat]) / row.n_nsat if row.n_nsat <= len(clean) else \
                _instance_accuracy(path, pj.job, pj.mode, splits, row.n_nsat)[1]
            row = replace(row, ra_verify_nsat=ra_n, nsat_verdicts=tuple(nv), nsat_times=tuple(nt))  # type: ignore[arg-type]
        rows.append(row)
    base = json.loads(ctx.output("base", "base").read_text())
    seconds = sum(r.seconds for r in ctx.done.values())
    steps = {name: round(r.seconds, 1) for name, r in ctx.done.items()}
    result = {"job": asdict(pj.job), "data": splits.describe, "base": base,
              "layer_sizes": {x.site: x.size for x in crown["baseline"].unr.layers},
              "rows": [asdict(r) for r in rows], "seconds": _elapsed(ctx.dir, seconds), "step_seconds": steps,
              "machine": machine()}
    path = ctx.dir / "rows.json"
    atomic_write_text(path, json.dumps(result, indent=1, default=str) + "\n")
    return {"rows": ctx.rel(path)}, {}


@PIPELINES.register("paper")
def paper_steps(pj: PaperJob) -> list[Step]:
    """base → scores → one step per row → lirpa (→ nsat) → rows."""
    job, variants = pj.job, variants_of(pj.job)
    names = [v.name for v in variants]
    steps = [Step("base", _base_step), Step("scores", _scores_step, ("base",))]
    steps += [Step(f"variant:{v.name}", lambda ctx, v=v: _variant_step(ctx, v), ("base", "scores")) for v in variants]
    built = tuple(s.name for s in steps[2:])
    lirpa = f"lirpa:{settings_key(names)[:8]}"
    steps.append(Step(lirpa, lambda ctx: _verify_step(ctx, "lirpa", names, "lirpa"), built))
    nsat_names = [v.name for v in variants if ((v.criterion, v.ratio, v.tune) if v.tune else (v.criterion, v.ratio))
                  in job.nsat and v.init == job.init and v.schedule == job.schedule and v.granularity == "neuron"]
    backend = complete_backend(pj.mode.budget)  # α,β-CROWN or NeuralSAT: a switch reruns the step (new name)
    tag = "nsat" if backend == "neuralsat" else f"nsat-{backend}"
    nsat = f"{tag}:{settings_key(nsat_names)[:8]}" if nsat_names else None
    if nsat:
        steps.append(Step(nsat, lambda ctx: _verify_step(ctx, "nsat", nsat_names, backend), built))
    # a switch of complete verifier renames the rows step too (NeuralSAT keeps the name earlier runs journaled)
    rows = f"rows:{settings_key(names, nsat_names, *(() if backend == 'neuralsat' else (backend,)))[:8]}"
    return steps + [Step(rows, lambda ctx: _rows_step(ctx, lirpa, nsat), (lirpa, *((nsat,) if nsat else ())))]


def run_jobs(jobs: list[NetJob], mode: Mode, out: Path) -> list[dict[str, object]]:
    """Every job's rows (resumed from ``out/journal.jsonl``); a failed step fails the benchmark."""
    batch = make_jobs("paper", [(j.key, PaperJob(j, mode)) for j in jobs], out)
    outcomes, _ = run_batch(batch, out)
    for o in outcomes:
        if o.status != DONE:
            raise GraftFailure(f"paper job {o.model} failed in step {o.error}")
        if not o.ran:
            _log(f"{o.model}: already done")
    return [json.loads((out / j.key / "rows.json").read_text()) for j in jobs]
