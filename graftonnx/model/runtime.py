"""Running ONNX models in onnxruntime, batched, with intermediate tensors exposed.

Why this exists: the shared VNN-COMP nets fix their batch axis to 1, but scoring runs
thousands of images.  :func:`with_dynamic_batch` makes the batch axis symbolic on a
copy of the graph (the model written to disk keeps its original shapes), and
:class:`OrtRunner` runs that copy in mini-batches, returning any intermediate tensors
asked for (e.g. every Relu's pre-activation).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from ..errors import BadInput, GraftError, GraftFailure
from .info import graph_inputs

__all__ = ["with_dynamic_batch", "expose", "OrtRunner", "tensor_shapes", "session"]

BATCH = "N"


def _set_batch(vi: onnx.ValueInfoProto) -> None:
    dims = vi.type.tensor_type.shape.dim
    if len(dims):
        dims[0].Clear()
        dims[0].dim_param = BATCH


def with_dynamic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose input/output batch axis is symbolic.

    Reshape targets that hard-code the batch as 1 get -1 instead, and stale
    ``value_info`` entries are dropped (onnxruntime re-infers them).
    """
    m = copy.deepcopy(model)
    for vi in list(graph_inputs(m)) + list(m.graph.output):
        _set_batch(vi)
    del m.graph.value_info[:]
    shape_consts = {n.input[1] for n in m.graph.node if n.op_type == "Reshape" and len(n.input) > 1}
    for init in m.graph.initializer:
        if init.name in shape_consts:
            arr = numpy_helper.to_array(init)
            if arr.ndim == 1 and arr.size >= 2 and arr[0] == 1 and -1 not in arr:
                arr = arr.copy()
                arr[0] = -1
                init.CopyFrom(numpy_helper.from_array(arr, init.name))
    for node in m.graph.node:
        if node.op_type == "Constant" and node.output[0] in shape_consts:
            attr = next(a for a in node.attribute if a.name == "value")
            arr = numpy_helper.to_array(attr.t)
            if arr.ndim == 1 and arr.size >= 2 and arr[0] == 1 and -1 not in arr:
                arr = arr.copy()
                arr[0] = -1
                attr.t.CopyFrom(numpy_helper.from_array(arr))
    return m


def expose(model: onnx.ModelProto, names: Iterable[str]) -> onnx.ModelProto:
    """A copy of ``model`` with the tensors ``names`` added as graph outputs (float, shape free)."""
    m = copy.deepcopy(model)
    have = {o.name for o in m.graph.output}
    for name in names:
        if name not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
            have.add(name)
    return m


def session(model: onnx.ModelProto, threads: int = 0) -> ort.InferenceSession:
    """An onnxruntime CPU session; ``threads=0``: the shared count (:func:`graftonnx.threads.current_threads`).

    Why not onnxruntime's own choice: it sizes the pool from the machine's cores, ignoring
    affinity, cgroup quota and sibling worker processes, and oversubscribes a busy machine.
    """
    from ..threads import current_threads

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads or current_threads()
    try:
        return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's pybind errors (Fail, InvalidGraph, ...) share no public base
        raise _session_error(model, exc) from None


def _session_error(model: onnx.ModelProto, exc: Exception) -> GraftError:
    """One line for a model onnxruntime refuses to load.

    Why: an opset newer than the installed onnxruntime passes onnx.checker but used to end
    in a C++ traceback; it is the user's file, so it is a BadInput saying what to do.  Any
    other refusal is reported on one line too, as a failure (exit 1): it may be ours.
    """
    text = str(exc)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if "opset" in text.lower():
        found = re.search(r"till opset (\d+)", text)  # "Current official support for domain ai.onnx is till opset 28"
        top = f"up to opset {found.group(1)}" if found else "only older opsets"
        return BadInput(f"model opset {opset} (ai.onnx) is not supported by onnxruntime {ort.__version__} "
                        f"({top}): convert the model to a supported opset, e.g. with "
                        "onnx.version_converter.convert_version, or re-export it")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return GraftFailure(f"onnxruntime cannot load the model (opset {opset}): {first[:300]}")


class OrtRunner:
    """Run a model in mini-batches, returning the graph outputs plus ``extra`` tensors."""

    def __init__(self, model: onnx.ModelProto, extra: Sequence[str] = (), batch_size: int = 256) -> None:
        self.extra = list(extra)
        dyn = with_dynamic_batch(model)
        self.output_names = [o.name for o in dyn.graph.output]
        self.sess = session(expose(dyn, self.extra))
        self.input_name = graph_inputs(dyn)[0].name
        self.batch_size = batch_size

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """All outputs and extras for the whole of ``x`` (concatenated over mini-batches)."""
        names = self.output_names + [e for e in self.extra if e not in self.output_names]
        parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
        x = np.ascontiguousarray(x, dtype=np.float32)
        for start in range(0, len(x), self.batch_size):
            outs = self.sess.run(names, {self.input_name: x[start:start + self.batch_size]})
            for n, o in zip(names, outs, strict=True):
                parts[n].append(o)
        return {n: np.concatenate(v, axis=0) for n, v in parts.items()}

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)[self.output_names[0]]


def tensor_shapes(model: onnx.ModelProto, names: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Per-sample shapes (batch axis dropped) of ``names``, found by running one zero input."""
    inp = graph_inputs(model)[0]
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
            for d in inp.type.tensor_type.shape.dim]
    dims[0] = 1
    runner = OrtRunner(model, list(names), batch_size=1)
    outs = runner.run(np.zeros(dims, dtype=np.float32))
    return {n: tuple(int(s) for s in outs[n].shape[1:]) for n in names}
