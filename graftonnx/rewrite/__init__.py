"""Rewrite stage: apply a graft plan to an ONNX graph (onnx-graphsurgeon passes)."""

from .channels import drop_grafted_channels
from .fold import SimplifyReport, fold_linear, remove_full_relus, simplify
from .graft import apply_plan, layer_tensors
from .smooth import apply_smooth_plan, fit_smooth_lines, smooth_plan, smooth_sites

__all__ = ["apply_plan", "layer_tensors",
           "SimplifyReport", "remove_full_relus", "fold_linear", "simplify", "drop_grafted_channels",
           "apply_smooth_plan", "fit_smooth_lines", "smooth_plan", "smooth_sites"]
