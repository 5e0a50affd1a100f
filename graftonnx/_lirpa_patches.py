"""Patches-mode bound rules auto_LiRPA 0.6.0 lacks: a feature map times / plus a per-position constant.

Why: a per-neuron graft on a conv feature map is ``Mul(z, keep)`` and ``Add(·, b⊙m)`` with
constants of the map's full shape ``(C, H, W)``; no Conv expresses it (rewrite/native.py).
auto_LiRPA 0.6.0 handles such constants only in matrix mode (3–6× slower here): in patches
mode ``BoundMul._multiply_by_const`` asserts unless the patches are 1×1, and ``Bound.get_bias``
of a batch-less constant multiplies the summed patches by the constant as if it were a scalar
(unsound for a non-scalar one).  Both are the same computation the library already does for
per-neuron ReLU slopes and batched biases: unfold the constant to the patches' layout
(``inplace_unfold``) and multiply, or contract.

:func:`install` wraps the two methods once; the originals still run for every other case.
Only full-shape constants take the new path (``graftonnx._lirpa._conv_mode`` keeps matrix
mode for per-channel ones), so a wrong shape can only raise, never bound silently wrong.
Tested against matrix-mode bounds and sampled outputs (tests/test_lirpa_grafted.py).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import torch

__all__ = ["install", "unfold_like"]


def unfold_like(const: torch.Tensor, A: Any, patches_mod: ModuleType) -> torch.Tensor:
    """``const`` (C, H, W) or (1, C, H, W) in the layout of ``A.patches`` (batch axis second)."""
    c = const.reshape((1, *const.shape[-3:])).to(A.patches)
    batch = A.patches.shape[1]
    u = patches_mod.inplace_unfold(c.expand(batch, -1, -1, -1), kernel_size=A.patches.shape[-2:], stride=A.stride,
                                   padding=A.padding, inserted_zeros=A.inserted_zeros,
                                   output_padding=A.output_padding)  # (batch, out_h, out_w, C, kh, kw)
    if A.unstable_idx is not None:  # sparse patches: (unstable, batch, C, kh, kw)
        return u[:, A.unstable_idx[1], A.unstable_idx[2]].transpose(0, 1)
    return u.unsqueeze(0)  # (1, batch, out_h, out_w, C, kh, kw)


def _full_map(const: Any) -> bool:
    """A constant with a value per position of a feature map: (C, H, W) or (1, C, H, W), H·W > 1."""
    return isinstance(const, torch.Tensor) and (const.ndim == 3 or (const.ndim == 4 and const.shape[0] == 1)) \
        and const.shape[-1] * const.shape[-2] > 1


def install(lirpa_pkg: str, modules: dict[str, ModuleType]) -> bool:
    """Wrap ``BoundMul._multiply_by_const`` and ``Bound.get_bias`` of the auto_LiRPA package ``lirpa_pkg``."""
    base = modules[f"{lirpa_pkg}.operators.base"]
    biv = modules[f"{lirpa_pkg}.operators.bivariate"]
    pm = modules[f"{lirpa_pkg}.patches"]
    if getattr(biv.BoundMul, "_graftonnx_patches", False):
        return False
    mult, get_bias = biv.BoundMul._multiply_by_const, base.Bound.get_bias

    def multiply_by_const(x: Any, const: Any) -> Any:
        if isinstance(x, pm.Patches) and _full_map(const):
            return x.create_similar(x.patches * unfold_like(const, x, pm))
        return mult(x, const)

    def bias(self: Any, A: Any, value: Any) -> Any:
        if type(A) is pm.Patches and self.batch_dim == -1 and _full_map(value):
            u = unfold_like(value, A, pm)
            dims = tuple(range(-3, 0))
            return (u * A.patches).sum(dim=dims)  # (spec, batch, out_h, out_w) or (unstable, batch)
        return get_bias(self, A, value)

    biv.BoundMul._multiply_by_const = staticmethod(multiply_by_const)
    base.Bound.get_bias = bias
    biv.BoundMul._graftonnx_patches = True
    return True
