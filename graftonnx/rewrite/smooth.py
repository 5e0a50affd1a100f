"""Grafting Sigmoid and Tanh sites (the paper's appendix): chosen units become ``a·z + b``.

Why a separate pass: ReLU grafting feeds the Relu a zero input so verifiers see a
stable neuron; a smooth activation has no such trick and needs none — verifiers relax
Sigmoid/Tanh everywhere, so replacing units by lines removes their relaxation error.
The form is ``y = keep⊙act(z) + (a⊙m)·z + b⊙m`` (keep = 1 − m), exact for non-grafted
units (``act(z)·1 + z·0 + 0``).  ``graftonnx graft`` reaches it through
:func:`graftonnx.rewrite.graft.apply_plan` (a plan naming Sigmoid/Tanh sites of
``ModelInfo.smooth``); :func:`apply_smooth_plan` works on the raw graph (sites found
without ``inspect_model``, for ``simplify``).  Records go to ``graftonnx.smooth_grafts``
(``graftmeta.SMOOTH_KEY``), which the torch bridge reads like Relu grafts, so finetuning
trains ``a`` and ``b``.  specs/smooth.md has the whole design.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..errors import BadInput
from ..model.graftmeta import SMOOTH_KEY, GraftRecord, metadata, read_smooth, write_smooth
from ..model.info import ReluSite
from ..model.ops import SMOOTH_FUNCTIONS
from ..model.runtime import OrtRunner, tensor_shapes
from ..planning.init import fit_smooth_lines
from ..planning.plan import GRANULARITIES, GraftPlan, LayerPlan
from ._export import export_like
from .graft import layer_tensors

__all__ = ["SMOOTH_OPS", "SMOOTH_KEY", "smooth_sites", "graft_smooth_site", "apply_smooth_plan", "fit_smooth_lines",
           "smooth_plan"]


SMOOTH_OPS = SMOOTH_FUNCTIONS


def smooth_sites(model: onnx.ModelProto) -> tuple[ReluSite, ...]:
    """Every Sigmoid/Tanh node as a site (``op`` the activation, ``producer`` the op feeding it)."""
    nodes = [n for n in model.graph.node if n.op_type in SMOOTH_OPS]
    shapes = tensor_shapes(model, [n.input[0] for n in nodes]) if nodes else {}
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    return tuple(ReluSite(n.name, n.input[0], n.output[0], producers.get(n.input[0], "input"), shapes[n.input[0]],
                          n.op_type) for n in nodes)


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


def graft_smooth_site(graph: gs.Graph, act: gs.Node, lp: LayerPlan, site: ReluSite) -> GraftRecord:
    """Rewrite one Sigmoid/Tanh node of ``graph`` into the mask form; its record for ``SMOOTH_KEY``."""
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
    return GraftRecord(p, c["keep"].name, c["a"].name, c["b"].name, lp.granularity, lp.count, lp.fixed)


def apply_smooth_plan(model: onnx.ModelProto, plan: GraftPlan) -> onnx.ModelProto:
    """A new model with the plan's Sigmoid/Tanh units grafted; input/output names, shapes, metadata kept."""
    sites = _validate(model, plan)
    meta = metadata(model)
    done = {r.site for r in read_smooth(model)}
    if done & {lp.site for lp in plan.layers if lp.indices}:
        raise BadInput("a plan site is already smooth-grafted in this model: graft the original model instead")
    graph = gs.import_onnx(model)
    acts = {n.name: n for n in graph.nodes if n.op in SMOOTH_OPS}
    records = [graft_smooth_site(graph, acts[lp.site], lp, sites[lp.site]) for lp in plan.layers if lp.indices]
    write_smooth(meta, read_smooth(model) + tuple(records))
    return export_like(graph, model, meta, "smooth-grafted")


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
        a, b = fit_smooth_lines(z, s.op)
        layers.append(LayerPlan(lp.site, granularity, lp.indices, tuple(map(float, a)), tuple(map(float, b))))
    return GraftPlan(tuple(layers))
