"""``graftonnx evaluate``: standard and PGD robust accuracy, every attack confirmed in onnxruntime."""

from __future__ import annotations

from typing import Any

import click

from .._io import atomic_write_json, check_output_path
from .._progress import set_enabled
from ..errors import BadInput
from ..model.handle import open_model
from ..settings import from_options, options
from ..train import EvalConfig, evaluate
from ._base import echo_json, main, progress_option
from ._data_options import data_options, load_from_options

__all__ = ["evaluate_cmd"]


@main.command("evaluate")
@click.argument("model", type=click.Path(dir_okay=False))
@options(EvalConfig, exclude=("seed",))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Also write the result (JSON).")
@click.option("--force", is_flag=True, help="Overwrite an existing --output.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@data_options
@progress_option
def evaluate_cmd(model: str, output: str | None, force: bool, as_json: bool, progress: bool, **kw: Any) -> None:
    """Clean accuracy (SA) and PGD robust accuracy (RA) of MODEL on --data at radius --eps.

    An adversarial example counts only if onnxruntime, running MODEL itself, misclassifies it too.
    (The attack has no bar yet: --progress is accepted like in every long command.)
    """
    set_enabled(progress)
    cfg = from_options(EvalConfig, kw)
    if output:
        check_output_path(output, force)
    if kw.get("data") is None:
        raise BadInput("evaluate needs labelled images: pass --data (a file or a built-in such as mnist5k)")
    h = open_model(model)
    data = load_from_options(h.info, kw)
    result = evaluate(h.proto, data, cfg)
    record = result.to_dict() | {"model": model, "data": data.describe()}
    if output:
        atomic_write_json(output, record)
    if as_json:
        echo_json(record)
        return
    click.echo(f"{model} on {data.describe()}")
    click.echo(f"SA {result.sa:.4f} ({result.correct}/{result.n})   RA {result.ra:.4f} ({result.robust}/{result.n}) "
               f"under PGD-{cfg.steps}×{cfg.restarts} at eps {cfg.eps:g}")
    if result.fidelity is not None:
        click.echo(f"fidelity {result.fidelity:.4f} (top-1 agreement with {cfg.teacher})")
    if result.unconfirmed:
        click.echo(f"note: {result.unconfirmed} torch attack(s) were not confirmed by onnxruntime and were not counted")
