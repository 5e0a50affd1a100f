"""Benchmark of verification: baseline vs a 50 % graft, same instances, same budget, per backend.

For mnist-net_256x2 (ERAN MNIST images, ε = 0.02) and resnet_2b (ERAN CIFAR images,
ε = 2/255, normalisation folded into the exported graph): export one VNN-COMP benchmark
holding the baseline and its 50 % graft (combined criterion, ``--init fit``; the MNIST
graft is also finetuned for a few epochs on mnist5k, since a graft is meant to be
finetuned; resnet_2b cannot be, no CIFAR training set ships here), verify every instance
with the ``lirpa`` (CROWN) and ``neuralsat`` backends, and report VA, UNR on the instance
boxes and verification time per model and backend.  It also measures graftonnx's own
per-instance overhead around a verifier: a ``null`` backend that answers at once gives
the cost of reading instances, journaling and checking; for NeuralSAT the runner's wall
time per instance minus the verifier subprocess's own wall time.

    python benchmarks/bench_verify.py [--instances 10] [--timeout 30]

Writes ``benchmarks/results/verify.json`` and ``docs/bench-verify.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime
import torch

import graftonnx.api as g
from graftonnx import __version__
from graftonnx.bench.export import export_benchmark
from graftonnx.data import load_dataset
from graftonnx.data.dataset import DataSpec
from graftonnx.report.metrics import ReportOptions, build_report
from graftonnx.train import TrainConfig
from graftonnx.train.api import finetune
from graftonnx.verify.backends.base import BACKENDS, backend_options, base_result
from graftonnx.verify.backends.lirpa import LirpaOptions
from graftonnx.verify.result import Verdict
from graftonnx.verify.runner import verify_benchmark

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CIFAR = {"mean": (0.4914, 0.4822, 0.4465), "std": (0.2471, 0.2435, 0.2616)}
NETS = {"mnist-net_256x2": ("eran_mnist_test.csv", {}, 0.02, "mnist5k"),
        "resnet_2b": ("eran_cifar10_test.csv", CIFAR, 2 / 255, None)}


@BACKENDS.register("null")
class NullBackend:
    """Answers ``unknown`` at once: what is left of a run's time is graftonnx's own overhead."""

    name = "null"
    Options = LirpaOptions  # no knobs of its own: any lirpa options do

    @classmethod
    def from_options(cls, options: LirpaOptions) -> NullBackend:
        return cls()

    def verify(self, onnx_path, vnnlib_path, timeout, workdir):  # noqa: ANN001, ANN201
        return base_result("null", onnx_path, vnnlib_path, Verdict.UNKNOWN, 0.0, message="null backend")


def _models(name: str, work: Path) -> list[Path]:
    csv, over, eps, train = NETS[name]
    base = SHARED / "models" / f"{name}.onnx"
    info = g.inspect(base)
    data = load_dataset(str(SHARED / "datasets" / csv), info, DataSpec(**over))
    grafted = g.graft(base, data, ratio=0.5, eps=eps, init="fit").model
    out = [base, work / f"{name}-graft50.onnx"]
    g.save_model(grafted, out[1])
    if train:
        tdata = load_dataset(train, info, DataSpec(n=2000))
        tuned = finetune(grafted, tdata, TrainConfig(epochs=3, eps=eps, lr=0.01, seed=0, progress=False)).model
        out.append(work / f"{name}-graft50-ft.onnx")
        g.save_model(tuned, out[2])
    return out


def _run(bench: Path, backend: str, timeout: float, journal: Path) -> float:
    t = time.perf_counter()
    opts = backend_options(backend, {"method": "crown", "grace_s": 10.0})
    verify_benchmark(bench, backend, opts, journal, timeout=timeout, progress=False)
    return time.perf_counter() - t


def bench_net(name: str, n: int, timeout: float, work: Path) -> dict[str, object]:
    csv, over, eps, _ = NETS[name]
    models = _models(name, work)
    data = load_dataset(str(SHARED / "datasets" / csv), g.inspect(models[0]), DataSpec(**over))
    bench = work / f"bench-{name}"
    export_benchmark(models, data, eps, n, 0, bench, timeout)
    rows: dict[str, object] = {"net": name, "eps": eps, "instances_per_model": n, "models": [m.name for m in models]}
    walls = {}
    for backend in ("null", "lirpa", "neuralsat"):
        walls[backend] = _run(bench, backend, timeout, work / f"{name}-{backend}.jsonl")
    journals = [work / f"{name}-{b}.jsonl" for b in ("lirpa", "neuralsat")]
    report = build_report(journals, bench, ReportOptions(bound="crown"))
    rows["rows"] = [{"model": Path(m.model).name, "backend": m.backend, "va": m.va, "unsat": m.unsat,
                     "sat": m.sat, "timeouts": m.timeouts, "unknown": m.unknown, "errors": m.errors,
                     "unr": m.unr.unstable, "mean_time": m.mean_time, "median_time": m.median_time}
                    for m in report.rows if m.backend]
    total = n * len(models)
    ns = [json.loads(line) for line in (work / f"{name}-neuralsat.jsonl").read_text().splitlines()]
    rows["overhead_null_s"] = walls["null"] / total
    rows["overhead_neuralsat_s"] = (walls["neuralsat"] - sum(r["seconds"] for r in ns)) / total
    return rows


def _markdown(results: list[dict[str, object]], env: dict[str, str], timeout: float) -> str:
    lines = ["# Verification benchmark: baseline vs 50 % graft", "",
             f"Machine: {env['machine']}; {env['versions']}. Generated by `python benchmarks/bench_verify.py`.",
             f"Same instances for every model of a net (seeded, misclassified images skipped); budget {timeout:g} s "
             "per instance. UNR = unstable ReLUs per instance box under CROWN. `lirpa` = incomplete (CROWN, "
             "+ a PGD attack for sat); `neuralsat` = complete. `-graft50` = 50 % combined criterion, fit init, "
             "no finetuning; `-graft50-ft` = the same finetuned 3 epochs on 2000 mnist5k images.", ""]
    for r in results:
        lines += [f"## {r['net']} (eps {r['eps']:.4g}, {r['instances_per_model']} instances per model)", "",
                  "| model | backend | VA | unsat | sat | timeout | unknown | error | UNR | mean s | median s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['model']} | {row['backend']} | {row['va']:.2f} | {row['unsat']} | {row['sat']} | "
                         f"{row['timeouts']} | {row['unknown']} | {row['errors']} | {row['unr']:.1f} | "
                         f"{row['mean_time']:.2f} | {row['median_time']:.2f} |")
        lines += ["", f"graftonnx overhead per instance: {r['overhead_null_s']:.3f} s around a null verifier; "
                  f"{r['overhead_neuralsat_s']:.3f} s around NeuralSAT (runner wall − verifier subprocess wall).", ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--nets", nargs="*", default=list(NETS))
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.nets:
            print(f"benchmarking {name} ...", file=sys.stderr)
            results.append(bench_net(name, args.instances, args.timeout, Path(tmp)))
    env = {"machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, {platform.python_version()}",
           "versions": f"graftonnx {__version__}, onnxruntime {onnxruntime.__version__}, torch {torch.__version__}"}
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "verify.json").write_text(json.dumps({"env": env, "nets": results},
                                                                             indent=2) + "\n")
    text = _markdown(results, env, args.timeout)
    (ROOT / "docs" / "bench-verify.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
