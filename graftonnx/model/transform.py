"""Small whole-graph transforms (pure ONNX, so any stage may use them) on a *copy* of the model."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .info import graph_inputs

__all__ = ["prepend_normalisation", "strip_prefix"]


def prepend_normalisation(model: onnx.ModelProto, mean: Sequence[float] | None, std: Sequence[float] | None,
                          channel_axis: int = 0) -> onnx.ModelProto:
    """A copy of ``model`` that takes raw pixels and applies ``(x - mean) / std`` itself.

    Why: the ε-ball and the valid range [lo, hi] are defined on raw pixels, so bounds,
    attacks and exported benchmarks must see the normalisation inside the graph.
    ``channel_axis`` is the per-sample axis the mean/std vary along (0 for CHW inputs,
    the last for HWC).  The input keeps its name; the old input becomes internal.
    """
    if mean is None and std is None:
        return model
    m = copy.deepcopy(model)
    inp = graph_inputs(m)[0]
    rank = len(inp.type.tensor_type.shape.dim) - 1
    axis = channel_axis % rank

    def const(vals: Sequence[float] | None, default: float) -> np.ndarray:
        arr = np.asarray(vals if vals is not None else [default], dtype=np.float32).ravel()
        shape = [1] * (rank + 1)
        shape[axis + 1] = arr.size
        return arr.reshape(shape) if arr.size > 1 else arr.reshape([1] * (rank + 1))

    raw = inp.name
    inner = raw + "__normalised"
    for node in m.graph.node:
        for i, name in enumerate(node.input):
            if name == raw:
                node.input[i] = inner
    centred = raw + "__centred"
    m.graph.initializer.extend([numpy_helper.from_array(const(mean, 0.0), raw + "__mean"),
                                numpy_helper.from_array(const(std, 1.0), raw + "__std")])
    nodes = [helper.make_node("Sub", [raw, raw + "__mean"], [centred], name=raw + "__sub_mean"),
             helper.make_node("Div", [centred, raw + "__std"], [inner], name=raw + "__div_std")]
    for n in reversed(nodes):
        m.graph.node.insert(0, n)
    return m


def strip_prefix(model: onnx.ModelProto, prefix: list[onnx.NodeProto], new_input: str,
                 sample_shape: tuple[int, ...]) -> onnx.ModelProto:
    """A copy of ``model`` without ``prefix``, whose input is the tensor ``new_input``.

    ``prefix, new_input = input_prefix(model)``.  Why: a bound method can push the box
    through the prefix exactly and bound only the rest, which is tighter-or-equal and
    safer: auto_LiRPA 0.6.0's patches mode mis-handles per-channel constants in front of a
    Conv (silently unsound bounds).
    """
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
