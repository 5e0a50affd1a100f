"""∂(cross-entropy)/∂z at every ReLU input, via the torch round trip of the ONNX graph."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from ..model.info import ReluSite

__all__ = ["site_gradients"]


def site_gradients(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray, sites: Sequence[ReluSite],
                   batch_size: int = 256) -> dict[str, np.ndarray]:
    """Per-image gradients of the summed CE loss w.r.t. each site's pre-activation, (N, size) flat.

    Summed (not mean) loss so each image's gradient does not depend on the batch size.
    """
    import torch

    from ..device import current
    from ..torch_bridge import to_torch

    dev = current()
    module = to_torch(model).eval().to(dev)
    for p in module.parameters():
        p.requires_grad_(False)
    names = [s.input for s in sites]
    parts: dict[str, list[np.ndarray]] = {s.name: [] for s in sites}
    for start in range(0, len(x), batch_size):
        xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size], dtype=np.float32)).to(dev)
        xb.requires_grad_(True)  # builds the autograd graph through the (frozen) weights
        yb = torch.from_numpy(np.asarray(y[start:start + batch_size], dtype=np.int64)).to(dev)
        outs = module.run(xb, names)
        logits = outs[module.output_names[0]].reshape(len(xb), -1)
        loss = torch.nn.functional.cross_entropy(logits, yb, reduction="sum")
        grads = torch.autograd.grad(loss, [outs[n] for n in names], allow_unused=True)
        for s, g in zip(sites, grads, strict=True):
            arr = (np.zeros((len(xb), s.size), np.float32) if g is None
                   else g.detach().cpu().numpy().reshape(len(xb), -1))
            parts[s.name].append(arr)
    return {k: np.concatenate(v, axis=0) for k, v in parts.items()}
