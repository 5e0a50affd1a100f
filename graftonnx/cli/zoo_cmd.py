"""``graftonnx zoo``: run inspect → score → graft → finetune → export → verify over many models, resumably.

The folder-mode flags are the stages' own knobs (:mod:`graftonnx.settings`): the data
options, the graft knobs (``--eps``, ``--criterion``, ...), and one ``--<section>-<knob>``
flag per knob of every other section (``--finetune-epochs``, ``--export-instances``,
``--verify-backend``), read when the command is asked for them, so a stage registered by
a plugin shows up here without touching this file.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from ..engine.executors import EXECUTORS
from ..errors import BadInput, GraftFailure
from ._base import echo_json, given_on_command_line, main, progress_option

__all__ = ["zoo_cmd"]


def _sections() -> dict[str, type]:
    from ..zoo.manifest import SECTIONS, extra_sections

    return {k: v for k, v in SECTIONS.items() if k != "data"} | extra_sections()


def _stage_params() -> list[click.Parameter]:
    """Folder-mode options: data, graft knobs, --ratios, --finetune and every section's prefixed knobs."""
    from ..data import DataSpec
    from ..planning.settings import GraftSettings
    from ..settings import option_list
    from ..verify import option_classes

    opts: list[click.Parameter] = option_list(DataSpec, GraftSettings, exclude=("ratio", "count"), runtime=False)
    opts.append(click.Option(["--ratios"], default="0.5", show_default=True,
                             help="Graft ratios, comma-separated (fractions of the ReLU neurons)."))
    opts.append(click.Option(["--finetune/--no-finetune"], default=False, show_default=True,
                             help="Finetune every graft (with the --finetune-* knobs)."))
    for name, cls in _sections().items():
        owned = ("eps", "seed") if name == "finetune" else ()
        opts += option_list(cls, prefix={cls: f"{name}-"}, exclude=[f"{name}_{k}" for k in owned], runtime=False)
    backends = option_classes()
    return opts + option_list(*backends, prefix={c: "verify-" for c in backends}, runtime=False)


class _ZooCommand(click.Command):
    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)  # its last one is --help
        return [*params[:-1], *_stage_params(), *params[-1:]]


def _template(kw: dict[str, Any]) -> Any:
    """The ModelEntry every model of a folder gets, from the flags."""
    from ..data import DataSpec
    from ..planning.settings import GraftSettings
    from ..settings import from_options
    from ..verify import backend_options
    from ..zoo import ModelEntry
    from ..zoo.manifest import _ratios

    if kw["data"] is None:
        raise BadInput("a folder of models needs --data (labelled images for scoring, accuracy and export)")
    try:
        ratios = tuple(float(x) for x in str(kw["ratios"]).replace(" ", "").split(",") if x)
    except ValueError:
        ratios = ()
    if not ratios or _ratios(ratios):
        raise BadInput(f"--ratios {kw['ratios']}: every ratio must be in (0, 1], e.g. --ratios 0.3,0.5")
    sections = {n: from_options(cls, kw, prefix=f"{n}-") for n, cls in _sections().items()}
    trained = sections.pop("finetune")
    finetune = trained if kw["finetune"] else None
    builtin = {k: sections.pop(k) for k in ("export", "verify")}
    backend = backend_options(builtin["verify"].backend, kw, prefix="verify-", given=given_on_command_line(kw))
    return ModelEntry("template", "", ratios, from_options(GraftSettings, kw), from_options(DataSpec, kw), finetune,
                      **builtin, backend=backend, extra=tuple(sorted(sections.items())))


def _manifest(source: str, kw: dict[str, Any]) -> Any:
    from ..zoo import load_manifest, manifest_from_folder

    p = Path(source)
    if p.is_dir():
        return manifest_from_folder(p, _template(kw))
    given = given_on_command_line(o.name for o in _stage_params() if o.name)
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise BadInput(f"{flag} applies to a folder of models; with a manifest put it under 'defaults:' in {p}")
    return load_manifest(p)


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@main.command("zoo", cls=_ZooCommand)
@click.argument("source", type=click.Path())
@click.option("-o", "--output", "output", default="zoo-out", show_default=True, type=click.Path(),
              help="Output folder (created; an existing one is resumed from its journal.jsonl).")
@click.option("--executor", type=click.Choice(EXECUTORS.keys()), default="local", show_default=True,
              help="local: this process (or --workers processes); ray: one Ray task per model, its verification "
                   "instances one task each.")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Models at once with --executor local.")
@click.option("--ray-address", default=None, help="Ray cluster to join (e.g. ray://host:10001). Default: start a "
              "local Ray with --num-cpus.")
@click.option("--num-cpus", type=click.IntRange(1), default=2, show_default=True, help="CPUs of a local Ray.")
@click.option("--threads", type=click.IntRange(1), default=1, show_default=True,
              help="Torch and onnxruntime threads per model (pinned so results match across executors; "
                   "keep --workers × --threads within the cores).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary rows as JSON.")
@progress_option
def zoo_cmd(source: str, output: str, executor: str, workers: int, ray_address: str | None, num_cpus: int,
            threads: int, as_json: bool, progress: bool, **kw: Any) -> None:
    """Run the graft pipeline over SOURCE: a manifest (.yaml, see specs/zoo.md) or a folder of .onnx models.

    Every finished step is journaled in OUTPUT/journal.jsonl; rerunning the same command resumes
    without redoing finished steps.  A model that fails is recorded and the batch goes on.
    Results: OUTPUT/summary.md and OUTPUT/summary.json.
    """
    from .._progress import set_enabled
    from ..threads import set_threads
    from ..zoo import ExecutorConfig, check_out_folder, run_zoo

    set_enabled(progress)  # inherited by the worker processes, like the thread count below
    set_threads(threads)  # onnxruntime sessions too: --threads per model, never the machine's core count
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
    else:
        click.echo(f"summary: {result.out / 'summary.md'} ({len(manifest.entries)} models, "
                   f"{len(result.failed)} failed)")
    _exit_status(len(result.failed), len(result.models), result.out)


def _exit_status(failed: int, total: int, out: Path) -> None:
    """Exit 1 when every model failed (nothing to report: a script must notice); otherwise say how many failed.

    Why not 1 for some failures: the batch is built to go on past a failed model, and the
    summary holds the others' results; a partial failure is a warning line on stderr.
    """
    if not failed:
        return
    what = f"{failed} of {total} models failed"
    if failed >= total:
        raise GraftFailure(f"{what}: see the error column of {out / 'summary.md'}; fix the cause and rerun the "
                           "same command to resume")
    click.echo(f"graftonnx: warning: {what}: see the error column of {out / 'summary.md'}", err=True)
