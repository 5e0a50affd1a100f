"""Differentiable interval bounds (IBP) of the bridged ONNX graph, for the RS and IBP training terms.

Why a small interpreter of our own rather than auto_LiRPA: the loss must be a torch
function of the *training* parameters (weights and grafted a, b) evaluated every batch,
and auto_LiRPA (reachable only through ``graftonnx._lirpa``) traces modules frozen for
bounding; an unfrozen trace would have to be rebuilt or kept in sync with the bridge on
every step.  Interval arithmetic is a one-page rule per op over the bridge's own steps:
it reuses each step's torch function (so padding, strides, transposes are the bridge's,
by construction) and only decides how an interval passes through it:

* monotone ops (Relu, pools, reshapes, Add, Concat...) run on both ends;
* linear ops in one interval operand (Gemm, Conv, MatMul, Mul, BatchNormalization, Div
  by a constant) run on the centre, and on the radius with the other operands' absolute
  values and no bias: ``|W|·r``;
* Sub and Neg swap ends.

Bounds are float32 and not rounded outwards: they are a training signal, agreeing with
the onnxruntime IBP of :mod:`graftonnx.bounds` to float tolerance (tests check this and
soundness on sampled points); certified numbers come from the verifiers, never from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import onnx
import torch
from torch import nn

from ..errors import UnsupportedModel
from ..registry import Registry
from .nets import PixelModel

__all__ = ["Interval", "IntervalNet", "NetBounds", "INTERVAL_RULES"]


@dataclass(frozen=True, eq=False)
class Interval:
    """Elementwise ``lo ≤ x ≤ hi`` (torch tensors of one shape, batch first)."""

    lo: torch.Tensor
    hi: torch.Tensor


Value = Interval | torch.Tensor | None
Rule = Callable[[Callable[..., torch.Tensor], Sequence[Value]], Interval]

#: ONNX op type → how an interval passes through the bridge's step function.
INTERVAL_RULES: Registry[Rule] = Registry("interval rule")


def _end(v: Value, upper: bool) -> Value:
    return (v.hi if upper else v.lo) if isinstance(v, Interval) else v


@INTERVAL_RULES.register("Relu", "MaxPool", "AveragePool", "Flatten", "Reshape", "Squeeze", "Unsqueeze",
                         "Transpose", "Identity", "Dropout", "Concat", "Add", "Sigmoid", "Tanh")
def _monotone(fn: Callable[..., torch.Tensor], args: Sequence[Value]) -> Interval:
    """Non-decreasing in every input: the ends map to the ends."""
    return Interval(fn(*[_end(a, False) for a in args]), fn(*[_end(a, True) for a in args]))


@INTERVAL_RULES.register("Sub")
def _sub(fn: Callable[..., torch.Tensor], args: Sequence[Value]) -> Interval:
    a, b = args
    return Interval(fn(_end(a, False), _end(b, True)), fn(_end(a, True), _end(b, False)))


@INTERVAL_RULES.register("Neg")
def _neg(fn: Callable[..., torch.Tensor], args: Sequence[Value]) -> Interval:
    (a,) = args
    assert isinstance(a, Interval)
    return Interval(fn(a.hi), fn(a.lo))


def _mid_rad(v: Interval) -> tuple[torch.Tensor, torch.Tensor]:
    return (v.hi + v.lo) / 2, (v.hi - v.lo) / 2


@INTERVAL_RULES.register("Gemm", "Conv", "MatMul", "Mul")
def _linear(fn: Callable[..., torch.Tensor], args: Sequence[Value]) -> Interval:
    """Linear in its one interval operand (among the first two); a third input is a bias."""
    which = [i for i, a in enumerate(args) if isinstance(a, Interval)]
    if len(which) == 2 and len(args) == 2:  # Mul of two intervals: the four products
        a, b = args
        assert isinstance(a, Interval) and isinstance(b, Interval)
        prods = torch.stack([fn(a.lo, b.lo), fn(a.lo, b.hi), fn(a.hi, b.lo), fn(a.hi, b.hi)])
        return Interval(prods.min(0).values, prods.max(0).values)
    if len(which) != 1 or which[0] > 1:
        raise UnsupportedModel("a Gemm/Conv/MatMul/Mul with its weights or bias depending on the input has no "
                               "interval rule: the RS/IBP terms need weights that are constants")
    k = which[0]
    iv = args[k]
    assert isinstance(iv, Interval)
    mid, rad = _mid_rad(iv)
    centre = fn(*[mid if i == k else a for i, a in enumerate(args)])
    others = [rad if i == k else a.abs() for i, a in enumerate(args[:2])]  # type: ignore[union-attr]
    spread = fn(*others).abs()  # ≥ 0 already unless a Gemm alpha < 0: abs keeps it a radius
    return Interval(centre - spread, centre + spread)


@INTERVAL_RULES.register("Div")
def _div(fn: Callable[..., torch.Tensor], args: Sequence[Value]) -> Interval:
    a, b = args
    if isinstance(b, Interval) or not isinstance(a, Interval):
        raise UnsupportedModel("a Div by an input-dependent tensor has no interval rule (only Div by a constant)")
    mid, rad = _mid_rad(a)
    centre, spread = fn(mid, b), fn(rad, b.abs())  # type: ignore[union-attr]
    return Interval(centre - spread, centre + spread)


@INTERVAL_RULES.register("BatchNormalization")
def _batchnorm(fn: Callable[..., torch.Tensor], args: Sequence[Value]) -> Interval:
    x, scale, bias, mean, var = args
    assert isinstance(x, Interval)
    mid, rad = _mid_rad(x)
    centre = fn(mid, scale, bias, mean, var)
    spread = fn(rad, scale.abs(), torch.zeros_like(bias), torch.zeros_like(mean), var)  # type: ignore[union-attr]
    return Interval(centre - spread, centre + spread)


@dataclass(frozen=True, eq=False)
class NetBounds:
    """Logit bounds ``out``, the pre-activation bounds of every Relu (by Relu node name) and, when the
    logits come from a final Gemm, that layer's input bounds and affine map (for margin bounds)."""

    out: Interval
    relus: dict[str, Interval]
    last_input: Interval | None = None
    last_map: tuple[torch.Tensor, torch.Tensor] | None = None  # (M (in, K), bias (K,)): logits = x @ M + bias

    def margin_lower(self, y: torch.Tensor) -> torch.Tensor:
        """Lower bounds of ``z_y − z_j`` for every class j (0 at j = y), shape (B, K).

        Through the last layer's own map when known (Gowal et al.'s elision: the difference of
        two rows is bounded at once, much tighter than ``lo_y − hi_j``); else ``lo_y − hi_j``.
        """
        if self.last_input is None or self.last_map is None:
            diff = self.out.lo.gather(1, y[:, None]) - self.out.hi
        else:
            m, bias = self.last_map
            d = m.t()[y][:, None, :] - m.t()[None, :, :]  # (B, K, in): row y minus row j
            mid, rad = _mid_rad(self.last_input)
            mid, rad = mid.flatten(1)[:, None, :], rad.flatten(1)[:, None, :]
            diff = (mid * d).sum(-1) - (rad * d.abs()).sum(-1) + (bias[y][:, None] - bias[None, :])
        return diff.scatter(1, y[:, None], 0.0)


class IntervalNet:
    """Interval bounds of a pixel-space bridge module (``PixelModel`` around an ``OnnxModule``) over boxes.

    ``model`` is the ONNX graph the module was built from: its node types choose the rules.
    Calls read the module's current parameters, so the bounds backpropagate into them.
    """

    def __init__(self, model: onnx.ModelProto, module: nn.Module) -> None:
        self.module = module
        self.inner = module.net if isinstance(module, PixelModel) else module
        if not hasattr(self.inner, "_steps"):
            raise UnsupportedModel("RS/IBP terms need the ONNX bridge's module (graftonnx.torch_bridge.to_torch)")
        node_of = {n.output[0]: n for n in model.graph.node if n.output}
        self._rules = []
        for _fn, _ins, out, _free in self.inner._steps:  # the bridge's compiled steps (same package)
            op = node_of[out].op_type
            if op not in INTERVAL_RULES:
                raise UnsupportedModel(f"node {node_of[out].name!r} uses op {op}, which has no interval rule for "
                                       f"the RS/IBP terms; supported: {', '.join(INTERVAL_RULES.keys())}")
            self._rules.append(INTERVAL_RULES.get(op))
        self.relu_inputs = dict(self.inner.relu_nodes)  # Relu node name → its input tensor
        last = self.inner._steps[-1] if self.inner._steps else None
        gemm = last is not None and node_of[last[2]].op_type == "Gemm" and last[2] == self.inner.output_names[0]
        self._last = last if gemm else None

    def kept(self) -> dict[str, torch.Tensor]:
        """Relu node name → 1 for units still ReLUs, 0 for grafted ones (broadcastable to the Relu input)."""
        out: dict[str, torch.Tensor] = {}
        for site in getattr(self.inner, "grafts", {}).values():
            out[site.record.site] = 1.0 - site.mask
        return out

    def __call__(self, lo: torch.Tensor, hi: torch.Tensor) -> NetBounds:
        """Bounds over the pixel-space boxes ``[lo, hi]`` (the PixelModel's normalisation applied first)."""
        if isinstance(self.module, PixelModel):
            m, s = self.module.mean, self.module.std  # std > 0: an increasing affine map
            lo, hi = (lo - m) / s, (hi - m) / s
        env: dict[str, Value] = dict(self.inner._values())
        env[self.inner.input_name] = Interval(lo, hi)
        wanted = set(self.relu_inputs.values()) | (set(self._last[1]) if self._last is not None else set())
        relus: dict[str, Interval] = {}
        for rule, (fn, ins, out, free) in zip(self._rules, self.inner._steps, strict=True):
            args = [env[i] for i in ins]
            if any(isinstance(a, Interval) for a in args):
                env[out] = rule(fn, args)
            else:
                env[out] = fn(*args)
            for f in free:
                if f not in wanted:
                    del env[f]
        for name, t in self.relu_inputs.items():
            v = env[t]
            if isinstance(v, Interval):
                relus[name] = v
        result = env[self.inner.output_names[0]]
        if not isinstance(result, Interval):
            raise UnsupportedModel("the model's output does not depend on its input: nothing to bound")
        return NetBounds(result, relus, *self._last_layer(env))

    def _last_layer(self, env: dict[str, Value]) -> tuple[Interval | None, tuple[torch.Tensor, torch.Tensor] | None]:
        """The final Gemm's input interval and its affine map, found by running the Gemm on I and on 0."""
        if self._last is None:
            return None, None
        fn, ins = self._last[0], self._last[1]
        x, *rest = [env[i] for i in ins]
        if not isinstance(x, Interval) or any(isinstance(r, Interval) for r in rest) or x.lo.dim() != 2:
            return None, None
        n = x.lo.shape[1]
        eye = torch.eye(n, dtype=x.lo.dtype, device=x.lo.device)
        bias = fn(torch.zeros(1, n, dtype=x.lo.dtype, device=x.lo.device), *rest)[0]
        return x, (fn(eye, *rest) - bias, bias)
