"""ONNX op → torch callable converters, one per op, registered next to their definition.

Why a registry of small functions instead of one big ``if op == ...`` chain: adding an op
touches exactly one place, duplicates fail at import, and a test can check that every op
in :data:`graftonnx.model.ops.SUPPORTED_OPS` has a converter.

A converter receives a :class:`NodeContext` (the node, its attributes, the values known
at conversion time and the static per-sample shapes) and returns a :class:`Step`: a plain
function of the node's *runtime* inputs (activations, parameters, buffers).  Inputs that
only shape the computation (Reshape targets, Squeeze axes) are read from the context once,
so the traced graph that auto_LiRPA sees holds constants, not shape arithmetic.  Shapes
are written as ``(-1, *per_sample)`` so a model exported with batch 1 runs any batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import torch
import torch.nn.functional as F

from ..errors import UnsupportedModel
from ..registry import Registry

__all__ = ["NodeContext", "Step", "Converter", "CONVERTERS", "node_attributes"]


@dataclass(frozen=True)
class NodeContext:
    """Everything a converter may look at; ``shapes`` are per-sample (batch axis dropped)."""

    node: onnx.NodeProto
    attrs: Mapping[str, Any]
    consts: Mapping[str, np.ndarray]
    shapes: Mapping[str, tuple[int, ...]]

    def const(self, index: int) -> np.ndarray:
        """A conversion-time constant input (shape, axes); the model is unsupported otherwise."""
        name = self.node.input[index] if index < len(self.node.input) else ""
        if name not in self.consts:
            raise UnsupportedModel(f"node {self.node.name!r} ({self.node.op_type}) needs input #{index} to be "
                                   "a constant: graftonnx converts static graphs only; fold shapes with onnxsim")
        return self.consts[name]

    def out_shape(self, index: int = 0) -> tuple[int, ...]:
        return self.shapes[self.node.output[index]]

    def in_shape(self, index: int = 0) -> tuple[int, ...]:
        return self.shapes[self.node.input[index]]


@dataclass(frozen=True)
class Step:
    """``fn(*[env[i] for i in inputs])`` computes the node's output; ``fn`` None: a constant node."""

    fn: Callable[..., torch.Tensor] | None
    inputs: tuple[str, ...]


Converter = Callable[[NodeContext], Step]

#: ONNX op type → converter.
CONVERTERS: Registry[Converter] = Registry("ONNX op converter")


def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """Attributes as Python values (tensors as numpy arrays, strings decoded)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        elif isinstance(v, bytes):
            v = v.decode()
        out[a.name] = v
    return out


def _data(node: onnx.NodeProto, n: int = 1) -> tuple[str, ...]:
    return tuple(node.input[:n])


# ---------------------------------------------------------------- elementwise and trivial ops
def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Converter:
    return lambda ctx: Step(fn, _data(ctx.node, 2))


CONVERTERS.register("Add")(_binary(torch.add))
CONVERTERS.register("Sub")(_binary(torch.sub))
CONVERTERS.register("Mul")(_binary(torch.mul))
CONVERTERS.register("Div")(_binary(torch.div))
CONVERTERS.register("MatMul")(_binary(torch.matmul))


@CONVERTERS.register("Relu")
def _relu(ctx: NodeContext) -> Step:
    return Step(torch.relu, _data(ctx.node))


@CONVERTERS.register("Sigmoid")
def _sigmoid(ctx: NodeContext) -> Step:
    return Step(torch.sigmoid, _data(ctx.node))


@CONVERTERS.register("Tanh")
def _tanh(ctx: NodeContext) -> Step:
    return Step(torch.tanh, _data(ctx.node))


@CONVERTERS.register("Neg")
def _neg(ctx: NodeContext) -> Step:
    return Step(torch.neg, _data(ctx.node))


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


@CONVERTERS.register("Identity", "Dropout")
def _pass_through(ctx: NodeContext) -> Step:
    """Dropout is the identity at inference, and finetuning must train the exported graph."""
    if ctx.node.op_type == "Dropout" and len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise UnsupportedModel(f"node {ctx.node.name!r} (Dropout) exposes its mask output: "
                               "export the model in inference mode")
    return Step(_identity, _data(ctx.node))


@CONVERTERS.register("Constant")
def _constant(ctx: NodeContext) -> Step:
    """The value becomes a buffer of the module (see convert.py); no runtime step."""
    return Step(None, ())


# ---------------------------------------------------------------- shape ops
def _reshape_to(tail: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: x.reshape(-1, *tail)


@CONVERTERS.register("Reshape")
def _reshape(ctx: NodeContext) -> Step:
    """Target = the static per-sample output shape, batch left free (``-1``)."""
    ctx.const(1)
    return Step(_reshape_to(ctx.out_shape()), _data(ctx.node))


@CONVERTERS.register("Flatten")
def _flatten(ctx: NodeContext) -> Step:
    if int(ctx.attrs.get("axis", 1)) == 1:
        return Step(lambda x: torch.flatten(x, 1), _data(ctx.node))
    return Step(_reshape_to(ctx.out_shape()), _data(ctx.node))


@CONVERTERS.register("Transpose")
def _transpose(ctx: NodeContext) -> Step:
    rank = len(ctx.in_shape()) + 1
    perm = tuple(int(p) for p in ctx.attrs.get("perm", range(rank - 1, -1, -1)))
    return Step(lambda x: x.permute(perm), _data(ctx.node))


def _axes(ctx: NodeContext) -> tuple[int, ...] | None:
    if "axes" in ctx.attrs:
        return tuple(int(a) for a in ctx.attrs["axes"])
    if len(ctx.node.input) > 1 and ctx.node.input[1]:
        return tuple(int(a) for a in np.asarray(ctx.const(1)).ravel())
    return None


@CONVERTERS.register("Squeeze")
def _squeeze(ctx: NodeContext) -> Step:
    axes = _axes(ctx)
    if axes is None:  # all unit axes of one sample; the batch axis stays
        dims = tuple(i + 1 for i, d in enumerate(ctx.in_shape()) if d == 1)
        return Step(lambda x: x.squeeze(dims) if dims else x, _data(ctx.node))
    return Step(lambda x: x.squeeze(axes), _data(ctx.node))


@CONVERTERS.register("Unsqueeze")
def _unsqueeze(ctx: NodeContext) -> Step:
    rank = len(ctx.out_shape()) + 1
    axes = sorted(a % rank for a in (_axes(ctx) or ()))

    def fn(x: torch.Tensor) -> torch.Tensor:
        for a in axes:
            x = x.unsqueeze(a)
        return x

    return Step(fn, _data(ctx.node))


@CONVERTERS.register("Concat")
def _concat(ctx: NodeContext) -> Step:
    axis = int(ctx.attrs["axis"])
    return Step(lambda *xs: torch.cat(xs, axis), tuple(ctx.node.input))


# ---------------------------------------------------------------- linear layers
@CONVERTERS.register("Gemm")
def _gemm(ctx: NodeContext) -> Step:
    """``alpha·A'·B' + beta·C``; the common exporter form maps to one ``F.linear``."""
    alpha, beta = float(ctx.attrs.get("alpha", 1.0)), float(ctx.attrs.get("beta", 1.0))
    trans_a, trans_b = int(ctx.attrs.get("transA", 0)), int(ctx.attrs.get("transB", 0))
    inputs = tuple(i for i in ctx.node.input if i)

    def fn(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        a = a.t() if trans_a else a
        w = b if trans_b else b.t()
        if alpha != 1.0:
            w = w * alpha
        if c is not None and beta != 1.0:
            c = c * beta
        if c is not None and c.dim() == 1:
            return F.linear(a, w, c)
        y = F.linear(a, w)
        return y if c is None else y + c

    return Step(fn, inputs)


def _spatial_pads(ctx: NodeContext, kernel: Sequence[int], strides: Sequence[int],
                  dilations: Sequence[int]) -> list[int]:
    """ONNX pads ``[b1, b2, ..., e1, e2, ...]``, resolving ``auto_pad`` from the static shapes."""
    n = len(kernel)
    auto = ctx.attrs.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        return [int(p) for p in ctx.attrs.get("pads", [0] * (2 * n))]
    if auto == "VALID":
        return [0] * (2 * n)
    spatial_in = ctx.in_shape()[-n:]
    begin, end = [], []
    for i in range(n):
        out = -(-spatial_in[i] // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - spatial_in[i])
        small, large = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else large)
        end.append(large if auto == "SAME_UPPER" else small)
    return begin + end


def _torch_pad(pads: Sequence[int]) -> tuple[list[int] | None, list[int]]:
    """(explicit F.pad spec or None, symmetric padding for the torch op)."""
    n = len(pads) // 2
    begin, end = list(pads[:n]), list(pads[n:])
    if begin == end:
        return None, begin
    spec: list[int] = []
    for b, e in zip(reversed(begin), reversed(end), strict=True):
        spec += [b, e]
    return spec, [0] * n


_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@CONVERTERS.register("Conv")
def _conv(ctx: NodeContext) -> Step:
    kernel = [int(k) for k in ctx.attrs.get("kernel_shape", ctx.const(1).shape[2:])]
    n = len(kernel)
    strides = [int(s) for s in ctx.attrs.get("strides", [1] * n)]
    dilations = [int(d) for d in ctx.attrs.get("dilations", [1] * n)]
    group = int(ctx.attrs.get("group", 1))
    spec, padding = _torch_pad(_spatial_pads(ctx, kernel, strides, dilations))
    conv = _CONV[n]

    def fn(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        if spec is not None:
            x = F.pad(x, spec)
        return conv(x, w, b, strides, padding, dilations, group)

    return Step(fn, tuple(i for i in ctx.node.input if i))


@CONVERTERS.register("BatchNormalization")
def _batchnorm(ctx: NodeContext) -> Step:
    """Always inference-mode statistics: the exported graph is what gets finetuned."""
    eps = float(ctx.attrs.get("epsilon", 1e-5))

    def fn(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor,
           var: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, mean, var, scale, bias, False, 0.0, eps)

    return Step(fn, _data(ctx.node, 5))


# ---------------------------------------------------------------- pooling
def _pool_args(ctx: NodeContext) -> tuple[list[int], list[int], list[int] | None, list[int], bool]:
    kernel = [int(k) for k in ctx.attrs["kernel_shape"]]
    n = len(kernel)
    strides = [int(s) for s in ctx.attrs.get("strides", [1] * n)]
    dilations = [int(d) for d in ctx.attrs.get("dilations", [1] * n)]
    spec, padding = _torch_pad(_spatial_pads(ctx, kernel, strides, dilations))
    return kernel, strides, spec, padding, bool(ctx.attrs.get("ceil_mode", 0))


_MAXPOOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVGPOOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


@CONVERTERS.register("MaxPool")
def _maxpool(ctx: NodeContext) -> Step:
    if len(ctx.node.output) > 1 and ctx.node.output[1]:
        raise UnsupportedModel(f"node {ctx.node.name!r} (MaxPool) exposes its indices: not supported")
    kernel, strides, spec, padding, ceil = _pool_args(ctx)
    dilations = [int(d) for d in ctx.attrs.get("dilations", [1] * len(kernel))]
    pool = _MAXPOOL[len(kernel)]

    def fn(x: torch.Tensor) -> torch.Tensor:
        if spec is not None:
            x = F.pad(x, spec, value=float("-inf"))
        return pool(x, kernel, strides, padding, dilations, ceil_mode=ceil)

    return Step(fn, _data(ctx.node))


@CONVERTERS.register("AveragePool")
def _avgpool(ctx: NodeContext) -> Step:
    kernel, strides, spec, padding, ceil = _pool_args(ctx)
    include = bool(ctx.attrs.get("count_include_pad", 0))
    if spec is not None and not include:
        raise UnsupportedModel(f"node {ctx.node.name!r} (AveragePool) has asymmetric padding without "
                               "count_include_pad: not supported; re-export with symmetric pads")
    pool = _AVGPOOL[len(kernel)]

    def fn(x: torch.Tensor) -> torch.Tensor:
        if spec is not None:
            x = F.pad(x, spec)
        return pool(x, kernel, strides, padding, ceil_mode=ceil, count_include_pad=include)

    return Step(fn, _data(ctx.node))
