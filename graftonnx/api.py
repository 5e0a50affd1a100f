"""The Python API the CLI wraps: inspect, score, plan and graft in a few calls.

Example::

    import graftonnx
    result = graftonnx.graft("net.onnx", "mnist5k", ratio=0.5, eps=0.02)
    result.save("net-grafted.onnx")
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx

from ._io import atomic_write
from ._version import __version__
from .data.dataset import Dataset, DataSpec
from .errors import BadInput
from .model.info import ModelInfo, inspect_model
from .model.loader import load_model
from .model.runtime import OrtRunner
from .planning.build import make_plan
from .planning.plan import GraftPlan, Provenance
from .planning.select import Selection
from .rewrite.graft import apply_plan
from .scoring.score import instability_counts, labels_for, prepared_model, score_model
from .scoring.significance import ScoringContext
from .scoring.table import ScoreTable

__all__ = ["ModelLike", "DataLike", "GraftSettings", "GraftResult", "load", "load_data", "inspect", "score",
           "plan", "graft", "accuracy", "unr", "save_model"]

ModelLike = str | os.PathLike[str] | onnx.ModelProto
DataLike = Dataset | str | os.PathLike[str] | None

DEFAULT_EPS = 0.02


def load(model: ModelLike) -> onnx.ModelProto:
    """A validated model from a path (or the given ModelProto, with node names filled in)."""
    if isinstance(model, onnx.ModelProto):
        from .model.loader import name_nodes

        return name_nodes(model)
    return load_model(model)


def load_data(data: DataLike, info: ModelInfo, spec: DataSpec | None = None) -> Dataset:
    """A Dataset from a Dataset, a path / built-in name, or None (uniform samples, with a warning)."""
    if isinstance(data, Dataset):
        return data
    from .data import load_dataset

    return load_dataset(None if data is None else str(data), info, spec or DataSpec())


def inspect(model: ModelLike) -> ModelInfo:
    return inspect_model(load(model))


@dataclass(frozen=True)
class GraftSettings:
    """Every knob of scoring, selection and initialisation (one object, recorded in provenance)."""

    eps: float = DEFAULT_EPS
    bound: str = "ibp"
    significance: str = "grad"
    criterion: str = "combined"
    ratio: float | None = 0.5
    count: int | None = None
    scope: str = "global"
    granularity: str = "neuron"
    init: str = "const"
    layers: tuple[str, ...] | None = None
    stages: int = 5
    seed: int = 0
    batch_size: int = 256
    schedule: str = "target"

    def selection(self) -> Selection:
        return Selection(self.criterion, self.ratio, self.count, self.scope, self.stages, self.seed, self.schedule)


def score(model: ModelLike, data: DataLike = None, settings: GraftSettings | None = None,
          progress: bool = False) -> ScoreTable:
    """Instability and significance of every ReLU neuron (see :func:`graftonnx.scoring.score_model`)."""
    s = settings or GraftSettings()
    m = load(model)
    info = inspect_model(m)
    ds = load_data(data, info)
    name = str(model) if not isinstance(model, onnx.ModelProto) else (m.graph.name or "model")
    return score_model(m, ds, eps=s.eps, bound=s.bound, significance=s.significance, info=info,
                       batch_size=s.batch_size, progress=progress, model_name=name)


def plan(model: ModelLike, data: DataLike = None, settings: GraftSettings | None = None,
         scores: ScoreTable | None = None, progress: bool = False) -> GraftPlan:
    """A graft plan for ``model``: scores (computed unless given), selection, initial lines."""
    s = settings or GraftSettings()
    sel = s.selection()  # validate the selection before any slow work
    m = load(model)
    info = inspect_model(m)
    ds = load_data(data, info)
    if scores is None:
        scores = score_model(m, ds, eps=s.eps, bound=s.bound, significance=s.significance, info=info,
                             batch_size=s.batch_size, progress=progress)
    _check_scores(scores, info)
    acts = None
    if s.init == "fit" and s.criterion != "prune":
        prepared = prepared_model(m, ds)
        acts = ScoringContext(prepared, ds.x, labels_for(prepared, ds), info.relus, s.batch_size).activations()
    prov = Provenance(model=str(model) if not isinstance(model, onnx.ModelProto) else "", criterion=s.criterion,
                      ratio=s.ratio, count=s.count, scope=s.scope, granularity=s.granularity, eps=scores.eps,
                      bound=scores.bound, significance=scores.significance, dataset=scores.dataset,
                      init="zero" if s.criterion == "prune" else s.init, seed=s.seed, tool_version=__version__,
                      stages=s.stages, schedule=s.schedule, ratio_counts="neurons" if s.ratio is not None else "")
    return make_plan(scores, info, sel, granularity=s.granularity, init=s.init, layers=s.layers,
                     activations=acts, provenance=prov)


_plan = plan  # graft() takes a ``plan`` argument that shadows the function


def _check_scores(scores: ScoreTable, info: ModelInfo) -> None:
    for site in info.relus:
        try:
            got = scores.site(site.name)
        except KeyError:
            raise BadInput(f"scores have no entry for ReLU site {site.name!r}: were they computed for this model?") \
                from None
        if got.instability.size != site.size:
            raise BadInput(f"scores for site {site.name!r} have {got.instability.size} neurons, the model has "
                           f"{site.size}: were they computed for this model?")


@dataclass(frozen=True, eq=False)
class GraftResult:
    """The grafted model with the plan and scores that produced it."""

    model: onnx.ModelProto
    plan: GraftPlan
    scores: ScoreTable | None
    info: ModelInfo

    def save(self, path: str | os.PathLike[str]) -> None:
        save_model(self.model, path)


def graft(model: ModelLike, data: DataLike = None, *, ratio: float | None = 0.5, count: int | None = None,
          eps: float = DEFAULT_EPS, plan: GraftPlan | None = None, settings: GraftSettings | None = None,
          progress: bool = False, **kwargs: object) -> GraftResult:
    """Score, plan and rewrite ``model`` in one call (or apply ``plan``, a reviewed GraftPlan, directly).

    Keyword arguments not named here are fields of :class:`GraftSettings`
    (``criterion``, ``granularity``, ``init``, ``bound``, ``significance``, ...).
    """
    s = settings or GraftSettings()
    s = replace(s, ratio=ratio if count is None else None, count=count, eps=eps, **kwargs)  # type: ignore[arg-type]
    m = load(model)
    info = inspect_model(m)
    scores = None
    if plan is None:
        ds = load_data(data, info)
        scores = score_model(m, ds, eps=s.eps, bound=s.bound, significance=s.significance, info=info,
                             batch_size=s.batch_size, progress=progress)
        plan = _plan(m, ds, s, scores=scores)
    return GraftResult(apply_plan(m, plan, info), plan, scores, info)


def accuracy(model: ModelLike, data: Dataset) -> float | None:
    """Top-1 accuracy of ``model`` on labelled ``data`` (None without labels)."""
    if data.y is None:
        return None
    m = prepared_model(load(model), data)
    pred = OrtRunner(m).logits(data.x).argmax(axis=1)
    return float(np.mean(pred == data.y))


def unr(model: ModelLike, data: Dataset, eps: float, bound: str = "ibp", sites: Sequence[str] | None = None,
        progress: bool = False) -> dict[str, float]:
    """Unstable neurons per image, per ReLU site (grafted neurons are fed zero, so never count)."""
    m = load(model)
    info = inspect_model(m)
    chosen = [s for s in info.relus if sites is None or s.name in sites]
    counts = instability_counts(prepared_model(m, data), data, chosen, eps, bound, progress=progress)
    return {k: float(v.sum() / len(data)) for k, v in counts.items()}


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Write ``model`` atomically (temp file + rename)."""
    with atomic_write(Path(path)) as fh:
        fh.write(model.SerializeToString())
