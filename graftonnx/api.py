"""The Python API the CLI wraps: inspect, score, plan and graft in a few calls.

Example::

    import graftonnx
    result = graftonnx.graft("net.onnx", "mnist5k", ratio=0.5, eps=0.02)
    result.save("net-grafted.onnx")

Every function takes a path, a ``ModelProto`` or a :class:`ModelHandle`.  A path is loaded,
checked and inspected once per process (cached by path, size and mtime); a proto is copied
first and never changed; pass ``graftonnx.open(proto)`` to several calls to inspect it once.
Keyword arguments of ``score``/``plan``/``graft`` are :class:`GraftSettings` fields
(declared in their stages, :mod:`graftonnx.settings`) and override ``settings``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np
import onnx

from ._io import atomic_write
from ._version import __version__
from .data.dataset import Dataset, DataSpec
from .errors import BadInput
from .model.handle import ModelHandle, ModelLike, open_model
from .model.info import ModelInfo
from .planning.build import check_count, make_plan, needs_activations
from .planning.plan import GraftPlan, Provenance
from .planning.settings import GraftSettings
from .rewrite.graft import apply_plan
from .scoring.score import instability_counts, labels_for, prepared_model, score_model
from .scoring.settings import DEFAULT_EPS
from .scoring.significance import ScoringContext
from .scoring.table import ScoreTable

__all__ = ["ModelLike", "DataLike", "GraftSettings", "GraftResult", "ModelHandle", "open", "load", "load_data",
           "inspect", "score", "plan", "graft", "accuracy", "unr", "save_model", "settings_with", "DEFAULT_EPS"]

DataLike = Dataset | str | os.PathLike[str] | None


def open(model: ModelLike) -> ModelHandle:  # noqa: A001 - the API's verb, like io.open
    """A handle (proto + info + onnxruntime runner, each built once) for a path, a proto or a handle."""
    return open_model(model)


def load(model: ModelLike) -> onnx.ModelProto:
    """A validated model proto from a path (a given proto is copied, never renamed in place)."""
    return open_model(model).proto


def load_data(data: DataLike, info: ModelInfo, spec: DataSpec | None = None) -> Dataset:
    """A Dataset from a Dataset, a path / built-in name, or None (uniform samples, with a warning)."""
    if isinstance(data, Dataset):
        return data
    from .data import load_dataset

    return load_dataset(None if data is None else str(data), info, spec or DataSpec())


def inspect(model: ModelLike) -> ModelInfo:
    return open_model(model).info


def settings_with(settings: GraftSettings | None, **knobs: object) -> GraftSettings:
    """``settings`` (default: all defaults) with ``knobs`` replaced; an unknown knob is BadInput.

    ``count=`` alone clears the ratio (they are exclusive), so ``settings_with(s, count=10)`` works.
    """
    names = {f.name for f in fields(GraftSettings)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise BadInput(f"unknown graft setting {unknown[0]!r}: use one of {', '.join(sorted(names))}")
    if knobs.get("count") is not None and "ratio" not in knobs:
        knobs["ratio"] = None
    return replace(settings or GraftSettings(), **knobs)  # type: ignore[arg-type]


def score(model: ModelLike, data: DataLike = None, settings: GraftSettings | None = None,
          progress: bool = False, **knobs: object) -> ScoreTable:
    """Instability and significance of every ReLU neuron (see :func:`graftonnx.scoring.score_model`)."""
    s = settings_with(settings, **knobs)
    h = open_model(model)
    ds = load_data(data, h.info)
    return score_model(h.proto, ds, eps=s.eps, bound=s.bound, significance=s.significance, info=h.info,
                       batch_size=s.batch_size, progress=progress, model_name=h.name, device=s.device)


def plan(model: ModelLike, data: DataLike = None, settings: GraftSettings | None = None,
         scores: ScoreTable | None = None, progress: bool = False, **knobs: object) -> GraftPlan:
    """A graft plan for ``model``: scores (computed unless given), selection, initial lines."""
    s = settings_with(settings, **knobs)
    h = open_model(model)
    check_count(h.info, s)  # before the slow scoring
    ds = load_data(data, h.info)
    if scores is None:
        scores = score(h, ds, s, progress)
    _check_scores(scores, h.info)
    acts = None
    if needs_activations(h.info, s):
        prepared = prepared_model(h.proto, ds)
        acts = ScoringContext(prepared, ds.x, labels_for(prepared, ds), h.info.sites, s.batch_size).activations()
    recorded = replace(s, eps=scores.eps, bound=scores.bound, significance=scores.significance)
    prov = Provenance(model="" if isinstance(model, onnx.ModelProto) else h.name, dataset=scores.dataset,
                      tool_version=__version__, ratio_counts="neurons" if s.ratio is not None else "",
                      settings=recorded)
    return make_plan(scores, h.info, s, activations=acts, provenance=prov)


_plan = plan  # graft() takes a ``plan`` argument that shadows the function


def _check_scores(scores: ScoreTable, info: ModelInfo) -> None:
    extra = sorted({x.site for x in scores.sites} - {r.name for r in info.sites})
    if extra:
        raise BadInput(f"scores list site {extra[0]!r}, which this model does not have: were they computed for "
                       "this model?")
    for site in info.sites:
        try:
            got = scores.site(site.name)
        except KeyError:
            raise BadInput(f"scores have no entry for {site.op} site {site.name!r}: were they computed for this "
                           "model?") from None
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


def graft(model: ModelLike, data: DataLike = None, *, plan: GraftPlan | None = None,
          settings: GraftSettings | None = None, progress: bool = False, **knobs: object) -> GraftResult:
    """Score, plan and rewrite ``model`` in one call (or apply ``plan``, a reviewed GraftPlan, directly).

    ``settings`` is honoured field by field; keyword arguments are fields of
    :class:`GraftSettings` (``ratio``, ``count``, ``eps``, ``criterion``, ``granularity``,
    ``init``, ...) that override it.
    """
    h = open_model(model)
    scores = None
    if plan is None:
        s = settings_with(settings, **knobs)
        ds = load_data(data, h.info)
        scores = score(h, ds, s, progress)
        plan = _plan(h, ds, s, scores=scores)
    return GraftResult(apply_plan(h.proto, plan, h.info), plan, scores, h.info)


def accuracy(model: ModelLike, data: Dataset) -> float | None:
    """Top-1 accuracy of ``model`` on labelled ``data`` (None without labels)."""
    if data.y is None:
        return None
    m = prepared_model(load(model), data)
    from .model.runtime import OrtRunner

    pred = OrtRunner(m).logits(data.x).argmax(axis=1)
    return float(np.mean(pred == data.y))


def unr(model: ModelLike, data: Dataset, eps: float, bound: str = "ibp", sites: Sequence[str] | None = None,
        progress: bool = False) -> dict[str, float]:
    """Unstable neurons per image, per ReLU site (grafted neurons are fed zero, so never count)."""
    h = open_model(model)
    chosen = [s for s in h.info.relus if sites is None or s.name in sites]
    counts = instability_counts(prepared_model(h.proto, data), data, chosen, eps, bound, progress=progress)
    return {k: float(v.sum() / len(data)) for k, v in counts.items()}


def save_model(model: onnx.ModelProto, path: str | os.PathLike[str]) -> None:
    """Write ``model`` atomically (temp file + rename)."""
    with atomic_write(Path(path)) as fh:
        fh.write(model.SerializeToString())
