"""Options shared by ``score``, ``plan`` and ``graft`` and their translation to GraftSettings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from .._io import check_output_path
from ..api import DEFAULT_EPS, GraftSettings
from ..bounds import BOUND_METHODS
from ..data.dataset import Dataset
from ..model import ModelInfo, inspect_model, load_model
from ..planning import INITS, PLAN_GRANULARITIES, SCHEDULES, SELECTORS
from ..scoring import SIGNIFICANCE
from ._data_options import load_from_options

__all__ = ["score_options", "select_options", "settings_from", "output_options", "prepare"]

F = TypeVar("F", bound=Callable[..., Any])


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(fn: F) -> F:
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return apply


def score_options(fn: F) -> F:
    """--eps, --bound, --significance, --batch-size."""
    return _stack(
        click.option("--eps", type=float, default=DEFAULT_EPS, show_default=True,
                     help="L∞ radius of the input ball, in raw pixel units (before any normalisation)."),
        click.option("--bound", type=click.Choice(BOUND_METHODS.keys()), default="ibp", show_default=True,
                     help="Bound method for instability: ibp (onnxruntime, fast) or crown (auto_LiRPA, tighter)."),
        click.option("--significance", type=click.Choice(SIGNIFICANCE.keys()), default="grad", show_default=True,
                     help="Significance: grad = mean |dL/dz| (paper), act = mean |z|, taylor = mean |z·dL/dz|."),
        click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True,
                     help="Images bounded at once (memory stays flat for any --n)."),
    )(fn)


def select_options(fn: F) -> F:
    """--ratio/--count, --criterion, --scope, --granularity, --init, --layers, --stages."""
    return _stack(
        click.option("--ratio", type=float, default=None,
                     help="Fraction of the ReLU *neurons* to graft, in [0, 1], whatever --granularity grafts (a "
                          "channel counts for all its positions); default 0.5 unless --count is given."),
        click.option("--count", type=click.IntRange(0), default=None,
                     help="Number of units (neurons, or channels with --granularity channel) to graft instead."),
        click.option("--criterion", type=click.Choice(SELECTORS.keys()), default="combined", show_default=True,
                     help="combined = λ·instability + (1−λ)·insignificance with λ 1→0; baselines: instability, "
                          "significance, random (seeded), prune (a = b = 0, fixed)."),
        click.option("--scope", type=click.Choice(["global", "per-layer"]), default="global", show_default=True,
                     help="Rank all layers together, or graft the same ratio in each layer."),
        click.option("--granularity", type=click.Choice(PLAN_GRANULARITIES), default="neuron", show_default=True,
                     help="Graft single neurons, whole channels of conv layers, or auto: channels on conv feature "
                          "maps (their graft has a Conv form that α,β-CROWN and auto_LiRPA bound in fast patches "
                          "mode), neurons on flat layers."),
        click.option("--init", type=click.Choice([k for k in INITS if k != "zero"]), default="const",
                     show_default=True, help="Initial line: const (a = 0.4, b = 0, the paper's) or fit "
                                             "(least squares through ReLU on the data)."),
        click.option("--layers", default=None, help="Comma-separated ReLU site names or indices to restrict to."),
        click.option("--stages", type=click.IntRange(1), default=5, show_default=True,
                     help="Slices of the λ schedule for --criterion combined."),
        click.option("--schedule", type=click.Choice(SCHEDULES), default="target", show_default=True,
                     help="λ slices over the K picks (target: every graft ends at λ = 0, keeps accuracy) or over "
                          "all units (total: λ follows the fraction of the network grafted, plans are nested; "
                          "verified far more on a hard-to-verify CNN after finetuning)."),
    )(fn)


def settings_from(kw: dict[str, Any]) -> GraftSettings:
    """GraftSettings from the parsed options (those not given keep their defaults)."""
    ratio, count = kw.get("ratio"), kw.get("count")
    if ratio is None and count is None:
        ratio = 0.5
    layers = tuple(x for x in kw["layers"].split(",") if x.strip()) if kw.get("layers") else None
    return GraftSettings(
        eps=kw.get("eps", DEFAULT_EPS), bound=kw.get("bound", "ibp"), significance=kw.get("significance", "grad"),
        criterion=kw.get("criterion", "combined"), ratio=ratio, count=count, scope=kw.get("scope", "global"),
        granularity=kw.get("granularity", "neuron"), init=kw.get("init", "const"), layers=layers,
        stages=kw.get("stages", 5), seed=kw.get("seed") or 0, batch_size=kw.get("batch_size", 256),
        schedule=kw.get("schedule", "target"))


def output_options(fn: F) -> F:
    """--force, --json, --progress/--no-progress (the -o option differs per command)."""
    return _stack(
        click.option("--force", is_flag=True, help="Overwrite existing output files."),
        click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars."),
    )(fn)


def prepare(model: str, kw: dict[str, Any], outputs: tuple[str | None, ...] = (), force: bool = False,
            selection: bool = False) -> tuple[Any, ModelInfo, Dataset, GraftSettings]:
    """The common start of score/plan/graft: check outputs and settings first (fail fast), then load.

    Returns ``(model proto, info, dataset, settings)``.
    """
    for out in outputs:
        if out:
            check_output_path(out, force)
    s = settings_from(kw)
    if selection:
        s.selection()
    m = load_model(model)
    info = inspect_model(m)
    return m, info, load_from_options(info, kw), s
