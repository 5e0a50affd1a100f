"""Re-check every ``sat`` in onnxruntime before anyone believes it.

Why: a verifier that converts ONNX to its own torch graph can disagree with the model
that will actually be deployed (a wrong Transpose, a fused normalisation, float16 on the
GPU).  A counterexample counts only when the point lies in the input box (within 1e-4)
and the *ONNX* model's outputs at that point violate the property; otherwise the verdict
becomes ``error`` and the original claim is kept in the message.
"""

from __future__ import annotations

import os

import numpy as np

from ..bench.spec import Property
from ..model.handle import open_model
from .result import Counterexample, Result, Verdict

__all__ = ["INVALID_CEX", "BOX_TOL", "onnx_logits", "cex_problem", "check_result"]

INVALID_CEX = "backend reported an invalid counterexample"
BOX_TOL = 1e-4


def onnx_logits(onnx_path: str | os.PathLike[str], x: np.ndarray) -> np.ndarray:
    """The ONNX model's outputs (flat) at the flat point ``x``, run by onnxruntime on the CPU (the handle's runner)."""
    h = open_model(onnx_path)
    dims = h.proto.graph.input[0].type.tensor_type.shape.dim  # load_model rejects graphs without inputs
    per_image = tuple(int(d.dim_value) if d.dim_value > 0 else 1 for d in dims)[1:]
    return h.runner.logits(np.asarray(x, np.float32).reshape((1, *per_image))).ravel()


def cex_problem(onnx_path: str | os.PathLike[str], prop: Property, cex: Counterexample,
                tol: float = BOX_TOL) -> str | None:
    """None when ``cex`` is a real counterexample of ``prop``; else a short reason why not."""
    x = np.asarray(cex.inputs, np.float64)
    if x.size != prop.n_inputs:
        return f"it has {x.size} inputs, the property {prop.n_inputs}"
    if not np.all(np.isfinite(x)):
        return "it has non-finite inputs"
    if not prop.contains(x, tol):
        worst = float(np.max(np.maximum(prop.lower - x, x - prop.upper)))
        return f"its input leaves the box by {worst:.3g} (> {tol:g})"
    y = onnx_logits(onnx_path, x)
    if not prop.violated_by(y):
        margin = float(y[prop.label] - np.max(np.delete(y, prop.label)))
        return f"onnxruntime gives label {prop.label} the top score there (margin {margin:.3g})"
    return None


def check_result(result: Result, onnx_path: str | os.PathLike[str], prop: Property) -> Result:
    """``result`` unchanged unless it is a ``sat`` whose counterexample fails the check (→ ``error``)."""
    if result.verdict != Verdict.SAT:
        return result
    if result.counterexample is None:
        why = "no counterexample was given"
    else:
        try:
            why = cex_problem(onnx_path, prop, result.counterexample)
        except Exception as exc:  # noqa: BLE001 - a broken check must not pass as sat
            why = f"onnxruntime could not evaluate it ({type(exc).__name__}: {exc})"
    if why is None:
        y = onnx_logits(onnx_path, np.asarray(result.counterexample.inputs))  # type: ignore[union-attr]
        cex = Counterexample(result.counterexample.inputs, tuple(float(v) for v in y))  # type: ignore[union-attr]
        return result.replace(counterexample=cex)
    msg = f"{INVALID_CEX}: {why}" + (f"; backend said: {result.message}" if result.message else "")
    return result.replace(verdict=Verdict.ERROR, message=msg)
