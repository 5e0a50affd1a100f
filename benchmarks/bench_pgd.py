"""Benchmark: which PGD step rule fools more images at equal steps × restarts.

Why: graftonnx had two PGDs, the evaluation one (sign steps of 2.5·ε/steps) and the
verifier's (``(hi − lo)/8`` per coordinate); the shared :func:`graftonnx.attack.pgd_box`
keeps the stronger.  Rules compared on the same random starts: ``box8`` = (hi − lo)/8,
``eps`` = 2.5·ε/steps, ``box`` = 1.25·(hi − lo)/steps; nets: FAT-trained MLPs on sklearn
digits (seeds 0, 1, 2, 9) and the ../shared VNN-COMP nets.  Counts = images fooled among
the correctly classified ones.

Run:  python benchmarks/bench_pgd.py [--cifar]   (prints one line per net, ε, steps × restarts, loss)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graftonnx.attack import PgdConfig, pgd  # noqa: E402
from graftonnx.data import DataSpec, load_dataset  # noqa: E402
from graftonnx.data.dataset import Dataset  # noqa: E402
from graftonnx.model import inspect_model, load_model  # noqa: E402
from graftonnx.train import TrainConfig  # noqa: E402
from graftonnx.train.api import stub_info, train_from_scratch  # noqa: E402
from graftonnx.train.evaluate import pixel_module  # noqa: E402

SHARED = ROOT.parent / "shared"
CIFAR = DataSpec(mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616))


@dataclass(frozen=True)
class RuleConfig(PgdConfig):
    rule: str = "box8"

    def step(self, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor | float:
        return {"box8": (hi - lo) / 8, "eps": 2.5 * self.eps / self.steps, "box": 1.25 * (hi - lo) / self.steps}[
            self.rule]


def nets(cifar: bool):
    d = load_dataset("digits", stub_info((1, 8, 8)), DataSpec(layout="nchw"))
    train, test = Dataset(d.x[:1400], d.y[:1400], "train"), Dataset(d.x[1400:], d.y[1400:], "test")
    for seed in (0, 1, 2, 9):
        cfg = TrainConfig(epochs=15, eps=0.1, lr=0.1, batch_size=32, val_fraction=0.0, progress=False, seed=seed)
        yield f"digits-fat-{seed}", train_from_scratch("mlp:64,64", train, cfg).module, test, (0.1, 0.15)
    mnist = [(n, "mnist", DataSpec(), e) for n, e in (("mnist-net_256x2", (0.02, 0.03)),
                                                      ("mnist_relu_9_200", (0.015, 0.03)))]
    shared = [("resnet_2b", "cifar10", CIFAR, (2 / 255, 4 / 255))] if cifar else mnist
    for name, csv, spec, epss in shared:
        m = load_model(SHARED / f"models/{name}.onnx")
        data = load_dataset(str(SHARED / f"datasets/eran_{csv}_test.csv"), inspect_model(m), spec)
        yield name, pixel_module(m, data), data, epss


def main() -> None:
    torch.set_num_threads(1)
    for name, model, data, epss in nets("--cifar" in sys.argv):
        x, y = torch.from_numpy(data.x), torch.from_numpy(data.y).long()
        with torch.no_grad():
            ok = model.eval()(x).argmax(1) == y
        for eps in epss:
            for steps, restarts in ((10, 1), (20, 1), (40, 4), (100, 5)):
                for loss in ("ce", "margin"):
                    cfgs = [RuleConfig(eps, steps, restarts, loss=loss, rule=r) for r in ("box8", "eps", "box")]
                    cells = [f"{c.rule} {int(pgd(model, x[ok], y[ok], c, *data.input_range)[1].sum())}" for c in cfgs]
                    print(f"{name} eps={eps:.4g} {steps}x{restarts} {loss} of {int(ok.sum())} | " + " | ".join(cells),
                          flush=True)


if __name__ == "__main__":
    main()
