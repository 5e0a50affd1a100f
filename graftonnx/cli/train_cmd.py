"""``graftonnx train``: train a base network from scratch (adversarially, or clean with --eps 0)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import click

from .._io import check_output_path
from ..data import DataSpec, load_dataset
from ..data.formats import read_source, resolve_source
from ..errors import BadInput
from ..train import ARCH_HELP
from ..train.api import stub_info, train_from_scratch
from ._base import main
from ._data_options import data_options, spec_from_options
from .finetune_cmd import config_from, results_path, train_options, write_outcome

__all__ = ["train_cmd", "auto_shape"]


def auto_shape(source: str, spec: DataSpec) -> tuple[int, ...]:
    """Per-sample (C, H, W) of the source's images; square flat rows become 1×s×s (or 3×s×s)."""
    fmt, path = resolve_source(source, spec)
    raw = read_source(fmt, path, spec)
    x = raw.x
    if raw.layout == "hwc":
        return (int(x.shape[3]), int(x.shape[1]), int(x.shape[2]))
    if raw.layout == "chw":
        return tuple(int(s) for s in x.shape[1:])
    d = int(x.shape[1])
    for c in (1, 3):
        s = math.isqrt(d // c)
        if d % c == 0 and s * s * c == d:
            return (c, s, s)
    return (d,)


def _parse_shape(text: str) -> tuple[int, ...] | None:
    if text == "auto":
        return None
    try:
        dims = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise BadInput(f"--input-shape {text!r}: give comma-separated integers, e.g. 1,28,28, or auto") from None
    if not dims or min(dims) < 1:
        raise BadInput(f"--input-shape {text!r}: every dimension must be a positive integer")
    return dims


@main.command("train")
@click.option("--arch", required=True, help=f"Network to build: {ARCH_HELP}.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the ONNX.")
@click.option("--eps", type=float, default=0.0, show_default=True,
              help="L∞ training radius on the raw pixel scale; 0 = clean training.")
@click.option("--input-shape", default="auto", show_default=True,
              help="Per-sample input shape, e.g. 1,28,28; auto: from the data (C,H,W).")
@train_options(default_epochs=20, default_lr=0.05)
@data_options
def train_cmd(arch: str, output: str, eps: float, input_shape: str, **kw: Any) -> None:
    """Train a base network (--arch) from scratch on --data with FAT + GradAlign; export it to ONNX.

    The ONNX takes the same input as --data (raw pixels, or normalised ones when --mean/--std
    are given, which the model then expects outside its graph, like the data options say).
    """
    check_output_path(output, kw["force"])
    results = results_path(output, kw)
    cfg = config_from(kw, eps)
    if kw.get("data") is None:
        raise BadInput("train needs labelled images: pass --data (a file or a built-in such as digits or mnist5k)")
    spec = spec_from_options(**kw)
    shape = _parse_shape(input_shape) or auto_shape(str(kw["data"]), spec)
    if spec.layout == "auto":
        spec = dataclasses.replace(spec, layout="nchw" if len(shape) == 3 else "flat")
    data = load_dataset(kw["data"], stub_info(shape), spec)
    outcome = train_from_scratch(arch, data, cfg)
    write_outcome(outcome, output, results, {"arch": arch, "input_shape": list(shape), "data": data.describe()},
                  kw["as_json"])
