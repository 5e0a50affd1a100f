"""``graftonnx graft``: score, plan and rewrite a model (or apply a reviewed plan)."""

from __future__ import annotations

from typing import Any

import click

from .. import api
from ..model.loader import check_finite_weights
from ..planning import GraftPlan
from ..scoring import ScoreTable
from ._base import echo_json, main
from ._data_options import data_options
from ._graft_options import output_options, prepare, score_options, select_options
from .score_cmd import print_unr

__all__ = ["graft_cmd"]


@main.command("graft")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the grafted ONNX.")
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False), default=None,
              help="Apply this plan (from `graftonnx plan`, possibly edited) instead of choosing units now.")
@click.option("--scores", type=click.Path(dir_okay=False), default=None, help="Reuse scores from `graftonnx score`.")
@data_options
@score_options
@select_options
@click.option("--save-plan", type=click.Path(dir_okay=False), default=None, help="Also write the plan used here.")
@output_options
def graft_cmd(model: str, output: str, plan_path: str | None, scores: str | None, save_plan: str | None,
              force: bool, as_json: bool, progress: bool, **kw: Any) -> None:
    """Graft linearity into MODEL: the chosen ReLU neurons become a·x + b; write the result to OUTPUT.

    Without --data, inputs are sampled uniformly from --input-range (real data gives better choices).
    """
    m, data, s = prepare(model, kw, (output, save_plan), force)
    check_finite_weights(m.proto, model)  # grafting a NaN model would give a meaningless result
    info = m.info
    if plan_path:
        plan = GraftPlan.load(plan_path)
        table = None
    else:
        table = ScoreTable.load(scores) if scores else api.score(m, data, s, progress=progress)
        plan = api.plan(m, data, s, scores=table)
    result = api.graft(m, data, plan=plan)
    summary = _summary(m, result, data, s.eps, s.bound, table, progress)
    result.save(output)
    if save_plan:
        plan.save(save_plan)
    summary["output"] = output
    if as_json:
        echo_json(summary)
        return
    if table is not None:
        print_unr(table, summary["unr_after"])
    click.echo(f"grafted {summary['grafted_neurons']} of {info.n_neurons} neurons in {len(plan.layers)} sites")
    if summary["accuracy_before"] is not None:
        click.echo(f"clean accuracy on {len(data)} images: {summary['accuracy_before']:.4f} → "
                   f"{summary['accuracy_after']:.4f} (before finetuning)")
    click.echo(f"UNR {summary['unr_before']:.2f} → {summary['unr_after_total']:.2f} unstable neurons per image; "
               f"written to {output}")


def _summary(model: Any, result: api.GraftResult, data: Any, eps: float, bound: str, table: ScoreTable | None,
             progress: bool) -> dict[str, Any]:
    before = table.unr if table is not None else sum(api.unr(model, data, eps, bound, progress=progress).values())
    after = api.unr(result.model, data, eps, bound, progress=progress)
    return {"grafted_neurons": result.plan.grafted_neurons(result.info), "neurons": result.info.n_neurons,
            "sites": [lp.site for lp in result.plan.layers], "unr_before": before, "unr_after": after,
            "unr_after_total": sum(after.values()), "accuracy_before": api.accuracy(model, data),
            "accuracy_after": api.accuracy(result.model, data), "eps": eps, "bound": bound,
            "data": data.describe()}
