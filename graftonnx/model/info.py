"""Model analysis: inputs, outputs, ReLU sites, op histogram, in-graph normalisation.

The :class:`ModelInfo` it returns is what every later stage keys on: a ReLU site is
named by its Relu node (a smooth site, ``ModelInfo.smooth``, by its Sigmoid/Tanh node),
and its per-image shape fixes how neuron indices are counted
(row-major over the shape without the batch axis; a *channel* is an index of the first
axis of that shape, which is the channel axis of Conv outputs).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import UnsupportedModel
from .ops import CONTROL_FLOW_OPS, LAYOUT_OPS, NORMALISATION_OPS, SMOOTH_ACTIVATIONS, SUPPORTED_OPS

__all__ = ["TensorInfo", "ReluSite", "ModelInfo", "inspect_model", "graph_inputs", "constant_value", "input_prefix"]


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output: name, dims (``None`` for a symbolic batch) and dtype."""

    name: str
    dims: tuple[int | None, ...]
    dtype: str

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample (the batch axis dropped)."""
        return tuple(int(d) for d in self.dims[1:])


@dataclass(frozen=True)
class ReluSite:
    """One activation node: where it reads, where it writes, what feeds it, its per-image shape.

    ``op`` is ``Relu`` for the sites in ``ModelInfo.relus``, ``Sigmoid``/``Tanh`` for ``ModelInfo.smooth``.
    """

    name: str
    input: str
    output: str
    producer: str
    shape: tuple[int, ...]
    op: str = "Relu"

    @property
    def smooth(self) -> bool:
        """A Sigmoid/Tanh site: grafted as its least-squares line, never "unstable"."""
        return self.op in SMOOTH_ACTIVATIONS

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def channels(self) -> int:
        """Number of channels: the first per-image axis (neurons for a flat layer)."""
        return int(self.shape[0]) if self.shape else 1

    @property
    def per_channel(self) -> int:
        return self.size // self.channels


@dataclass(frozen=True)
class ModelInfo:
    """Everything ``graftonnx inspect`` reports; JSON-friendly through :meth:`to_dict`."""

    opset: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    relus: tuple[ReluSite, ...]
    op_histogram: dict[str, int] = field(hash=False)
    normalisation: tuple[str, ...]
    producer_name: str = ""
    smooth: tuple[ReluSite, ...] = ()

    @property
    def input(self) -> TensorInfo:
        return self.inputs[0]

    @property
    def sites(self) -> tuple[ReluSite, ...]:
        """Every graftable site: the Relu sites, then the Sigmoid/Tanh sites."""
        return self.relus + self.smooth

    @property
    def n_neurons(self) -> int:
        """Graftable units (ReLU and smooth neurons)."""
        return sum(s.size for s in self.sites)

    def site(self, name: str) -> ReluSite:
        for s in self.sites:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["n_relu_neurons"] = sum(s.size for s in self.relus)
        d["n_smooth_neurons"] = sum(s.size for s in self.smooth)
        for s, sd in zip(self.sites, d["relus"] + d["smooth"], strict=True):
            sd["size"] = s.size
        return d


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: graph inputs that are not initialisers (old exporters list both)."""
    inits = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in inits]


def constant_value(model: onnx.ModelProto, name: str) -> np.ndarray | None:
    """The value of ``name`` if it is an initialiser or a Constant node's output, else None."""
    for t in model.graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            for a in node.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None


def _dims(vi: onnx.ValueInfoProto) -> tuple[int | None, ...]:
    dims = vi.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in dims)


def _tensor_info(vi: onnx.ValueInfoProto) -> TensorInfo:
    elem = vi.type.tensor_type.elem_type
    return TensorInfo(vi.name, _dims(vi), onnx.helper.tensor_dtype_to_np_dtype(elem).name)


def _check_ops(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        if node.op_type in CONTROL_FLOW_OPS:
            raise UnsupportedModel(f"node {node.name!r} is control flow ({node.op_type}): graftonnx needs a "
                                   "static feed-forward graph; unroll or export the model without it")
        if node.domain not in ("", "ai.onnx") or node.op_type not in SUPPORTED_OPS:
            raise UnsupportedModel(f"node {node.name!r} uses op {node.op_type} which graftonnx cannot bound; "
                                   f"supported ops: {', '.join(sorted(SUPPORTED_OPS))}")
        if node.op_type in ("Mul", "Div") and all(constant_value(model, i) is None for i in node.input):
            raise UnsupportedModel(f"node {node.name!r} ({node.op_type}) multiplies two variable tensors; "
                                   "only products with a constant can be bounded")


_CAST_HINT = ("convert the model to float32 first: re-export it from your framework after casting "
              "(PyTorch: model.float()), or for float16 use onnxconverter-common's "
              "float16.convert_float16_to_float; integer inputs need a float32 model")


def _check_dtypes(ins: tuple[TensorInfo, ...], outs: tuple[TensorInfo, ...]) -> None:
    """Refuse non-float32 inputs and non-float outputs before onnxruntime sees them.

    Why here: every stage feeds float32 images (boxes, gradients, sessions), so a float64
    or integer input used to crash deep in onnxruntime with a type error on some node.
    """
    for t in ins:
        if t.dtype != "float32":
            raise UnsupportedModel(f"input {t.name!r} has dtype {t.dtype}: graftonnx needs a float32 input; "
                                   + _CAST_HINT)
    for t in outs:
        if not t.dtype.startswith("float"):
            raise UnsupportedModel(f"output {t.name!r} has dtype {t.dtype}: graftonnx needs float logits; "
                                   "export the classifier without the final ArgMax/Cast")


def _check_io(model: onnx.ModelProto) -> tuple[TensorInfo, ...]:
    ins = tuple(_tensor_info(v) for v in graph_inputs(model))
    if len(ins) != 1:
        raise UnsupportedModel(f"model has {len(ins)} inputs ({', '.join(i.name for i in ins)}): "
                               "graftonnx handles classifiers with exactly one input")
    _check_dtypes(ins, tuple(_tensor_info(v) for v in model.graph.output))
    for t in ins:
        if len(t.dims) < 2:
            raise UnsupportedModel(f"input {t.name!r} has shape {t.dims}: expected a batch axis then the sample axes")
        if any(d is None for d in t.dims[1:]):
            raise UnsupportedModel(f"input {t.name!r} has dynamic dimensions {t.dims} beyond the batch axis: "
                                   "fix them (e.g. with onnxsim --overwrite-input-shape)")
        if t.dims[0] not in (None, 1):
            raise UnsupportedModel(f"input {t.name!r} has a fixed batch size {t.dims[0]}: "
                                   "export with batch 1 or a dynamic batch")
    return ins


def input_prefix(model: onnx.ModelProto) -> tuple[list[onnx.NodeProto], str]:
    """The input prefix (normalisation, layout ops) and the tensor it produces (the input when empty).

    One rule for ``inspect`` (shows it), the converter (never trains its constants) and
    bounding (strips it, maps the box through it).  Nodes not reading the current tensor
    are skipped; one that reads it joins when it is a layout op or Sub/Add/Mul/Div, its
    other inputs are constants, the tensor has no other reader and is no graph output
    (stripping must not cut a second path), and a Div has it as numerator (``c / x`` is not
    monotone).  Else the prefix ends, so every op in it is exact on boxes; an Add of the
    input to a computed tensor ends it (the converter used to walk on and freeze weights).
    """
    consts = {t.name for t in model.graph.initializer}
    consts |= {n.output[0] for n in model.graph.node if n.op_type == "Constant"}
    readers = Counter(i for n in model.graph.node for i in n.input)
    outputs = {o.name for o in model.graph.output}
    current = graph_inputs(model)[0].name
    nodes: list[onnx.NodeProto] = []
    for node in model.graph.node:
        if current not in node.input:
            continue
        elementwise = node.op_type in NORMALISATION_OPS and len(node.input) == 2
        if (not (elementwise or node.op_type in LAYOUT_OPS) or readers[current] != 1 or current in outputs
                or not all(i in consts for i in node.input if i != current)
                or (node.op_type == "Div" and node.input[0] != current)):
            break
        nodes.append(node)
        current = node.output[0]
    return nodes, current


def _normalisation(model: onnx.ModelProto) -> tuple[str, ...]:
    """The elementwise ops of the input prefix with their constants, for ``inspect``."""
    found = []
    for node in input_prefix(model)[0]:
        if node.op_type in NORMALISATION_OPS:
            const = next(v for v in (constant_value(model, i) for i in node.input) if v is not None)
            vals = np.unique(np.asarray(const, dtype=np.float64).ravel())
            shown = ", ".join(f"{v:.4g}" for v in vals[:4]) + (" ..." if vals.size > 4 else "")
            found.append(f"{node.op_type} {node.name} by [{shown}]")
    return tuple(found)


def _activation_sites(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]],
                      ops: frozenset[str]) -> tuple[ReluSite, ...]:
    producers = {o: n for n in model.graph.node for o in n.output}
    sites = []
    for node in model.graph.node:
        if node.op_type not in ops:
            continue
        src = producers.get(node.input[0])
        sites.append(ReluSite(node.name, node.input[0], node.output[0],
                              src.op_type if src is not None else "input", shapes[node.input[0]], node.op_type))
    return tuple(sites)


def inspect_model(model: onnx.ModelProto) -> ModelInfo:
    """Analyse ``model`` (already loaded by :func:`load_model`) or raise UnsupportedModel."""
    _check_ops(model)
    ins = _check_io(model)
    outs = tuple(_tensor_info(v) for v in model.graph.output)
    from .runtime import tensor_shapes  # local: runtime imports this module

    act_inputs = [n.input[0] for n in model.graph.node if n.op_type == "Relu" or n.op_type in SMOOTH_ACTIVATIONS]
    shapes = tensor_shapes(model, act_inputs) if act_inputs else {}
    relus = _activation_sites(model, shapes, frozenset({"Relu"}))
    smooth = _activation_sites(model, shapes, SMOOTH_ACTIVATIONS)
    if not relus and not smooth:
        raise UnsupportedModel("model has no Relu, Sigmoid or Tanh node: there is nothing to graft")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return ModelInfo(
        opset=int(opset),
        inputs=ins,
        outputs=outs,
        relus=relus,
        smooth=smooth,
        op_histogram=dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
        normalisation=_normalisation(model),
        producer_name=f"{model.producer_name} {model.producer_version}".strip(),
    )
