"""``tune`` as an engine pipeline: baseline → score → one step per (schedule, ratio) candidate.

Why the engine: every candidate costs a graft, a short finetune and a verified sample
(minutes on a CNN); journaled steps make a killed or budget-stopped search resume at the
first untried candidate, and a rerun with the same settings reproduces the same table.
Plans are nested: every candidate of a schedule is planned from the *same* score table,
so with ``--schedule total`` each ratio grafts the previous one's units and more.  A
schedule's sweep ends after ``patience`` candidates in a row over the SA limit (SA falls
with the ratio; those are journaled as skipped, a deterministic outcome), and the budget
is checked before each candidate (:class:`graftonnx.engine.StopJob`: not journaled, so a
rerun with more time continues).
"""

from __future__ import annotations

import contextvars
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .. import api
from ..data import load_dataset
from ..data.dataset import DataSpec
from ..engine import PIPELINES, Ctx, Step, StopJob
from ..model.handle import open_model
from ..planning.settings import GraftSettings
from ..scoring import ScoreTable
from ..settings import fingerprint_dict
from ..train import TrainConfig
from .measure import Measure, Split, check_labelled, measure, sample_properties, split_data
from .settings import TuneSettings

__all__ = ["TuneConfig", "tune_steps", "candidate_name", "over_limit", "ON_CANDIDATE"]

#: Called with each candidate's name as it ends (the command's progress bar); None: nothing to tell.
ON_CANDIDATE: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar("on_candidate",
                                                                                            default=None)


@dataclass(frozen=True)
class TuneConfig:
    """One tuning run: the network, its data, the graft settings shared by all candidates, the search."""

    model: str
    data: DataSpec
    graft: GraftSettings
    tune: TuneSettings
    device: str = "auto"
    progress: bool = False
    heldout_data: DataSpec | None = None  # SA/VA images of their own (then ``tune.heldout`` is not used)

    def fingerprint(self) -> str:
        """Settings (runtime knobs aside) and the network's bytes: another net at the same path starts over."""
        digest = hashlib.sha256(Path(self.model).read_bytes()).hexdigest()[:16]
        of = fingerprint_dict  # knobs added later leave earlier journals valid (specs/settings.md)
        plain = {"model": digest, "data": of(self.data), "graft": of(self.graft), "tune": of(self.tune),
                 "heldout_data": None if self.heldout_data is None else of(self.heldout_data)}
        return hashlib.sha256(repr(sorted(plain.items())).encode()).hexdigest()[:16]

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=max(self.tune.epochs, 1), eps=self.graft.eps, lr=self.tune.lr, seed=self.graft.seed,
                           progress=self.progress, device=self.device)


def candidate_name(schedule: str, ratio: float) -> str:
    return f"{schedule}@{ratio:g}"


def over_limit(baseline: dict[str, Any], row: dict[str, Any], max_drop: float) -> bool:
    """A measured candidate whose SA is more than ``max_drop`` points below the original's (skipped: True)."""
    return "skipped" in row or baseline["sa"] - row["sa"] > max_drop + 1e-9


def _inputs(ctx: Ctx) -> tuple[Any, Split, list]:
    """The network, the seeded split and the VA sample (built once per process)."""
    def make() -> tuple[Any, Split, list]:
        c: TuneConfig = ctx.config
        h = open_model(c.model)
        data = load_dataset(c.data.source, h.info, c.data)
        if c.heldout_data is not None:
            split = Split(data, load_dataset(c.heldout_data.source, h.info, c.heldout_data))
            check_labelled(split.heldout, "--heldout-data")
        else:
            split = split_data(data, c.tune.heldout, c.graft.seed)
        n_classes = int(h.info.outputs[0].dims[-1])
        return h, split, sample_properties(split.heldout, c.tune.n_verify, c.graft.eps, n_classes)

    return ctx.cached("inputs", make)  # type: ignore[no-any-return]


def _measure(ctx: Ctx, model: Any) -> Measure:
    c: TuneConfig = ctx.config
    _, split, props = _inputs(ctx)
    return measure(model, split, props, c.graft.eps, c.tune.method, c.device)


def _baseline(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    ctx.cached("t0", time.monotonic)
    h, _, _ = _inputs(ctx)
    return {}, _measure(ctx, h.proto).to_dict() | {"ratio": 0.0, "schedule": "-", "grafted": 0}


def _score(ctx: Ctx) -> tuple[dict[str, str], dict[str, Any]]:
    c: TuneConfig = ctx.config
    h, split, _ = _inputs(ctx)
    table = api.score(h, split.train, c.graft, progress=c.progress)
    path = ctx.dir / "scores.json"
    table.save(path)
    return {"scores": ctx.rel(path)}, {"n_images": table.n_images}


def _skip_reason(ctx: Ctx, schedule: str, ratio: float) -> str | None:
    c: TuneConfig = ctx.config
    base = ctx.done["baseline"].metrics
    before = [r for r in c.tune.ratios if r < ratio]
    rows = [ctx.done[candidate_name(schedule, r)].metrics for r in sorted(before)[-c.tune.patience:]]
    if len(rows) == c.tune.patience and all(over_limit(base, r, c.tune.max_sa_drop) for r in rows):
        return f"the {c.tune.patience} smaller ratios of schedule {schedule} were over the SA limit"
    return None


def _check_budget(ctx: Ctx) -> None:
    minutes = ctx.config.tune.budget_minutes
    t0 = ctx.cached("t0", time.monotonic)
    if minutes is not None and time.monotonic() - t0 > 60 * minutes:
        raise StopJob(f"the --budget-minutes {minutes:g} are spent: rerun to continue")


def _candidate(ctx: Ctx, schedule: str, ratio: float) -> tuple[dict[str, str], dict[str, Any]]:
    outputs, metrics = _try(ctx, schedule, ratio)
    tell = ON_CANDIDATE.get()
    if tell is not None:
        tell(candidate_name(schedule, ratio))
    return outputs, metrics


def _try(ctx: Ctx, schedule: str, ratio: float) -> tuple[dict[str, str], dict[str, Any]]:
    from ..train.api import finetune

    c: TuneConfig = ctx.config
    info = {"ratio": ratio, "schedule": schedule}
    why = _skip_reason(ctx, schedule, ratio)
    if why:
        return {}, info | {"skipped": why}
    _check_budget(ctx)
    h, split, _ = _inputs(ctx)
    table = ScoreTable.load(ctx.output("score", "scores"))
    plan = api.plan(h, split.train, replace(c.graft, ratio=ratio, count=None, schedule=schedule), scores=table)
    model = api.graft(h, split.train, plan=plan).model
    if c.tune.epochs > 0:
        model = finetune(model, split.train, c.train_config()).model
    folder = ctx.dir / "candidates"
    folder.mkdir(exist_ok=True)
    stem = f"{schedule}-{ratio:g}"
    api.save_model(model, folder / f"{stem}.onnx")
    plan.save(folder / f"{stem}.plan.json")
    outputs = {"model": ctx.rel(folder / f"{stem}.onnx"), "plan": ctx.rel(folder / f"{stem}.plan.json")}
    return outputs, _measure(ctx, model).to_dict() | info | {"grafted": plan.total}


@PIPELINES.register("tune")
def tune_steps(config: TuneConfig) -> list[Step]:
    """baseline → score → every (schedule, ratio), ratios ascending within a schedule."""
    steps = [Step("baseline", _baseline), Step("score", _score, ("baseline",))]
    for schedule in config.tune.schedules:
        for ratio in sorted(config.tune.ratios):
            steps.append(Step(candidate_name(schedule, ratio),
                              lambda ctx, s=schedule, r=ratio: _candidate(ctx, s, r), ("baseline", "score")))
    return steps
