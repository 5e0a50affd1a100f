"""The verifier-ready form of smooth (Sigmoid/Tanh) grafts: grafted units leave the activation.

Why: in the mask form ``keep⊙act(z) + (a⊙m)·z + b⊙m`` a verifier still relaxes the activation
of every grafted unit (then multiplies it by 0) and bounds three extra elementwise nodes, so a
CROWN pass got slower the more was grafted.  For a flat site fed by a Gemm that feeds nothing
else, whose output feeds one Gemm, the producer is split by rows instead::

    x ── Gemm(W[K], c[K]) ── act ──────────┐
    x ── Gemm(a·W[G], a·c[G] + b) ─────────┴── Concat ── Gemm(V[:, K ⧺ G]) ──▶

K the kept rows, G the grafted ones; the consumer's input columns are permuted to match, so
the activation holds only the kept units and a grafted unit is one affine row.  Exact up to
float32 rounding of the folded rows (``export`` checks ≤ 1e-5 against the mask form).  Other
sites (conv feature maps, shared producers, several consumers) stay in mask form and are
reported.  The rewritten sites' records leave ``graftonnx.smooth_grafts``.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..model.graftmeta import GraftRecord, metadata, read_smooth, write_smooth
from ._export import export_like

__all__ = ["smooth_native_form"]


def _gemm_weights(node: gs.Node) -> tuple[np.ndarray, np.ndarray] | None:
    """``(W, c)`` with ``y = x·Wᵀ + c`` for a plain constant Gemm, else None."""
    attrs = node.attrs
    if (node.op != "Gemm" or attrs.get("transA", 0) or float(attrs.get("alpha", 1.0)) != 1.0
            or float(attrs.get("beta", 1.0)) != 1.0 or len(node.inputs) < 2
            or not all(isinstance(t, gs.Constant) for t in node.inputs[1:])):
        return None
    w = np.asarray(node.inputs[1].values, np.float64)
    w = w if attrs.get("transB", 0) else w.T
    c = np.asarray(node.inputs[2].values, np.float64) if len(node.inputs) > 2 else np.zeros(w.shape[0])
    return (w, np.broadcast_to(c, (w.shape[0],))) if w.ndim == 2 else None


def _site_nodes(graph: gs.Graph, rec: GraftRecord) -> dict[str, gs.Node] | str:
    """The producer, activation, the four graft nodes and the consumer of a splittable site, or why not."""
    by_name = {n.name: n for n in graph.nodes}
    p = rec.site
    names = {"act": p, "keep": f"{p}/graft_keep_mul", "a": f"{p}/graft_a_mul", "b": f"{p}/graft_b_add",
             "sum": f"{p}/graft_sum"}
    if not set(names.values()) <= set(by_name) or rec.granularity != "neuron":
        return "not a per-neuron mask-form site"
    nodes = {k: by_name[v] for k, v in names.items()}
    z, y = nodes["act"].inputs[0], nodes["sum"].outputs[0]
    if len(z.inputs) != 1 or _gemm_weights(z.inputs[0]) is None or len(z.outputs) != 2:
        return "its pre-activation is not a constant Gemm read only by the site"
    consumers = list(y.outputs)
    outputs = {t.name for t in graph.outputs}
    if len(consumers) != 1 or _gemm_weights(consumers[0]) is None or consumers[0].inputs[0] is not y \
            or y.name in outputs:
        return "its output does not feed exactly one constant Gemm"
    return nodes | {"producer": z.inputs[0], "consumer": consumers[0]}


def _split(graph: gs.Graph, rec: GraftRecord, nodes: dict[str, gs.Node]) -> None:
    keep = np.asarray(nodes["keep"].inputs[1].values, np.float64).ravel()
    a = np.asarray(nodes["a"].inputs[1].values, np.float64).ravel()
    b = np.asarray(nodes["b"].inputs[1].values, np.float64).ravel()
    w, c = _gemm_weights(nodes["producer"])  # type: ignore[misc]
    v, d = _gemm_weights(nodes["consumer"])  # type: ignore[misc]
    kept, grafted = np.flatnonzero(keep == 1.0), np.flatnonzero(keep == 0.0)
    x, p = nodes["producer"].inputs[0], rec.site
    f32 = np.float32
    parts = []
    if kept.size:
        zk = gs.Variable(f"{p}/native_z", dtype=f32)
        graph.nodes.append(gs.Node("Gemm", f"{p}/native_kept", {"transB": 1}, [x, gs.Constant(
            f"{p}/native_kept_w", w[kept].astype(f32)), gs.Constant(f"{p}/native_kept_c", c[kept].astype(f32))], [zk]))
        yk = gs.Variable(f"{p}/native_act", dtype=f32)
        nodes["act"].inputs, nodes["act"].outputs = [zk], [yk]
        parts.append(yk)
    else:
        nodes["act"].outputs.clear()
    if grafted.size:
        yg = gs.Variable(f"{p}/native_line", dtype=f32)
        wl, cl = a[grafted, None] * w[grafted], a[grafted] * c[grafted] + b[grafted]
        graph.nodes.append(gs.Node("Gemm", f"{p}/native_line", {"transB": 1}, [x, gs.Constant(
            f"{p}/native_line_w", wl.astype(f32)), gs.Constant(f"{p}/native_line_c", cl.astype(f32))], [yg]))
        parts.append(yg)
    if len(parts) == 2:
        joined = gs.Variable(f"{p}/native_concat", dtype=f32)
        graph.nodes.append(gs.Node("Concat", f"{p}/native_concat", {"axis": 1}, parts, [joined]))
    else:
        joined = parts[0]
    order = np.concatenate([kept, grafted])
    con = nodes["consumer"]
    con.inputs = [joined, gs.Constant(f"{con.name}/native_w", v[:, order].astype(f32)),
                  gs.Constant(f"{con.name}/native_c", np.asarray(d, f32))]
    con.attrs["transB"] = 1
    for k in ("keep", "a", "b", "sum"):
        nodes[k].outputs.clear()


def smooth_native_form(model: onnx.ModelProto) -> tuple[onnx.ModelProto, tuple[str, ...], tuple[str, ...]]:
    """``(model, split sites, skipped "site: why")``: every splittable smooth graft rewritten (module doc)."""
    records = read_smooth(model)
    if not records:
        return model, (), ()
    graph = gs.import_onnx(model)
    done, skipped, left = [], [], []
    for rec in records:
        nodes = _site_nodes(graph, rec)
        if isinstance(nodes, str):
            skipped.append(f"{rec.site}: {nodes}")
            left.append(rec)
            continue
        _split(graph, rec, nodes)
        done.append(rec.site)
    if not done:
        return model, (), tuple(skipped)
    meta = metadata(model)
    write_smooth(meta, left)
    return export_like(graph, model, meta, "smooth verifier-ready"), tuple(done), tuple(skipped)
