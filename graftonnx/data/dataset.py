"""The Dataset object every stage consumes.

Why this shape: the ε-ball of the method lives in *pixel* space, while some models
expect normalised input (ResNet-2B) and others normalise inside the graph (ERAN nets).
So a Dataset always holds raw pixels in the model's input layout and value range
``input_range`` (e.g. [0, 1]), plus the mean/std the model expects applied *outside*
the graph, if any.  Stages that bound or attack the model fold that normalisation into
a copy of the graph (:func:`graftonnx.model.prepend_normalisation`), so ε and clipping
are always done on raw pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset", "DataSpec"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images (raw pixel scale, model layout, float32) and optional integer labels."""

    x: np.ndarray
    y: np.ndarray | None
    source: str
    input_range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channel_axis: int = 0
    synthetic: bool = False
    meta: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def normalised(self) -> bool:
        return self.mean is not None or self.std is not None

    def take(self, n: int | None) -> Dataset:
        """The first ``n`` samples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        y = None if self.y is None else self.y[:n]
        return Dataset(self.x[:n], y, self.source, self.input_range, self.mean, self.std,
                       self.channel_axis, self.synthetic, dict(self.meta))

    def describe(self) -> str:
        """One line for provenance records and logs."""
        norm = f", mean={self.mean}, std={self.std}" if self.normalised else ""
        return f"{self.source} (n={len(self)}, range={list(self.input_range)}{norm})"


@dataclass(frozen=True)
class DataSpec:
    """How to read a dataset source and fit it to a model input.

    ``layout``: the model input layout, ``"auto"`` (from the model's input shape),
    ``"nchw"``, ``"nhwc"`` or ``"flat"``.  ``scale``: ``"auto"`` (255 if the values exceed 1),
    ``"255"`` (divide by 255) or ``"1"`` (already in [0, 1]).  ``mean``/``std``: per-channel
    normalisation the model expects outside its graph.  ``n``: how many samples (the first n).
    ``labels``: a separate labels file (IDX, .npy or text) that overrides the source's own labels.
    ``input_range``: the valid raw pixel range; scaled data must lie inside it.  ``seed``:
    for synthetic inputs (no source).
    """

    format: str | None = None
    layout: str = "auto"
    scale: str = "auto"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    n: int | None = None
    input_range: tuple[float, float] = (0.0, 1.0)
    seed: int = 0
    labels: str | None = None
