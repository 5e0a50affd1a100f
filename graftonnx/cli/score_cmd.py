"""``graftonnx score``: per-neuron instability and significance, and UNR per layer."""

from __future__ import annotations

from typing import Any

import click

from .. import api
from ..scoring import ScoreTable
from ._base import echo_json, main
from ._data_options import data_options
from ._graft_options import output_options, prepare, score_options

__all__ = ["score_cmd", "print_unr", "print_looseness"]


@main.command("score")
@click.argument("model", type=click.Path(dir_okay=False))
@data_options
@score_options
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the scores (JSON) here.")
@output_options
def score_cmd(model: str, output: str | None, force: bool, as_json: bool, progress: bool, **kw: Any) -> None:
    """Score every ReLU neuron of MODEL: how often it is unstable over ε-balls, and how much it matters."""
    m, data, s = prepare(model, kw, (output,), force)
    table = api.score(m, data, s, progress=progress)
    if output:
        table.save(output)
    if as_json:
        echo_json(table.summary() | {"output": output})
        return
    print_unr(table)
    print_looseness(table, [site.name for site in m.info.smooth])
    if output:
        click.echo(f"scores written to {output}")


def print_unr(table: ScoreTable, after: dict[str, float] | None = None) -> None:
    """A per-layer UNR table (unstable neurons per image), optionally with an 'after' column."""
    click.echo(f"UNR (unstable neurons per image, {table.bound}, eps={table.eps:g}, {table.n_images} images):")
    head = f"  {'site':<34}{'neurons':>8}{'UNR':>10}" + (f"{'after':>10}" if after is not None else "")
    click.echo(head)
    for s in table.sites:
        row = f"  {s.site:<34}{s.instability.size:>8}{s.unr:>10.2f}"
        if after is not None:
            row += f"{after.get(s.site, 0.0):>10.2f}"
        click.echo(row)
    total = f"  {'total':<34}{sum(s.instability.size for s in table.sites):>8}{table.unr:>10.2f}"
    if after is not None:
        total += f"{sum(after.values()):>10.2f}"
    click.echo(total)



def print_looseness(table: ScoreTable, smooth: list[str]) -> None:
    """For Sigmoid/Tanh sites (never unstable: UNR 0), the mean relaxation looseness their scores hold."""
    if smooth:
        mean = ", ".join(f"{n} {float(table.site(n).instability.mean()):.3g}" for n in smooth)
        click.echo(f"Sigmoid/Tanh sites have no UNR; their instability scores are relaxation looseness "
                   f"(mean chord gap over the bounds, specs/smooth.md): {mean}")
