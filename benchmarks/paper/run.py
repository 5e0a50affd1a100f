"""Regenerate the Table-1 benchmark: ``python benchmarks/paper/run.py [--quick|--full|--table1] [--out DIR]``.

Why one command: every number in docs/results.md must come from this committed script
with fixed seeds.  ``--quick`` (CI, a few minutes: one tiny MLP, two grafted rows, a dozen
CROWN instances, NeuralSAT on two) checks the pipeline; ``--full`` (≤ 2 hours on 2 CPU
cores) builds all rows at small n; ``--table1`` (issue 15: α-CROWN on 200 instances, a
complete verifier on 100, the 0–90 % sweep, channel vs neuron; many hours, over several
sittings) builds the table at a size that means something.  Work (trained nets, benchmark
folders, verifier journals) goes to ``--out`` (default ``out/paper-<mode>``, git-ignored)
and is resumed on a re-run, instance by instance (kill it any time, run the same command
again); the results JSON, the Markdown page and the PNG plots go to ``--docs`` (default:
``docs/`` for ``--full`` and ``--table1`` without ``--only``, else the work folder) and the JSON
also to ``benchmarks/results/paper-<mode>.json`` there.  The README's one-line claim is
printed at the end (and written into the page), generated from the new table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks.paper`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.paper.config import MODES, complete_backend  # noqa: E402
from benchmarks.paper.pipeline import run_jobs  # noqa: E402
from benchmarks.paper.plots import write_plots  # noqa: E402
from benchmarks.paper.rows import machine  # noqa: E402
from benchmarks.paper.tables import readme_claim, results_markdown  # noqa: E402
from graftonnx._io import atomic_write_text  # noqa: E402
from graftonnx.errors import BadInput, GraftError  # noqa: E402

__all__ = ["main", "run"]


def run(mode_name: str, out: Path, docs: Path, results_json: Path | None = None,
        only: tuple[str, ...] = (), render_only: bool = False) -> dict[str, object]:
    """Run every job of the mode (resuming), then write JSON, Markdown and plots; returns the JSON.

    ``render_only``: run nothing, render the jobs already finished in ``out`` (a cut-short run).
    """
    import torch

    mode = MODES[mode_name]
    torch.set_num_threads(1)  # 2 shared cores: a second thread only adds contention
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [j for j in mode.jobs if not only or j.key in only]
    if render_only:
        results = [json.loads((out / j.key / "rows.json").read_text()) for j in jobs
                   if (out / j.key / "rows.json").is_file()]
    else:
        results = run_jobs(jobs, mode, out)
    data = {"mode": mode_name, "jobs_planned": [j.key for j in jobs], "budget": mode.budget.__dict__,
            "seed": mode.seed, "lr": mode.lr, "finetune_lr": mode.finetune_lr, "machine": machine(), "jobs": results,
            "complete_backend": _complete_of(results, mode.budget),
            "seconds_this_run": round(time.perf_counter() - t0, 1)}
    docs.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, default=str) + "\n"
    atomic_write_text(out / f"paper-{mode_name}.json", text)
    if results_json is not None:
        atomic_write_text(results_json, text)
    images = write_plots(data, docs / "img", prefix=f"paper-{mode_name}")
    gpu_logs = ROOT / "docs" / "logs" / "abcrown-paper"
    abcrown = None
    if mode_name == "full" and (gpu_logs / "summary.csv").is_file():
        abcrown = ((gpu_logs / "summary.csv").read_text(), (gpu_logs / "gpu.txt").read_text())
    atomic_write_text(docs / "results.md",
                      results_markdown(data, [p.relative_to(docs).as_posix() for p in images], abcrown))
    return data


def _complete_of(results: list[dict[str, object]], budget: object) -> str:
    """The complete verifier the rows ran (a re-render keeps theirs), else the one this environment selects."""
    seen = {r.get("complete_backend") for j in results for r in j["rows"] if r.get("n_nsat")}  # type: ignore[attr-defined]
    seen.discard(None)
    return str(seen.pop()) if len(seen) == 1 else complete_backend(budget)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="CI mode: minutes (default)")
    g.add_argument("--full", action="store_true", help="all rows: up to ~2 hours on 2 cores")
    g.add_argument("--table1", action="store_true", help="issue 15's sizes, sweep and channel rows: many hours, "
                   "resumable across sittings")
    ap.add_argument("--out", type=Path, help="work folder (default out/paper-<mode>)")
    ap.add_argument("--docs", type=Path, help="where results.md and img/ go (default docs/ for --full)")
    ap.add_argument("--only", action="append", default=[], help="run only this job key (repeatable)")
    ap.add_argument("--render-only", action="store_true", help="run nothing: render the finished jobs in --out")
    args = ap.parse_args(argv)
    mode = "full" if args.full else "table1" if args.table1 else "quick"
    out = args.out or ROOT / "out" / f"paper-{mode}"
    # a partial run (--only) never overwrites docs/results.md unless --docs says so
    docs = args.docs or (ROOT / "docs" if mode != "quick" and not args.only else out)
    known = {j.key for j in MODES[mode].jobs}
    try:
        for key in args.only:
            if key not in known:
                raise BadInput(f"--only {key!r} is not a job of --{mode}: choose from {', '.join(sorted(known))}")
        if out.exists() and not out.is_dir():
            raise BadInput(f"--out {out} is a file: give a folder")
        results_json = ROOT / "benchmarks" / "results" / f"paper-{mode}.json" if mode != "quick" and not args.only \
            else None
        data = run(mode, out, docs, results_json, tuple(args.only), args.render_only)
    except GraftError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    print(f"[paper] wrote {docs / 'results.md'}", file=sys.stderr)
    claim = readme_claim(data)
    if claim is not None:
        print(f"[paper] the README's one-line claim, from the new table: {claim}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
