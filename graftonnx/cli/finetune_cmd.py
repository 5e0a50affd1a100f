"""``graftonnx finetune``: adversarially finetune a grafted model's slopes, intercepts and weights.

The training flags are defined once here (:func:`train_options`) and shared with
``graftonnx train``; they map one to one onto :class:`graftonnx.train.TrainConfig`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .._io import atomic_write, atomic_write_json, check_output_path
from ..errors import BadInput
from ..model import inspect_model, load_model, model_bytes
from ..train import TrainConfig
from ..train.api import Outcome, finetune
from ._base import echo_json, main
from ._data_options import data_options, load_from_options

__all__ = ["finetune_cmd", "train_options", "config_from", "results_path", "write_outcome"]

F = TypeVar("F", bound=Callable[..., Any])


def train_options(default_epochs: int, default_lr: float) -> Callable[[F], F]:
    """The TrainConfig flags (the data options' --seed seeds training too)."""
    opts = [
        click.option("--epochs", type=click.IntRange(1), default=default_epochs, show_default=True),
        click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True),
        click.option("--lr", type=float, default=default_lr, show_default=True, help="Learning rate of the weights."),
        click.option("--graft-lr", type=float, default=None, help="Learning rate of grafted a, b. Default: 10 × --lr."),
        click.option("--momentum", type=float, default=0.9, show_default=True),
        click.option("--weight-decay", type=float, default=5e-4, show_default=True,
                     help="Weight decay of the weights (grafted a, b get none)."),
        click.option("--grad-align", type=float, default=0.2, show_default=True,
                     help="GradAlign regulariser weight (0 = plain FGSM-RS training)."),
        click.option("--fgsm-step", type=float, default=None, help="FGSM step. Default: 1.25 × --eps."),
        click.option("--freeze-weights", is_flag=True, help="Train only the grafted slopes and intercepts."),
        click.option("--slope-range", type=(float, float), default=(0.0, 1.0), show_default=True, metavar="LO HI",
                     help="Clamp grafted slopes to [LO, HI] after every step."),
        click.option("--val-fraction", type=float, default=0.1, show_default=True,
                     help="Held-out share of --data for choosing the best epoch (by PGD robust accuracy)."),
        click.option("--val-steps", type=click.IntRange(0), default=10, show_default=True,
                     help="PGD steps of the per-epoch validation attack."),
        click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
                     help="Write a checkpoint here after every epoch."),
        click.option("--resume", is_flag=True, help="Continue the run saved in --checkpoint."),
        click.option("--results", type=click.Path(dir_okay=False), default=None,
                     help="Where to write the run record (JSON). Default: OUTPUT with suffix .train.json."),
        click.option("--force", is_flag=True, help="Overwrite existing output files."),
        click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON."),
        click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar."),
    ]

    def apply(fn: F) -> F:
        for opt in reversed(opts):
            fn = opt(fn)
        return fn

    return apply


def config_from(kw: dict[str, Any], eps: float) -> TrainConfig:
    """The TrainConfig for the parsed flags (validated: bad values raise BadInput)."""
    return TrainConfig(
        epochs=kw["epochs"], batch_size=kw["batch_size"], lr=kw["lr"], graft_lr=kw["graft_lr"],
        momentum=kw["momentum"], weight_decay=kw["weight_decay"], eps=eps, fgsm_step=kw["fgsm_step"],
        grad_align=kw["grad_align"], freeze_weights=kw["freeze_weights"], slope_range=tuple(kw["slope_range"]),
        val_fraction=kw["val_fraction"], val_steps=kw["val_steps"], seed=int(kw.get("seed") or 0),
        checkpoint=kw["checkpoint"], resume=kw["resume"], progress=kw["progress"])


def results_path(output: str, kw: dict[str, Any]) -> Path:
    """The run-record path, checked before any work is done."""
    path = Path(kw["results"]) if kw["results"] else Path(output).with_suffix(".train.json")
    return check_output_path(path, kw["force"])


def write_outcome(outcome: Outcome, output: str, results: Path, extra: dict[str, Any], as_json: bool) -> None:
    """Write the model and its run record atomically, then report."""
    with atomic_write(output, "wb") as fh:
        fh.write(model_bytes(outcome.model))
    record = outcome.to_dict() | extra | {"output": output}
    atomic_write_json(results, record)
    if as_json:
        echo_json(record | {"results": str(results)})
        return
    for note in outcome.result.notes:
        click.echo(f"note: {note}")
    best = next(h for h in outcome.result.history if h.epoch == outcome.result.best_epoch)
    ra = "-" if best.val_ra is None else f"{best.val_ra:.4f}"
    sa = "-" if best.val_sa is None else f"{best.val_sa:.4f}"
    click.echo(f"best epoch {best.epoch}/{outcome.result.config.epochs}: validation SA {sa}, PGD RA {ra} "
               f"({outcome.result.seconds:.1f} s); ONNX/torch max |diff| {outcome.parity:.2g}")
    click.echo(f"written to {output}; run record in {results}")


@main.command("finetune")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the tuned ONNX.")
@click.option("--eps", type=float, required=True, help="L∞ training radius on the raw pixel scale (> 0).")
@train_options(default_epochs=10, default_lr=0.01)
@data_options
def finetune_cmd(model: str, output: str, eps: float, **kw: Any) -> None:
    """Finetune grafted MODEL with FAT + GradAlign on --data; write the tuned ONNX (same graph) to OUTPUT.

    Grafted slopes/intercepts train with --graft-lr (10× the weights' rate by default); a model
    that is not grafted is finetuned on its weights only.
    """
    check_output_path(output, kw["force"])
    results = results_path(output, kw)
    cfg = config_from(kw, eps)
    if not eps > 0:
        raise BadInput(f"--eps {eps}: finetuning is adversarial and needs eps > 0 on the pixel scale "
                       "(e.g. --eps 0.1 for MNIST)")
    if kw.get("data") is None:
        raise BadInput("finetune needs labelled images: pass --data (a file or a built-in such as mnist5k)")
    m = load_model(model)
    data = load_from_options(inspect_model(m), kw)
    outcome = finetune(m, data, cfg)
    write_outcome(outcome, output, results, {"model": model, "data": data.describe()}, kw["as_json"])
