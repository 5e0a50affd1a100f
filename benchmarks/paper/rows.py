"""One network → its Table-1 rows: graft every (criterion, ratio), finetune, export, verify, measure.

Why through the library's own stages (score → plan → graft → finetune → export → verify →
report) and nothing hand-rolled: the benchmark must measure what a user of graftonnx gets.
Every variant is scored once (one ScoreTable for all criteria and ratios), every
finetune — the baseline's included — gets the same epochs and learning rates, and all
variants of a network are exported into ONE benchmark folder, so they are verified on the
same seeded instances (ERAN test images in a seeded order, none skipped: a misclassified
image is simply not verifiable).  Every step is cached in the job folder, so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from graftonnx import api
from graftonnx._io import atomic_write_text
from graftonnx.bench.export import export_benchmark
from graftonnx.errors import BadInput
from graftonnx.report import ModelMetrics, ReportOptions, build_report
from graftonnx.scoring import ScoreTable
from graftonnx.train import EvalConfig, TrainConfig, evaluate
from graftonnx.train.api import finetune
from graftonnx.verify import BackendOptions, read_instances, verify_benchmark

from .config import Mode, NetJob, settings_key
from .nets import Splits, base_network, splits_for, subset

__all__ = ["Variant", "Row", "variants_of", "run_job", "machine"]


@dataclass(frozen=True)
class Variant:
    """One row: ``criterion == "baseline"`` is the ungrafted network (same finetuning budget)."""

    criterion: str
    ratio: float
    init: str
    schedule: str = "total"
    granularity: str = "neuron"

    @property
    def name(self) -> str:
        if self.criterion == "baseline":
            return "baseline"
        init = "" if self.init == "const" or self.criterion == "prune" else f"-{self.init}"
        staged = self.criterion in ("combined", "prune") and self.schedule != "total"
        gran = "" if self.granularity == "neuron" else f"-{self.granularity}"
        return f"{self.criterion}{round(100 * self.ratio)}{init}" + (f"-{self.schedule}" if staged else "") + gran


@dataclass(frozen=True)
class Row:
    """Every measured column of one variant (accuracies in %, UNR in %, times in seconds)."""

    job: str
    variant: str
    criterion: str
    ratio: float
    init: str
    finetuned: bool
    grafted_neurons: int
    relu_neurons: int
    unr: float
    unr_layers: dict[str, float]
    unr_bound: str
    sa: float
    ra: float
    n_heldout: int
    va_crown: float
    n_crown: int
    crown_mean_time: float | None
    va_nsat: float | None = None
    n_nsat: int = 0
    nsat_mean_time: float | None = None
    nsat_mean_time_nonsat: float | None = None
    nsat_timeouts: int = 0
    nsat_sat: int = 0
    nsat_unsat: int = 0
    nsat_errors: int = 0
    nsat_times: tuple[float, ...] = ()
    nsat_verdicts: tuple[str, ...] = ()
    finetune_seconds: float | None = None
    sa_verify: float | None = None  # SA / RA on exactly the CROWN instance images (ERAN)
    ra_verify: float | None = None
    ra_verify_nsat: float | None = None  # RA on exactly the NeuralSAT instance images
    schedule: str = "total"  # λ schedule of combined / prune rows (specs/selection.md)


def _log(msg: str) -> None:
    print(f"[paper] {msg}", file=sys.stderr, flush=True)


def variants_of(job: NetJob) -> list[Variant]:
    """Baseline, every criterion × ratio (with the job's init), then the job's extra rows."""
    out = [Variant("baseline", 0.0, job.init, job.schedule)]
    out += [Variant(c, r, job.init, job.schedule) for c in job.criteria for r in job.ratios]
    out += [Variant(*x) if len(x) >= 4 else Variant(*x, job.schedule) for x in job.extra]  # type: ignore[misc]
    return list(dict.fromkeys(out))


def _finetune_cfg(job: NetJob, mode: Mode) -> TrainConfig:
    return TrainConfig(epochs=mode.budget.finetune_epochs, eps=job.eps, lr=mode.finetune_lr, batch_size=128,
                       seed=mode.seed, progress=False)


def _make_variant(v: Variant, job: NetJob, mode: Mode, base: onnx.ModelProto, splits: Splits, scores: object,
                  path: Path) -> dict[str, object]:
    """Graft (unless baseline) and finetune (when the job finetunes); save to ``path``; return its record."""
    t0 = time.perf_counter()
    model, neurons = base, 0
    if v.criterion != "baseline":
        settings = api.GraftSettings(eps=job.eps, bound=mode.budget.score_bound, criterion=v.criterion,
                                     ratio=v.ratio, init=v.init, seed=mode.seed, schedule=v.schedule,
                                     granularity=v.granularity)
        plan = api.plan(base, splits.score, settings, scores=scores)  # type: ignore[arg-type]
        grafted = api.graft(base, plan=plan)
        model, neurons = grafted.model, _grafted_count(grafted)
    record: dict[str, object] = {"grafted_neurons": neurons, "graft_seconds": round(time.perf_counter() - t0, 2)}
    if job.finetune and splits.train is not None:
        out = finetune(model, splits.train, _finetune_cfg(job, mode))
        model = out.model
        record |= {"finetune_seconds": round(out.result.seconds, 1), "best_epoch": out.result.best_epoch,
                   "finetune_notes": list(out.result.notes)}
    api.save_model(model, path)
    return record


def _grafted_count(result: api.GraftResult) -> int:
    from graftonnx.report import graft_info

    return int(graft_info(result.model, result.info).neurons or 0)


def _scores(job: NetJob, mode: Mode, base: onnx.ModelProto, splits: Splits, folder: Path) -> ScoreTable:
    """The job's one ScoreTable (all criteria and ratios share it), cached in the job folder."""
    path = folder / f"scores-{mode.budget.score_bound}-{len(splits.score)}.json"
    if path.is_file():
        return ScoreTable.load(path)
    _log(f"{job.key}: scoring {len(splits.score)} images with {mode.budget.score_bound}")
    scores = api.score(base, splits.score, api.GraftSettings(eps=job.eps, bound=mode.budget.score_bound))
    scores.save(path)
    return scores


def _accuracy(model_path: Path, job: NetJob, mode: Mode, splits: Splits) -> dict[str, float]:
    b = mode.budget
    res = evaluate(api.load(model_path), splits.heldout, EvalConfig(eps=job.eps, steps=b.pgd_steps,
                                                                    restarts=b.pgd_restarts, seed=mode.seed))
    return {"sa": 100 * res.sa, "ra": 100 * res.ra, "n_heldout": res.n, "ra_unconfirmed": res.unconfirmed}


def _instance_accuracy(model_path: Path, job: NetJob, mode: Mode, splits: Splits, n: int) -> tuple[float, float]:
    """(SA, RA) in % on the first ``n`` verification images in the export's seeded order (the VA images)."""
    idx = np.random.default_rng(mode.seed).permutation(len(splits.verify))[:n]
    b = mode.budget
    res = evaluate(api.load(model_path), subset(splits.verify, idx),
                   EvalConfig(eps=job.eps, steps=b.pgd_steps, restarts=b.pgd_restarts, seed=mode.seed))
    return 100 * res.sa, 100 * res.ra


def _build_models(job: NetJob, mode: Mode, splits: Splits, folder: Path) -> dict[str, dict[str, object]]:
    """Every variant's ONNX under ``folder/models`` with its record (graft, finetune, SA/RA), cached."""
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    base, base_meta = base_network(job, mode, splits, folder.parent / "cache")
    atomic_write_text(folder / "base.json", json.dumps(base_meta, indent=1, default=str) + "\n")
    scores = None
    records: dict[str, dict[str, object]] = {}
    for v in variants_of(job):
        path, meta = models / f"{v.name}.onnx", models / f"{v.name}.json"
        if path.is_file() and meta.is_file():
            records[v.name] = json.loads(meta.read_text())
            continue
        if scores is None and v.criterion != "baseline":
            scores = _scores(job, mode, base, splits, folder)
        _log(f"{job.key}: building {v.name}")
        rec = {"variant": asdict(v)} | _make_variant(v, job, mode, base, splits, scores, path)
        rec |= _accuracy(path, job, mode, splits)
        _log(f"{job.key}: {v.name}: SA {rec['sa']:.1f} RA {rec['ra']:.1f}")
        atomic_write_text(meta, json.dumps(rec, indent=1, default=str) + "\n")
        records[v.name] = rec
    return records


def _export(job: NetJob, mode: Mode, splits: Splits, folder: Path, names: list[str], n: int, tag: str) -> Path:
    bench = folder / f"bench-{tag}"
    if not bench.is_dir():
        timeout = mode.budget.nsat_timeout if tag == "nsat" else mode.budget.lirpa_timeout
        export_benchmark([folder / "models" / f"{x}.onnx" for x in names], splits.verify, job.eps, n, mode.seed,
                         bench, timeout, skip="none")
    return bench


def _prune_journal(bench: Path, journal: Path) -> None:
    """Drop journal lines of instances the (re-exported, smaller) benchmark no longer lists; keep the rest."""
    if not journal.is_file():
        return
    keys = {i.key for i in read_instances(bench)}
    lines = [ln for ln in journal.read_text().splitlines(keepends=True) if ln.strip()]
    keep = [ln for ln in lines if json.loads(ln).get("instance") in keys]
    if len(keep) != len(lines):
        atomic_write_text(journal, "".join(keep))


def _verify(bench: Path, backend: str, mode: Mode, journal: Path) -> list[ModelMetrics]:
    opts = BackendOptions(method="crown")
    _prune_journal(bench, journal)
    # NeuralSAT runs with MIP off: the backend's default (graftonnx/verify/backends/neuralsat.py says why)
    verify_benchmark(bench, backend, opts, journal, workers=mode.budget.workers, progress=False)
    report = build_report([journal], bench, ReportOptions(bound=mode.budget.unr_bound))
    return list(report.rows)


def _row(job: NetJob, v: Variant, rec: dict[str, object], crown: ModelMetrics, nsat: ModelMetrics | None) -> Row:
    row = Row(job.key, v.name, v.criterion, v.ratio, v.init, job.finetune, int(rec["grafted_neurons"]),  # type: ignore[call-overload]
              crown.unr.neurons, 100 * crown.unr.unr, {x.site: 100 * x.unr for x in crown.unr.layers},
              crown.unr.bound, float(rec["sa"]), float(rec["ra"]), int(rec["n_heldout"]),  # type: ignore[arg-type,call-overload]
              100 * (crown.va or 0.0), crown.instances, crown.mean_time,
              finetune_seconds=rec.get("finetune_seconds"), schedule=v.schedule)  # type: ignore[arg-type]
    if nsat is None or not nsat.backend:
        return row
    non_sat = [t for t, x in zip(nsat.times, nsat.verdicts, strict=True) if x != "sat"]
    return replace(row, va_nsat=100 * (nsat.va or 0.0), n_nsat=nsat.instances, nsat_mean_time=nsat.mean_time,
                   nsat_mean_time_nonsat=sum(non_sat) / len(non_sat) if non_sat else None,
                   nsat_timeouts=nsat.timeouts, nsat_sat=nsat.sat, nsat_unsat=nsat.unsat, nsat_errors=nsat.errors,
                   nsat_times=nsat.times, nsat_verdicts=nsat.verdicts)


def _claim_folder(job: NetJob, mode: Mode, folder: Path) -> None:
    """Record the settings that fill ``folder``; refuse to resume a folder made with other settings.

    Why: every model, journal and score file in the folder is cached by name only, so a run
    with a changed budget or job (say another scoring bound) would silently reuse stale work.
    """
    stamp = folder / "settings.json"
    # which rows exist is not a setting of any one row: adding rows keeps the folder (delete rows.json and
    # bench-*/ to re-verify; models and journal lines of unchanged rows are reused)
    rows_free = replace(job, criteria=(), ratios=(), extra=(), nsat=())
    want = {"key": settings_key(rows_free, mode.budget, mode.seed, mode.lr, mode.finetune_lr)}
    if stamp.is_file() and json.loads(stamp.read_text()) != want:
        raise BadInput(f"{folder} was made with other settings: delete it or give another --out")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps(want) + "\n")


def _elapsed(folder: Path, this_run: float) -> list[float]:
    """Wall seconds of every run that completed this job folder (a resumed run only does the missing work)."""
    path = folder / "elapsed.json"
    runs = json.loads(path.read_text()) if path.is_file() else []
    runs.append(round(this_run, 1))
    atomic_write_text(path, json.dumps(runs) + "\n")
    return runs


def run_job(job: NetJob, mode: Mode, out: Path) -> dict[str, object]:
    """All rows of ``job`` (cached in ``out/<job.key>/rows.json`` once complete)."""
    folder = out / job.key
    done = folder / "rows.json"
    if done.is_file():
        _log(f"{job.key}: already done ({done})")
        return json.loads(done.read_text())
    t0 = time.perf_counter()
    _claim_folder(job, mode, folder)
    splits = splits_for(job, mode)
    records = _build_models(job, mode, splits, folder)
    variants = variants_of(job)
    names = [v.name for v in variants]
    nsat_names = [v.name for v in variants if (v.criterion, v.ratio) in job.nsat and v.init == job.init
                  and v.schedule == job.schedule]
    n_lirpa = job.lirpa_instances or mode.budget.n_lirpa
    _log(f"{job.key}: lirpa CROWN on {n_lirpa} instances × {len(names)} models")
    crown = {r.name: r for r in _verify(_export(job, mode, splits, folder, names, n_lirpa, "lirpa"),
                                        "lirpa", mode, folder / "lirpa.jsonl")}
    nsat: dict[str, ModelMetrics] = {}
    if nsat_names:
        n = job.nsat_instances or mode.budget.n_nsat
        _log(f"{job.key}: NeuralSAT on {n} instances × {len(nsat_names)} models")
        bench = _export(job, mode, splits, folder, nsat_names, n, "nsat")
        nsat = {r.name: r for r in _verify(bench, "neuralsat", mode, folder / "nsat.jsonl")}
    rows = []
    for v in variants:
        row = _row(job, v, records[v.name], crown[v.name], nsat.get(v.name))
        path = folder / "models" / f"{v.name}.onnx"
        sa_v, ra_v = _instance_accuracy(path, job, mode, splits, row.n_crown)
        row = replace(row, sa_verify=sa_v, ra_verify=ra_v)
        if row.n_nsat:
            row = replace(row, ra_verify_nsat=_instance_accuracy(path, job, mode, splits, row.n_nsat)[1])
        rows.append(row)
    base = json.loads((folder / "base.json").read_text())
    sizes = {x.site: x.size for x in crown["baseline"].unr.layers}
    result = {"job": asdict(job), "data": splits.describe, "base": base, "layer_sizes": sizes,
              "rows": [asdict(r) for r in rows],
              "seconds": _elapsed(folder, time.perf_counter() - t0), "machine": machine()}
    atomic_write_text(done, json.dumps(result, indent=1, default=str) + "\n")
    return result


def machine() -> dict[str, object]:
    """Where the numbers come from: CPU, cores, Python and the library versions that matter."""
    import importlib.metadata as md

    import torch

    def ver(pkg: str) -> str:
        try:
            return md.version(pkg)
        except md.PackageNotFoundError:
            return "absent"

    cpu = platform.machine()
    with contextlib.suppress(OSError):
        names = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                 if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    return {"cpu": cpu, "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
            "platform": platform.platform(), "torch": torch.__version__, "onnxruntime": ver("onnxruntime"),
            "onnx": ver("onnx"), "neuralsat": ver("neuralsat"), "graftonnx": api.__version__}
