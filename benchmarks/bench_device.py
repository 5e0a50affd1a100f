"""Benchmark: finetuning and CROWN scoring of resnet_2b on the CPU and, where torch sees one, on CUDA.

What is timed (each the median of ``--repeats`` runs, after one warm-up run per device):

* **finetune**: ``resnet_2b`` (VNN-COMP cifar2020) with half of every site's channels
  grafted (a = 0.5, b = 0), twenty epochs of FAT + GradAlign at eps 2/255 on the 100 ERAN
  CIFAR-10 test images (there is no CIFAR training set here: this measures speed, not
  accuracy), batch 50, no validation split, exactly as ``graftonnx finetune --device D`` runs;
* **score (crown)**: CROWN instability + gradient significance of every ReLU neuron of the
  ungrafted net over the same 100 images at eps 2/255, as ``graftonnx score --bound crown
  --device D`` runs.

The result (``benchmarks/results/device.json``) records the machine, torch, the times and
the CUDA ÷ CPU speed-up; without a GPU the CUDA entries are null with the reason.

Run: ``python benchmarks/bench_device.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from graftonnx import api
from graftonnx._io import atomic_write_json
from graftonnx.data import DataSpec, load_dataset
from graftonnx.model import inspect_model, load_model
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.train import TrainConfig
from graftonnx.train.api import finetune

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "resnet_2b.onnx"
DATA = SHARED / "datasets" / "eran_cifar10_test.csv"
RESULTS = ROOT / "benchmarks" / "results" / "device.json"
EPS = 2 / 255
CIFAR = DataSpec(mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616))


def graft_half_channels(model: onnx.ModelProto) -> onnx.ModelProto:
    layers = []
    for s in inspect_model(model).relus:
        idx = tuple(range(0, s.channels, 2))
        layers.append(LayerPlan(s.name, "channel", idx, (0.5,) * len(idx), (0.0,) * len(idx)))
    return apply_plan(model, GraftPlan(tuple(layers)))


def _median(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: CUDA context, kernels, the model cache
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(repeats: int) -> dict[str, object]:
    base = load_model(MODEL)
    data = load_dataset(str(DATA), inspect_model(base), CIFAR)
    grafted = graft_half_channels(base)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    times: dict[str, dict[str, float | None]] = {}
    for dev in devices:
        cfg = TrainConfig(epochs=20, batch_size=50, lr=0.01, eps=EPS, val_fraction=0.0, progress=False, device=dev)
        times[dev] = {
            "finetune_s": _median(lambda c=cfg: finetune(grafted, data, c), repeats),
            "score_crown_s": _median(lambda d=dev: api.score(base, data, eps=EPS, bound="crown", device=d), repeats),
        }
    cuda = times.get("cuda")
    return {
        "what": "resnet_2b: finetune (half the channels grafted, 20 epochs, 100 ERAN CIFAR images, batch 50) and "
                "CROWN scoring (100 images, eps 2/255); median of repeats after a warm-up",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name(0) if cuda else None},
        "repeats": repeats,
        "cpu": times["cpu"],
        "cuda": cuda,
        "speedup": ({k: round(times["cpu"][k] / cuda[k], 2) for k in cuda} if cuda else None),
        "note": None if cuda else "torch sees no CUDA GPU on this machine: CUDA not measured",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    result = run(args.repeats)
    atomic_write_json(args.out, result)
    print(np.round([v for d in ("cpu", "cuda") if result[d] for v in result[d].values()], 2), result["speedup"])


if __name__ == "__main__":
    main()
