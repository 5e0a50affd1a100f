"""ONNX → torch: an ``nn.Module`` that runs the ONNX graph itself, node by node.

Why interpret the graph rather than generate code or re-export: the graph is the
contract.  Finetuning must change *only initialiser values* so that :func:`write_back`
can put them into the untouched original graph, and auto_LiRPA must see exactly the ops
the verifiers will see.  The interpreter is a precompiled list of ``(fn, inputs,
output)`` steps in topological order, so its per-step cost is a dict lookup and a call.

What trains: float initialisers that are weights (Gemm/Conv/MatMul/BatchNorm weights
and biases and any other float initialiser) become ``nn.Parameter``s keyed back to
their initialiser names.  What never trains (buffers): Constant-node values, shape and
other integer constants, BatchNorm running statistics, the constants of the input
prefix (normalisation, :func:`graftonnx.model.info.input_prefix`), and the graft
structure (``keep`` and the ``zero`` shift).  Grafted sites train ``a_full``/``b_full``
and feed ``a_full·m``/``b_full·m`` to the graph, so a non-grafted neuron never gets a line.
Smooth (Sigmoid/Tanh) grafts (``graftonnx.smooth_grafts``) train the same way: their
records have the same layout, and their ``keep`` is a buffer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from ..errors import BadInput, UnsupportedModel
from ..model.graftmeta import GraftRecord, read_all_grafts
from ..model.info import graph_inputs, input_prefix
from ..model.runtime import tensor_shapes
from .ops import CONVERTERS, NodeContext, node_attributes

__all__ = ["OnnxModule", "GraftSite", "to_torch"]


class GraftSite(nn.Module):
    """The trainable line of one grafted Relu (or Sigmoid/Tanh): ``a_full``, ``b_full`` and the fixed mask ``m``."""

    def __init__(self, record: GraftRecord, keep: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
        self.record = record
        self.register_buffer("mask", torch.from_numpy(np.ascontiguousarray(1.0 - keep)))
        self.a_full = nn.Parameter(torch.from_numpy(a.copy()), requires_grad=not record.fixed)
        self.b_full = nn.Parameter(torch.from_numpy(b.copy()), requires_grad=not record.fixed)

    def line(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(a_full·m, b_full·m)``: what the graph's ``a`` and ``b`` initialisers hold."""
        return self.a_full * self.mask, self.b_full * self.mask


def _key(name: str, taken: set[str]) -> str:
    key = re.sub(r"\W", "_", name) or "_"
    key = key if not key[0].isdigit() else "_" + key
    while key in taken:
        key += "_"
    taken.add(key)
    return key


def _frozen_constants(model: onnx.ModelProto, records: tuple[GraftRecord, ...]) -> set[str]:
    """Float initialisers that are not weights: normalisation, BN statistics, graft structure.

    The graft structure is each ``keep`` and the ``zero`` of ``Relu(Add(Mul(z, keep), zero))``.
    """
    inits = {t.name for t in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    relus = {n.name: n for n in model.graph.node if n.op_type == "Relu"}
    adds = [a for r in records if r.site in relus
            and (a := producers.get(relus[r.site].input[0])) is not None and a.op_type == "Add"]
    frozen = {r.keep for r in records} | {i for a in adds for i in a.input if i in inits}
    frozen.update(i for node in input_prefix(model)[0] for i in node.input if i in inits)
    for node in model.graph.node:
        if node.op_type == "BatchNormalization":
            frozen.update(node.input[3:5])
    return frozen


def _toposort(nodes: Sequence[onnx.NodeProto], available: set[str]) -> list[onnx.NodeProto]:
    """Nodes in an order where every input exists first (stable: sorted graphs keep their order)."""
    todo, done, have = list(nodes), [], set(available)
    while todo:
        ready = [n for n in todo if all(not i or i in have for i in n.input)]
        if not ready:
            raise BadInput(f"graph has a cycle or an undefined input at node {todo[0].name!r}: run onnx.checker")
        for n in ready:
            have.update(n.output)
        done += ready
        todo = [n for n in todo if n not in ready]
    return done


def _check_ops(model: onnx.ModelProto) -> None:
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in CONVERTERS:
            raise UnsupportedModel(f"node {node.name!r} uses op {node.op_type} which has no torch converter; "
                                   f"supported ops: {', '.join(CONVERTERS.keys())}")


class OnnxModule(nn.Module):
    """Runs an ONNX graph in torch; build it with :func:`to_torch`."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        _check_ops(model)
        inp = graph_inputs(model)[0]
        self.input_name = inp.name
        self.output_names = tuple(o.name for o in model.graph.output)
        records = read_all_grafts(model, check=True)
        consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for n in model.graph.node:
            if n.op_type == "Constant":
                consts[n.output[0]] = node_attributes(n)["value"]
        order = _toposort(model.graph.node, {self.input_name, *consts})
        computed = [o for n in order if n.op_type != "Constant" for o in n.output if o]
        self.shapes = tensor_shapes(model, [self.input_name, *computed])
        self.input_shape = self.shapes[self.input_name]
        self._init_shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
        self._build_steps(order, consts)
        self._build_values(model, consts, records)
        self.relu_nodes = tuple((n.name, n.input[0]) for n in order if n.op_type == "Relu")
        #: (node name, input, op) of every Relu, Sigmoid and Tanh in run order: what auto_LiRPA relaxes.
        self.activation_nodes = tuple((n.name, n.input[0], n.op_type) for n in order
                                      if n.op_type in ("Relu", "Sigmoid", "Tanh"))
        self._inlined: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ construction
    def _build_steps(self, order: Sequence[onnx.NodeProto], consts: dict[str, np.ndarray]) -> None:
        steps = []
        for node in order:
            ctx = NodeContext(node, node_attributes(node), consts, self.shapes)
            step = CONVERTERS.get(node.op_type)(ctx)
            if step.fn is not None:
                steps.append((step.fn, step.inputs, node.output[0]))
        keep = set(self.output_names)
        last: dict[str, int] = {}
        for i, (_, ins, _) in enumerate(steps):
            for name in ins:
                last[name] = i
        self._steps = [(fn, ins, out, tuple(n for n in set(ins) if last[n] == i and n not in keep))
                       for i, (fn, ins, out) in enumerate(steps)]
        self._runtime_consts = sorted({n for _, ins, _ in steps for n in ins if n in consts})

    def _build_values(self, model: onnx.ModelProto, consts: dict[str, np.ndarray],
                      records: tuple[GraftRecord, ...]) -> None:
        frozen = _frozen_constants(model, records)
        inits = set(self._init_shapes)
        line_names = {n for r in records for n in (r.a, r.b)}
        self.weights = nn.ParameterDict()
        self.constants = nn.Module()
        self.grafts = nn.ModuleDict()
        taken: set[str] = set()
        self._weight_keys: list[tuple[str, str]] = []
        self._const_keys: list[tuple[str, str]] = []
        for rec in records:
            self.grafts[_key(rec.site, taken)] = GraftSite(rec, consts[rec.keep], consts[rec.a], consts[rec.b])
        for name in self._runtime_consts:
            if name in line_names:
                continue
            value = torch.from_numpy(np.array(consts[name]))
            key = _key(name, taken)
            if name in inits and name not in frozen and value.is_floating_point():
                self.weights[key] = nn.Parameter(value)
                self._weight_keys.append((name, key))
            else:
                self.constants.register_buffer(key, value)
                self._const_keys.append((name, key))

    # ------------------------------------------------------------------ running
    def _values(self) -> dict[str, torch.Tensor]:
        vals = {name: self.weights[key] for name, key in self._weight_keys}
        if self._inlined is not None:
            vals.update(self._inlined)
            return vals
        bufs = self.constants._buffers
        vals.update((name, bufs[key]) for name, key in self._const_keys)
        for site in self.grafts.values():
            vals[site.record.a], vals[site.record.b] = site.line()
        return vals

    def run(self, x: torch.Tensor, names: Sequence[str] = ()) -> dict[str, torch.Tensor]:
        """The graph outputs plus the intermediate tensors ``names`` (e.g. Relu inputs)."""
        env = self._values()
        env[self.input_name] = x
        wanted = set(names)
        for fn, ins, out, free in self._steps:
            env[out] = fn(*[env[i] for i in ins])
            for f in free:
                if f not in wanted:
                    del env[f]
        missing = wanted.difference(env)
        if missing:
            raise KeyError(f"no tensor named {sorted(missing)[0]!r} in the graph")
        return {n: env[n] for n in (*self.output_names, *names)}

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        env = self._values()
        env[self.input_name] = x
        for fn, ins, out, free in self._steps:
            env[out] = fn(*[env[i] for i in ins])
            for f in free:
                del env[f]
        if len(self.output_names) == 1:
            return env[self.output_names[0]]
        return tuple(env[n] for n in self.output_names)

    @torch.no_grad()
    def inline_constants(self) -> OnnxModule:
        """Snapshot buffers and grafted lines as plain tensors that tracing records as constants.

        Why: auto_LiRPA turns buffers into perturbation-free graph roots and then, in its
        patches mode, mis-shapes their bias terms (a crash for in-graph normalisation in
        front of a Conv).  As trace constants they become ``BoundConstant`` nodes, which
        work.  The lines stop training, so use this only on a module for bounding.
        """
        self._inlined = {name: buf.detach().clone() for name, buf in self._values().items()
                         if not isinstance(buf, nn.Parameter)}
        return self

    # ------------------------------------------------------------------ training helpers
    def graft_parameters(self) -> Iterator[nn.Parameter]:
        """The trainable slopes and intercepts (``a_full``, ``b_full``) of non-fixed grafted sites."""
        for site in self.grafts.values():
            if not site.record.fixed:
                yield site.a_full
                yield site.b_full

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        """Every other trainable tensor: the model's weight initialisers."""
        yield from self.weights.values()

    @torch.no_grad()
    def clamp_slopes(self, lo: float, hi: float) -> None:
        """Keep every slope ``a`` in ``[lo, hi]`` in place (a projected-gradient step)."""
        if not lo <= hi:
            raise ValueError(f"clamp_slopes needs lo <= hi, got {lo} > {hi}")
        for site in self.grafts.values():
            site.a_full.clamp_(lo, hi)

    def freeze_weights(self) -> None:
        """Stop the weight initialisers from training (only the grafted lines remain)."""
        for p in self.weights.values():
            p.requires_grad_(False)

    def initialiser_parameters(self) -> dict[str, nn.Parameter]:
        """The weight parameters keyed by their ONNX initialiser names (grafted lines excluded)."""
        return {name: self.weights[key] for name, key in self._weight_keys}

    def initialiser_values(self) -> dict[str, np.ndarray]:
        """Current values of every initialiser the module may change, keyed by ONNX name."""
        out = {name: self.weights[key].detach().cpu().numpy() for name, key in self._weight_keys}
        for site in self.grafts.values():
            a, b = site.line()
            out[site.record.a], out[site.record.b] = a.detach().cpu().numpy(), b.detach().cpu().numpy()
        return out


def to_torch(model: onnx.ModelProto) -> OnnxModule:
    """Convert ``model`` (a classifier with one input) to an :class:`OnnxModule` on the CPU."""
    if len(graph_inputs(model)) != 1:
        raise UnsupportedModel(f"model has {len(graph_inputs(model))} inputs: to_torch needs exactly one")
    return OnnxModule(model)
