"""One handle per model: the validated proto, its ModelInfo and its onnxruntime runner, built once.

Why: a single ``graftonnx graft`` used to inspect the model (and open an onnxruntime
session) five times, and ``api.load(proto)`` renamed nodes in the caller's proto.  A
:class:`ModelHandle` is made once per model — from a path (cached per process by path,
size and mtime, so a rewritten file is reloaded) or from a proto (copied first: the
caller's object is never touched) — and every stage reads the same proto, the same info
and the same runner from it.  Callers must treat ``handle.proto`` as read-only.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import onnx

from .info import ModelInfo, inspect_model
from .loader import load_model, name_nodes
from .runtime import OrtRunner

__all__ = ["ModelHandle", "open_model", "ModelLike"]

_CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, int, int], ModelHandle] = OrderedDict()


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """A loaded model: ``proto`` (read-only), and its ``info`` and onnxruntime ``runner``, each built on first use."""

    proto: onnx.ModelProto
    name: str

    @cached_property
    def info(self) -> ModelInfo:
        return inspect_model(self.proto)

    @cached_property
    def runner(self) -> OrtRunner:
        return OrtRunner(self.proto)

    @classmethod
    def of(cls, proto: onnx.ModelProto, name: str = "") -> ModelHandle:
        """A handle on a *copy* of ``proto`` with its nodes named."""
        copy = onnx.ModelProto()
        copy.CopyFrom(proto)
        named = name_nodes(copy)
        return cls(named, name or proto.graph.name or "model")


ModelLike = str | os.PathLike[str] | onnx.ModelProto | ModelHandle


def open_model(model: ModelLike) -> ModelHandle:
    """The handle of ``model`` (a path is loaded, checked and inspected once per process)."""
    if isinstance(model, ModelHandle):
        return model
    if isinstance(model, onnx.ModelProto):
        return ModelHandle.of(model)
    p = Path(model)
    try:
        st = p.stat()
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    proto = load_model(p)  # BadInput for a missing or invalid file
    handle = ModelHandle(proto, str(model))
    if key is not None:
        _cache[key] = handle
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return handle
