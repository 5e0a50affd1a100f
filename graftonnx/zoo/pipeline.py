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

from pathlib import Path
from typing import Any

from .._io import atomic_write_json
from ..engine import PIPELINES, Ctx, Step
from ..errors import BadInput
from .manifest import ModelEntry

__all__ = ["variant_names", "step_names", "zoo_steps"]


def _tag(ratio: float) -> str:
    return f"{ratio:g}"


def variant_names(entry: ModelEntry) -> list[str]:
    """``baseline`` then one variant per ratio: ``graft0.5`` (``graft0.5-ft`` when finetuned)."""
    ft = "-ft" if entry.finetune is not None else ""
    return ["baseline"] + [f"graft{_tag(r)}{ft}" for r in entry.ratios]


@PIPELINES.register("zoo")
def zoo_steps(entry: ModelEntry) -> list[Step]:
    """inspect → score → graft (each ratio) → finetune (each ratio) → export → verify."""
    steps = [Step("inspect", _inspect), Step("score", _score, ("inspect",))]
    variants = []
    for r in entry.ratios:
        steps.append(Step(f"graft:{_tag(r)}", lambda ctx, r=r: _graft(ctx, r), ("score",)))
        variants.append(steps[-1].name)
        if entry.finetune is not None:
            steps.append(Step(f"finetune:{_tag(r)}", lambda ctx, r=r: _finetune(ctx, r), (steps[-1].name,)))
            variants[-1] = steps[-1].name
    steps.append(Step("export", lambda ctx: _export(ctx), tuple(variants)))
    return steps + [Step("verify", lambda ctx: _verify(ctx), ("export",))]


def step_names(entry: ModelEntry) -> list[str]:
    """The steps of ``entry`` in run order (the journal's ``step`` values)."""
    return [s.name for s in zoo_steps(entry)]


def _model(ctx: Ctx) -> Any:
    from ..model.handle import open_model

    return ctx.cached("model", lambda: open_model(ctx.entry.path))


def _data(ctx: Ctx) -> Any:
    from ..data import load_dataset

    e = ctx.entry
    return ctx.cached("data", lambda: load_dataset(e.data.source, _model(ctx).info, e.data_spec()))


def _scores(ctx: Ctx) -> Any:
    from ..scoring.table import ScoreTable

    return ctx.cached("scores", lambda: ScoreTable.load(ctx.output("score", "scores")))


def _measure(ctx: Ctx, model: Any) -> dict[str, Any]:
    """UNR (unstable neurons per image, summed over sites) and clean accuracy of ``model`` on the zoo data."""
    from .. import api

    unr = api.unr(model, _data(ctx), ctx.entry.graft.eps, ctx.entry.graft.bound)
    sa = api.accuracy(model, _data(ctx))
    return {"unr": round(sum(unr.values()), 6), "sa": None if sa is None else round(sa, 6)}


def _inspect(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    info = _model(ctx).info
    path = ctx.dir / "info.json"
    atomic_write_json(path, {"model": ctx.entry.path, "relu_sites": [s.name for s in info.relus],
                             "relu_neurons": int(sum(s.size for s in info.relus))})
    if not info.relus:
        what = "only Sigmoid/Tanh sites" if info.smooth else "no ReLU"
        raise BadInput(f"model {ctx.entry.path} has {what}: the zoo grafts ReLU nets; graft smooth nets with "
                       "graftonnx score/plan/graft/finetune (specs/smooth.md)")
    return {"info": ctx.rel(path)}, {"relu_neurons": int(sum(s.size for s in info.relus))}


def _score(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    from .. import api

    table = api.score(_model(ctx), _data(ctx), ctx.entry.graft)
    path = ctx.dir / "scores.json"
    table.save(path)
    ctx.remember("scores", table)
    return {"scores": ctx.rel(path)}, _measure(ctx, _model(ctx))


def _graft(ctx: Ctx, ratio: float) -> tuple[dict[str, str], dict[str, Any]]:
    from .. import api

    plan = api.plan(_model(ctx), _data(ctx), api.settings_with(ctx.entry.graft, ratio=ratio), scores=_scores(ctx))
    result = api.graft(_model(ctx), plan=plan)
    path, plan_path = ctx.dir / f"graft{_tag(ratio)}.onnx", ctx.dir / f"graft{_tag(ratio)}.plan.json"
    plan.save(plan_path)
    api.save_model(result.model, path)
    metrics = _measure(ctx, result.model) | {"grafted_neurons": int(plan.grafted_neurons(_model(ctx).info))}
    return {"model": ctx.rel(path), "plan": ctx.rel(plan_path)}, metrics


def _finetune(ctx: Ctx, ratio: float) -> tuple[dict[str, str], dict[str, Any]]:
    from .. import api
    from ..model import load_model
    from ..train.api import finetune
    from ..train.teacher import TEACHER_ORIGINAL

    grafted = load_model(ctx.output(f"graft:{_tag(ratio)}", "model"))
    cfg = ctx.entry.train_config()
    teacher = _model(ctx).proto if cfg.teacher == TEACHER_ORIGINAL else None  # the entry's ungrafted model
    tuned = finetune(grafted, _data(ctx), cfg, teacher=teacher).model
    path = ctx.dir / f"graft{_tag(ratio)}-ft.onnx"
    api.save_model(tuned, path)
    return {"model": ctx.rel(path)}, _measure(ctx, tuned)


def _variant_files(ctx: Ctx) -> dict[str, Path]:
    """Variant name → its ONNX file (the source model for the baseline)."""
    files = {"baseline": Path(ctx.entry.path)}
    for name, r in zip(variant_names(ctx.entry)[1:], ctx.entry.ratios, strict=True):
        step = f"finetune:{_tag(r)}" if ctx.entry.finetune is not None else f"graft:{_tag(r)}"
        files[name] = ctx.output(step, "model")
    return files


def _export(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    from ..bench.export import export_benchmark

    e, x = ctx.entry, ctx.entry.export
    files = _variant_files(ctx)
    bench = ctx.dir / "bench"
    # force: a kill between the folder's rename and the journal line leaves a complete folder to replace.
    info = export_benchmark([str(p) for p in files.values()], _data(ctx), e.graft.eps, x.instances, e.graft.seed,
                            bench, x.timeout, skip=x.skip, gz=x.gz, force=True, simplify=x.simplify,
                            gz_only=x.gz_only, license=x.license, allow_over_6h=x.allow_over_6h)
    outputs = {"bench": ctx.rel(bench)} | {f"onnx:{v}": m.path for v, m in zip(files, info.models, strict=True)}
    return outputs, {"properties": info.n_properties, "instances": info.n_instances,
                     "skipped_misclassified": info.skipped_misclassified}


def _verify(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    from ..engine.executors import ExecutorConfig
    from ..verify import VERDICTS, Verdict, verify_benchmark

    v = ctx.entry.verify
    bench = ctx.output("export", "bench")
    results = ctx.dir / "verify.jsonl"
    fan_out = ExecutorConfig() if ctx.job.executor == "ray" else None  # under Ray: one task per instance
    summary = verify_benchmark(bench, v.backend, ctx.entry.backend, results, v.timeout, v.workers, progress=False,
                               ray=fan_out)
    per: dict[str, Any] = {}
    exported = {k.split(":", 1)[1]: p for k, p in ctx.done["export"].outputs.items() if k.startswith("onnx:")}
    for variant, onnx_rel in exported.items():
        rs = [r for r in summary.results if r.model == onnx_rel]
        verdicts = {k.value: sum(r.verdict == k for r in rs) for k in VERDICTS}
        per[variant] = {"n": len(rs), "va": round(verdicts[Verdict.UNSAT.value] / len(rs), 6) if rs else None,
                        "seconds": round(sum(r.seconds for r in rs), 4)} | verdicts
    return {"results": ctx.rel(results)}, {"variants": per, "reused": summary.reused}
