"""graftonnx: linearity grafting for ONNX classifiers.

The public API mirrors the data flow: model → scores → plan → graft → finetune →
export → verify → report.  Each stage lives in its own subpackage; the common calls
are re-exported here (imported lazily, so ``import graftonnx`` stays cheap)::

    import graftonnx
    result = graftonnx.graft("net.onnx", "mnist5k", ratio=0.5, eps=0.02)
    result.save("net-graft50.onnx")
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

__all__ = ["__version__", "open", "inspect", "load", "load_data", "score", "plan", "graft", "unr", "accuracy",
           "save_model", "settings_with", "GraftSettings", "GraftResult", "ModelHandle"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module(".api", __name__), name)
    raise AttributeError(f"module 'graftonnx' has no attribute {name!r}")
