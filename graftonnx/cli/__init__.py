"""The ``graftonnx`` command line: a thin click layer over the Python API.

Each command lives in its own module of this package and registers itself on
:data:`main` when imported below; errors derived from GraftError become one line on
stderr and their exit code (2 for bad input), never a traceback.
"""

from __future__ import annotations

from ._base import main

# Importing a command module registers its command on ``main``.
from . import inspect_cmd  # noqa: E402,F401  isort: skip
from . import score_cmd, plan_cmd, graft_cmd  # noqa: E402,F401  isort: skip
from . import demo_cmd  # noqa: E402,F401  isort: skip
from . import finetune_cmd, train_cmd, evaluate_cmd, tune_cmd  # noqa: E402,F401  isort: skip
from . import export_cmd  # noqa: E402,F401  isort: skip
from . import simplify_cmd  # noqa: E402,F401  isort: skip
from . import verify_cmd  # noqa: E402,F401  isort: skip
from . import report_cmd  # noqa: E402,F401  isort: skip
from . import zoo_cmd  # noqa: E402,F401  isort: skip

__all__ = ["main"]
