"""``graftonnx zoo``: run inspect → score → graft → finetune → export → verify over many models, resumably."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from ..errors import BadInput
from ._base import echo_json, main
from ._data_options import data_options, parse_floats, spec_from_options

__all__ = ["zoo_cmd"]

#: Flags that only describe a folder's models; with a manifest they belong in its ``defaults:``.
_FOLDER_FLAGS = ("data", "data_format", "data_labels", "layout", "scale", "mean", "std", "n", "input_range", "seed",
                 "eps", "ratios", "criterion", "init", "bound", "epochs", "lr", "batch_size", "instances",
                 "export_timeout", "skip", "backend", "method", "verify_timeout")


def _template(kw: dict[str, Any]) -> Any:
    """The ModelEntry every model of a folder gets, from the flags."""
    from ..zoo import DataConfig, ExportConfig, FinetuneConfig, ModelEntry, VerifyConfig

    if kw["data"] is None:
        raise BadInput("a folder of models needs --data (labelled images for scoring, accuracy and export)")
    spec = spec_from_options(**kw)
    ratios = parse_floats(kw["ratios"], "--ratios") or (0.5,)
    if any(not 0 < r <= 1 for r in ratios):
        raise BadInput(f"--ratios {kw['ratios']}: every ratio must be in (0, 1], e.g. --ratios 0.3,0.5")
    if not kw["eps"] > 0:
        raise BadInput(f"--eps {kw['eps']} must be > 0 on the raw pixel scale (e.g. 0.02)")
    data = DataConfig(kw["data"], spec.format, spec.layout, spec.scale, spec.mean, spec.std, spec.n,
                      spec.input_range, spec.labels)
    return ModelEntry("template", "", data, float(kw["eps"]), ratios, kw["criterion"], kw["init"], kw["bound"],
                      spec.seed, FinetuneConfig(kw["epochs"], kw["lr"], kw["batch_size"]),
                      ExportConfig(kw["instances"], kw["export_timeout"], kw["skip"]),
                      VerifyConfig(kw["backend"], kw["method"], kw["verify_timeout"]))


def _manifest(source: str, kw: dict[str, Any]) -> Any:
    from ..zoo import load_manifest, manifest_from_folder

    p = Path(source)
    if p.is_dir():
        return manifest_from_folder(p, _template(kw))
    ctx = click.get_current_context()
    given = [n for n in _FOLDER_FLAGS if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise BadInput(f"{flag} applies to a folder of models; with a manifest put it under 'defaults:' in {p}")
    return load_manifest(p)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@main.command("zoo")
@click.argument("source", type=click.Path())
@click.option("-o", "--output", "output", default="zoo-out", show_default=True, type=click.Path(),
              help="Output folder (created; an existing one is resumed from its journal.jsonl).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: this process (or --workers processes); ray: one Ray task per model.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Models at once with --executor local.")
@click.option("--ray-address", default=None, help="Ray cluster to join (e.g. ray://host:10001). Default: start a "
              "local Ray with --num-cpus.")
@click.option("--num-cpus", type=click.IntRange(1), default=2, show_default=True, help="CPUs of a local Ray.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="Torch threads per model (pinned so results match across executors).")
@data_options
@click.option("--eps", type=float, default=0.02, show_default=True, help="Folder mode: L∞ radius (raw pixels).")
@click.option("--ratios", default="0.5", show_default=True, help="Folder mode: graft ratios, comma-separated.")
@click.option("--criterion", default="combined", show_default=True, help="Folder mode: selection criterion.")
@click.option("--init", default="fit", show_default=True, help="Folder mode: initial lines (const|zero|fit).")
@click.option("--bound", default="ibp", show_default=True, help="Folder mode: bound method for scores and UNR.")
@click.option("--epochs", type=click.IntRange(0), default=0, show_default=True,
              help="Folder mode: finetune epochs (0 = no finetuning).")
@click.option("--lr", type=float, default=0.01, show_default=True, help="Folder mode: finetune learning rate.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True,
              help="Folder mode: finetune batch size.")
@click.option("--instances", type=click.IntRange(1), default=10, show_default=True,
              help="Folder mode: properties exported per model.")
@click.option("--export-timeout", type=float, default=60.0, show_default=True,
              help="Folder mode: timeout written to instances.csv.")
@click.option("--skip", default="misclassified", show_default=True, help="Folder mode: export skip mode.")
@click.option("--backend", default="lirpa", show_default=True, help="Folder mode: verifier backend.")
@click.option("--method", default="crown", show_default=True, help="Folder mode: lirpa bound method.")
@click.option("--verify-timeout", type=float, default=60.0, show_default=True,
              help="Folder mode: seconds per verified instance.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary rows as JSON.")
def zoo_cmd(source: str, output: str, executor: str, workers: int, ray_address: str | None, num_cpus: int,
            threads: int, as_json: bool, **kw: Any) -> None:
    """Run the graft pipeline over SOURCE: a manifest (.yaml, see specs/zoo.md) or a folder of .onnx models.

    Every finished step is journaled in OUTPUT/journal.jsonl; rerunning the same command resumes
    without redoing finished steps.  A model that fails is recorded and the batch goes on.
    Results: OUTPUT/summary.md and OUTPUT/summary.json.
    """
    from ..zoo import ExecutorConfig, check_out_folder, run_zoo

    if not Path(source).exists():
        raise BadInput(f"{source} not found: give a manifest .yaml or a folder of .onnx models")
    manifest = _manifest(source, kw)
    check_out_folder(output)

    def tell(o: Any) -> None:
        if not as_json:
            click.echo(f"{o.model}: {o.status}" + (f" ({o.error})" if o.error else "")
                       + (f" [ran {', '.join(o.ran)}]" if o.ran else " [all steps from the journal]"))

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None  # unwind like Ctrl-C
    try:
        result = run_zoo(manifest, output, executor, ExecutorConfig(workers, ray_address, num_cpus), threads, tell)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if as_json:
        echo_json({"output": str(result.out), "failed": list(result.failed),
                   "rows": [r.__dict__ for r in result.rows]})
        return
    click.echo(f"summary: {result.out / 'summary.md'} ({len(manifest.entries)} models, "
               f"{len(result.failed)} failed)")
