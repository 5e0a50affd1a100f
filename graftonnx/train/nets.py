"""Adapting any torch classifier to the training loop: pixel-space input and parameter groups.

Why: attacks and ε-balls live on raw pixels, but some models expect normalised input
outside their graph, so :class:`PixelModel` puts a fixed ``(x - mean) / std`` layer in
front.  And the loop must treat grafted slopes/intercepts differently from weights
(own learning rate, no weight decay, slope clamping): :func:`param_groups` finds them
on modules that expose ``graft_parameters()`` (the ONNX bridge's module) and treats
every parameter of a plain module as a weight.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["PixelModel", "ParamGroups", "param_groups", "flat_params"]


class PixelModel(nn.Module):
    """``net((x - mean) / std)`` with mean/std broadcast along the per-sample ``channel_axis``."""

    def __init__(self, net: nn.Module, sample_shape: Sequence[int], mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, channel_axis: int = 0) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", _stat(mean, 0.0, sample_shape, channel_axis))
        self.register_buffer("std", _stat(std, 1.0, sample_shape, channel_axis))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std)


def _stat(vals: Sequence[float] | None, default: float, sample_shape: Sequence[int], axis: int) -> torch.Tensor:
    arr = torch.tensor(list(vals) if vals is not None else [default], dtype=torch.float32).flatten()
    rank = len(sample_shape)
    shape = [1] * (rank + 1)
    if arr.numel() > 1 and rank:
        shape[axis % rank + 1] = arr.numel()
        return arr.reshape(shape)
    return arr.reshape(shape)


def flat_params(items: Iterable[object]) -> list[nn.Parameter]:
    """Parameters from a possibly nested iterable (pairs (a, b), dicts of them, …), without duplicates."""
    out: list[nn.Parameter] = []
    seen: set[int] = set()

    def walk(obj: object) -> None:
        if isinstance(obj, nn.Parameter):
            if id(obj) not in seen:
                seen.add(id(obj))
                out.append(obj)
        elif isinstance(obj, dict):
            for v in obj.values():
                walk(v)
        elif isinstance(obj, Iterable) and not isinstance(obj, torch.Tensor | str):
            for v in obj:
                walk(v)

    walk(items)
    return out


@dataclass(frozen=True, eq=False)
class ParamGroups:
    """Weights and grafted (a, b) parameters of one module, and how to clamp slopes."""

    module: nn.Module
    weights: tuple[nn.Parameter, ...]
    grafts: tuple[nn.Parameter, ...]

    @property
    def grafted(self) -> bool:
        return bool(self.grafts)

    def clamp_slopes(self, lo: float, hi: float) -> None:
        """Clamp grafted slopes into [lo, hi] through the module's own hook, if it has one."""
        hook = getattr(self.module, "clamp_slopes", None)
        if self.grafts and callable(hook):
            with torch.no_grad():
                hook(lo, hi)

    def freeze_weights(self) -> None:
        """Stop gradients into the weights (only a, b train)."""
        hook = getattr(self.module, "freeze_weights", None)
        if callable(hook):
            hook()
        for p in self.weights:
            p.requires_grad_(False)


def param_groups(module: nn.Module) -> ParamGroups:
    """Split ``module``'s parameters into grafted (a, b) and ordinary weights."""
    inner = module.net if isinstance(module, PixelModel) else module
    graft_fn = getattr(inner, "graft_parameters", None)
    grafts = flat_params(graft_fn()) if callable(graft_fn) else []
    ids = {id(p) for p in grafts}
    weight_fn = getattr(inner, "weight_parameters", None)
    weights = flat_params(weight_fn()) if callable(weight_fn) else list(inner.parameters())
    weights = [p for p in weights if id(p) not in ids]
    return ParamGroups(inner, tuple(weights), tuple(grafts))
