"""lirpa and NeuralSAT on the real mnist-net_256x2: robust point → unsat, large eps → checked sat."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import model_path
from verify_helpers import NET, make_bench, mnist_image

from graftonnx.attack import PgdConfig, pgd_box
from graftonnx.bench.spec import Property
from graftonnx.cli import main
from graftonnx.model import load_model
from graftonnx.torch_bridge import to_torch
from graftonnx.verify import Journal, verify_benchmark
from graftonnx.verify.backends.lirpa import LirpaOptions, pgd_attack
from graftonnx.verify.backends.neuralsat import NeuralsatBackend, NeuralsatOptions, parse_neuralsat
from graftonnx.verify.cexcheck import cex_problem
from graftonnx.verify.result import Counterexample

# Image 0 (label 7) has a large margin: eps 0.005 is provably robust; eps 0.1 is attackable.
CASES = [(0, 0.005), (0, 0.1)]


@pytest.fixture
def bench(tmp_path: Path, mnist_csv: Path) -> Path:
    return make_bench(tmp_path, model_path(NET), mnist_csv, CASES, timeout=60)


@pytest.mark.parametrize("method", ["ibp", "crown", "alpha-crown"])
def test_lirpa_unsat_and_checked_sat(bench: Path, tmp_path: Path, method: str) -> None:
    s = verify_benchmark(bench, "lirpa", LirpaOptions(method=method), tmp_path / "r.jsonl", progress=False)
    robust, attacked = s.results
    assert robust.verdict == "unsat", robust.message
    assert "lower bound" in robust.message
    assert attacked.verdict == "sat", attacked.message
    cex = attacked.counterexample
    assert cex is not None and len(cex.inputs) == 784
    assert np.argmax(cex.outputs) != 7


def test_shared_pgd_finds_the_box_counterexample_and_is_seeded(mnist_csv: Path) -> None:
    """Image 0 at eps 0.02 (a box clipped to [0, 1]) was sat for the old lirpa-only attack; the shared PGD
    finds it too, identically for one seed, and checked in onnxruntime."""
    net = to_torch(load_model(model_path(NET))).eval()
    x, label = mnist_image(mnist_csv, 0)
    prop = Property.linf_ball(x, 0.02, label, 10)
    cex = pgd_attack(net, prop, net.input_shape)
    assert cex is not None and np.array_equal(cex, pgd_attack(net, prop, net.input_shape))
    assert cex_problem(model_path(NET), prop, Counterexample(tuple(cex), ())) is None
    lo, hi = (torch.from_numpy(b.astype(np.float32)).reshape(1, *net.input_shape) for b in (prop.lower, prop.upper))
    runs = [pgd_box(net, lo, torch.tensor([label]), lo, hi, PgdConfig(steps=10, restarts=3, seed=s, loss="margin"))
            for s in (4, 4, 5)]
    assert torch.equal(runs[0][0], runs[1][0]) and bool(runs[0][1]) and not torch.equal(runs[0][0], runs[2][0])


def test_lirpa_cli_parallel_workers_and_resume(bench: Path, tmp_path: Path) -> None:
    journal = tmp_path / "r.jsonl"
    args = ["verify", str(bench), "--backend", "lirpa", "--results", str(journal), "--workers", "2",
            "--no-progress", "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert '"unsat": 1' in res.output and '"sat": 1' in res.output and '"reused": 0' in res.output
    res2 = CliRunner().invoke(main, args)
    assert res2.exit_code == 0 and '"reused": 2' in res2.output
    assert len(journal.read_text().splitlines()) == 2


def test_parse_neuralsat_outputs() -> None:
    assert parse_neuralsat("unsat\n", "") == ("unsat", "", None)
    assert parse_neuralsat(None, "INFO ...\nunsat,6.7269\n")[0] == "unsat"
    assert parse_neuralsat(None, "Traceback (most recent call last):\nKeyError: 'x'\n")[0] == "error"
    v, _, cex = parse_neuralsat("sat\n((X_0 0.5)\n (X_1 0.25)\n (Y_0 1.0)\n (Y_1 2.0))", "")
    assert v == "sat" and cex.inputs == (0.5, 0.25) and cex.outputs == (1.0, 2.0)
    assert parse_neuralsat("sat\n", "")[0] == "error"


@pytest.fixture
def fake_neuralsat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "fake_ns"
    (root / "verifier").mkdir(parents=True)
    (root / "main.py").write_text(textwrap.dedent("""
        import os, sys, time
        print("started", flush=True)
        if os.environ["FAKE_NS"] == "hang":
            os.fork()  # a child in the same process group must die too
            time.sleep(600)
        print("garbage output")
        sys.exit(0)
    """))
    monkeypatch.setenv("NEURALSAT_PATH", str(root))
    return root


@pytest.mark.parametrize("mode, verdict", [("hang", "timeout"), ("garbage", "error")])
def test_neuralsat_hang_and_garbage(fake_neuralsat: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    mode: str, verdict: str) -> None:
    monkeypatch.setenv("FAKE_NS", mode)
    vnn = tmp_path / "p.vnnlib"
    vnn.write_text("")
    t0 = time.monotonic()
    r = NeuralsatBackend(grace_s=1.0).verify(model_path(NET), vnn, 1.0, tmp_path / "w")
    assert r.verdict == verdict, r.message
    assert time.monotonic() - t0 < 20
    assert "started" in Path(r.log).read_text()
    if verdict == "error":
        assert "no verdict" in r.message and r.log in r.message


@pytest.mark.slow
def test_neuralsat_real_unsat_and_sat(bench: Path, tmp_path: Path) -> None:
    """The real NeuralSAT (CPU) on two tiny instances; also measures its per-instance overhead."""
    os.environ.pop("NEURALSAT_PATH", None)
    journal = tmp_path / "r.jsonl"
    s = verify_benchmark(bench, "neuralsat", NeuralsatOptions(device="cpu"), journal, progress=False)
    robust, attacked = s.results
    assert robust.verdict == "unsat", robust.message
    assert attacked.verdict == "sat", attacked.message
    assert attacked.counterexample is not None and np.argmax(attacked.counterexample.outputs) != 7
    assert set(Journal(journal).load()) == {(r.instance, "neuralsat") for r in s.results}


def test_lirpa_on_a_grafted_net(tmp_path: Path, mnist_csv: Path) -> None:
    """Grafted lines (Mul/Add around the Relu) must bound, not crash: the robust point stays unsat."""
    grafted = tmp_path / "grafted.onnx"
    res = CliRunner().invoke(main, ["graft", str(model_path(NET)), "-o", str(grafted), "--data", str(mnist_csv),
                                    "--n", "20", "--eps", "0.02", "--init", "fit", "--ratio", "0.3",
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    bench = make_bench(tmp_path / "g", grafted, mnist_csv, [(0, 0.005)])
    (r,) = verify_benchmark(bench, "lirpa", LirpaOptions(method="crown"), tmp_path / "r.jsonl",
                            progress=False).results
    assert r.verdict == "unsat", r.message


def test_neuralsat_mip_off_by_default(tmp_path: Path) -> None:
    """pip's gurobipy caps MIPs at 2000 variables: MIP is off unless asked for (--mip)."""
    import json

    result = tmp_path / "r.txt"
    cmd = NeuralsatBackend().command(Path("n.onnx"), Path("p.vnnlib"), 10.0, result)
    settings = Path(cmd[cmd.index("--setting_file") + 1])
    assert json.loads(settings.read_text()) == {"use_mip_verify": False, "use_mip_tightening": False}
    assert "--setting_file" not in NeuralsatBackend(mip=True).command(Path("n.onnx"), Path("p.vnnlib"), 10.0, result)
    assert NeuralsatBackend.from_options(NeuralsatOptions(mip=True)).mip


@pytest.mark.slow
def test_ray_fans_instances_out_with_the_local_results(bench: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """``--executor ray``: one Ray task per instance on a local Ray of 2 CPUs, the same verdicts as locally."""
    pytest.importorskip("ray", reason="ray is not installed (pip install ray)")
    import graftonnx.verify.runner as runner

    calls = []

    def counting(fn, args, resources):
        calls.append((fn.__name__, len(args), resources))
        yield from real(fn, args, resources)

    real = runner.ray_map
    monkeypatch.setattr(runner, "ray_map", counting)
    local = verify_benchmark(bench, "lirpa", LirpaOptions(), tmp_path / "local.jsonl", progress=False)
    res = CliRunner().invoke(main, ["verify", str(bench), "--executor", "ray", "--num-cpus", "2", "--json",
                                    "--no-progress", "--results", str(tmp_path / "ray.jsonl")])
    assert res.exit_code == 0, res.output
    assert calls == [("_pool_run", len(local.results), {"num_cpus": 1})]
    on_ray = Journal(tmp_path / "ray.jsonl").load()
    assert {k: r.verdict for k, r in on_ray.items()} == {(r.instance, "lirpa"): r.verdict for r in local.results}
    sat = next(r for r in on_ray.values() if r.verdict == "sat")
    assert sat.counterexample is not None  # re-checked in onnxruntime here, in the driver
