"""One handle per model: the validated proto, its ModelInfo, its onnxruntime runner and every derived object.

Why: a single ``graftonnx graft`` used to inspect the model (and open an onnxruntime
session) five times, and ``api.load(proto)`` renamed nodes in the caller's proto.  A
:class:`ModelHandle` is made once per model — from a path (cached per process by path,
size and mtime, so a rewritten file is reloaded) or from a proto (copied first: the
caller's object is never touched) — and every stage reads the same proto, the same info
and the same runner from it.  Callers must treat ``handle.proto`` as read-only.

Why one cache: interval sessions, auto_LiRPA modules and the verifiers' objects had four
caches with four keys.  Now each is :meth:`ModelHandle.derived`, memoised on the handle
under a key naming all it depends on (options included): one LRU of handles bounds them
all, and evicting a handle drops what was derived from it.  Derived objects are shared:
never mutate one.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import onnx

from .info import ModelInfo, inspect_model
from .loader import load_model, name_nodes
from .runtime import OrtRunner

__all__ = ["ModelHandle", "open_model", "content_handle", "ModelLike"]

_CACHE_SIZE = 8  # handles kept per process
_DERIVED_SIZE = 8  # derived objects kept per handle
_cache: OrderedDict[tuple[object, ...], ModelHandle] = OrderedDict()
_lock = threading.Lock()
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class ModelHandle:
    """A loaded model: ``proto`` (read-only), and its ``info`` and onnxruntime ``runner``, each built on first use."""

    proto: onnx.ModelProto
    name: str
    _derived: OrderedDict[Hashable, Any] = field(default_factory=OrderedDict, init=False, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)

    def derived(self, key: Hashable, make: Callable[[], T]) -> T:
        """``make()`` built once per handle and ``key`` (LRU of :data:`_DERIVED_SIZE`); shared, so read-only.

        ``key`` must name everything the object depends on besides the model (e.g. its
        options); ``make`` builds from ``self.proto`` and may itself ask for derived objects.
        """
        with self._lock:
            if key not in self._derived:
                self._derived[key] = make()
                while len(self._derived) > _DERIVED_SIZE:
                    self._derived.popitem(last=False)
            self._derived.move_to_end(key)
            return self._derived[key]

    @cached_property
    def info(self) -> ModelInfo:
        return inspect_model(self.proto)

    @cached_property
    def runner(self) -> OrtRunner:
        return OrtRunner(self.proto)

    @classmethod
    def of(cls, proto: onnx.ModelProto, name: str = "") -> ModelHandle:
        """A handle on a *copy* of ``proto`` with its nodes named."""
        return cls(name_nodes(_copy(proto)), name or proto.graph.name or "model")


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
    except OSError:
        return ModelHandle(load_model(p), str(model))  # BadInput for a missing or invalid file
    return _cached((str(p.resolve()), st.st_size, st.st_mtime_ns), lambda: ModelHandle(load_model(p), str(model)))


def content_handle(proto: onnx.ModelProto) -> ModelHandle:
    """The cached handle of ``proto``'s exact content (nodes not renamed), keyed by its sha256.

    Why a second key: bound methods are given protos, not files (graft candidates are
    never written), so the model's bytes are the only identity there is; the handle
    holds a copy, so a caller that changes its proto later gets a new handle.
    """
    key = ("sha256", hashlib.sha256(proto.SerializeToString()).hexdigest())  # sha256: hardware-accelerated
    return _cached(key, lambda: ModelHandle(_copy(proto), proto.graph.name or "model"))


def _copy(proto: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    return copy


def _cached(key: tuple[object, ...], make: Callable[[], ModelHandle]) -> ModelHandle:
    with _lock:
        handle = _cache.get(key)
        if handle is not None:
            _cache.move_to_end(key)
            return handle
    handle = make()  # outside the lock: loading one model does not stall the others
    with _lock:
        handle = _cache.setdefault(key, handle)
        _cache.move_to_end(key)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return handle
