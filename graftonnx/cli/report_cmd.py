"""``graftonnx report``: VA, times, UNR (and SA/RA) per model from verification journals, as tables and plots."""

from __future__ import annotations

from typing import Any

import click

from .._progress import set_enabled
from ..data.dataset import Dataset
from ..errors import BadInput
from ..model.info import ModelInfo
from ..report import ReportOptions, build_report, check_report_output, write_report
from ..settings import from_options, options
from ._base import echo_json, main, progress_option
from ._data_options import data_options, load_from_options

__all__ = ["report_cmd"]


def _data_loader(kw: dict[str, Any]) -> Any:
    """Load --data once per model input shape (models of one benchmark usually share it)."""
    cache: dict[tuple[int, ...], Dataset] = {}

    def load(info: ModelInfo) -> Dataset:
        key = info.input.sample_shape
        if key not in cache:
            cache[key] = load_from_options(info, kw)
        return cache[key]

    return load


@main.command("report")
@click.argument("results", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--bench", "bench", required=True, type=click.Path(file_okay=False),
              help="The benchmark folder the journals were verified on (instances.csv, onnx/, vnnlib/).")
@click.option("-o", "--output", required=True, type=click.Path(), help="Report folder to create.")
@options(ReportOptions, exclude=("seed",))
@click.option("--plots/--no-plots", default=True, show_default=True, help="Write the figures (see --format).")
@click.option("--force", is_flag=True, help="Replace an existing report folder.")
@progress_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@data_options
def report_cmd(results: tuple[str, ...], bench: str, output: str, plots: bool, force: bool, as_json: bool,
               progress: bool, **kw: Any) -> None:
    """Summarise RESULTS journals (from `graftonnx verify`) of the benchmark --bench into the folder -o.

    Writes report.md, report.csv, report.json and the figures va, times, cactus and
    unr_layers (.png, or --format pdf/svg).  The benchmark's models take raw pixels
    (normalisation folded in), so give --data unnormalised.
    """
    set_enabled(progress)  # the bars of the stages it runs (attacks, bounds)
    opts = from_options(ReportOptions, kw)
    check_report_output(output, force)
    if opts.eps is not None and kw.get("data") is None:
        raise BadInput("--eps measures robust accuracy on images: give --data too (e.g. the export's dataset)")
    data = _data_loader(kw) if kw.get("data") is not None else None
    label = None if data is None else f"{kw['data']}" + (f" (first {kw['n']})" if kw.get("n") else "")
    report = build_report(list(results), bench, opts, data, label)
    files = write_report(report, output, force, plots)
    if as_json:
        echo_json(report.to_dict() | {"files": [str(f) for f in files]})
        return
    for r in report.rows:
        va = "no results" if r.va is None else f"VA {100 * r.va:5.1f}% ({r.unsat}/{r.instances})"
        med = "" if r.median_time is None else f", median {r.median_time:.3g} s"
        click.echo(f"{r.name:<28} {r.backend or '-':<10} {va}, UNR {100 * r.unr.unr:.1f}%{med}")
    click.echo(f"report written to {output}/ ({', '.join(f.name for f in files)})")
