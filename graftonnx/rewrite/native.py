"""The verifier-ready form of a grafted network: grafted units leave the Relu, no Mul on a feature map.

Why: the mask form (``graft.py``) is what finetuning needs, but verifiers pay for it.  Its
elementwise ``Mul``/``Add`` by a non-scalar constant on a conv feature map is bounded in
patches mode by neither auto_LiRPA 0.6.0 (neuralsat) nor 0.7.0 (α,β-CROWN), so they fall
back to matrix mode (3× slower on resnet_2b) or assert; and grafted units stay in the Relu
(fed zero), where α,β-CROWN's BaBSR finds no usable score and hits an upstream bug.

:func:`native_form` rewrites every graft it can into Conv, Gemm, Add, Concat and Relu only:

1. ``simplify(drop_channels=True)``: fully grafted sites lose their Relu, linear runs fold,
   and a site whose producing Conv/Gemm feeds only it is split by output unit;
2. every other per-channel (or flat) site becomes the *selection form*::

       z ─ Sel (1×1 Conv / Gemm, 0/1 weights) ─ Relu ─ Scatter (0/1) ─┐
       z ─ Line (1×1 Conv, diag(a⊙m), bias b⊙m; flat: Mul + Add) ─────┴─ Add ─▶ y

   so the Relu holds only the kept units and is fed by a Conv/Gemm;
3. a remaining per-channel ``Mul``/``Add``/``Sub``/``Div`` by a constant on a 4-D tensor
   (the line of a fully grafted residual site) becomes a 1×1 Conv.

Neuron-granularity grafts on a conv feature map have per-position slopes that no Conv can
express; they stay in mask form and are reported (the embedded auto_LiRPA bounds them in patches
mode through ``graftonnx._lirpa_patches``; α,β-CROWN in matrix mode).
Exact: selection and scatter weights are 0/1 (adding exact zeros), the line is ``a·z + b``.
Smooth (Sigmoid/Tanh) grafts get their own split first (:mod:`graftonnx.rewrite.smooth_native`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..model.graftmeta import NativeSite, metadata, read_grafts, read_native, set_metadata, write_native
from ..model.info import inspect_model
from ..model.runtime import tensor_shapes
from .channels import _unit_vector, per_site_pass, unit_scatter, unit_selection
from .fold import (
    Affine,
    GraftPattern,
    SimplifyReport,
    _channel_vector,
    _report,
    const_of,
    finish_model,
    fold_linear,
    model_counts,
    simplify,
)
from .smooth_native import smooth_native_form

__all__ = ["native_form", "select_kept", "channel_consts_to_conv", "spatial_const_ops", "spatial_mask_ops"]

_CHANNEL_OPS = ("Mul", "Add", "Sub", "Div")


def _diag_conv(a: np.ndarray, b: np.ndarray) -> Affine:
    return Affine("Conv", np.diag(a.astype(np.float64))[:, :, None, None], b.astype(np.float64))


def _select_site(graph: gs.Graph, pat: GraftPattern, ndim: int) -> str:
    """Rewrite one mask-form site into the selection form; a description, or ``"!"`` + why not."""
    keep, a, b = (_unit_vector(v) for v in (pat.keep, pat.a, pat.b))
    if keep is None or a is None or b is None:
        return "!a neuron-granularity graft on a feature map has per-position slopes: no Conv expresses it"
    if ndim not in (2, 4):
        return f"!its pre-activation has {ndim} axes (only flat and N×C×H×W sites have a Conv/Gemm form)"
    kept = np.flatnonzero(keep == 1)
    if not kept.size or kept.size == keep.size or not np.all((keep == 0) | (keep == 1)):
        return "!nothing to select: no kept or no grafted unit"
    op, site, z, n = ("Gemm" if ndim == 2 else "Conv"), pat.relu.name, pat.z, keep.size
    v = {k: gs.Variable(f"{site}/native_{k}", dtype=np.float32) for k in ("sel", "relu", "back", "line")}
    graph.nodes.append(unit_selection(kept, n, op).node(f"{site}/native_sel", z, v["sel"], "w"))
    pat.relu.inputs, pat.relu.outputs = [v["sel"]], [v["relu"]]
    graph.nodes.append(unit_scatter(kept, n, op).node(f"{site}/native_scatter", v["relu"], v["back"], "w"))
    if op == "Conv":
        graph.nodes.append(_diag_conv(a, b).node(f"{site}/native_line", z, v["line"], "w"))
    else:  # flat: Mul/Add by a vector is fine in every verifier, and n×n weights would not be
        v["line"] = pat.b_add.outputs[0]
    pat.total.inputs = [v["back"], v["line"]]
    pat.keep_mul.outputs.clear()
    line = "a 1×1 Conv" if op == "Conv" else "Mul+Add"
    return f"{site}: Relu on {kept.size} of {n} units via a 0/1 {op} selection, line as {line}"


def select_kept(model: onnx.ModelProto) -> tuple[onnx.ModelProto, SimplifyReport]:
    """Rewrite every partially grafted per-channel or flat site still in mask form into the selection form."""
    zs = [n.input[0] for n in model.graph.node if n.name.endswith("/graft_keep_mul")]
    shapes = tensor_shapes(model, zs) if zs else {}
    return per_site_pass(model, lambda graph, pat, _: _select_site(graph, pat, len(shapes[pat.z.name]) + 1))


def channel_consts_to_conv(model: onnx.ModelProto) -> tuple[onnx.ModelProto, SimplifyReport]:
    """Each ``x ∘ c`` with ∘ in Mul/Add/Sub/Div and c per channel of a 4-D ``x`` becomes a 1×1 Conv.

    Only after the first Conv (the input's normalisation stays as it is: no verifier needs
    bounds there).  ``x / c`` becomes ``x · (1/c)``, exact up to one rounding.  The ops of a
    site still in mask form are left alone: its per-position keep mask stays anyway, and its
    graft record (which names a and b) must keep pointing at live initialisers.
    """
    masked = tuple(f"{r.site}/graft_" for r in read_grafts(model))
    graph = gs.import_onnx(model)
    graph.toposort()
    names = [t.name for n in graph.nodes for t in n.outputs]
    shapes = tensor_shapes(model, [n for n in names if n]) if names else {}
    folded, seen_conv = [], False
    for node in list(graph.nodes):
        seen_conv = seen_conv or node.op == "Conv"
        if not seen_conv or node.op not in _CHANNEL_OPS or len(node.inputs) != 2 or node.name.startswith(masked):
            continue
        x = node.inputs[0]
        shape = shapes.get(x.name) if const_of(x) is None else None
        if shape is None or len(shape) != 3:
            continue
        raw = const_of(node.inputs[1])
        c = _channel_vector(raw, shape[0]) if raw is not None and raw.size > 1 else None
        if c is None or isinstance(c, str) or (node.op == "Div" and np.any(c == 0)):
            continue
        a = c if node.op == "Mul" else 1.0 / c if node.op == "Div" else np.ones(c.size)
        b = c if node.op == "Add" else -c if node.op == "Sub" else np.zeros(c.size)
        y = node.outputs[0]
        node.outputs.clear()
        graph.nodes.append(_diag_conv(a, b).node(f"{node.name}/as_conv", x, y, "w"))
        folded.append(f"{node.op} {node.name} → 1×1 Conv")
    out = finish_model(graph, model, set())
    return out, _report(model, out, folded=tuple(folded))


SpatialConstOp = tuple[onnx.NodeProto, list[tuple[int, ...]], tuple[int, ...]]


def spatial_const_ops(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]] | None = None
                      ) -> list[SpatialConstOp]:
    """``(node, its non-scalar constants' dims, its per-image output shape)`` for every Add/Sub/Mul/Div
    after the first Conv that applies a non-scalar constant to a feature map.

    ``shapes`` (per-image, by tensor name) are computed when not given.  These ops are what
    patches mode bounds only partly: see :func:`spatial_mask_ops` and ``graftonnx._lirpa._conv_mode``.
    """
    dims = {t.name: tuple(int(d) for d in t.dims) for t in model.graph.initializer}
    dims |= {n.output[0]: tuple(int(d) for d in n.attribute[0].t.dims) for n in model.graph.node
             if n.op_type == "Constant"}
    if shapes is None:
        names = [o for n in model.graph.node for o in n.output if o]
        shapes = tensor_shapes(model, names) if names else {}
    found: list[SpatialConstOp] = []
    seen_conv = False
    for node in model.graph.node:  # ONNX keeps nodes in topological order
        seen_conv = seen_conv or node.op_type == "Conv"
        shape = shapes.get(node.output[0], ()) if node.output else ()
        if not seen_conv or node.op_type not in _CHANNEL_OPS or len(shape) < 2:
            continue
        consts = [dims[i] for i in node.input if i in dims and int(np.prod(dims[i])) > 1]
        if consts:
            found.append((node, consts, shape))
    return found


def spatial_mask_ops(model: onnx.ModelProto) -> list[str]:
    """Nodes after the first Conv that apply a non-scalar constant elementwise to a feature map.

    What α,β-CROWN's auto_LiRPA cannot bound in patches mode; empty for a network
    :func:`native_form` fully converted (a per-neuron conv graft leaves some).
    """
    return [node.name for node, _, _ in spatial_const_ops(model)]


def _site_table(model: onnx.ModelProto) -> tuple[NativeSite, ...]:
    """Every ReLU site of the mask-form ``model`` with its size and grafted neurons (``NATIVE_KEY``)."""
    done = read_native(model)
    if done is not None:  # already converted once: keep the original network's table
        return done
    sites = {s.name: s for s in inspect_model(model).relus}
    grafted = {name: 0 for name in sites}
    for r in read_grafts(model):
        grafted[r.site] += r.neurons(sites[r.site].per_channel)
    return tuple(NativeSite(name, s.size, grafted[name]) for name, s in sites.items())


def native_form(model: onnx.ModelProto, fold: bool = True) -> tuple[onnx.ModelProto, SimplifyReport]:
    """The verifier-ready network (module doc): simplify + split, selection form, per-channel consts as Conv.

    The result's ``graftonnx.native`` metadata lists the original ReLU sites (size, grafted
    neurons), so reports measure it against the network it came from.
    """
    table = _site_table(model)
    nodes, params, _ = model_counts(model)
    model, split, smooth_skipped = smooth_native_form(model)  # Sigmoid/Tanh grafts: rows out of the activation
    out, rep = simplify(model, fold=fold, drop_channels=True)
    rep = replace(rep, split=tuple(f"{s}: smooth graft split by rows" for s in split) + rep.split,
                  skipped=smooth_skipped + rep.skipped, nodes_before=nodes, params_before=params)
    steps = (select_kept, channel_consts_to_conv) + ((fold_linear,) if fold else ())
    for step in steps:  # the last fold merges a converted Mul with the Add after it
        out, more = step(out)
        rep = rep.then(more)
    done = {item.split(":")[0] for item in rep.split}
    last: dict[str, str] = {}  # one line per site: the last pass's reason (passes run in order)
    for item in rep.skipped:
        last.pop(item.split(":")[0], None)
        last[item.split(":")[0]] = item
    meta = metadata(out)
    if any(r.grafted for r in table):  # an ungrafted net stays ungrafted
        write_native(meta, table)
    return set_metadata(out, meta), replace(rep, skipped=tuple(v for k, v in last.items() if k not in done))
