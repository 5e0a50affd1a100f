"""α,β-CROWN backend: config generation and parsing against REAL recorded outputs, fake checkouts."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import model_path
from verify_helpers import NET, make_bench, mnist_image

from graftonnx.bench.spec import Property
from graftonnx.errors import BadInput
from graftonnx.verifier_shims import LAUNCHER
from graftonnx.verify import cex_problem, make_backend, verify_benchmark
from graftonnx.verify.backends.abcrown import (
    ENV_VAR,
    AbcrownBackend,
    AbcrownConfig,
    AbcrownOptions,
    abcrown_root,
    parse_abcrown,
)

DATA = Path(__file__).parent / "data" / "abcrown"
MNISTFC = Path(__file__).resolve().parents[2] / "shared" / "vnncomp-examples" / "mnistfc"


def test_config_matches_the_one_that_ran_on_the_gpu() -> None:
    ran = yaml.safe_load((DATA / "gpu" / "base_img0_eps0.005.yaml").read_text())
    ours = AbcrownConfig(device="cuda", timeout=30, cex_path=ran["attack"]["cex_path"]).as_dict()
    assert ours == ran
    assert ours["general"]["sparse_interm"] is False and ours["general"]["save_adv_example"] is True
    cpu = AbcrownConfig(device="cpu", conv_mode="matrix", sparse_interm=True, timeout=5, cex_path="c.txt",
                        input_shape=(-1, 1, 28, 28))
    d = yaml.safe_load(cpu.yaml())
    assert d["general"]["device"] == "cpu" and d["general"]["conv_mode"] == "matrix"
    assert d["general"]["sparse_interm"] is True and d["bab"]["timeout"] == 5.0
    assert d["model"]["input_shape"] == [-1, 1, 28, 28]
    with pytest.raises(BadInput, match="conv mode"):
        AbcrownConfig(conv_mode="dense")


@pytest.mark.parametrize("name, verdict", [("cpu/unsat", "unsat"), ("cpu/timeout", "timeout"),
                                           ("gpu/base_img0_eps0.005", "unsat"), ("gpu/base_prop_0_0.05", "timeout")])
def test_parse_recorded_verdicts(name: str, verdict: str) -> None:
    assert parse_abcrown((DATA / f"{name}.results.txt").read_text()) == (verdict, "", None)


@pytest.mark.parametrize("name", ["cpu/sat", "gpu/base_img0_eps0.1"])
def test_recorded_sat_counterexample_passes_onnxruntime_check(name: str, mnist_csv: Path) -> None:
    verdict, _, cex = parse_abcrown((DATA / f"{name}.results.txt").read_text())
    assert verdict == "sat" and cex is not None
    assert len(cex.inputs) == 784 and len(cex.outputs) == 10
    x, label = mnist_image(mnist_csv, 0)
    prop = Property.linf_ball(x, 0.1, label, 10)
    assert cex_problem(model_path(NET), prop, cex) is None
    # The same point is no counterexample for a much smaller box.
    assert "leaves the box" in cex_problem(model_path(NET), Property.linf_ball(x, 0.01, label, 10), cex)


def test_recorded_grafted_gpu_sat_has_the_claimed_outputs() -> None:
    _, _, cex = parse_abcrown((DATA / "gpu" / "graft_prop_0_0.03.results.txt").read_text())
    assert cex is not None and max(range(10), key=lambda j: cex.outputs[j]) != 8  # label 8 beaten
    if MNISTFC.is_dir():
        from graftonnx.bench.vnnlib import read_vnnlib

        assert read_vnnlib(MNISTFC / "prop_0_0.03.vnnlib").contains(cex.inputs)


def test_parse_garbage() -> None:
    assert parse_abcrown(None)[0] == "error"
    assert parse_abcrown("Traceback (most recent call last)")[0] == "error"
    assert parse_abcrown("sat\n")[0] == "error"  # sat without a counterexample
    assert parse_abcrown("sat\n((X_0 1.0)\n(X_5 2.0))")[0] == "error"
    assert parse_abcrown("safe")[0] == "error"


def test_missing_checkout_is_badinput(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(BadInput, match="--abcrown PATH or set ABCROWN_PATH"):
        make_backend("abcrown")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(BadInput, match="ABCROWN_PATH"):
        abcrown_root(None)
    with pytest.raises(BadInput, match="--abcrown"):
        abcrown_root(tmp_path / "nope")


FAKE = """
import argparse, os, shutil, sys, time
p = argparse.ArgumentParser()
for a in ("--config", "--onnx_path", "--vnnlib_path", "--results_file", "--timeout"):
    p.add_argument(a)
a = p.parse_args()
mode = os.environ["FAKE_ABCROWN"]
print("fake abcrown", mode, a.config, flush=True)
if mode == "hang":
    time.sleep(600)
elif mode == "crash":
    sys.exit("Traceback: CUDA out of memory")
else:
    shutil.copy(mode, a.results_file)
"""


@pytest.fixture
def fake_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "alpha-beta-CROWN" / "complete_verifier"
    root.mkdir(parents=True)
    (root / "abcrown.py").write_text(textwrap.dedent(FAKE))
    return root.parent  # the repository root is accepted too


@pytest.mark.parametrize("mode, verdict", [("cpu/sat", "sat"), ("cpu/unsat", "unsat"), ("crash", "error"),
                                           ("hang", "timeout")])
def test_fake_checkout_through_the_runner(fake_checkout: Path, tmp_path: Path, mnist_csv: Path,
                                          monkeypatch: pytest.MonkeyPatch, mode: str, verdict: str) -> None:
    monkeypatch.setenv("FAKE_ABCROWN", str(DATA / f"{mode}.results.txt") if "/" in mode else mode)
    # An answer after the timeout is a timeout (the launcher's torch import alone can take > 1 s):
    # only the hang case needs the 1 s limit.
    bench = make_bench(tmp_path, model_path(NET), mnist_csv, [(0, 0.1)], timeout=1 if mode == "hang" else 60)
    opts = AbcrownOptions(device="cpu", path=str(fake_checkout), grace_s=10.0)  # the launcher imports torch
    s = verify_benchmark(bench, "abcrown", opts, tmp_path / "r.jsonl", progress=False)
    (r,) = s.results
    assert r.verdict == verdict, r.message
    assert Path(r.log).is_file() and "fake abcrown" in Path(r.log).read_text()
    cfg = yaml.safe_load((Path(r.log).parent / "abcrown.yaml").read_text())
    assert cfg["general"]["device"] == "cpu" and cfg["attack"]["cex_path"].startswith(str(tmp_path))
    if mode == "crash":
        assert "CUDA out of memory" in r.message and "exit code 1" in r.message
    if mode == "hang":
        assert r.seconds < 30
    if verdict == "sat":  # onnxruntime recomputed the outputs
        assert r.counterexample is not None and len(r.counterexample.outputs) == 10


def test_command_line(tmp_path: Path) -> None:
    b = AbcrownBackend(root=tmp_path, device="cuda")
    cmd = b.command(tmp_path / "c.yaml", Path("n.onnx"), Path("p.vnnlib"), tmp_path / "r.txt", 30)
    assert cmd[0] == sys.executable and cmd[1:3] == [str(LAUNCHER), "abcrown.py"]
    assert cmd[cmd.index("--timeout") + 1] == "30" and cmd[cmd.index("--onnx_path") + 1].endswith("n.onnx")
    assert not b.parallel_ok


def test_branching_and_per_instance_conv_mode(tmp_path: Path) -> None:

    from graftonnx.model import inspect_model, load_model
    from graftonnx.planning import GraftPlan, LayerPlan
    from graftonnx.rewrite import apply_plan
    from graftonnx.rewrite.native import native_form

    d = AbcrownConfig(device="cpu", branching="babsr").as_dict()
    assert d["bab"]["branching"] == {"method": "babsr"}
    with pytest.raises(BadInput, match="branching"):
        AbcrownConfig(branching="smart")
    m = load_model(model_path("resnet_2b"))
    info = inspect_model(m)
    first = info.relus[0]
    mask = apply_plan(m, GraftPlan((LayerPlan(first.name, "neuron", (0, 7), (0.5, 0.5), (0.0, 0.0)),)), info)
    chan = apply_plan(m, GraftPlan((LayerPlan(first.name, "channel", (1,), (0.5,), (0.0,)),)), info)
    b = AbcrownBackend(root=tmp_path, device="cpu")
    for name, model, mode in (("mask", mask, "matrix"), ("native", native_form(chan)[0], "patches"),
                              ("base", m, "patches")):
        p = tmp_path / f"{name}.onnx"
        p.write_bytes(model.SerializeToString())
        assert b.conv_mode_for(p) == mode, name
    assert AbcrownBackend(root=tmp_path, conv_mode="matrix").conv_mode_for(tmp_path / "base.onnx") == "matrix"


BAB = DATA / "bab"
BAB_LOGS = sorted(BAB.glob("*.log"))


@pytest.mark.parametrize("log", BAB_LOGS, ids=[p.stem for p in BAB_LOGS])
def test_recorded_bab_runs_parse(log: Path) -> None:
    """Real α,β-CROWN runs (benchmarks/bench_speed.py bab): patches mode, the named heuristic, a verdict."""
    text = log.read_text()
    branching = log.stem.rsplit("_", 1)[1]
    assert f"method: {branching}" in text and "conv_mode: patches" in text
    assert "Traceback" not in text and "Error" not in text
    verdict, _, _ = parse_abcrown(log.with_suffix(".results.txt").read_text())
    assert verdict in ("unsat", "sat", "timeout")


def test_every_heuristic_branched_on_a_grafted_mlp_and_conv_net() -> None:
    rounds: dict[tuple[str, str], int] = {}
    for log in BAB_LOGS:
        tag, rest = log.stem.split("_", 1)
        if "graft" not in rest:
            continue
        key = ("conv" if "cnn" in tag else "mlp", log.stem.rsplit("_", 1)[1])
        rounds[key] = max(rounds.get(key, 0), log.read_text().count("BaB round"))
    for kind in ("mlp", "conv"):
        for b in ("babsr", "kfsb", "fsb"):
            assert rounds.get((kind, b), 0) >= 1, (kind, b, rounds)
