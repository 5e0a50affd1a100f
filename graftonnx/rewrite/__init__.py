"""Rewrite stage: apply a graft plan to an ONNX graph (onnx-graphsurgeon passes)."""

from .graft import GRAFTS_KEY, PROVENANCE_KEY, apply_plan, graft_records, layer_tensors

__all__ = ["GRAFTS_KEY", "PROVENANCE_KEY", "apply_plan", "graft_records", "layer_tensors"]
