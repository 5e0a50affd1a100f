"""One model's zoo run: inspect → score → graft (each ratio) → finetune → export → verify, resumably.

Why steps with their own journal lines: a zoo batch runs for hours over many models; a
kill (SIGTERM, OOM, power) must cost at most the step that was running.  Each step
writes its outputs atomically under ``out/<model>/`` and only then appends its journal
line; a restarted run skips every step the journal lists for the same settings and
reloads its outputs from disk.  Verification has a second, finer journal
(``out/<model>/verify.jsonl``, one line per instance) so even a killed verify step never
verifies a finished instance twice.  Seeds are fixed and threads pinned, so a resumed
run gives the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._io import atomic_write_json
from ..errors import BadInput, GraftError
from .journal import DONE, FAILED, StepRecord, ZooJournal
from .manifest import ModelEntry

__all__ = ["ModelJob", "ModelOutcome", "run_model", "variant_names", "step_names", "sweep_temporaries"]


@dataclass(frozen=True)
class ModelJob:
    """Everything a worker (process or Ray task) needs: picklable, no open handles."""

    entry: ModelEntry
    out: str
    journal: str
    threads: int = 1


@dataclass(frozen=True)
class ModelOutcome:
    """How one model's run ended; ``ran`` lists the steps executed now (not reused from the journal)."""

    model: str
    status: str
    error: str
    ran: tuple[str, ...]


#: Errors of the output folder itself (not of one model): they end the whole batch with a BadInput.
_FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _tag(ratio: float) -> str:
    return f"{ratio:g}"


def variant_names(entry: ModelEntry) -> list[str]:
    """``baseline`` then one variant per ratio: ``graft0.5`` (``graft0.5-ft`` when finetuned)."""
    ft = "-ft" if entry.finetune.epochs > 0 else ""
    return ["baseline"] + [f"graft{_tag(r)}{ft}" for r in entry.ratios]


def step_names(entry: ModelEntry) -> list[str]:
    """The steps of ``entry`` in run order (the journal's ``step`` values)."""
    steps = ["inspect", "score"]
    for r in entry.ratios:
        steps.append(f"graft:{_tag(r)}")
        if entry.finetune.epochs > 0:
            steps.append(f"finetune:{_tag(r)}")
    return steps + ["export", "verify"]


class _Ctx:
    """Lazily loaded model, data and scores, shared by the steps of one run (reloaded from disk on resume)."""

    def __init__(self, job: ModelJob, done: dict[str, StepRecord]) -> None:
        self.job, self.entry, self.done = job, job.entry, done
        self.root = Path(job.out)
        self.dir = self.root / self.entry.name
        self._cache: dict[str, Any] = {}

    def rel(self, p: Path) -> str:
        return str(p.relative_to(self.root))

    def output(self, step: str, key: str) -> Path:
        return self.root / self.done[step].outputs[key]

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def model(self) -> Any:
        from ..model import load_model

        return self.cached("model", lambda: load_model(self.entry.path))

    def info(self) -> Any:
        from ..model import inspect_model

        return self.cached("info", lambda: inspect_model(self.model()))

    def data(self) -> Any:
        from ..data import load_dataset

        e = self.entry
        return self.cached("data", lambda: load_dataset(e.data.source, self.info(), e.data.spec(e.seed)))

    def scores(self) -> Any:
        from ..scoring.table import ScoreTable

        return self.cached("scores", lambda: ScoreTable.load(self.output("score", "scores")))


def _measure(ctx: _Ctx, model: Any) -> dict[str, Any]:
    """UNR (unstable neurons per image, summed over sites) and clean accuracy of ``model`` on the zoo data."""
    from .. import api

    unr = api.unr(model, ctx.data(), ctx.entry.eps, ctx.entry.bound)
    sa = api.accuracy(model, ctx.data())
    return {"unr": round(sum(unr.values()), 6), "sa": None if sa is None else round(sa, 6)}


def _inspect(ctx: _Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    info = ctx.info()
    path = ctx.dir / "info.json"
    atomic_write_json(path, {"model": ctx.entry.path, "relu_sites": [s.name for s in info.relus],
                             "relu_neurons": int(sum(s.size for s in info.relus))})
    if not info.relus:
        raise BadInput(f"model {ctx.entry.path} has no ReLU: there is nothing to graft")
    return {"info": ctx.rel(path)}, {"relu_neurons": int(sum(s.size for s in info.relus))}


def _score(ctx: _Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    from ..scoring.score import score_model

    e = ctx.entry
    table = score_model(ctx.model(), ctx.data(), eps=e.eps, bound=e.bound, info=ctx.info(), model_name=e.name,
                         progress=False)
    path = ctx.dir / "scores.json"
    table.save(path)
    ctx._cache["scores"] = table
    return {"scores": ctx.rel(path)}, _measure(ctx, ctx.model())


def _graft(ctx: _Ctx, ratio: float) -> tuple[dict[str, str], dict[str, Any]]:
    from .. import api

    e = ctx.entry
    settings = api.GraftSettings(eps=e.eps, bound=e.bound, criterion=e.criterion, ratio=ratio, init=e.init,
                                 seed=e.seed, schedule=e.schedule)
    plan = api.plan(ctx.model(), ctx.data(), settings, scores=ctx.scores())
    result = api.graft(ctx.model(), plan=plan)
    path, plan_path = ctx.dir / f"graft{_tag(ratio)}.onnx", ctx.dir / f"graft{_tag(ratio)}.plan.json"
    plan.save(plan_path)
    api.save_model(result.model, path)
    metrics = _measure(ctx, result.model) | {"grafted_neurons": int(plan.grafted_neurons(ctx.info()))}
    return {"model": ctx.rel(path), "plan": ctx.rel(plan_path)}, metrics


def _finetune(ctx: _Ctx, ratio: float) -> tuple[dict[str, str], dict[str, Any]]:
    from .. import api
    from ..model import load_model
    from ..train.api import finetune
    from ..train.config import TrainConfig

    e, ft = ctx.entry, ctx.entry.finetune
    grafted = load_model(ctx.output(f"graft:{_tag(ratio)}", "model"))
    cfg = TrainConfig(epochs=ft.epochs, lr=ft.lr, batch_size=ft.batch_size, eps=e.eps, seed=e.seed, progress=False)
    tuned = finetune(grafted, ctx.data(), cfg).model
    path = ctx.dir / f"graft{_tag(ratio)}-ft.onnx"
    api.save_model(tuned, path)
    return {"model": ctx.rel(path)}, _measure(ctx, tuned)


def _variant_files(ctx: _Ctx) -> dict[str, Path]:
    """Variant name → its ONNX file (the source model for the baseline)."""
    files = {"baseline": Path(ctx.entry.path)}
    for name, r in zip(variant_names(ctx.entry)[1:], ctx.entry.ratios, strict=True):
        step = f"finetune:{_tag(r)}" if ctx.entry.finetune.epochs > 0 else f"graft:{_tag(r)}"
        files[name] = ctx.output(step, "model")
    return files


def _export(ctx: _Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    from ..bench.export import export_benchmark

    e, x = ctx.entry, ctx.entry.export
    files = _variant_files(ctx)
    bench = ctx.dir / "bench"
    # force: a kill between the folder's rename and the journal line leaves a complete folder to replace.
    info = export_benchmark([str(p) for p in files.values()], ctx.data(), e.eps, x.instances, e.seed, bench,
                            x.timeout, skip=x.skip, force=True)
    outputs = {"bench": ctx.rel(bench)} | {f"onnx:{v}": m.path for v, m in zip(files, info.models, strict=True)}
    return outputs, {"properties": info.n_properties, "instances": info.n_instances,
                     "skipped_misclassified": info.skipped_misclassified}


def _verify(ctx: _Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    from ..verify import BackendOptions, verify_benchmark

    v = ctx.entry.verify
    bench = ctx.output("export", "bench")
    results = ctx.dir / "verify.jsonl"
    summary = verify_benchmark(bench, v.backend, BackendOptions(method=v.method), results, v.timeout, 1,
                               progress=False)
    per: dict[str, Any] = {}
    exported = {k.split(":", 1)[1]: p for k, p in ctx.done["export"].outputs.items() if k.startswith("onnx:")}
    for variant, onnx_rel in exported.items():
        rs = [r for r in summary.results if r.model == onnx_rel]
        verdicts = {k: sum(r.verdict == k for r in rs) for k in ("unsat", "sat", "unknown", "timeout", "error")}
        per[variant] = {"n": len(rs), "va": round(verdicts["unsat"] / len(rs), 6) if rs else None,
                        "seconds": round(sum(r.seconds for r in rs), 4)} | verdicts
    return {"results": ctx.rel(results)}, {"variants": per, "reused": summary.reused}


def _step_fn(step: str) -> Callable[[_Ctx], tuple[dict[str, str], dict[str, Any]]]:
    kind, _, arg = step.partition(":")
    fns: dict[str, Callable[..., tuple[dict[str, str], dict[str, Any]]]] = {
        "inspect": _inspect, "score": _score, "graft": _graft, "finetune": _finetune, "export": _export,
        "verify": _verify}
    fn = fns[kind]
    return (lambda ctx: fn(ctx, float(arg))) if arg else fn


def _message(exc: BaseException) -> str:
    """One line: a GraftError's own message, else the type, text and where it was raised (a bug to report)."""
    if isinstance(exc, GraftError):
        return exc.message
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return " ".join(f"{type(exc).__name__}: {exc}{where}".split())[:500]


def sweep_temporaries(folder: Path) -> None:
    """Remove temp files/folders a killed run left (``.name.XXXX.tmp``, ``.bench.old-PID``): never outputs."""
    if not folder.is_dir():
        return
    for p in [*folder.glob(".*.tmp"), *folder.glob(".*.old-*")]:
        with contextlib.suppress(OSError):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()


def run_model(job: ModelJob) -> ModelOutcome:
    """Run (or resume) every step of ``job.entry``; a failing step is journaled as failed and ends this model only."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, job.threads))  # pinned: the same sums in the same order in every executor
    try:
        return _run_steps(job)
    finally:
        torch.set_num_threads(previous)


def _run_steps(job: ModelJob) -> ModelOutcome:
    journal = ZooJournal(job.journal)
    entry, fp = job.entry, job.entry.fingerprint()
    ctx = _Ctx(job, journal.done(entry.name, fp))
    sweep_temporaries(ctx.dir)  # one model is never run by two workers at once, so these are stale
    ran: list[str] = []
    for step in step_names(entry):
        if step in ctx.done:
            continue
        t0 = time.monotonic()
        try:
            ctx.dir.mkdir(parents=True, exist_ok=True)
            outputs, metrics = _step_fn(step)(ctx)
        except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the batch
            if isinstance(exc, OSError) and exc.errno in _FATAL_ERRNOS:  # the next model would fail alike
                raise BadInput(f"cannot write under {ctx.dir} ({step}): {exc.strerror}; free space or fix the "
                               "folder, then rerun the same command to resume") from None
            journal.append(StepRecord(entry.name, fp, step, FAILED, error=_message(exc),
                                      seconds=time.monotonic() - t0))
            return ModelOutcome(entry.name, FAILED, f"{step}: {_message(exc)}", tuple(ran))
        rec = StepRecord(entry.name, fp, step, DONE, outputs, metrics, seconds=time.monotonic() - t0)
        journal.append(rec)
        ctx.done[step] = rec
        ran.append(step)
    return ModelOutcome(entry.name, DONE, "", tuple(ran))
