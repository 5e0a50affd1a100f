"""``graftonnx inspect``: what is in a model, and can graftonnx handle it."""

from __future__ import annotations

import click

from .._progress import set_enabled
from ..model import inspect_model, load_model
from ._base import echo_json, main, progress_option

__all__ = ["inspect_cmd"]


@main.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON summary.")
@progress_option
def inspect_cmd(model: str, as_json: bool, progress: bool) -> None:
    """Show opset, inputs/outputs, ReLU sites, op histogram and in-graph normalisation of MODEL."""
    set_enabled(progress)  # no bar of its own today: the flag is there so every long command takes it
    info = inspect_model(load_model(model))
    if as_json:
        echo_json(info.to_dict())
        return
    click.echo(f"model: {model}  (opset {info.opset}{', ' + info.producer_name if info.producer_name else ''})")
    for t in info.inputs:
        click.echo(f"input  {t.name}: {_dims(t.dims)} {t.dtype}")
    for t in info.outputs:
        click.echo(f"output {t.name}: {_dims(t.dims)} {t.dtype}")
    click.echo("normalisation in graph: " + ("; ".join(info.normalisation) if info.normalisation else "none found"))
    click.echo(f"ReLU sites: {len(info.relus)}, {sum(s.size for s in info.relus)} neurons")
    for i, s in enumerate(info.relus):
        click.echo(f"  [{i}] {s.name:<32} fed by {s.producer:<18} shape {s.shape}  neurons {s.size}")
    if info.smooth:
        click.echo(f"Sigmoid/Tanh sites: {len(info.smooth)}, {sum(s.size for s in info.smooth)} neurons")
    for i, s in enumerate(info.smooth, start=len(info.relus)):
        click.echo(f"  [{i}] {s.name:<32} {s.op} fed by {s.producer:<10} shape {s.shape}  neurons {s.size}")
    click.echo("ops: " + ", ".join(f"{k}×{v}" for k, v in info.op_histogram.items()))


def _dims(dims: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in dims) + "]"
