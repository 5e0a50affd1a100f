"""Benchmark of the simplify passes: model size and UNR with and without each pass.

For mnist-net_256x2 (50 % of neurons grafted by the combined criterion, with the second
layer grafted completely) and resnet_2b (50 % of channels grafted), on the 100 ERAN test
images of ../shared, reports parameters, ReLU neurons, nodes and UNR (IBP, unstable
neurons per image) for: grafted, + remove_full_relus, + fold_linear, + drop_grafted_channels,
the largest output difference to the grafted model, and VA / verification time with
the lirpa backend on the same instances.  Writes
``benchmarks/results/simplify.json`` and ``docs/bench-simplify.md``.

    python benchmarks/bench_simplify.py
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

import graftonnx.api as g
from graftonnx import __version__
from graftonnx._io import atomic_write_json, atomic_write_text
from graftonnx.bench.export import export_benchmark
from graftonnx.data import load_dataset
from graftonnx.data.dataset import DataSpec
from graftonnx.model import inspect_model, load_model
from graftonnx.parity import compare, ort_callable
from graftonnx.planning import LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.rewrite.channels import drop_grafted_channels
from graftonnx.rewrite.fold import fold_linear, model_counts, remove_full_relus
from graftonnx.verify.backends.lirpa import LirpaOptions
from graftonnx.verify.result import Verdict
from graftonnx.verify.runner import verify_benchmark

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CIFAR = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2471, 0.2435, 0.2616)}
CASES = {  # name: (csv, spec, eps, granularity, fully grafted site index or None)
    "mnist-net_256x2": ("eran_mnist_test.csv", {}, 0.02, "neuron", 1),
    "resnet_2b": ("eran_cifar10_test.csv", CIFAR, 2 / 255, "channel", None),
}


def _grafted(name: str):
    csv, spec, eps, gran, full = CASES[name]
    m = load_model(SHARED / "models" / f"{name}.onnx")
    info = inspect_model(m)
    data = load_dataset(str(SHARED / "datasets" / csv), info, DataSpec(**spec))
    settings = g.GraftSettings(eps=eps, granularity=gran, ratio=0.5)
    plan = g.plan(m, data, settings)
    if full is not None:
        site = info.relus[full]
        layer = LayerPlan(site.name, gran, tuple(range(site.size)), (0.4,) * site.size, (0.0,) * site.size)
        plan = replace(plan, layers=tuple(layer if lp.site == site.name else lp for lp in plan.layers))
    return apply_plan(m, plan, info), data, eps


def _row(label: str, model, ref, data, eps: float, seconds: float) -> dict[str, object]:
    nodes, params, relus = model_counts(model)
    unr = g.unr(model, data, eps)
    x = data.x[:100]
    diff = compare(ort_callable(ref), ort_callable(model), x).max_abs_diff
    return {"variant": label, "nodes": nodes, "params": params, "relu_neurons": relus,
            "unr": round(sum(unr.values()), 3), "max_abs_diff": diff, "pass_seconds": round(seconds, 3)}


def _verify(models: list, data, eps: float, n: int) -> list[tuple[float, float]]:
    """(VA, mean seconds) per model with the lirpa CROWN backend, all on the same exported instances."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, m in enumerate(models):
            paths.append(Path(tmp) / f"v{i}.onnx")
            g.save_model(m, paths[-1])
        bench_dir = Path(tmp) / "bench"
        export_benchmark(paths, data, eps, n, 0, bench_dir, 60.0, skip="none")
        summary = verify_benchmark(bench_dir, "lirpa", LirpaOptions(method="crown"), Path(tmp) / "r.jsonl",
                                   progress=False)
        out = []
        for p in paths:
            res = [r for r in summary.results if Path(r.model).name == p.name]
            va = sum(r.verdict == Verdict.UNSAT for r in res) / len(res)
            out.append((va, float(np.mean([r.seconds for r in res]))))
        return out


def bench(name: str, n: int) -> list[dict[str, object]]:
    grafted, data, eps = _grafted(name)
    rows = [_row("grafted", grafted, grafted, data, eps, 0.0)]
    models = [grafted]
    cur = grafted
    for label, fn in (("+ remove_full_relus", remove_full_relus), ("+ fold_linear", fold_linear),
                      ("+ drop_grafted_channels", drop_grafted_channels)):
        t = time.perf_counter()
        cur, _ = fn(cur)
        rows.append(_row(label, cur, grafted, data, eps, time.perf_counter() - t))
        models.append(cur)
    t = time.perf_counter()
    only_drop, _ = drop_grafted_channels(grafted)
    rows.append(_row("drop_grafted_channels only", only_drop, grafted, data, eps, time.perf_counter() - t))
    models.append(only_drop)
    for row, (va, secs) in zip(rows, _verify(models, data, eps, n), strict=True):
        row["va"], row["verify_s"] = round(va, 3), round(secs, 3)
    return rows


def _markdown(results: dict[str, list[dict[str, object]]], meta: dict[str, object]) -> str:
    lines = ["# Benchmark: simplify passes", "",
             f"Measured by `python benchmarks/bench_simplify.py` on {meta['machine']} (CPU, "
             f"graftonnx {meta['version']}); UNR = IBP-unstable ReLU neurons per image on the 100 ERAN test images "
             "(ε = 0.02 MNIST, 2/255 CIFAR); max |diff| = largest output difference to the grafted model on them.",
             "VA and verify s: the `lirpa` backend (CROWN, + PGD for sat) on the same "
             f"{meta['instances']} exported instances per variant (first images, no skipping), mean seconds each.",
             ""]
    for name, rows in results.items():
        lines += [f"## {name}", "", "| variant | nodes | params | ReLU neurons | UNR | VA | verify s | max abs diff "
                  "| pass s |", "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {r['variant']} | {r['nodes']} | {r['params']} | {r['relu_neurons']} | {r['unr']} | {r['va']} | "
                  f"{r['verify_s']} | {r['max_abs_diff']:.2g} | {r['pass_seconds']} |" for r in rows]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=20, help="verified instances per variant")
    args = ap.parse_args()
    np.random.seed(0)
    meta = {"version": __version__, "machine": f"{platform.machine()} {platform.system()}, "
            f"{platform.python_version()}", "instances": args.instances}
    results = {name: bench(name, args.instances) for name in CASES}
    atomic_write_json(ROOT / "benchmarks" / "results" / "simplify.json", {"meta": meta, "results": results})
    atomic_write_text(ROOT / "docs" / "bench-simplify.md", _markdown(results, meta) + "\n")
    print(_markdown(results, meta))


if __name__ == "__main__":
    main()
