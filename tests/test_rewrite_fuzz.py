"""Hypothesis fuzz of the graft rewrite and the simplify passes on random small MLPs and CNNs.

Each example builds a random graph (Gemm/Conv/Relu/Add/Flatten, random shapes), a random
plan (random units, a, b and granularity, sometimes whole sites), grafts it, simplifies it
(remove + fold, with or without dropping channels, or the verifier-ready native form) and
checks both against an independent numpy float64
evaluation of the grafted network, ``y = keep·relu(z) + a·z + b`` at every Relu.
"""

from __future__ import annotations

import numpy as np
import onnx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from graftonnx.model import LINEAR_PRODUCERS, inspect_model
from graftonnx.model.graftmeta import read_grafts
from graftonnx.parity import assert_parity, ort_callable
from graftonnx.planning import GraftPlan, LayerPlan
from graftonnx.rewrite import apply_plan, layer_tensors
from graftonnx.rewrite.fold import simplify
from graftonnx.rewrite.native import native_form


def _conv_np(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[2]
    ho, wo = (xp.shape[2] - k) // stride + 1, (xp.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * stride:i * stride + k, j * stride:j * stride + k]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, w)
    return out + b[None, :, None, None]


class _Net:
    """Builds the ONNX graph and remembers each layer so numpy can replay it."""

    def __init__(self, draw, cnn: bool) -> None:
        self.nodes, self.inits, self.steps, self.rng = [], {}, [], np.random.default_rng(draw(st.integers(0, 9999)))
        self.cnn, self.k, self.t = cnn, 0, "x"
        if cnn:
            c, h = draw(st.integers(1, 3)), draw(st.integers(4, 7))
            self.in_shape, self.shape = (c, h, h), (c, h, h)
            for _ in range(draw(st.integers(1, 3))):
                self.conv(draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 2)),
                          draw(st.integers(0, 1)))
                if draw(st.booleans()):
                    self.add_const()
                self.relu()
            self.flatten()
        else:
            self.in_shape = self.shape = (draw(st.integers(1, 6)),)
        for _ in range(draw(st.integers(1 if cnn else 2, 3))):
            self.gemm(draw(st.integers(1, 6)))
            if draw(st.booleans()):
                self.add_const()
            self.relu()
        self.gemm(draw(st.integers(1, 4)))

    def _new(self, op: str, inputs: list[str], **attrs) -> str:
        self.k += 1
        out = f"t{self.k}"
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{op.lower()}{self.k}", **attrs))
        self.t = out
        return out

    def _w(self, *shape) -> str:
        name = f"w{len(self.inits)}"
        self.inits[name] = self.rng.normal(0, 0.6, size=shape)
        return name

    def conv(self, cout: int, k: int, stride: int, pad: int) -> None:
        c, h, _ = self.shape
        k = min(k, h + 2 * pad)
        w, b = self._w(cout, c, k, k), self._w(cout)
        self.steps.append(("conv", self.t, self._new("Conv", [self.t, w, b], kernel_shape=[k, k], strides=[stride] * 2,
                                                           pads=[pad] * 4), (w, b, stride, pad)))
        ho = (h + 2 * pad - k) // stride + 1
        self.shape = (cout, ho, ho)

    def gemm(self, m: int) -> None:
        w, b = self._w(m, self.shape[0]), self._w(m)
        self.steps.append(("gemm", self.t, self._new("Gemm", [self.t, w, b], transB=1), (w, b)))
        self.shape = (m,)

    def add_const(self) -> None:
        """An Add of a per-neuron constant: a Relu fed by Add, and a constant a fold must absorb."""
        c = self._w(*self.shape)
        self.steps.append(("addc", self.t, self._new("Add", [self.t, c]), (c,)))

    def relu(self) -> None:
        self.steps.append(("relu", self.t, self._new("Relu", [self.t]), ()))

    def flatten(self) -> None:
        self.steps.append(("flatten", self.t, self._new("Flatten", [self.t], axis=1), ()))
        self.shape = (int(np.prod(self.shape)),)

    def model(self) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                 [1, *self.in_shape])],
                              [helper.make_tensor_value_info(self.t, TensorProto.FLOAT, [1, *self.shape])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in self.inits.items()])
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])

    def numpy(self, x: np.ndarray, lines: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]) -> np.ndarray:
        vals = {"x": x.astype(np.float64)}
        p = {k: v.astype(np.float32).astype(np.float64) for k, v in self.inits.items()}
        for kind, src, out, args in self.steps:
            v = vals[src]
            if kind == "conv":
                vals[out] = _conv_np(v, p[args[0]], p[args[1]], args[2], args[3])
            elif kind == "gemm":
                vals[out] = v @ p[args[0]].T + p[args[1]]
            elif kind == "addc":
                vals[out] = v + p[args[0]][None]
            elif kind == "flatten":
                vals[out] = v.reshape(len(v), -1)
            else:
                name = next(n.name for n in self.nodes if n.output[0] == out)
                keep, a, b = lines.get(name, (np.ones(1), np.zeros(1), np.zeros(1)))
                vals[out] = keep * np.maximum(v, 0) + a * v + b
        return vals[self.t]


@st.composite
def _cases(draw):
    net = _Net(draw, draw(st.booleans()))
    model = net.model()
    info = inspect_model(model)
    layers = []
    for s in info.relus:
        gran = draw(st.sampled_from(["neuron", "channel"]))
        units = s.channels if gran == "channel" else s.size
        mode = draw(st.sampled_from(["none", "some", "all"]))
        idx = [] if mode == "none" else list(range(units)) if mode == "all" else \
            sorted(draw(st.sets(st.integers(0, units - 1), min_size=1, max_size=units)))
        if idx:
            ab = draw(st.lists(st.floats(-1.5, 1.5, width=32), min_size=2 * len(idx), max_size=2 * len(idx)))
            layers.append(LayerPlan(s.name, gran, tuple(idx), tuple(ab[::2]), tuple(ab[1::2])))
    return net, model, info, GraftPlan(tuple(layers))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases(), st.sampled_from(["fold", "drop", "native"]))
def test_graft_and_simplify_match_numpy(case, form):
    net, model, info, plan = case
    grafted = apply_plan(model, plan, info)
    onnx.checker.check_model(grafted, full_check=True)
    lines = {lp.site: layer_tensors(lp, info.site(lp.site)) for lp in plan.layers}
    x = np.random.default_rng(0).uniform(-1, 1, size=(16, *net.in_shape)).astype(np.float32)
    ref = net.numpy(x, lines)
    scale = max(1.0, float(np.abs(ref).max()))
    assert_parity(lambda _: ref, ort_callable(grafted), x, atol=1e-5 * scale)
    out, rep = native_form(grafted) if form == "native" else simplify(grafted, drop_channels=form == "drop")
    onnx.checker.check_model(out, full_check=True)
    assert_parity(lambda _: ref, ort_callable(out), x, atol=1e-5 * scale)
    producers = {o: n.op_type for n in out.graph.node for o in n.output}
    assert all(producers.get(n.input[0]) in LINEAR_PRODUCERS for n in out.graph.node if n.op_type == "Relu")
    assert rep.relu_neurons_after <= rep.relu_neurons_before
    assert form != "fold" or rep.params_after <= rep.params_before  # 0/1 selections and scatters add some
    read_grafts(out, check=True)
    if form == "native":  # grafted units left every Relu, except per-neuron grafts on a feature map
        left = {r.site for r in read_grafts(out)}
        expected = 0
        for site in info.relus:
            lp = plan.layer(site.name)
            if site.name in left:
                assert lp is not None and lp.granularity == "neuron" and len(site.shape) > 1, site.name
            if lp is None or site.name in left:
                expected += site.size
            else:
                expected += int(np.broadcast_to(layer_tensors(lp, site)[0], site.shape).sum())
        assert rep.relu_neurons_after == expected
