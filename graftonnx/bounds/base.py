"""The bound-method contract.

A bound method takes a model (pixel-space input: any normalisation already folded into
the graph), a batch of input boxes ``[lo, hi]`` and the ReLU sites to report, and
returns sound pre-activation bounds for each site on that batch.  Scoring streams
batches through it, so a method never sees more than ``batch_size`` boxes at once and
memory stays flat for any number of images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnx

from ..model.info import ReluSite
from ..registry import Registry

__all__ = ["SiteBounds", "BoundMethod", "BOUND_METHODS"]


@dataclass(frozen=True, eq=False)
class SiteBounds:
    """Pre-activation bounds of one ReLU site for a batch: arrays of shape (B, *site.shape)."""

    lower: np.ndarray
    upper: np.ndarray

    def unstable(self) -> np.ndarray:
        """Boolean (B, *shape): strictly l < 0 < u, the verifiers' own test."""
        return (self.lower < 0) & (self.upper > 0)


class BoundMethod(Protocol):
    """``method(model, lo, hi, sites) -> {site.name: SiteBounds}`` for one batch of boxes."""

    def __call__(self, model: onnx.ModelProto, lo: np.ndarray, hi: np.ndarray,
                 sites: Sequence[ReluSite]) -> dict[str, SiteBounds]: ...


#: Registry of bound methods: "ibp" (onnxruntime interval graph), "crown" (auto_LiRPA).
BOUND_METHODS: Registry[BoundMethod] = Registry("bound method")
