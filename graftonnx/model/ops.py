"""The per-op contract: which ONNX ops graftonnx can analyse, bound and convert.

Why one list: ``inspect`` rejects a graph early (naming the node) when it uses an op
outside this set, and the tests check that the interval (IBP) builder and the torch
converter both cover every op listed here, so the three never drift apart.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["SUPPORTED_OPS", "SMOOTH_ACTIVATIONS", "SMOOTH_FUNCTIONS", "CONTROL_FLOW_OPS", "LINEAR_PRODUCERS",
           "NORMALISATION_OPS", "LAYOUT_OPS"]

#: Ops that every stage (inspect, IBP in onnxruntime, torch round trip) supports.
SUPPORTED_OPS: frozenset[str] = frozenset(
    {
        "Add",
        "AveragePool",
        "BatchNormalization",
        "Concat",
        "Constant",
        "Conv",
        "Div",
        "Dropout",
        "Flatten",
        "Gemm",
        "Identity",
        "MatMul",
        "MaxPool",
        "Mul",
        "Neg",
        "Relu",
        "Reshape",
        "Sigmoid",
        "Squeeze",
        "Sub",
        "Tanh",
        "Transpose",
        "Unsqueeze",
    }
)

#: Smooth activations that can be grafted (as their least-squares line, rewrite/smooth.py); a Relu is the other site.
SMOOTH_ACTIVATIONS: frozenset[str] = frozenset({"Sigmoid", "Tanh"})


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(z)))  # no overflow warning for large |z|


#: NumPy references of the smooth activations (least-squares fits, relaxation looseness).
SMOOTH_FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"Sigmoid": _sigmoid, "Tanh": np.tanh}

#: Ops that make a graph data-dependent; no bound method here can handle them.
CONTROL_FLOW_OPS: frozenset[str] = frozenset({"If", "Loop", "Scan"})

#: Producers that α,β-CROWN's branching heuristics accept as the input of a Relu.
LINEAR_PRODUCERS: frozenset[str] = frozenset({"Conv", "Gemm", "MatMul", "Add", "BatchNormalization"})

#: Elementwise ops with a constant operand that count as in-graph input normalisation.
NORMALISATION_OPS: frozenset[str] = frozenset({"Sub", "Div", "Mul", "Add"})

#: Pure layout ops that may sit in the input prefix next to the normalisation (see ``input_prefix``).
LAYOUT_OPS: frozenset[str] = frozenset({"Transpose", "Reshape", "Flatten", "Identity"})
