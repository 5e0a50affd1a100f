"""``graftonnx finetune``: adversarially finetune a grafted model's slopes, intercepts and weights.

The training flags come from :class:`graftonnx.train.TrainConfig`'s knobs (:func:`train_options`)
and are shared with ``graftonnx train``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .._io import atomic_write, atomic_write_json, check_output_path
from ..errors import BadInput
from ..model import inspect_model, load_model, model_bytes
from ..settings import from_options, options
from ..train import TrainConfig
from ..train.api import Outcome, finetune
from ._base import echo_json, main, progress_option
from ._data_options import data_options, load_from_options

__all__ = ["finetune_cmd", "train_options", "config_from", "results_path", "write_outcome"]

F = TypeVar("F", bound=Callable[..., Any])


def train_options(default_epochs: int, default_lr: float) -> Callable[[F], F]:
    """The TrainConfig knobs as flags (--eps is the command's own; the data options' --seed seeds training too)."""
    knob_opts = options(TrainConfig, exclude=("eps", "seed", "progress"),
                        defaults={"epochs": default_epochs, "lr": default_lr})
    extra = [
        click.option("--results", type=click.Path(dir_okay=False), default=None,
                     help="Where to write the run record (JSON). Default: OUTPUT with suffix .train.json."),
        click.option("--force", is_flag=True, help="Overwrite existing output files."),
        click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON."),
        progress_option,
    ]

    def apply(fn: F) -> F:
        for opt in reversed(extra):
            fn = opt(fn)
        return knob_opts(fn)

    return apply


def config_from(kw: dict[str, Any], eps: float) -> TrainConfig:
    """The TrainConfig for the parsed flags (validated: bad values raise BadInput)."""
    return from_options(TrainConfig, kw, eps=eps)


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

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.4f}"

    if best.val_fidelity is not None:
        scores = (f"validation fidelity {fmt(best.val_fidelity)}, PGD robust fidelity "
                  f"{fmt(best.val_robust_fidelity)}, SA {fmt(best.val_sa)}")
    else:
        scores = f"validation SA {fmt(best.val_sa)}, PGD RA {fmt(best.val_ra)}"
    click.echo(f"best epoch {best.epoch}/{outcome.result.config.epochs}: {scores} "
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
    that is not grafted is finetuned on its weights only.  --teacher ORIGINAL.onnx distils the
    original network instead (no labels needed; fidelity is reported beside SA); --rs-weight and
    --ibp-weight add bound-based stability terms (specs/training.md).
    """
    check_output_path(output, kw["force"])
    results = results_path(output, kw)
    cfg = config_from(kw, eps)
    if not eps > 0:
        raise BadInput(f"--eps {eps}: finetuning is adversarial and needs eps > 0 on the pixel scale "
                       "(e.g. --eps 0.1 for MNIST)")
    if kw.get("data") is None:
        raise BadInput("finetune needs images: pass --data (a file or a built-in such as mnist5k; unlabelled "
                       "images are enough with --teacher ORIGINAL.onnx)")
    m = load_model(model)
    data = load_from_options(inspect_model(m), kw)
    outcome = finetune(m, data, cfg)
    write_outcome(outcome, output, results, {"model": model, "data": data.describe()}, kw["as_json"])
