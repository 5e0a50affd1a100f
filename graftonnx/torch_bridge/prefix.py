"""Split a graph's input prefix (normalisation, layout changes) off for bounding.

Why: the elementwise ops between the raw input and the first real layer (``x − mean``,
``÷ std``, a Transpose, a Flatten) map an input box to another box *exactly*, so a bound
method can push the box through them itself and bound only the rest of the graph.
That is both tighter-or-equal and more robust: auto_LiRPA's patches mode mis-handles
per-channel constants in front of a Conv (silently unsound bounds in 0.6.0).
"""

from __future__ import annotations

import copy
from collections import Counter

import onnx
from onnx import helper

from ..model.info import graph_inputs

__all__ = ["PREFIX_OPS", "input_prefix", "strip_prefix"]

#: Ops that may form the prefix: monotone per element (with a constant) or pure layout.
PREFIX_OPS = frozenset({"Sub", "Add", "Mul", "Div", "Transpose", "Reshape", "Flatten", "Identity"})


def input_prefix(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], str]:
    """The prefix nodes and the tensor they produce (the input itself when there is none).

    A node joins the prefix when it reads only the current tensor plus constants, the
    current tensor has no other reader, and (for Div and Sub-from-constant) the op is
    monotone in it: ``c / x`` is not, so Div needs the tensor as numerator.
    """
    consts = {t.name for t in model.graph.initializer}
    consts |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    readers = Counter(i for n in model.graph.node for i in n.input)
    current = graph_inputs(model)[0].name
    nodes: list[onnx.NodeProto] = []
    outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        if current not in node.input or readers[current] != 1 or current in outputs:
            break
        others = [i for i in node.input if i != current]
        shape_op = node.op_type in ("Transpose", "Reshape", "Flatten", "Identity")
        if node.op_type not in PREFIX_OPS or not all(i in consts for i in others):
            break
        if not shape_op and (len(node.input) != 2 or (node.op_type == "Div" and node.input[0] != current)):
            break
        nodes.append(node)
        current = node.output[0]
    return nodes, current


def strip_prefix(model: onnx.ModelProto, prefix: list[onnx.NodeProto], new_input: str,
                 sample_shape: tuple[int, ...]) -> onnx.ModelProto:
    """A copy of ``model`` without ``prefix``, whose input is the tensor ``new_input``."""
    if not prefix:
        return model
    m = copy.deepcopy(model)
    drop = {id(n) for n in prefix}
    keep_nodes = [n for n, orig in zip(m.graph.node, model.graph.node, strict=True) if id(orig) not in drop]
    del m.graph.node[:]
    m.graph.node.extend(keep_nodes)
    old = graph_inputs(m)[0]
    m.graph.input.remove(old)
    m.graph.input.insert(0, helper.make_tensor_value_info(new_input, onnx.TensorProto.FLOAT, [1, *sample_shape]))
    del m.graph.value_info[:]
    return m
