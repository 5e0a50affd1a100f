"""Load and validate an ONNX classifier, with errors a user can act on."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from ..errors import BadInput

__all__ = ["load_model", "name_nodes", "model_bytes"]


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
    return name_nodes(model)


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
