"""Drop grafted channels from a site's Relu: split the producer into kept and grafted parts.

Why: the mask form keeps every unit in the Relu (grafted ones fed zero), so a verifier
still allocates — and some still count — those neurons.  Splitting the producing Conv
(or Gemm) by output channel gives a Relu over the kept channels only, fed directly by
its own Conv/Gemm slice (α,β-CROWN's branching needs a linear producer), while the
grafted channels become one more Conv/Gemm slice with the line folded into its
weights.  The parts are concatenated, and either the consumers' weights are permuted
to the new channel order (when every consumer is a Conv/Gemm/MatMul with constant
weights) or the parts are cut into runs that keep the original order.  Exact up to
float rounding of the folded line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..model.graftmeta import read_grafts
from .fold import Affine, GraftPattern, SimplifyReport, _report, const_of, finish_model, graft_pattern, seed_map

__all__ = ["drop_grafted_channels", "per_site_pass", "unit_selection", "unit_scatter"]


def unit_selection(idx: np.ndarray, n: int, op: str) -> Affine:
    """The 0/1 map picking units ``idx`` of ``n`` (x ↦ x[idx]) as a Gemm or a 1×1 Conv."""
    w = np.zeros((n, idx.size))
    w[idx, np.arange(idx.size)] = 1.0
    return Affine("Gemm", w, np.zeros(idx.size)) if op == "Gemm" else Affine("Conv", w.T[:, :, None, None],
                                                                             np.zeros(idx.size))


def unit_scatter(idx: np.ndarray, n: int, op: str) -> Affine:
    """The 0/1 map putting ``idx.size`` units back at positions ``idx`` of ``n`` (zeros elsewhere)."""
    w = np.zeros((idx.size, n))
    w[np.arange(idx.size), idx] = 1.0
    return Affine("Gemm", w, np.zeros(n)) if op == "Gemm" else Affine("Conv", w.T[:, :, None, None], np.zeros(n))


def _unit_vector(arr: np.ndarray) -> np.ndarray | None:
    """A keep/a/b tensor as one value per unit, if it is per channel (or per neuron of a flat site).

    Accepts the rewrite's per-image shapes ((n,) and (C, 1, …)) and older batch-led ones ((1, n), (1, C, 1, …)).
    """
    if arr.ndim == 1:
        return arr
    if arr.ndim == 2 and arr.shape[0] == 1:
        return arr[0]
    if all(d == 1 for d in arr.shape[1:]):
        return arr.reshape(-1)
    if arr.shape[0] == 1 and all(d == 1 for d in arr.shape[2:]):
        return arr.reshape(arr.shape[1])
    return None


def _take(state: Affine, idx: np.ndarray) -> Affine:
    if state.op == "Gemm":
        return replace(state, w=state.w[:, idx], c=state.c[idx])
    return replace(state, w=state.w[idx], c=state.c[idx])


def _permuted_weight(node: gs.Node, y: gs.Tensor, order: np.ndarray, tag: str) -> gs.Constant | None:
    """The consumer's weight with its input axis permuted by ``order``, or None if it cannot be."""
    if node.inputs[0] is not y or len(node.inputs) < 2 or any(t is y for t in node.inputs[1:]):
        return None
    w = const_of(node.inputs[1])
    if w is None:
        return None
    a = node.attrs
    if node.op == "Conv" and w.ndim >= 3 and a.get("group", 1) == 1:
        w = w[:, order]
    elif node.op == "Gemm" and not a.get("transA", 0) and w.ndim == 2:
        w = w[:, order] if a.get("transB", 0) else w[order]
    elif node.op == "MatMul" and w.ndim == 2:
        w = w[order]
    else:
        return None
    return gs.Constant(f"{node.name}/{tag}", np.ascontiguousarray(w))


def _runs(keep: np.ndarray) -> list[np.ndarray]:
    """Maximal runs of equal keep values, in channel order."""
    cuts = np.flatnonzero(np.diff(keep)) + 1
    return np.split(np.arange(keep.size), cuts)


def _parts(graph: gs.Graph, site: str, producer: gs.Node, groups: list[np.ndarray], state: Affine,
           keep: np.ndarray, a: np.ndarray, b: np.ndarray) -> list[gs.Tensor]:
    """One producer slice per group (Relu on kept groups, the line folded into grafted ones)."""
    x, pname = producer.inputs[0], producer.name
    tensors, first_relu = [], True
    for i, idx in enumerate(groups):
        part = _take(state, idx)
        kept = bool(keep[idx[0]])
        if not kept:
            part = part.scaled(a[idx].astype(np.float64))
            part = replace(part, c=part.c + b[idx])
        lin = gs.Variable(f"{site}/split{i}_lin", dtype=np.float32)
        graph.nodes.append(part.node(f"{pname}/{'kept' if kept else 'grafted'}{i}", x, lin, f"split{i}"))
        if kept:
            out = gs.Variable(f"{site}/split{i}_relu", dtype=np.float32)
            graph.nodes.append(gs.Node("Relu", site if first_relu else f"{site}/relu{i}", inputs=[lin], outputs=[out]))
            first_relu, lin = False, out
        tensors.append(lin)
    return tensors


def _split_scatter(graph: gs.Graph, pat: GraftPattern, producer: gs.Node, state: Affine, kept: np.ndarray,
                   a: np.ndarray, b: np.ndarray) -> str:
    """A Conv site: ``Scatter(Relu(Conv_kept(x))) + Conv_line(x)``, no Concat.

    Why no Concat: α,β-CROWN's auto_LiRPA 0.7.0 fails on a Concat of conv channels in
    patches mode (a bias shape mismatch in ``concretize_bounds.add_b``).  ``Conv_line`` is the
    producer with the line folded in (rows of kept channels are zero, so they add exact zeros).
    """
    site, pname, x, n = pat.relu.name, producer.name, producer.inputs[0], a.size
    v = {k: gs.Variable(f"{site}/split_{k}", dtype=np.float32) for k in ("kept", "relu", "back", "line")}
    graph.nodes.append(_take(state, kept).node(f"{pname}/kept", x, v["kept"], "split"))
    pat.relu.inputs, pat.relu.outputs = [v["kept"]], [v["relu"]]
    graph.nodes.append(unit_scatter(kept, n, "Conv").node(f"{site}/split_scatter", v["relu"], v["back"], "w"))
    line = state.scaled(a.astype(np.float64))
    graph.nodes.append(replace(line, c=line.c + b).node(f"{pname}/grafted", x, v["line"], "split"))
    pat.total.inputs = [v["back"], v["line"]]
    pat.keep_mul.outputs.clear()
    pat.a_mul.outputs.clear()
    return f"{site}: Relu on {kept.size} kept channels of {n}, grafted ones in the producer's folded line (scatter)"


def _split_site(graph: gs.Graph, pat: GraftPattern, outs: set[str], k: int) -> str:
    """Split one site in place; returns a description, or ``"!"`` + the reason it was left alone."""
    keep, a, b = (_unit_vector(v) for v in (pat.keep, pat.a, pat.b))
    if keep is None or a is None or b is None:
        return "!a neuron-granularity graft on a spatial site: only whole channels can be dropped"
    kept, grafted = np.flatnonzero(keep == 1), np.flatnonzero(keep == 0)
    if not kept.size or not grafted.size:
        return "!nothing to split: the site has no kept or no grafted unit"
    producer = pat.z.inputs[0] if pat.z.inputs else None
    if producer is None or producer.op not in ("Conv", "Gemm"):
        return f"!its pre-activation comes from {producer.op if producer else 'the input'}, not a Conv or Gemm"
    if len(pat.z.outputs) != 2 or pat.z.name in outs:
        return "!its pre-activation has consumers outside the graft"
    state = seed_map(producer, {})
    if isinstance(state, str):
        return "!" + state
    if state.op == "Conv":
        return _split_scatter(graph, pat, producer, state, kept, a, b)
    y = pat.total.outputs[0]
    order = np.concatenate([kept, grafted])
    perms = None if y.name in outs else [(n, _permuted_weight(n, y, order, f"perm{k}_w")) for n in list(y.outputs)]
    permute = perms is not None and all(w is not None for _, w in perms)
    groups = [kept, grafted] if permute else _runs(keep)
    site, pname = pat.relu.name, producer.name
    parts = _parts(graph, site, producer, groups, state, keep, a, b)
    pat.relu.name, producer.name = site + "/unsplit", pname + "/unsplit"  # removed by cleanup
    pat.total.outputs.clear()
    target = gs.Variable(f"{site}/split_out", dtype=np.float32) if permute else y
    graph.nodes.append(gs.Node("Concat", f"{site}/split_concat", attrs={"axis": 1}, inputs=parts, outputs=[target]))
    if permute:
        for node, w in perms or []:
            node.inputs[0] = target
            node.inputs[1] = w
    how = "consumers permuted" if permute else f"{len(groups)} runs in channel order"
    return f"{site}: Relu on {kept.size} kept units, {grafted.size} grafted units linear ({how})"


def per_site_pass(model: onnx.ModelProto, rewrite: Callable[[gs.Graph, GraftPattern, int], str]
                  ) -> tuple[onnx.ModelProto, SimplifyReport]:
    """Run ``rewrite(graph, pattern, k)`` on every mask-form site; it returns a description or ``"!"`` + why not.

    Rewritten sites leave ``graftonnx.grafts``; the others are reported as skipped.
    """
    graph = gs.import_onnx(model)
    split, done, skipped = [], set(), []
    for k, rec in enumerate(read_grafts(model)):
        pat = graft_pattern(graph, rec)
        if isinstance(pat, str):
            skipped.append(pat)
            continue
        msg = rewrite(graph, pat, k)
        if msg.startswith("!"):
            skipped.append(f"{rec.site}: {msg[1:]}")
        else:
            split.append(msg)
            done.add(rec.site)
    out = finish_model(graph, model, done)
    return out, _report(model, out, split=tuple(split), skipped=tuple(skipped))


def drop_grafted_channels(model: onnx.ModelProto) -> tuple[onnx.ModelProto, SimplifyReport]:
    """Split every partially grafted per-channel (or flat) site fed by a Conv or Gemm; see the module doc.

    Split sites leave ``graftonnx.grafts`` (their lines now live in the grafted slice's
    weights); every other site is untouched.
    """
    outs = {t.name for t in model.graph.output}
    return per_site_pass(model, lambda graph, pat, k: _split_site(graph, pat, outs, k))
