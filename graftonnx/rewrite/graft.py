"""The graft rewrite: chosen neurons of a Relu become ``a·z + b``, exactly.

Form (specs/rewrite.md has the full specification and the reasons)::

    z ─ Mul(keep) ─ Add(zero) ─ Relu ─┐
    z ─ Mul(a⊙m) ─ Add(b⊙m) ──────────┴─ Add ─▶ y      (m = graft mask, keep = 1 − m)

* non-grafted neurons: keep = 1, a⊙m = b⊙m = 0, so ``y = Relu(z)`` bit for bit;
* grafted neurons: the Relu is fed an identically-zero input (l = u = 0: stable for
  every verifier) and ``y = a·z + b``;
* every Relu stays fed by an ``Add`` — α,β-CROWN's branching heuristics accept Add but
  crash on a Relu fed by Mul (``NotImplementedError: BoundMul``);
* no weight is duplicated, so finetuning the weights needs no tying: the masks are the
  only new constants, and ``a``/``b`` are initialisers named in metadata.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from .._version import __version__
from ..errors import BadInput
from ..model.graftmeta import (
    PROVENANCE_KEY,
    GraftRecord,
    metadata,
    read_grafts,
    read_smooth,
    write_grafts,
    write_smooth,
)
from ..model.info import ModelInfo, ReluSite, inspect_model
from ..planning.plan import GraftPlan, LayerPlan
from ._export import export_like

__all__ = ["apply_plan", "layer_tensors"]


def layer_tensors(lp: LayerPlan, site: ReluSite) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keep, a⊙m, b⊙m)`` as float32 arrays of the per-image shape (channels: (C, 1, …)).

    No leading batch axis: ONNX broadcasting is the same, and auto_LiRPA 0.6.0's backward
    pass through ``Add(·, const)`` asserts on a (1, n) constant when that Add feeds a Gemm.
    """
    if lp.granularity == "channel":
        units, shape = site.channels, (site.channels,) + (1,) * (len(site.shape) - 1)
    else:
        units, shape = site.size, tuple(site.shape)
    m = np.zeros(units, np.float32)
    a = np.zeros(units, np.float32)
    b = np.zeros(units, np.float32)
    idx = np.asarray(lp.indices, dtype=np.int64)
    m[idx] = 1.0
    a[idx] = np.asarray(lp.a, np.float32)
    b[idx] = np.asarray(lp.b, np.float32)
    return (1.0 - m).reshape(shape), a.reshape(shape), b.reshape(shape)


def _check_finite(lp: LayerPlan, a: np.ndarray, b: np.ndarray) -> None:
    """The float32 constants about to be written are finite, or BadInput naming site and unit.

    Why again after :meth:`GraftPlan.validate`: plans built in Python bypass the JSON
    parser, and this is the last point before a meaningless ``inf`` reaches the model.
    """
    for key, values, given in (("a", a, lp.a), ("b", b, lp.b)):
        bad = np.flatnonzero(~np.isfinite(values.ravel()))
        if bad.size:
            unit = int(bad[0])
            k = list(lp.indices).index(unit) if unit in lp.indices else -1
            value = given[k] if k >= 0 else values.ravel()[unit]
            raise BadInput(f"site {lp.site!r} {lp.granularity} {unit}: {key} = {float(value):g} is not a finite "
                           f"float32: use a finite |{key}| < 3.4e38")


def _graft_site(graph: gs.Graph, relu: gs.Node, lp: LayerPlan, site: ReluSite) -> GraftRecord:
    with np.errstate(over="ignore", invalid="ignore"):
        keep, a, b = layer_tensors(lp, site)
    _check_finite(lp, a, b)
    p = site.name
    z, y = relu.inputs[0], relu.outputs[0]
    c_keep = gs.Constant(f"{p}/graft_keep", keep)
    c_zero = gs.Constant(f"{p}/graft_zero", np.zeros((1,), np.float32))
    c_a = gs.Constant(f"{p}/graft_a", a)
    c_b = gs.Constant(f"{p}/graft_b", b)
    v = {k: gs.Variable(f"{p}/graft_{k}_out", dtype=np.float32) for k in ("kept", "shifted", "relu", "az", "line")}
    relu.inputs = [v["shifted"]]
    relu.outputs = [v["relu"]]
    graph.nodes.extend([
        gs.Node("Mul", f"{p}/graft_keep_mul", inputs=[z, c_keep], outputs=[v["kept"]]),
        gs.Node("Add", f"{p}/graft_zero_add", inputs=[v["kept"], c_zero], outputs=[v["shifted"]]),
        gs.Node("Mul", f"{p}/graft_a_mul", inputs=[z, c_a], outputs=[v["az"]]),
        gs.Node("Add", f"{p}/graft_b_add", inputs=[v["az"], c_b], outputs=[v["line"]]),
        gs.Node("Add", f"{p}/graft_sum", inputs=[v["relu"], v["line"]], outputs=[y]),
    ])
    return GraftRecord(p, c_keep.name, c_a.name, c_b.name, lp.granularity, lp.count, lp.fixed)


def _metadata(original: onnx.ModelProto, records: list[GraftRecord], smooth: list[GraftRecord],
              provenance: dict[str, object]) -> dict[str, str]:
    meta = metadata(original)
    write_grafts(meta, read_grafts(original) + tuple(records))
    if smooth:
        write_smooth(meta, read_smooth(original) + tuple(smooth))
    meta[PROVENANCE_KEY] = json.dumps(provenance | {"tool": f"graftonnx {__version__}"})
    return meta


def apply_plan(model: onnx.ModelProto, plan: GraftPlan, info: ModelInfo | None = None) -> onnx.ModelProto:
    """A new model with ``plan`` grafted in; the input model is not modified.

    The result passes ``onnx.checker`` (full check) and keeps the input/output names and
    shapes, node names of untouched nodes, opset and metadata (plus graftonnx's keys).
    """
    from .smooth import graft_smooth_site  # local: smooth.py builds its tensors with layer_tensors above

    info = info or inspect_model(model)
    plan.validate(info)
    done = {r.site for r in read_grafts(model) + read_smooth(model)}
    for lp in plan.layers:
        if lp.site in done and lp.indices:
            raise BadInput(f"site {lp.site!r} is already grafted in this model: graft the original model instead")
    graph = gs.import_onnx(model)
    nodes = {n.name: n for n in graph.nodes if n.op in ("Relu", "Sigmoid", "Tanh")}
    chosen = [(lp, info.site(lp.site)) for lp in plan.layers if lp.indices]
    records = [_graft_site(graph, nodes[lp.site], lp, site) for lp, site in chosen if not site.smooth]
    smooth = [graft_smooth_site(graph, nodes[lp.site], lp, site) for lp, site in chosen if site.smooth]
    return export_like(graph, model, _metadata(model, records, smooth, plan.provenance.to_dict()), "grafted")
