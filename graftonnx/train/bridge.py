"""The thin seam between training and the ONNX↔torch converter (``graftonnx.torch_bridge``).

Why a seam: finetuning and evaluation must run the *ONNX graph itself* in torch (so the
tuned values can be written back into the same graph), and that converter lives in
another package; importing it in one place keeps the dependency explicit and lets the
rest of ``graftonnx.train`` work on any ``nn.Module``.
"""

from __future__ import annotations

import onnx
from torch import nn

from ..errors import GraftFailure

__all__ = ["to_torch", "write_back"]

def _bridge():  # noqa: ANN202  (module object)
    try:
        from .. import torch_bridge
    except ImportError as exc:  # pragma: no cover - only before the converter exists
        raise GraftFailure(f"the ONNX→torch converter graftonnx.torch_bridge is not available ({exc})") from None
    return torch_bridge


def to_torch(model: onnx.ModelProto) -> nn.Module:
    """An ``nn.Module`` that runs ``model``'s graph (grafted a, b as parameters when grafted)."""
    return _bridge().to_torch(model)


def write_back(model: onnx.ModelProto, module: nn.Module) -> onnx.ModelProto:
    """``model`` with its initialisers replaced by ``module``'s trained values (same graph)."""
    return _bridge().write_back(model, module)
