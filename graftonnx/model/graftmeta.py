"""What a grafted ONNX says about itself (``graftonnx.*`` metadata), as typed records.

Why one module: the rewrite writes these entries, simplify and the native form rewrite them,
training, export and reports read them; with keys, JSON layout and checks in one place no
pass drifts from the readers.  The stored JSON is unchanged (one object per record, keys in
field order), so older grafted models load.  In ``model/`` (imports only ``errors``) so every
layer may use it.  ``check=True`` exists because a record naming a missing initialiser, or
a/b values on kept neurons, would make training silently change neurons never grafted.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any, TypeVar

import numpy as np
import onnx

from ..errors import BadInput

__all__ = ["GRAFTS_KEY", "SMOOTH_KEY", "PROVENANCE_KEY", "NATIVE_KEY", "GraftRecord", "NativeSite", "metadata",
           "set_metadata", "read_grafts", "write_grafts", "read_smooth", "write_smooth", "read_all_grafts",
           "read_native", "write_native", "read_provenance"]

GRAFTS_KEY = "graftonnx.grafts"
#: Grafted Sigmoid/Tanh sites (``rewrite/smooth.py``): the same record layout, the site a Sigmoid/Tanh node,
#: the form ``keep⊙act(z) + (a⊙m)·z + b⊙m`` (no zero shift: a smooth unit is never "unstable").
SMOOTH_KEY = "graftonnx.smooth_grafts"
_SMOOTH_OPS = ("Sigmoid", "Tanh")
PROVENANCE_KEY = "graftonnx.provenance"
#: Written by the verifier-ready form: every original ReLU site with its size and grafted neurons,
#: so reports count UNR and grafted neurons against the network the graft came from.
NATIVE_KEY = "graftonnx.native"

_T = TypeVar("_T")
_CONVERT = {"str": str, "int": int, "bool": bool}


@dataclass(frozen=True)
class GraftRecord:
    """One grafted Relu site: the initialisers holding keep, a⊙m and b⊙m, and ``count`` grafted units."""

    site: str
    keep: str
    a: str
    b: str
    granularity: str = "neuron"
    count: int = 0
    fixed: bool = False

    def neurons(self, per_channel: int) -> int:
        """Grafted neurons, given how many neurons one channel of the site has."""
        return self.count * (per_channel if self.granularity == "channel" else 1)


@dataclass(frozen=True)
class NativeSite:
    """One ReLU site of the network a verifier-ready form came from (``NATIVE_KEY``)."""

    site: str
    size: int
    grafted: int


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    """All metadata_props of ``model`` as a dict, in file order."""
    return {p.key: p.value for p in model.metadata_props}


def set_metadata(model: onnx.ModelProto, meta: Mapping[str, str]) -> onnx.ModelProto:
    """Replace ``model``'s metadata_props by ``meta`` (in place; returns ``model``)."""
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    return model


def _records(model: onnx.ModelProto, key: str, cls: type[_T]) -> tuple[_T, ...] | None:
    """The JSON list under ``key`` as ``cls`` records (None when absent); BadInput when malformed."""
    raw = metadata(model).get(key)
    if raw is None:
        return None
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"model metadata {key} is not valid JSON ({exc.msg}): re-run graftonnx graft") from None
    if not isinstance(items, list) or not all(isinstance(r, dict) for r in items):
        raise BadInput(f"model metadata {key} must be a JSON list of objects: re-run graftonnx graft")
    spec = fields(cls)  # type: ignore[arg-type]
    required = [f.name for f in spec if f.default is MISSING]
    out = []
    for i, item in enumerate(items):
        lacking = [name for name in required if name not in item]
        if lacking:
            raise BadInput(f"model metadata {key} entry #{i} lacks {lacking[0]!r}: each needs {', '.join(required)}")
        try:
            out.append(cls(**{f.name: _CONVERT[str(f.type)](item[f.name]) for f in spec if f.name in item}))
        except (TypeError, ValueError) as exc:
            raise BadInput(f"model metadata {key} entry #{i} is malformed ({exc}): re-run graftonnx graft") from None
    return tuple(out)


def _check(rec: GraftRecord, inits: Mapping[str, np.ndarray], relus: set[str], kind: str = "Relu") -> None:
    where = f"graft record for site {rec.site!r}"
    if rec.site not in relus:
        raise BadInput(f"{where}: no {kind} node of that name in the graph; the metadata does not match the model")
    for what, name in (("keep", rec.keep), ("a", rec.a), ("b", rec.b)):
        if name not in inits:
            raise BadInput(f"{where}: initialiser {name!r} ({what}) is missing from the graph")
    keep, a, b = inits[rec.keep], inits[rec.a], inits[rec.b]
    if not keep.shape == a.shape == b.shape:
        raise BadInput(f"{where}: keep, a and b have different shapes {keep.shape}, {a.shape}, {b.shape}")
    if not np.isin(keep, (0.0, 1.0)).all():
        raise BadInput(f"{where}: keep mask {rec.keep!r} holds values other than 0 and 1")
    if np.any(a[keep == 1.0] != 0) or np.any(b[keep == 1.0] != 0):
        raise BadInput(f"{where}: a or b is nonzero on a neuron that is not grafted (keep = 1)")


def read_grafts(model: onnx.ModelProto, check: bool = False) -> tuple[GraftRecord, ...]:
    """The graft records of ``model`` (empty for a model that was never grafted).

    ``check``: also verify them against the graph (see the module doc), as training must.
    """
    return _read_checked(model, GRAFTS_KEY, ("Relu",), check)


def _read_checked(model: onnx.ModelProto, key: str, ops: tuple[str, ...], check: bool) -> tuple[GraftRecord, ...]:
    records = _records(model, key, GraftRecord) or ()
    if check and records:
        inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
        nodes = {n.name for n in model.graph.node if n.op_type in ops}
        for rec in records:
            _check(rec, inits, nodes, "/".join(ops))
        used = [n for rec in records for n in (rec.keep, rec.a, rec.b)]
        if len(set(used)) != len(used):
            raise BadInput(f"model metadata {key} names one initialiser in two records: re-run graftonnx graft")
    return records


def write_grafts(meta: MutableMapping[str, str], records: Iterable[GraftRecord]) -> None:
    """Store ``records`` as ``meta[GRAFTS_KEY]`` (the one place the JSON is written)."""
    meta[GRAFTS_KEY] = json.dumps([asdict(r) for r in records])


def read_smooth(model: onnx.ModelProto, check: bool = False) -> tuple[GraftRecord, ...]:
    """The smooth (Sigmoid/Tanh) graft records of ``model``; ``check`` as for :func:`read_grafts`."""
    return _read_checked(model, SMOOTH_KEY, _SMOOTH_OPS, check)


def write_smooth(meta: MutableMapping[str, str], records: Iterable[GraftRecord]) -> None:
    """Store smooth ``records`` as ``meta[SMOOTH_KEY]``."""
    meta[SMOOTH_KEY] = json.dumps([asdict(r) for r in records])


def read_all_grafts(model: onnx.ModelProto, check: bool = False) -> tuple[GraftRecord, ...]:
    """Relu and smooth graft records together: what training and the torch bridge treat alike."""
    records = read_grafts(model, check) + read_smooth(model, check)
    used = [n for rec in records for n in (rec.keep, rec.a, rec.b)]
    if check and len(set(used)) != len(used):
        raise BadInput(f"{GRAFTS_KEY} and {SMOOTH_KEY} name one initialiser twice: re-run graftonnx graft")
    return records


def read_native(model: onnx.ModelProto) -> tuple[NativeSite, ...] | None:
    """The original network's sites of a verifier-ready model (None for any other model)."""
    return _records(model, NATIVE_KEY, NativeSite)


def write_native(meta: MutableMapping[str, str], sites: Iterable[NativeSite]) -> None:
    """Store ``sites`` as ``meta[NATIVE_KEY]``."""
    meta[NATIVE_KEY] = json.dumps([asdict(s) for s in sites])


def read_provenance(model: onnx.ModelProto) -> dict[str, Any]:
    """Where the graft plan came from (ratio, criterion, source model...); ``{}`` when absent or unreadable."""
    with contextlib.suppress(ValueError):
        prov = json.loads(metadata(model).get(PROVENANCE_KEY, "{}"))
        return prov if isinstance(prov, dict) else {}
    return {}
