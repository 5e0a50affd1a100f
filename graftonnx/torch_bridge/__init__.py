"""Torch bridge: run an ONNX graph as a trainable torch module, then write values back."""

from .convert import GraftSite, OnnxModule, to_torch
from .grafts import GRAFTS_KEY, GraftRecord, read_grafts
from .ops import CONVERTERS
from .writeback import write_back

__all__ = ["GraftSite", "OnnxModule", "to_torch", "GRAFTS_KEY", "GraftRecord", "read_grafts", "CONVERTERS",
           "write_back"]
