"""One-knob ablations of the Table-1 benchmark: ``python benchmarks/paper/ablate.py JOB TAG --bound B --schedule S``.

Why a separate script: the full run (run.py) fixes one scoring bound and one λ schedule for
all rows; choosing those defaults needed trials that change exactly one knob on one
network (same base net, data, finetuning and CROWN instances as the full mode).  Each
trial grafts ``--criteria`` at 50 %, finetunes, and verifies with CROWN next to the
ungrafted baseline; its rows go to ``benchmarks/results/paper-ablation.json`` under
``TAG``, so every number quoted from a trial (specs/selection.md) is regenerable.
Work goes to ``--out`` (default ``out/paper-ablate``) and is resumed like run.py's.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``benchmarks.paper`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.paper.config import MODES  # noqa: E402
from benchmarks.paper.pipeline import run_jobs  # noqa: E402
from graftonnx._io import atomic_write_text  # noqa: E402
from graftonnx.bounds import BOUND_METHODS  # noqa: E402
from graftonnx.planning import SCHEDULES  # noqa: E402

__all__ = ["main"]

RESULTS = ROOT / "benchmarks" / "results" / "paper-ablation.json"


def main(argv: list[str] | None = None) -> int:
    import torch

    full = MODES["full"]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("job", choices=[j.key for j in full.jobs], help="the full mode's network to ablate on")
    ap.add_argument("tag", help="name of this trial (its work folder and its key in the results JSON)")
    ap.add_argument("--bound", choices=list(BOUND_METHODS.keys()), default=full.budget.score_bound,
                    help="bound method of the instability score")
    ap.add_argument("--schedule", choices=SCHEDULES, default="total", help="λ schedule of the combined criterion")
    ap.add_argument("--criteria", default="combined", help="comma-separated criteria grafted at 50 %%")
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "paper-ablate", help="work folder")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    base = next(j for j in full.jobs if j.key == args.job)
    job = replace(base, key=args.tag, criteria=tuple(args.criteria.split(",")), ratios=(0.5,), extra=(), nsat=(),
                  schedule=args.schedule)
    mode = replace(full, budget=replace(full.budget, score_bound=args.bound), jobs=(job,))
    (result,) = run_jobs([job], mode, args.out)
    keep = ("variant", "unr", "va_crown", "n_crown", "sa", "ra", "crown_mean_time", "grafted_neurons")
    entry = {"job": args.job, "bound": args.bound, "schedule": args.schedule, "machine": result["machine"],
             "rows": [{k: r.get(k) for k in keep} for r in result["rows"]]}
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    data[args.tag] = entry
    atomic_write_text(RESULTS, json.dumps(data, indent=1, sort_keys=True) + "\n")
    for r in entry["rows"]:
        print(f"{args.tag}: {r['variant']}: UNR {r['unr']:.1f} VA(CROWN, n={r['n_crown']}) {r['va_crown']:.1f} "
              f"SA {r['sa']:.1f} RA {r['ra']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
