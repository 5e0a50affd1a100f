"""``graftonnx plan``: choose the units to graft and write a reviewable JSON plan."""

from __future__ import annotations

from typing import Any

import click

from .. import api
from .._io import check_output_path
from ..model import inspect_model, load_model
from ..scoring import ScoreTable
from ._base import echo_json, main
from ._data_options import data_options, load_from_options
from ._graft_options import score_options, select_options, settings_from

__all__ = ["plan_cmd"]


@main.command("plan")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--scores", type=click.Path(dir_okay=False), default=None,
              help="Scores from `graftonnx score` (computed now when not given).")
@data_options
@score_options
@select_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the plan.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def plan_cmd(model: str, scores: str | None, output: str, force: bool, as_json: bool, progress: bool,
             **kw: Any) -> None:
    """Write a graft plan for MODEL (apply it later with `graftonnx graft MODEL --plan PLAN`)."""
    check_output_path(output, force)
    s = settings_from(kw)
    s.selection()
    m = load_model(model)
    info = inspect_model(m)
    data = load_from_options(info, kw)
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
