"""``graftonnx simplify``: the verifier-ready form of a grafted model (exact rewrite passes)."""

from __future__ import annotations

import click

from .. import api
from .._io import check_output_path
from .._progress import set_enabled
from ..model import load_model
from ..rewrite.fold import simplify
from ..rewrite.native import native_form
from ._base import echo_json, main, progress_option

__all__ = ["simplify_cmd"]


@main.command("simplify")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="Where to write the smaller ONNX.")
@click.option("--fold/--no-fold", default=True, show_default=True,
              help="Fold runs of linear layers (through fully grafted sites) into one Gemm/Conv.")
@click.option("--native/--no-native", default=True, show_default=True,
              help="Verifier-ready form: grafted units leave every Relu, per-channel lines become 1×1 Convs "
                   "(patches mode in α,β-CROWN and auto_LiRPA). --no-native: only the passes named below.")
@click.option("--drop-channels", is_flag=True,
              help="With --no-native: split partially grafted Conv/Gemm sites so the Relu covers only the kept units.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@progress_option
def simplify_cmd(model: str, output: str, fold: bool, native: bool, drop_channels: bool, force: bool,
                 as_json: bool, progress: bool) -> None:
    """Write the verifier-ready form of MODEL (specs/rewrite.md): what `graftonnx export` writes.

    Fully grafted sites lose their Relu, linear runs fold, and partially grafted sites keep
    a Relu over their kept units only. Per-neuron grafts on a conv feature map stay in mask
    form (no Conv expresses per-position slopes) and are listed. The outputs are those of
    MODEL up to float rounding; input and output names and shapes stay, and graftonnx.grafts
    lists only the sites still in mask form.
    """
    set_enabled(progress)  # no bar of its own today: the flag is there so every long command takes it
    check_output_path(output, force)
    m = load_model(model)
    out, rep = native_form(m, fold=fold) if native else simplify(m, fold=fold, drop_channels=drop_channels)
    api.save_model(out, output)
    if as_json:
        echo_json(rep.to_dict() | {"output": output})
        return
    for kind, items in (("removed Relu", rep.removed), ("folded", rep.folded), ("split", rep.split),
                        ("left alone", rep.skipped)):
        for item in items:
            click.echo(f"{kind}: {item}")
    click.echo(f"nodes {rep.nodes_before} → {rep.nodes_after}, parameters {rep.params_before} → {rep.params_after}, "
               f"ReLU neurons {rep.relu_neurons_before} → {rep.relu_neurons_after}; written to {output}")
