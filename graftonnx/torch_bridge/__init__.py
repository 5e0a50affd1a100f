"""Torch bridge: run an ONNX graph as a trainable torch module, then write values back."""

from .convert import GraftSite, OnnxModule, to_torch
from .ops import CONVERTERS
from .writeback import write_back

__all__ = ["GraftSite", "OnnxModule", "to_torch", "CONVERTERS", "write_back"]
