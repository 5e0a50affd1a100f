"""The one door to auto_LiRPA (shipped by neuralsat as ``src.abstractor.auto_LiRPA``).

Why contained here: neuralsat installs a top-level package called ``src``, a name that
many projects use for their own code.  Importing it anywhere else would leak that
collision (and auto_LiRPA's import-time side effects: a root logging handler and a
global warnings filter) into the whole process.  :func:`auto_lirpa` imports it once,
from neuralsat's own files, with any foreign ``src`` modules set aside and restored
afterwards, and with logging and warnings state put back as they were.

:func:`lirpa_bounds` is the bound computation itself: pre-activation bounds of every
requested ReLU site for a batch of boxes, by auto_LiRPA's IBP or CROWN.  The bounded
module is built once per model and option set (:func:`lirpa_model`, kept with the model's
handle) and reused for every batch, so a scoring run over many batches traces the model
only once and memory stays flat.  Options are fixed at construction, never changed
afterwards: the verifier's α-CROWN options get their own module, not scoring's.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import json
import logging
import sys
import types
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import torch

from .bounds.base import SiteBounds
from .errors import BadInput, GraftFailure
from .model.handle import ModelHandle, content_handle
from .model.info import ReluSite

__all__ = ["auto_lirpa", "lirpa_model", "LirpaModel", "lirpa_bounds", "LIRPA_METHODS", "BOUND_OPTS", "BOUNDING_OPTS"]

#: Bound methods of auto_LiRPA this adapter exposes.
LIRPA_METHODS = ("IBP", "CROWN")
#: Sparse intermediate bounds crash in ``restore_sparse_bounds`` on grafted conv nets.
BOUND_OPTS: dict[str, Any] = {"sparse_intermediate_bounds": False}
#: What :func:`lirpa_bounds` traces with: every CROWN bound is also intersected with the IBP
#: step from the layer before, so CROWN is never looser than IBP on any neuron (plain
#: CROWN can be, by a little, on a few) and the tighter bounds feed the next layers.
BOUNDING_OPTS: dict[str, Any] = {**BOUND_OPTS, "compare_crown_with_ibp": True}
#: Bytes the largest linear-bound matrix of one compute_bounds call may take (see ``_chunk``).
MEMORY_BUDGET = 512 * 2**20
MAX_CHUNK = 64
#: auto_LiRPA node class → the ONNX activation it relaxes (the sites bounds are reported for).
_BOUND_ACTIVATIONS = {"BoundRelu": "Relu", "BoundSigmoid": "Sigmoid", "BoundTanh": "Tanh"}
_state: dict[str, Any] = {}


def _neuralsat_root() -> Path:
    """Folder holding neuralsat's ``src`` package (found via the installed distribution)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("neuralsat")
    except metadata.PackageNotFoundError:
        raise GraftFailure("auto_LiRPA is unavailable: install neuralsat==0.2.17 (pip install neuralsat)") from None
    init = Path(str(dist.locate_file("src/abstractor/auto_LiRPA/__init__.py")))
    if not init.is_file():
        raise GraftFailure(f"neuralsat is installed but {init} is missing: reinstall neuralsat==0.2.17")
    return init.parents[3]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warnings, and the root logger's handlers and level restored afterwards."""
    root_logger = logging.getLogger()
    handlers, level = list(root_logger.handlers), root_logger.level
    try:
        with warnings.catch_warnings(record=True):  # record: auto_LiRPA re-enables "once" filters inside
            warnings.simplefilter("ignore")
            yield
    finally:
        root_logger.handlers[:] = handlers
        root_logger.setLevel(level)


@contextlib.contextmanager
def _contained(root: Path) -> Iterator[None]:
    """Let ``src`` mean neuralsat's package while importing; restore everything after."""
    foreign = {k: v for k, v in sys.modules.items() if k == "src" or k.startswith("src.")}
    ours = foreign.get("src")
    if ours is not None and Path(getattr(ours, "__file__", "") or "").parent.parent != root:
        for k in foreign:
            del sys.modules[k]
    else:
        foreign = {}
    try:
        with _quiet():
            yield
    finally:
        if foreign:
            for k in [k for k in sys.modules if k == "src" or k.startswith("src.")]:
                del sys.modules[k]
            sys.modules.update(foreign)


def auto_lirpa() -> ModuleType:
    """neuralsat's auto_LiRPA 0.6.0 package (imported on first use, then cached)."""
    if "module" not in _state:
        root = _neuralsat_root()
        with _contained(root):
            if "src" not in sys.modules:
                spec = importlib.util.spec_from_file_location(
                    "src", root / "src" / "__init__.py", submodule_search_locations=[str(root / "src")])
                assert spec is not None and spec.loader is not None
                pkg = importlib.util.module_from_spec(spec)
                sys.modules["src"] = pkg
                spec.loader.exec_module(pkg)
            _state["module"] = importlib.import_module("src.abstractor.auto_LiRPA")
            _state["interval_bound"] = importlib.import_module("src.abstractor.auto_LiRPA.interval_bound")
            logging.getLogger("src.abstractor.auto_LiRPA.utils").setLevel(logging.WARNING)
            _unfreeze_alpha()
            from ._lirpa_patches import install

            install("src.abstractor.auto_LiRPA", sys.modules)
    return _state["module"]


def _unfreeze_alpha() -> int:
    """Give auto_LiRPA's modules a ``torch.clamp`` with torch 2.13's bound gradient (see ``verifier_shims``).

    Only auto_LiRPA sees it (its modules' ``torch`` name is rebound to a view of torch), so
    graftonnx's own training and attacks keep the installed torch's semantics.  Returns how
    many modules were switched (0 on a torch that never froze the gradient).
    """
    from .verifier_shims import clamp_gradient_frozen, torch_view

    if not clamp_gradient_frozen():
        return 0
    view, n = torch_view(), 0
    for name, mod in list(sys.modules.items()):
        if name.startswith("src.abstractor.auto_LiRPA") and getattr(mod, "torch", None) is torch:
            mod.torch = view  # type: ignore[attr-defined]
            n += 1
    return n


@dataclass(frozen=True, eq=False)
class LirpaModel:
    """A traced model, ready for ``compute_bounds``; get one with :func:`lirpa_model`.

    ``module`` is the BoundedModule of the graph *after* its input prefix (normalisation,
    layout ops), so boxes must go through :meth:`inner_box` first; ``inputs`` maps each
    site (Relu node name) to the auto_LiRPA node of its pre-activation; ``final`` is the
    node bounding may stop at (None: the graph output); ``chunk`` is how many boxes are
    bounded together so that memory stays flat.  ``full`` is the whole model in torch
    (parameters frozen), for the input prefix and for attacks.  Shared: read-only.
    """

    module: Any
    inputs: dict[str, Any]
    final: str | None
    full: Any
    prefix_out: str | None
    chunk: int
    device: torch.device = torch.device("cpu")

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """NumPy boxes (float32) as tensors on the module's device, through :meth:`inner_box`."""
        return self.inner_box(torch.from_numpy(np.ascontiguousarray(lo, np.float32)).to(self.device),
                              torch.from_numpy(np.ascontiguousarray(hi, np.float32)).to(self.device))

    def inner_box(self, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The box after the input prefix: exact, since each prefix op is monotone per element."""
        if self.prefix_out is None:
            return lo, hi
        name = self.prefix_out
        with torch.no_grad():
            a, b = self.full.run(lo, [name])[name], self.full.run(hi, [name])[name]
        return torch.minimum(a, b), torch.maximum(a, b)


def _build(model: onnx.ModelProto, extra_opts: Mapping[str, Any], device: torch.device) -> LirpaModel:
    from .model.info import input_prefix
    from .model.transform import strip_prefix
    from .torch_bridge import to_torch

    lirpa = auto_lirpa()
    full = to_torch(model).eval()
    prefix, inner_name = input_prefix(model)
    inner = strip_prefix(model, prefix, inner_name, full.shapes[inner_name])
    net = (to_torch(inner) if prefix else to_torch(model)).eval().inline_constants()
    for p in (*net.parameters(), *full.parameters()):
        p.requires_grad_(False)
    full, net = full.to(device), net.to(device)
    x = torch.rand((2, *net.input_shape), generator=torch.Generator().manual_seed(0)).to(device)
    with _quiet():
        opts = dict(BOUNDING_OPTS, conv_mode=_conv_mode(inner, net.shapes), **extra_opts)
        bm = lirpa.BoundedModule(net, (x,), bound_opts=opts, device=str(device), verbose=False)
    # auto_LiRPA 0.6.0 defines compare_with_IBP (used by compare_crown_with_ibp) but never binds it.
    bm.compare_with_IBP = types.MethodType(_state["interval_bound"].compare_with_IBP, bm)
    acts = [n for n in bm.nodes() if type(n).__name__ in _BOUND_ACTIVATIONS]
    ours = [(name, pre) for name, pre, _ in net.activation_nodes]
    if [_BOUND_ACTIVATIONS[type(n).__name__] for n in acts] != [op for _, _, op in net.activation_nodes]:
        raise GraftFailure(f"auto_LiRPA traced activations {[type(n).__name__ for n in acts]} but the graph has "
                           f"{[op for _, _, op in net.activation_nodes]} (Relu/Sigmoid/Tanh, in order)")
    inputs = dict(zip((name for name, _ in ours), (r.inputs[0] for r in acts), strict=True))
    _check_mapping(bm, net, x, inputs, ours)
    chunk = _chunk(net.input_shape, [net.shapes[pre] for _, pre in ours])
    return LirpaModel(bm, inputs, _final_node(list(inputs.values())), full, inner_name if prefix else None, chunk,
                      device)


def _chunk(input_shape: tuple[int, ...], pre_shapes: list[tuple[int, ...]]) -> int:
    """Boxes per compute_bounds call: the largest linear-bound matrix (neurons × inputs) stays
    within :data:`MEMORY_BUDGET` bytes, so a 256-box batch does not need gigabytes."""
    per_box = 4 * 3 * int(np.prod(input_shape)) * max(int(np.prod(s)) for s in pre_shapes)
    return int(min(MAX_CHUNK, max(1, MEMORY_BUDGET // per_box)))


def _final_node(pre_nodes: list[Any]) -> str | None:
    """The last ReLU's input, if every other ReLU input feeds it: bounding stops there.

    Why: the logits' own bounds are not needed, and a final backward pass over them costs
    as much as another layer.  For graphs with side branches it falls back to the output,
    and so it does when that input is a feature map (a net whose last Relu layer is a conv
    one, e.g. after its fully grafted dense Relus were removed): auto_LiRPA 0.6.0's
    ``compare_with_IBP`` multiplies the spec matrix with the unflattened interval there.
    """
    last, seen, todo = pre_nodes[-1], set(), [pre_nodes[-1]]
    if len(getattr(last, "output_shape", ())) > 2:
        return None
    while todo:
        node = todo.pop()
        if node.name not in seen:
            seen.add(node.name)
            todo.extend(node.inputs)
    return last.name if all(n.name in seen for n in pre_nodes) else None


def _conv_mode(model: onnx.ModelProto, shapes: dict[str, tuple[int, ...]]) -> str:
    """``"patches"`` (fast) unless the conv part has ops auto_LiRPA 0.6.0 mishandles there.

    Those are a Transpose after a Conv (TensorFlow NHWC exports: patches cannot be
    permuted) and elementwise ops with a non-scalar constant on a spatial tensor that is not
    a ``Mul``/``Add`` by a constant of the tensor's full per-image shape (per-channel
    constants of unfolded batch norms gave unsound bounds in tests).  Per-neuron conv
    grafts are full-shape Mul/Add and bound in patches mode through ``_lirpa_patches``.
    Matrix mode handles everything, more slowly.
    """
    from .rewrite.native import spatial_const_ops

    seen_conv = False
    for node in model.graph.node:
        seen_conv = seen_conv or node.op_type == "Conv"
        if seen_conv and node.op_type == "Transpose":
            return "matrix"
    for node, consts, shape in spatial_const_ops(model, shapes):
        size = int(np.prod(shape))
        if node.op_type not in ("Add", "Mul") or any(c[-len(shape):] != shape or int(np.prod(c)) != size
                                                     for c in consts):
            return "matrix"
    return "patches"


def _check_mapping(bm: Any, net: Any, x: torch.Tensor, inputs: dict[str, Any],
                   sites: Sequence[tuple[str, str]]) -> None:
    """Site ↔ auto_LiRPA node by order, confirmed by shape and by value on a random input."""
    with torch.no_grad():
        bm(x)
        ours = net.run(x, [pre for _, pre in sites])
    for i, (name, pre) in enumerate(sites):
        node = inputs[name]
        shape = tuple(int(d) for d in node.output_shape[1:])
        if shape != net.shapes[pre]:
            raise GraftFailure(f"auto_LiRPA activation #{i} has shape {shape} but site {name!r} has "
                               f"{net.shapes[pre]}: the traced graph does not match the ONNX graph")
        diff = float((node.forward_value - ours[pre]).abs().max())
        if not diff <= 1e-4 * (1.0 + float(ours[pre].abs().max())):
            raise GraftFailure(f"auto_LiRPA activation #{i} disagrees with site {name!r} by {diff:.3g} on a random "
                               "input: the traced graph does not match the ONNX graph")


def lirpa_model(model: onnx.ModelProto | ModelHandle, extra_opts: Mapping[str, Any] | None = None,
                device: torch.device | None = None) -> LirpaModel:
    """The traced ``model`` with bound options :data:`BOUNDING_OPTS` + conv mode + ``extra_opts`` (JSON-like),
    on ``device`` (default: :func:`graftonnx.device.current`).

    Built once per model and options, kept with its handle (a proto: :func:`content_handle`,
    as bound methods get protos).  The options are set here and nowhere else: a caller
    that needs others (the verifier's α-CROWN iterations) passes them and gets its own module.
    """
    h = model if isinstance(model, ModelHandle) else content_handle(model)
    from .device import current

    dev = current() if device is None else device
    opts = copy.deepcopy(dict(extra_opts or {}))  # ours: a caller's later change cannot reach the module
    return h.derived(("lirpa", json.dumps(opts, sort_keys=True), str(dev)), lambda: _build(h.proto, opts, dev))


def _check_boxes(lo: np.ndarray, hi: np.ndarray, sample_shape: tuple[int, ...]) -> None:
    if lo.shape != hi.shape:
        raise BadInput(f"box bounds have different shapes {lo.shape} and {hi.shape}")
    if lo.ndim != len(sample_shape) + 1 or lo.shape[1:] != sample_shape or len(lo) == 0:
        raise BadInput(f"boxes have shape {lo.shape} but the model takes (batch, {', '.join(map(str, sample_shape))}): "
                       "give at least one box in the model's input layout")
    if np.any(lo > hi):
        raise BadInput("box lower bound exceeds its upper bound somewhere: check eps and the clipping range")


def _bound_chunk(bounded: LirpaModel, lo: np.ndarray, hi: np.ndarray, names: Sequence[str],
                 method: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    lirpa = auto_lirpa()
    tlo, thi = bounded.box(lo, hi)
    x = lirpa.BoundedTensor((tlo + thi) / 2, lirpa.PerturbationLpNorm(norm=float("inf"), x_L=tlo, x_U=thi))
    try:
        with torch.no_grad(), _quiet():
            bounded.module.compute_bounds(x=(x,), method=method, final_node_name=bounded.final)
            return {n: (bounded.inputs[n].lower.cpu().numpy().copy(), bounded.inputs[n].upper.cpu().numpy().copy())
                    for n in names}
    finally:
        # Drop this chunk's bounds and relaxations now (not at the next call): memory stays flat.
        bounded.module._clear_and_set_new(interm_bounds=None)


def lirpa_bounds(model: onnx.ModelProto, lo: np.ndarray, hi: np.ndarray, sites: Sequence[ReluSite],
                 method: str) -> dict[str, SiteBounds]:
    """Pre-activation bounds of ``sites`` over the boxes ``[lo, hi]`` (one batch) by auto_LiRPA.

    ``method`` is ``"IBP"`` or ``"CROWN"`` (backward CROWN for every intermediate layer).
    Boxes are bounded together, in chunks of ``LirpaModel.chunk`` to cap memory.
    """
    if method not in LIRPA_METHODS:
        raise BadInput(f"unknown auto_LiRPA method {method!r}: choose one of {', '.join(LIRPA_METHODS)}")
    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    bounded = lirpa_model(model)
    _check_boxes(lo, hi, tuple(bounded.full.input_shape))
    for s in sites:
        if s.name not in bounded.inputs:
            raise BadInput(f"site {s.name!r} is not a Relu/Sigmoid/Tanh node of the model; sites are "
                           f"{', '.join(bounded.inputs)}")
    names = [s.name for s in sites]
    if not names:
        return {}
    # IBP holds no linear-bound matrices: its memory is that of a forward pass, so no chunking
    step = len(lo) if method == "IBP" else bounded.chunk
    parts = [_bound_chunk(bounded, lo[i:i + step], hi[i:i + step], names, method) for i in range(0, len(lo), step)]
    return {n: SiteBounds(np.concatenate([p[n][0] for p in parts]), np.concatenate([p[n][1] for p in parts]))
            for n in names}
