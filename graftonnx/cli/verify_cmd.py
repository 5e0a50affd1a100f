"""``graftonnx verify``: run a verifier over a VNN-COMP benchmark folder, resumably.

The flags are :class:`graftonnx.verify.settings.VerifySettings` plus every backend's own
knobs (``Backend.Options``); a knob two backends share (``--device``) is one flag, and
each backend reads only its own.
"""

from __future__ import annotations

from typing import Any

import click

from ..engine.executors import EXECUTORS, ExecutorConfig
from ..settings import from_options, options
from ..verify import backend_options, option_classes, verify_benchmark
from ..verify.settings import VerifySettings
from ._base import echo_json, given_on_command_line, main, progress_option

__all__ = ["verify_cmd"]


@main.command("verify")
@click.argument("bench_dir", type=click.Path(file_okay=False))
@options(VerifySettings)
@click.option("--results", type=click.Path(dir_okay=False), default="results.jsonl", show_default=True,
              help="JSONL journal, one line per finished instance; rerunning resumes from it. Logs go to "
                   "<results without .jsonl>.logs/.")
@options(*option_classes())
@click.option("--executor", type=click.Choice(EXECUTORS.keys()), default="local", show_default=True,
              help="local: this process (or --workers processes); ray: one Ray task per instance.")
@click.option("--ray-address", default=None, help="Ray cluster to join (e.g. ray://host:10001). Default: start a "
              "local Ray with --num-cpus.")
@click.option("--num-cpus", type=click.IntRange(1), default=2, show_default=True, help="CPUs of a local Ray.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@progress_option
def verify_cmd(bench_dir: str, results: str, executor: str, ray_address: str | None, num_cpus: int, as_json: bool,
               progress: bool, **kw: Any) -> None:
    """Verify every instance of BENCH_DIR (instances.csv: onnx,vnnlib,timeout) and journal the verdicts.

    Every sat is re-run in onnxruntime; an invalid counterexample is recorded as error.
    """
    s = from_options(VerifySettings, kw)
    opts = backend_options(s.backend, kw, given=given_on_command_line(kw))
    ray = ExecutorConfig(ray_address=ray_address, num_cpus=num_cpus) if executor == "ray" else None
    summary = verify_benchmark(bench_dir, s.backend, opts, results, s.timeout, s.workers, progress, ray)
    counts = summary.counts()
    if as_json:
        echo_json({"journal": str(summary.journal), "instances": len(summary.results), "reused": summary.reused,
                   "counts": counts, "results": [r.to_json() for r in summary.results]})
        return
    for r in summary.results:
        click.echo(f"{r.verdict:<8} {r.seconds:8.2f}s  {r.instance}" + (f"  ({r.message})" if r.message else ""))
    click.echo(f"{len(summary.results)} instances ({summary.reused} from the journal): "
               + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; journal {summary.journal}")
