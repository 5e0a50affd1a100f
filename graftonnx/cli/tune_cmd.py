"""``graftonnx tune``: choose the graft ratio and λ schedule, under an SA constraint, by measuring.

The flags: the data options, the scoring and selection knobs of ``graft`` (the ratio and the
schedule are what is searched, so they are not flags here) and :class:`TuneSettings`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from ..errors import BadInput
from ..planning.select import Selection
from ..planning.settings import GraftSettings, InitSettings
from ..settings import from_options, options
from ..tune import TuneConfig, TuneSettings, tune
from ..tune.report import DEFAULT_CANDIDATE
from ._base import echo_json, main, progress_option
from ._data_options import data_options, spec_from_options
from ._graft_options import score_options

__all__ = ["tune_cmd"]


@main.command("tune")
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True,
              help="Folder for the journal, the candidates, chosen.onnx, chosen.plan.json and tune.{md,csv,json,png}; "
                   "rerunning resumes.")
@data_options
@click.option("--heldout-data", default=None, metavar="SOURCE",
              help="Images of their own for SA and the VA sample (read with the same data options; --n does not "
                   "apply). Default: hold out --heldout of --data.")
@options(TuneSettings)
@score_options
@options(Selection, InitSettings, exclude=("seed", "ratio", "count", "schedule"), defaults={"init": "fit"})
@click.option("--force", is_flag=True, help="Start over: remove this folder's earlier tuning files first.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@progress_option
def tune_cmd(model: str, output: str, heldout_data: str | None, force: bool, as_json: bool, progress: bool,
             **kw: Any) -> None:
    """Try grafts of MODEL at several ratios and schedules; keep the best VA whose SA stays within --max-sa-drop.

    Each candidate is grafted from one score table (nested plans), finetuned briefly on the
    training part of --data and measured: SA on the held-out part, VA by lirpa on the first
    --n-verify held-out ε-balls.  The original network is always a candidate.
    """
    if kw.get("data") is None:
        raise BadInput("tune measures clean and verified accuracy on labelled images: pass --data (e.g. mnist5k)")
    spec = spec_from_options(**kw)
    held = None if heldout_data is None else replace(spec, source=heldout_data, n=None, labels=None)
    cfg = TuneConfig(model, spec, from_options(GraftSettings, kw), from_options(TuneSettings, kw),
                     device=kw["device"], progress=progress, heldout_data=held)
    summary, status = tune(cfg, output, force)
    if as_json:
        echo_json(summary.to_dict() | {"status": status, "output": output})
        return
    chosen, default = summary.row(summary.chosen), summary.row(DEFAULT_CANDIDATE)
    assert chosen is not None
    click.echo(f"chosen: {summary.chosen}: VA {chosen['va']:.1f} % (original {summary.rows[0]['va']:.1f} %), "
               f"SA {chosen['sa']:.1f} % (original {summary.rows[0]['sa']:.1f} %)")
    if default is not None and "va" in default:
        click.echo(f"graftonnx's default ({DEFAULT_CANDIDATE}): VA {default['va']:.1f} %, SA {default['sa']:.1f} % "
                   f"({default['status']})")
    if status != "done":
        click.echo(f"{summary.untried} candidate(s) untried: the budget is spent; rerun to continue")
    click.echo(f"written: {Path(output) / 'chosen.onnx'}, tune.md, tune.png in {output}")
