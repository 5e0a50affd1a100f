"""Model stage: load and validate ONNX, analyse ReLU sites, run in onnxruntime."""

from .info import ModelInfo, ReluSite, TensorInfo, constant_value, graph_inputs, inspect_model
from .loader import load_model, model_bytes, name_nodes
from .ops import CONTROL_FLOW_OPS, LINEAR_PRODUCERS, SUPPORTED_OPS
from .runtime import OrtRunner, expose, session, tensor_shapes, with_dynamic_batch
from .transform import prepend_normalisation

__all__ = [
    "ModelInfo", "ReluSite", "TensorInfo", "constant_value", "graph_inputs", "inspect_model",
    "load_model", "model_bytes", "name_nodes", "CONTROL_FLOW_OPS", "LINEAR_PRODUCERS",
    "SUPPORTED_OPS", "prepend_normalisation", "OrtRunner", "expose", "session", "tensor_shapes", "with_dynamic_batch",
]
