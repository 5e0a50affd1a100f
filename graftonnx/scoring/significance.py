"""Significance criteria: how much each neuron matters to the network's output.

Each criterion is one small callable registered in :data:`SIGNIFICANCE` that returns
one score per neuron per site (higher = more significant), so adding a criterion
touches this file only.  Activations come from onnxruntime; gradients of the
cross-entropy loss w.r.t. pre-activations come from the torch round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..model.info import ReluSite
from ..model.runtime import OrtRunner
from ..registry import Registry

__all__ = ["ScoringContext", "SIGNIFICANCE"]


@dataclass(eq=False)
class ScoringContext:
    """What criteria may look at; expensive views are computed once and cached.

    ``model`` takes raw pixels (normalisation already folded in); ``y`` are labels, or the
    model's own predictions when the data has none (synthetic inputs).
    """

    model: onnx.ModelProto
    x: np.ndarray
    y: np.ndarray
    sites: Sequence[ReluSite]
    batch_size: int = 256
    _acts: dict[str, np.ndarray] | None = field(default=None, repr=False)
    _grads: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def activations(self) -> dict[str, np.ndarray]:
        """Pre-activations z of every site, (N, size) flat."""
        if self._acts is None:
            runner = OrtRunner(self.model, [s.input for s in self.sites], self.batch_size)
            outs = runner.run(self.x)
            self._acts = {s.name: outs[s.input].reshape(len(self.x), -1) for s in self.sites}
        return self._acts

    def gradients(self) -> dict[str, np.ndarray]:
        """∂CE/∂z of every site, (N, size) flat, from the torch round trip."""
        if self._grads is None:
            from .gradients import site_gradients

            self._grads = site_gradients(self.model, self.x, self.y, self.sites, self.batch_size)
        return self._grads


Criterion = Callable[[ScoringContext], dict[str, np.ndarray]]
#: significance criteria by name: "grad" (mean |∂L/∂z|, the paper's choice), "act", "taylor".
SIGNIFICANCE: Registry[Criterion] = Registry("significance criterion")


@SIGNIFICANCE.register("grad")
def mean_abs_gradient(ctx: ScoringContext) -> dict[str, np.ndarray]:
    """Mean |∂L/∂z| (GAP): the paper's best-performing proxy for significance."""
    return {k: np.abs(g).mean(axis=0) for k, g in ctx.gradients().items()}


@SIGNIFICANCE.register("act")
def mean_abs_activation(ctx: ScoringContext) -> dict[str, np.ndarray]:
    """Mean |z| (SAP-like); needs onnxruntime only, so it is the cheapest."""
    return {k: np.abs(z).mean(axis=0) for k, z in ctx.activations().items()}


@SIGNIFICANCE.register("taylor")
def mean_abs_taylor(ctx: ScoringContext) -> dict[str, np.ndarray]:
    """Mean |z·∂L/∂z|: first-order estimate of the loss change if the neuron were zeroed."""
    acts, grads = ctx.activations(), ctx.gradients()
    return {k: np.abs(acts[k] * grads[k]).mean(axis=0) for k in acts}
