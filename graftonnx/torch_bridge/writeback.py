"""torch → ONNX by write-back: the original graph, with only initialiser values replaced.

Why not ``torch.onnx.export``: re-exporting renames nodes and tensors, changes op
patterns (which verifiers are picky about) and loses metadata.  The graph is the
contract, so after finetuning only the numbers change: weights, and ``a⊙m``/``b⊙m``
of grafted sites.  Initialisers whose value did not change are left byte for byte.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import BadInput
from .convert import OnnxModule

__all__ = ["write_back"]


def write_back(model: onnx.ModelProto, module: OnnxModule) -> onnx.ModelProto:
    """A copy of ``model`` holding ``module``'s current initialiser values.

    Node names, op types, input/output names, opset and metadata are untouched; the
    ``keep`` masks and every constant that does not train are untouched too.
    """
    out = copy.deepcopy(model)
    values = module.initialiser_values()
    found = set()
    for init in out.graph.initializer:
        if init.name not in values:
            continue
        found.add(init.name)
        old = numpy_helper.to_array(init)
        new = np.asarray(values[init.name])
        if new.shape != old.shape:
            raise BadInput(f"initialiser {init.name!r} has shape {old.shape} in the model but {new.shape} in the "
                           "torch module: write back into the model the module was converted from")
        new = new.astype(old.dtype, copy=False)
        if not np.array_equal(new, old):
            init.CopyFrom(numpy_helper.from_array(new, init.name))
    missing = set(values) - found
    if missing:
        raise BadInput(f"initialiser {sorted(missing)[0]!r} of the torch module is not in the model: "
                       "write back into the model the module was converted from")
    return out
