"""Benchmark: training-step speed of the ONNX-interpreting OnnxModule vs hand-written torch.

Why: finetuning runs the ONNX graph itself in torch (so values can be written back), and
that must not cost much over a hand-written module of the same architecture (goal: at
most 1.2x slower per step).  Both modules run in the same process, interleaved over
several rounds (median taken), so load from other processes hits both alike.  Optionally
(``--crown N``) it also measures CROWN bound throughput (images/s) and peak memory on
resnet_2b, plain and grafted.

Run:  python benchmarks/bench_roundtrip.py [--rounds 7] [--crown 20]
Writes benchmarks/results/roundtrip.md and roundtrip.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graftonnx._io import atomic_write_json, atomic_write_text  # noqa: E402
from graftonnx.model import inspect_model, load_model, prepend_normalisation  # noqa: E402
from graftonnx.model.graftmeta import read_grafts  # noqa: E402
from graftonnx.parity import assert_parity, ort_callable, random_inputs  # noqa: E402
from graftonnx.planning.plan import GraftPlan, LayerPlan  # noqa: E402
from graftonnx.rewrite import apply_plan  # noqa: E402
from graftonnx.torch_bridge import to_torch  # noqa: E402

__all__ = ["main"]

MODELS = ROOT.parent / "shared" / "models"
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


def _inits(model: onnx.ModelProto) -> dict[str, torch.Tensor]:
    return {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}


class MnistMLP(nn.Module):
    """mnist-net_256x2 written by hand."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        w = _inits(model)
        self.layers = nn.ModuleList([nn.Linear(784, 256), nn.Linear(256, 256), nn.Linear(256, 10)])
        with torch.no_grad():
            for i, lin in zip((0, 2, 4), self.layers, strict=True):
                lin.weight.copy_(w[f"layers.{i}.weight"])
                lin.bias.copy_(w[f"layers.{i}.bias"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = F.relu(self.layers[0](x))
        x = F.relu(self.layers[1](x))
        return self.layers[2](x)


class Graft(nn.Module):
    """Hand-written grafted ReLU: relu(z·keep + 0) + z·(a·m) + b·m, as the rewrite builds it."""

    def __init__(self, keep: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("keep", keep)
        self.register_buffer("mask", 1 - keep)
        self.a_full, self.b_full = nn.Parameter(a.clone()), nn.Parameter(b.clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(z * self.keep + 0.0) + z * (self.a_full * self.mask) + self.b_full * self.mask


class ResNet2b(nn.Module):
    """resnet_2b written by hand (optionally with its input normalisation and grafted ReLUs)."""

    CONVS = {"conv1": (3, 8, 3, 2, 1), "layer1.0.conv1": (8, 16, 3, 2, 1), "layer1.0.conv2": (16, 16, 3, 1, 1),
             "layer1.0.shortcut.0": (8, 16, 1, 2, 0), "layer1.1.conv1": (16, 16, 3, 1, 1),
             "layer1.1.conv2": (16, 16, 3, 1, 1)}

    def __init__(self, model: onnx.ModelProto, normalise: bool) -> None:
        super().__init__()
        w = _inits(model)
        self.convs = nn.ModuleDict({k.replace(".", "_"): nn.Conv2d(i, o, k_, s, p)
                                    for k, (i, o, k_, s, p) in self.CONVS.items()})
        self.linear1, self.linear2 = nn.Linear(1024, 100), nn.Linear(100, 10)
        with torch.no_grad():
            for name, mod in [*((k, self.convs[k.replace(".", "_")]) for k in self.CONVS),
                              ("linear1", self.linear1), ("linear2", self.linear2)]:
                mod.weight.copy_(w[f"{name}.weight"])
                mod.bias.copy_(w[f"{name}.bias"])
        self.register_buffer("mean", torch.tensor(CIFAR_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CIFAR_STD).reshape(1, 3, 1, 1))
        self.normalise = normalise
        relus = [n.name for n in model.graph.node if n.op_type == "Relu"]
        grafts = {r.site: Graft(w[r.keep], w[r.a], w[r.b]) for r in read_grafts(model, check=True)}
        self.acts = nn.ModuleList([grafts.get(r, nn.ReLU()) for r in relus])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, act = self.convs, self.acts
        if self.normalise:
            x = (x - self.mean) / self.std
        x = act[0](c["conv1"](x))
        y = act[1](c["layer1_0_conv1"](x))
        x = act[2](c["layer1_0_conv2"](y) + c["layer1_0_shortcut_0"](x))
        y = act[3](c["layer1_1_conv1"](x))
        x = act[4](c["layer1_1_conv2"](y) + x)
        return self.linear2(act[5](self.linear1(torch.flatten(x, 1))))


@dataclass(frozen=True)
class StepResult:
    net: str
    batch: int
    onnx_steps_per_s: float
    hand_steps_per_s: float
    slowdown: float
    slowdown_wall: float


def _time_steps(module: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) per training step; CPU time of this thread is what the
    interpreter costs, and unlike wall time it barely moves when other processes share the cores."""
    opt = torch.optim.SGD(module.parameters(), lr=1e-3)
    c0, t0 = time.thread_time(), time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(module(x), y).backward()
        opt.step()
    return (time.thread_time() - c0) / steps, (time.perf_counter() - t0) / steps


def bench_steps(net: str, onnx_mod: nn.Module, hand: nn.Module, batch: int, steps: int, rounds: int) -> StepResult:
    """Paired rounds (order alternating): slowdown = median over rounds of onnx time / hand time."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand((batch, *onnx_mod.input_shape), generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    for m in (onnx_mod, hand):
        _time_steps(m, x, y, 3)  # warm-up
    a, b = [], []
    for r in range(rounds):
        pair = [(a, onnx_mod), (b, hand)]
        for acc, m in pair if r % 2 == 0 else pair[::-1]:
            acc.append(_time_steps(m, x, y, steps))
    cpu = statistics.median(oa[0] / hb[0] for oa, hb in zip(a, b, strict=True))
    wall = statistics.median(oa[1] / hb[1] for oa, hb in zip(a, b, strict=True))
    return StepResult(net, batch, round(1 / statistics.median(v[0] for v in a), 2),
                      round(1 / statistics.median(v[0] for v in b), 2), round(cpu, 3), round(wall, 3))


def _grafted_resnet(model: onnx.ModelProto) -> onnx.ModelProto:
    info = inspect_model(model)
    rng = np.random.default_rng(0)
    idx = tuple(range(0, info.relus[1].size, 4))
    layers = (LayerPlan(info.relus[1].name, "neuron", idx, tuple(rng.uniform(0, 0.3, len(idx))),
                        tuple(0.1 * rng.normal(size=len(idx)))),
              LayerPlan(info.relus[3].name, "channel", (2, 7, 11), (0.2, 0.1, 0.3), (0.0, 0.1, -0.1)))
    return apply_plan(model, GraftPlan(layers))


def _pair(name: str) -> tuple[onnx.ModelProto, nn.Module, nn.Module]:
    if name == "mnist-net_256x2":
        m = load_model(MODELS / f"{name}.onnx")
        return m, to_torch(m), MnistMLP(m)
    m = prepend_normalisation(load_model(MODELS / "resnet_2b.onnx"), CIFAR_MEAN, CIFAR_STD)
    if name == "resnet_2b+graft":
        m = _grafted_resnet(m)
    return m, to_torch(m), ResNet2b(m, normalise=True)


def _rss_mb() -> int:
    """Resident memory now (Linux); the peak alone cannot show whether memory stays flat."""
    try:
        return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) // 1024
    except (OSError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def bench_crown(n: int) -> list[dict[str, object]]:
    """CROWN images/s and peak RSS on resnet_2b (eps 2/255, raw pixels), plain and grafted."""
    from graftonnx.bounds import BOUND_METHODS

    x = np.random.default_rng(0).uniform(0, 1, (n, 3, 32, 32)).astype(np.float32)
    eps, out = 2 / 255, []
    for name in ("resnet_2b", "resnet_2b+graft"):
        model = _pair(name)[0]
        sites = inspect_model(model).relus
        crown = BOUND_METHODS.get("crown")
        crown(model, x[:1], x[:1], sites)  # trace once
        t0, c0, rss = time.perf_counter(), time.process_time(), []
        for s in range(0, n, 10):
            lo, hi = np.clip(x[s:s + 10] - eps, 0, 1), np.clip(x[s:s + 10] + eps, 0, 1)
            crown(model, lo, hi, sites)
            rss.append(_rss_mb())
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out.append({"net": name, "images": n, "images_per_s": round(n / wall, 3), "wall_s": round(wall, 2),
                    "cpu_s_per_image": round(cpu / n, 3), "rss_mb_after_each_batch": rss,
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024})
    return out


def _markdown(results: list[StepResult], crown: list[dict[str, object]], meta: dict[str, object]) -> str:
    lines = ["# ONNX→torch round-trip benchmark", "",
             f"Machine: {meta['machine']}; torch {meta['torch']}, {meta['threads']} threads; "
             f"{meta['rounds']} paired rounds of {meta['steps']} SGD steps (forward, cross-entropy, backward, "
             "step); steps/s per CPU-second of the training thread; slowdown = median paired ratio "
             "OnnxModule/hand (goal ≤ 1.2); wall-clock ratio alongside (noisy on shared cores).", "",
             "| net | batch | OnnxModule steps/s | hand-written steps/s | slowdown (CPU) | slowdown (wall) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r.net} | {r.batch} | {r.onnx_steps_per_s} | {r.hand_steps_per_s} | {r.slowdown} | "
              f"{r.slowdown_wall} |" for r in results]
    if crown:
        lines += ["", "## CROWN bounds (auto_LiRPA 0.6.0, CPU, eps 2/255, batches of 10)", "",
                  "| net | images | images/s (wall) | CPU s / image | RSS MB after each batch | peak RSS MB |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {c['net']} | {c['images']} | {c['images_per_s']} | {c['cpu_s_per_image']} | "
                  f"{', '.join(map(str, c['rss_mb_after_each_batch']))} | {c['peak_rss_mb']} |" for c in crown]
        lines += ["", "resnet_2b is bounded in auto_LiRPA's patches mode (its normalisation is pushed through "
                  "exactly as a box); the grafted net in matrix mode (per-neuron graft masks on conv features). "
                  "Wall-clock rates depend on other load on the shared cores."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: steadiest timings)")
    ap.add_argument("--crown", type=int, default=0, help="also bound N resnet_2b images with CROWN")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for name, batch in (("mnist-net_256x2", 128), ("resnet_2b", 64), ("resnet_2b+graft", 64)):
        model, onnx_mod, hand = _pair(name)
        x = random_inputs(onnx_mod.input_shape, 8)
        with torch.no_grad():  # same architecture, same function
            assert_parity(ort_callable(model), lambda v, h=hand: h(torch.from_numpy(v)).numpy(), x, atol=1e-5)
        results.append(bench_steps(name, onnx_mod, hand, batch, args.steps, args.rounds))
        print(results[-1], flush=True)
    torch.set_num_threads(os.cpu_count() or 1)  # bounds: all cores, as scoring runs them
    crown = bench_crown(args.crown) if args.crown else []
    meta = {"machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "torch": torch.__version__, "threads": args.threads, "rounds": args.rounds, "steps": args.steps}
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "roundtrip.json", {"meta": meta, "steps": [asdict(r) for r in results],
                                                     "crown": crown})
    atomic_write_text(args.out / "roundtrip.md", _markdown(results, crown, meta))
    print(_markdown(results, crown, meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
