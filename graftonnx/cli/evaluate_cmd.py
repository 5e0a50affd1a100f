"""``graftonnx evaluate``: standard and PGD robust accuracy, every attack confirmed in onnxruntime."""

from __future__ import annotations

from typing import Any

import click

from .._io import atomic_write_json, check_output_path
from ..errors import BadInput
from ..model import inspect_model, load_model
from ..train import EvalConfig, evaluate
from ._base import echo_json, main
from ._data_options import data_options, load_from_options

__all__ = ["evaluate_cmd"]


@main.command("evaluate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--eps", type=float, required=True, help="L∞ attack radius on the raw pixel scale (0: SA only).")
@click.option("--steps", type=click.IntRange(1), default=100, show_default=True, help="PGD steps per restart.")
@click.option("--restarts", type=click.IntRange(1), default=5, show_default=True, help="PGD random restarts.")
@click.option("--step-size", type=float, default=None, help="PGD step. Default: 1/8 of each pixel's box (eps/4).")
@click.option("--batch-size", type=click.IntRange(1), default=256, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Also write the result (JSON).")
@click.option("--force", is_flag=True, help="Overwrite an existing --output.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@data_options
def evaluate_cmd(model: str, eps: float, steps: int, restarts: int, step_size: float | None, batch_size: int,
                 output: str | None, force: bool, as_json: bool, **kw: Any) -> None:
    """Clean accuracy (SA) and PGD robust accuracy (RA) of MODEL on --data at radius --eps.

    An adversarial example counts only if onnxruntime, running MODEL itself, misclassifies it too.
    """
    if output:
        check_output_path(output, force)
    if not eps >= 0:
        raise BadInput(f"--eps {eps} must be ≥ 0 (the L∞ radius on the raw pixel scale)")
    if step_size is not None and not step_size > 0:
        raise BadInput(f"--step-size {step_size} must be > 0")
    if kw.get("data") is None:
        raise BadInput("evaluate needs labelled images: pass --data (a file or a built-in such as mnist5k)")
    m = load_model(model)
    data = load_from_options(inspect_model(m), kw)
    cfg = EvalConfig(eps, steps, restarts, step_size, int(kw.get("seed") or 0), batch_size)
    result = evaluate(m, data, cfg)
    record = result.to_dict() | {"model": model, "data": data.describe()}
    if output:
        atomic_write_json(output, record)
    if as_json:
        echo_json(record)
        return
    click.echo(f"{model} on {data.describe()}")
    click.echo(f"SA {result.sa:.4f} ({result.correct}/{result.n})   RA {result.ra:.4f} ({result.robust}/{result.n}) "
               f"under PGD-{steps}×{restarts} at eps {eps:g}")
    if result.unconfirmed:
        click.echo(f"note: {result.unconfirmed} torch attack(s) were not confirmed by onnxruntime and were not counted")
