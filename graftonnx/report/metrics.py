"""Per-model metrics of a verification run: VA, verdict counts, times, UNR, SA and RA.

Why per (model, backend) rows measured against the benchmark folder: the paper's claim is
"grafted nets verify more often and faster", so a report must put a grafted net's VA,
times and unstable-neuron ratio beside its baseline's, on *the same* instances.  VA counts
against every instance instances.csv lists for the model, so an unfinished run can never
look better than it is (unrun instances are reported as ``missing``), and an answer after
the instance's timeout counts as a timeout (:func:`counted_verdict`), as in VNN-COMP.
"""

from __future__ import annotations

import os
import re
import statistics
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import onnx

from ..bench.spec import Property
from ..bench.vnnlib import read_vnnlib
from ..bounds.base import BOUND_METHODS
from ..data.dataset import Dataset
from ..errors import BadInput
from ..model.graftmeta import read_all_grafts, read_native, read_provenance
from ..model.info import ModelInfo, inspect_model
from ..model.loader import load_model
from ..settings import Settings, at_least, knob
from ..verify.result import VERDICTS, Result, Verdict, is_solved
from ..verify.runner import Instance, read_instances
from .results import JournalRecord, read_journals
from .unr import BoxUnr, unr_on_boxes

__all__ = ["ReportOptions", "ModelMetrics", "Report", "GraftInfo", "DataSource", "build_report", "graft_info",
           "group_key", "time_stats", "counted_verdict"]

#: Images for SA/RA: one Dataset for every model, or a loader given each model's ModelInfo.
DataSource = Dataset | Callable[[ModelInfo], Dataset] | None


@dataclass(frozen=True)
class ReportOptions(Settings):
    """How the report measures (UNR bound method, the PGD attack for RA when data is given) and draws its figures."""

    bound: str = knob("ibp", "Bound method for the unstable-neuron ratio on the instances' input boxes.",
                      choices=BOUND_METHODS.keys)
    batch_size: int = knob(64, "Input boxes bounded at once.", check=at_least(1))
    eps: float | None = knob(None, "L∞ radius (raw pixel scale) for PGD robust accuracy on --data. Default: SA only.",
                             check=at_least(0))
    steps: int = knob(100, "PGD steps per restart.", check=at_least(1))
    restarts: int = knob(5, "PGD random restarts.", check=at_least(1))
    seed: int = knob(0, "Random seed (attack starts).")
    format: str = knob("png", "File format of every figure (pdf and svg are vector, for papers).",
                       choices=("png", "pdf", "svg"), runtime=True)
    dpi: int = knob(150, "Resolution of the figures in dots per inch (sets a PNG's pixel size).", check=at_least(50),
                    runtime=True)


@dataclass(frozen=True)
class GraftInfo:
    """What a grafted ONNX says about itself (``graftonnx.provenance`` / ``graftonnx.grafts`` metadata)."""

    grafted: bool
    ratio: float | None = None
    criterion: str | None = None
    neurons: int | None = None
    source: str = ""


@dataclass(frozen=True)
class ModelMetrics:
    """One report row: a model of the benchmark under one backend (``backend == ""``: no results)."""

    model: str
    name: str
    group: str
    backend: str
    instances: int
    sat: int  # sat … errors: the verdict counts, in VERDICTS order
    unsat: int
    timeouts: int
    unknown: int
    errors: int
    missing: int
    mean_time: float | None
    median_time: float | None
    mean_time_solved: float | None
    median_time_solved: float | None
    times: tuple[float, ...]
    verdicts: tuple[Verdict, ...]
    unr: BoxUnr
    graft: GraftInfo
    sa: float | None = None
    ra: float | None = None

    @property
    def va(self) -> float | None:
        """Verified accuracy: unsat / instances listed for this model (None without results)."""
        return self.unsat / self.instances if self.backend and self.instances else None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unr"] = {"bound": self.unr.bound, "boxes": self.unr.boxes, "unr": self.unr.unr,
                    "unstable": self.unr.unstable, "neurons": self.unr.neurons,
                    "layers": [asdict(x) | {"unr": x.unr} for x in self.unr.layers]}
        d["times"], d["verdicts"] = list(self.times), list(self.verdicts)
        return d | {"va": self.va}


@dataclass(frozen=True)
class Report:
    """All rows, sorted so grafted variants sit beside their baseline, plus how they were measured."""

    bench: str
    journals: tuple[str, ...]
    options: ReportOptions
    data: str | None
    rows: tuple[ModelMetrics, ...]

    @property
    def has_grafts(self) -> bool:
        return any(r.graft.grafted for r in self.rows)

    @property
    def has_accuracy(self) -> bool:
        return any(r.sa is not None for r in self.rows)

    @property
    def backends(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.backend for r in self.rows if r.backend))

    def to_dict(self) -> dict[str, Any]:
        return {"bench": self.bench, "journals": list(self.journals), "options": asdict(self.options),
                "data": self.data, "models": [r.to_dict() for r in self.rows]}


_GRAFT_SUFFIX = re.compile(r"[-_.]?graft(ed)?([-_]?[0-9.]+)?([-_.].*)?$", re.IGNORECASE)


def group_key(name: str, source: str = "") -> str:
    """The baseline's name a model belongs with: ``net-graft25`` and ``net_grafted-ft`` → ``net``."""
    stem = Path(source).stem if source else name
    return _GRAFT_SUFFIX.sub("", stem) or stem


def graft_info(model: onnx.ModelProto, info: ModelInfo) -> GraftInfo:
    """Ratio, criterion and grafted-neuron count from the model's metadata (absent: not grafted)."""
    records, prov, table = read_all_grafts(model), read_provenance(model), read_native(model)
    if not records and not prov and table is None:
        return GraftInfo(False)
    sites = {s.name: s for s in info.sites}
    neurons = sum(r.neurons(sites[r.site].per_channel if r.site in sites else 1) for r in records)
    if table is not None:  # verifier-ready form: the table counts every site's grafted neurons
        neurons = sum(r.grafted for r in table)
    ratio = prov.get("ratio")
    return GraftInfo(True, float(ratio) if isinstance(ratio, int | float) else None,
                     str(prov.get("criterion") or "") or None, neurons if records or table is not None else None,
                     str(prov.get("model") or ""))


def time_stats(times: Sequence[float]) -> tuple[float | None, float | None]:
    """(mean, median) of ``times``; (None, None) when empty."""
    if not times:
        return None, None
    return float(statistics.fmean(times)), float(statistics.median(times))


def counted_verdict(result: Result, timeout: float) -> Verdict:
    """The verdict a row counts as: an answer (not an error) after the instance's ``timeout`` is a ``timeout``.

    Why again here when the runner already does it: journals written before the runner
    enforced the timeout, or verified with a larger ``--timeout`` than instances.csv lists,
    still hold late answers, and VNN-COMP counts those as timeouts.
    """
    late = result.verdict not in (Verdict.TIMEOUT, Verdict.ERROR) and float(result.seconds) > timeout
    if late or result.late_verdict is not None:
        return Verdict.TIMEOUT
    return result.verdict


def _row(model: str, backend: str, listed: list[Instance], results: list[JournalRecord], unr: BoxUnr,
         graft: GraftInfo, acc: tuple[float | None, float | None]) -> ModelMetrics:
    limit = {i.key: i.timeout for i in listed}
    verdicts = [counted_verdict(r.result, limit[r.result.instance]) for r in results]
    times = [float(r.result.seconds) for r in results]
    solved = [t for t, v in zip(times, verdicts, strict=True) if is_solved(v)]
    mean, median = time_stats(times)
    mean_s, median_s = time_stats(solved)
    name = Path(model).stem
    return ModelMetrics(model, name, group_key(name, graft.source), backend, len(listed),
                        *(verdicts.count(v) for v in VERDICTS), len(listed) - len(results), mean, median, mean_s,
                        median_s, tuple(times), tuple(verdicts), unr, graft, acc[0], acc[1])


def _accuracy(model: onnx.ModelProto, info: ModelInfo, data: DataSource, opts: ReportOptions
              ) -> tuple[float | None, float | None]:
    """(SA, RA) with every attack confirmed in onnxruntime; RA only when ``opts.eps`` is set."""
    if data is None:
        return None, None
    from ..train.evaluate import EvalConfig, evaluate

    ds = data(info) if callable(data) else data
    if ds.y is None:
        raise BadInput(f"dataset {ds.source} has no labels: SA and RA need the true class of each image")
    res = evaluate(model, ds, EvalConfig(opts.eps or 0.0, opts.steps, opts.restarts, seed=opts.seed))
    return res.sa, (res.ra if opts.eps is not None else None)


def _regroup(rows: list[ModelMetrics], sites: dict[str, tuple[tuple[str, int], ...]]) -> list[ModelMetrics]:
    """Attach a grafted model whose name does not name its baseline to the one baseline with its ReLU sites.

    Why: the rewrite keeps every ReLU site's name and size, so ``my-experiment.onnx`` grafted
    from ``net.onnx`` is recognised by its sites when its file name says nothing.
    """
    baselines = {r.group: sites[r.model] for r in rows if not r.graft.grafted}
    out = []
    for r in rows:
        if r.graft.grafted and r.group not in baselines:
            match = [g for g, sig in baselines.items() if sig == sites[r.model]]
            if len(match) == 1:
                r = replace(r, group=match[0])
        out.append(r)
    return out


def _sort_key(r: ModelMetrics) -> tuple[Any, ...]:
    return (r.group, r.graft.grafted, r.graft.ratio if r.graft.ratio is not None else -1.0, r.graft.criterion or "",
            r.name, r.backend)


def _model_rows(bench: Path, model: str, listed: list[Instance], done: dict[tuple[str, str], JournalRecord],
                backends: Sequence[str], props: dict[str, Property], opts: ReportOptions, data: DataSource
                ) -> tuple[list[ModelMetrics], tuple[tuple[str, int], ...]]:
    """The rows of one model (one per backend with results) and its ReLU-site signature."""
    proto = load_model(bench / model)
    info = inspect_model(proto)
    boxes = [props[v] for v in dict.fromkeys(i.vnnlib for i in listed)]
    unr = unr_on_boxes(proto, info, boxes, opts.bound, opts.batch_size, where=str(bench / model))
    graft = graft_info(proto, info)
    acc = _accuracy(proto, info, data, opts)
    per_backend = [(b, [done[(i.key, b)] for i in listed if (i.key, b) in done]) for b in backends]
    per_backend = [(b, rs) for b, rs in per_backend if rs] or [("", [])]
    rows = []
    for backend, rs in per_backend:
        rows.append(_row(model, backend, listed, rs, unr, graft, acc))
        if backend and len(rs) < len(listed):
            warnings.warn(f"{backend} has results for {len(rs)} of the {len(listed)} instances of {model}: "
                          "the rest count as missing (not verified)", stacklevel=3)
    table = read_native(proto)
    if table is not None:  # the verifier-ready form is recognised by its original sites
        return rows, tuple((r.site, r.size) for r in table)
    return rows, tuple((s.name, s.size) for s in info.relus)


def build_report(journals: Sequence[str | os.PathLike[str]], bench: str | os.PathLike[str],
                 options: ReportOptions | None = None, data: DataSource = None,
                 data_label: str | None = None) -> Report:
    """Metrics of every model of ``bench`` from the results in ``journals`` (later lines/files win).

    Rows: one per (model, backend) that has results, and one with ``backend == ""`` for a
    model no journal covers (its UNR still tells how hard it is).  ``data`` adds SA (and RA
    at ``options.eps``); the bench's models take raw pixels, so give the data unnormalised.
    ``data_label`` describes the data in the report (default: the Dataset's own description).
    Everything the user can get wrong is checked before the first bound is computed.
    """
    opts = options or ReportOptions()
    BOUND_METHODS.get(opts.bound)
    if opts.eps is not None and not opts.eps >= 0:
        raise BadInput(f"--eps {opts.eps} must be >= 0 (the L∞ attack radius on the raw pixel scale)")
    if opts.eps is not None and data is None:
        raise BadInput("--eps measures robust accuracy on images: give --data too")
    root = Path(bench)
    instances = read_instances(root)
    done = read_journals(journals, instances, root)
    props = {v: read_vnnlib(root / v) for v in dict.fromkeys(i.vnnlib for i in instances)}
    backends = sorted({b for _, b in done})
    rows: list[ModelMetrics] = []
    sites: dict[str, tuple[tuple[str, int], ...]] = {}
    for model in dict.fromkeys(i.model for i in instances):
        listed = [i for i in instances if i.model == model]
        got, sites[model] = _model_rows(root, model, listed, done, backends, props, opts, data)
        rows += got
    desc = data_label or (None if data is None else data.describe() if isinstance(data, Dataset) else "given")
    rows = sorted(_regroup(rows, sites), key=_sort_key)
    return Report(str(bench), tuple(str(j) for j in journals), opts, desc, tuple(rows))
