"""Training stage: adversarial finetuning of grafted models, training from scratch, PGD evaluation."""

from ..attack import PgdConfig, pgd
from .arch import ARCH_HELP, build_arch, export_onnx
from .attacks import fgsm_rs
from .config import TrainConfig
from .evaluate import EvalConfig, EvalResult, evaluate, torch_accuracy
from .loop import EpochStats, TrainResult, fit
from .nets import PixelModel, param_groups

__all__ = [
    "ARCH_HELP", "build_arch", "export_onnx", "PgdConfig", "fgsm_rs", "pgd", "TrainConfig", "EvalConfig",
    "EvalResult", "evaluate", "torch_accuracy", "EpochStats", "TrainResult", "fit", "PixelModel", "param_groups",
]
