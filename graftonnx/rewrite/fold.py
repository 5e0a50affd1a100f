"""Rewrite passes beyond the paper: drop Relus nobody needs, fold linear runs.

Why: after grafting (and finetuning) a site whose *every* unit is grafted is a plain
line ``y = a·z + b``; its Relu only costs the verifier a layer of (stable) neurons, and
the line between two linear layers can be multiplied out, so the verifier sees fewer
layers and parameters.  Every pass is exact up to float rounding (the composed weights
are computed in float64, then stored as float32), keeps input/output names and shapes,
and keeps ``graftonnx.grafts`` consistent: a site that no longer exists is dropped from
it, so the torch bridge still reads the result.  specs/simplify.md has the details.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..model.graftmeta import GRAFTS_KEY, GraftRecord, metadata, read_grafts, write_grafts
from ..model.runtime import tensor_shapes
from ._export import export_like

__all__ = ["SimplifyReport", "GraftPattern", "Affine", "remove_full_relus", "fold_linear", "simplify", "model_counts",
           "finish_model", "graft_pattern", "const_of", "MATRIX_OPS"]

MATRIX_OPS = frozenset({"Gemm", "MatMul", "Conv"})
_ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div"})
_RESHAPES = frozenset({"Flatten", "Reshape", "Identity"})


@dataclass(frozen=True)
class SimplifyReport:
    """What a pass (or a chain of passes) changed, and the model size before and after."""

    removed: tuple[str, ...] = ()
    folded: tuple[str, ...] = ()
    split: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    nodes_before: int = 0
    nodes_after: int = 0
    params_before: int = 0
    params_after: int = 0
    relu_neurons_before: int = 0
    relu_neurons_after: int = 0

    def then(self, later: SimplifyReport) -> SimplifyReport:
        """This report followed by ``later``: lists concatenated, sizes from first before to last after."""
        return replace(self, removed=self.removed + later.removed, folded=self.folded + later.folded,
                       split=self.split + later.split, skipped=self.skipped + later.skipped,
                       nodes_after=later.nodes_after, params_after=later.params_after,
                       relu_neurons_after=later.relu_neurons_after)

    def to_dict(self) -> dict[str, object]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def model_counts(model: onnx.ModelProto) -> tuple[int, int, int]:
    """``(nodes, float parameters, ReLU neurons per image)`` of a model."""
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer
                 if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16))
    relu_in = [n.input[0] for n in model.graph.node if n.op_type == "Relu"]
    shapes = tensor_shapes(model, relu_in) if relu_in else {}
    return len(model.graph.node), params, int(sum(int(np.prod(shapes[n])) for n in relu_in))


def _report(before: onnx.ModelProto, after: onnx.ModelProto, **lists: tuple[str, ...]) -> SimplifyReport:
    nb, pb, rb = model_counts(before)
    na, pa, ra = model_counts(after)
    return SimplifyReport(nodes_before=nb, nodes_after=na, params_before=pb, params_after=pa,
                          relu_neurons_before=rb, relu_neurons_after=ra, **lists)


def finish_model(graph: gs.Graph, original: onnx.ModelProto, drop_sites: set[str]) -> onnx.ModelProto:
    """Export ``graph`` like ``original`` (opset, IR version, output ValueInfo, metadata) and check it.

    Graft records of ``drop_sites`` (and of any site whose Relu or initialisers vanished)
    are removed from ``graftonnx.grafts``; every other metadata entry is kept.
    """
    graph.cleanup().toposort()  # so only live Relus and constants count below
    relus = {n.name for n in graph.nodes if n.op == "Relu"}
    inits = {t.name for n in graph.nodes for t in n.inputs if isinstance(t, gs.Constant)}
    kept = [r for r in read_grafts(original) if r.site not in drop_sites and r.site in relus
            and {r.keep, r.a, r.b} <= inits]
    meta = metadata(original)
    if GRAFTS_KEY in meta:
        write_grafts(meta, kept)
    return export_like(graph, original, meta, "simplified")


@dataclass(frozen=True, eq=False)
class GraftPattern:
    """The five nodes a graft added around one Relu (see specs/rewrite.md), and its constants."""

    relu: gs.Node
    keep_mul: gs.Node
    zero_add: gs.Node
    a_mul: gs.Node
    b_add: gs.Node
    total: gs.Node
    keep: np.ndarray
    a: np.ndarray
    b: np.ndarray

    @property
    def z(self) -> gs.Tensor:
        return self.keep_mul.inputs[0]


def graft_pattern(graph: gs.Graph, record: GraftRecord) -> GraftPattern | str:
    """The graft pattern of ``record`` in ``graph``, or a reason why it is not there intact."""
    site = record.site
    nodes = {n.name: n for n in graph.nodes}
    names = ("", "/graft_keep_mul", "/graft_zero_add", "/graft_a_mul", "/graft_b_add", "/graft_sum")
    ops = ("Relu", "Mul", "Add", "Mul", "Add", "Add")
    found = [nodes.get(site + s) for s in names]
    if any(n is None or n.op != op for n, op in zip(found, ops, strict=True)):
        return f"{site}: graft pattern not found (was the grafted model edited?)"
    relu, km, za, am, ba, tot = found
    consts = [const_of(km.inputs[1]), const_of(am.inputs[1]), const_of(ba.inputs[1])]
    wired = (za.inputs[0] is km.outputs[0] and relu.inputs[0] is za.outputs[0] and am.inputs[0] is km.inputs[0]
             and ba.inputs[0] is am.outputs[0] and {id(t) for t in tot.inputs} == {id(relu.outputs[0]),
                                                                                   id(ba.outputs[0])})
    if not wired or any(c is None for c in consts):
        return f"{site}: graft pattern is wired differently (was the grafted model edited?)"
    return GraftPattern(relu, km, za, am, ba, tot, *consts)  # type: ignore[arg-type]


def remove_full_relus(model: onnx.ModelProto) -> tuple[onnx.ModelProto, SimplifyReport]:
    """Replace every fully grafted site (keep ≡ 0) by its line ``Add(Mul(z, a), b)``.

    Why exact: with keep = 0 the Relu is fed an identically-zero tensor, so the graft sum
    is ``0 + a·z + b``; the Add(b) node simply takes over the site's output name.
    """
    graph = gs.import_onnx(model)
    removed, skipped = [], []
    for rec in read_grafts(model):
        pat = graft_pattern(graph, rec)
        if isinstance(pat, str):
            skipped.append(pat)
            continue
        if np.any(pat.keep != 0):
            continue
        y = pat.total.outputs[0]
        pat.total.outputs.clear()
        pat.b_add.outputs.clear()
        pat.b_add.outputs.append(y)
        pat.keep_mul.outputs.clear()
        removed.append(rec.site)
    out = finish_model(graph, model, set(removed))
    return out, _report(model, out, removed=tuple(removed), skipped=tuple(skipped))


def _all_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    names = [o for n in model.graph.node if n.op_type != "Constant" for o in n.output if o]
    shapes = tensor_shapes(model, names)
    for vi in model.graph.input:
        dims = vi.type.tensor_type.shape.dim
        shapes.setdefault(vi.name, tuple(int(d.dim_value) for d in dims[1:]))
    return shapes


def _walk(graph: gs.Graph, seed: gs.Node, shapes: dict[str, tuple[int, ...]], outs: set[str],
          skipped: list[str]) -> tuple[list[gs.Node], Affine] | None:
    """The longest foldable run from ``seed`` whose folded form has no more parameters."""
    state = seed_map(seed, shapes)
    if isinstance(state, str):
        return None
    chain, best, t = [seed], None, seed.outputs[0]
    params = state.params
    while t.name not in outs and len(t.outputs) == 1:
        nxt = t.outputs[0]
        step = step_map(state, nxt, t, shapes)
        if isinstance(step, str):
            if nxt.op in MATRIX_OPS:
                skipped.append(f"{seed.name} → {nxt.name}: {step}")
            break
        state, params = step, params + _own_params(nxt)
        chain.append(nxt)
        t = nxt.outputs[0]
        if state.params <= params:
            best = (list(chain), state)
        elif nxt.op in MATRIX_OPS:
            skipped.append(f"{seed.name} → {nxt.name}: folding would grow the parameters "
                           f"from {params} to {state.params}")
    return best


def _own_params(node: gs.Node) -> int:
    return sum(int(np.asarray(c).size) for c in (const_of(t) for t in node.inputs) if c is not None)


def fold_linear(model: onnx.ModelProto) -> tuple[onnx.ModelProto, SimplifyReport]:
    """Fold runs of linear nodes (Gemm/MatMul/Conv, constant Add/Sub/Mul/Div, 2-D Flatten/Reshape).

    A run starts at a Gemm, MatMul or Conv and follows single-consumer tensors; it is
    replaced by one Gemm (2-D) or Conv when that is exact and does not add parameters
    (W2·diag(a)·W1 through a fully grafted site; Conv→Conv only when the second Conv has
    no padding).  Runs left alone for another reason are listed in ``skipped``.
    """
    out, folded, skipped = model, [], []
    for _ in range(8):  # a fold may expose another (new node seeds a longer run)
        graph = gs.import_onnx(out)
        graph.toposort()
        shapes, names = _all_shapes(out), {t.name for t in graph.outputs}
        done = 0
        for node in list(graph.nodes):
            if not node.outputs or node.op not in MATRIX_OPS:
                continue
            found = _walk(graph, node, shapes, names, skipped)
            if found is None:
                continue
            chain, state = found
            y = chain[-1].outputs[0]
            for n in chain:
                n.outputs.clear()
            graph.nodes.append(state.node(node.name, node.inputs[0], y, f"folded{len(folded)}"))
            folded.append(" + ".join(n.name for n in chain) + f" → {state.op} {node.name}")
            done += 1
        if not done:
            break
        out = finish_model(graph, out, set())
    return out, _report(model, out, folded=tuple(folded), skipped=tuple(dict.fromkeys(skipped)))


def simplify(model: onnx.ModelProto, fold: bool = True, drop_channels: bool = False) -> tuple[
        onnx.ModelProto, SimplifyReport]:
    """Apply remove_full_relus, then fold_linear (unless ``fold=False``), then optionally drop_grafted_channels.

    Folding runs before the channel split so that TF-style MatMul+Add producers become
    Gemms the split can slice.
    """
    out, rep = remove_full_relus(model)
    if fold:
        out, more = fold_linear(out)
        rep = rep.then(more)
    if drop_channels:
        from .channels import drop_grafted_channels  # channels builds on this module's helpers

        out, more = drop_grafted_channels(out)
        rep = rep.then(more)
    return out, rep


# --- the affine maps a run folds into ---------------------------------------------------------------------------
def const_of(t: gs.Tensor) -> np.ndarray | None:
    """The value of a constant tensor (initialiser or Constant node), else None."""
    if isinstance(t, gs.Constant):
        return np.asarray(t.values)
    if t.inputs and t.inputs[0].op == "Constant":
        return np.asarray(t.inputs[0].attrs["value"].values)
    return None


@dataclass(frozen=True, eq=False)
class Affine:
    """``x ↦ x·w + c`` (op Gemm, w of shape (n, m)) or ``Conv(x, w) + c`` per channel (op Conv)."""

    op: str
    w: np.ndarray
    c: np.ndarray
    strides: tuple[int, ...] = (1, 1)
    pads: tuple[int, ...] = (0, 0, 0, 0)

    @property
    def params(self) -> int:
        return int(self.w.size + self.c.size)

    @property
    def units(self) -> int:
        return int(self.w.shape[1] if self.op == "Gemm" else self.w.shape[0])

    def scaled(self, v: np.ndarray) -> Affine:
        w = self.w * (v[None, :] if self.op == "Gemm" else v[:, None, None, None])
        return replace(self, w=w, c=self.c * v)

    def node(self, name: str, x: gs.Tensor, y: gs.Tensor, tag: str = "folded") -> gs.Node:
        f32 = np.float32
        if self.op == "Gemm":
            consts = [gs.Constant(f"{name}/{tag}_w", np.ascontiguousarray(self.w.T.astype(f32))),
                      gs.Constant(f"{name}/{tag}_c", self.c.astype(f32))]
            attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 1}
            return gs.Node("Gemm", name, attrs=attrs, inputs=[x, *consts], outputs=[y])
        consts = [gs.Constant(f"{name}/{tag}_w", self.w.astype(f32)),
                  gs.Constant(f"{name}/{tag}_c", self.c.astype(f32))]
        attrs = {"kernel_shape": list(self.w.shape[2:]), "strides": list(self.strides), "pads": list(self.pads),
                 "dilations": [1] * (self.w.ndim - 2), "group": 1}
        return gs.Node("Conv", name, attrs=attrs, inputs=[x, *consts], outputs=[y])


def _vector(c: np.ndarray | None, n: int) -> np.ndarray | None:
    if c is None or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1) or c.size not in (1, n):
        return None
    return np.broadcast_to(c.astype(np.float64).reshape(-1), (n,)).copy()


def seed_map(node: gs.Node, shapes: dict[str, tuple[int, ...]]) -> Affine | str:
    """The affine map of one Gemm/MatMul/Conv with constant weights, or why it has none."""
    w = const_of(node.inputs[1]) if len(node.inputs) > 1 else None
    x = node.inputs[0]
    if w is None or const_of(x) is not None:
        return f"{node.op} {node.name} has no constant weight"
    w = w.astype(np.float64)
    a = node.attrs
    if node.op == "Gemm":
        if a.get("transA", 0):
            return f"Gemm {node.name} transposes its input"
        w = a.get("alpha", 1.0) * (w.T if a.get("transB", 0) else w)
        c = _vector(const_of(node.inputs[2]), w.shape[1]) if len(node.inputs) > 2 else np.zeros(w.shape[1])
        return f"Gemm {node.name} has a batch-shaped bias" if c is None else Affine("Gemm", w, a.get("beta", 1.0) * c)
    if node.op == "MatMul":
        if w.ndim != 2 or len(shapes.get(x.name, ())) != 1:
            return f"MatMul {node.name} is not a 2-D product"
        return Affine("Gemm", w, np.zeros(w.shape[1]))
    if w.ndim != 4 or a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])) \
            or a.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET"):
        return f"Conv {node.name} is grouped, dilated, auto-padded or not 2-D"
    b = const_of(node.inputs[2]) if len(node.inputs) > 2 else np.zeros(w.shape[0])
    if b is None:
        return f"Conv {node.name} has a variable bias"
    return Affine("Conv", w, b.astype(np.float64), tuple(a.get("strides", [1, 1])), tuple(a.get("pads", [0] * 4)))


def _channel_vector(c: np.ndarray, n: int) -> np.ndarray | str:
    if c.ndim > 4:
        return "its constant has more than 4 axes"
    c4 = c.astype(np.float64).reshape((1,) * (4 - c.ndim) + c.shape)
    if c4.shape[0] != 1 or c4.shape[1] not in (1, n):
        return "its constant is not per channel"
    if c4.shape[2:] != (1, 1) and not np.all(c4 == c4[:, :, :1, :1]):
        return "its constant varies across positions (a neuron-granularity line on a Conv site)"
    return np.broadcast_to(c4[0, :, 0, 0], (n,)).copy()


def _elementwise(state: Affine, node: gs.Node, t: gs.Tensor) -> Affine | str:
    pos = next(i for i, x in enumerate(node.inputs) if x is t)
    other = const_of(node.inputs[1 - pos]) if len(node.inputs) == 2 else None
    if other is None or (pos == 1 and node.op in ("Sub", "Div")):
        return f"{node.op} {node.name} does not apply a constant to the run"
    v = _vector(other, state.units) if state.op == "Gemm" else _channel_vector(other, state.units)
    if v is None or isinstance(v, str):
        return f"{node.op} {node.name}: {v or 'its constant does not broadcast per unit'}"
    if node.op == "Div" and np.any(v == 0):
        return f"Div {node.name} divides by zero"
    if node.op in ("Add", "Sub"):
        return replace(state, c=state.c + (v if node.op == "Add" else -v))
    return state.scaled(v if node.op == "Mul" else 1.0 / v)


def _compose_conv(s1: Affine, s2: Affine) -> Affine:
    (o, _, kh, kw), (_, i, ah, aw) = s2.w.shape, s1.w.shape
    sh, sw = s1.strides
    w = np.zeros((o, i, (kh - 1) * sh + ah, (kw - 1) * sw + aw))
    for u in range(kh):
        for v in range(kw):
            w[:, :, u * sh:u * sh + ah, v * sw:v * sw + aw] += np.einsum("om,mihw->oihw", s2.w[:, :, u, v], s1.w)
    c = s2.w.sum(axis=(2, 3)) @ s1.c + s2.c
    return Affine("Conv", w, c, (sh * s2.strides[0], sw * s2.strides[1]), s1.pads)


def step_map(state: Affine, node: gs.Node, t: gs.Tensor, shapes: dict[str, tuple[int, ...]]) -> Affine | str:
    """``state`` followed by ``node`` (which reads ``t``) as one affine map, or why not."""
    if node.op in _ELEMENTWISE:
        return _elementwise(state, node, t)
    if node.op in _RESHAPES and state.op == "Gemm" and node.inputs[0] is t:
        if node.op == "Flatten" and node.attrs.get("axis", 1) != 1:
            return f"Flatten {node.name} does not flatten at axis 1"
        same = shapes.get(node.outputs[0].name) == (state.units,)
        return state if same else f"{node.op} {node.name} changes the layout"
    if node.op in MATRIX_OPS and node.inputs[0] is t:
        nxt = seed_map(node, shapes)
        if isinstance(nxt, str):
            return nxt
        if state.op == "Gemm" and nxt.op == "Gemm":
            return Affine("Gemm", state.w @ nxt.w, state.c @ nxt.w + nxt.c)
        if state.op == "Conv" and nxt.op == "Conv":
            if any(nxt.pads):
                return ("the second Conv pads its input, so border outputs are not those of one composed Conv "
                        "(exact only without padding)")
            return _compose_conv(state, nxt)
        return f"{state.op} then {nxt.op} would need unrolling a convolution"
    return f"{node.op} {node.name} is not linear-foldable"
