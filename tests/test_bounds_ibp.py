"""IBP in onnxruntime: soundness on the shared nets, exactness vs numpy, streaming helpers."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from conftest import DATASETS, model_path
from onnx import TensorProto, helper, numpy_helper

from graftonnx.bounds import (
    BOUND_METHODS,
    IBP_RULES,
    build_interval_model,
    eps_box,
    ibp,
    interval_runner,
    iter_site_bounds,
    unstable_counts,
)
from graftonnx.errors import BadInput, UnsupportedModel
from graftonnx.model import SUPPORTED_OPS, OrtRunner, inspect_model, load_model, prepend_normalisation

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)
EPS = {"mnist-net_256x2": (0.01, 0.05), "mnist_relu_9_200": (0.005, 0.02),
       "resnet_2b": (1 / 255, 4 / 255), "cifar10_small": (1 / 255, 4 / 255)}
TOL = 1e-5


def _net(name: str, n: int = 12) -> tuple[onnx.ModelProto, np.ndarray]:
    """A shared net taking raw [0,1] pixels, and ``n`` real images in its input layout."""
    model = load_model(model_path(name))
    csv = DATASETS / ("eran_mnist_test.csv" if name.startswith("mnist") else "eran_cifar10_test.csv")
    x = np.loadtxt(csv, delimiter=",", max_rows=n, dtype=np.float32)[:, 1:] / 255.0
    if name == "mnist-net_256x2":
        x = x.reshape(n, 784, 1)
    elif name == "mnist_relu_9_200":
        x = x.reshape(n, 1, 28, 28)
    elif name == "resnet_2b":
        x = x.reshape(n, 32, 32, 3).transpose(0, 3, 1, 2)
        model = prepend_normalisation(model, CIFAR_MEAN, CIFAR_STD, channel_axis=0)
    else:
        x = x.reshape(n, 32, 32, 3)
    return model, np.ascontiguousarray(x)


def _samples(lo: np.ndarray, hi: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Points inside each box: both corners, random vertices and uniform interior points."""
    pts = [lo, hi]
    for i in range(k):
        u = rng.integers(0, 2, lo.shape) if i % 2 else rng.uniform(size=lo.shape)
        pts.append((lo + (hi - lo) * u).astype(np.float32))
    return np.concatenate([np.clip(p, lo, hi) for p in pts])


def test_rules_cover_supported_ops() -> None:
    assert set(IBP_RULES) >= SUPPORTED_OPS
    assert "ibp" in BOUND_METHODS and BOUND_METHODS.get("ibp") is ibp


@pytest.mark.parametrize("which", [0, 1])
def test_sound_on_shared_nets(shared_net, which: int) -> None:
    model, x = _net(shared_net.stem)
    info = inspect_model(model)
    lo, hi = eps_box(x, EPS[shared_net.stem][which], (0.0, 1.0))
    bounds = ibp(model, lo, hi, info.relus)
    pts = _samples(lo, hi, 14, np.random.default_rng(which))
    acts = OrtRunner(model, [s.input for s in info.relus]).run(pts)
    n_unstable = 0
    for s in info.relus:
        b = bounds[s.name]
        assert b.lower.shape == b.upper.shape == (len(x), *s.shape)
        assert np.all(b.lower <= b.upper)
        v = acts[s.input].reshape(-1, len(x), *s.shape)
        assert (b.lower - v).max() <= TOL, s.name
        assert (v - b.upper).max() <= TOL, s.name
        n_unstable += int(b.unstable().sum())
    assert n_unstable > 0  # the boxes are wide enough to matter: the check is not vacuous


def test_eps_zero_is_the_activation(shared_net) -> None:
    model, x = _net(shared_net.stem, n=6)
    info = inspect_model(model)
    lo, hi = eps_box(x, 0.0, (0.0, 1.0))
    assert np.array_equal(lo, hi) and np.array_equal(lo, x)
    bounds = ibp(model, lo, hi, info.relus)
    acts = OrtRunner(model, [s.input for s in info.relus]).run(x)
    for s in info.relus:
        b = bounds[s.name]
        assert np.array_equal(b.lower, b.upper), s.name
        np.testing.assert_allclose(b.lower, acts[s.input], rtol=1e-5, atol=TOL, err_msg=s.name)
        assert not b.unstable().any()


def test_wider_eps_never_tighter(shared_net) -> None:
    model, x = _net(shared_net.stem, n=6)
    info = inspect_model(model)
    prev = None
    for eps in (0.0, 0.5 / 255, 2 / 255, 8 / 255):
        cur = ibp(model, *eps_box(x, eps, (0.0, 1.0)), info.relus)
        if prev is not None:
            for s in info.relus:
                assert np.all(cur[s.name].lower <= prev[s.name].lower + TOL), s.name
                assert np.all(cur[s.name].upper >= prev[s.name].upper - TOL), s.name
        prev = cur
    assert sum(int(prev[s.name].unstable().sum()) for s in info.relus) > 0


# --- a tiny Conv/BN/Gemm net and a hand-written numpy IBP -------------------------------------------------


def _tiny_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    return {"W1": f(3, 2, 3, 3), "B1": f(3), "scale": f(3), "bias": f(3), "mean": f(3),
            "var": np.abs(f(3)) + 0.1, "W2": f(4, 3, 3, 3), "B2": f(4), "W3": f(5, 16), "C3": f(5),
            "W4": f(3, 5), "C4": f(3)}


def _tiny_model(p: dict[str, np.ndarray]) -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="conv1", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["bn"], name="bn",
                         epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "W2", "B2"], ["c2"], name="conv2", strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "W3", "C3"], ["g3"], name="gemm3", transB=1, alpha=0.7, beta=1.3),
        helper.make_node("Relu", ["g3"], ["r3"], name="relu3"),
        helper.make_node("Gemm", ["r3", "W4", "C4"], ["y"], name="gemm4", transB=1),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              [numpy_helper.from_array(v, k) for k, v in p.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def _np_conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    ho, wo = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, i, j])
    return out


def _np_ibp(p: dict[str, np.ndarray], lo: np.ndarray, hi: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Textbook IBP in float64: centre–radius through linear maps, clamp at each Relu."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    m, r = (lo + hi) / 2.0, (hi - lo) / 2.0
    m, r = _np_conv(m, p["W1"], 1, 1) + p["B1"][:, None, None], _np_conv(r, np.abs(p["W1"]), 1, 1)
    a = p["scale"] / np.sqrt(p["var"] + 1e-3)
    m, r = m * a[:, None, None] + (p["bias"] - p["mean"] * a)[:, None, None], r * np.abs(a)[:, None, None]
    out = {"bn": (m - r, m + r)}
    lo1, hi1 = np.maximum(m - r, 0), np.maximum(m + r, 0)
    m, r = (lo1 + hi1) / 2, (hi1 - lo1) / 2
    m, r = _np_conv(m, p["W2"], 2, 0) + p["B2"][:, None, None], _np_conv(r, np.abs(p["W2"]), 2, 0)
    out["c2"] = (m - r, m + r)
    lo2, hi2 = np.maximum(m - r, 0).reshape(len(m), -1), np.maximum(m + r, 0).reshape(len(m), -1)
    m, r = (lo2 + hi2) / 2, (hi2 - lo2) / 2
    m, r = 0.7 * m @ p["W3"].T + 1.3 * p["C3"], 0.7 * r @ np.abs(p["W3"]).T
    out["g3"] = (m - r, m + r)
    return out


def test_exact_vs_numpy_ibp() -> None:
    rng = np.random.default_rng(3)
    p = _tiny_params(rng)
    model = _tiny_model(p)
    info = inspect_model(model)
    assert [s.input for s in info.relus] == ["bn", "c2", "g3"]
    x = rng.uniform(-1, 1, size=(7, 2, 5, 5)).astype(np.float32)
    lo, hi = eps_box(x, 0.3, (-1.0, 1.0))
    got = ibp(model, lo, hi, info.relus)
    want = _np_ibp(p, lo.astype(np.float64), hi.astype(np.float64))
    for s in info.relus:
        np.testing.assert_allclose(got[s.name].lower, want[s.input][0], rtol=1e-5, atol=TOL, err_msg=s.name)
        np.testing.assert_allclose(got[s.name].upper, want[s.input][1], rtol=1e-5, atol=TOL, err_msg=s.name)
    assert any(got[s.name].unstable().any() for s in info.relus)


# --- every other op, a fixed batch of 1 and a Reshape constant that hard-codes it ------------------------


def _kitchen_model(rng: np.random.Generator) -> onnx.ModelProto:
    def init(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value), name)

    mixed = np.array([1.5, -2.0, 0.5, -0.25, 3.0, -1.0], np.float32)
    inits = [init("neg2", np.float32(-2.0)), init("cat_c", rng.normal(size=(1, 1, 3, 3)).astype(np.float32)),
             init("shape", np.array([1, -1], np.int64)), init("ax1", np.array([1], np.int64)),
             init("Wm", rng.normal(size=(45, 6)).astype(np.float32)), init("mixed", mixed),
             init("Wg", rng.normal(size=(6, 45)).astype(np.float32)), init("half", np.float32(0.5)),
             init("Wc", rng.normal(size=(2, 1)).astype(np.float32))]
    mean = helper.make_tensor("m", TensorProto.FLOAT, [1, 2, 1, 1], [0.3, 0.6])
    nodes = [
        helper.make_node("Constant", [], ["mean"], name="const", value=mean),
        helper.make_node("Sub", ["x", "mean"], ["a"], name="sub"),
        helper.make_node("Div", ["a", "neg2"], ["b"], name="div"),
        helper.make_node("Neg", ["b"], ["n"], name="neg"),
        helper.make_node("MaxPool", ["n"], ["mp"], name="maxpool", kernel_shape=[2, 2]),
        helper.make_node("AveragePool", ["n"], ["ap"], name="avgpool", kernel_shape=[2, 2]),
        helper.make_node("Concat", ["mp", "ap", "cat_c"], ["cat"], name="concat", axis=1),
        helper.make_node("Transpose", ["cat"], ["t"], name="transpose", perm=[0, 2, 3, 1]),
        helper.make_node("Dropout", ["t"], ["d"], name="dropout"),
        helper.make_node("Identity", ["d"], ["pre1"], name="identity"),
        helper.make_node("Relu", ["pre1"], ["r1"], name="relu1"),
        helper.make_node("Reshape", ["r1", "shape"], ["flat"], name="reshape"),  # [1, -1]: batch hard-coded
        helper.make_node("Unsqueeze", ["flat", "ax1"], ["u"], name="unsqueeze"),
        helper.make_node("MatMul", ["Wc", "u"], ["pre3"], name="matmul_const_first"),
        helper.make_node("Relu", ["pre3"], ["r3"], name="relu3"),
        helper.make_node("MatMul", ["u", "Wm"], ["mm"], name="matmul"),
        helper.make_node("Mul", ["mixed", "mm"], ["ml"], name="mul_mixed_sign"),
        helper.make_node("Squeeze", ["ml", "ax1"], ["sq"], name="squeeze"),
        helper.make_node("Gemm", ["flat", "Wg"], ["g"], name="gemm", transB=1),
        helper.make_node("Mul", ["g", "half"], ["gh"], name="mul_half"),
        helper.make_node("Sub", ["sq", "gh"], ["diff"], name="sub_intervals"),
        helper.make_node("Add", ["diff", "g"], ["pre2"], name="add_intervals"),
        helper.make_node("Relu", ["pre2"], ["y"], name="relu2"),
    ]
    graph = helper.make_graph(nodes, "kitchen", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    return model


def test_every_op_sound_and_tight_where_monotone() -> None:
    rng = np.random.default_rng(5)
    model = _kitchen_model(rng)
    info = inspect_model(model)
    # Sigmoid and Tanh have their own soundness tests (tests/test_smooth.py)
    assert {n.op_type for n in model.graph.node} >= SUPPORTED_OPS - {"Conv", "BatchNormalization", "Flatten",
                                                                     "Sigmoid", "Tanh"}
    x = rng.uniform(0, 1, size=(5, 2, 4, 4)).astype(np.float32)
    lo, hi = eps_box(x, 0.2, (0.0, 1.0))
    bounds = ibp(model, lo, hi, info.relus)
    runner = OrtRunner(model, [s.input for s in info.relus], batch_size=1)  # concat of a batch-1 constant
    acts = runner.run(_samples(lo, hi, 30, rng))
    for s in info.relus:
        v = acts[s.input].reshape(-1, len(x), *s.shape)
        assert (bounds[s.name].lower - v).max() <= TOL and (v - bounds[s.name].upper).max() <= TOL, s.name
        width = bounds[s.name].upper - bounds[s.name].lower
        assert width.min() >= 0 and width.max() > 0, s.name
    # pre1 increases with every input pixel, so its interval bounds are attained at the box corners
    np.testing.assert_allclose(bounds["relu1"].lower, runner.run(lo)["pre1"], atol=1e-6)
    np.testing.assert_allclose(bounds["relu1"].upper, runner.run(hi)["pre1"], atol=1e-6)
    point, exact = ibp(model, x, x, info.relus), runner.run(x)
    for s in info.relus:
        np.testing.assert_allclose(point[s.name].lower, exact[s.input], rtol=1e-5, atol=TOL, err_msg=s.name)
        np.testing.assert_allclose(point[s.name].upper, exact[s.input], rtol=1e-5, atol=TOL, err_msg=s.name)


# --- each arithmetic rule on independent operands, where interval arithmetic is exact --------------------

C_POS, C_NEG, C_MIX = (np.array(v, np.float32) for v in ([0.5, 2, 1, 3], [-0.5, -2, -1, -3], [1.5, -2, 0.5, -0.25]))
# (operator, operands): "a"/"b" are the two halves of x in centre–radius form, "ra"/"rb" their Relus (ends form)
ARITH = [("Add", ["a", "b"]), ("Add", ["ra", "rb"]), ("Add", ["a", "rb"]), ("Sub", ["a", "b"]), ("Sub", ["ra", "rb"]),
         ("Sub", ["ra", "b"]), ("Add", ["ra", "cmix"]), ("Add", ["cmix", "a"]), ("Sub", ["a", "cmix"]),
         ("Sub", ["cmix", "ra"]), ("Sub", ["cmix", "a"]), ("Neg", ["a"]), ("Neg", ["ra"])] + [
    (op, [v, c]) for op in ("Mul", "Div") for v in ("a", "ra") for c in ("cpos", "cneg", "cmix")] + [
    ("Mul", ["cmix", "ra"])]


def _np_arith(op: str, ins: list, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    consts = {"cpos": C_POS, "cneg": C_NEG, "cmix": C_MIX}
    iv = {"a": (lo[:, :4], hi[:, :4]), "b": (lo[:, 4:], hi[:, 4:])}
    iv |= {"r" + k: (np.maximum(v[0], 0), np.maximum(v[1], 0)) for k, v in iv.items()}
    args = [consts.get(i, iv.get(i)) for i in ins]
    if op == "Neg":
        return -args[0][1], -args[0][0]
    if op in ("Mul", "Div"):
        x, c = (args[0], args[1]) if ins[0] not in consts else (args[1], args[0])
        ends = [x[0] * c, x[1] * c] if op == "Mul" else [x[0] / c, x[1] / c]
        return np.minimum(*ends), np.maximum(*ends)
    x, y = (a if isinstance(a, tuple) else (a, a) for a in args)
    return (x[0] + y[0], x[1] + y[1]) if op == "Add" else (x[0] - y[1], x[1] - y[0])


@pytest.mark.parametrize("op,ins", ARITH, ids=[f"{o}-{'-'.join(i)}" for o, i in ARITH])
def test_arithmetic_rules_exact(op: str, ins: list) -> None:
    sel = np.eye(8, dtype=np.float32)
    inits = [numpy_helper.from_array(v, k) for k, v in
             {"Sa": sel[:, :4], "Sb": sel[:, 4:], "cpos": C_POS, "cneg": C_NEG, "cmix": C_MIX}.items()]
    nodes = [helper.make_node("MatMul", ["x", "Sa"], ["a"], name="sel_a"),
             helper.make_node("MatMul", ["x", "Sb"], ["b"], name="sel_b"),
             helper.make_node("Relu", ["a"], ["ra"], name="relu_a"),
             helper.make_node("Relu", ["b"], ["rb"], name="relu_b"),
             helper.make_node(op, ins, ["pre"], name="op"), helper.make_node("Relu", ["pre"], ["y"], name="site")]
    graph = helper.make_graph(nodes, "arith", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    x = np.random.default_rng(len(ins) + len(op)).uniform(-1, 1, size=(6, 8)).astype(np.float32)
    lo, hi = eps_box(x, 0.4, (-1.0, 1.0))
    got = ibp(model, lo, hi, [inspect_model(model).site("site")])["site"]
    want = _np_arith(op, ins, lo.astype(np.float64), hi.astype(np.float64))
    np.testing.assert_allclose(got.lower, want[0], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(got.upper, want[1], rtol=1e-6, atol=1e-6)


def test_batch_axis_moves_are_rejected() -> None:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    nodes = [helper.make_node("Transpose", ["x"], ["t"], name="tr", perm=[1, 0]),
             helper.make_node("Relu", ["t"], ["y"], name="relu")]
    model = helper.make_model(helper.make_graph(nodes, "bad", [x], [helper.make_tensor_value_info("y", 1, [4, 1])]),
                              opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedModel, match="batch"):
        build_interval_model(model, ["t"])
    sig = helper.make_model(helper.make_graph([helper.make_node("Softplus", ["x"], ["y"], name="sig")], "s", [x],
                                              [helper.make_tensor_value_info("y", 1, [1, 4])]),
                            opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedModel, match="Softplus"):
        build_interval_model(sig, ["y"])


def test_relu_on_the_input_and_aliased_tensors() -> None:
    """A site reading the graph input (or an Identity of it) gets exactly the box back."""
    nodes = [helper.make_node("Relu", ["x"], ["r0"], name="relu_in"),
             helper.make_node("Identity", ["x"], ["xi"], name="alias"),
             helper.make_node("Relu", ["xi"], ["r1"], name="relu_alias"),
             helper.make_node("Add", ["r0", "r1"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "in", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    info = inspect_model(model)
    lo, hi = eps_box(np.array([[-0.5, 0.0, 0.7]], np.float32), 0.25, (-1.0, 1.0))
    out = ibp(model, lo, hi, info.relus)
    for s in info.relus:
        np.testing.assert_array_equal(out[s.name].lower, lo)
        np.testing.assert_array_equal(out[s.name].upper, hi)
    assert out["relu_in"].unstable().tolist() == [[False, True, False]]


# --- streaming, caching and user errors ---------------------------------------------------------------


def test_eps_box_clips_and_rounds_outwards() -> None:
    x = np.array([[0.0, 0.1, 0.5, 0.999, 1.0]], np.float32)
    lo, hi = eps_box(x, 0.01, (0.0, 1.0))
    assert lo.dtype == hi.dtype == np.float32
    assert np.all(lo >= 0) and np.all(hi <= 1) and lo[0, 0] == 0 and hi[0, -1] == 1
    x64 = x.astype(np.float64)
    assert np.all(lo.astype(np.float64) <= np.maximum(x64 - 0.01, 0))
    assert np.all(hi.astype(np.float64) >= np.minimum(x64 + 0.01, 1))
    assert np.all(hi - lo <= 0.02 + 1e-6)
    with pytest.raises(BadInput, match="eps"):
        eps_box(x, -0.1, (0.0, 1.0))


def test_streaming_matches_one_batch_and_counts() -> None:
    model, x = _net("mnist-net_256x2", n=23)
    info = inspect_model(model)
    whole = ibp(model, *eps_box(x, 0.03, (0.0, 1.0)), info.relus)
    seen = []
    for sl, b in iter_site_bounds("ibp", model, x, 0.03, (0.0, 1.0), info.relus, batch_size=5):
        seen.append((sl.start, sl.stop))
        for s in info.relus:
            np.testing.assert_array_equal(b[s.name].lower, whole[s.name].lower[sl])
            np.testing.assert_array_equal(b[s.name].upper, whole[s.name].upper[sl])
    assert seen == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    counts = unstable_counts("ibp", model, x, 0.03, (0.0, 1.0), info.relus, batch_size=5)
    assert counts.n_images == 23
    for s in info.relus:
        u = whole[s.name].unstable()
        np.testing.assert_array_equal(counts.per_neuron[s.name], u.sum(axis=0))
        np.testing.assert_array_equal(counts.per_image[s.name], u.reshape(23, -1).sum(axis=1))
    total = sum(whole[s.name].unstable().sum() for s in info.relus)
    assert counts.image_totals.sum() == total > 0
    assert counts.unr == pytest.approx(total / 23 / info.n_neurons)
    with pytest.raises(BadInput, match="bound method"):
        next(iter_site_bounds("nope", model, x, 0.03, (0.0, 1.0), info.relus))


def test_session_cache_and_bad_boxes() -> None:
    model, x = _net("mnist-net_256x2", n=2)
    info = inspect_model(model)
    tensors = [s.input for s in info.relus]
    assert interval_runner(model, tensors) is interval_runner(model, tensors)
    assert interval_runner(model, tensors[:1]) is not interval_runner(model, tensors)
    with pytest.raises(BadInput, match="shape"):
        ibp(model, x.reshape(2, 784), x.reshape(2, 784), info.relus)
    with pytest.raises(BadInput, match="lo > hi"):
        ibp(model, x + 0.1, x, info.relus)
    with pytest.raises(BadInput, match="not produced"):
        build_interval_model(model, ["no_such_tensor"])
