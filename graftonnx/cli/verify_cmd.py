"""``graftonnx verify``: run a verifier over a VNN-COMP benchmark folder, resumably."""

from __future__ import annotations

import click

from ..verify import BACKENDS, BackendOptions, verify_benchmark
from ..verify.backends.lirpa import LIRPA_VERIFY_METHODS
from ._base import echo_json, main

__all__ = ["verify_cmd"]


@main.command("verify")
@click.argument("bench_dir", type=click.Path(file_okay=False))
@click.option("--backend", type=click.Choice(BACKENDS.keys()), default="lirpa", show_default=True,
              help="lirpa: auto_LiRPA bounds + attack (incomplete, CPU); neuralsat: complete, CPU; "
                   "abcrown: α,β-CROWN checkout (complete, GPU).")
@click.option("--timeout", type=float, default=None,
              help="Seconds per instance, overriding instances.csv's third column. Default: the csv's.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Instances run at once in worker processes (CPU backends only; GPU runs stay sequential).")
@click.option("--results", type=click.Path(dir_okay=False), default="results.jsonl", show_default=True,
              help="JSONL journal, one line per finished instance; rerunning resumes from it. Logs go to "
                   "<results without .jsonl>.logs/.")
@click.option("--method", type=click.Choice(list(LIRPA_VERIFY_METHODS)), default="crown", show_default=True,
              help="Bound method of the lirpa backend.")
@click.option("--abcrown", "abcrown_path", type=click.Path(), default=None,
              help="α,β-CROWN folder holding abcrown.py. Default: $ABCROWN_PATH.")
@click.option("--abcrown-python", type=click.Path(dir_okay=False), default=None,
              help="Interpreter that runs abcrown.py (the checkout's own venv). Default: $ABCROWN_PY, else this one.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Device for neuralsat/abcrown. Default: cuda for abcrown, cpu for neuralsat.")
@click.option("--conv-mode", type=click.Choice(["patches", "matrix"]), default="patches", show_default=True,
              help="α,β-CROWN convolution mode; instances whose model has an elementwise non-scalar constant on "
                   "a feature map (a per-neuron conv graft) run in matrix mode, which is all auto_LiRPA bounds.")
@click.option("--branching", type=click.Choice(["kfsb", "babsr", "fsb"]), default=None,
              help="α,β-CROWN's ReLU branching heuristic. Default: α,β-CROWN's own (kfsb).")
@click.option("--sparse-interm/--no-sparse-interm", default=False, show_default=True,
              help="α,β-CROWN sparse intermediate bounds (off suits grafted nets).")
@click.option("--mip/--no-mip", default=False, show_default=True,
              help="NeuralSAT's MIP verification/tightening (needs a full Gurobi licence beyond 2000 variables).")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def verify_cmd(bench_dir: str, backend: str, timeout: float | None, workers: int, results: str, method: str,
               abcrown_path: str | None, abcrown_python: str | None, device: str | None, conv_mode: str,
               branching: str | None, sparse_interm: bool, mip: bool,
               as_json: bool, progress: bool) -> None:
    """Verify every instance of BENCH_DIR (instances.csv: onnx,vnnlib,timeout) and journal the verdicts.

    Every sat is re-run in onnxruntime; an invalid counterexample is recorded as error.
    """
    dev = device or ("cuda" if backend == "abcrown" else "cpu")
    opts = BackendOptions(method=method, device=dev, abcrown_path=abcrown_path, abcrown_python=abcrown_python,
                          conv_mode=conv_mode, branching=branching,
                          sparse_interm=sparse_interm, mip=mip)
    summary = verify_benchmark(bench_dir, backend, opts, results, timeout, workers, progress)
    counts = summary.counts()
    if as_json:
        echo_json({"journal": str(summary.journal), "instances": len(summary.results), "reused": summary.reused,
                   "counts": counts, "results": [r.to_json() for r in summary.results]})
        return
    for r in summary.results:
        click.echo(f"{r.verdict:<8} {r.seconds:8.2f}s  {r.instance}" + (f"  ({r.message})" if r.message else ""))
    click.echo(f"{len(summary.results)} instances ({summary.reused} from the journal): "
               + ", ".join(f"{k} {v}" for k, v in counts.items()) + f"; journal {summary.journal}")
