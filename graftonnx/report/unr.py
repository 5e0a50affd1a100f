"""Unstable-neuron ratio of a model on the exact input boxes of its benchmark instances.

Why the instance boxes and not an ε around a dataset: the report explains *these* verdicts,
so the bounds must be taken over exactly the boxes the verifier saw (read back from the
VNN-LIB files, already clipped, in the exported model's raw pixel space).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import onnx

from ..bench.spec import Property
from ..bounds.base import BOUND_METHODS
from ..errors import BadInput
from ..model.graftmeta import read_native
from ..model.info import ModelInfo

__all__ = ["LayerUnr", "BoxUnr", "unr_on_boxes"]


@dataclass(frozen=True)
class LayerUnr:
    """One ReLU site: its size and the mean number of unstable neurons per box."""

    site: str
    size: int
    unstable: float

    @property
    def unr(self) -> float:
        return self.unstable / self.size if self.size else 0.0


@dataclass(frozen=True)
class BoxUnr:
    """UNR of one model over ``boxes`` input boxes with bound method ``bound``."""

    bound: str
    boxes: int
    layers: tuple[LayerUnr, ...]

    @property
    def neurons(self) -> int:
        return sum(x.size for x in self.layers)

    @property
    def unstable(self) -> float:
        """Mean unstable neurons per box, all sites together."""
        return float(sum(x.unstable for x in self.layers))

    @property
    def unr(self) -> float:
        """Mean over boxes of unstable / all ReLU neurons (the paper's UNR)."""
        return self.unstable / self.neurons if self.neurons else 0.0


def _box_batch(props: Sequence[Property], shape: tuple[int, ...], where: str) -> tuple[np.ndarray, np.ndarray]:
    size = math.prod(shape)
    for p in props:
        if p.n_inputs != size:
            raise BadInput(f"a property of {where} has {p.n_inputs} inputs but the model takes {list(shape)} "
                           f"({size} values): the instances pair this model with another model's properties")
    lo = np.stack([p.lower for p in props]).astype(np.float32).reshape((len(props), *shape))
    hi = np.stack([p.upper for p in props]).astype(np.float32).reshape((len(props), *shape))
    return lo, hi


def unr_on_boxes(model: onnx.ModelProto, info: ModelInfo, props: Sequence[Property], bound: str = "ibp",
                 batch_size: int = 64, where: str = "model") -> BoxUnr:
    """Count l < 0 < u per ReLU site on every property's input box; means per box.

    Grafted neurons are fed an identically-zero input by the rewrite, so their bounds are
    [0, 0] and they never count: the grafted model's UNR is directly comparable.  In the
    verifier-ready form grafted neurons are no Relu neurons at all; its ``graftonnx.native``
    table maps its Relus (``site``, ``site/relu<i>``) back to the original sites and sizes.
    """
    fn = BOUND_METHODS.get(bound)
    sites = info.relus
    totals = {s.name: 0 for s in sites}
    shape = info.input.sample_shape
    for start in range(0, len(props), batch_size):
        chunk = props[start:start + batch_size]
        lo, hi = _box_batch(chunk, shape, where)
        bounds = fn(model, lo, hi, sites) if sites else {}  # a Sigmoid/Tanh-only net has no UNR
        for s in sites:
            totals[s.name] += int(bounds[s.name].unstable().sum())
    n = len(props)
    table = read_native(model)
    if table is None:
        layers = tuple(LayerUnr(s.name, s.size, totals[s.name] / n if n else 0.0) for s in sites)
    else:
        def of(site: str) -> float:
            return sum(v for k, v in totals.items() if k == site or k.startswith(site + "/"))

        layers = tuple(LayerUnr(r.site, r.size, of(r.site) / n if n else 0.0) for r in table)
    return BoxUnr(bound, n, layers)
