"""``graftonnx demo``: the embedded default job (no data, GPU or network needed)."""

from __future__ import annotations

from typing import Any

import click

from ..demo import DemoConfig, run_demo
from ..settings import from_options, options
from ._base import echo_json, main, progress_option

__all__ = ["demo_cmd"]


@main.command("demo")
@click.option("-o", "--output", default="graftonnx-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the models and report.")
@options(DemoConfig, exclude=("progress",))
@click.option("--force", is_flag=True,
              help="Start over: remove the folder's earlier demo journal, models and report first (without "
                   "--force a rerun resumes, reusing finished steps).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@progress_option
def demo_cmd(output: str, force: bool, as_json: bool, **kw: Any) -> None:
    """Train a small MLP on sklearn's digits, graft it, finetune it, and print before/after.

    Rerunning into the same --output resumes from its journal; --force starts over.
    Threads: `graftonnx --threads N demo` (default: the cores this process may use).
    """
    report = run_demo(output, from_options(DemoConfig, kw), force=force)
    if as_json:
        from dataclasses import asdict

        echo_json(asdict(report))
        return
    click.echo(report.table())
    click.echo(f"models and report.json written to {report.folder}/")
