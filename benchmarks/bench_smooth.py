"""Benchmark: grafting sigmoid MLPs (the paper's appendix) on mnist5k and sklearn digits, verified by lirpa CROWN.

Per dataset: train a sigmoid MLP (``mlp-sigmoid``, small-ε FAT), then finetune it alike in
every variant — the ungrafted baseline (weights only), 25/50/75 % of its Sigmoid units grafted
by the default criterion (``combined``: CROWN relaxation looseness and gradient significance,
λ schedule), and a random 50 % as an ablation of the criterion.  Grafted units start as
their least-squares line over the observed pre-activations.  Reported: clean accuracy (SA)
on the held-out images, verified accuracy (VA: correct and every CROWN margin lower bound
> 0 over the L∞ ε-ball, the lirpa backend's test) on the first ``--instances`` held-out
images, and the mean CROWN bound time per instance, on the verifier-ready form that
``graftonnx export`` writes (``rewrite/smooth_native.py``) and, beside it, on the mask form.
Everything runs through the public API (``api.plan``/``api.graft``, ``train.api.finetune``)
and ``graftonnx._lirpa``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_smooth.py [--instances 50]`` (about 5 minutes on
one thread); results go to ``benchmarks/results/smooth.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from graftonnx import api
from graftonnx._io import atomic_write_json, atomic_write_text
from graftonnx._lirpa import lirpa_model
from graftonnx.bench.spec import Property
from graftonnx.data import DataSpec, load_dataset
from graftonnx.data.dataset import Dataset
from graftonnx.model import inspect_model
from graftonnx.model.runtime import OrtRunner
from graftonnx.rewrite.native import native_form
from graftonnx.train import TrainConfig
from graftonnx.train.api import finetune, stub_info, train_from_scratch
from graftonnx.verify.backends.lirpa import margin_lower_bounds

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: dataset → (sample shape, train images, architecture, ε of training and verification, base epochs)
SETUPS = {
    "mnist5k": ((784,), 4000, "mlp-sigmoid:64,64", 0.1, 12),
    "digits": ((64,), 1400, "mlp-sigmoid:32,32", 0.1, 30),
}
RATIOS = (0.25, 0.5, 0.75)


def split(name: str) -> tuple[Dataset, Dataset]:
    shape, n_train, *_ = SETUPS[name]
    d = load_dataset(name, stub_info(shape), DataSpec())
    return (Dataset(d.x[:n_train], d.y[:n_train], f"{name}[:{n_train}]"),
            Dataset(d.x[n_train:], d.y[n_train:], f"{name}[{n_train}:]"))


def crown_va(model: onnx.ModelProto, test: Dataset, eps: float, n: int, repeats: int = 3) -> tuple[float, float]:
    """(VA, mean seconds per instance) by CROWN over the ε-balls of the first ``n`` held-out images.

    Each instance's time is the fastest of ``repeats`` bound passes: the machine is shared, and the
    minimum is the least disturbed estimate of what the pass costs.
    """
    net = lirpa_model(model)
    logits = OrtRunner(model).logits(test.x[:n])
    verified, seconds = 0, []
    for i in range(n):
        x = test.x[i].astype(np.float64)
        label = int(test.y[i])
        prop = Property(np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1), label, logits.shape[1])
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            worst = float(margin_lower_bounds(net, prop, "CROWN").min())
            times.append(time.perf_counter() - t0)
        seconds.append(min(times))
        verified += int(logits[i].argmax() == label and worst > 0)
    return verified / n, float(np.mean(seconds))


def variants(base: onnx.ModelProto, train: Dataset, eps: float) -> dict[str, tuple[onnx.ModelProto, int]]:
    """Name → (model before finetuning, grafted neurons): baseline, 25/50/75 % combined, random 50 %."""
    scoring = Dataset(train.x[:1000], train.y[:1000], f"{train.source}[:1000]")
    table = api.score(base, scoring, eps=eps, bound="crown")
    out: dict[str, tuple[onnx.ModelProto, int]] = {"baseline (no graft)": (base, 0)}
    for ratio in RATIOS:
        plan = api.plan(base, scoring, scores=table, ratio=ratio, eps=eps, bound="crown")
        out[f"combined {ratio:.0%}"] = (api.graft(base, scoring, plan=plan).model, plan.grafted_neurons(
            inspect_model(base)))
    plan = api.plan(base, scoring, scores=table, ratio=0.5, eps=eps, bound="crown", criterion="random")
    out["random 50%"] = (api.graft(base, scoring, plan=plan).model, plan.grafted_neurons(inspect_model(base)))
    return out


def run_dataset(name: str, instances: int, ft_epochs: int) -> dict[str, object]:
    _, _, arch, eps, epochs = SETUPS[name]
    train, test = split(name)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    cfg = TrainConfig(epochs=epochs, eps=eps, lr=0.5, batch_size=32, val_fraction=0.1, progress=False, seed=0)
    base = train_from_scratch(arch, train, cfg).model
    ft = dataclasses.replace(cfg, epochs=ft_epochs, lr=0.05, graft_lr=0.05)
    rows = []
    for label, (model, grafted) in variants(base, train, eps).items():
        tuned = finetune(model, train, ft).model
        sa_before = api.accuracy(model, test)
        va_mask, sec_mask = crown_va(tuned, test, eps, instances)
        va, sec = crown_va(native_form(tuned)[0], test, eps, instances) if grafted else (va_mask, sec_mask)
        rows.append({"variant": label, "grafted_neurons": grafted, "sa_before_finetune": sa_before,
                     "sa": api.accuracy(tuned, test), "va_crown": va, "crown_s_mean": sec,
                     "va_crown_mask_form": va_mask, "crown_s_mean_mask_form": sec_mask})
        print(name, rows[-1], flush=True)
    info = inspect_model(base)
    return {"dataset": name, "arch": arch, "neurons": info.n_neurons, "train_images": len(train),
            "held_out": len(test), "eps": eps, "base_epochs": epochs, "finetune_epochs": ft_epochs,
            "instances": instances, "seconds": time.perf_counter() - t0, "rows": rows}


def markdown(res: dict[str, object]) -> str:
    lines = ["# Grafting sigmoid MLPs: lirpa CROWN verified accuracy vs the ungrafted baseline", "",
             f"`{res['command']}` — torch {res['torch']}, {res['torch_threads']} torch thread(s), {res['cpus']} CPUs "
             f"({res['machine']}); {res['seconds']:.0f} s in all; load average at the end "
             f"{[round(v, 1) for v in res['load_average_at_end']]} (a shared machine: times are the fastest of 3 "
             "passes per instance). Every variant is finetuned alike (FAT + GradAlign "
             "at the verification ε); grafted units start as their least-squares line; selection by the default "
             "`combined` criterion on CROWN looseness (specs/smooth.md), `random` as its ablation.", ""]
    for d in res["datasets"]:  # type: ignore[union-attr]
        lines += [f"## {d['dataset']}: {d['arch']} ({d['neurons']} Sigmoid units), ε = {d['eps']}", "",
                  f"{d['train_images']} training images ({d['base_epochs']} epochs FAT, then {d['finetune_epochs']} "
                  f"finetuning epochs per variant); SA on {d['held_out']} held-out images, VA on the first "
                  f"{d['instances']}.", "",
                  "| variant | grafted | SA before finetune | SA | CROWN VA | CROWN time / instance, verifier-ready "
                  "(mask form) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for r in d["rows"]:
            lines.append(f"| {r['variant']} | {r['grafted_neurons']} | {r['sa_before_finetune']:.3f} | {r['sa']:.3f} "
                         f"| {r['va_crown']:.2f} | {r['crown_s_mean'] * 1000:.1f} ms "
                         f"({r['crown_s_mean_mask_form'] * 1000:.1f} ms) |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=50)
    ap.add_argument("--finetune-epochs", type=int, default=3)
    ap.add_argument("--datasets", default="mnist5k,digits")
    ap.add_argument("--out", default=str(RESULTS / "smooth"), help="results path without suffix")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    datasets = [run_dataset(n, args.instances, args.finetune_epochs) for n in args.datasets.split(",")]
    res = {"command": "OMP_NUM_THREADS=1 python benchmarks/bench_smooth.py", "torch": torch.__version__,
           "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
           "machine": platform.processor() or platform.machine(), "seconds": time.perf_counter() - t0,
           "load_average_at_end": list(os.getloadavg()), "datasets": datasets}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_suffix(".json"), res)
    atomic_write_text(out.with_suffix(".md"), markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
