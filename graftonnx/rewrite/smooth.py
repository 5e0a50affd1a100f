"""Grafting Sigmoid and Tanh sites (the paper's appendix): chosen units become ``a·z + b``.

Why a separate pass: ReLU grafting feeds the Relu a zero input so verifiers see a
stable neuron; a smooth activation has no such trick and needs none — verifiers relax
Sigmoid/Tanh everywhere, so replacing units by lines removes their relaxation error.
The form is ``y = keep⊙act(z) + (a⊙m)·z + b⊙m`` (keep = 1 − m), exact for non-grafted
units (``act(z)·1 + z·0 + 0``).  Sites are found on the raw ONNX graph (Sigmoid/Tanh
are not in ``graftonnx.model.ops.SUPPORTED_OPS``, so ``inspect_model`` would refuse
these models); records go to the ``graftonnx.smooth_grafts`` metadata key, which the
Relu-only torch bridge does not read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..errors import BadInput
from ..model.graftmeta import metadata
from ..model.info import ReluSite
from ..model.runtime import OrtRunner, tensor_shapes
from ..planning.plan import GRANULARITIES, GraftPlan, LayerPlan
from ._export import export_like
from .graft import layer_tensors

__all__ = ["SMOOTH_OPS", "SMOOTH_KEY", "smooth_sites", "apply_smooth_plan", "fit_smooth_lines", "smooth_plan"]

SMOOTH_OPS = {"Sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)), "Tanh": np.tanh}
SMOOTH_KEY = "graftonnx.smooth_grafts"


def smooth_sites(model: onnx.ModelProto) -> tuple[ReluSite, ...]:
    """Every Sigmoid/Tanh node as a site (``producer`` holds the activation op)."""
    nodes = [n for n in model.graph.node if n.op_type in SMOOTH_OPS]
    shapes = tensor_shapes(model, [n.input[0] for n in nodes]) if nodes else {}
    return tuple(ReluSite(n.name, n.input[0], n.output[0], n.op_type, shapes[n.input[0]]) for n in nodes)


def _validate(model: onnx.ModelProto, plan: GraftPlan) -> dict[str, ReluSite]:
    ops = {n.name: n.op_type for n in model.graph.node}
    sites = {s.name: s for s in smooth_sites(model)}
    for lp in plan.layers:
        where = f"plan layer {lp.site!r}"
        if lp.site not in ops:
            raise BadInput(f"{where}: no node of that name in the model; Sigmoid/Tanh nodes are "
                           f"{', '.join(sorted(sites)) or 'none'}")
        if lp.site not in sites:
            hint = "use `graftonnx graft` for Relu sites" if ops[lp.site] == "Relu" else "graft another node"
            raise BadInput(f"{where}: node is a {ops[lp.site]}; smooth grafting handles Sigmoid and Tanh only: {hint}")
        if lp.granularity not in GRANULARITIES:
            raise BadInput(f"{where}: granularity {lp.granularity!r} must be neuron or channel")
        units = lp.units(sites[lp.site].shape)
        if len(set(lp.indices)) != len(lp.indices) or not all(0 <= i < units for i in lp.indices):
            raise BadInput(f"{where}: indices must be distinct and within 0..{units - 1}")
        if not len(lp.a) == len(lp.b) == len(lp.indices) or not all(math.isfinite(v) for v in lp.a + lp.b):
            raise BadInput(f"{where}: a, b and indices must have the same length and a, b be finite")
    if len({lp.site for lp in plan.layers}) != len(plan.layers):
        raise BadInput("plan names one site twice: merge its indices into one entry")
    return sites


def _graft(graph: gs.Graph, act: gs.Node, lp: LayerPlan, site: ReluSite) -> dict[str, object]:
    keep, a, b = layer_tensors(lp, site)
    p, z, y = site.name, act.inputs[0], act.outputs[0]
    c = {k: gs.Constant(f"{p}/graft_{k}", v) for k, v in (("keep", keep), ("a", a), ("b", b))}
    v = {k: gs.Variable(f"{p}/graft_{k}_out", dtype=np.float32) for k in ("act", "kept", "az", "line")}
    act.outputs.clear()
    act.outputs.append(v["act"])
    graph.nodes.extend([
        gs.Node("Mul", f"{p}/graft_keep_mul", inputs=[v["act"], c["keep"]], outputs=[v["kept"]]),
        gs.Node("Mul", f"{p}/graft_a_mul", inputs=[z, c["a"]], outputs=[v["az"]]),
        gs.Node("Add", f"{p}/graft_b_add", inputs=[v["az"], c["b"]], outputs=[v["line"]]),
        gs.Node("Add", f"{p}/graft_sum", inputs=[v["kept"], v["line"]], outputs=[y]),
    ])
    return {"site": p, "op": site.producer, "keep": c["keep"].name, "a": c["a"].name, "b": c["b"].name,
            "granularity": lp.granularity, "count": lp.count}


def apply_smooth_plan(model: onnx.ModelProto, plan: GraftPlan) -> onnx.ModelProto:
    """A new model with the plan's Sigmoid/Tanh units grafted; input/output names, shapes, metadata kept."""
    sites = _validate(model, plan)
    meta = metadata(model)
    done = {r["site"] for r in json.loads(meta.get(SMOOTH_KEY, "[]"))}
    if done & {lp.site for lp in plan.layers if lp.indices}:
        raise BadInput("a plan site is already smooth-grafted in this model: graft the original model instead")
    graph = gs.import_onnx(model)
    acts = {n.name: n for n in graph.nodes if n.op in SMOOTH_OPS}
    records = [_graft(graph, acts[lp.site], lp, sites[lp.site]) for lp in plan.layers if lp.indices]
    meta[SMOOTH_KEY] = json.dumps(json.loads(meta.get(SMOOTH_KEY, "[]")) + records)
    return export_like(graph, model, meta, "smooth-grafted")


def fit_smooth_lines(z: np.ndarray, op: str) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``a, b`` per unit minimising Σ (a·z + b − act(z))²; ``z`` is (N, units, k).

    A unit whose pre-activation never varies gets a = 0, b = act(z) (exact on the data).
    """
    if op not in SMOOTH_OPS:
        raise BadInput(f"activation {op} has no smooth grafting: only Sigmoid and Tanh")
    zz = np.moveaxis(np.asarray(z, np.float64), 1, 0).reshape(z.shape[1], -1)
    r = SMOOTH_OPS[op](zz)
    mz, mr = zz.mean(axis=1), r.mean(axis=1)
    var = (zz * zz).mean(axis=1) - mz * mz
    cov = (zz * r).mean(axis=1) - mz * mr
    flat = var <= 1e-12 * np.maximum(1.0, mz * mz)
    a = np.where(flat, 0.0, cov / np.where(flat, 1.0, var))
    return a, mr - a * mz


def smooth_plan(model: onnx.ModelProto, x: np.ndarray, units: Mapping[str, Sequence[int]],
                granularity: str = "neuron") -> GraftPlan:
    """A plan grafting ``units`` (site → indices) with lines fitted on the pre-activations seen on ``x``."""
    sites = {s.name: s for s in smooth_sites(model)}
    probe = GraftPlan(tuple(LayerPlan(n, granularity, tuple(int(i) for i in idx), (0.0,) * len(idx),
                                      (0.0,) * len(idx)) for n, idx in units.items()))
    _validate(model, probe)
    acts = OrtRunner(model, [sites[n].input for n in units]).run(x)
    layers = []
    for lp in probe.layers:
        s = sites[lp.site]
        per = s.size // s.channels if granularity == "channel" else 1
        z = acts[s.input].reshape(len(x), -1, per)[:, list(lp.indices), :]
        a, b = fit_smooth_lines(z, s.producer)
        layers.append(LayerPlan(lp.site, granularity, lp.indices, tuple(map(float, a)), tuple(map(float, b))))
    return GraftPlan(tuple(layers))
