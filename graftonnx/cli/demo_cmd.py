"""``graftonnx demo``: the embedded default job (no data, GPU or network needed)."""

from __future__ import annotations

from typing import Any

import click

from ..demo import DemoConfig, run_demo
from ..settings import from_options, options
from ._base import echo_json, main

__all__ = ["demo_cmd"]


@main.command("demo")
@click.option("-o", "--output", default="graftonnx-demo", show_default=True, help="Folder for the models and report.")
@options(DemoConfig)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def demo_cmd(output: str, as_json: bool, **kw: Any) -> None:
    """Train a small MLP on sklearn's digits, graft it, finetune it, and print before/after."""
    report = run_demo(output, from_options(DemoConfig, kw))
    if as_json:
        from dataclasses import asdict

        echo_json(asdict(report))
        return
    click.echo(report.table())
    click.echo(f"models and report.json written to {report.folder}/")
