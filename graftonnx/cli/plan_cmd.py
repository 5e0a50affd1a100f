"""``graftonnx plan``: choose the units to graft and write a reviewable JSON plan."""

from __future__ import annotations

from typing import Any

import click

from .. import api
from ..scoring import ScoreTable
from ._base import echo_json, main
from ._data_options import data_options
from ._graft_options import output_options, prepare, score_options, select_options

__all__ = ["plan_cmd"]


@main.command("plan")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--scores", type=click.Path(dir_okay=False), default=None,
              help="Scores from `graftonnx score` (computed now when not given).")
@data_options
@score_options
@select_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the plan.")
@output_options
def plan_cmd(model: str, scores: str | None, output: str, force: bool, as_json: bool, progress: bool,
             **kw: Any) -> None:
    """Write a graft plan for MODEL (apply it later with `graftonnx graft MODEL --plan PLAN`)."""
    m, data, s = prepare(model, kw, (output,), force)
    info = m.info
    table = ScoreTable.load(scores) if scores else None
    p = api.plan(m, data, s, scores=table, progress=progress)
    p.save(output)
    summary = {"output": output, "sites": len(p.layers), "units": p.total,
               "neurons": p.grafted_neurons(info), "of_neurons": info.n_neurons}
    if as_json:
        echo_json(summary)
        return
    click.echo(f"plan: {summary['neurons']} of {info.n_neurons} neurons in {len(p.layers)} sites "
               f"({s.criterion}, {s.granularity}) written to {output}")
