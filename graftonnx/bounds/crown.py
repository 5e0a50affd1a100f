"""The ``"crown"`` bound method: CROWN pre-activation bounds from auto_LiRPA 0.6.0 (CPU).

Why CROWN next to IBP: the unstable-ReLU counts that decide what to graft should be the
ones a verifier sees, and α,β-CROWN or NeuralSAT start from CROWN bounds, which are far
tighter than IBP on deeper layers.  All the auto_LiRPA specifics (the neuralsat import,
bound options, tracing, mapping its ReLU nodes back to our sites) live in
:mod:`graftonnx._lirpa`; this module only registers the method.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from ..model.info import ReluSite
from .base import BOUND_METHODS, SiteBounds

__all__ = ["crown"]


@BOUND_METHODS.register("crown")
def crown(model: onnx.ModelProto, lo: np.ndarray, hi: np.ndarray, sites: Sequence[ReluSite]) -> dict[str, SiteBounds]:
    """CROWN bounds of ``sites`` for the batch of boxes ``[lo, hi]`` (shape (B, *input sample shape))."""
    from .._lirpa import lirpa_bounds  # local: _lirpa imports bounds.base, and auto_LiRPA loads on first use

    return lirpa_bounds(model, lo, hi, sites, "CROWN")
