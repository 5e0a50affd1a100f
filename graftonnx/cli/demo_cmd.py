"""``graftonnx demo``: the embedded default job (no data, GPU or network needed)."""

from __future__ import annotations

import click

from ..demo import run_demo
from ._base import echo_json, main

__all__ = ["demo_cmd"]


@main.command("demo")
@click.option("-o", "--output", default="graftonnx-demo", show_default=True, help="Folder for the models and report.")
@click.option("--eps", type=float, default=0.05, show_default=True, help="L∞ radius on [0, 1] pixels.")
@click.option("--ratio", type=click.FloatRange(0, 1), default=0.5, show_default=True, help="Fraction to graft.")
@click.option("--epochs", type=click.IntRange(1), default=20, show_default=True, help="Training epochs.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
def demo_cmd(output: str, eps: float, ratio: float, epochs: int, as_json: bool, progress: bool) -> None:
    """Train a small MLP on sklearn's digits, graft it, finetune it, and print before/after."""
    report = run_demo(output, eps=eps, ratio=ratio, epochs=epochs, progress=progress)
    if as_json:
        from dataclasses import asdict

        echo_json(asdict(report))
        return
    click.echo(report.table())
    click.echo(f"models and report.json written to {report.folder}/")
