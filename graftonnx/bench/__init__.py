"""Benchmark stage: robustness properties in VNN-LIB 1.0/2.0 and VNN-COMP benchmark folders."""

from .export import SKIP_MODES, BenchmarkInfo, ExportModel, check_benchmark_output, export_benchmark
from .spec import Property
from .vnnlib import format_real, parse_vnnlib, read_vnnlib, vnnlib_text, write_vnnlib
from .vnnlib2 import parse_vnnlib2, read_vnnlib2, vnnlib2_text, write_vnnlib2

__all__ = [
    "Property", "BenchmarkInfo", "ExportModel", "export_benchmark", "check_benchmark_output", "SKIP_MODES",
    "format_real", "parse_vnnlib", "read_vnnlib", "vnnlib_text", "write_vnnlib",
    "parse_vnnlib2", "read_vnnlib2", "vnnlib2_text", "write_vnnlib2",
]
