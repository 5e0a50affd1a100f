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

from ..settings import Settings, at_least, knob, stage

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


def _range(v: tuple[float, float]) -> str | None:
    return None if v[0] < v[1] else "needs LO < HI"


def _formats() -> list[str]:
    from .formats import DATA_FORMATS

    return DATA_FORMATS.keys()


def _layouts() -> tuple[str, ...]:
    from .layout import MODEL_LAYOUTS

    return MODEL_LAYOUTS


def _scales() -> tuple[str, ...]:
    from .layout import SCALES

    return SCALES


@stage("data")
@dataclass(frozen=True)
class DataSpec(Settings):
    """How to read a dataset source and fit it to a model input (the ``data`` stage's settings).

    ``mean``/``std`` are normalisation the model expects *outside* its graph; ``input_range``
    is the valid raw pixel range (scaled data must lie inside it, ε-balls are clipped to it).
    """

    source: str | None = knob(None, "Images: a file (.npz, .npy, ERAN .csv, MNIST IDX, CIFAR batch) or a built-in "
                                    "(digits, mnist5k). Default: none, i.e. random inputs (with a warning).",
                              flag="--data", metavar="SOURCE")
    format: str | None = knob(None, "Format of --data. Default: detected from the file's content and suffix.",
                              choices=_formats, flag="--data-format")
    layout: str = knob("auto", "Model input layout; auto: (C,H,W)→nchw, (H,W,C)→nhwc, else flat.",
                       choices=_layouts)
    scale: str = knob("auto", "Divide raw values by 255 or 1; auto: 255 if values exceed 1 (16 for digits).",
                      choices=_scales)
    mean: tuple[float, ...] | None = knob(None, "Per-channel mean the model expects outside its graph, "
                                                "comma-separated. Default: none.", metavar="FLOATS")
    std: tuple[float, ...] | None = knob(None, "Per-channel std the model expects outside its graph, "
                                               "comma-separated. Default: none.", metavar="FLOATS")
    n: int | None = knob(None, "Use the first N samples. Default: all (100 for random inputs).", check=at_least(1),
                         metavar="N")
    input_range: tuple[float, float] = knob((0.0, 1.0), "Valid raw pixel range (after --scale); ε-balls are "
                                                        "clipped to it.", check=_range, metavar="LO HI")
    seed: int = knob(0, "Random seed (synthetic inputs, random selection, training, export order).")
    labels: str | None = knob(None, "Labels file (IDX, .npy or text) overriding the source's labels. Default: the "
                                    "source's own (for IDX, the *-labels-idx1-ubyte file next to it).",
                              flag="--data-labels", metavar="PATH")
