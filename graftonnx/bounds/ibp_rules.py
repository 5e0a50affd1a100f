"""Interval rules: how each ONNX op maps an interval to an interval, as ONNX nodes.

Why a rule per op: the interval graph is built by walking the source graph once and
asking the rule of each node to emit the nodes that bound its output.  A registry
keyed by op type (checked against ``SUPPORTED_OPS`` by the tests) keeps the IBP builder
and the model contract in step.

Why two forms: an interval tensor is carried either as its ends ``(lo, hi)`` (what
monotone ops such as Relu need) or as centre–radius ``(mid, rad)`` (what linear ops
need: ``mid' = W·mid + b``, ``rad' = |W|·rad``).  A value holds whichever forms were
made, and a conversion is emitted once, only when a consumer asks for the other form.
A linear op fed with ends uses ``s = lo + hi`` and ``d = hi - lo`` with halved weights,
which saves the two multiplications by 0.5 of an explicit conversion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UnsupportedModel
from ..registry import Registry

__all__ = ["Interval", "IbpBuilder", "IbpRule", "IBP_RULES", "Value"]


@dataclass
class Interval:
    """Names of the graph tensors that carry one interval; at least one full form is set."""

    lo: str | None = None
    hi: str | None = None
    mid: str | None = None
    rad: str | None = None

    @property
    def has_ends(self) -> bool:
        return self.lo is not None

    @property
    def has_centre(self) -> bool:
        return self.mid is not None


Value = Interval | np.ndarray


class IbpBuilder:
    """Accumulates the nodes and initialisers of the interval graph; shared by all rules."""

    def __init__(self, shapes: dict[str, tuple[int, ...]], fold: Callable[[onnx.NodeProto], np.ndarray]) -> None:
        self.out_shapes = shapes  # per-sample shapes (batch axis dropped) of the source tensors
        self.fold = fold
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"ibp{self._count}_{hint}"

    def emit(self, op: str, inputs: list[str], hint: str, **attrs: object) -> str:
        """Append one single-output node; returns its output name."""
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def const(self, value: np.ndarray, hint: str, dtype: type = np.float32) -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def ends(self, iv: Interval) -> tuple[str, str]:
        """``(lo, hi)`` of ``iv``, emitting ``mid ∓ rad`` once if only the centre form exists."""
        if iv.lo is None or iv.hi is None:
            assert iv.mid is not None and iv.rad is not None
            iv.lo = self.emit("Sub", [iv.mid, iv.rad], "lo")
            iv.hi = self.emit("Add", [iv.mid, iv.rad], "hi")
        return iv.lo, iv.hi

    def centre(self, iv: Interval) -> tuple[str, str]:
        """``(mid, rad)`` of ``iv``, emitting the conversion once if needed."""
        if iv.mid is None or iv.rad is None:
            s, d, _ = self.linear_input(iv)
            half = self.const(np.float32(0.5), "half")
            iv.mid = self.emit("Mul", [s, half], "mid")
            iv.rad = self.emit("Mul", [d, half], "rad")
        return iv.mid, iv.rad

    def linear_input(self, iv: Interval) -> tuple[str, str, float]:
        """``(m, r, k)`` with mid = k·m and rad = k·r: the cheapest feed for a linear op."""
        if iv.mid is not None and iv.rad is not None:
            return iv.mid, iv.rad, 1.0
        lo, hi = self.ends(iv)
        return self.emit("Add", [lo, hi], "sum"), self.emit("Sub", [hi, lo], "diff"), 0.5

    def rank(self, tensor: str) -> int:
        """Rank of a source tensor including the batch axis."""
        return len(self.out_shapes[tensor]) + 1


IbpRule = Callable[[IbpBuilder, onnx.NodeProto, list], Value]

#: One rule per op type: ``rule(builder, node, inputs) -> output value`` (inputs: Interval,
#: ndarray for constants, or None for an absent optional input).
IBP_RULES: Registry[IbpRule] = Registry("interval rule")


def _attrs(node: onnx.NodeProto) -> dict[str, object]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _unsupported(node: onnx.NodeProto, why: str) -> UnsupportedModel:
    return UnsupportedModel(f"node {node.name!r} ({node.op_type}): {why}; interval bounds cannot be computed")


def _split(node: onnx.NodeProto, ins: list) -> tuple[Interval, np.ndarray | None, bool]:
    """The interval operand, the constant operand and whether the constant came first."""
    ivs = [v for v in ins if isinstance(v, Interval)]
    if len(ivs) != 1:
        raise _unsupported(node, "expected exactly one variable operand")
    other = next((v for v in ins if isinstance(v, np.ndarray)), None)
    return ivs[0], other, isinstance(ins[0], np.ndarray)


#: Monotone ops that are not linear: they need the ends, never the centre–radius form.
_NONLINEAR_MONOTONE = ("Relu", "MaxPool", "Sigmoid", "Tanh")


def _each(b: IbpBuilder, iv: Interval, op: str, extra: list[str], **attrs: object) -> Interval:
    """Apply a monotone (or shape) op to one stored form of ``iv``; both ends, or mid and rad."""
    if iv.has_ends or op in _NONLINEAR_MONOTONE:
        lo, hi = b.ends(iv)
        return Interval(lo=b.emit(op, [lo, *extra], "lo", **attrs), hi=b.emit(op, [hi, *extra], "hi", **attrs))
    mid, rad = b.centre(iv)
    return Interval(mid=b.emit(op, [mid, *extra], "mid", **attrs), rad=b.emit(op, [rad, *extra], "rad", **attrs))


def _scale(b: IbpBuilder, iv: Interval, c: np.ndarray, op: str = "Mul") -> Interval:
    """``iv * c`` (or ``iv / c``) for a constant ``c``, sign-aware."""
    c = np.asarray(c, dtype=np.float32)
    if not iv.has_centre and (np.all(c >= 0) or np.all(c <= 0)):
        lo, hi = b.ends(iv)
        k = b.const(c, "k")
        a, z = b.emit(op, [lo, k], "lo"), b.emit(op, [hi, k], "hi")
        return Interval(lo=a, hi=z) if np.all(c >= 0) else Interval(lo=z, hi=a)
    m, r, k = b.linear_input(iv)
    cm = c * k if op == "Mul" else c / k
    return Interval(mid=b.emit(op, [m, b.const(cm, "k")], "mid"),
                    rad=b.emit(op, [r, b.const(np.abs(cm), "absk")], "rad"))


def _shift(b: IbpBuilder, iv: Interval, c: np.ndarray, op: str = "Add", const_first: bool = False) -> Interval:
    """``iv + c``, ``iv - c`` or ``c - iv`` for a constant ``c``."""
    k = b.const(c, "c")
    if const_first:  # c - iv
        if iv.has_centre:
            return Interval(mid=b.emit("Sub", [k, iv.mid], "mid"), rad=iv.rad)
        lo, hi = b.ends(iv)
        return Interval(lo=b.emit("Sub", [k, hi], "lo"), hi=b.emit("Sub", [k, lo], "hi"))
    if iv.has_ends:
        return Interval(lo=b.emit(op, [iv.lo, k], "lo"), hi=b.emit(op, [iv.hi, k], "hi"))
    return Interval(mid=b.emit(op, [iv.mid, k], "mid"), rad=iv.rad)


@IBP_RULES.register("Constant")
def _constant(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    return b.fold(node)


@IBP_RULES.register("Identity", "Dropout")
def _identity(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    # Dropout is the identity at inference; its optional mask output is rejected by the walker.
    return ins[0]


@IBP_RULES.register("Relu", "MaxPool", "Sigmoid", "Tanh")
def _monotone(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    # Non-decreasing elementwise (MaxPool: per window), so [f(lo), f(hi)] bounds f over the box.
    iv, _, _ = _split(node, ins[:1])
    return _each(b, iv, node.op_type, [], **_attrs(node))


@IBP_RULES.register("AveragePool")
def _avgpool(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    # A positive linear map: apply it to both ends, or to mid and rad alike.
    iv, _, _ = _split(node, ins[:1])
    return _each(b, iv, node.op_type, [], **_attrs(node))


@IBP_RULES.register("Flatten", "Reshape", "Squeeze", "Unsqueeze")
def _reshape(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    # Every reshaping op becomes Reshape to (-1, *sample shape): a hard-coded batch of 1 disappears.
    iv, _, _ = _split(node, ins[:1])
    shape = b.const(np.asarray([-1, *b.out_shapes[node.output[0]]]), "shape", np.int64)
    return _each(b, iv, "Reshape", [shape])


@IBP_RULES.register("Transpose")
def _transpose(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    iv, _, _ = _split(node, ins[:1])
    perm = list(_attrs(node).get("perm", range(b.rank(node.input[0]))[::-1]))
    if perm[0] != 0:
        raise _unsupported(node, f"perm {perm} moves the batch axis")
    return _each(b, iv, "Transpose", [], perm=perm)


@IBP_RULES.register("Neg")
def _neg(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    iv, _, _ = _split(node, ins[:1])
    if iv.has_centre:
        return Interval(mid=b.emit("Neg", [iv.mid], "mid"), rad=iv.rad)
    lo, hi = b.ends(iv)
    return Interval(lo=b.emit("Neg", [hi], "lo"), hi=b.emit("Neg", [lo], "hi"))


@IBP_RULES.register("Add", "Sub")
def _add_sub(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    op = node.op_type
    if all(isinstance(v, Interval) for v in ins):
        x, y = ins
        if x.has_centre and y.has_centre:  # centres combine, radii always add
            return Interval(mid=b.emit(op, [x.mid, y.mid], "mid"), rad=b.emit("Add", [x.rad, y.rad], "rad"))
        (xl, xh), (yl, yh) = b.ends(x), b.ends(y)
        if op == "Add":
            return Interval(lo=b.emit("Add", [xl, yl], "lo"), hi=b.emit("Add", [xh, yh], "hi"))
        return Interval(lo=b.emit("Sub", [xl, yh], "lo"), hi=b.emit("Sub", [xh, yl], "hi"))
    iv, c, first = _split(node, ins)
    return _shift(b, iv, c, op, const_first=first and op == "Sub")


@IBP_RULES.register("Mul")
def _mul(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    iv, c, _ = _split(node, ins)
    return _scale(b, iv, c, "Mul")


@IBP_RULES.register("Div")
def _div(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    iv, c, first = _split(node, ins)
    if first:
        raise _unsupported(node, "a constant divided by a variable is not linear")
    if np.any(np.asarray(c) == 0):
        raise _unsupported(node, "division by a constant containing zeros")
    return _scale(b, iv, c, "Div")


@IBP_RULES.register("BatchNormalization")
def _batchnorm(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    iv = ins[0]
    if not isinstance(iv, Interval) or not all(isinstance(v, np.ndarray) for v in ins[1:5]):
        raise _unsupported(node, "scale, bias, mean and variance must be constants")
    scale, bias, mean, var = (np.asarray(v, dtype=np.float64) for v in ins[1:5])
    a = scale / np.sqrt(var + float(_attrs(node).get("epsilon", 1e-5)))
    shape = (-1,) + (1,) * (b.rank(node.input[0]) - 2)
    out = _scale(b, iv, a.reshape(shape).astype(np.float32))
    return _shift(b, out, (bias - mean * a).reshape(shape).astype(np.float32))


@IBP_RULES.register("Conv")
def _conv(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    x, w, bias = (ins + [None])[:3]
    if not isinstance(x, Interval) or not isinstance(w, np.ndarray) or isinstance(bias, Interval):
        raise _unsupported(node, "weights and bias must be constants")
    m, r, k = b.linear_input(x)
    attrs = _attrs(node)
    mid_in = [m, b.const(w * k, "W")] + ([b.const(bias, "B")] if bias is not None else [])
    return Interval(mid=b.emit("Conv", mid_in, "mid", **attrs),
                    rad=b.emit("Conv", [r, b.const(np.abs(w) * k, "absW")], "rad", **attrs))


@IBP_RULES.register("Gemm")
def _gemm(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    x, w, c = (ins + [None])[:3]
    at = _attrs(node)
    if not isinstance(x, Interval) or not isinstance(w, np.ndarray) or isinstance(c, Interval):
        raise _unsupported(node, "only variable·constant products with a constant bias can be bounded")
    if at.get("transA", 0):
        raise _unsupported(node, "transA on the variable operand would transpose the batch axis")
    w = np.asarray(w, dtype=np.float64)
    w = (w.T if at.get("transB", 0) else w) * float(at.get("alpha", 1.0))
    m, r, k = b.linear_input(x)
    mid_in = [m, b.const(w * k, "W")]
    if c is not None:
        mid_in.append(b.const(np.asarray(c, dtype=np.float64) * float(at.get("beta", 1.0)), "C"))
    return Interval(mid=b.emit("Gemm", mid_in, "mid"), rad=b.emit("Gemm", [r, b.const(np.abs(w) * k, "absW")], "rad"))


@IBP_RULES.register("MatMul")
def _matmul(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    iv, w, first = _split(node, ins)
    m, r, k = b.linear_input(iv)
    wk, aw = b.const(w * k, "W"), b.const(np.abs(w) * k, "absW")
    if first:
        return Interval(mid=b.emit("MatMul", [wk, m], "mid"), rad=b.emit("MatMul", [aw, r], "rad"))
    return Interval(mid=b.emit("MatMul", [m, wk], "mid"), rad=b.emit("MatMul", [r, aw], "rad"))


@IBP_RULES.register("Concat")
def _concat(b: IbpBuilder, node: onnx.NodeProto, ins: list) -> Value:
    axis = int(_attrs(node)["axis"]) % b.rank(node.output[0])
    if axis == 0:
        raise _unsupported(node, "concatenation along the batch axis")
    ivs = [v for v in ins if isinstance(v, Interval)]
    like = b.ends(ivs[0])[0] if not all(v.has_centre for v in ivs) else ivs[0].mid
    parts = [v if isinstance(v, Interval) else _batched(b, v, like) for v in ins]
    if all(v.has_centre for v in parts):
        return Interval(mid=b.emit("Concat", [v.mid for v in parts], "mid", axis=axis),
                        rad=b.emit("Concat", [v.rad for v in parts], "rad", axis=axis))
    ends = [b.ends(v) for v in parts]
    return Interval(lo=b.emit("Concat", [e[0] for e in ends], "lo", axis=axis),
                    hi=b.emit("Concat", [e[1] for e in ends], "hi", axis=axis))


def _batched(b: IbpBuilder, c: np.ndarray, like: str) -> Interval:
    """A constant as a point interval with the batch size of ``like`` (Concat needs equal batches)."""
    first = b.emit("Slice", [b.emit("Shape", [like], "shape"), b.const(np.array([0]), "s0", np.int64),
                             b.const(np.array([1]), "s1", np.int64)], "batch")
    shape = b.emit("Concat", [first, b.const(np.asarray(c.shape[1:]), "sample", np.int64)], "shape", axis=0)
    point = b.emit("Expand", [b.const(c, "c"), shape], "point")
    zero = b.emit("Expand", [b.const(np.zeros_like(c), "z"), shape], "zero")
    return Interval(lo=point, hi=point, mid=point, rad=zero)
