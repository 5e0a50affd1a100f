"""Load and validate an ONNX classifier, with errors a user can act on."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import BadInput

__all__ = ["load_model", "name_nodes", "model_bytes", "nonfinite_weights", "check_finite_weights"]

_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                onnx.TensorProto.BFLOAT16}


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Read ``path``, check it is a complete ONNX model and give every node a unique name.

    Node names are how graft plans address ReLU sites, so unnamed nodes get a stable
    name (``<op>_<index>``) here, once, for every later stage.
    """
    p = Path(path)
    if not p.exists():
        raise BadInput(f"model file {p} not found: check the path")
    if p.is_dir():
        raise BadInput(f"model path {p} is a directory: give an .onnx file")
    try:
        model = onnx.load(str(p), load_external_data=True)
    except FileNotFoundError as exc:
        raise BadInput(f"model {p} refers to external data that is missing ({exc.filename}): "
                       "keep the .data file next to the .onnx file") from None
    except Exception as exc:  # protobuf raises DecodeError and friends
        text = str(exc)
        if "should be stored in" in text:  # onnx's ValidationError for missing external data
            missing = text.split("should be stored in", 1)[1].split(",")[0].strip()
            raise BadInput(f"model {p} refers to external data that is missing ({missing}): "
                           "keep the data file next to the .onnx file") from None
        raise BadInput(f"model {p} is not a readable ONNX file ({type(exc).__name__}): "
                       "check it is not truncated or another format") from None
    if not model.graph.node:
        raise BadInput(f"model {p} has an empty graph (no nodes): is it truncated or not an ONNX model?")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"model {p} fails onnx.checker: {first}") from None
    bad = nonfinite_weights(model)
    if bad:
        warnings.warn(_nonfinite_text(bad, str(p)), stacklevel=2)
    return name_nodes(model)


def nonfinite_weights(model: onnx.ModelProto) -> list[tuple[str, int]]:
    """``(what, count of NaN/Inf values)`` for every float initializer (or Constant node) that has any.

    Why at load time: a NaN weight makes every bound, accuracy and verdict downstream
    meaningless, and nothing else in the pipeline would point at the weight itself.
    One pass of ``numpy_helper.to_array`` over the float initialisers: cheap next to loading.
    """
    tensors = [(f"initializer {t.name!r}", t) for t in model.graph.initializer]
    tensors += [(f"Constant node {n.name or n.output[0]!r}", a.t) for n in model.graph.node if n.op_type == "Constant"
                for a in n.attribute if a.name == "value"]
    out = []
    for name, t in tensors:
        if t.data_type in _FLOAT_TYPES:
            with np.errstate(over="ignore", invalid="ignore"):  # a double beyond float32 counts as Inf
                arr = numpy_helper.to_array(t).astype(np.float32, copy=False)
            n = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if n:
                out.append((name, n))
    return out


def _nonfinite_text(bad: list[tuple[str, int]], where: str) -> str:
    name, n = bad[0]
    more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
    return f"model {where}: {name} has {n} NaN/Inf value(s){more}"


def check_finite_weights(model: onnx.ModelProto, where: str) -> None:
    """BadInput (exit 2) when ``model`` has NaN/Inf weights: for commands whose result would be meaningless."""
    bad = nonfinite_weights(model)
    if bad:
        raise BadInput(f"{_nonfinite_text(bad, where)}: fix or retrain the model before grafting or exporting it")


def name_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give unnamed or duplicate-named nodes a unique name, in place; returns ``model``."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        name = node.name
        if not name or name in seen:
            name = f"{node.op_type}_{i}"
            while name in seen:
                name += "_"
            node.name = name
        seen.add(name)
    return model


def model_bytes(model: onnx.ModelProto) -> bytes:
    """Serialise a model (used for atomic writes and for onnxruntime sessions)."""
    return model.SerializeToString()
