"""Issue-level claims about verification on real data.

* No false verdicts: on >= 30 instances, lirpa never says ``unsat`` where PGD finds a violation.
* Grafting + a short finetune gives fewer unstable neurons and at least as many ``unsat`` as the
  baseline on the same instances (mnist-net_256x2, lirpa CROWN; deterministic seeds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import graftonnx.api as g
from graftonnx.bench.export import export_benchmark
from graftonnx.bench.vnnlib import read_vnnlib
from graftonnx.data import load_dataset
from graftonnx.data.dataset import DataSpec
from graftonnx.torch_bridge import to_torch
from graftonnx.train import PgdConfig, TrainConfig, pgd
from graftonnx.train.api import finetune
from graftonnx.verify import verify_benchmark
from graftonnx.verify.backends.lirpa import LirpaOptions
from tests.conftest import DATASETS, model_path

NET = "mnist-net_256x2"


def _bench(tmp: Path, models: list[Path], eps: float, n: int) -> Path:
    info = g.inspect(models[0])
    data = load_dataset(str(DATASETS / "eran_mnist_test.csv"), info, DataSpec())
    out = tmp / f"bench-{eps}"
    export_benchmark(models, data, eps, n, 0, out, 30.0, skip="none")
    return out


@pytest.mark.slow
def test_no_unsat_where_pgd_finds_a_violation(tmp_path):
    net = model_path(NET)
    module = to_torch(g.load(net)).eval()
    checked = 0
    for eps in (0.02, 0.05):
        bench = _bench(tmp_path, [net], eps, 20)
        summary = verify_benchmark(bench, "lirpa", LirpaOptions(method="crown"), tmp_path / f"r{eps}.jsonl",
                                   progress=False)
        for r in summary.results:
            prop = read_vnnlib(bench / r.vnnlib)
            lo = torch.from_numpy(prop.lower.reshape(1, 784, 1).astype(np.float32))
            hi = torch.from_numpy(prop.upper.reshape(1, 784, 1).astype(np.float32))
            x, y = (lo + hi) / 2, torch.tensor([prop.label])
            _, fooled = pgd(module, x, y, PgdConfig(eps=float((hi - lo).max()) / 2, steps=50, restarts=3), 0.0, 1.0)
            if r.verdict == "unsat":
                assert not bool(fooled.any()), f"{r.instance}: unsat but PGD found a violation"
            checked += 1
    assert checked >= 30


@pytest.mark.slow
def test_graft_and_finetune_lowers_unr_and_keeps_unsat(tmp_path):
    net = model_path(NET)
    info = g.inspect(net)
    eran = load_dataset(str(DATASETS / "eran_mnist_test.csv"), info, DataSpec())
    grafted = g.graft(net, eran, ratio=0.5, eps=0.02, init="fit").model
    train = load_dataset("mnist5k", info, DataSpec(n=2000))
    tuned = finetune(grafted, train, TrainConfig(epochs=3, eps=0.02, lr=0.01, seed=0, progress=False)).model
    path = tmp_path / "tuned.onnx"
    g.save_model(tuned, path)
    bench = _bench(tmp_path, [net, path], 0.02, 15)
    summary = verify_benchmark(bench, "lirpa", LirpaOptions(method="crown"), tmp_path / "r.jsonl", progress=False)
    unsat = {m: sum(r.verdict == "unsat" for r in summary.results if Path(r.model).name == m)
             for m in (net.name, path.name)}
    assert unsat[path.name] >= unsat[net.name], unsat
    assert sum(g.unr(path, eran, 0.02, "crown").values()) < sum(g.unr(net, eran, 0.02, "crown").values())
