"""Interval bound propagation (IBP) compiled to an ONNX graph and run in onnxruntime.

Why a graph rather than a Python loop or torch: the interval of every tensor is a
fixed function of the input box, so it can be written once as ONNX (two inputs ``lo``
and ``hi``, two outputs per requested tensor) and run by the same optimised CPU
kernels that run the model, batched and multi-threaded, with no per-layer Python
overhead.  The session is derived once per (model content, requested tensors) and kept
with the model's handle (:mod:`graftonnx.model.handle`), so scoring that streams
thousands of images builds it once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ..errors import BadInput, UnsupportedModel
from ..model.handle import content_handle
from ..model.info import ReluSite, graph_inputs
from ..model.runtime import expose, session, with_dynamic_batch
from .base import BOUND_METHODS, SiteBounds
from .ibp_rules import IBP_RULES, IbpBuilder, Interval

__all__ = ["IntervalModel", "IntervalRunner", "build_interval_model", "interval_runner", "ibp"]

_MIN_OPSET = 13


@dataclass(frozen=True, eq=False)
class IntervalModel:
    """The interval graph: inputs ``lo``/``hi`` (dynamic batch), outputs named in ``outputs``.

    ``outputs[t] = (lower_output_name, upper_output_name)`` for each requested tensor ``t``;
    ``sample_shape`` is the per-sample input shape, ``shapes[t]`` each output's.
    """

    model: onnx.ModelProto
    outputs: dict[str, tuple[str, str]]
    sample_shape: tuple[int, ...]
    shapes: dict[str, tuple[int, ...]]


def _opset(model: onnx.ModelProto) -> int:
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), _MIN_OPSET)


def _needed(model: onnx.ModelProto, tensors: Sequence[str]) -> list[onnx.NodeProto]:
    """The nodes the requested tensors depend on, in graph (topological) order."""
    producer = {o: n for n in model.graph.node for o in n.output if o}
    keep: set[str] = set()
    stack = list(tensors)
    while stack:
        node = producer.get(stack.pop())
        if node is not None and node.name not in keep:
            keep.add(node.name)
            stack.extend(i for i in node.input if i)
    return [n for n in model.graph.node if n.name in keep]


def _check(model: onnx.ModelProto, nodes: list[onnx.NodeProto], tensors: Sequence[str]) -> None:
    known = {o for n in model.graph.node for o in n.output} | {i.name for i in graph_inputs(model)}
    for t in tensors:
        if t not in known:
            raise BadInput(f"tensor {t!r} is not produced by the model: request a Relu input (site.input)")
    used = {i for n in nodes for i in n.input} | set(tensors)
    for n in nodes:
        if n.domain not in ("", "ai.onnx") or n.op_type not in IBP_RULES:
            raise UnsupportedModel(f"node {n.name!r} uses op {n.op_type}, which has no interval rule; "
                                   f"supported: {', '.join(IBP_RULES.keys())}")
        extra = [o for o in n.output[1:] if o in used]
        if extra:
            raise UnsupportedModel(f"node {n.name!r} ({n.op_type}): its extra output {extra[0]!r} is used; "
                                   "interval bounds cover only the first output")


def _folder(opset: int, consts: dict[str, np.ndarray]) -> Callable[[onnx.NodeProto], np.ndarray]:
    """Evaluate a node whose inputs are all constants (Constant nodes, shape arithmetic)."""

    def fold(node: onnx.NodeProto) -> np.ndarray:
        g = helper.make_graph([node], "fold", [], [helper.make_tensor_value_info(node.output[0], 0, None)])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        return np.asarray(ReferenceEvaluator(m).run(None, {i: consts[i] for i in node.input if i})[0])

    return fold


def _fold_constants(model: onnx.ModelProto, nodes: list[onnx.NodeProto]) -> dict[str, np.ndarray]:
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    fold = _folder(_opset(model), consts)
    for n in nodes:
        if all(i in consts for i in n.input if i):
            consts[n.output[0]] = fold(n)
    return consts


def _sample_shapes(dyn: onnx.ModelProto, names: list[str]) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes of ``names``, from one run at batch 2, which also proves the batch axis is free.

    A model that only runs at batch 1 (e.g. it concatenates a batch-1 constant) is probed
    at batch 1: the interval graph broadcasts such constants itself.
    """
    inp = graph_inputs(dyn)[0]
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim][1:]
    shapes: dict[str, tuple[int, ...]] = {inp.name: tuple(int(d) for d in dims)}
    if not names:
        return shapes
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # a failed batch-2 probe is expected for batch-1-only models: no log line
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(expose(dyn, names).SerializeToString(), opts, providers=["CPUExecutionProvider"])
    for batch in (2, 1):
        try:
            outs = sess.run(names, {inp.name: np.zeros([batch, *dims], dtype=np.float32)})
            break
        except Exception as exc:
            if batch == 1:
                raise UnsupportedModel(f"model does not run on a zero input ({type(exc).__name__}): "
                                       "check it with onnxruntime") from None
    for n, o in zip(names, outs, strict=True):
        if o.ndim == 0 or o.shape[0] != batch:
            raise UnsupportedModel(f"tensor {n!r} has shape {o.shape} at batch {batch}: its first axis is not "
                                   "the batch axis, which interval bounds need")
        shapes[n] = tuple(int(s) for s in o.shape[1:])
    return shapes


def build_interval_model(model: onnx.ModelProto, tensors: Sequence[str]) -> IntervalModel:
    """Build the interval graph that bounds ``tensors`` of ``model`` over an input box."""
    dyn = with_dynamic_batch(model)
    inp = graph_inputs(dyn)[0]
    nodes = _needed(dyn, tensors)
    _check(dyn, nodes, tensors)
    consts = _fold_constants(dyn, nodes)
    variable = [o for n in nodes for o in n.output[:1] if o not in consts]
    shapes = _sample_shapes(dyn, variable)
    b = IbpBuilder(shapes, _folder(_opset(dyn), consts))
    values: dict[str, Interval | np.ndarray] = {**consts, inp.name: Interval(lo="lo", hi="hi")}
    for n in nodes:
        if n.output[0] in consts:
            continue
        ins = [values[i] if i else None for i in n.input]
        values[n.output[0]] = IBP_RULES.get(n.op_type)(b, n, ins)
    outputs: dict[str, tuple[str, str]] = {}
    graph_outs: dict[str, onnx.ValueInfoProto] = {}
    for t in dict.fromkeys(tensors):
        lo, hi = b.ends(values[t]) if isinstance(values[t], Interval) else (None, None)
        if lo is None:
            raise BadInput(f"tensor {t!r} is a constant of the model: it has no input-dependent bounds")
        if lo in ("lo", "hi") or lo == hi:  # graph inputs (or one tensor for both ends) need their own output
            lo, hi = b.emit("Identity", [lo], "lower"), b.emit("Identity", [hi], "upper")
        for nm in (lo, hi):  # internal tensors become outputs directly: no copies
            graph_outs[nm] = helper.make_tensor_value_info(nm, onnx.TensorProto.FLOAT, ["N", *shapes[t]])
        outputs[t] = (lo, hi)
    sample = shapes[inp.name]
    ins = [helper.make_tensor_value_info(nm, onnx.TensorProto.FLOAT, ["N", *sample]) for nm in ("lo", "hi")]
    graph = helper.make_graph(b.nodes, "ibp", ins, list(graph_outs.values()), b.inits)
    opset = max(_opset(dyn), _MIN_OPSET)
    imodel = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="graftonnx-ibp")
    imodel.ir_version = min(imodel.ir_version, 10)
    return IntervalModel(imodel, outputs, sample, {t: shapes[t] for t in outputs})


class IntervalRunner:
    """An onnxruntime session over an :class:`IntervalModel`; ``run(lo, hi)`` for one batch."""

    def __init__(self, imodel: IntervalModel, threads: int = 0) -> None:
        self.imodel = imodel
        self.sess: ort.InferenceSession = session(imodel.model, threads=threads)
        self._names = list(dict.fromkeys(nm for pair in imodel.outputs.values() for nm in pair))

    def _check_box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        want = self.imodel.sample_shape
        lo = np.ascontiguousarray(lo, dtype=np.float32)
        hi = np.ascontiguousarray(hi, dtype=np.float32)
        for nm, a in (("lo", lo), ("hi", hi)):
            if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != want:
                raise BadInput(f"input box {nm} has shape {a.shape}: expected (batch, {', '.join(map(str, want))}) "
                               "in the model's input layout")
        if lo.shape != hi.shape:
            raise BadInput(f"input box lo {lo.shape} and hi {hi.shape} differ in shape: give one box per image")
        if not (np.all(lo <= hi) and np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise BadInput("input box has lo > hi or non-finite values: check eps and the input range")
        return lo, hi

    def run(self, lo: np.ndarray, hi: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """``{tensor: (lower, upper)}`` over the boxes ``[lo, hi]`` (shape (B, *sample_shape))."""
        lo, hi = self._check_box(lo, hi)
        if len(lo) == 0:
            return {t: (np.zeros((0, *s), np.float32),) * 2 for t, s in self.imodel.shapes.items()}
        outs = dict(zip(self._names, self.sess.run(self._names, {"lo": lo, "hi": hi}), strict=True))
        return {t: (outs[a], outs[z]) for t, (a, z) in self.imodel.outputs.items()}


def interval_runner(model: onnx.ModelProto, tensors: Sequence[str]) -> IntervalRunner:
    """The runner for (model content, tensors), built once and kept with the model's handle."""
    h = content_handle(model)
    return h.derived(("interval", tuple(tensors)), lambda: IntervalRunner(build_interval_model(h.proto, tensors)))


@BOUND_METHODS.register("ibp")
def ibp(model: onnx.ModelProto, lo: np.ndarray, hi: np.ndarray, sites: Sequence[ReluSite]) -> dict[str, SiteBounds]:
    """IBP pre-activation bounds of ``sites`` for one batch of boxes: ``{site.name: SiteBounds}``."""
    runner = interval_runner(model, [s.input for s in sites])
    out = runner.run(lo, hi)
    return {s.name: SiteBounds(*out[s.input]) for s in sites}
