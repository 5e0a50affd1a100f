"""The user's own commands on the real shared nets, and every bad input of the core issue."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from graftonnx.cli import main
from tests.conftest import DATASETS, model_path

MNIST = ["--data", str(DATASETS / "eran_mnist_test.csv")]
CIFAR_NORM = ["--mean", "0.4914,0.4822,0.4465", "--std", "0.2471,0.2435,0.2616"]
DATA_FOR = {
    "mnist-net_256x2": MNIST, "mnist_relu_9_200": MNIST,
    "resnet_2b": ["--data", str(DATASETS / "eran_cifar10_test.csv"), *CIFAR_NORM],
    "cifar10_small": ["--data", str(DATASETS / "eran_cifar10_test.csv")],
}


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def test_users_own_example_without_data(tmp_path):
    out = tmp_path / "out.onnx"
    code, text = run("graft", model_path("mnist-net_256x2"), "--ratio", "0.5", "-o", out, "--no-progress")
    assert code == 0, text
    assert "random inputs" in text and out.exists()
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)


@pytest.mark.parametrize("net", list(DATA_FOR))
def test_instability_graft_lowers_unr_on_every_shared_net(net, tmp_path):
    out = tmp_path / "g.onnx"
    eps = "0.008" if "cifar" in net or "resnet" in net else "0.02"
    code, text = run("graft", model_path(net), *DATA_FOR[net], "--n", "30", "--eps", eps, "--ratio", "0.5",
                     "--criterion", "instability", "--significance", "act", "-o", out, "--json", "--no-progress")
    assert code == 0, text
    summary = json.loads(text[text.index("{"):])
    assert summary["unr_after_total"] < summary["unr_before"]
    assert summary["grafted_neurons"] == pytest.approx(summary["neurons"] / 2, abs=1)


def test_score_plan_graft_round_trip(tmp_path):
    net = model_path("mnist-net_256x2")
    scores, plan, out = tmp_path / "s.json", tmp_path / "p.json", tmp_path / "g.onnx"
    assert run("score", net, *MNIST, "--n", "20", "--significance", "act", "-o", scores, "--no-progress")[0] == 0
    code, text = run("plan", net, "--scores", scores, "--ratio", "0.25", "--granularity", "neuron", "-o", plan)
    assert code == 0, text
    data = json.loads(plan.read_text())
    assert sum(len(layer["indices"]) for layer in data["layers"]) == 128
    data["layers"][0]["a"] = [1.0] * len(data["layers"][0]["a"])  # a reviewer edits the plan
    plan.write_text(json.dumps(data))
    code, text = run("graft", net, "--plan", plan, "-o", out, *MNIST, "--no-progress")
    assert code == 0, text
    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert {"graftonnx.grafts", "graftonnx.provenance"} <= meta.keys()


def test_plan_schedule_total_nests_and_target_differs(tmp_path):
    """--schedule total gives nested plans; the default (target) is recorded and picks differently."""
    net = model_path("mnist-net_256x2")
    scores = tmp_path / "s.json"
    assert run("score", net, *MNIST, "--n", "20", "-o", scores, "--no-progress")[0] == 0

    def picks(ratio: str, *extra: str) -> tuple[set[tuple[str, int]], dict]:
        out = tmp_path / f"p{ratio}{''.join(extra)}.json"
        code, text = run("plan", net, "--scores", scores, "--ratio", ratio, *extra, "-o", out)
        assert code == 0, text
        data = json.loads(out.read_text())
        return {(la["site"], i) for la in data["layers"] for i in la["indices"]}, data["provenance"]

    small, prov = picks("0.25", "--schedule", "total")
    large, _ = picks("0.5", "--schedule", "total")
    assert prov["schedule"] == "total" and prov["stages"] == 5
    assert small < large and len(large) == 256
    target, prov_t = picks("0.25")
    assert prov_t["schedule"] == "target" and target != small and len(target) == 128


def _no_relu(path: Path) -> Path:
    g = helper.make_graph([helper.make_node("Gemm", ["x", "W"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
                          [numpy_helper.from_array(np.eye(2, dtype=np.float32), "W")])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def _bad_cases(tmp: Path) -> dict[str, tuple[list[str], str]]:
    net = str(model_path("mnist-net_256x2"))
    truncated = tmp / "trunc.onnx"
    truncated.write_bytes(Path(net).read_bytes()[:5000])
    text = tmp / "notonnx.onnx"
    text.write_text("hello")
    nan = tmp / "nan.npz"
    x = np.random.default_rng(0).uniform(0, 1, (4, 784, 1)).astype(np.float32)
    x[2, 5, 0] = np.nan
    np.savez(nan, x=x, y=np.zeros(4, np.int64))
    wrong = tmp / "wrong.npz"
    np.savez(wrong, x=np.zeros((4, 100), np.float32), y=np.zeros(4, np.int64))
    exists = tmp / "exists.onnx"
    exists.write_bytes(b"keep me")
    out = str(tmp / "o.onnx")
    return {
        "missing": (["graft", str(tmp / "nope.onnx"), "-o", out], "not found"),
        "truncated": (["graft", str(truncated), "-o", out], "onnx"),
        "not onnx": (["graft", str(text), "-o", out], "onnx"),
        "no relu": (["graft", str(_no_relu(tmp / "norelu.onnx")), "-o", out], "no Relu"),
        "ratio > 1": (["graft", net, "--ratio", "1.5", "-o", out], "ratio"),
        "ratio < 0": (["graft", net, "--ratio", "-0.5", "-o", out], "ratio"),
        "shape misfit": (["graft", net, "--data", str(wrong), "-o", out], "784"),
        "nan": (["graft", net, "--data", str(nan), "-o", out], "NaN"),
        "eps < 0": (["graft", net, "--eps", "-0.1", "-o", out], "eps"),
        "output exists": (["graft", net, "-o", str(exists)], "--force"),
        "output dir missing": (["graft", net, "-o", str(tmp / "no" / "dir" / "o.onnx")], "does not exist"),
    }


def test_bad_inputs_exit_2_with_one_line_and_no_output(tmp_path):
    for name, (args, needle) in _bad_cases(tmp_path).items():
        res = CliRunner().invoke(main, [*args, "--no-progress"])
        assert res.exit_code == 2, (name, res.output)
        errors = [ln for ln in res.output.splitlines() if ln.startswith(("graftonnx: error", "Error", "Usage"))]
        assert errors and needle.lower() in res.output.lower(), (name, res.output)
        assert "Traceback" not in res.output, name
        assert not (tmp_path / "o.onnx").exists(), name
        assert not list(tmp_path.glob(".o.onnx.*")), name
    assert (tmp_path / "exists.onnx").read_bytes() == b"keep me"


def test_inspect_all_shared_nets_json(shared_net):
    code, text = run("inspect", shared_net, "--json")
    assert code == 0, text
    info = json.loads(text)
    assert info["relus"] and info["n_relu_neurons"] == sum(r["size"] for r in info["relus"])
