"""Regenerate the Table-1 benchmark: ``python benchmarks/paper/run.py [--quick|--full|--table1] [--out DIR]``.

Why one command: every number in docs/results.md must come from this committed script
with fixed seeds.  ``--quick`` (CI, a few minutes: one tiny MLP, two grafted rows, a dozen
CROWN instances, NeuralSAT on two) checks the pipeline; ``--full`` (≤ 2 hours on 2 CPU
cores) builds all rows at small n; ``--table1`` (issue 15: α-CROWN on 200 instances, a
complete verifier on 100, the 0–90 % sweep, channel vs neuron; many hours, over several
sittings) builds the table at a size that means something.  Work (trained nets, benchmark
folders, verifier journals) goes to ``--out`` (default ``out/paper-<mode>``, git-ignored)
and is resumed on a re-run, instance by instance (kill it any time, run the same command
again).  ``--table1`` outlives its machine: every finished job's rows and every unfinished
job's verdicts are saved at the end of each sitting (also on Ctrl-C / SIGTERM) under
``benchmarks/results/paper-table1/`` (carry.py) to be committed; the next sitting, on a
fresh machine, rebuilds the models from the same seeds and reuses every verdict whose
files hash the same.  The results JSON, the Markdown page and the PNG plots go to
``--docs`` (default: ``docs/`` for ``--table1``, and for ``--full`` without ``--only``,
else the work folder) and the JSON also to ``benchmarks/results/paper-<mode>.json`` (into
``--docs`` instead when it is given).  ``--full`` writes docs/results.md, ``--table1``
docs/results-table1.md, which lists every job: finished, or how far it got.  The README's
one-line claim is printed at the end (and written into the page), generated from the new table.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks.paper`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.paper import carry  # noqa: E402
from benchmarks.paper.config import MODES, Mode, NetJob, complete_backend  # noqa: E402
from benchmarks.paper.pipeline import run_jobs  # noqa: E402
from benchmarks.paper.plots import write_plots  # noqa: E402
from benchmarks.paper.rows import _log, machine  # noqa: E402
from benchmarks.paper.tables import readme_claim, results_markdown  # noqa: E402
from graftonnx._io import atomic_write_text  # noqa: E402
from graftonnx.errors import BadInput, GraftError  # noqa: E402

__all__ = ["main", "run", "PAGES"]

#: the page of each long mode (``--full`` keeps docs/results.md; the table1 run has its own until it is done)
PAGES = {"full": "results.md", "table1": "results-table1.md", "quick": "results.md"}


def run(mode_name: str, out: Path, docs: Path, results_json: Path | None = None,
        only: tuple[str, ...] = (), render_only: bool = False, store: Path | None = None,
        save_only: bool = False) -> dict[str, object]:
    """Run every job of the mode (resuming), then write JSON, Markdown and plots; returns the JSON.

    ``render_only``: run nothing, render the jobs already finished (a cut-short run).  ``save_only``:
    run nothing, save what ``out`` holds into ``store`` (a run killed too hard to save itself), render.  ``store``
    (``--table1``): the committed folder that carries the run across sittings (carry.py); its
    finished jobs are rendered, not rerun, and the page covers every job of the mode.
    """
    import torch

    mode = MODES[mode_name]
    torch.set_num_threads(1)  # 2 shared cores: a second thread only adds contention
    out.mkdir(parents=True, exist_ok=True)
    t0, started, interrupted = time.perf_counter(), time.time(), False
    jobs = [j for j in mode.jobs if not only or j.key in only]
    stored = carry.restore(out, store, list(mode.jobs), mode, unpack=not render_only) if store else {}
    todo = [j for j in jobs if j.key not in stored]
    if (skipped := sorted(j.key for j in jobs if j.key in stored)) and not render_only:
        _log(f"finished in an earlier sitting (delete {store}/KEY.rows.json to rerun): {', '.join(skipped)}")
    if save_only and store:
        for line in carry.save(out, store, todo, mode, carry.sitting_record(None, todo)):
            _log(line)
    elif not render_only and todo:
        try:
            run_jobs(todo, mode, out)
        except KeyboardInterrupt:  # a sitting cut short (Ctrl-C, SIGTERM): save, render how far it got, stop
            if store is None:
                raise
            interrupted = True
        finally:  # even a failed step leaves the verdicts so far committable
            for line in carry.save(out, store, todo, mode, carry.sitting_record(started, todo)) if store else ():
                _log(line)
    if store:  # what this sitting saved, with its sittings record
        stored = carry.stored_rows(store, list(mode.jobs), mode)
    page_jobs = list(mode.jobs) if store else jobs
    results = _finished(page_jobs, mode, out, stored)
    missing = [j for j in page_jobs if j.key not in {r["job"]["key"] for r in results}]
    data = {"mode": mode_name, "jobs_planned": [j.key for j in page_jobs], "budget": mode.budget.__dict__,
            "seed": mode.seed, "lr": mode.lr, "finetune_lr": mode.finetune_lr, "machine": machine(), "jobs": results,
            "pending": carry.progress(out, store, missing) if store else {},
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
    atomic_write_text(docs / PAGES[mode_name],
                      results_markdown(data, [p.relative_to(docs).as_posix() for p in images], abcrown))
    if interrupted:
        raise KeyboardInterrupt("saved and rendered; rerun the same command to resume")
    return data


def _finished(jobs: list[NetJob], mode: Mode, out: Path, stored: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of every finished job, in the mode's order: stored ones, else this machine's current ones."""
    found = (stored.get(j.key) or carry.finished(out / j.key, carry.identity(j, mode)) for j in jobs)
    return [r for r in found if r is not None]


def _complete_of(results: list[dict[str, object]], budget: object) -> str:
    """The complete verifier the rows ran (a re-render keeps theirs), else the one this environment selects."""
    seen = {r.get("complete_backend") for j in results for r in j["rows"] if r.get("n_nsat")}  # type: ignore[attr-defined]
    seen.discard(None)
    return str(seen.pop()) if len(seen) == 1 else complete_backend(budget)  # type: ignore[arg-type]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


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
    ap.add_argument("--save-only", action="store_true", help="--table1: run nothing; save the work folder's "
                    "finished rows and verdicts into --store (after a run was killed with SIGKILL), then render")
    ap.add_argument("--store", type=Path, help="--table1: the committed folder carrying the run across sittings "
                    "(default benchmarks/results/paper-table1)")
    args = ap.parse_args(argv)
    mode = "full" if args.full else "table1" if args.table1 else "quick"
    out = args.out or ROOT / "out" / f"paper-{mode}"
    long_run = mode == "table1"  # its page and JSON always cover every job: finished, stored or pending
    # a partial --full run (--only) never overwrites docs/results.md unless --docs says so
    docs = args.docs or (ROOT / "docs" if long_run or (mode == "full" and not args.only) else out)
    store = (args.store or ROOT / "benchmarks" / "results" / f"paper-{mode}") if long_run else None
    known = {j.key for j in MODES[mode].jobs}
    signal.signal(signal.SIGTERM, _interrupt)  # a sitting's end: save what it verified (run's finally)
    try:
        for key in args.only:
            if key not in known:
                raise BadInput(f"--only {key!r} is not a job of --{mode}: choose from {', '.join(sorted(known))}")
        if out.exists() and not out.is_dir():
            raise BadInput(f"--out {out} is a file: give a folder")
        results_json = ROOT / "benchmarks" / "results" / f"paper-{mode}.json" \
            if long_run or (mode == "full" and not args.only) else None
        if args.docs and results_json is not None:
            results_json = args.docs / results_json.name  # a test's or a trial's page never touches the repo's
        if args.save_only and store is None:
            raise BadInput("--save-only saves a --table1 run's work folder: add --table1")
        data = run(mode, out, docs, results_json, tuple(args.only), args.render_only or args.save_only, store,
                   args.save_only)
    except GraftError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"[paper] interrupted: the verdicts so far are saved{' in ' + str(store) if store else ''}; run the "
              "same command again to resume", file=sys.stderr)
        return 130
    page = docs / PAGES[mode]
    print(f"[paper] wrote {page}", file=sys.stderr)
    claim = readme_claim(data)
    if claim is not None:
        print(f"[paper] the README's one-line claim, from the new table: {claim}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
