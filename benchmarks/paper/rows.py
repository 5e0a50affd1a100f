"""One network → its Table-1 rows: graft every (criterion, ratio), finetune, export, verify, measure.

Why through the library's own stages (score → plan → graft → finetune → export → verify →
report) and nothing hand-rolled: the benchmark must measure what a user of graftonnx gets.
Every variant is scored once (one ScoreTable for all criteria and ratios), every
finetune — the baseline's included — gets the same epochs and learning rates, and all
variants of a network are exported into ONE benchmark folder, so they are verified on the
same seeded instances (ERAN test images in a seeded order, none skipped: a misclassified
image is simply not verifiable).  The steps are run by graftonnx's pipeline engine
(benchmarks/paper/pipeline.py), so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from graftonnx import api
from graftonnx._io import atomic_write_text
from graftonnx.bench.export import export_benchmark
from graftonnx.report import ModelMetrics
from graftonnx.scoring import ScoreTable
from graftonnx.train import EvalConfig, TrainConfig, evaluate
from graftonnx.train.api import finetune
from graftonnx.verify import Verdict, read_instances

from .config import DISTIL_EPOCHS, Mode, NetJob
from .nets import Splits, subset

__all__ = ["Variant", "Row", "variants_of", "machine", "per_instance"]


@dataclass(frozen=True)
class Variant:
    """One row: ``criterion == "baseline"`` is the ungrafted network (same finetuning budget)."""

    criterion: str
    ratio: float
    init: str
    schedule: str = "total"
    granularity: str = "neuron"
    #: "" finetunes as the job does; "teacher" distils from the ungrafted network on the scoring images
    #: without their labels (for a net whose training set is not here: ResNet-2B)
    tune: str = ""

    @property
    def name(self) -> str:
        if self.criterion == "baseline":
            return "baseline"
        init = "" if self.init == "const" or self.criterion == "prune" else f"-{self.init}"
        staged = self.criterion in ("combined", "prune") and self.schedule != "total"
        gran = "" if self.granularity == "neuron" else f"-{self.granularity}"
        tune = "-distilled" if self.tune == "teacher" else ""
        return f"{self.criterion}{round(100 * self.ratio)}{init}" + (f"-{self.schedule}" if staged else "") \
            + gran + tune


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
    granularity: str = "neuron"
    tune: str = ""  # "teacher": distilled from the ungrafted network, no labels (Variant.tune)
    crown_method: str = "crown"  # the lirpa column's bound (crown | alpha-crown)
    complete_backend: str = "neuralsat"  # the complete column's verifier (neuralsat | abcrown)
    #: per instance, in the benchmark's instance order (the same images, in the same order, for every row
    #: of a job; the complete column's images are the first n_nsat of these): counted verdicts ("missing"
    #: where the journal has none), wall seconds, and whether the image is correctly classified and not
    #: attacked by PGD (the paper's time population).  Why kept: McNemar pairs rows instance by instance.
    crown_verdicts: tuple[str, ...] = ()
    crown_times: tuple[float | None, ...] = ()
    clean: tuple[bool, ...] = ()


def _log(msg: str) -> None:
    print(f"[paper] {msg}", file=sys.stderr, flush=True)


def variants_of(job: NetJob) -> list[Variant]:
    """Baseline, every criterion × ratio (with the job's init), the sweep's combined rows, then the extra rows."""
    out = [Variant("baseline", 0.0, job.init, job.schedule)]
    out += [Variant(c, r, job.init, job.schedule) for c in job.criteria for r in job.ratios]
    out += [Variant("combined", r, job.init, job.schedule) for r in job.sweep if r > 0]
    out += [Variant(*x) if len(x) >= 4 else Variant(*x, job.schedule) for x in job.extra]  # type: ignore[misc]
    return list(dict.fromkeys(out))


def _finetune_cfg(job: NetJob, mode: Mode) -> TrainConfig:
    return TrainConfig(epochs=mode.budget.finetune_epochs, eps=job.eps, lr=mode.finetune_lr, batch_size=128,
                       seed=mode.seed, progress=False)


def _distil_cfg(job: NetJob, mode: Mode) -> TrainConfig:
    """Distillation from the original on few unlabelled images: soft targets only, many epochs, no validation
    split (the settings bench_teacher measured best on ResNet-2B's 50 images: benchmarks/results/teacher.md)."""
    return TrainConfig(epochs=DISTIL_EPOCHS, eps=job.eps, lr=mode.finetune_lr, batch_size=64, seed=mode.seed,
                       val_fraction=0.0, teacher_hard=0.0, progress=False)


def _tune(v: Variant, job: NetJob, mode: Mode, model: onnx.ModelProto, base: onnx.ModelProto,
          splits: Splits) -> tuple[onnx.ModelProto, dict[str, object]]:
    """Finetune one row as it asks: the job's labelled finetune, a distillation, or none."""
    if v.tune == "teacher":
        out = finetune(model, replace(splits.score, y=None, meta=dict(splits.score.meta)), _distil_cfg(job, mode),
                       teacher=base)
    elif job.finetune and splits.train is not None:
        out = finetune(model, splits.train, _finetune_cfg(job, mode))
    else:
        return model, {}
    return out.model, {"finetune_seconds": round(out.result.seconds, 1), "best_epoch": out.result.best_epoch,
                       "finetune_notes": list(out.result.notes)}


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
    model, tuned = _tune(v, job, mode, model, base, splits)
    api.save_model(model, path)
    return record | tuned


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


def _instance_accuracy(model_path: Path, job: NetJob, mode: Mode, splits: Splits, n: int
                       ) -> tuple[float, float, tuple[bool, ...]]:
    """(SA, RA) in % on the first ``n`` verification images in the export's seeded order (the VA images),
    and per image whether it is correctly classified and not attacked."""
    idx = np.random.default_rng(mode.seed).permutation(len(splits.verify))[:n]
    b = mode.budget
    res = evaluate(api.load(model_path), subset(splits.verify, idx),
                   EvalConfig(eps=job.eps, steps=b.pgd_steps, restarts=b.pgd_restarts, seed=mode.seed))
    return 100 * res.sa, 100 * res.ra, res.robust_mask


def per_instance(bench: Path, journal: Path, backend: str) -> dict[str, tuple[list[str], list[float | None]]]:
    """model name → (counted verdicts, seconds) in the benchmark's instance order ("missing": no result yet).

    Counted as the report counts them (:func:`graftonnx.report.counted_verdict`: a late answer is a timeout).
    """
    from graftonnx.report import read_journals
    from graftonnx.report.metrics import counted_verdict

    instances = read_instances(bench)
    done = read_journals([journal], instances, bench) if journal.is_file() else {}
    out: dict[str, tuple[list[str], list[float | None]]] = {}
    for i in instances:
        verdicts, times = out.setdefault(Path(i.model).stem, ([], []))
        rec = done.get((i.key, backend))
        verdicts.append("missing" if rec is None else counted_verdict(rec.result, i.timeout).value)
        times.append(None if rec is None else round(float(rec.result.seconds), 3))
    return out


def _export(job: NetJob, mode: Mode, splits: Splits, folder: Path, names: list[str], n: int, tag: str) -> Path:
    bench = folder / f"bench-{tag}"
    timeout = mode.budget.nsat_timeout if tag == "nsat" else mode.budget.lirpa_timeout
    export_benchmark([folder / "models" / f"{x}.onnx" for x in names], splits.verify, job.eps, n, mode.seed,
                     bench, timeout, skip="none", force=True)
    return bench


def _row(job: NetJob, v: Variant, rec: dict[str, object], crown: ModelMetrics, nsat: ModelMetrics | None) -> Row:
    tuned = job.finetune or bool(v.tune)
    row = Row(job.key, v.name, v.criterion, v.ratio, v.init, tuned, int(rec["grafted_neurons"]),  # type: ignore[call-overload]
              crown.unr.neurons, 100 * crown.unr.unr, {x.site: 100 * x.unr for x in crown.unr.layers},
              crown.unr.bound, float(rec["sa"]), float(rec["ra"]), int(rec["n_heldout"]),  # type: ignore[arg-type,call-overload]
              100 * (crown.va or 0.0), crown.instances, crown.mean_time,
              finetune_seconds=rec.get("finetune_seconds"), schedule=v.schedule,  # type: ignore[arg-type]
              granularity=v.granularity, tune=v.tune)
    if nsat is None or not nsat.backend:
        return row
    non_sat = [t for t, x in zip(nsat.times, nsat.verdicts, strict=True) if x != Verdict.SAT]
    return replace(row, va_nsat=100 * (nsat.va or 0.0), n_nsat=nsat.instances, nsat_mean_time=nsat.mean_time,
                   nsat_mean_time_nonsat=sum(non_sat) / len(non_sat) if non_sat else None,
                   nsat_timeouts=nsat.timeouts, nsat_sat=nsat.sat, nsat_unsat=nsat.unsat, nsat_errors=nsat.errors,
                   nsat_times=nsat.times, nsat_verdicts=nsat.verdicts)


def _elapsed(folder: Path, this_run: float) -> list[float]:
    """Wall seconds of every run that completed this job folder (a resumed run only does the missing work)."""
    path = folder / "elapsed.json"
    runs = json.loads(path.read_text()) if path.is_file() else []
    runs.append(round(this_run, 1))
    atomic_write_text(path, json.dumps(runs) + "\n")
    return runs


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
            "onnx": ver("onnx"), "neuralsat": ver("neuralsat"), "graftonnx": api.__version__,
            "abcrown": os.environ.get("ABCROWN_PATH") or os.environ.get("ABCROWN") or ""}
