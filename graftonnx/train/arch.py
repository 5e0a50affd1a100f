"""Base networks from a short spec, and their ONNX export checked by onnxruntime parity.

Why: grafting starts from a (preferably adversarially) trained network; ``graftonnx
train`` makes one from scratch — an MLP (``mlp:256,256``) or CNN-B (``cnn-b``: 2 conv +
2 FC, the architecture the paper and the SDP-verification literature use) — so the whole
pipeline can be run end to end on MNIST or sklearn digits without outside models.
"""

from __future__ import annotations

import importlib.util
import io
import math
import warnings
from collections.abc import Sequence

import numpy as np
import onnx
import torch
from torch import nn

from ..errors import BadInput, GraftFailure
from ..model.loader import name_nodes
from ..parity import assert_parity, ort_callable, random_inputs

__all__ = ["ARCH_HELP", "MLP_ACTIVATIONS", "build_arch", "export_onnx", "OPSET"]

OPSET = 13
ARCH_HELP = ("mlp:W1,W2,... (hidden widths; mlp-sigmoid:... or mlp-tanh:... for smooth activations) or cnn-b "
             "(2 conv + 2 FC; sized for 28×28 MNIST or 8×8 digits)")
#: The activation of each MLP family (``mlp-sigmoid:64,64``): Sigmoid/Tanh nets are grafted as least-squares lines.
MLP_ACTIVATIONS: dict[str, type[nn.Module]] = {"mlp": nn.ReLU, "mlp-relu": nn.ReLU, "mlp-sigmoid": nn.Sigmoid,
                                               "mlp-tanh": nn.Tanh}


def build_arch(spec: str, sample_shape: Sequence[int], n_classes: int) -> nn.Module:
    """The network ``spec`` for per-sample input ``sample_shape`` and ``n_classes`` outputs."""
    spec = spec.strip().lower()
    if n_classes < 2:
        raise BadInput(f"the data has {n_classes} class(es): a classifier needs at least 2")
    if spec.partition(":")[0] in MLP_ACTIVATIONS:
        return _mlp(spec, sample_shape, n_classes)
    if spec == "cnn-b":
        return _cnn_b(sample_shape, n_classes)
    raise BadInput(f"unknown --arch {spec!r}: use {ARCH_HELP}")


def _mlp(spec: str, sample_shape: Sequence[int], n_classes: int) -> nn.Module:
    family, _, widths_text = spec.partition(":")
    act = MLP_ACTIVATIONS[family]
    try:
        widths = [int(w) for w in widths_text.split(",") if w.strip()]
    except ValueError:
        raise BadInput(f"--arch {spec!r}: widths must be integers, e.g. {family}:256,256") from None
    if not widths or min(widths) < 1:
        raise BadInput(f"--arch {spec!r}: give at least one positive hidden width, e.g. {family}:256,256")
    layers: list[nn.Module] = [nn.Flatten()]
    width_in = int(math.prod(sample_shape))
    for w in widths:
        layers += [nn.Linear(width_in, w), act()]
        width_in = w
    layers.append(nn.Linear(width_in, n_classes))
    return nn.Sequential(*layers)


def _cnn_b(sample_shape: Sequence[int], n_classes: int) -> nn.Module:
    """CNN-B: Conv(32,5,s2) → Conv(128,4,s2,p1) → FC 250 → FC; a 16/32/100 version for inputs under 16 px."""
    if len(sample_shape) != 3:
        raise BadInput(f"--arch cnn-b needs images (channels, height, width); the data has shape "
                       f"{tuple(sample_shape)}: use --layout nchw or an mlp")
    c, h, w = (int(s) for s in sample_shape)
    if min(h, w) >= 16:
        c1, k1, s1, p1, c2, fc = 32, 5, 2, 0, 128, 250
    else:
        c1, k1, s1, p1, c2, fc = 16, 3, 1, 1, 32, 100
    convs = nn.Sequential(nn.Conv2d(c, c1, k1, s1, p1), nn.ReLU(), nn.Conv2d(c1, c2, 4, 2, 1), nn.ReLU(),
                          nn.Flatten())
    with torch.no_grad():
        flat = int(convs(torch.zeros(1, c, h, w)).shape[1])
    return nn.Sequential(*convs, nn.Linear(flat, fc), nn.ReLU(), nn.Linear(fc, n_classes))


def _export_bytes(module: nn.Module, example: torch.Tensor) -> bytes:
    """torch.onnx.export; the dynamo exporter needs onnxscript, so without it use the TorchScript one."""
    buf = io.BytesIO()
    kwargs = {"opset_version": OPSET, "input_names": ["input"], "output_names": ["logits"],
              "dynamic_axes": {"input": {0: "N"}, "logits": {0: "N"}}}
    dynamo = importlib.util.find_spec("onnxscript") is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(module, (example,), buf, dynamo=dynamo, **kwargs)
        except Exception:
            if not dynamo:
                raise
            buf = io.BytesIO()
            torch.onnx.export(module, (example,), buf, dynamo=False, **kwargs)
    return buf.getvalue()


def export_onnx(module: nn.Module, sample_shape: Sequence[int], range_: tuple[float, float] = (0.0, 1.0),
                atol: float = 1e-5) -> onnx.ModelProto:
    """ONNX (opset 13, dynamic batch) of ``module``, checked against torch with :mod:`graftonnx.parity`."""
    module = module.eval()
    example = torch.zeros(1, *sample_shape)
    try:
        model = onnx.load_from_string(_export_bytes(module, example))
    except Exception as exc:
        raise GraftFailure(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    onnx.checker.check_model(model)
    model = name_nodes(model)

    def torch_fn(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(x)).numpy()

    xs = random_inputs(tuple(sample_shape), 32, range_[0], range_[1], seed=0)
    assert_parity(torch_fn, ort_callable(model), xs, atol=atol)
    return model
