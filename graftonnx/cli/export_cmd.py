"""``graftonnx export``: write a VNN-COMP benchmark folder (VNN-LIB 1.0 and 2.0) for one or more models."""

from __future__ import annotations

from typing import Any

import click

from .._progress import set_enabled
from ..bench import check_benchmark_output, export_benchmark
from ..bench.settings import ExportSettings
from ..errors import BadInput
from ..model import inspect_model, load_model
from ..model.loader import check_finite_weights
from ..settings import from_options, options
from ._base import echo_json, main, progress_option
from ._data_options import data_options, load_from_options

__all__ = ["export_cmd"]


@main.command("export")
@click.argument("models", nargs=-1, required=True, type=click.Path(dir_okay=False))
@data_options
@click.option("--eps", type=float, required=True, help="L∞ radius on the raw pixel scale (e.g. 0.02 or 0.00784).")
@options(ExportSettings)
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Benchmark folder to create.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@progress_option
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def export_cmd(models: tuple[str, ...], eps: float, output: str, force: bool, as_json: bool, progress: bool,
               **kw: Any) -> None:
    """Export MODEL... with L∞ robustness properties of --data images as a VNN-COMP benchmark folder.

    Images are picked in a --seed shuffled order; the data's --mean/--std are folded into the
    exported models so every box is in raw pixel space.  The folder holds onnx/, vnnlib/ (VNN-LIB 1.0),
    2.0/ (VNN-LIB 2.0), instances.csv, a README.md, a LICENSE and generate_properties.py SEED with its data/
    (numpy only), as the VNN-COMP rules ask; summed timeouts over 6 hours are refused unless --allow-over-6h.
    """
    set_enabled(progress)  # the bars of the stages it runs (attacks, bounds)
    x = from_options(ExportSettings, kw)
    check_benchmark_output(output, force)
    if kw.get("data") is None:
        raise BadInput("export needs labelled images: give --data (e.g. an ERAN .csv or a built-in like mnist5k)")
    for path in models:  # NaN/Inf weights would make every exported verdict meaningless
        check_finite_weights(load_model(path), path)
    data = load_from_options(inspect_model(load_model(models[0])), kw)
    info = export_benchmark(list(models), data, eps, x.instances, int(kw.get("seed") or 0), output, x.timeout,
                            skip=x.skip, gz=x.gz, force=force, simplify=x.simplify, gz_only=x.gz_only,
                            license=x.license, allow_over_6h=x.allow_over_6h)
    summary = {"output": str(info.out), "properties": info.n_properties, "instances": info.n_instances,
               "models": [m.path for m in info.models], "eps": info.eps, "seed": info.seed,
               "timeout": info.timeout, "total_timeout": info.total_timeout,
               "skipped_misclassified": info.skipped_misclassified,
               "skipped_attacked": info.skipped_attacked, "indices": list(info.indices),
               "forms": {m.path: m.form for m in info.models if m.form}}
    if as_json:
        echo_json(summary)
        return
    click.echo(f"wrote {info.n_properties} properties × {len(info.models)} model(s) = {info.n_instances} instances "
               f"to {info.out} (eps {info.eps:g}, seed {info.seed}, timeout {info.timeout:g} s)")
    for m in info.models:
        if m.form:
            click.echo(f"{m.path}: {m.form}")
    if info.skipped_misclassified or info.skipped_attacked:
        click.echo(f"skipped {info.skipped_misclassified} misclassified and {info.skipped_attacked} attacked images")
    if info.n_properties < x.instances:
        click.echo(f"note: only {info.n_properties} of the {x.instances} requested images qualified")
