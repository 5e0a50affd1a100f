"""``graftonnx verify``: run a verifier over a VNN-COMP benchmark folder, resumably.

The flags are :class:`graftonnx.verify.settings.VerifySettings` plus every backend's own
knobs (``Backend.Options``); a knob two backends share (``--device``) is one flag, and
each backend reads only its own.
"""

from __future__ import annotations

from typing import Any

import click

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
@options(*option_classes(), defaults={"device": None})
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@progress_option
def verify_cmd(bench_dir: str, results: str, as_json: bool, progress: bool, **kw: Any) -> None:
    """Verify every instance of BENCH_DIR (instances.csv: onnx,vnnlib,timeout) and journal the verdicts.

    Every sat is re-run in onnxruntime; an invalid counterexample is recorded as error.
    """
    s = from_options(VerifySettings, kw)
    opts = backend_options(s.backend, kw, given=given_on_command_line(kw))
    summary = verify_benchmark(bench_dir, s.backend, opts, results, s.timeout, s.workers, progress)
    counts = summary.counts()
    if as_json:
        echo_json({"journal": str(summary.journal), "instances": len(summary.results), "reused": summary.reused,
                   "counts": counts, "results": [r.to_json() for r in summary.results]})
        return
    for r in summary.results:
        click.echo(f"{r.verdict:<8} {r.seconds:8.2f}s  {r.instance}" + (f"  ({r.message})" if r.message else ""))
    click.echo(f"{len(summary.results)} instances ({summary.reused} from the journal): "
               + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; journal {summary.journal}")
