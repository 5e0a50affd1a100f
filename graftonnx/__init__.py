"""graftonnx: linearity grafting for ONNX classifiers.

The public API mirrors the data flow: model → scores → plan → graft → finetune →
export → verify → report.  Each stage lives in its own subpackage.
"""

from ._version import __version__

__all__ = ["__version__"]
