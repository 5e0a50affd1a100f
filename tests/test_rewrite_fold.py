"""Simplify passes: remove fully grafted Relus, fold linear runs, drop grafted channels, smooth grafting.

Parity is checked with graftonnx.parity at 1e-5 relative to the output scale: folding
multiplies weights out in float64 and stores float32, so results agree with the
sequential float32 graph up to float32 rounding of the logits (which reach ~200 on
random inputs for the MNIST nets).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from conftest import model_path
from onnx import TensorProto, helper, numpy_helper

from graftonnx.cli import main
from graftonnx.errors import BadInput
from graftonnx.model import LINEAR_PRODUCERS, inspect_model, load_model
from graftonnx.model.graftmeta import read_grafts
from graftonnx.parity import assert_parity, ort_callable, random_inputs
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.rewrite.channels import drop_grafted_channels
from graftonnx.rewrite.fold import fold_linear, remove_full_relus, simplify
from graftonnx.rewrite.smooth import apply_smooth_plan, smooth_plan
from graftonnx.torch_bridge import to_torch


def _parity(ref: onnx.ModelProto, out: onnx.ModelProto, x: np.ndarray) -> float:
    scale = max(1.0, float(np.abs(ort_callable(ref)(x)).max()))
    return assert_parity(ort_callable(ref), ort_callable(out), x, atol=1e-5 * scale).max_abs_diff


def _check_structure(ref: onnx.ModelProto, out: onnx.ModelProto) -> None:
    onnx.checker.check_model(out, full_check=True)
    assert [i.name for i in out.graph.input if i.name not in {t.name for t in out.graph.initializer}] == \
        [i.name for i in ref.graph.input if i.name not in {t.name for t in ref.graph.initializer}]
    assert [o.SerializeToString() for o in out.graph.output] == [o.SerializeToString() for o in ref.graph.output]
    producers = {o: n.op_type for n in out.graph.node for o in n.output}
    for node in out.graph.node:
        if node.op_type == "Relu":
            assert producers.get(node.input[0]) in LINEAR_PRODUCERS, node.name
    read_grafts(out, check=True)  # the torch bridge accepts the metadata


def _plan(info, full=(), granularity="neuron", seed=0) -> GraftPlan:
    rng = np.random.default_rng(seed)
    layers = []
    for k, s in enumerate(info.relus):
        units = s.channels if granularity == "channel" else s.size
        idx = list(range(units)) if k in full else sorted(rng.choice(units, units // 2, replace=False).tolist())
        layers.append(LayerPlan(s.name, granularity, tuple(idx), tuple(rng.uniform(0.2, 0.8, len(idx))),
                                tuple(rng.normal(0, 0.1, len(idx)))))
    return GraftPlan(tuple(layers))


def _model(nodes, inits, in_shape, out_shape) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_full_site_becomes_one_gemm_by_hand():
    w1, c1 = np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([0.5, -1.0])
    w2, c2 = np.array([[2.0, 1.0]]), np.array([3.0])
    m = _model([helper.make_node("Gemm", ["x", "W1", "C1"], ["z"], name="g1", transB=1),
                helper.make_node("Relu", ["z"], ["h"], name="relu"),
                helper.make_node("Gemm", ["h", "W2", "C2"], ["y"], name="g2", transB=1)],
               {"W1": w1, "C1": c1, "W2": w2, "C2": c2}, [1, 2], [1, 1])
    grafted = apply_plan(m, GraftPlan((LayerPlan("relu", "neuron", (0, 1), (0.5, 2.0), (1.0, -1.0)),)))
    removed, rep = remove_full_relus(grafted)
    assert rep.removed == ("relu",) and not any(n.op_type == "Relu" for n in removed.graph.node)
    assert read_grafts(removed) == ()
    folded, rep2 = fold_linear(removed)
    assert [n.op_type for n in folded.graph.node] == ["Gemm"] and rep2.nodes_after == 1
    x = np.array([[1.0, -2.0], [0.25, 3.0]], np.float32)
    h = np.array([0.5, 2.0]) * (x @ w1.T + c1) + np.array([1.0, -1.0])
    np.testing.assert_allclose(ort_callable(folded)(x), h @ w2.T + c2, atol=1e-5)
    _check_structure(m, folded)


def _conv_chain(pads2: int, k2: int) -> onnx.ModelProto:
    rng = np.random.default_rng(3)
    return _model([helper.make_node("Conv", ["x", "W1", "B1"], ["z"], name="c1", pads=[1] * 4, strides=[2, 2]),
                   helper.make_node("Relu", ["z"], ["h"], name="relu"),
                   helper.make_node("Conv", ["h", "W2", "B2"], ["y"], name="c2", pads=[pads2] * 4)],
                  {"W1": rng.normal(size=(8, 2, 3, 3)), "B1": rng.normal(size=8),
                   "W2": rng.normal(size=(2, 8, k2, k2)), "B2": rng.normal(size=2)},
                  [1, 2, 8, 8], [1, 2, 4 + 2 * pads2 - k2 + 1, 4 + 2 * pads2 - k2 + 1])


@pytest.mark.parametrize(("pads2", "k2", "folds"), [(0, 1, True), (0, 2, True), (1, 3, False)])
def test_conv_chain_folds_only_when_exact(pads2, k2, folds):
    m = _conv_chain(pads2, k2)
    rng = np.random.default_rng(4)
    plan = GraftPlan((LayerPlan("relu", "channel", tuple(range(8)), tuple(rng.uniform(-1, 1, 8)),
                                tuple(rng.uniform(-1, 1, 8))),))
    grafted = apply_plan(m, plan)
    out, rep = simplify(grafted)
    x = random_inputs((2, 8, 8), 32, -1, 1)
    _parity(grafted, out, x)
    _check_structure(m, out)
    convs = [n for n in out.graph.node if n.op_type == "Conv"]
    assert len(convs) == (1 if folds else 2)
    assert rep.params_after < rep.params_before
    if not folds:
        assert any("pads its input" in s for s in rep.skipped)


def test_mnist_fully_grafted_layer_folds_into_fewer_gemms():
    m = load_model(model_path("mnist-net_256x2"))
    info = inspect_model(m)
    grafted = apply_plan(m, _plan(info, full=(0,)), info)
    out, rep = simplify(grafted)
    assert sum(n.op_type == "Gemm" for n in out.graph.node) == 2
    assert rep.params_after < rep.params_before and rep.relu_neurons_after == 256
    x = random_inputs(info.input.sample_shape, 64)
    _parity(grafted, out, x)
    _check_structure(m, out)
    assert [r.site for r in read_grafts(out, check=True)] == [info.relus[1].name]
    with torch.no_grad():  # the torch bridge runs the simplified model and still trains the partial site
        mod = to_torch(out)
        y = mod(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, ort_callable(out)(x), rtol=0, atol=1e-5 * np.abs(y).max())


def test_resnet_channel_grafted_drops_relu_neurons():
    m = load_model(model_path("resnet_2b"))
    info = inspect_model(m)
    grafted = apply_plan(m, _plan(info, granularity="channel", seed=1), info)
    out, rep = drop_grafted_channels(grafted)
    assert rep.relu_neurons_after < rep.relu_neurons_before
    assert len(rep.split) == 4 and any("pre-activation comes from Add" in s for s in rep.skipped)
    _parity(grafted, out, random_inputs(info.input.sample_shape, 32, -2, 2))
    _check_structure(m, out)
    assert {r.site for r in read_grafts(out, check=True)} == {"Relu_7", "Relu_12"}  # residual sites stay in mask form


def test_tf_matmul_add_chains_fold_and_split():
    m = load_model(model_path("cifar10_small"))
    info = inspect_model(m)
    grafted = apply_plan(m, _plan(info, full=(2,)), info)
    out, rep = simplify(grafted, drop_channels=True)
    assert "MatMul" not in {n.op_type for n in out.graph.node}
    assert rep.removed == (info.relus[2].name,) and rep.relu_neurons_after < rep.relu_neurons_before
    _parity(grafted, out, random_inputs(info.input.sample_shape, 32))
    _check_structure(m, out)


def test_smooth_grafting_matches_numpy_and_refuses_other_ops():
    rng = np.random.default_rng(0)
    w, c = rng.normal(size=(4, 3)), rng.normal(size=4)
    m = _model([helper.make_node("Gemm", ["x", "W", "C"], ["z"], name="g", transB=1),
                helper.make_node("Tanh", ["z"], ["h"], name="tanh"),
                helper.make_node("Sigmoid", ["h"], ["y"], name="sig")], {"W": w, "C": c}, [1, 3], [1, 4])
    x = rng.normal(size=(64, 3)).astype(np.float32)
    plan = smooth_plan(m, x, {"tanh": [0, 2]})
    out = apply_smooth_plan(m, plan)
    onnx.checker.check_model(out, full_check=True)
    z = x.astype(np.float64) @ w.T + c
    h = np.tanh(z)
    h[:, [0, 2]] = np.array(plan.layers[0].a) * z[:, [0, 2]] + np.array(plan.layers[0].b)
    np.testing.assert_allclose(ort_callable(out)(x), 1 / (1 + np.exp(-h)), atol=1e-5)
    # the least-squares line is closer to tanh on the data than the best constant
    zz = z[:, [0, 2]]
    fit = np.array(plan.layers[0].a) * zz + np.array(plan.layers[0].b)
    assert np.mean((fit - np.tanh(zz)) ** 2) < np.mean((np.tanh(zz).mean(0) - np.tanh(zz)) ** 2)
    with pytest.raises(BadInput, match="node is a Gemm; smooth grafting handles Sigmoid and Tanh only"):
        apply_smooth_plan(m, GraftPlan((LayerPlan("g", "neuron", (0,), (1.0,), (0.0,)),)))


def test_cli_simplify(tmp_path):
    m = load_model(model_path("mnist-net_256x2"))
    info = inspect_model(m)
    src, dst = tmp_path / "g.onnx", tmp_path / "s.onnx"
    src.write_bytes(apply_plan(m, _plan(info, full=(1,)), info).SerializeToString())
    res = CliRunner().invoke(main, ["simplify", str(src), "-o", str(dst), "--json", "--drop-channels"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["removed"] == [info.relus[1].name] and rep["relu_neurons_after"] == 128
    _parity(load_model(src), load_model(dst), random_inputs(info.input.sample_shape, 16))
    again = CliRunner().invoke(main, ["simplify", str(src), "-o", str(dst)])
    assert again.exit_code == 2 and "exists" in again.output
    missing = CliRunner().invoke(main, ["simplify", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "x.onnx")])
    assert missing.exit_code == 2 and "not found" in missing.output
