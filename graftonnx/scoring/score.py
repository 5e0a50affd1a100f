"""Scoring: instability (bounds over ε-balls) and significance for every ReLU neuron.

Sigmoid/Tanh units are never "unstable"; their instability column holds the mean relaxation
looseness of their pre-activation bounds instead (:func:`graftonnx.bounds.stream.chord_gap`),
what a verifier loses on them and what grafting them as a line removes (specs/smooth.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx

from .._progress import bar as progress_bar
from ..bounds.stream import smooth_looseness, unstable_counts
from ..data.dataset import Dataset
from ..device import using
from ..errors import BadInput
from ..model.info import ModelInfo, ReluSite, inspect_model
from ..model.runtime import OrtRunner
from ..model.transform import prepend_normalisation
from .significance import SIGNIFICANCE, ScoringContext
from .table import ScoreTable, SiteScore

__all__ = ["prepared_model", "labels_for", "instability_counts", "looseness_scores", "score_model"]


def prepared_model(model: onnx.ModelProto, data: Dataset) -> onnx.ModelProto:
    """The model taking raw pixels: the dataset's mean/std folded into the graph."""
    return prepend_normalisation(model, data.mean, data.std, data.channel_axis)


def labels_for(model: onnx.ModelProto, data: Dataset, batch_size: int = 256) -> np.ndarray:
    """The dataset's labels, or the model's own predictions for unlabelled (synthetic) data."""
    if data.y is not None:
        return np.asarray(data.y, dtype=np.int64)
    return OrtRunner(model, batch_size=batch_size).logits(data.x).argmax(axis=1).astype(np.int64)


def instability_counts(model: onnx.ModelProto, data: Dataset, sites: Sequence[ReluSite], eps: float,
                       bound: str = "ibp", batch_size: int = 256,
                       progress: bool = True) -> dict[str, np.ndarray]:
    """Per site, per neuron (flat): the number of images whose ε-ball makes the neuron unstable."""
    with progress_bar(total=len(data), desc=f"bounds ({bound}, eps={eps:g})", unit="img", progress=progress,
              leave=False) as bar:
        counts = unstable_counts(bound, model, data.x, eps, data.input_range, sites, batch_size, bar.update)
    return {name: per.reshape(-1) for name, per in counts.per_neuron.items()}


def looseness_scores(model: onnx.ModelProto, data: Dataset, sites: Sequence[ReluSite], eps: float,
                     bound: str = "ibp", batch_size: int = 256, progress: bool = True) -> dict[str, np.ndarray]:
    """Per Sigmoid/Tanh site, per neuron (flat): mean relaxation looseness over the images' ε-balls."""
    if not sites:
        return {}
    with progress_bar(total=len(data), desc=f"looseness ({bound}, eps={eps:g})", unit="img", progress=progress,
                      leave=False) as bar:
        total = smooth_looseness(bound, model, data.x, eps, data.input_range, sites, batch_size, bar.update)
    return {name: v / len(data) for name, v in total.items()}


def score_model(model: onnx.ModelProto, data: Dataset, *, eps: float, bound: str = "ibp",
                significance: str = "grad", info: ModelInfo | None = None, batch_size: int = 256,
                progress: bool = True, model_name: str = "", device: str = "cpu") -> ScoreTable:
    """Instability and significance scores for every ReLU neuron of ``model`` on ``data``.

    Instability of a neuron = fraction of images whose L∞ ε-ball (raw pixel space,
    clipped to the valid range) makes it unstable (l < 0 < u) under ``bound``; for a Sigmoid/Tanh
    unit, its mean relaxation looseness (see the module doc; its UNR is 0).  Torch work
    (CROWN bounds, gradients) runs on ``device`` (``auto``: CUDA when there is one).
    """
    if not eps >= 0:
        raise BadInput(f"--eps {eps} is negative: give the L∞ radius in raw pixel units (e.g. 0.02)")
    if len(data) == 0:
        raise BadInput(f"dataset {data.source} is empty: give at least one image")
    criterion = SIGNIFICANCE.get(significance)
    info = info or inspect_model(model)
    prepared = prepared_model(model, data)
    sites = info.sites
    n = len(data)
    with using(device):
        counts = instability_counts(prepared, data, info.relus, eps, bound, batch_size, progress)
        unstable = {k: v / n for k, v in counts.items()}
        loose = looseness_scores(prepared, data, info.smooth, eps, bound, batch_size, progress)
        ctx = ScoringContext(prepared, data.x, labels_for(prepared, data, batch_size), sites, batch_size)
        sig = criterion(ctx)
    scores = tuple(SiteScore(s.name, s.shape, loose[s.name] if s.smooth else unstable[s.name],
                             np.asarray(sig[s.name], np.float64).ravel(),
                             0.0 if s.smooth else float(counts[s.name].sum() / n)) for s in sites)
    return ScoreTable(scores, float(eps), bound, significance, n, data.describe(), model_name)
