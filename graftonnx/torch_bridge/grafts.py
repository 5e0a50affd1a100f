"""Reading the ``graftonnx.grafts`` metadata of a grafted model, checked against its graph.

Why checked here: the torch module turns each record's ``a``/``b`` initialisers into
trainable parameters masked by ``m = 1 − keep``.  A record that names a missing
initialiser, or ``a``/``b`` values on non-grafted neurons, would make training or the
write-back silently change the function of neurons that were never grafted, so such a
model is rejected with a one-line :class:`~graftonnx.errors.BadInput`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import BadInput

__all__ = ["GRAFTS_KEY", "GraftRecord", "read_grafts", "graft_constants"]

#: Metadata key written by :mod:`graftonnx.rewrite.graft` (same string; a test checks they agree).
GRAFTS_KEY = "graftonnx.grafts"


@dataclass(frozen=True)
class GraftRecord:
    """One grafted site: the Relu node and the initialisers holding keep, a⊙m and b⊙m."""

    site: str
    keep: str
    a: str
    b: str
    fixed: bool = False


def _parse(model: onnx.ModelProto) -> list[dict[str, object]]:
    raw = next((p.value for p in model.metadata_props if p.key == GRAFTS_KEY), None)
    if raw is None:
        return []
    try:
        records = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadInput(f"model metadata {GRAFTS_KEY} is not valid JSON ({exc.msg}): re-run graftonnx graft") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise BadInput(f"model metadata {GRAFTS_KEY} must be a JSON list of objects: re-run graftonnx graft")
    return records


def _check(rec: GraftRecord, inits: Mapping[str, np.ndarray], relus: set[str]) -> None:
    where = f"graft record for site {rec.site!r}"
    if rec.site not in relus:
        raise BadInput(f"{where}: no Relu node of that name in the graph; the metadata does not match the model")
    for field_name in ("keep", "a", "b"):
        name = getattr(rec, field_name)
        if name not in inits:
            raise BadInput(f"{where}: initialiser {name!r} ({field_name}) is missing from the graph")
    keep, a, b = inits[rec.keep], inits[rec.a], inits[rec.b]
    if not keep.shape == a.shape == b.shape:
        raise BadInput(f"{where}: keep, a and b have different shapes {keep.shape}, {a.shape}, {b.shape}")
    if not np.isin(keep, (0.0, 1.0)).all():
        raise BadInput(f"{where}: keep mask {rec.keep!r} holds values other than 0 and 1")
    if np.any(a[keep == 1.0] != 0) or np.any(b[keep == 1.0] != 0):
        raise BadInput(f"{where}: a or b is nonzero on a neuron that is not grafted (keep = 1)")


def read_grafts(model: onnx.ModelProto) -> tuple[GraftRecord, ...]:
    """The validated graft records of ``model`` (empty for a model that was never grafted)."""
    records = _parse(model)
    if not records:
        return ()
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    relus = {n.name for n in model.graph.node if n.op_type == "Relu"}
    out: list[GraftRecord] = []
    for i, r in enumerate(records):
        try:
            rec = GraftRecord(str(r["site"]), str(r["keep"]), str(r["a"]), str(r["b"]), bool(r.get("fixed", False)))
        except KeyError as exc:
            raise BadInput(f"model metadata {GRAFTS_KEY} entry #{i} lacks {exc.args[0]!r}: "
                           "each needs site, keep, a, b") from None
        _check(rec, inits, relus)
        out.append(rec)
    used = [n for rec in out for n in (rec.keep, rec.a, rec.b)]
    if len(set(used)) != len(used):
        raise BadInput(f"model metadata {GRAFTS_KEY} names one initialiser in two records: re-run graftonnx graft")
    return tuple(out)


def graft_constants(model: onnx.ModelProto, records: tuple[GraftRecord, ...]) -> set[str]:
    """Float constants that belong to the graft structure and must never train.

    That is each record's ``keep`` and the constant added after ``z·keep`` (the ``zero``
    of ``Relu(Add(Mul(z, keep), zero))``): training it would shift every kept neuron.
    """
    producers = {o: n for n in model.graph.node for o in n.output}
    inits = {t.name for t in model.graph.initializer}
    frozen: set[str] = set()
    for rec in records:
        frozen.add(rec.keep)
        relu = next(n for n in model.graph.node if n.op_type == "Relu" and n.name == rec.site)
        add = producers.get(relu.input[0])
        if add is not None and add.op_type == "Add":
            frozen.update(i for i in add.input if i in inits)
    return frozen
