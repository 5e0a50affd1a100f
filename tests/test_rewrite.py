"""The graft rewrite is exact, verifier-friendly and keeps the model's interface."""

from __future__ import annotations

import copy

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from graftonnx.errors import BadInput
from graftonnx.model import LINEAR_PRODUCERS, inspect_model, load_model
from graftonnx.model.graftmeta import read_grafts
from graftonnx.parity import assert_parity, compare, ort_callable, random_inputs
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan, layer_tensors


def _half_plan(info, granularity="neuron", a=1.0, b=0.0, seed=0) -> GraftPlan:
    rng = np.random.default_rng(seed)
    layers = []
    for s in info.relus:
        units = s.channels if granularity == "channel" else s.size
        idx = sorted(rng.choice(units, units // 2, replace=False).tolist())
        layers.append(LayerPlan(s.name, granularity, tuple(idx), (a,) * len(idx), (b,) * len(idx)))
    return GraftPlan(tuple(layers))


def _identity_reference(model: onnx.ModelProto, plan: GraftPlan, info) -> onnx.ModelProto:
    """An independent construction: Relu(z) − m⊙Relu(−z), i.e. identity where m = 1."""
    ref = copy.deepcopy(model)
    nodes = list(ref.graph.node)
    del ref.graph.node[:]
    for node in nodes:
        lp = plan.layer(node.name) if node.op_type == "Relu" else None
        if lp is None:
            ref.graph.node.append(node)
            continue
        keep, _, _ = layer_tensors(lp, info.site(node.name))
        z, y, p = node.input[0], node.output[0], node.name
        ref.graph.initializer.append(numpy_helper.from_array((1.0 - keep).astype(np.float32), p + "_m"))
        ref.graph.node.extend([
            helper.make_node("Relu", [z], [p + "_pos"]),
            helper.make_node("Neg", [z], [p + "_negz"]),
            helper.make_node("Relu", [p + "_negz"], [p + "_neg"]),
            helper.make_node("Mul", [p + "_neg", p + "_m"], [p + "_mneg"]),
            helper.make_node("Sub", [p + "_pos", p + "_mneg"], [y]),
        ])
    return ref


def _inputs(info, n=128):
    shape = info.input.sample_shape
    return np.concatenate([random_inputs(shape, n // 2, 0, 1, seed=1), random_inputs(shape, n // 2, -3, 3, seed=2)])


def test_empty_plan_reproduces_original(shared_net):
    model = load_model(shared_net)
    info = inspect_model(model)
    out = apply_plan(model, GraftPlan(()), info)
    assert_parity(ort_callable(model), ort_callable(out), _inputs(info), atol=1e-6)


@pytest.mark.parametrize("granularity", ["neuron", "channel"])
def test_unit_slope_equals_identity_reference(shared_net, granularity):
    model = load_model(shared_net)
    info = inspect_model(model)
    plan = _half_plan(info, granularity)
    grafted = apply_plan(model, plan, info)
    ref = _identity_reference(model, plan, info)
    x = _inputs(info)
    assert_parity(ort_callable(ref), ort_callable(grafted), x, atol=1e-6)
    # and it really changed the function (the plan is not a no-op)
    assert compare(ort_callable(model), ort_callable(grafted), x).max_abs_diff > 1e-3


def test_grafted_relus_fed_by_linear_producers_and_interface_kept(shared_net):
    model = load_model(shared_net)
    info = inspect_model(model)
    grafted = apply_plan(model, _half_plan(info, a=0.4), info)
    onnx.checker.check_model(grafted, full_check=True)
    producers = {o: n.op_type for n in grafted.graph.node for o in n.output}
    for node in grafted.graph.node:
        if node.op_type == "Relu":
            assert producers.get(node.input[0]) in LINEAR_PRODUCERS, node.name
    assert [i.name for i in grafted.graph.input] == [i.name for i in model.graph.input]
    assert [o.SerializeToString() for o in grafted.graph.output] == [o.SerializeToString() for o in model.graph.output]
    assert [(o.domain, o.version) for o in grafted.opset_import] == [(o.domain, o.version) for o in model.opset_import]
    recs = read_grafts(grafted, check=True)
    assert {r.site for r in recs} == {s.name for s in info.relus}


def _tiny() -> onnx.ModelProto:
    """x(1,2) → Gemm(W = I, bias (0,0)) → Relu → output, so y = a·x + b is checkable by hand."""
    w = numpy_helper.from_array(np.eye(2, dtype=np.float32), "W")
    c = numpy_helper.from_array(np.zeros(2, np.float32), "C")
    g = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "C"], ["z"], name="gemm"),
         helper.make_node("Relu", ["z"], ["y"], name="relu")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w, c])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_hand_computed_placement():
    model = _tiny()
    plan = GraftPlan((LayerPlan("relu", "neuron", (1,), (0.5,), (2.0,)),))
    f = ort_callable(apply_plan(model, plan))
    x = np.array([[-4.0, -4.0], [3.0, 6.0]], np.float32)
    # neuron 0 keeps its ReLU; neuron 1 becomes 0.5·z + 2
    np.testing.assert_array_equal(f(x), np.array([[0.0, 0.0], [3.0, 5.0]], np.float32))


def test_bad_plans_are_rejected():
    model = _tiny()
    with pytest.raises(BadInput, match="no Relu node"):
        apply_plan(model, GraftPlan((LayerPlan("nope", "neuron", (0,), (1.0,), (0.0,)),)))
    with pytest.raises(BadInput, match="outside"):
        apply_plan(model, GraftPlan((LayerPlan("relu", "neuron", (2,), (1.0,), (0.0,)),)))
    with pytest.raises(BadInput, match="same length"):
        apply_plan(model, GraftPlan((LayerPlan("relu", "neuron", (0,), (1.0, 2.0), (0.0,)),)))
    grafted = apply_plan(model, GraftPlan((LayerPlan("relu", "neuron", (0,), (1.0,), (0.0,)),)))
    with pytest.raises(BadInput, match="already grafted"):
        apply_plan(grafted, GraftPlan((LayerPlan("relu", "neuron", (1,), (1.0,), (0.0,)),)))


def test_plan_json_round_trip(tmp_path):
    plan = GraftPlan((LayerPlan("relu", "channel", (0, 3), (0.25, 1.0), (0.0, -0.5), fixed=True),))
    path = tmp_path / "plan.json"
    plan.save(path)
    assert GraftPlan.load(path) == plan
    path.write_text("{not json")
    with pytest.raises(BadInput, match="not valid JSON"):
        GraftPlan.load(path)
