"""ONNX → torch → ONNX: converter coverage, parity with onnxruntime, grafted training and write-back."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from conftest import DATASETS, model_path
from onnx import TensorProto, helper, numpy_helper

from graftonnx.errors import BadInput, UnsupportedModel
from graftonnx.model import SUPPORTED_OPS, inspect_model, load_model, prepend_normalisation
from graftonnx.model.graftmeta import GRAFTS_KEY
from graftonnx.model.info import input_prefix
from graftonnx.parity import assert_parity, ort_callable, random_inputs
from graftonnx.planning.plan import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan
from graftonnx.torch_bridge import CONVERTERS, to_torch, write_back

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


def torch_callable(module: torch.nn.Module):
    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    return run


def real_inputs(name: str, n: int = 16) -> np.ndarray:
    """The first ``n`` shared images in ``name``'s input layout and scale."""
    csv = DATASETS / ("eran_mnist_test.csv" if name.startswith("mnist") else "eran_cifar10_test.csv")
    x = np.loadtxt(csv, delimiter=",", dtype=np.float32, max_rows=n, ndmin=2)[:, 1:] / 255
    if name.startswith("mnist"):
        return x.reshape(n, 784, 1) if name == "mnist-net_256x2" else x.reshape(n, 1, 28, 28)
    x = x.reshape(n, 32, 32, 3)
    if name == "cifar10_small":
        return x
    chw = x.transpose(0, 3, 1, 2)
    return ((chw - np.reshape(CIFAR_MEAN, (1, 3, 1, 1))) / np.reshape(CIFAR_STD, (1, 3, 1, 1))).astype(np.float32)


def graft(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """Graft every 3rd neuron of the first site and two channels (or neurons) of the second."""
    info = inspect_model(model)
    rng = np.random.default_rng(seed)
    s0, s1 = info.relus[0], info.relus[1]
    idx = tuple(range(0, s0.size, 3))
    gran = "channel" if len(s1.shape) > 1 else "neuron"
    a, b = rng.uniform(0, 0.3, len(idx)), 0.1 * rng.normal(size=len(idx))
    layers = (LayerPlan(s0.name, "neuron", idx, tuple(a), tuple(b)),
              LayerPlan(s1.name, gran, (1, 5), (0.5, 0.25), (0.1, -0.1)))
    return apply_plan(model, GraftPlan(layers))


def structure(model: onnx.ModelProto) -> tuple:
    g = model.graph
    return ([(n.name, n.op_type, list(n.input), list(n.output), [a.SerializeToString() for a in n.attribute])
             for n in g.node], [i.SerializeToString() for i in g.input], [o.SerializeToString() for o in g.output],
            [t.name for t in g.initializer], [o.SerializeToString() for o in model.opset_import],
            [(p.key, p.value) for p in model.metadata_props], model.ir_version)


# ---------------------------------------------------------------- registry
def test_converters_cover_supported_ops() -> None:
    assert set(CONVERTERS.keys()) >= SUPPORTED_OPS, sorted(SUPPORTED_OPS - set(CONVERTERS.keys()))


def test_duplicate_converter_rejected() -> None:
    with pytest.raises(ValueError, match="already registered"):
        CONVERTERS.register("Relu")(lambda ctx: None)


def test_unknown_op_is_reported() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    m = helper.make_model(helper.make_graph([helper.make_node("Softplus", ["x"], ["y"], name="sig")], "g", [x], [y]))
    with pytest.raises(UnsupportedModel, match="'sig'.*Softplus"):
        to_torch(m)


# ---------------------------------------------------------------- shared nets
def test_round_trip_unchanged(shared_net) -> None:
    """No training: the written-back model is the same model, outputs identical."""
    model = load_model(shared_net)
    module = to_torch(model)
    back = write_back(model, module)
    assert structure(back) == structure(model)
    assert back.SerializeToString() == model.SerializeToString()
    x = random_inputs(module.input_shape, 8)
    assert_parity(ort_callable(model), ort_callable(back), x, atol=1e-6)


def test_torch_matches_onnxruntime(shared_net) -> None:
    model = load_model(shared_net)
    module = to_torch(model)
    ref, cand = ort_callable(model), torch_callable(module)
    assert_parity(ref, cand, random_inputs(module.input_shape, 32, seed=1), atol=1e-5)
    assert_parity(ref, cand, real_inputs(shared_net.stem), atol=1e-5)
    assert cand(real_inputs(shared_net.stem, 1)).shape[0] == 1  # batch-1 nets run batch 1 and 16


def test_pre_activations_match_onnxruntime() -> None:
    """``run`` exposes intermediate tensors (the Relu inputs auto_LiRPA bounds) exactly as onnxruntime."""
    from graftonnx.model import OrtRunner

    model = load_model(model_path("resnet_2b"))
    pre = [s.input for s in inspect_model(model).relus]
    x = real_inputs("resnet_2b", 8)
    ours = to_torch(model).run(torch.from_numpy(x), pre)
    ref = OrtRunner(model, pre).run(x)
    for name in pre:
        np.testing.assert_allclose(ours[name].detach().numpy(), ref[name], atol=1e-5)


# ---------------------------------------------------------------- grafted models
@pytest.mark.parametrize("name", ["mnist-net_256x2", "resnet_2b"])
def test_grafted_train_and_write_back(name: str) -> None:
    model = graft(load_model(model_path(name)))
    module = to_torch(model)
    x = real_inputs(name, 16)
    assert_parity(ort_callable(model), torch_callable(module), x, atol=1e-5)
    graft_params = list(module.graft_parameters())
    assert len(graft_params) == 4
    assert {id(p) for p in graft_params}.isdisjoint(id(p) for p in module.weight_parameters())
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.graft_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        for p in module.weight_parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=gen))
    back = write_back(model, module)
    assert structure(back) == structure(model)
    assert_parity(ort_callable(back), torch_callable(module), x, atol=1e-5)
    before = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    after = {t.name: numpy_helper.to_array(t) for t in back.graph.initializer}
    for rec in json.loads(dict((p.key, p.value) for p in model.metadata_props)[GRAFTS_KEY]):
        keep = before[rec["keep"]]
        assert np.array_equal(after[rec["keep"]], keep)  # the mask never trains
        for k in ("a", "b"):
            assert np.all(np.broadcast_to(after[rec[k]], keep.shape)[keep == 1] == 0)  # no line on kept neurons
            assert not np.array_equal(after[rec[k]], before[rec[k]])


def test_gradient_step_keeps_mask_and_constants() -> None:
    """A real optimiser step on everything trainable: kept neurons stay lines-free, constants frozen."""
    base = prepend_normalisation(load_model(model_path("resnet_2b")), CIFAR_MEAN, CIFAR_STD)
    model = graft(base)
    module = to_torch(model)
    names = {n for n, _ in module.named_parameters()}
    assert not any("graft_keep" in n or "graft_zero" in n or "__mean" in n or "__std" in n for n in names)
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    x = torch.from_numpy(random_inputs(module.input_shape, 4, seed=3))
    module(x).square().mean().backward()
    opt.step()
    module.clamp_slopes(0.0, 1.0)
    slopes = torch.cat([site.a_full.detach().ravel() for site in module.grafts.values()])
    assert float(slopes.min()) >= 0.0 and float(slopes.max()) <= 1.0 and float(slopes.max()) > 0.0
    back = write_back(model, module)
    for rec in module.grafts.values():
        keep = numpy_helper.to_array(next(t for t in back.graph.initializer if t.name == rec.record.keep))
        a = numpy_helper.to_array(next(t for t in back.graph.initializer if t.name == rec.record.a))
        assert np.all(np.broadcast_to(a, keep.shape)[keep == 1] == 0)
    unchanged = {t.name for t in model.graph.initializer if "graft_keep" in t.name or "graft_zero" in t.name
                 or t.name.endswith(("__mean", "__std"))}
    old = {t.name: t.SerializeToString() for t in model.graph.initializer}
    assert all(t.SerializeToString() == old[t.name] for t in back.graph.initializer if t.name in unchanged)
    module.freeze_weights()
    assert not any(p.requires_grad for p in module.weight_parameters())
    assert all(p.requires_grad for p in module.graft_parameters())


def _meta(model: onnx.ModelProto, records: list[dict[str, object]]) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for p in m.metadata_props:
        if p.key == GRAFTS_KEY:
            p.value = json.dumps(records)
    return m


def test_bad_graft_metadata_is_bad_input() -> None:
    model = graft(load_model(model_path("mnist-net_256x2")))
    records = json.loads(dict((p.key, p.value) for p in model.metadata_props)[GRAFTS_KEY])
    with pytest.raises(BadInput, match="missing"):
        to_torch(_meta(model, [dict(records[0], a="nope")]))
    with pytest.raises(BadInput, match="no Relu node"):
        to_torch(_meta(model, [dict(records[0], site="nope")]))
    broken = _meta(model, records)
    for t in broken.graph.initializer:
        if t.name == records[0]["a"]:
            t.CopyFrom(numpy_helper.from_array(np.ones(numpy_helper.to_array(t).shape, np.float32), t.name))
    with pytest.raises(BadInput, match="not grafted"):
        to_torch(broken)


def test_write_back_into_other_model_is_bad_input() -> None:
    module = to_torch(load_model(model_path("mnist-net_256x2")))
    with pytest.raises(BadInput, match="converted from"):
        write_back(load_model(model_path("mnist_relu_9_200")), module)


# ---------------------------------------------------------------- ops not in the shared nets
def _model(nodes: list[onnx.NodeProto], in_shape: list[int], inits: dict[str, np.ndarray]) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)
    y = onnx.ValueInfoProto(name="y")
    y.type.tensor_type.elem_type = TensorProto.FLOAT
    g = helper.make_graph(nodes, "ops", [x], [y], [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def _rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).normal(size=shape).astype(np.float32)


OP_CASES = {
    "conv_pool_bn": ([
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 1, 1, 2], strides=[2, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("MaxPool", ["n"], ["p"], kernel_shape=[2, 2], pads=[1, 0, 0, 1]),
        helper.make_node("AveragePool", ["p"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1),
        helper.make_node("Relu", ["a"], ["y"])],
        [1, 2, 9, 8], {"w": _rand(3, 2, 3, 3), "s": _rand(3), "b": _rand(3), "m": _rand(3),
                       "v": np.abs(_rand(3)) + 0.5}),
    "same_pad_avgpool": ([
        helper.make_node("Conv", ["x", "w", "cb"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("AveragePool", ["c"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)],
        [1, 2, 7, 7], {"w": _rand(4, 2, 3, 3), "cb": _rand(4)}),
    "shape_ops": ([
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(_rand(1, 6), "k")),
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Unsqueeze", ["t", "ax"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax"], ["s"]),
        helper.make_node("Reshape", ["s", "shape"], ["r"]),
        helper.make_node("Concat", ["r", "r"], ["cat"], axis=1),
        helper.make_node("Neg", ["cat"], ["ng"]),
        helper.make_node("Dropout", ["ng"], ["d"]),
        helper.make_node("Identity", ["d"], ["i"]),
        helper.make_node("Div", ["i", "two"], ["dv"]),
        helper.make_node("Sub", ["dv", "k2"], ["sb"]),
        helper.make_node("Gemm", ["sb", "gw", "gb"], ["g"], alpha=0.5, beta=2.0),
        helper.make_node("MatMul", ["g", "mw"], ["mm"]),
        helper.make_node("Mul", ["mm", "k"], ["y"])],
        [1, 2, 3], {"ax": np.array([1], np.int64), "shape": np.array([1, 6], np.int64),
                    "two": np.array(2.0, np.float32), "k2": _rand(12), "gw": _rand(12, 5), "gb": _rand(5),
                    "mw": _rand(5, 6)}),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_small_graphs_match_onnxruntime(case: str) -> None:
    nodes, shape, inits = OP_CASES[case]
    model = _model(nodes, shape, inits)
    module = to_torch(model)
    assert_parity(ort_callable(model), torch_callable(module), random_inputs(tuple(shape[1:]), 6, -2, 2), atol=1e-5)
    assert write_back(model, module).SerializeToString() == model.SerializeToString()


def test_parameters_keyed_by_initialiser_names() -> None:
    model = prepend_normalisation(load_model(model_path("resnet_2b")), CIFAR_MEAN, CIFAR_STD)
    module = to_torch(model)
    params = module.initialiser_parameters()
    float_inits = {t.name for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    assert set(params) == float_inits - {"input.1__mean", "input.1__std"}  # normalisation never trains
    w = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "conv1.weight"))
    assert np.array_equal(params["conv1.weight"].detach().numpy(), w)
    assert {id(p) for p in module.weight_parameters()} == {id(p) for p in params.values()}


@pytest.mark.parametrize("name,norm", [("mnist_relu_9_200", False), ("mnist_relu_9_200", True), ("resnet_2b", True)])
def test_inspect_convert_and_bounding_agree_on_the_input_prefix(name: str, norm: bool) -> None:
    """One walker: inspect shows, the converter freezes and auto_LiRPA strips the same prefix nodes."""
    from graftonnx._lirpa import lirpa_model

    mean, std = ((0.1307,), (0.3081,)) if name.startswith("mnist") else (CIFAR_MEAN, CIFAR_STD)
    model = prepend_normalisation(load_model(model_path(name)), mean, std) if norm else load_model(model_path(name))
    nodes, out = input_prefix(model)
    elementwise = [n.name for n in nodes if n.op_type in ("Sub", "Div", "Mul", "Add")]
    assert len(elementwise) == (2 + 2 * norm if name.startswith("mnist") else 2)
    assert [s.split()[1] for s in inspect_model(model).normalisation] == elementwise
    consts = {i for n in nodes for i in n.input} & {t.name for t in model.graph.initializer}
    assert len(consts) == 2 * norm and not consts & set(to_torch(model).initialiser_parameters())
    assert lirpa_model(model).prefix_out == out


def test_input_prefix_stops_where_stripping_would_be_wrong() -> None:
    c = {"c": np.array(2.0, np.float32)}
    div = [helper.make_node("Sub", ["x", "c"], ["s"]), helper.make_node("Div", ["c", "s"], ["y"])]
    assert [n.op_type for n in input_prefix(_model(div, [1, 3], c))[0]] == ["Sub"]  # c / x: not monotone
    two_readers = [helper.make_node("Sub", ["x", "c"], ["s"]), helper.make_node("Add", ["s", "x"], ["y"])]
    assert input_prefix(_model(two_readers, [1, 3], c)) == ([], "x")  # x also feeds the Add
